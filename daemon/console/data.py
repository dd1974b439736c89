"""The console's data: loaders for the overview, SKU and problems pages over the existing tables.

Each loader reads a bounded window (30 days of history, LIMITs on lists) through the indexes of
migration 0010, and reuses the status view (``daemon.status.read_status``) and the action log
(``daemon.history.fetch_explain``) rather than querying them again. "Us" on a Buy Box is any of
our seller ids: the ones the caller passes (``Runtime.own_seller_ids``) plus the sellers of the
offers the connectors flagged as ours (``own`` in a snapshot's offers).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.console.series import (
    ChannelOverview,
    Count,
    LedgerRow,
    Marker,
    Overview,
    Point,
    PriceSeries,
    Problem,
    Share,
    SkuPage,
    StockMark,
    StockSeries,
)
from daemon.db.engine import Database
from daemon.db.models import (
    Action,
    ActionKind,
    ActionStatus,
    Listing,
    OfferSnapshot,
    PassSuccess,
    Product,
    StockEvent,
    StockEventKind,
    WebhookEvent,
)
from daemon.history import fetch_explain
from daemon.ledger import on_hand
from daemon.settings import ScheduleSettings
from daemon.snapshots import observation_of
from daemon.status import INVALID_OUTCOME, NOT_APPLIED, WINDOW, read_status
from domain.clock import Clock
from strategies.base import Snapshot
from strategies.offers import CompetitorFilters, scan_offers
from strategies.rules import AnyRule, select_rule

ACTIONS = Action.__table__  # type: ignore[attr-defined]
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
PRODUCTS = Product.__table__  # type: ignore[attr-defined]
OFFERS = OfferSnapshot.__table__  # type: ignore[attr-defined]
EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
SUCCESS = PassSuccess.__table__  # type: ignore[attr-defined]

HISTORY: Final = timedelta(days=30)
SHARE_DAYS: Final = 7
LEDGER_ROWS: Final = 50
PROBLEMS_PER_KIND: Final = 100
# Snapshots read to learn which sellers the connectors flagged as ours.
OWN_SAMPLE: Final = 20
# New snapshots a page load applies one by one; more are counted again from scratch.
CATCH_UP: Final = 5_000
WRITE_KINDS: Final = (ActionKind.PRICE.value, ActionKind.STOCK.value)
OVERSOLD: Final = "OVERSOLD"
# Oversells are read from the order rows' notes (no index finds them): a week of orders, not 30
# days, keeps the problems page fast at 100,000 listings.
OVERSELL_WINDOW: Final = timedelta(days=7)


# -- overview ---------------------------------------------------------------------------------


async def load_overview(
    db: Database,
    clock: Clock,
    channels: Sequence[str],
    *,
    own_seller_ids: Collection[str] = (),
    tracker: BuyBoxTracker | None = None,
) -> Overview:
    """Every configured channel's status, its last 24 h of writes and its Buy Box share now and
    at the end of each of the last seven UTC days (pass one ``tracker`` for every page load:
    it keeps the shares current from new snapshots instead of reading 30 days again)."""
    now = clock.now()
    status = await read_status(db, channels, now)
    names = [c.channel for c in status.channels]
    tracker = tracker if tracker is not None else BuyBoxTracker()
    async with db.read() as conn:
        writes = await _confirmed_writes(conn, names, now - WINDOW)
        shares = {
            name: await tracker.shares(conn, name, now, frozenset(own_seller_ids)) for name in names
        }
    return Overview(
        at=now,
        channels=tuple(
            ChannelOverview(
                status=c,
                price_changes_24h=writes.get((c.channel, ActionKind.PRICE.value), 0),
                stock_writes_24h=writes.get((c.channel, ActionKind.STOCK.value), 0),
                failed_writes_24h=c.failed_24h,
                not_applied_24h=c.not_applied_24h,
                buy_box_now=shares[c.channel][-1],
                buy_box_days=shares[c.channel],
            )
            for c in status.channels
        ),
    )


async def _confirmed_writes(
    conn: AsyncConnection, names: Sequence[str], since: datetime
) -> dict[tuple[str, str], int]:
    """Confirmed writes per (channel, kind) completed since ``since`` (ix_action_channel_status)."""
    rows = await conn.execute(
        sa.select(ACTIONS.c.channel, ACTIONS.c.kind, sa.func.count())
        .where(
            ACTIONS.c.channel.in_(names),
            ACTIONS.c.kind.in_(WRITE_KINDS),
            ACTIONS.c.status == ActionStatus.CONFIRMED.value,
            ACTIONS.c.completed_at >= since,
        )
        .group_by(ACTIONS.c.channel, ACTIONS.c.kind)
    )
    return {(channel, kind): int(n) for channel, kind, n in rows.all()}


def day_ends(now: datetime, days: int = SHARE_DAYS) -> tuple[datetime, ...]:
    """The ends (UTC midnights) of the ``days - 1`` days before today, oldest first, then now."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return (*(midnight - timedelta(days=k) for k in range(days - 2, -1, -1)), now)


