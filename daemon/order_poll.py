"""The orders poll of one channel: the fallback for order webhooks that never came.

``orders_channel`` lists a channel's orders since its watermark and applies each through the same
idempotent path as order webhooks (``daemon.stock.apply_order``: once per channel, order and SKU),
so a poll and a webhook of one order apply once whichever comes first. The ``orders`` pass in
``daemon.passes`` runs it on every channel, then publishes the SKUs that moved.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import sqlalchemy as sa
import structlog

from connectors.base import Channel, PollsOrders
from daemon.controls import STATE, upsert_channel_state
from daemon.db.failures import blames_database, error_line
from daemon.db.models import StockEvent, StockEventKind
from daemon.event_checks import event_problem, printable
from daemon.reports import OrdersReport, Skipped
from daemon.runtime import Runtime
from daemon.snapshots import SkuSelection
from daemon.stock import apply_order, load_kits

EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
# The poll re-reads this much before the newest order event it holds: an order updated just
# before it (a webhook still on its way, a clock a little off) is not skipped.
ORDER_POLL_OVERLAP: Final = timedelta(minutes=10)
log = structlog.get_logger("repricerd.orders")


async def order_watermark(rt: Runtime, channel: str) -> datetime:
    """Where the orders poll of ``channel`` starts: where its last complete poll started, minus
    the overlap. Not the newest order a webhook brought: after an outage the first webhooks
    would move it past the orders nobody delivered. Before any poll: the newest order or cancel
    of that channel in the ledger minus the overlap; with none yet, ``orders_lookback`` ago, but
    never before the ledger's first event: an order older than the stock counts the ledger began
    with is already in them (a fresh install must not take the last day's sales off again)."""
    async with rt.db.read() as conn:
        polled = (
            await conn.execute(
                sa.select(STATE.c.orders_polled_at).where(STATE.c.channel == channel)
            )
        ).scalar_one_or_none()
        if polled is not None:
            last: datetime = polled
            return last - ORDER_POLL_OVERLAP
        newest = (
            await conn.execute(
                sa.select(sa.func.max(EVENTS.c.occurred_at)).where(
                    EVENTS.c.channel == channel,
                    EVENTS.c.kind.in_([StockEventKind.ORDER.value, StockEventKind.CANCEL.value]),
                )
            )
        ).scalar_one_or_none()
        began = None
        if newest is None:
            began = (
                await conn.execute(sa.select(sa.func.min(EVENTS.c.recorded_at)))
            ).scalar_one_or_none()
    if newest is not None:
        moment: datetime = newest
        return moment - ORDER_POLL_OVERLAP
    since: datetime = rt.clock.now() - rt.settings.schedule.orders_lookback
    return since if began is None else max(since, began)


async def orders_channel(
    rt: Runtime, channel: Channel, pass_id: str, selection: SkuSelection
) -> OrdersReport | Skipped:
    """Poll one channel's orders since its watermark and apply each once (the fallback for
    order webhooks that never came); report the SKUs whose availability moved."""
    if not isinstance(channel, PollsOrders):
        return Skipped("the channel cannot list its orders")
    since = await order_watermark(rt, channel.name)
    started = rt.clock.now()
    events = await channel.fetch_orders(since)
    applied = duplicates = ignored = invalid = 0
    moved: set[str] = set()
    if events:
        async with rt.db.read() as conn:
            kits = await load_kits(conn)
        for event in events:
            if (problem := event_problem(event)) is not None:
                # Skipped, not retried: the same absurd order would stop every later poll.
                invalid += 1
                log.error("order_invalid", channel=channel.name, reason=problem.reason)
                continue
            try:
                outcome = await apply_order(
                    rt.db, kits, channel=channel.name, event=event, now=rt.clock.now()
                )
            except Exception as err:
                if blames_database(err):
                    raise  # the poll fails and its watermark stays: retried on the next poll
                invalid += 1  # refused for its data: it must not stop every later poll
                reason = "database: " + printable(error_line(err))
                log.error(
                    "order_invalid", channel=channel.name, order=event.order_id, reason=reason
                )
                continue
            if outcome.unknown:
                rt.metrics.unknown_sku_lines.labels(channel.name).inc(len(outcome.unknown))
            if outcome.applied:
                applied += 1
                moved |= kits.affected(outcome.skus)
            elif outcome.duplicate:
                duplicates += 1  # seen already (its webhook, or an earlier poll)
            else:
                ignored += 1  # nothing in the catalogue (custom items, gift cards, unknown SKUs)
    # Every order up to ``started`` is in the ledger now; a failure above leaves the watermark.
    await upsert_channel_state(
        rt.db, channel.name, {"orders_polled_at": started, "updated_at": rt.clock.now()}
    )
    if applied:
        log.warning("orders_applied_from_poll", applied=applied, skus=sorted(moved))
    return OrdersReport(
        since=since.isoformat(),
        polled=len(events),
        applied=applied,
        duplicates=duplicates,
        ignored=ignored,
        invalid=invalid,
        skus=sorted(moved),
    )
