"""What a reprice pass reads from history: sales windows, inventory age, our price history, peers.

Each loader answers for a whole channel in one or two grouped queries, so a 100,000-listing
pass pays per query, not per listing; a pass loads only what its rules' strategies and the
guards read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.db.models import (
    Action,
    ActionStatus,
    Listing,
    RestockRow,
    StockEvent,
    StockEventKind,
)
from daemon.db.types import money_value

EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
ACTIONS = Action.__table__  # type: ignore[attr-defined]
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
RESTOCK = RestockRow.__table__  # type: ignore[attr-defined]
SALES_WINDOWS_DAYS = (1, 7, 30)
PRICE_HISTORY_DAYS = 30
_INTAKE = (StockEventKind.RECEIPT.value, StockEventKind.RETURN.value, StockEventKind.COUNT.value)

Sales = dict[str, tuple[tuple[int, int], ...]]


def _only(skus: Collection[str] | None, column: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    """Restrict to ``skus`` (an event-driven pass of a few SKUs), or everything if None."""
    return sa.true() if skus is None else column.in_(sorted(skus))


async def units_sold(
    conn: AsyncConnection, now: datetime, skus: Collection[str] | None = None
) -> Sales:
    """Net units sold per SKU over each window (orders minus cancellations)."""
    sold = -EVENTS.c.delta  # orders carry negative deltas, cancellations positive ones
    columns = [
        sa.func.sum(sa.case((EVENTS.c.occurred_at >= now - timedelta(days=days), sold), else_=0))
        for days in SALES_WINDOWS_DAYS
    ]
    rows = (
        await conn.execute(
            sa.select(EVENTS.c.sku, *columns)
            .where(
                EVENTS.c.kind.in_([StockEventKind.ORDER.value, StockEventKind.CANCEL.value]),
                EVENTS.c.occurred_at >= now - timedelta(days=max(SALES_WINDOWS_DAYS)),
            )
            .group_by(EVENTS.c.sku)
        )
    ).all()
    return {
        row[0]: tuple(
            (days, max(0, int(units or 0)))
            for days, units in zip(SALES_WINDOWS_DAYS, row[1:], strict=True)
        )
        for row in rows
    }


def no_sales() -> tuple[tuple[int, int], ...]:
    """The windows for a SKU with no order events: zero everywhere."""
    return tuple((days, 0) for days in SALES_WINDOWS_DAYS)


async def inventory_age_days(
    conn: AsyncConnection, now: datetime, skus: Collection[str] | None = None
) -> dict[str, int]:
    """Days since the oldest intake (receipt, return or count) after the SKU's latest count.

    An approximation of FIFO age that needs no per-unit tracking: a count resets what we know,
    and anything received since is at most as old as the first intake after it.
    """
    latest_count = (
        sa.select(EVENTS.c.sku, sa.func.max(EVENTS.c.occurred_at).label("at"))
        .where(EVENTS.c.kind == StockEventKind.COUNT.value)
        .group_by(EVENTS.c.sku)
        .subquery()
    )
    rows = (
        await conn.execute(
            sa.select(EVENTS.c.sku, sa.func.min(EVENTS.c.occurred_at))
            .select_from(EVENTS.outerjoin(latest_count, latest_count.c.sku == EVENTS.c.sku))
            .where(
                EVENTS.c.kind.in_(_INTAKE),
                EVENTS.c.delta > 0,
                sa.or_(latest_count.c.at.is_(None), EVENTS.c.occurred_at >= latest_count.c.at),
                _only(skus, EVENTS.c.sku),
            )
            .group_by(EVENTS.c.sku)
        )
    ).all()
    return {sku: max(0, (now - oldest).days) for sku, oldest in rows if oldest is not None}


async def recent_prices(
    conn: AsyncConnection, channel: str, now: datetime, skus: Collection[str] | None = None
) -> dict[str, tuple[tuple[datetime, Decimal], ...]]:
    """Our confirmed prices per SKU on ``channel`` over the last 30 days, oldest first.

    The first entry is the price in effect at the start of the window (the old price of the
    first change inside it), so the 24 h drift guard anchors on what was live a day ago, not on
    the first change of the day.
    """
    start = now - timedelta(days=PRICE_HISTORY_DAYS)
    raw = sa.String()
    query = (
        sa.select(
            ACTIONS.c.sku,
            ACTIONS.c.completed_at,
            sa.type_coerce(ACTIONS.c.old_price, raw),
            sa.type_coerce(ACTIONS.c.new_price, raw),
        )
        .where(
            ACTIONS.c.channel == channel,
            ACTIONS.c.kind == "price",
            ACTIONS.c.status == ActionStatus.CONFIRMED.value,
            ACTIONS.c.completed_at >= start,
        )
        .order_by(ACTIONS.c.completed_at, ACTIONS.c.id)
    )
    query = query.where(_only(skus, ACTIONS.c.sku))
    history: dict[str, list[tuple[datetime, Decimal]]] = defaultdict(list)
    for sku, at, old, new in (await conn.execute(query)).all():
        points = history[sku]
        if not points and (before := money_value(old)) is not None:
            points.append((start, before))
        value = money_value(new)
        if at is not None and value is not None:
            points.append((at, value))
    return {sku: tuple(points) for sku, points in history.items()}


async def peer_prices(
    conn: AsyncConnection, channel: str, peers: Collection[str], skus: Collection[str] | None = None
) -> dict[str, tuple[tuple[str, Decimal], ...]]:
    """Our current price of each SKU on the ``peers`` channels (for the parity guard)."""
    if not peers:
        return {}
    rows = (
        await conn.execute(
            sa.select(
                LISTINGS.c.sku, LISTINGS.c.channel, sa.type_coerce(LISTINGS.c.price, sa.String())
            ).where(
                LISTINGS.c.channel.in_(list(peers)),
                LISTINGS.c.channel != channel,
                _only(skus, LISTINGS.c.sku),
            )
        )
    ).all()
    found: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for sku, peer, price in rows:
        value = money_value(price)
        if value is not None:
            found[sku].append((peer, value))
    return {sku: tuple(items) for sku, items in found.items()}


async def forecast_demand(
    conn: AsyncConnection, channel: str, skus: Collection[str] | None = None
) -> dict[str, Decimal]:
    """Each listed SKU's forecast units a day as the inventory pass last stored it (``restock``;
    ``excess_inventory`` with ``demand: forecast``), for one channel in one query."""
    rows = await conn.execute(
        sa.select(RESTOCK.c.sku, RESTOCK.c.daily_demand)
        .join(LISTINGS, LISTINGS.c.sku == RESTOCK.c.sku)
        .where(LISTINGS.c.channel == channel, _only(skus, RESTOCK.c.sku))
    )
    return {sku: Decimal(str(round(float(demand), 4))) for sku, demand in rows}