@dataclass(slots=True)
class _Track:
    """One channel's Buy Box counts: the closed days' shares and the current one, with the
    newest snapshot id they include."""

    own: frozenset[str]
    today: datetime  # the UTC midnight the closed days end at
    horizon: datetime  # snapshots older than this are not counted (30 days before the build)
    last_id: int
    closed: tuple[Share, ...]
    won: int
    seen: int


class BuyBoxTracker:
    """Buy Box share per channel from offer snapshots, kept across page loads.

    The share at a time is the part of the channel's listings (those with a snapshot in the last
    30 days) whose newest snapshot by then names one of our sellers as the Buy Box holder. The
    first load of a channel counts it in one aggregate query over its 30 days of snapshots (the
    share at each UTC midnight and now); later loads apply only the snapshots stored since (by
    id), looking up the previous snapshot of just the listings they touch, and close the UTC
    days that ended meanwhile. A snapshot dated inside a closed day, a backlog of more than
    ``CATCH_UP`` snapshots, new own seller ids or a new process count again. (A listing counted
    stays counted until then, even once its newest snapshot is older than 30 days.)
    """

    def __init__(self) -> None:
        self._tracks: dict[str, _Track] = {}
        # Two page loads at once must not both apply the same new snapshots (or both count).
        self._lock = asyncio.Lock()

    async def shares(
        self, conn: AsyncConnection, channel: str, now: datetime, own: frozenset[str]
    ) -> tuple[Share, ...]:
        """The share at each of ``day_ends(now)`` (the last one is now)."""
        ends = day_ends(now)
        async with self._lock:
            track = self._tracks.get(channel)
            fresh = track is not None and track.today <= ends[-2] and own <= track.own
            if track is None or not fresh or not await _catch_up(conn, channel, track, ends):
                track = await _count(conn, channel, now, own, ends)
                self._tracks[channel] = track
        return (*track.closed, Share(now, track.won, track.seen))


def _won(own: frozenset[str]) -> sa.ColumnElement[bool]:
    return OFFERS.c.buy_box_seller.in_(sorted(own)) if own else sa.false()


async def _count(
    conn: AsyncConnection,
    channel: str,
    now: datetime,
    given: frozenset[str],
    ends: tuple[datetime, ...],
) -> _Track:
    """Count a channel's shares at its closed day ends and now in one pass over its snapshots
    (each snapshot is a listing's verdict from its time until the listing's next one)."""
    own = given | await _flagged_own(conn, channel)
    last_id = int((await conn.execute(sa.select(sa.func.max(OFFERS.c.id)))).scalar() or 0)
    horizon = now - HISTORY
    verdicts = (
        sa.select(
            OFFERS.c.observed_at.label("at"),
            sa.case((_won(own), 1), else_=0).label("won"),
            sa.func.lead(OFFERS.c.observed_at)
            .over(partition_by=OFFERS.c.sku, order_by=(OFFERS.c.observed_at, OFFERS.c.id))
            .label("until"),
        )
        .where(
            OFFERS.c.channel == channel,
            OFFERS.c.observed_at >= horizon,
            OFFERS.c.id <= last_id,
        )
        .subquery()
    )
    columns = []
    for end in ends[:-1]:
        live = sa.and_(
            verdicts.c.at <= end, sa.or_(verdicts.c.until.is_(None), verdicts.c.until > end)
        )
        columns += [
            sa.func.sum(sa.case((live, verdicts.c.won), else_=0)),
            sa.func.sum(sa.case((live, 1), else_=0)),
        ]
    newest = verdicts.c.until.is_(None)
    columns += [
        sa.func.sum(sa.case((newest, verdicts.c.won), else_=0)),
        sa.func.sum(sa.case((newest, 1), else_=0)),
    ]
    counts = [int(n or 0) for n in (await conn.execute(sa.select(*columns))).one()]
    closed = tuple(Share(end, counts[2 * k], counts[2 * k + 1]) for k, end in enumerate(ends[:-1]))
    return _Track(own, ends[-2], horizon, last_id, closed, counts[-2], counts[-1])


