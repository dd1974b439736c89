"""The nightly ``inventory`` pass: daily aggregates → forecast → restock plan → health.

1. **Aggregate** every day since the last run (``inventory_run.aggregated_through``) into
   ``inventory_day``: one narrow row per SKU, stock pool and day *with activity* (a sale, a
   receipt, a change of on hand); a day without a row kept the previous row's on hand.

   - Pool ``merchant``: the stock ledger (``stock_event``). ``sold`` is what orders took net of
     their cancels, ``received`` every positive receipt, return, adjustment or count;
     ``on_hand`` the ledger's end-of-day total (never below 0). The last ``OVERLAP_DAYS``
     already aggregated are rebuilt on every run (an orders poll can record an order days late);
     rebuilding a day replaces its rows, so a re-run changes nothing.
   - One pool per channel whose marketplace holds the units (listings with ``fulfillment ==
     "marketplace"``: Amazon FBA, Walmart WFS).
     *Read* where Amazon's Inventory Ledger (``fba_ledger_event``, stored by ``repricerd audit
     fba``) covers the day: a channel's ledger covers every day on which it has at least one
     event (the report lists every FNSKU's events, so a SKU without one that day moved no
     sellable unit). ``sold`` = units shipped to customers (``Shipments``, SELLABLE, negated:
     Amazon signs units leaving as negative); ``received`` = every other unit entering the
     sellable disposition (``Receipts``, ``CustomerReturns`` restocked as SELLABLE, found or
     re-dispositioned units), as the merchant ledger counts returns: a return is stock back,
     not negative demand; ``on_hand`` = the previous row's on hand plus the day's net SELLABLE
     change (``WhseTransfers`` left out: units moving between Amazon's warehouses stay ours
     and keep their age). A pool with no earlier row opens at the level that makes the ledger
     end at Amazon's last inventory report's fulfillable units (else the listing's), at least
     the least level that never goes negative. Days are the report's ``Date``. The pass
     reads what is stored and calls no marketplace (see ``rebuild_ledger_pools``).
     *Read* on Walmart WFS: each channel in ``sales`` (an opened Walmart channel) with WFS
     listings is asked once per run for its WFS order lines since ``start`` (the first of the
     ``OVERLAP_DAYS``; at most ``SALES_READ_DAYS``); ``sold`` is their units by order day,
     cancelled lines left out; ``on_hand`` stays the held quantity recorded; nothing enters
     the stock ledger (Walmart's units). A failed read leaves the pool inferred.
     *Inferred* on days the ledger does not cover (typically today: the ledger lags a day):
     the pass records the held quantity the listings report (reconcile) as the end of the day
     and reads a fall from the previous row as units sold, a rise as units received (a first
     reading is a receipt). When the ledger later covers such a day, its reading is replaced.
   - ``inbound``: for an Amazon pool, the latest Manage FBA Inventory snapshot's
     ``afn-inbound-working + shipped + receiving`` on the rows the snapshot step writes (and
     in restock's position); NULL (unknown) elsewhere: nothing the daemon reads reports WFS
     inbound.

   Days are UTC (the FBA ledger's: its ``Date``). The pass aggregates through today: today's
   rows are provisional (on hand so far, which restock and health start from) and rebuilt by
   the next run; the forecast fits complete days only, through yesterday.

2. **In stock, or censored**: a SKU-day is a stock-out (censored: missing data, not zero
   demand) when the SKU had no sellable unit at the start of the day nor at its end in any pool
   and sold nothing; a day before any pool knew the SKU is censored too (not yet launched).

3. **Forecast** (``inventory.forecast``) over ``inventory.history_days``, in chunks of
   ``CHUNK_SKUS`` products in a worker thread, so the event loop never waits on numpy.

4. **Restock** (``inventory.restock.plan``) per SKU, stored in ``restock``; a cover that fell
   below a ``restock_alert_days`` threshold since the last run is logged (``crossings``), and
   the alerts (``daemon.alerts.restock_conditions``) raise it once per crossing.

5. **Health** per SKU and pool (FIFO age buckets, excess above target cover, 90-day
   sell-through, stranded units, three-month storage-fee forecast), stored in
   ``inventory_health``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any, Final

import numpy as np
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.db.engine import Database
from daemon.db.models import (
    MERCHANT_POOL,
    FbaInventory,
    FbaLedgerEvent,
    InventoryDay,
    InventoryHealthRow,
    InventoryRun,
    Listing,
    Product,
    RestockRow,
    StockEvent,
    StockEventKind,
)
from daemon.settings import InventorySettings
from domain.clock import Clock
from domain.events import MarketplaceSale
from inventory.fees import FeeTable, forecast_storage_fees
from inventory.forecast import ForecastSettings, History, forecast
from inventory.health import (
    age_buckets,
    average_on_hand,
    excess_units,
    fifo_lots,
    sell_through,
    stranded_units,
)
from inventory.restock import RestockItem, crossings, plan

DAYS = InventoryDay.__table__  # type: ignore[attr-defined]
RUN = InventoryRun.__table__  # type: ignore[attr-defined]
RESTOCK = RestockRow.__table__  # type: ignore[attr-defined]
HEALTH = InventoryHealthRow.__table__  # type: ignore[attr-defined]
EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
PRODUCTS = Product.__table__  # type: ignore[attr-defined]
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
LEDGER = FbaLedgerEvent.__table__  # type: ignore[attr-defined]
FBA_INVENTORY = FbaInventory.__table__  # type: ignore[attr-defined]

# Catalogue defaults for a product whose supply terms are blank.
DEFAULT_LEAD_TIME_DAYS: Final = 30
DEFAULT_MOQ: Final = 1
DEFAULT_CASE_PACK: Final = 1
DEFAULT_SIZE_TIER: Final = "standard"
# Days already aggregated that every run rebuilds (orders recorded late by a poll).
OVERLAP_DAYS: Final = 3
# At most this many days of marketplace orders read in one run (after a long pause).
SALES_READ_DAYS: Final = 30
# Products forecast and planned per worker-thread call (and per write transaction).
CHUNK_SKUS: Final = 1024
# Aggregate rows converted per await while a chunk is read.
STREAM_ROWS: Final = 10_000
SELL_THROUGH_DAYS: Final = 90
PROGRESS_DAYS: Final = 30
FEE_MONTHS: Final = 3
# SKUs named in the one log line of many restock crossings.
DIGEST_SKUS: Final = 20
SALE_KINDS: Final = (StockEventKind.ORDER.value, StockEventKind.CANCEL.value)
# The Inventory Ledger's values the FBA pools read (GET_LEDGER_DETAIL_VIEW_DATA "Event Type"
# and "Disposition"; quantities are signed: units leaving are negative).
SELLABLE: Final = "SELLABLE"
SHIPMENTS: Final = "Shipments"
WAREHOUSE_TRANSFERS: Final = "WhseTransfers"
# Units on their way to Amazon (Manage FBA Inventory): being prepared, shipped, being received.
INBOUND_UNITS: Final = (
    FBA_INVENTORY.c.afn_inbound_working
    + FBA_INVENTORY.c.afn_inbound_shipped
    + FBA_INVENTORY.c.afn_inbound_receiving
)
log = structlog.get_logger("repricerd.inventory")
# Order lines a marketplace shipped from its own stock created in [start, end) (Walmart WFS).
SalesReader = Callable[[datetime, datetime], Awaitable[Sequence[MarketplaceSale]]]


def _start_of(day: date) -> datetime:
    return datetime.combine(day, dtime.min, tzinfo=UTC)


# --- 1. daily aggregates ------------------------------------------------------------------------


async def aggregate(
    db: Database, now: datetime, sales: Mapping[str, SalesReader] | None = None
) -> dict[str, Any]:
    """Bring ``inventory_day`` up to today (UTC; today so far), a day per transaction; return
    what was done. ``sales``: per channel, a reader of the order lines its marketplace ships
    from its own stock (Walmart WFS), whose pool's sales are then read, not inferred."""
    through = now.astimezone(UTC).date()
    async with db.read() as conn:
        run = (
            await conn.execute(sa.select(RUN.c.aggregated_through, RUN.c.ledger_read_at))
        ).first()
        done, ledger_read = (run[0], run[1]) if run is not None else (None, None)
        first = (await conn.execute(sa.select(sa.func.min(EVENTS.c.occurred_at)))).scalar()
        ids = {
            sku: pid for pid, sku in await conn.execute(sa.select(PRODUCTS.c.id, PRODUCTS.c.sku))
        }
    days = rows = 0
    if first is not None:
        day = first.astimezone(UTC).date()
        if done is not None:
            day = max(day, done - timedelta(days=OVERLAP_DAYS - 1))
        running = await _ledger_totals(db, day)
        while day <= through:
            rows += await _aggregate_ledger_day(db, ids, day, running)
            days += 1
            if days % PROGRESS_DAYS == 0:  # a first run may backfill years of ledger
                log.info("inventory_aggregated", day=day.isoformat(), rows=rows)
            day += timedelta(days=1)
    read, covering_today, ledger_read = await rebuild_ledger_pools(
        db, ids, through, since=ledger_read
    )
    rows += read
    start = through if done is None else min(done, through) - timedelta(days=OVERLAP_DAYS - 1)
    start = max(start, through - timedelta(days=SALES_READ_DAYS - 1))
    sold = await _read_marketplace_sales(db, ids, sales or {}, start, now)
    rows += await _snapshot_marketplace_pools(db, ids, through, skip=covering_today, read=set(sold))
    for channel, units in sorted(sold.items()):
        rows += await _apply_marketplace_sales(db, channel, units, start)
    async with db.write() as conn:
        await _set_run(conn, aggregated_through=through, ledger_read_at=ledger_read)
    return {"through": through.isoformat(), "days": days, "rows": rows}


