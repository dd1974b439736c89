"""inventory_run.ledger_read_at: the newest FBA ledger read the inventory pass has taken in

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("inventory_run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ledger_read_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("inventory_run", schema=None) as batch_op:
        batch_op.drop_column("ledger_read_at")