async def _catch_up(
    conn: AsyncConnection, channel: str, track: _Track, ends: tuple[datetime, ...]
) -> bool:
    """Apply the snapshots stored since the last load, closing the UTC days that ended since
    (their share is the count once the snapshots dated before their midnight are applied);
    False when they cannot be (one dated inside an already closed day, or too many)."""
    won = _won(track.own)
    # By id alone (the primary key's range): every channel's new rows, this one's kept. With a
    # channel condition the planner walks the channel's index instead, all 30 days of it.
    stored = (
        await conn.execute(
            sa.select(OFFERS.c.id, OFFERS.c.sku, OFFERS.c.observed_at, won, OFFERS.c.channel)
            .where(OFFERS.c.id > track.last_id)
            .order_by(OFFERS.c.id)
            .limit(CATCH_UP + 1)
        )
    ).all()
    if len(stored) > CATCH_UP:
        return False
    new = sorted(
        (at, row_id, sku, bool(verdict)) for row_id, sku, at, verdict, ch in stored if ch == channel
    )
    if new and new[0][0] <= track.today:
        return False
    newest: dict[str, tuple[datetime, int, bool]] = {}
    if new:
        # The newest already counted snapshot of each listing touched (channel, sku, time).
        rows = await conn.execute(
            sa.select(OFFERS.c.sku, OFFERS.c.observed_at, OFFERS.c.id, won).where(
                OFFERS.c.channel == channel,
                OFFERS.c.sku.in_(sorted({sku for _, _, sku, _ in new})),
                OFFERS.c.observed_at >= track.horizon,
                OFFERS.c.id <= track.last_id,
            )
        )
        for sku, at, row_id, verdict in rows.all():
            if sku not in newest or (at, row_id) > newest[sku][:2]:
                newest[sku] = (at, row_id, bool(verdict))
    closing = [end for end in ends[:-1] if end > track.today]
    closed = list(track.closed)
    for at, row_id, sku, verdict in new:  # in time order, like the first count
        while closing and at > closing[0]:
            closed.append(Share(closing.pop(0), track.won, track.seen))
        before = newest.get(sku)
        if before is not None and (before[0], before[1]) > (at, row_id):
            continue
        track.seen += before is None
        track.won += int(verdict) - int(before is not None and before[2])
        newest[sku] = (at, row_id, verdict)
    closed += [Share(end, track.won, track.seen) for end in closing]
    track.closed = tuple(closed[-(len(ends) - 1) :])
    track.today = ends[-2]
    track.last_id = stored[-1][0] if stored else track.last_id
    return True


async def _flagged_own(conn: AsyncConnection, channel: str) -> frozenset[str]:
    """Sellers of the offers flagged as ours in the channel's newest snapshots."""
    rows = await conn.execute(
        sa.select(OFFERS.c.offers)
        .where(OFFERS.c.channel == channel)
        .order_by(OFFERS.c.observed_at.desc())
        .limit(OWN_SAMPLE)
    )
    return frozenset(
        str(offer["seller_id"])
        for (offers,) in rows.all()
        for offer in offers or ()
        if isinstance(offer, Mapping) and offer.get("own") and offer.get("seller_id")
    )


# -- SKU page ---------------------------------------------------------------------------------


