"""console indexes: actions by channel, status, kind and completion (replaces ix_action_open, whose
kind-before-status order left "open intents of these channels" scanning every action of them),
offer snapshots by channel and time, the ledger by SKU and time (the console's pages)

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
    ("ix_action_channel_status", "action", ["channel", "status", "kind", "completed_at"]),
    ("ix_offer_snapshot_channel_time", "offer_snapshot", ["channel", "observed_at"]),
    ("ix_stock_event_sku_time", "stock_event", ["sku", "occurred_at"]),
)


def upgrade() -> None:
    """Apply this revision."""
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    op.drop_index("ix_action_open", table_name="action")


def downgrade() -> None:
    """Revert this revision."""
    op.create_index("ix_action_open", "action", ["channel", "kind", "status"])
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
