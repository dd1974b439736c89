"""fba_ledger_event, fba_reimbursement and fba_inventory: Amazon's FBA reports as read, for the
lost/damaged audit (each row stored once: a re-read adds nothing)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Money: exact NUMERIC on PostgreSQL, canonical decimal text on SQLite (see daemon.db.types.Money).
MONEY = sa.String(40).with_variant(sa.Numeric(18, 4), "postgresql")


def _text(name: str, length: int) -> sa.Column[str]:
    return sa.Column(name, sa.String(length=length), nullable=False)


def _moment(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "fba_ledger_event",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("channel", 100),
        sa.Column("day", sa.Date(), nullable=False),
        _moment("occurred_at"),
        _text("fnsku", 40),
        _text("asin", 40),
        _text("msku", 255),
        _text("title", 500),
        _text("event_type", 40),
        _text("reference_id", 100),
        sa.Column("quantity", sa.Integer(), nullable=False),
        _text("fulfillment_center", 20),
        _text("disposition", 40),
        _text("reason", 10),
        _text("country", 10),
        sa.Column("reconciled_quantity", sa.Integer(), nullable=True),
        sa.Column("unreconciled_quantity", sa.Integer(), nullable=True),
        _moment("read_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "channel",
            "occurred_at",
            "fnsku",
            "event_type",
            "reference_id",
            "quantity",
            "fulfillment_center",
            "reason",
            name="uq_fba_ledger_event",
        ),
    )
    op.create_index("ix_fba_ledger_event_day", "fba_ledger_event", ["day"])
    op.create_index("ix_fba_ledger_event_fnsku", "fba_ledger_event", ["fnsku"])
    op.create_table(
        "fba_reimbursement",
        sa.Column("id", sa.Integer(), nullable=False),
        _text("channel", 100),
        _moment("approved_at"),
        _text("reimbursement_id", 40),
        _text("case_id", 40),
        _text("amazon_order_id", 40),
        _text("reason", 60),
        _text("sku", 255),
        _text("fnsku", 40),
        _text("asin", 40),
        _text("product_name", 500),
        _text("condition", 40),
        _text("currency", 3),
        sa.Column("amount_per_unit", MONEY, nullable=True),
        sa.Column("amount_total", MONEY, nullable=False),
        sa.Column("quantity_cash", sa.Integer(), nullable=False),
        sa.Column("quantity_inventory", sa.Integer(), nullable=False),
        sa.Column("quantity_total", sa.Integer(), nullable=False),
        _text("original_reimbursement_id", 40),
        _text("original_reimbursement_type", 60),
        _moment("read_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "reimbursement_id", "fnsku", name="uq_fba_reimbursement"),
    )
    op.create_index("ix_fba_reimbursement_fnsku", "fba_reimbursement", ["fnsku"])
    counts = [
        "afn_warehouse",
        "afn_fulfillable",
        "afn_unsellable",
        "afn_reserved",
        "afn_total",
        "afn_inbound_working",
        "afn_inbound_shipped",
        "afn_inbound_receiving",
        "afn_researching",
        "afn_reserved_future_supply",
        "afn_future_supply_buyable",
    ]
    op.create_table(
        "fba_inventory",
        _text("channel", 100),
        _text("sku", 255),
        _text("fnsku", 40),
        _text("asin", 40),
        _text("product_name", 500),
        _text("condition", 40),
        sa.Column("your_price", MONEY, nullable=True),
        sa.Column("mfn_listing_exists", sa.Boolean(), nullable=False),
        sa.Column("mfn_fulfillable", sa.Integer(), nullable=True),
        sa.Column("afn_listing_exists", sa.Boolean(), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in counts],
        sa.Column("per_unit_volume", MONEY, nullable=True),
        _moment("read_at"),
        sa.PrimaryKeyConstraint("channel", "sku"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("fba_inventory")
    op.drop_index("ix_fba_reimbursement_fnsku", table_name="fba_reimbursement")
    op.drop_table("fba_reimbursement")
    op.drop_index("ix_fba_ledger_event_fnsku", table_name="fba_ledger_event")
    op.drop_index("ix_fba_ledger_event_day", table_name="fba_ledger_event")
    op.drop_table("fba_ledger_event")