async def load_sku_page(
    db: Database,
    clock: Clock,
    sku: str,
    *,
    days: int = 30,
    own_seller_ids: Collection[str] = (),
    rules: Sequence[AnyRule] = (),
    filters: CompetitorFilters | None = None,
    ledger_rows: int = LEDGER_ROWS,
) -> SkuPage:
    """One SKU over the last ``days`` days: per channel its price chart series, the stock chart
    series, the latest decisions (``explain``) and the newest ledger rows.

    The lowest competitor is the strategies' own: ``scan_offers`` over each stored snapshot,
    landed price, with the competitor filters of the rule that prices the listing (the first of
    ``rules`` matching it, as ``select_rule`` picks), else ``filters``, else every offer.
    """
    now = clock.now()
    start = now - timedelta(days=min(days, HISTORY.days))
    own = frozenset(own_seller_ids)
    async with db.read() as conn:
        listings: list[Mapping[str, Any]] = [
            dict(row)
            for row in (
                await conn.execute(
                    sa.select(LISTINGS).where(LISTINGS.c.sku == sku).order_by(LISTINGS.c.channel)
                )
            ).mappings()
        ]
        product = (
            await conn.execute(
                sa.select(PRODUCTS.c.title, PRODUCTS.c.tags).where(PRODUCTS.c.sku == sku)
            )
        ).first()
        actions = await _actions(conn, sku, start)
        before = await _bounds_before(conn, sku, start)
        snapshots = await _snapshots(conn, sku, [row["channel"] for row in listings], start)
        total = (await on_hand(conn, [sku])).get(sku, 0)
        events = (
            await conn.execute(
                sa.select(EVENTS)
                .where(EVENTS.c.sku == sku, EVENTS.c.occurred_at >= start)
                .order_by(EVENTS.c.occurred_at, EVENTS.c.id)
            )
        ).all()
        ledger = (
            await conn.execute(
                sa.select(EVENTS)
                .where(EVENTS.c.sku == sku)
                .order_by(EVENTS.c.occurred_at.desc(), EVENTS.c.id.desc())
                .limit(ledger_rows)
            )
        ).all()
    explain = await fetch_explain(db, sku, limit_per_listing=1)
    tags = tuple(product.tags or ()) if product is not None else ()
    fallback = filters if filters is not None else CompetitorFilters()
    prices = tuple(
        _price_series(
            listing,
            [a for a in actions if a.channel == listing["channel"]],
            before.get(listing["channel"]),
            [s for s in snapshots if s.channel == listing["channel"]],
            start,
            now,
            own,
            _rule_filters(rules, sku, tags, listing["channel"], fallback),
        )
        for listing in listings
    )
    return SkuPage(
        sku=sku,
        title=None if product is None else product.title,
        start=start,
        end=now,
        prices=prices,
        stock=_stock_series(listings, actions, events, total, start),
        explain=tuple(explain),
        ledger=tuple(_ledger_row(row) for row in ledger),
    )


def _rule_filters(
    rules: Sequence[AnyRule],
    sku: str,
    tags: Sequence[str],
    channel: str,
    fallback: CompetitorFilters,
) -> CompetitorFilters:
    """The competitor filters of the rule pricing (sku, channel), or ``fallback`` (no rules, or
    a rule whose strategy does not look at competitors)."""
    if not rules:
        return fallback
    try:
        _, rule = select_rule(rules, sku=sku, tags=tags, channel=channel)
    except LookupError:
        return fallback
    found = getattr(rule.params, "filters", None)
    return found if isinstance(found, CompetitorFilters) else fallback


async def _actions(conn: AsyncConnection, sku: str, start: datetime) -> list[Any]:
    """The SKU's price and stock actions since ``start``, oldest first (ix_action_sku_time)."""
    return list(
        (
            await conn.execute(
                sa.select(
                    ACTIONS.c.id,
                    ACTIONS.c.channel,
                    ACTIONS.c.kind,
                    ACTIONS.c.status,
                    ACTIONS.c.old_price,
                    ACTIONS.c.new_price,
                    ACTIONS.c.floor,
                    ACTIONS.c.ceiling,
                    ACTIONS.c.old_quantity,
                    ACTIONS.c.new_quantity,
                    ACTIONS.c.reason,
                    ACTIONS.c.guard_verdicts,
                    ACTIONS.c.created_at,
                    ACTIONS.c.completed_at,
                )
                .where(ACTIONS.c.sku == sku, ACTIONS.c.created_at >= start)
                .order_by(ACTIONS.c.created_at, ACTIONS.c.id)
            )
        ).all()
    )


async def _bounds_before(
    conn: AsyncConnection, sku: str, start: datetime
) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    """Per channel, the floor and ceiling of the SKU's newest price decision before ``start``."""
    ranked = (
        sa.select(
            ACTIONS.c.channel,
            ACTIONS.c.floor,
            ACTIONS.c.ceiling,
            sa.func.row_number()
            .over(
                partition_by=ACTIONS.c.channel,
                order_by=(ACTIONS.c.created_at.desc(), ACTIONS.c.id.desc()),
            )
            .label("rank"),
        )
        .where(
            ACTIONS.c.sku == sku,
            ACTIONS.c.created_at < start,
            ACTIONS.c.created_at >= start - HISTORY,
            ACTIONS.c.kind == ActionKind.PRICE.value,
        )
        .subquery()
    )
    rows = await conn.execute(
        sa.select(ranked.c.channel, ranked.c.floor, ranked.c.ceiling).where(ranked.c.rank == 1)
    )
    return {channel: (low, high) for channel, low, high in rows.all()}


