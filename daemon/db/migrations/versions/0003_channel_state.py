"""channel_state.open_pass (the reprice pass whose intents wait for the breaker's verdict) and
channel_state.orders_polled_at (where the next orders poll starts)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("channel_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("open_pass", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("orders_polled_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("channel_state", schema=None) as batch_op:
        batch_op.drop_column("orders_polled_at")
        batch_op.drop_column("open_pass")
