"""Bid ids belong to their BSP: the key of a bid is (BSP organisation, id), a commitment's is
(group, id); refusals keep the field they name.

Revision ID: 0007_bid_ownership
Revises: 0006_device_records
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_bid_ownership"
down_revision = "0006_device_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("market_bids", sa.Column("bsp_org_id", sa.String(length=64), nullable=True))
    op.add_column("market_bids", sa.Column("refused_field", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE market_bids SET bsp_org_id = "
        "(SELECT bidding_groups.bsp_org_id FROM bidding_groups WHERE bidding_groups.id = market_bids.group_id)"
    )
    with op.batch_alter_table("market_commitments") as batch:
        batch.drop_constraint("fk_market_commitments_bid_id_market_bids", type_="foreignkey")
        batch.drop_constraint("uq_market_commitments_bid_id", type_="unique")
        batch.drop_constraint("pk_market_commitments", type_="primary")
        batch.create_primary_key("pk_market_commitments", ["group_id", "id"])
        batch.create_unique_constraint("uq_market_commitments_group_bid", ["group_id", "bid_id"])
    with op.batch_alter_table("market_bids") as batch:
        batch.alter_column("bsp_org_id", existing_type=sa.String(length=64), nullable=False)
        batch.drop_constraint("pk_market_bids", type_="primary")
        batch.create_primary_key("pk_market_bids", ["bsp_org_id", "id"])
        batch.create_unique_constraint("uq_market_bids_group_bid", ["group_id", "id"])
    with op.batch_alter_table("market_commitments") as batch:
        batch.create_foreign_key(
            "fk_market_commitments_bid_market_bids", "market_bids", ["group_id", "bid_id"], ["group_id", "id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("market_commitments") as batch:
        batch.drop_constraint("fk_market_commitments_bid_market_bids", type_="foreignkey")
        batch.drop_constraint("uq_market_commitments_group_bid", type_="unique")
        batch.drop_constraint("pk_market_commitments", type_="primary")
        batch.create_primary_key("pk_market_commitments", ["id"])
        batch.create_unique_constraint("uq_market_commitments_bid_id", ["bid_id"])
    with op.batch_alter_table("market_bids") as batch:
        batch.drop_constraint("uq_market_bids_group_bid", type_="unique")
        batch.drop_constraint("pk_market_bids", type_="primary")
        batch.create_primary_key("pk_market_bids", ["id"])
        batch.drop_column("refused_field")
        batch.drop_column("bsp_org_id")
    with op.batch_alter_table("market_commitments") as batch:
        batch.create_foreign_key("fk_market_commitments_bid_id_market_bids", "market_bids", ["bid_id"], ["id"])
