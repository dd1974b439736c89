"""console indexes: writes by outcome and time, offer snapshots by channel and time, the ledger by
SKU and time (the console's overview, SKU and problems pages)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_action_outcome_time", "action", ["channel", "kind", "status", "completed_at"]),
    ("ix_offer_snapshot_channel_time", "offer_snapshot", ["channel", "observed_at"]),
    ("ix_stock_event_sku_time", "stock_event", ["sku", "occurred_at"]),
)


def upgrade() -> None:
    """Apply this revision."""
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    """Revert this revision."""
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
