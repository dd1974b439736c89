"""marketplace_feed and marketplace_feed_item: the feeds a channel created and the updates each
carries, so a restart resumes a feed instead of creating it again

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "marketplace_feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("feed_id", sa.String(length=200), nullable=False),
        sa.Column("document_id", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "feed_id", name="uq_marketplace_feed"),
    )
    op.create_table(
        "marketplace_feed_item",
        sa.Column("feed", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("unapplied", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["feed"], ["marketplace_feed.id"]),
        sa.PrimaryKeyConstraint("feed", "position"),
    )
    with op.batch_alter_table("marketplace_feed_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_marketplace_feed_item_idempotency_key"),
            ["idempotency_key"],
            unique=False,
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("marketplace_feed_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_marketplace_feed_item_idempotency_key"))
    op.drop_table("marketplace_feed_item")
    op.drop_table("marketplace_feed")