async def _set_run(conn: AsyncConnection, **values: Any) -> None:
    """Upsert the single ``inventory_run`` row."""
    updated = await conn.execute(sa.update(RUN).where(RUN.c.id == 1).values(**values))
    if updated.rowcount == 0:
        await conn.execute(sa.insert(RUN).values(id=1, skus=0, seconds=0.0, **values))


async def _ledger_totals(db: Database, day: date) -> dict[str, int]:
    """On hand per SKU at the start of ``day`` (the ledger's sum of earlier deltas)."""
    async with db.read() as conn:
        return {
            sku: int(total or 0)
            for sku, total in await conn.execute(
                sa.select(EVENTS.c.sku, sa.func.sum(EVENTS.c.delta))
                .where(EVENTS.c.occurred_at < _start_of(day))
                .group_by(EVENTS.c.sku)
            )
        }


async def _aggregate_ledger_day(
    db: Database, ids: Mapping[str, int], day: date, running: dict[str, int]
) -> int:
    """Rebuild the merchant pool's rows of ``day`` from the ledger; ``running`` (on hand per
    SKU at the start of the day) moves to its end. One grouped query, one transaction: the
    event loop is never held longer than one day's SKUs take."""
    sale = EVENTS.c.kind.in_(SALE_KINDS)
    query = (
        sa.select(
            EVENTS.c.sku,
            # An order's delta is minus what it took; its cancel gives that back.
            sa.func.sum(sa.case((sale, -EVENTS.c.delta), else_=0)),
            sa.func.sum(sa.case((sa.and_(~sale, EVENTS.c.delta > 0), EVENTS.c.delta), else_=0)),
            sa.func.sum(EVENTS.c.delta),
        )
        .where(
            # Every kind named, so the (kind, occurred_at) index serves the day's range.
            EVENTS.c.kind.in_([kind.value for kind in StockEventKind]),
            EVENTS.c.occurred_at >= _start_of(day),
            EVENTS.c.occurred_at < _start_of(day + timedelta(days=1)),
        )
        .group_by(EVENTS.c.sku)
    )
    async with db.write() as conn:
        rows = []
        for sku, sold, received, net in await conn.execute(query):
            running[sku] = running.get(sku, 0) + int(net or 0)
            if sku not in ids:
                continue
            rows.append(
                {
                    "product_id": ids[sku],
                    "pool": MERCHANT_POOL,
                    "day": day,
                    "sold": max(int(sold or 0), 0),
                    "received": int(received or 0),
                    "on_hand": max(running[sku], 0),
                    "inbound": None,
                }
            )
        await conn.execute(sa.delete(DAYS).where(DAYS.c.pool == MERCHANT_POOL, DAYS.c.day == day))
        await db.insert_many(conn, DAYS, rows)
        await _set_run(conn, aggregated_through=day)  # a crash resumes after this day
    return len(rows)