async def _snapshots(
    conn: AsyncConnection, sku: str, channels: Sequence[str], start: datetime
) -> list[Any]:
    """The SKU's offer snapshots on ``channels`` since ``start`` plus, per channel, the newest
    one before it (the competition in effect when the chart begins), oldest first. Channel
    first: ix_offer_snapshot_listing_time (channel, sku, observed_at) serves both."""
    if not channels:
        return []
    newest_before = (
        sa.select(sa.func.max(OFFERS.c.id))
        .where(
            OFFERS.c.channel.in_(channels),
            OFFERS.c.sku == sku,
            OFFERS.c.observed_at < start,
            OFFERS.c.observed_at >= start - HISTORY,
        )
        .group_by(OFFERS.c.channel)
    )
    rows = await conn.execute(
        sa.select(OFFERS)
        .where(
            OFFERS.c.channel.in_(channels),
            OFFERS.c.sku == sku,
            sa.or_(OFFERS.c.observed_at >= start, OFFERS.c.id.in_(newest_before)),
        )
        .order_by(OFFERS.c.observed_at, OFFERS.c.id)
    )
    return list(rows.all())


def _price_series(
    listing: Mapping[str, Any],
    actions: Sequence[Any],
    bounds_before: tuple[Decimal | None, Decimal | None] | None,
    snapshots: Sequence[Any],
    start: datetime,
    now: datetime,
    own: frozenset[str],
    filters: CompetitorFilters,
) -> PriceSeries:
    """One listing's price chart series from its actions and offer snapshots."""
    prices = [a for a in actions if a.kind == ActionKind.PRICE.value]
    confirmed = [a for a in prices if a.status == ActionStatus.CONFIRMED.value]
    ours: list[Point] = []
    if confirmed:
        first = confirmed[0]
        if first.old_price is not None:
            ours.append(Point(start, first.old_price))
        ours += [Point(_done(a), a.new_price) for a in confirmed]
    elif listing["price"] is not None:
        ours.append(Point(start, listing["price"]))
    # A price changed by someone else (seen by reconcile) after our last write.
    changed = listing["price_changed_at"]
    if listing["price"] is not None and ours and ours[-1].value != listing["price"]:
        at = changed if changed is not None and changed > ours[-1].at else ours[-1].at
        ours.append(Point(min(max(at, start), now), listing["price"]))
    floors: list[Point] = []
    ceilings: list[Point] = []
    if bounds_before is not None:
        floors.append(Point(start, bounds_before[0]))
        ceilings.append(Point(start, bounds_before[1]))
    for action in prices:
        _step(floors, action.created_at, action.floor)
        _step(ceilings, action.created_at, action.ceiling)
    buy_box: list[Point] = []
    lowest: list[Point] = []
    currency = listing["currency"]
    for row in snapshots:
        at = max(row.observed_at, start)
        _step(buy_box, at, row.buy_box_price)
        _step(lowest, at, _lowest_landed(row, listing["channel"], currency, now, own, filters))
    markers = tuple(
        Marker(
            at=a.created_at,
            action_id=a.id,
            status=a.status,
            reason=a.reason or "",
            verdicts=tuple(_verdict(v) for v in a.guard_verdicts or ()),
            price=a.new_price if a.new_price is not None else a.old_price,
        )
        for a in prices
        if a.status in (ActionStatus.BLOCKED.value, ActionStatus.HELD.value)
    )
    return PriceSeries(
        channel=listing["channel"],
        currency=currency,
        our_price=tuple(ours),
        buy_box=tuple(buy_box),
        lowest_competitor=tuple(lowest),
        floor=tuple(floors),
        ceiling=tuple(ceilings),
        markers=markers,
    )


