"""Device layer: charger credentials, OCPP sessions, transactions, telemetry.

Revision ID: 0003_devices
Revises: 0002_journey
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "0003_devices"
down_revision = "0002_journey"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Tables are added here by the package that owns them."""


def downgrade() -> None:
    """Reverse of upgrade()."""
