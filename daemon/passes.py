"""The periodic passes (reprice, stock sync, reconcile, offers and orders polls) and start-up
re-drive of open intents."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, Final

import sqlalchemy as sa
import structlog

from connectors.base import Channel, ReadsMarketplaceSales
from daemon.controls import (
    breaker_armed,
    health_of,
    record_health,
    trip_breaker,
    write_block_reason,
)
from daemon.db.models import ALL_CHANNELS, Action, ActionKind, Listing
from daemon.inventory_pass import run_inventory
from daemon.listings import refresh_listings, verify_accepted
from daemon.order_poll import orders_channel
from daemon.pricing import load_inputs, plan_and_record
from daemon.reports import (
    Failed,
    NoListings,
    OffersReport,
    OrdersReport,
    PassReport,
    ReconcileReport,
    RepriceReport,
    Skipped,
    StockReport,
    reports_json,
)
from daemon.runtime import Runtime
from daemon.snapshots import (
    SkuSelection,
    by_sku,
    competition_fingerprint,
    latest_fingerprints,
    load_listing_rows,
    recent_observations,
    store_observations,
)
from daemon.status import record_pass_success
from daemon.stock_pass import load_stock_view, publish_stock, stock_channel
from domain.offers import OfferObservation

LISTINGS = Listing.__table__  # type: ignore[attr-defined]
ACTIONS = Action.__table__  # type: ignore[attr-defined]
HEALTH_REFRESH_S: Final = 30.0
INVENTORY: Final = "inventory"
PASS_NAMES: Final = ("reprice", "stock_sync", "reconcile", "offers", "orders", INVENTORY)
log = structlog.get_logger("repricerd.passes")

ChannelStep = Callable[[Runtime, Channel, str, SkuSelection], Awaitable[PassReport]]


async def _each_channel(
    rt: Runtime,
    name: str,
    step: ChannelStep,
    pass_id: str,
    channels: Sequence[str],
    selection: SkuSelection,
) -> dict[str, PassReport]:
    """Run ``step`` (of pass ``name``) for every selected channel concurrently; one channel's
    failure is its own (its report is ``Failed``)."""

    async def guarded(channel: Channel) -> PassReport:
        structlog.contextvars.bind_contextvars(channel=channel.name)
        try:
            # Its own task: losing the channel's lease cancels this step, not the others.
            result = await rt.owned_work(channel.name, step(rt, channel, pass_id, selection))
            if result is None:
                return Skipped("lease lost: another replica owns the channel now")
        except asyncio.CancelledError:
            raise
        except Exception as err:
            log.exception("channel_pass_failed", error=str(err))
            await record_health(
                rt.db,
                rt.clock,
                channel=channel.name,
                error=f"{type(err).__name__}: {err}",
                health=health_of(err),
            )
            rt.health_written.pop(channel.name, None)  # the next success is recorded at once
            return Failed(f"{type(err).__name__}: {err}")
        last = rt.health_written.get(channel.name)
        if last is None or rt.clock.monotonic() - last >= HEALTH_REFRESH_S:
            await record_health(rt.db, rt.clock, channel=channel.name, error=None)
            rt.health_written[channel.name] = rt.clock.monotonic()
        await _record_success(rt, channel.name, name, result)
        return result

    selected = rt.selected(tuple(channels))
    results = await asyncio.gather(*(guarded(ch) for ch in selected))
    return {ch.name: result for ch, result in zip(selected, results, strict=True)}


async def _record_success(rt: Runtime, channel: str, name: str, result: PassReport) -> None:
    """Persist the pass's success on the channel for status, at most every HEALTH_REFRESH_S
    (event-driven passes run many times a second). A step skipped (paused) did not succeed."""
    if isinstance(result, Skipped):
        return
    key = (channel, name)
    last = rt.success_written.get(key)
    if last is None or rt.clock.monotonic() - last >= HEALTH_REFRESH_S:
        await record_pass_success(rt.db, rt.clock, channel=channel, pass_name=name)
        rt.success_written[key] = rt.clock.monotonic()


async def reprice_channel(
    rt: Runtime, channel: Channel, pass_id: str, selection: SkuSelection
) -> RepriceReport | Skipped | NoListings:
    """Decide every listing of one channel, record the decisions and send the changes."""
    async with rt.reprice_locks.setdefault(channel.name, asyncio.Lock()):
        return await _reprice_channel(rt, channel, pass_id, selection)


async def _reprice_channel(
    rt: Runtime, channel: Channel, pass_id: str, selection: SkuSelection
) -> RepriceReport | Skipped | NoListings:
    async with rt.db.read() as conn:
        blocked = await write_block_reason(conn, channel.name)
        armed = await breaker_armed(conn, channel.name, rt.clock.now())
    if blocked:
        # Nothing would be sent; deciding anyway would log a fresh intent per listing per pass.
        # `repricerd simulate` shows what the pass would do.
        return Skipped(blocked)
    rows = await load_listing_rows(rt.db, channel.name, selection)
    if not rows:
        return NoListings()
    observations = await current_offers(rt, channel, [row.sku for row in rows], selection)
    pricing = rt.settings.pricing
    inputs = await load_inputs(
        rt.db,
        channel=channel.name,
        now=rt.clock.now(),
        pricing=pricing,
        observations=observations,
        own_seller_ids=rt.own_seller_ids(),
        skus=selection if isinstance(selection, frozenset) else None,
    )
    total = len(rows) if selection is None else await count_listings(rt.db, channel.name)
    counts, tripped = await plan_and_record(
        rt.outbox,
        rows,
        channel=channel.name,
        pass_id=pass_id,
        pricing=pricing,
        inputs=inputs,
        breaker_armed=armed,
        channel_total=total,
        window=rt.breaker_window,
    )
    if tripped:
        log.error("breaker_tripped", reason=tripped)
        await trip_breaker(rt.db, rt.clock, channel=channel.name, reason=tripped)
    sent = await rt.outbox.dispatch(channel, ActionKind.PRICE)
    recorded = counts.pop("recorded")
    return RepriceReport(
        listings=len(rows), decisions=counts, recorded=recorded, breaker=tripped, dispatch=sent
    )


async def count_listings(db: Any, channel: str) -> int:
    """Active listings of ``channel`` (the breaker judges a share of the whole channel)."""
    async with db.read() as conn:
        return int(
            (
                await conn.execute(
                    sa.select(sa.func.count())
                    .select_from(LISTINGS)
                    .where(LISTINGS.c.channel == channel, LISTINGS.c.status == "active")
                )
            ).scalar_one()
        )


async def stock_pass(
    rt: Runtime, pass_id: str, channels: Sequence[str], selection: SkuSelection
) -> dict[str, PassReport]:
    """Publish stock on every selected channel from one read of listings and ledger."""
    view = await load_stock_view(rt, rt.selected(tuple(channels)), selection)

    async def step(
        rt: Runtime, channel: Channel, pass_id: str, _selection: SkuSelection
    ) -> StockReport | Skipped:
        return await publish_stock(rt, channel, pass_id, view)

    return await _each_channel(rt, "stock_sync", step, pass_id, channels, selection)


async def reconcile_channel(
    rt: Runtime, channel: Channel, pass_id: str, selection: SkuSelection
) -> ReconcileReport:
    """Re-read the channel, record drift, verify accepted writes, then repair stock."""
    live = await channel.fetch_listings()
    verified, queued = await verify_accepted(
        rt.db, rt.clock, channel, {item.sku: item for item in live}, rt.outbox.fence(channel.name)
    )
    report = await refresh_listings(rt.db, rt.clock, channel.name, live, queued)
    for drift in report.drift:
        log.warning(
            "drift_detected",
            sku=drift.sku,
            field=drift.field,
            known=str(drift.known),
            live=str(drift.live),
        )
    repaired = await stock_channel(rt, channel, pass_id, selection)
    return ReconcileReport(
        live=report.seen,
        new=report.new,
        drift=len(report.drift),
        verified=verified,
        stock=repaired,
    )


async def current_offers(
    rt: Runtime, channel: Channel, skus: Sequence[str], selection: SkuSelection
) -> Mapping[str, OfferObservation]:
    """The competition of ``skus``: a stored snapshot younger than ``offers_max_age`` (a
    notification's offers, a poll a moment ago) as it is, the rest polled now and stored.

    An event-driven reprice after an offer notification then decides on the notification's
    offers instead of spending the marketplace's offers budget (Amazon: 0.5 calls/s) on them.
    """
    fresh: Mapping[str, OfferObservation] = {}
    max_age = rt.settings.schedule.offers_max_age
    if max_age:
        few = selection if isinstance(selection, frozenset) and len(selection) <= 2_000 else None
        recent = await recent_observations(rt.db, channel.name, rt.clock.now() - max_age, few)
        fresh = {sku: recent[sku] for sku in skus if sku in recent}
    stale = [sku for sku in skus if sku not in fresh]
    polled = await channel.fetch_competitor_offers(stale) if stale else []
    await record_changed_offers(rt, channel.name, polled)
    return {**fresh, **by_sku(polled)}


async def record_changed_offers(
    rt: Runtime, channel: str, observations: Sequence[OfferObservation]
) -> set[str]:
    """Store the observations whose competition differs from the newest stored one; return
    their SKUs. Unchanged offers are not stored again: a 100,000-listing catalogue repriced
    every 5 minutes would otherwise add 29 million offer rows a day."""
    few = [o.sku for o in observations] if len(observations) <= 2_000 else None
    before = await latest_fingerprints(rt.db, channel, few)
    fresh = [o for o in observations if competition_fingerprint(o) != before.get(o.sku)]
    await store_observations(rt.db, channel, fresh)
    return {o.sku for o in fresh}


async def offers_channel(
    rt: Runtime, channel: Channel, pass_id: str, selection: SkuSelection
) -> OffersReport | NoListings:
    """Poll competitor offers; store them; hand the SKUs whose competition changed to the
    debounced reprice trigger (the poll side of event-driven repricing)."""
    rows = await load_listing_rows(rt.db, channel.name, selection)
    if not rows:
        return NoListings()
    observations = await channel.fetch_competitor_offers([row.sku for row in rows])
    changed = await record_changed_offers(rt, channel.name, observations)
    if changed and rt.on_offer_change is not None:
        rt.on_offer_change(channel.name, changed)
    return OffersReport(listings=len(rows), observed=len(observations), changed=len(changed))


async def poll_orders(
    rt: Runtime, pass_id: str, channels: Sequence[str] = ()
) -> dict[str, dict[str, Any]]:
    """The orders pass: poll every channel, then publish the moved SKUs on every channel once
    (as an order webhook does), so two channels' orders never race two stock passes. Answers
    JSON: a channel that applied orders carries the stock pass's reports too."""
    results = await _each_channel(rt, "orders", orders_channel, pass_id, channels, None)
    answer = reports_json(results)
    polled = {name: r for name, r in results.items() if isinstance(r, OrdersReport)}
    moved = {sku for report in polled.values() for sku in report.skus}
    if moved:
        stock = reports_json(await stock_pass(rt, pass_id, (), frozenset(moved)))
        for name, report in polled.items():
            if report.applied:
                answer[name]["stock_sync"] = stock
    return answer


async def redrive(rt: Runtime, channels: Sequence[Channel] | None = None) -> dict[str, Any]:
    """Re-send intents a crash left planned or in flight, with their original keys (on the
    given channels, by default every open one)."""
    results: dict[str, Any] = {}
    for channel in rt.selected() if channels is None else channels:
        for kind in ActionKind:
            report = await rt.outbox.dispatch(channel, kind, redrive=True)
            if report.sent or report.superseded:
                results[f"{channel.name}:{kind.value}"] = asdict(report)
    return results


async def inventory_pass(rt: Runtime) -> dict[str, Any]:
    """The nightly inventory pass (every channel's stock at once); its success is recorded on
    every configured channel, whose sales and stock it read. Its one marketplace call: each
    opened channel that lists marketplace-fulfilled orders (Walmart WFS) is asked for them
    once. With several replicas it runs on one: the owner of the first channel by name."""
    first = min(rt.settings.channels, default=None)
    if rt.leases is not None and first is not None and not rt.owns(first):
        return {ALL_CHANNELS: {"skipped": f"run by the replica that owns {first}"}}
    sales = {
        ch.name: ch.fetch_marketplace_sales
        for ch in rt.selected()
        if isinstance(ch, ReadsMarketplaceSales)
    }
    summary = await run_inventory(rt.db, rt.clock, rt.settings.inventory, sales)
    for channel in rt.settings.channels:
        await record_pass_success(rt.db, rt.clock, channel=channel, pass_name=INVENTORY)
    return {ALL_CHANNELS: summary}


async def run_named_pass(
    rt: Runtime,
    name: str,
    pass_id: str,
    channels: Sequence[str] = (),
    selection: SkuSelection = None,
) -> dict[str, dict[str, Any]]:
    """Run one pass by name over the selected channels; per channel, its report as JSON."""
    steps: dict[str, ChannelStep] = {
        "reprice": reprice_channel,
        "reconcile": reconcile_channel,
        "offers": offers_channel,
    }
    if name == "orders":
        return await poll_orders(rt, pass_id, channels)
    if name == "stock_sync":
        return reports_json(await stock_pass(rt, pass_id, channels, selection))
    if name == INVENTORY:
        return await inventory_pass(rt)
    if name not in steps:
        raise ValueError(f"unknown pass {name!r}; choose from {', '.join(PASS_NAMES)}")
    return reports_json(await _each_channel(rt, name, steps[name], pass_id, channels, selection))