def _lowest_landed(
    row: Any,
    channel: str,
    currency: str,
    now: datetime,
    own: frozenset[str],
    filters: CompetitorFilters,
) -> Decimal | None:
    """The cheapest qualifying competitor's landed price in one snapshot, as strategies see it."""
    observation = observation_of(row)
    snapshot = Snapshot(
        channel=channel,
        sku=observation.sku,
        currency=currency,
        now=now,
        current_price=None,
        offers=observation.offers,
        buy_box_price=observation.buy_box_price,
        buy_box_seller=observation.buy_box_seller,
        own_seller_ids=own,
    )
    entries = scan_offers(snapshot, filters).entries
    return entries[0][0] if entries else None


def _step(points: list[Point], at: datetime, value: Decimal | None) -> None:
    """Append a step unless it repeats the value in effect (a later step at the same time
    replaces the earlier one)."""
    if points and points[-1].value == value:
        return
    if points and points[-1].at == at:
        points.pop()
        if points and points[-1].value == value:
            return
    points.append(Point(at, value))


def _done(action: Any) -> datetime:
    """When a confirmed write took effect (its creation if no completion was recorded)."""
    done: datetime = action.completed_at or action.created_at
    return done


def _verdict(verdict: Any) -> str:
    """One guard verdict as ``step: verdict — detail``."""
    if not isinstance(verdict, Mapping):
        return str(verdict)
    text = f"{verdict.get('step', '?')}: {verdict.get('verdict', '')}"
    detail = verdict.get("detail")
    return f"{text} — {detail}" if detail else text


def _stock_series(
    listings: Sequence[Mapping[str, Any]],
    actions: Sequence[Any],
    events: Sequence[Any],
    total: int,
    start: datetime,
) -> StockSeries:
    """On-hand (walked forward from the total minus the window's deltas), each channel's
    published quantity (confirmed stock writes, then the listing's quantity) and the events."""
    level = total - sum(int(e.delta) for e in events)
    on_hand_steps = [Count(start, level)]
    for event in events:
        level += int(event.delta)
        on_hand_steps.append(Count(max(event.occurred_at, start), level))
    published = []
    for listing in listings:
        writes = [
            a
            for a in actions
            if a.channel == listing["channel"]
            and a.kind == ActionKind.STOCK.value
            and a.status == ActionStatus.CONFIRMED.value
            and a.new_quantity is not None
        ]
        steps: list[Count] = []
        if writes and writes[0].old_quantity is not None:
            steps.append(Count(start, int(writes[0].old_quantity)))
        steps += [Count(_done(a), int(a.new_quantity)) for a in writes]
        quantity = listing["quantity"]
        if quantity is not None and (not steps or steps[-1].value != quantity):
            at = max(listing["quantity_seen_at"] or listing["updated_at"], start)
            steps.append(Count(max(at, steps[-1].at) if steps else start, int(quantity)))
        published.append((str(listing["channel"]), tuple(steps)))
    marks = tuple(
        StockMark(
            at=max(e.occurred_at, start),
            event_id=e.id,
            kind=e.kind,
            delta=int(e.delta),
            channel=e.channel,
            note=e.note,
        )
        for e in events
    )
    return StockSeries(on_hand=tuple(on_hand_steps), published=tuple(published), events=marks)


def _ledger_row(row: Any) -> LedgerRow:
    return LedgerRow(
        id=row.id,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        kind=row.kind,
        delta=int(row.delta),
        counted=row.counted,
        channel=row.channel,
        note=row.note,
        external_ref=row.external_ref,
    )


# -- problems ---------------------------------------------------------------------------------


class ProblemKind(StrEnum):
    """What a problem is about (the problems page groups by it)."""

    NOT_CATALOGUED = "not_catalogued"
    NO_FLOOR = "no_floor"
    NO_CEILING = "no_ceiling"
    WRITE_FAILED = "write_failed"
    NOT_APPLIED = "not_applied"
    STALE_OFFERS = "stale_offers"
    INVALID_WEBHOOK = "invalid_webhook"
    OVERSOLD = "oversold"
    NEGATIVE_STOCK = "negative_stock"


