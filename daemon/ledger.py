"""The stock ledger: on-hand per SKU derived from the append-only ``stock_event`` table.

Its writers: orders, cancels and counts adopted from a channel (``daemon.stock``, under the
``ledger:<sku>`` lock), and the counts of a catalogue import (``daemon.catalog``, table locked).
"""

from __future__ import annotations

from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.db.models import StockEvent

EVENTS = StockEvent.__table__  # type: ignore[attr-defined]


async def on_hand(conn: AsyncConnection, skus: Collection[str] | None = None) -> dict[str, int]:
    """On-hand units per SKU (sum of deltas; a ``count`` event carries the delta to its count)."""
    query = sa.select(EVENTS.c.sku, sa.func.sum(EVENTS.c.delta)).group_by(EVENTS.c.sku)
    if skus is not None:
        query = query.where(EVENTS.c.sku.in_(list(skus)))
    return {sku: int(total or 0) for sku, total in (await conn.execute(query)).all()}