async def rebuild_ledger_pools(
    db: Database, ids: Mapping[str, int], through: date, *, since: datetime | None
) -> tuple[int, set[str], datetime | None]:
    """Rebuild each Amazon pool's rows from the stored Inventory Ledger, from the first day
    with events read after ``since`` (the newest read the last rebuild took in; None: every
    day); return the rows written, the channels whose ledger covers ``through``, and the
    newest read taken in now (the next run's ``since``).

    The pass never asks Amazon for the report: ``repricerd audit fba`` fetches and stores it
    (schedule it daily, e.g. from cron); a missing, FATAL or stale report only leaves days
    uncovered, and those keep the held-quantity inference.
    """
    async with db.read() as conn:
        # Each audit stores a report's rows in one transaction with one ``read_at``: a report
        # stored while this runs is either wholly before this mark or wholly after it.
        newest = (await conn.execute(sa.select(sa.func.max(LEDGER.c.read_at)))).scalar()
        fresh = (
            sa.select(LEDGER.c.channel, sa.func.min(LEDGER.c.day))
            .where(LEDGER.c.day <= through)
            .group_by(LEDGER.c.channel)
        )
        if since is not None:
            fresh = fresh.where(LEDGER.c.read_at > since, LEDGER.c.read_at <= newest)
        starts = {channel: day for channel, day in await conn.execute(fresh)}
        first = min([*starts.values(), through])
        covered: dict[str, set[date]] = {}
        # Only the days a rebuild needs, and today (the day index serves the range).
        days = (
            sa.select(LEDGER.c.channel, LEDGER.c.day)
            .where(LEDGER.c.day >= first, LEDGER.c.day <= through)
            .distinct()
        )
        for channel, day in await conn.execute(days):
            covered.setdefault(channel, set()).add(day)
    rows = 0
    for channel, start in sorted(starts.items()):
        rows += await _rebuild_ledger_pool(db, ids, channel, covered[channel], start, through)
        log.info("inventory_pool_read", pool=channel, since=start.isoformat(), rows=rows)
    covering = {channel for channel, days in covered.items() if through in days}
    return rows, covering, newest if newest is not None else since


async def _ledger_changes(
    db: Database,
    ids: Mapping[str, int],
    pool: str,
    start: date,
    through: date,
    skus: Sequence[str],
) -> dict[int, dict[date, tuple[int, int, int]]]:
    """Per product of ``skus`` and ledger day from ``start``: (units shipped, units entering
    the sellable stock, net sellable change). One chunk of products at a time: a first
    rebuild over 18 months of a 100,000-SKU ledger would not fit in memory at once."""
    sellable = LEDGER.c.disposition == SELLABLE
    counted = sa.and_(sellable, LEDGER.c.event_type != WAREHOUSE_TRANSFERS)
    shipped = sa.and_(sellable, LEDGER.c.event_type == SHIPMENTS)
    entering = sa.and_(counted, LEDGER.c.event_type != SHIPMENTS, LEDGER.c.quantity > 0)
    query = (
        sa.select(
            LEDGER.c.msku,
            LEDGER.c.day,
            sa.func.sum(sa.case((shipped, -LEDGER.c.quantity), else_=0)),
            sa.func.sum(sa.case((entering, LEDGER.c.quantity), else_=0)),
            sa.func.sum(sa.case((counted, LEDGER.c.quantity), else_=0)),
        )
        .where(
            LEDGER.c.channel == pool,
            LEDGER.c.msku.in_(skus),
            LEDGER.c.day >= start,
            LEDGER.c.day <= through,
        )
        .group_by(LEDGER.c.msku, LEDGER.c.day)
        .execution_options(yield_per=STREAM_ROWS)
    )
    events: dict[int, dict[date, tuple[int, int, int]]] = {}
    async with db.read() as conn:
        async for part in (await conn.stream(query)).partitions():
            for sku, day, sold, received, net in part:
                if sku in ids:
                    events.setdefault(ids[sku], {})[day] = (int(sold), int(received), int(net))
    return events


