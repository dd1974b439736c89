"""Rows the status view and the alerts read: inbox deliveries, actions and ledger entries."""

from __future__ import annotations

import itertools
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from daemon.db.engine import Database
from daemon.db.models import Action, StockEvent, WebhookEvent

INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
ACTIONS = Action.__table__  # type: ignore[attr-defined]
EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
_ids = itertools.count(1)


async def delivery(
    db: Database,
    channel: str,
    received_at: datetime,
    *,
    processed_at: datetime | None = None,
    outcome: str | None = None,
    error: str | None = None,
    topic: str = "orders/create",
) -> None:
    """One webhook_event row (unprocessed unless ``processed_at`` is given)."""
    async with db.write() as conn:
        await conn.execute(
            sa.insert(INBOX).values(
                channel=channel,
                dedupe_key=f"d-{next(_ids)}",
                topic=topic,
                payload="{}",
                received_at=received_at,
                processed_at=processed_at,
                outcome=outcome,
                error=error,
            )
        )


async def action(
    db: Database,
    channel: str,
    sku: str,
    status: str,
    at: datetime,
    *,
    kind: str = "price",
    code: str | None = None,
    price: str = "10.00",
) -> int:
    """One action row; return its id."""
    async with db.write() as conn:
        result = await conn.execute(
            sa.insert(ACTIONS)
            .values(
                pass_id="p1",
                kind=kind,
                channel=channel,
                sku=sku,
                status=status,
                new_price=Decimal(price) if kind == "price" else None,
                new_quantity=None if kind == "price" else 3,
                trace=[],
                guard_verdicts=[],
                idempotency_key=f"k-{next(_ids)}",
                response_code=code,
                created_at=at,
                sent_at=at,
                completed_at=None if status in ("planned", "sent") else at,
            )
            .returning(ACTIONS.c.id)
        )
        return int(result.scalar_one())


async def ledger(
    db: Database, sku: str, delta: int, at: datetime, *, note: str | None = None, **kw: Any
) -> None:
    """One stock_event row (an order when ``delta`` < 0, else a receipt)."""
    async with db.write() as conn:
        await conn.execute(
            sa.insert(EVENTS).values(
                sku=sku,
                kind=kw.get("kind", "order" if delta < 0 else "receipt"),
                delta=delta,
                external_ref=f"ref-{next(_ids)}",
                channel=kw.get("channel", "alpha"),
                note=note,
                occurred_at=at,
                recorded_at=at,
            )
        )
