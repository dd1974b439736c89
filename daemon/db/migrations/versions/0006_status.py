"""pass_success (last success per channel and pass), alert (raised alerts), and since-when of the
pause and breaker switches on channel_state

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("channel_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("breaker_tripped_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "pass_success",
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("pass_name", sa.String(length=20), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "pass_name"),
    )
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=True),
        sa.Column("summary", sa.String(length=1000), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_key", "alert", ["key"])
    op.create_index("ix_alert_resolved_at", "alert", ["resolved_at"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_alert_resolved_at", table_name="alert")
    op.drop_index("ix_alert_key", table_name="alert")
    op.drop_table("alert")
    op.drop_table("pass_success")
    with op.batch_alter_table("channel_state", schema=None) as batch_op:
        batch_op.drop_column("breaker_tripped_at")
        batch_op.drop_column("paused_at")