async def load_problems(
    db: Database,
    clock: Clock,
    *,
    channels: Sequence[str] | None = None,
    schedule: ScheduleSettings | None = None,
    limit: int = PROBLEMS_PER_KIND,
) -> list[Problem]:
    """What an operator must fix, newest first within each kind (at most ``limit`` a kind):
    listings blocked for a missing cost/min/max, failed and NOT_APPLIED writes (24 h), stale
    offer data, invalid webhook deliveries (24 h) and oversells (7 days).

    ``channels`` defaults to those with listings; offer data is stale when a channel's newest
    offers (its last offers or reprice pass) are older than one poll period (``offers_poll``,
    else ``reprice``) plus ``offers_max_age``.
    """
    now = clock.now()
    plan = schedule if schedule is not None else ScheduleSettings()
    async with db.read() as conn:
        names = (
            list(channels)
            if channels is not None
            else list((await conn.execute(sa.select(LISTINGS.c.channel).distinct())).scalars())
        )
        return [
            *await _catalogue_problems(conn, limit),
            *await _write_problems(conn, names, now - WINDOW, limit),
            *await _stale_offers(conn, names, now, plan),
            *await _invalid_deliveries(conn, now - WINDOW, limit),
            *await _oversells(conn, now, limit),
        ]


async def _catalogue_problems(conn: AsyncConnection, limit: int) -> list[Problem]:
    """Active listings the guards block for their catalogue row: none, no floor, no ceiling.

    (A min_price above max_price cannot be imported: the catalogue refuses the row. Money is
    text on SQLite, so it is never compared in SQL.)"""
    no_product = PRODUCTS.c.id.is_(None)
    no_floor = sa.and_(PRODUCTS.c.min_price.is_(None), PRODUCTS.c.cost.is_(None))
    no_ceiling = PRODUCTS.c.max_price.is_(None)
    rows = await conn.execute(
        sa.select(
            LISTINGS.c.channel,
            LISTINGS.c.sku,
            LISTINGS.c.discovered_at,
            PRODUCTS.c.id,
            PRODUCTS.c.cost.is_(None) & PRODUCTS.c.min_price.is_(None),
            PRODUCTS.c.updated_at,
        )
        .select_from(LISTINGS.outerjoin(PRODUCTS, PRODUCTS.c.sku == LISTINGS.c.sku))
        .where(LISTINGS.c.status == "active", sa.or_(no_product, no_floor, no_ceiling))
        .order_by(LISTINGS.c.sku, LISTINGS.c.channel)
        .limit(limit)
    )
    found = []
    for channel, sku, discovered, product, floorless, updated in rows.all():
        since = discovered if updated is None else max(discovered, updated)
        if product is None:
            kind, detail = ProblemKind.NOT_CATALOGUED, "listed but not in the catalogue"
            fix = "add the SKU to the catalogue with cost or min_price, and max_price"
        elif floorless:
            kind, detail = ProblemKind.NO_FLOOR, "no floor: neither min_price nor cost"
            fix = "set min_price or cost in the catalogue"
        else:
            kind, detail = ProblemKind.NO_CEILING, "no ceiling: no max_price"
            fix = "set max_price in the catalogue"
        found.append(Problem(kind.value, channel, sku, detail, fix, since))
    return found


async def _write_problems(
    conn: AsyncConnection, names: Sequence[str], since: datetime, limit: int
) -> list[Problem]:
    """Failed writes with the marketplace's message, and NOT_APPLIED ones."""
    if not names:
        return []
    found = []
    for not_applied in (False, True):
        code = ACTIONS.c.response_code
        rows = await conn.execute(
            sa.select(ACTIONS)
            .where(
                ACTIONS.c.channel.in_(names),
                ACTIONS.c.kind.in_(WRITE_KINDS),
                ACTIONS.c.status == ActionStatus.FAILED.value,
                ACTIONS.c.completed_at >= since,
                code == NOT_APPLIED if not_applied else sa.or_(code.is_(None), code != NOT_APPLIED),
            )
            .order_by(ACTIONS.c.completed_at.desc(), ACTIONS.c.id.desc())
            .limit(limit)
        )
        for row in rows.all():
            change = _change(row)
            message = ": ".join(str(p) for p in (row.response_code, row.response_message) if p)
            if not_applied:
                kind, fix = (
                    ProblemKind.NOT_APPLIED,
                    "accepted but never live: check the listing on the marketplace",
                )
            else:
                kind, fix = (
                    ProblemKind.WRITE_FAILED,
                    "read the marketplace's message and fix the listing or the catalogue",
                )
            found.append(
                Problem(
                    kind.value,
                    row.channel,
                    row.sku,
                    f"{row.kind} {change}: {message or 'no message'}",
                    fix,
                    row.completed_at,
                    row.id,
                )
            )
    return found


