"""Journey engine: organisations, users, tokens, journeys, tasks, audit log, outbox.

Revision ID: 0002_journey
Revises: 0001_foundation
Create Date: 2026-11-25
"""

from __future__ import annotations

revision = "0002_journey"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Tables are added here by the package that owns them."""


def downgrade() -> None:
    """Reverse of upgrade()."""
