"""revision_budget: eBay revisions per listing and calls per API family, per eBay day

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "revision_budget",
        sa.Column("channel", sa.String(length=100), nullable=False),
        sa.Column("listing_key", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("revisions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "listing_key", "day"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("revision_budget")
