"""SKU columns 255 characters wide (Shopify allows 255), ledger references 500

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

PostgreSQL only: SQLite does not enforce a VARCHAR length, and its ALTER would copy the largest
tables (offer_snapshot, action) at start-up for no effect.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column, old width, new width)
WIDENED = (
    ("product", "sku", 200, 255),
    ("listing", "sku", 200, 255),
    ("stock_event", "sku", 200, 255),
    ("stock_event", "external_ref", 300, 500),
    ("offer_snapshot", "sku", 200, 255),
    ("action", "sku", 200, 255),
)


def upgrade() -> None:
    """Apply this revision."""
    _resize(widen=True)


def downgrade() -> None:
    """Revert this revision (fails if a longer value was stored meanwhile)."""
    _resize(widen=False)


def _resize(*, widen: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column, old, new in WIDENED:
        size, was = (new, old) if widen else (old, new)
        op.alter_column(
            table, column, type_=sa.String(length=size), existing_type=sa.String(length=was)
        )
