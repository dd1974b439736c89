"""The stock ledger: on-hand per SKU derived from the append-only ``stock_event`` table."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.db.engine import Database
from daemon.db.models import StockEvent, StockEventKind

EVENTS = StockEvent.__table__  # type: ignore[attr-defined]


async def on_hand(conn: AsyncConnection, skus: Collection[str] | None = None) -> dict[str, int]:
    """On-hand units per SKU (sum of deltas; a ``count`` event carries the delta to its count)."""
    query = sa.select(EVENTS.c.sku, sa.func.sum(EVENTS.c.delta)).group_by(EVENTS.c.sku)
    if skus is not None:
        query = query.where(EVENTS.c.sku.in_(list(skus)))
    return {sku: int(total or 0) for sku, total in (await conn.execute(query)).all()}


async def record_count(
    db: Database,
    *,
    sku: str,
    counted: int,
    external_ref: str,
    at: datetime,
    note: str | None = None,
) -> bool:
    """Set on-hand to ``counted`` (idempotent per ``external_ref``); True if it was new."""
    async with db.write() as conn:
        await db.serialize(conn, f"ledger:{sku}")
        current = (await on_hand(conn, [sku])).get(sku, 0)
        stmt = (
            db.insert(EVENTS)
            .values(
                sku=sku,
                kind=StockEventKind.COUNT.value,
                delta=counted - current,
                counted=counted,
                external_ref=external_ref,
                note=note,
                occurred_at=at,
                recorded_at=at,
            )
            .on_conflict_do_nothing(index_elements=["external_ref"])
        )
        result = await conn.execute(stmt)
    return bool(result.rowcount)


async def record_movement(
    db: Database,
    *,
    sku: str,
    kind: StockEventKind,
    delta: int,
    external_ref: str,
    at: datetime,
    channel: str | None = None,
    note: str | None = None,
) -> bool:
    """Append a receipt/order/cancel/return/adjustment once per ``external_ref``."""
    if kind is StockEventKind.COUNT:
        raise ValueError("use record_count for counts")
    async with db.write() as conn:
        await db.serialize(conn, f"ledger:{sku}")  # a concurrent count must see this movement
        stmt = (
            db.insert(EVENTS)
            .values(
                sku=sku,
                kind=kind.value,
                delta=delta,
                external_ref=external_ref,
                channel=channel,
                note=note,
                occurred_at=at,
                recorded_at=at,
            )
            .on_conflict_do_nothing(index_elements=["external_ref"])
        )
        result = await conn.execute(stmt)
    return bool(result.rowcount)