async def _rebuild_ledger_pool(
    db: Database,
    ids: Mapping[str, int],
    pool: str,
    covered: set[date],
    start: date,
    through: date,
) -> int:
    """Rewrite ``pool``'s rows from ``start`` on: ledger days read, other days re-inferred;
    ``CHUNK_SKUS`` products per transaction, computed in a worker thread."""
    held: dict[int, int] = {}
    async with db.read() as conn:
        for sku, units in await conn.execute(
            sa.select(LISTINGS.c.sku, LISTINGS.c.quantity).where(
                LISTINGS.c.channel == pool, LISTINGS.c.fulfillment == "marketplace"
            )
        ):
            if sku in ids:
                held[ids[sku]] = int(units or 0)
        # Amazon's own count, read with the ledger, is a steadier anchor than the listing's:
        # it does not move with today's sales until the next report is read.
        for sku, units in await conn.execute(
            sa.select(FBA_INVENTORY.c.sku, FBA_INVENTORY.c.afn_fulfillable).where(
                FBA_INVENTORY.c.channel == pool
            )
        ):
            if sku in ids:
                held[ids[sku]] = int(units)
    by_id = sorted((pid, sku) for sku, pid in ids.items())
    products = [pid for pid, _ in by_id]
    written = 0
    for lo in range(0, len(products), CHUNK_SKUS):
        first, last = products[lo], products[min(lo + CHUNK_SKUS, len(products)) - 1]
        skus = [sku for _, sku in by_id[lo : lo + CHUNK_SKUS]]
        chunk = await _ledger_changes(db, ids, pool, start, through, skus)
        mine = DAYS.c.product_id.between(first, last)
        base_query = _on_hand_before(pool, start, mine)
        async with db.write() as conn:
            readings: dict[int, list[tuple[date, int, int | None]]] = {}
            for pid, day, on_hand, inbound in await conn.execute(
                sa.select(DAYS.c.product_id, DAYS.c.day, DAYS.c.on_hand, DAYS.c.inbound)
                .where(DAYS.c.pool == pool, mine, DAYS.c.day >= start)
                .order_by(DAYS.c.product_id, DAYS.c.day)
            ):
                readings.setdefault(pid, []).append((day, int(on_hand), inbound))
            if not chunk and not readings:
                continue
            base = {pid: int(on_hand) for pid, on_hand in await conn.execute(base_query)}
            rows = await asyncio.to_thread(
                ledger_pool_rows, pool, covered, chunk, readings, base, held
            )
            await conn.execute(
                sa.delete(DAYS).where(DAYS.c.pool == pool, mine, DAYS.c.day >= start)
            )
            await db.insert_many(conn, DAYS, rows)
        written += len(rows)
    return written