def _change(row: Any) -> str:
    if row.kind == ActionKind.PRICE.value:
        return f"{row.old_price} → {row.new_price} {row.currency or ''}".rstrip()
    return f"{row.old_quantity} → {row.new_quantity}"


async def _stale_offers(
    conn: AsyncConnection, names: Sequence[str], now: datetime, schedule: ScheduleSettings
) -> list[Problem]:
    """Channels with offer data whose newest offers are older than a poll period plus
    ``offers_max_age``."""
    if not names:
        return []
    limit = (schedule.offers_poll or schedule.reprice) + schedule.offers_max_age
    passes = await conn.execute(
        sa.select(SUCCESS.c.channel, sa.func.max(SUCCESS.c.last_success_at))
        .where(SUCCESS.c.channel.in_(names), SUCCESS.c.pass_name.in_(["offers", "reprice"]))
        .group_by(SUCCESS.c.channel)
    )
    refreshed: dict[str, datetime] = {channel: at for channel, at in passes.all()}
    found = []
    for name in names:
        newest = (
            await conn.execute(
                sa.select(sa.func.max(OFFERS.c.observed_at)).where(
                    OFFERS.c.channel == name, OFFERS.c.observed_at >= now - HISTORY
                )
            )
        ).scalar()
        if newest is None:
            continue  # no offer data at all (a storefront): nothing to go stale
        at = max(newest, refreshed.get(name, newest))
        if now - at > limit:
            found.append(
                Problem(
                    ProblemKind.STALE_OFFERS.value,
                    name,
                    None,
                    f"offer data last refreshed {_age(now - at)} ago (older than {_age(limit)})",
                    "check the channel's state and its offers/reprice passes",
                    at,
                )
            )
    return found


def _age(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


async def _invalid_deliveries(conn: AsyncConnection, since: datetime, limit: int) -> list[Problem]:
    """Webhook deliveries the inbox rejected as invalid in the last 24 h."""
    rows = await conn.execute(
        sa.select(INBOX.c.channel, INBOX.c.topic, INBOX.c.error, INBOX.c.processed_at)
        .where(INBOX.c.processed_at >= since, INBOX.c.outcome == INVALID_OUTCOME)
        .order_by(INBOX.c.processed_at.desc(), INBOX.c.id.desc())
        .limit(limit)
    )
    return [
        Problem(
            ProblemKind.INVALID_WEBHOOK.value,
            channel,
            None,
            f"{topic}: {error or 'invalid'}",
            "check the sender's configuration (secret, topic) for this channel",
            at,
        )
        for channel, topic, error, at in rows.all()
    ]


async def _oversells(conn: AsyncConnection, now: datetime, limit: int) -> list[Problem]:
    """Orders recorded OVERSOLD in the last 7 days (daemon.stock notes the shortfall), and SKUs
    the ledger shows below zero among those that moved in the last 24 h."""
    rows = await conn.execute(
        sa.select(EVENTS.c.channel, EVENTS.c.sku, EVENTS.c.note, EVENTS.c.occurred_at)
        .where(
            EVENTS.c.kind == StockEventKind.ORDER.value,
            EVENTS.c.occurred_at >= now - OVERSELL_WINDOW,
            EVENTS.c.note.like(f"%{OVERSOLD}%"),
        )
        .order_by(EVENTS.c.occurred_at.desc(), EVENTS.c.id.desc())
        .limit(limit)
    )
    fix = "sold more than we held: source or cancel the units, check published quantities"
    found = [
        Problem(ProblemKind.OVERSOLD.value, channel, sku, note or OVERSOLD, fix, at)
        for channel, sku, note, at in rows.all()
    ]
    moved = await conn.execute(
        sa.select(EVENTS.c.sku, sa.func.max(EVENTS.c.occurred_at))
        .where(
            EVENTS.c.kind.in_([k.value for k in StockEventKind]),
            EVENTS.c.occurred_at >= now - WINDOW,
        )
        .group_by(EVENTS.c.sku)
        .limit(10 * limit)
    )
    recent: dict[str, datetime] = {sku: at for sku, at in moved.all()}
    for sku, units in sorted((await on_hand(conn, recent)).items()):
        if units < 0:
            found.append(
                Problem(
                    ProblemKind.NEGATIVE_STOCK.value,
                    None,
                    sku,
                    f"on hand {units} in the ledger",
                    "count the SKU (a count event resets on-hand)",
                    recent[sku],
                )
            )
    return found
