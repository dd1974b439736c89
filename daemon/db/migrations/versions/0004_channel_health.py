"""channel_state.health and health_since: whether a channel's connector works, and since when

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("channel_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("health", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("health_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("channel_state", schema=None) as batch_op:
        batch_op.drop_column("health_since")
        batch_op.drop_column("health")