def _on_hand_before(pool: str, start: date, products: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """(product, on hand) of each of ``products``' last row in ``pool`` before ``start``."""
    latest = (
        sa.select(DAYS.c.product_id, sa.func.max(DAYS.c.day).label("day"))
        .where(DAYS.c.pool == pool, products, DAYS.c.day < start)
        .group_by(DAYS.c.product_id)
        .subquery()
    )
    return sa.select(DAYS.c.product_id, DAYS.c.on_hand).join(
        latest,
        sa.and_(
            DAYS.c.pool == pool,
            DAYS.c.product_id == latest.c.product_id,
            DAYS.c.day == latest.c.day,
        ),
    )


def ledger_pool_rows(
    pool: str,
    covered: set[date],
    events: Mapping[int, Mapping[date, tuple[int, int, int]]],
    readings: Mapping[int, Sequence[tuple[date, int, int | None]]],
    base: Mapping[int, int],
    held: Mapping[int, int],
) -> list[dict[str, Any]]:
    """One pool's rows over a span: per product, ``events`` (day → sold, received, net sellable
    change) on the ledger's ``covered`` days, the stored ``readings`` (day, on hand, inbound)
    kept on the other days and re-inferred from the row before, ``base`` the on hand before
    the span (absent: the pool did not know the product yet) and ``held`` the quantity the
    marketplace last said it holds (its inventory report, else the listing)."""
    rows: list[dict[str, Any]] = []
    for pid in sorted(set(events) | set(readings)):
        read = events.get(pid, {})
        kept = {
            d: (units, inbound) for d, units, inbound in readings.get(pid, ()) if d not in covered
        }
        days = sorted(set(read) | set(kept))
        level = base.get(pid)
        if level is None and days and days[0] not in kept:
            level = _opening(read, held.get(pid))
        for day in days:
            if day in kept:
                units, inbound = kept[day]
                sold = 0 if level is None else max(level - units, 0)
                received = units if level is None else max(units - level, 0)
                level = units
            else:
                sold, received, net = read[day]
                sold, inbound = max(sold, 0), None
                level = max((level or 0) + net, 0)
            rows.append(
                {
                    "product_id": pid,
                    "pool": pool,
                    "day": day,
                    "sold": sold,
                    "received": received,
                    "on_hand": level,
                    "inbound": inbound,
                }
            )
    return rows


def _opening(read: Mapping[date, tuple[int, int, int]], held: int | None) -> int:
    """On hand before a product's first ledger day in a pool that did not know it (the report
    may begin after the first units came): what makes the ledger's changes end at the quantity
    last held, never less than the least level those changes never take below zero. Only
    outside facts (the ledger, the reports, the listing): a rebuild of the same is the same."""
    change = lowest = 0
    for day in sorted(read):
        change += read[day][2]
        lowest = min(lowest, change)
    return max(-lowest, (held or 0) - change)


async def _fba_inbound(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """(channel, sku) → units on their way to Amazon (the latest inventory snapshot)."""
    query = sa.select(FBA_INVENTORY.c.channel, FBA_INVENTORY.c.sku, INBOUND_UNITS)
    return {(channel, sku): int(n or 0) for channel, sku, n in await conn.execute(query)}


async def _snapshot_marketplace_pools(
    db: Database,
    ids: Mapping[str, int],
    through: date,
    *,
    skip: set[str],
    read: set[str],
) -> int:
    """Record each marketplace-held quantity (and an Amazon pool's inbound) as its pool's end
    of ``through`` when it moved; pools in ``skip`` have ``through`` read from their ledger,
    pools in ``read`` have their sales read from the marketplace's orders next."""
    async with db.write() as conn:
        inbound = await _fba_inbound(conn)
        held = [
            (channel, ids[sku], int(quantity or 0), inbound.get((channel, sku)))
            for channel, sku, quantity in await conn.execute(
                sa.select(LISTINGS.c.channel, LISTINGS.c.sku, LISTINGS.c.quantity).where(
                    LISTINGS.c.fulfillment == "marketplace"
                )
            )
            if sku in ids and channel not in skip
        ]
        pools = sorted({channel for channel, _, _, _ in held})
        previous: dict[tuple[str, int], tuple[int, int | None]] = {}
        if pools:
            latest = (
                sa.select(DAYS.c.pool, DAYS.c.product_id, sa.func.max(DAYS.c.day).label("day"))
                .where(DAYS.c.pool.in_(pools), DAYS.c.day < through)
                .group_by(DAYS.c.pool, DAYS.c.product_id)
                .subquery()
            )
            query = sa.select(DAYS.c.pool, DAYS.c.product_id, DAYS.c.on_hand, DAYS.c.inbound).join(
                latest,
                sa.and_(
                    DAYS.c.pool == latest.c.pool,
                    DAYS.c.product_id == latest.c.product_id,
                    DAYS.c.day == latest.c.day,
                ),
            )
            previous = {
                (p, pid): (int(units), coming)
                for p, pid, units, coming in await conn.execute(query)
            }
        rows = []
        for channel, pid, units, coming in held:
            before, came = previous.get((channel, pid), (None, None))
            if before == units and (coming or 0) == (came or 0):  # unknown inbound: none seen
                continue
            rows.append(
                {
                    "product_id": pid,
                    "pool": channel,
                    "day": through,
                    # A first reading is a receipt: the units arrived before we could see them.
                    "sold": max((before or 0) - units, 0),
                    "received": max(units - (before or 0), 0),
                    "on_hand": units,
                    "inbound": coming,
                }
            )
        if inferred := [pool for pool in pools if pool not in read]:
            # Today's marketplace sales not read from a report: inferred from the held quantity.
            log.info("inventory_pools_inferred", pools=inferred, day=through.isoformat())
        if pools:
            await conn.execute(sa.delete(DAYS).where(DAYS.c.pool.in_(pools), DAYS.c.day == through))
        await db.insert_many(conn, DAYS, rows)
    return len(rows)


async def _read_marketplace_sales(
    db: Database,
    ids: Mapping[str, int],
    readers: Mapping[str, SalesReader],
    start: date,
    now: datetime,
) -> dict[str, dict[tuple[int, date], int]]:
    """Per channel holding marketplace-fulfilled listings that ``readers`` can read: units
    sold per (product, order day) from ``start`` through today, cancelled lines left out.
    One read per channel and run; a channel whose read fails is left out (its pool stays
    inferred from the held quantity): the pass never fails on a marketplace."""
    async with db.read() as conn:
        held = {
            channel
            for (channel,) in await conn.execute(
                sa.select(LISTINGS.c.channel)
                .where(LISTINGS.c.fulfillment == "marketplace")
                .distinct()
            )
        }
    sold: dict[str, dict[tuple[int, date], int]] = {}
    for channel in sorted(held & set(readers)):
        try:
            lines = await readers[channel](_start_of(start), now)
        except Exception as err:  # any failure: keep the inference, go on
            log.warning(
                "inventory_pools_inferred",
                pools=[channel],
                since=start.isoformat(),
                error=type(err).__name__,
                detail=str(err),
            )
            continue
        units: dict[tuple[int, date], int] = {}
        for line in lines:
            day = line.ordered_at.astimezone(UTC).date()
            if not line.cancelled and line.sku in ids and day >= start:
                key = (ids[line.sku], day)
                units[key] = units.get(key, 0) + line.quantity
        sold[channel] = units
        log.info(
            "inventory_pool_sales_read", pool=channel, since=start.isoformat(), lines=len(lines)
        )
    return sold


async def _apply_marketplace_sales(
    db: Database, pool: str, sold: Mapping[tuple[int, date], int], start: date
) -> int:
    """Rewrite ``pool``'s rows from ``start`` with the units its orders say were sold: on hand
    stays the held quantity recorded (a day with sales but no row kept the row before's), and
    received is what makes the day add up. A day before the pool knew the product is left
    out, as the inference leaves it. Nothing here touches the stock ledger."""
    async with db.write() as conn:
        level = {
            pid: int(units)
            for pid, units in await conn.execute(_on_hand_before(pool, start, sa.true()))
        }
        kept: dict[int, dict[date, tuple[int, int | None]]] = {}
        for pid, day, units, inbound in await conn.execute(
            sa.select(DAYS.c.product_id, DAYS.c.day, DAYS.c.on_hand, DAYS.c.inbound).where(
                DAYS.c.pool == pool, DAYS.c.day >= start
            )
        ):
            kept.setdefault(pid, {})[day] = (int(units), inbound)
        sale_days: dict[int, set[date]] = {}
        for pid, day in sold:
            sale_days.setdefault(pid, set()).add(day)
        rows = []
        for pid in sorted(kept.keys() | sale_days.keys()):
            before = level.get(pid)
            days = sorted(kept.get(pid, {}).keys() | sale_days.get(pid, set()))
            for day in days:
                row = kept.get(pid, {}).get(day)
                if row is None and before is None:
                    continue  # the pool did not know the product yet
                units, inbound = row if row is not None else (before or 0, None)
                sales = sold.get((pid, day), 0)
                rows.append(
                    {
                        "product_id": pid,
                        "pool": pool,
                        "day": day,
                        "sold": sales,
                        # A first reading is a receipt, as in the inference.
                        "received": max(units - (before or 0) + sales, 0),
                        "on_hand": units,
                        "inbound": inbound,
                    }
                )
                before = units
        await conn.execute(sa.delete(DAYS).where(DAYS.c.pool == pool, DAYS.c.day >= start))
        await db.insert_many(conn, DAYS, rows)
    return len(rows)


# --- 2-5. forecast, restock, health (pure, in a worker thread) ----------------------------------


@dataclass
class Series:
    """One SKU's rows in one pool, oldest first: (day, sold, received, on hand)."""

    pool: str
    rows: list[tuple[date, int, int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class ProductTerms:
    """What the catalogue says about one SKU's supply and storage."""

    product_id: int
    sku: str
    lead_time_days: int
    moq: int
    case_pack: int
    supplier: str | None
    unit_volume_cuft: Decimal | None
    size_tier: str
    unit_cost: Decimal | None


@dataclass(frozen=True)
class Computed:
    """The rows one chunk writes, and its crossings."""

    restock: list[dict[str, Any]]
    health: list[dict[str, Any]]
    crossed: list[tuple[str, int, Decimal | None]]


def build_history(
    series: Sequence[Sequence[Series]], start: date, days: int
) -> tuple[History, list[dict[str, np.ndarray[Any, Any]]]]:
    """Sales and in-stock matrices (SKU × day from ``start``) from each SKU's pools, and per
    SKU and pool the end-of-day on hand over the window (NaN where unknown)."""
    n = len(series)
    sales = np.zeros((n, days))
    start_units = np.zeros((n, days))
    end_units = np.zeros((n, days))
    known = np.zeros((n, days), dtype=bool)
    grid = np.arange(days)
    pools_oh: list[dict[str, np.ndarray[Any, Any]]] = []
    for i, pools in enumerate(series):
        mine: dict[str, np.ndarray[Any, Any]] = {}
        for s in pools:
            if not s.rows:
                continue
            index = np.asarray([(r[0] - start).days for r in s.rows])
            hand = np.asarray([r[3] for r in s.rows], dtype=np.float64)
            last = np.searchsorted(index, grid, side="right") - 1
            before = np.searchsorted(index, grid - 1, side="right") - 1
            end_oh = np.where(last >= 0, hand[np.maximum(last, 0)], np.nan)
            start_oh = np.where(before >= 0, hand[np.maximum(before, 0)], 0.0)
            inside = (index >= 0) & (index < days)
            np.add.at(sales[i], index[inside], np.asarray([r[1] for r in s.rows])[inside])
            known[i] |= last >= 0
            end_units[i] += np.nan_to_num(end_oh)
            start_units[i] += start_oh
            mine[s.pool] = end_oh
        pools_oh.append(mine)
    in_stock = known & ((start_units > 0) | (end_units > 0) | (sales > 0))
    return History(start, sales, in_stock), pools_oh


def _pool_demand(
    total_sold_90: int, pool_sold_90: int, units: int, all_units: int, daily: float
) -> float:
    """The pool's share of the SKU's forecast: by its 90-day sales, else by its units."""
    if total_sold_90 > 0:
        return daily * pool_sold_90 / total_sold_90
    return daily * units / all_units if all_units > 0 else 0.0


def compute_chunk(
    terms: Sequence[ProductTerms],
    rows: Sequence[Any],
    previous_cover: Mapping[str, Decimal | None],
    active: Mapping[tuple[str, str], bool],
    *,
    through: date,
    settings: InventorySettings,
    tables: Sequence[FeeTable],
    now: datetime,
    inbound: Mapping[str, int] | None = None,
) -> Computed:
    """Forecast, plan and judge one chunk of SKUs from its ``inventory_day`` rows and the units
    ``inbound`` to a marketplace per SKU (pure; runs in a worker thread)."""
    series = group_series(terms, rows)
    today = through  # today's provisional rows count for stock, not for the forecast
    days = settings.history_days
    start = today - timedelta(days=days)
    history, pools_oh = build_history(series, start, days)
    fc = forecast(history, ForecastSettings(fit_days=days))
    daily = fc.daily()
    restock: list[dict[str, Any]] = []
    health: list[dict[str, Any]] = []
    crossed: list[tuple[str, int, Decimal | None]] = []
    # The last 90 complete days and today so far.
    recent = through - timedelta(days=SELL_THROUGH_DAYS)
    for i, (t, pools) in enumerate(zip(terms, series, strict=True)):
        units = {s.pool: s.rows[-1][3] for s in pools if s.rows}
        coming = (inbound or {}).get(t.sku, 0)
        demand = float(daily[i])
        result = plan(
            RestockItem(
                sku=t.sku,
                on_hand=sum(units.values()),
                inbound=coming,
                daily_demand=demand,
                sigma=float(fc.sigma[i]),
                lead_time_days=t.lead_time_days,
                moq=t.moq,
                case_pack=t.case_pack,
                supplier=t.supplier,
                unit_cost=t.unit_cost,
            ),
            today=today,
            target_cover_days=settings.target_cover_days,
            service_level=settings.service_level,
        )
        before = previous_cover.get(t.sku)
        for threshold in crossings(before, result.days_of_supply, settings.restock_alert_days):
            crossed.append((t.sku, threshold, result.days_of_supply))
        restock.append(
            {
                "sku": t.sku,
                "supplier": t.supplier,
                "on_hand": sum(units.values()),
                "on_hand_pools": units,
                "inbound": coming,
                "daily_demand": round(demand, 4),
                "sigma": round(float(fc.sigma[i]), 4),
                "demand_class": int(fc.demand_class[i]),
                "days_of_supply": result.days_of_supply,
                "lead_time_days": t.lead_time_days,
                "safety_stock": result.safety_stock,
                "reorder_point": result.reorder_point,
                "order_quantity": result.order_quantity,
                "order_by": result.order_by,
                "order_value": result.order_value,
                "forecast_start": today,
                "computed_at": now,
            }
        )
        sold_90 = {s.pool: sum(r[1] for r in s.rows if r[0] >= recent) for s in pools if s.rows}
        total_90 = sum(sold_90.values())
        for s in pools:
            if not s.rows or (units[s.pool] <= 0 and sold_90[s.pool] <= 0):
                continue
            health.append(
                _health_row(
                    t,
                    s,
                    units,
                    sold_90,
                    total_90,
                    demand,
                    pools_oh[i].get(s.pool),
                    active,
                    through=through,
                    settings=settings,
                    tables=tables,
                    now=now,
                )
            )
    return Computed(restock, health, crossed)


def _health_row(
    t: ProductTerms,
    s: Series,
    units: Mapping[str, int],
    sold_90: Mapping[str, int],
    total_90: int,
    demand: float,
    end_oh: np.ndarray[Any, Any] | None,
    active: Mapping[tuple[str, str], bool],
    *,
    through: date,
    settings: InventorySettings,
    tables: Sequence[FeeTable],
    now: datetime,
) -> dict[str, Any]:
    """One SKU's health in one pool."""
    receipts: list[tuple[date, int]] = []
    outflows: list[tuple[date, int]] = []
    held = 0
    for day, _sold, received, on_hand in s.rows:
        receipts.append((day, received))
        # Sales and whatever else left (removals, losses, a lower count): the balance says.
        outflows.append((day, max(held + received - on_hand, 0)))
        held = on_hand
    lots = fifo_lots(receipts, outflows, through)
    buckets = age_buckets(lots, through)
    here = units[s.pool]
    pool_demand = _pool_demand(total_90, sold_90[s.pool], here, sum(units.values()), demand)
    window = np.zeros(0) if end_oh is None else end_oh[-SELL_THROUGH_DAYS:]
    readings = [int(v) for v in window[~np.isnan(window)]]
    offer = active.get((t.sku, s.pool), False)
    fee_total: Decimal | None = None
    months: list[dict[str, Any]] = []
    if s.pool != MERCHANT_POOL and t.unit_volume_cuft is not None:
        try:
            fees = forecast_storage_fees(
                lots,
                daily_demand=pool_demand,
                unit_volume_cuft=t.unit_volume_cuft,
                size_tier=t.size_tier,
                today=through,
                months=FEE_MONTHS,
                tables=tables,
            )
        except (KeyError, LookupError) as err:
            log.warning("storage_fee_unknown", sku=t.sku, pool=s.pool, error=str(err))
        else:
            fee_total = sum((m.total for m in fees), Decimal(0))
            months = [
                {
                    "month": m.month.isoformat()[:7],
                    "units": m.units,
                    "storage": str(m.storage),
                    "aged_surcharge": str(m.aged_surcharge),
                }
                for m in fees
            ]
    return {
        "sku": t.sku,
        "pool": s.pool,
        "on_hand": here,
        "age_0_90": buckets.days_0_90,
        "age_91_180": buckets.days_91_180,
        "age_181_270": buckets.days_181_270,
        "age_271_365": buckets.days_271_365,
        "age_365_plus": buckets.days_365_plus,
        "excess_units": excess_units(here, pool_demand, settings.target_cover_days),
        "units_sold_90d": sold_90[s.pool],
        "sell_through": sell_through(sold_90[s.pool], average_on_hand(readings)),
        "stranded_units": stranded_units({s.pool: here}, {s.pool: offer}),
        "storage_fee_3m": fee_total,
        "fee_months": months,
        "computed_at": now,
    }


# --- the pass -----------------------------------------------------------------------------------


async def _product_terms(conn: AsyncConnection) -> list[ProductTerms]:
    """Every stocked product (kits hold no stock of their own), in id order."""
    query = (
        sa.select(
            PRODUCTS.c.id,
            PRODUCTS.c.sku,
            PRODUCTS.c.lead_time_days,
            PRODUCTS.c.moq,
            PRODUCTS.c.case_pack,
            PRODUCTS.c.supplier,
            PRODUCTS.c.unit_volume_cuft,
            PRODUCTS.c.size_tier,
            PRODUCTS.c.cost,
        )
        .where(sa.cast(PRODUCTS.c.kit_components, sa.Text) == "{}")
        .order_by(PRODUCTS.c.id)
    )
    return [
        ProductTerms(
            product_id=r.id,
            sku=r.sku,
            lead_time_days=DEFAULT_LEAD_TIME_DAYS if r.lead_time_days is None else r.lead_time_days,
            moq=r.moq or DEFAULT_MOQ,
            case_pack=r.case_pack or DEFAULT_CASE_PACK,
            supplier=r.supplier,
            unit_volume_cuft=r.unit_volume_cuft,
            size_tier=r.size_tier or DEFAULT_SIZE_TIER,
            unit_cost=r.cost,
        )
        for r in await conn.execute(query)
    ]


async def _offer_activity(conn: AsyncConnection) -> dict[tuple[str, str], bool]:
    """(sku, pool) → whether an active offer sells that pool's units."""
    active: dict[tuple[str, str], bool] = {}
    query = sa.select(LISTINGS.c.channel, LISTINGS.c.sku, LISTINGS.c.fulfillment, LISTINGS.c.status)
    for channel, sku, fulfillment, status in await conn.execute(query):
        pool = channel if fulfillment == "marketplace" else MERCHANT_POOL
        active[(sku, pool)] = active.get((sku, pool), False) or status == "active"
    return active


async def _chunk_inputs(
    conn: AsyncConnection, chunk: Sequence[ProductTerms]
) -> tuple[Sequence[Any], dict[str, Decimal | None], dict[str, int]]:
    """Every aggregate row of the chunk's products, their last stored cover, and their units
    inbound to Amazon in every channel (the latest inventory snapshot)."""
    query = (
        sa.select(
            DAYS.c.product_id,
            DAYS.c.pool,
            DAYS.c.day,
            DAYS.c.sold,
            DAYS.c.received,
            DAYS.c.on_hand,
        )
        .where(DAYS.c.product_id.between(chunk[0].product_id, chunk[-1].product_id))
        .order_by(DAYS.c.product_id, DAYS.c.pool, DAYS.c.day)
        .execution_options(yield_per=STREAM_ROWS)
    )
    rows: list[Any] = []
    # Streamed in parts: converting ~100,000 rows at once would hold the event loop ~0.5 s.
    async for part in (await conn.stream(query)).partitions():
        rows.extend(part)
    cover = {
        sku: value
        for sku, value in await conn.execute(
            sa.select(RESTOCK.c.sku, RESTOCK.c.days_of_supply).where(
                RESTOCK.c.sku.in_([t.sku for t in chunk])
            )
        )
    }
    inbound = {
        sku: int(n or 0)
        for sku, n in await conn.execute(
            sa.select(FBA_INVENTORY.c.sku, sa.func.sum(INBOUND_UNITS))
            .where(FBA_INVENTORY.c.sku.in_([t.sku for t in chunk]))
            .group_by(FBA_INVENTORY.c.sku)
        )
    }
    return rows, cover, inbound


def group_series(terms: Sequence[ProductTerms], rows: Sequence[Any]) -> list[list[Series]]:
    """Each product's rows by pool (rows ordered by product, pool and day)."""
    position = {t.product_id: i for i, t in enumerate(terms)}
    by_pool: list[dict[str, Series]] = [{} for _ in terms]
    for pid, pool, day, sold, received, on_hand in rows:
        i = position.get(pid)
        if i is not None:
            by_pool[i].setdefault(pool, Series(pool)).rows.append((day, sold, received, on_hand))
    return [list(p.values()) for p in by_pool]


def _log_crossings(crossed: Sequence[tuple[str, int, Decimal | None]], digest_over: int) -> None:
    """One warning per threshold crossed, or above ``digest_over`` of them (a first run on a
    large catalogue) one warning counting them, with the lowest covers."""
    if len(crossed) <= digest_over:
        for sku, threshold, days_of_supply in crossed:
            log.warning(
                "restock_threshold_crossed",
                sku=sku,
                threshold_days=threshold,
                days_of_supply=str(days_of_supply),
            )
        return
    below: dict[int, int] = {}
    for _, threshold, _ in crossed:
        below[threshold] = below.get(threshold, 0) + 1
    lowest = sorted({(cover or Decimal(0), sku) for sku, _, cover in crossed})[:DIGEST_SKUS]
    log.warning(
        "restock_thresholds_crossed",
        crossings=len(crossed),
        skus=len({sku for sku, _, _ in crossed}),
        below={str(days): n for days, n in sorted(below.items())},
        lowest=[f"{sku} ({cover} d)" for cover, sku in lowest],
    )


async def run_inventory(
    db: Database,
    clock: Clock,
    settings: InventorySettings,
    sales: Mapping[str, SalesReader] | None = None,
) -> dict[str, Any]:
    """The whole pass; return its summary (SKUs planned, to order, crossings, timings).
    ``sales``: per channel, its marketplace-fulfilled order lines (``aggregate``)."""
    started = time.perf_counter()
    now = clock.now()
    aggregated = await aggregate(db, now, sales)
    through = date.fromisoformat(aggregated["through"])
    async with db.read() as conn:
        terms = await _product_terms(conn)
        active = await _offer_activity(conn)
    tables = settings.fee_tables()
    to_order = 0
    crossed: list[tuple[str, int, Decimal | None]] = []
    for lo in range(0, len(terms), CHUNK_SKUS):
        chunk = terms[lo : lo + CHUNK_SKUS]
        async with db.read() as conn:
            rows, cover, inbound = await _chunk_inputs(conn, chunk)
        computed = await asyncio.to_thread(
            compute_chunk,
            chunk,
            rows,
            cover,
            active,
            through=through,
            settings=settings,
            tables=tables,
            now=now,
            inbound=inbound,
        )
        skus = [t.sku for t in chunk]
        async with db.write() as conn:
            await conn.execute(sa.delete(RESTOCK).where(RESTOCK.c.sku.in_(skus)))
            await conn.execute(sa.delete(HEALTH).where(HEALTH.c.sku.in_(skus)))
            await db.insert_many(conn, RESTOCK, computed.restock)
            await db.insert_many(conn, HEALTH, computed.health)
        crossed.extend(computed.crossed)
        to_order += sum(1 for r in computed.restock if r["order_quantity"] > 0)
        log.info("inventory_progress", done=lo + len(chunk), total=len(terms))
    _log_crossings(crossed, settings.restock_alert_digest_over)
    crossed_total = len(crossed)
    async with db.write() as conn:
        # Products gone from the catalogue (or turned into kits) leave no stale plan behind.
        await conn.execute(sa.delete(RESTOCK).where(RESTOCK.c.computed_at < now))
        await conn.execute(sa.delete(HEALTH).where(HEALTH.c.computed_at < now))
        seconds = round(time.perf_counter() - started, 3)
        await _set_run(conn, finished_at=now, skus=len(terms), seconds=seconds)
    return {
        "aggregated": aggregated,
        "skus": len(terms),
        "to_order": to_order,
        "crossings": crossed_total,
        "seconds": seconds,
    }
