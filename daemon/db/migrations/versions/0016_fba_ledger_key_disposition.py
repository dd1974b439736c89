"""fba_ledger_event: Disposition joins the natural key (two rows of one event that differ only
in disposition, e.g. a customer return of one sellable and one damaged unit, are both kept);
an index for the inventory pass's reads of one chunk of SKUs of one channel's ledger;
fba_reimbursement: amazon-order-id and reason join its key (line items of one reimbursement)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ["channel", "occurred_at", "fnsku", "event_type", "reference_id", "quantity"]
REST = ["fulfillment_center", "reason"]


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("fba_ledger_event", schema=None) as batch_op:
        batch_op.drop_constraint("uq_fba_ledger_event", type_="unique")
        batch_op.create_unique_constraint("uq_fba_ledger_event", [*KEY, *REST, "disposition"])
    op.create_index(
        "ix_fba_ledger_event_channel_msku_day", "fba_ledger_event", ["channel", "msku", "day"]
    )
    with op.batch_alter_table("fba_reimbursement", schema=None) as batch_op:
        batch_op.drop_constraint("uq_fba_reimbursement", type_="unique")
        batch_op.create_unique_constraint(
            "uq_fba_reimbursement",
            ["channel", "reimbursement_id", "fnsku", "amazon_order_id", "reason"],
        )


def downgrade() -> None:
    """Revert this revision (rows that then collide must be removed first)."""
    with op.batch_alter_table("fba_reimbursement", schema=None) as batch_op:
        batch_op.drop_constraint("uq_fba_reimbursement", type_="unique")
        batch_op.create_unique_constraint(
            "uq_fba_reimbursement", ["channel", "reimbursement_id", "fnsku"]
        )
    op.drop_index("ix_fba_ledger_event_channel_msku_day", table_name="fba_ledger_event")
    with op.batch_alter_table("fba_ledger_event", schema=None) as batch_op:
        batch_op.drop_constraint("uq_fba_ledger_event", type_="unique")
        batch_op.create_unique_constraint("uq_fba_ledger_event", [*KEY, *REST])
