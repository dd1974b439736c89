"""inventory intelligence: product supply terms, daily SKU aggregates, restock and health
snapshots of the nightly inventory pass

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Money: exact NUMERIC on PostgreSQL, canonical decimal text on SQLite (see daemon.db.types.Money).
MONEY = sa.String(40).with_variant(sa.Numeric(18, 4), "postgresql")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lead_time_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("moq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("case_pack", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("supplier", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("unit_volume_cuft", MONEY, nullable=True))
        batch_op.add_column(sa.Column("size_tier", sa.String(length=20), nullable=True))
    op.create_table(
        "inventory_day",
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("pool", sa.String(length=100), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sold", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("inbound", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("product_id", "pool", "day"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "inventory_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("aggregated_through", sa.Date(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("skus", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "restock",
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("supplier", sa.String(length=100), nullable=True),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("on_hand_pools", sa.JSON(), nullable=False),
        sa.Column("inbound", sa.Integer(), nullable=False),
        sa.Column("daily_demand", sa.Float(), nullable=False),
        sa.Column("sigma", sa.Float(), nullable=False),
        sa.Column("demand_class", sa.Integer(), nullable=False),
        sa.Column("days_of_supply", MONEY, nullable=True),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        sa.Column("reorder_point", sa.Integer(), nullable=False),
        sa.Column("order_quantity", sa.Integer(), nullable=False),
        sa.Column("order_by", sa.Date(), nullable=True),
        sa.Column("order_value", MONEY, nullable=True),
        sa.Column("forecast_start", sa.Date(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku"),
    )
    op.create_table(
        "inventory_health",
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("pool", sa.String(length=100), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("age_0_90", sa.Integer(), nullable=False),
        sa.Column("age_91_180", sa.Integer(), nullable=False),
        sa.Column("age_181_270", sa.Integer(), nullable=False),
        sa.Column("age_271_365", sa.Integer(), nullable=False),
        sa.Column("age_365_plus", sa.Integer(), nullable=False),
        sa.Column("excess_units", sa.Integer(), nullable=False),
        sa.Column("units_sold_90d", sa.Integer(), nullable=False),
        sa.Column("sell_through", MONEY, nullable=True),
        sa.Column("stranded_units", sa.Integer(), nullable=False),
        sa.Column("storage_fee_3m", MONEY, nullable=True),
        sa.Column("fee_months", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", "pool"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("inventory_health")
    op.drop_table("restock")
    op.drop_table("inventory_run")
    op.drop_table("inventory_day")
    with op.batch_alter_table("product", schema=None) as batch_op:
        for column in (
            "size_tier",
            "unit_volume_cuft",
            "supplier",
            "case_pack",
            "moq",
            "lead_time_days",
        ):
            batch_op.drop_column(column)
