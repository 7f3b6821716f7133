"""Market operations: bids, commitments, dispatch and delivery records.

Revision ID: 0004_markets
Revises: 0003_devices
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "0004_markets"
down_revision = "0003_devices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Tables are added here by the package that owns them."""


def downgrade() -> None:
    """Reverse of upgrade()."""
