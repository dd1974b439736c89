"""``repricerd backtest``: replay recorded history through two pricing configs, side by side.

The replay is a sequence of *passes* (ticks) over one channel, on a regular grid of ``step``
from the first recorded offer snapshot of the window: each pass decides every listing of the
selection exactly as a scheduled reprice pass does (``daemon.pricing.make_snapshot`` →
``strategies.engine.decide``: rule, strategy, rounding, guards), then the breaker judges the
pass as a whole (with the window of earlier passes' big moves). Each config keeps its own price
path: what it sent becomes its live price and its confirmed price history (drift, cadences,
the reference median) at once. Both configs read the same recorded inputs: the competition
(the newest snapshot at or before the pass), the ledger (on hand, sales windows, inventory
age, from the rows recorded by the pass time), our peer channels' recorded prices (parity),
today's products and listings (costs and bounds are not versioned).

A breaker trip blocks the pass; the channel then stays stopped until the operator resumes,
modelled as ``resume_after`` later (default 24 h), after which the breaker is disarmed for
``rearm_after_s`` exactly like ``repricerd resume``.

What the market would have done is estimated by ``daemon.backtest_model``. Nothing is written:
the database is only read, snapshots are streamed in time order (memory stays flat in their
number; it grows only with the price changes of each path, one (time, price) pair each, kept
for the guards' 30-day history and the report). With ``jobs`` ≥ 2 the candidate's path is
replayed in a second process on the same recorded inputs.
"""

from __future__ import annotations

import asyncio
import bisect
import multiprocessing
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from rich.console import Console
from rich.progress import Progress, TaskID

from daemon.backtest_model import (
    DEFAULT_ELASTICITY,
    Competition,
    competition,
    estimated_units,
    holds_buy_box,
    lowest_rival,
)
from daemon.db.engine import Database
from daemon.db.models import ActionStatus, StockEventKind
from daemon.pricing import REFERENCE_KEPT, BreakerWindow, PassInputs, make_snapshot
from daemon.pricing_history import (
    ACTIONS,
    EVENTS,
    LISTINGS,
    PRICE_HISTORY_DAYS,
    SALES_WINDOWS_DAYS,
)
from daemon.settings import PricingSettings
from daemon.snapshots import (
    OFFERS,
    ListingRow,
    MarketReference,
    SkuSelection,
    load_listing_rows,
    observation_of,
    sku_clause,
)
from domain.offers import OfferObservation
from strategies.breaker import breaker_verdict, is_big_move
from strategies.engine import Outcome, decide
from strategies.guards import Verdict

ZERO = Decimal("0")
HISTORY_WINDOW = timedelta(days=PRICE_HISTORY_DAYS)
DEFAULT_STEP = timedelta(hours=1)
DEFAULT_RESUME_AFTER = timedelta(hours=24)
STREAM_BATCH = 5_000
_SALES = (StockEventKind.ORDER.value, StockEventKind.CANCEL.value)
_INTAKE = frozenset(
    (StockEventKind.RECEIPT.value, StockEventKind.RETURN.value, StockEventKind.COUNT.value)
)


# -- recorded inputs --------------------------------------------------------------------------


class Change(NamedTuple):
    """One confirmed price change."""

    at: datetime
    old: Decimal | None
    new: Decimal


class Timeline:
    """Recorded live prices per SKU over time, from the confirmed price actions."""

    def __init__(
        self,
        current: Mapping[str, Decimal | None],
        changes: Mapping[str, Sequence[Change]] | None = None,
    ) -> None:
        self._current = current
        self._changes = dict(changes or {})
        self._times = {sku: [c.at for c in items] for sku, items in self._changes.items()}

    def at(self, sku: str, when: datetime, *, before: bool = False) -> Decimal | None:
        """The price live at ``when`` (strictly before it with ``before``): the last change up
        to then, else the old price of the first change after, else today's price."""
        times = self._times.get(sku)
        if not times:
            return self._current.get(sku)
        changes = self._changes[sku]
        index = (bisect.bisect_left if before else bisect.bisect_right)(times, when)
        if index:
            return changes[index - 1].new
        return changes[0].old if changes[0].old is not None else self._current.get(sku)

    def history(self, sku: str, when: datetime) -> list[Change]:
        """The changes confirmed in the 30 days before ``when`` (strictly before it)."""
        times = self._times.get(sku)
        if not times:
            return []
        low = bisect.bisect_left(times, when - HISTORY_WINDOW)
        high = bisect.bisect_left(times, when)
        return list(self._changes[sku][low:high])


class _Event(NamedTuple):
    at: datetime
    kind: str
    delta: int
    channel: str | None
    seen: datetime  # when the row was recorded: a pass before then did not see it


class Ledger:
    """The stock ledger of the replayed SKUs, answered as of any time (pure, in memory).

    As of a pass means the rows that had occurred and been recorded by then, as the live pass's
    queries saw them: an order that occurred before a pass but was recorded after it counts
    only from the next pass.
    """

    def __init__(
        self,
        events: Iterable[
            tuple[str, datetime, str, int, str | None]
            | tuple[str, datetime, str, int, str | None, datetime]
        ],
    ) -> None:
        by_sku: dict[str, list[_Event]] = defaultdict(list)
        for sku, at, kind, delta, channel, *recorded in events:
            seen = max(at, recorded[0]) if recorded else at
            by_sku[sku].append(_Event(at, kind, delta, channel, seen))
        self._events = {sku: sorted(items) for sku, items in by_sku.items()}
        self._times = {sku: [e.at for e in items] for sku, items in self._events.items()}
        # On hand is the sum of every row recorded by then, whenever it occurred.
        by_seen = {sku: sorted((e.seen, e.delta) for e in items) for sku, items in by_sku.items()}
        self._seen_times = {sku: [at for at, _ in items] for sku, items in by_seen.items()}
        self._seen_totals = {
            sku: _running([delta for _, delta in items]) for sku, items in by_seen.items()
        }
        # Orders and cancels alone, with their running net, for the sales windows; those
        # recorded after they occurred apart, with the longest such lag of their SKU.
        sales = {sku: [e for e in items if e.kind in _SALES] for sku, items in self._events.items()}
        self._sale_times = {sku: [e.at for e in items] for sku, items in sales.items()}
        self._sale_totals = {
            sku: _running([e.delta for e in items]) for sku, items in sales.items()
        }
        self._late: dict[str, list[_Event]] = {}
        self._lag: dict[str, timedelta] = {}
        for sku, items in sales.items():
            late = [e for e in items if e.seen > e.at]
            if late:
                self._late[sku] = late
                self._lag[sku] = max(e.seen - e.at for e in late)
        self._late_times = {sku: [e.at for e in items] for sku, items in self._late.items()}

    def skus(self) -> Iterable[str]:
        """SKUs with at least one event."""
        return self._events.keys()

    def on_hand(self, sku: str, when: datetime) -> int | None:
        """Sum of the deltas recorded by ``when`` (None before the first, as the daemon's
        query: no row, no stock figure)."""
        times = self._seen_times.get(sku)
        if times is None:
            return None
        index = bisect.bisect_right(times, when)
        return self._seen_totals[sku][index - 1] if index else None

    def _pending(self, sku: str, when: datetime) -> list[_Event]:
        """Sales that occurred by ``when`` but were recorded after it."""
        times = self._late_times.get(sku)
        if not times:
            return []
        low = bisect.bisect_left(times, when - self._lag[sku])
        high = bisect.bisect_right(times, when)
        return [e for e in self._late[sku][low:high] if e.seen > when]

    def sold(self, sku: str, when: datetime) -> tuple[tuple[int, int], ...] | None:
        """Net units sold per sales window as of ``when`` (None without sales in 30 days)."""
        times = self._sale_times.get(sku)
        if not times:
            return None
        totals = self._sale_totals[sku]
        high = bisect.bisect_right(times, when)
        pending = self._pending(sku, when)
        longest = when - timedelta(days=max(SALES_WINDOWS_DAYS))
        inside = high - bisect.bisect_left(times, longest)
        if inside - sum(1 for e in pending if e.at >= longest) <= 0:
            return None
        upto = totals[high - 1]
        windows = []
        for days in SALES_WINDOWS_DAYS:
            since = when - timedelta(days=days)
            low = bisect.bisect_left(times, since)
            net = upto - (totals[low - 1] if low else 0)
            net -= sum(e.delta for e in pending if e.at >= since)
            windows.append((days, max(0, -net)))
        return tuple(windows)

    def age(self, sku: str, when: datetime) -> int | None:
        """Days since the oldest intake after the latest count, as of ``when``."""
        events = self._events.get(sku)
        if events is None:
            return None
        upto = [e for e in events[: bisect.bisect_right(self._times[sku], when)] if e.seen <= when]
        counted = max((e.at for e in upto if e.kind == StockEventKind.COUNT.value), default=None)
        oldest = min(
            (
                e.at
                for e in upto
                if e.kind in _INTAKE and e.delta > 0 and (counted is None or e.at >= counted)
            ),
            default=None,
        )
        return None if oldest is None else max(0, (when - oldest).days)

    def units(self, sku: str, channel: str, after: datetime, until: datetime) -> int:
        """Net units sold on ``channel`` (or with no channel recorded) in (after, until]."""
        times = self._times.get(sku)
        if times is None:
            return 0
        events = self._events[sku]
        low, high = bisect.bisect_right(times, after), bisect.bisect_right(times, until)
        net = -sum(
            e.delta
            for e in events[low:high]
            if e.kind in _SALES and (e.channel is None or e.channel == channel)
        )
        return max(0, net)


def _running(deltas: list[int]) -> list[int]:
    """Running sums."""
    total, out = 0, []
    for delta in deltas:
        total += delta
        out.append(total)
    return out


class _FreshReferences(Mapping[str, MarketReference]):
    """Each listing's newest marketplace reference, as long as it is younger than 30 days."""

    def __init__(self) -> None:
        self.latest: dict[str, MarketReference] = {}
        self.cutoff: datetime | None = None

    def __getitem__(self, sku: str) -> MarketReference:
        found = self.latest[sku]
        if self.cutoff is not None and found.observed_at < self.cutoff:
            raise KeyError(sku)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self.latest)

    def __len__(self) -> int:
        return len(self.latest)


# -- results ----------------------------------------------------------------------------------


@dataclass
class SkuStats:
    """One SKU's outcome under one config over the replay."""

    decisions: int = 0
    changes: int = 0
    guard_blocks: int = 0
    breaker_blocks: int = 0
    seconds: float = 0.0
    buy_box_seconds: float = 0.0
    compared_seconds: float = 0.0  # with a qualifying competitor to compare against
    below_seconds: float = 0.0
    above_seconds: float = 0.0
    price_seconds: Decimal = ZERO
    priced_seconds: float = 0.0
    judged_seconds: float = 0.0  # priced, with a snapshot to judge the Buy Box by
    units: Decimal = ZERO
    revenue: Decimal = ZERO
    margin: Decimal = ZERO


class TickPoint(NamedTuple):
    """One pass of one config: its time, the margin it earned since the previous one, and how
    many listings held the Buy Box out of those priced with a snapshot to judge it by."""

    at: datetime
    margin: Decimal
    buy_box: int
    judged: int


@dataclass
class ConfigRun:
    """One config's replay state and outcome on one channel."""

    name: str
    pricing: PricingSettings
    prices: dict[str, Decimal | None]
    changed_at: dict[str, datetime | None]
    # The recorded changes of the 30 days before the replay, oldest first (with their old
    # prices: a change made elsewhere may not start from our previous price).
    history: dict[str, list[Change]]
    stats: dict[str, SkuStats] = field(default_factory=dict)
    trips: list[tuple[datetime, str]] = field(default_factory=list)
    series: list[TickPoint] = field(default_factory=list)
    stopped_until: datetime | None = None
    disarmed_until: datetime | None = None
    window: BreakerWindow = field(default_factory=BreakerWindow)
    # Per SKU, where the replayed changes start in ``points``.
    replay_start: dict[str, int] = field(default_factory=dict)
    # Every confirmed change as (time, new price): ``history``'s, then the replayed ones, in the
    # shape ``recent_prices`` takes. A replayed change's old price is the previous point's (or
    # the start price): it is not stored again, nor is a price already kept (the paths hold
    # millions of changes, mostly of a few distinct prices).
    points: dict[str, list[tuple[datetime, Decimal]]] = field(default_factory=dict)
    start_prices: dict[str, Decimal | None] = field(default_factory=dict)
    money: dict[Decimal, Decimal] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.points = {sku: [(c.at, c.new) for c in items] for sku, items in self.history.items()}
        self.start_prices = dict(self.prices)

    def sent(self, sku: str) -> list[tuple[datetime, Decimal]]:
        """The replayed changes of ``sku`` (not the recorded ones before the window)."""
        return self.points.get(sku, [])[self.replay_start[sku] :]

    def old_price(self, sku: str, index: int) -> Decimal | None:
        """The price the change at ``index`` of ``points`` replaced."""
        start = self.replay_start[sku]
        if index < start:
            return self.history[sku][index].old
        if index > start:
            return self.points[sku][index - 1][1]
        return self.start_prices[sku]

    def record(self, sku: str, at: datetime, price: Decimal) -> None:
        """A replayed change of ``sku`` to ``price`` at ``at``, now its live price."""
        kept = self.money.get(price)
        if kept is not None and kept.as_tuple() == price.as_tuple():
            price = kept  # the same value and exponent: share one object
        else:
            self.money[price] = price
        self.points[sku].append((at, price))
        self.prices[sku] = price
        self.changed_at[sku] = at


@dataclass
class ChannelResult:
    """Both configs' outcome on one channel."""

    channel: str
    currency: str
    start: datetime
    end: datetime
    runs: tuple[ConfigRun, ConfigRun]
    ticks: int = 0
    # The lowest qualifying competitor (landed) per SKU at each of its snapshots, for the
    # report's most-changed SKUs only (filled after the replay).
    competition: dict[str, list[tuple[datetime, Decimal | None]]] = field(default_factory=dict)


# -- the replay -------------------------------------------------------------------------------


class Replay:
    """Replays passes of one channel for a baseline and a candidate pricing config."""

    def __init__(
        self,
        *,
        channel: str,
        rows: Sequence[ListingRow],
        configs: Sequence[tuple[str, PricingSettings]],
        recorded: Timeline,
        peers: Mapping[str, Timeline],
        ledger: Ledger,
        own_seller_ids: frozenset[str],
        start: datetime,
        elasticity: Decimal = DEFAULT_ELASTICITY,
        resume_after: timedelta = DEFAULT_RESUME_AFTER,
        discovered: Mapping[str, datetime] | None = None,
    ) -> None:
        self.channel = channel
        self.discovered = discovered or {}
        self.rows = list(rows)
        self.recorded = recorded
        self.peer_timelines = peers
        self.ledger = ledger
        self.own = own_seller_ids
        self.elasticity = elasticity
        self.resume_after = resume_after
        self.observations: dict[str, OfferObservation] = {}
        self.markets: dict[str, Competition] = {}
        # The competition as of the last pass: what the period after it is judged against (a
        # snapshot observed later, by the next pass, must not reach back into that period).
        self.period_markets: dict[str, Competition] = {}
        self.references = _FreshReferences()
        self.previous: datetime | None = None
        self.ticks = 0
        skus = [row.sku for row in self.rows]
        self.runs = [self._run(name, pricing, skus, start) for name, pricing in configs]

    def _run(self, name: str, pricing: PricingSettings, skus: list[str], start: datetime) -> Any:
        history = {sku: self.recorded.history(sku, start) for sku in skus}
        prices = {sku: self.recorded.at(sku, start, before=True) for sku in skus}
        # When the live price at the start was set: our last change before it, else the
        # listing's own record if that is older, else its discovery (reconcile stamps a new
        # listing's price then); today's record is too new once the price moved since.
        changed: dict[str, datetime | None] = {}
        for row in self.rows:
            items, at = history[row.sku], row.price_changed_at
            if items:
                changed[row.sku] = items[-1].at
            elif at is not None and at <= start:
                changed[row.sku] = at
            else:
                found = self.discovered.get(row.sku)
                changed[row.sku] = found if found is not None and found <= start else None
        return ConfigRun(
            name,
            pricing,
            prices,
            changed,
            history,
            stats={sku: SkuStats() for sku in skus},
            replay_start={sku: len(items) for sku, items in history.items()},
        )

    def observe(self, observation: OfferObservation) -> None:
        """A recorded snapshot: the newest competition of its SKU from now on."""
        sku = observation.sku
        self.observations[sku] = observation
        self.markets[sku] = competition(observation, self.own)
        if observation.reference_price is not None:
            self.references.latest[sku] = MarketReference(
                observation.reference_price, observation.source, observation.observed_at
            )

    def tick(self, now: datetime) -> None:
        """Close the period since the previous pass, then run one pass at ``now``."""
        if self.previous is not None:
            self._account(self.previous, now)
        self.previous = now
        self.ticks += 1
        inputs = self._inputs(now)
        for run in self.runs:
            self._pass(run, now, inputs)
        self.period_markets = dict(self.markets)

    def finish(self, end: datetime) -> None:
        """Close the last period at ``end``."""
        if self.previous is not None and end > self.previous:
            self._account(self.previous, end)
            self.previous = end

    def _inputs(self, now: datetime) -> PassInputs:
        ledger = self.ledger
        on_hand, sales, ages = {}, {}, {}
        for sku in ledger.skus():
            on_hand[sku] = ledger.on_hand(sku, now)
            if (sold := ledger.sold(sku, now)) is not None:
                sales[sku] = sold
            if (age := ledger.age(sku, now)) is not None:
                ages[sku] = age
        peers: dict[str, tuple[tuple[str, Any], ...]] = {}
        for peer, timeline in self.peer_timelines.items():
            for row in self.rows:
                if (price := timeline.at(row.sku, now)) is not None:
                    peers[row.sku] = (*peers.get(row.sku, ()), (peer, price))
        self.references.cutoff = now - REFERENCE_KEPT
        return PassInputs(
            now=now,
            observations=self.observations,
            on_hand=on_hand,  # type: ignore[arg-type]
            sales=sales,
            ages=ages,
            history={},
            peers=peers,
            own_seller_ids=self.own,
            references=self.references,
        )

    def _pass(self, run: ConfigRun, now: datetime, base: PassInputs) -> None:
        if run.stopped_until is not None:
            if now < run.stopped_until:
                return  # the breaker stopped the channel; `repricerd resume` comes later
            run.stopped_until = None
            rearm = timedelta(seconds=run.pricing.guards.breaker.rearm_after_s)
            run.disarmed_until = now + rearm
        cutoff = now - HISTORY_WINDOW
        histories = {}
        for sku, points in run.points.items():
            if points and points[-1][0] >= cutoff:
                histories[sku] = _window(run, sku, cutoff)
        inputs = replace(base, history=histories)
        rules, guards = run.pricing.rules, run.pricing.guards
        outcomes: list[tuple[ListingRow, Outcome]] = []
        moves: list[tuple[str, Any, Any]] = []
        for row in self.rows:
            sku = row.sku
            current = run.prices[sku]
            live = row._replace(price=current, price_changed_at=run.changed_at[sku])
            outcome = decide(make_snapshot(live, self.channel, inputs), rules, guards)
            outcomes.append((live, outcome))
            judged = _judged(current, outcome)
            if judged is not None:
                moves.append((sku, current, judged))
        settings = guards.breaker
        big = [sku for sku, old, new in moves if is_big_move(old, new, settings)]
        earlier = run.window.earlier(self.channel, now, settings.window_s, set(big))
        armed = run.disarmed_until is None or run.disarmed_until <= now
        tripped = None
        if armed:
            pairs = [(old, new) for _sku, old, new in moves]
            total = len(self.rows)
            tripped = breaker_verdict(
                pairs, total, settings, earlier_big=min(earlier, total - len(pairs))
            )
        if tripped:
            run.trips.append((now, tripped))
            run.window.clear(self.channel)
            run.stopped_until = now + self.resume_after
        else:
            run.window.add(self.channel, big, now)
        for live, outcome in outcomes:
            stats = run.stats[live.sku]
            stats.decisions += 1
            verdict = outcome.verdict
            if verdict is Verdict.BLOCKED:
                stats.guard_blocks += 1
            elif verdict is Verdict.SEND and outcome.price is not None:
                if tripped:
                    stats.breaker_blocks += 1
                    continue
                stats.changes += 1
                run.record(live.sku, now, outcome.price)

    def _account(self, since: datetime, until: datetime) -> None:
        """Credit the period (since, until] to the prices each config set at ``since``."""
        seconds = (until - since).total_seconds()
        channel, elasticity = self.channel, self.elasticity
        margins = [ZERO for _ in self.runs]
        buy_box = [0 for _ in self.runs]
        judged = [0 for _ in self.runs]
        for row in self.rows:
            sku = row.sku
            market = self.period_markets.get(sku)
            rival = None if market is None else lowest_rival(market)
            sold = self.ledger.units(sku, channel, since, until)
            recorded_price = recorded_holds = None
            if sold and market is not None:
                recorded_price = self.recorded.at(sku, since)
                recorded_holds = holds_buy_box(market, recorded_price)
            unit_cost = (row.cost or ZERO) + (row.fees or ZERO)
            for index, run in enumerate(self.runs):
                price = run.prices[sku]
                stats = run.stats[sku]
                stats.seconds += seconds
                if price is None:
                    continue
                stats.price_seconds += price * Decimal(seconds)
                stats.priced_seconds += seconds
                if market is None:
                    continue  # no snapshot yet: nothing to judge the Buy Box or sales by
                stats.judged_seconds += seconds
                judged[index] += 1
                holds = holds_buy_box(market, price)
                if holds:
                    stats.buy_box_seconds += seconds
                    buy_box[index] += 1
                if rival is not None:
                    landed = price + market.shipping
                    stats.compared_seconds += seconds
                    if landed < rival:
                        stats.below_seconds += seconds
                    elif landed > rival:
                        stats.above_seconds += seconds
                if recorded_holds is not None:
                    units = estimated_units(
                        sold, recorded_price, recorded_holds, price, holds, elasticity
                    )
                    stats.units += units
                    stats.revenue += units * price
                    margin = units * (price - unit_cost)
                    stats.margin += margin
                    margins[index] += margin
        for index, run in enumerate(self.runs):
            run.series.append(TickPoint(until, margins[index], buy_box[index], judged[index]))


def _window(run: ConfigRun, sku: str, cutoff: datetime) -> tuple[tuple[datetime, Decimal], ...]:
    """``recent_prices`` for one SKU: the price in effect at the window start (the old price of
    its first change inside the window), then every change inside it: one slice of ``points``
    (this runs every decision)."""
    points = run.points[sku]
    low = bisect.bisect_left(points, (cutoff,))
    first = run.old_price(sku, low)
    inside = tuple(points[low:])
    return inside if first is None else ((cutoff, first), *inside)


def _judged(current: Any, outcome: Outcome) -> Any:
    """The move the breaker judges: the strategy's wish when it went further than what the
    guards let through (as a reprice pass judges it)."""
    wished, sent = outcome.decision.target, outcome.price
    if wished is None or not wished.is_finite():
        return sent
    if sent is None or current is None:
        return wished
    return wished if abs(wished - current) > abs(sent - current) else sent


def grid(first: datetime, end: datetime, step: timedelta) -> Iterator[datetime]:
    """The pass times: every ``step`` from ``first`` up to ``end``."""
    at = first
    while at <= end:
        yield at
        at += step


# -- loading from the database ------------------------------------------------------------------


async def stream_snapshots(
    db: Database, channel: str, selection: SkuSelection, since: datetime, until: datetime
) -> AsyncIterator[OfferObservation]:
    """The channel's offer snapshots observed in [since, until], oldest first, in batches."""
    query = (
        sa.select(OFFERS)
        .where(
            OFFERS.c.channel == channel,
            OFFERS.c.observed_at >= since,
            OFFERS.c.observed_at <= until,
            sku_clause(OFFERS.c.sku, selection),
        )
        .order_by(OFFERS.c.observed_at, OFFERS.c.id)
    )
    async with db.read() as conn:
        result = await conn.stream(query.execution_options(yield_per=STREAM_BATCH))
        async for partition in result.partitions(STREAM_BATCH):
            for row in partition:
                yield observation_of(row)


async def load_timeline(
    db: Database, channel: str, selection: SkuSelection, since: datetime
) -> Timeline:
    """Recorded live prices of ``channel``: confirmed price changes since ``since``, and
    today's listing prices."""
    rows = await load_listing_rows(db, channel, selection)
    query = (
        sa.select(ACTIONS.c.sku, ACTIONS.c.completed_at, ACTIONS.c.old_price, ACTIONS.c.new_price)
        .where(
            ACTIONS.c.channel == channel,
            ACTIONS.c.kind == "price",
            ACTIONS.c.status == ActionStatus.CONFIRMED.value,
            ACTIONS.c.completed_at >= since,
            sku_clause(ACTIONS.c.sku, selection),
        )
        .order_by(ACTIONS.c.completed_at, ACTIONS.c.id)
    )
    changes: dict[str, list[Change]] = defaultdict(list)
    async with db.read() as conn:
        for sku, at, old, new in (await conn.execute(query)).all():
            if at is not None and new is not None:
                changes[sku].append(Change(at, old, new))
    return Timeline({row.sku: row.price for row in rows}, changes)


async def load_ledger(db: Database, selection: SkuSelection) -> Ledger:
    """Every stock event of the selected SKUs (the ledger is small beside the snapshots)."""
    query = sa.select(
        EVENTS.c.sku,
        EVENTS.c.occurred_at,
        EVENTS.c.kind,
        EVENTS.c.delta,
        EVENTS.c.channel,
        EVENTS.c.recorded_at,
    ).where(sku_clause(EVENTS.c.sku, selection))
    async with db.read() as conn:
        return Ledger((await conn.execute(query)).all())


async def discovered_at(db: Database, channel: str, selection: SkuSelection) -> dict[str, datetime]:
    """When each listing of ``channel`` was discovered."""
    query = sa.select(LISTINGS.c.sku, LISTINGS.c.discovered_at).where(
        LISTINGS.c.channel == channel, sku_clause(LISTINGS.c.sku, selection)
    )
    async with db.read() as conn:
        return {sku: at for sku, at in (await conn.execute(query)).all()}


async def first_snapshot_at(
    db: Database, channel: str, selection: SkuSelection, since: datetime
) -> datetime | None:
    """When the first snapshot of the window was observed."""
    query = sa.select(sa.func.min(OFFERS.c.observed_at)).where(
        OFFERS.c.channel == channel,
        OFFERS.c.observed_at >= since,
        sku_clause(OFFERS.c.sku, selection),
    )
    async with db.read() as conn:
        found: datetime | None = (await conn.execute(query)).scalar_one_or_none()
        return found


@dataclass(frozen=True)
class BacktestRequest:
    """What to replay."""

    channels: Sequence[str]
    baseline: PricingSettings
    candidate: PricingSettings
    since: datetime
    until: datetime
    selection: SkuSelection = None
    step: timedelta = DEFAULT_STEP
    elasticity: Decimal = DEFAULT_ELASTICITY
    resume_after: timedelta = DEFAULT_RESUME_AFTER
    own_seller_ids: frozenset[str] = frozenset()
    labels: tuple[str, str] = ("baseline", "candidate")


async def backtest_channel(
    db: Database,
    request: BacktestRequest,
    channel: str,
    *,
    progress: Callable[[int, int], None] | None = None,
    jobs: int = 1,
) -> ChannelResult | None:
    """Replay one channel from the database; None if it has no listing or no snapshot.

    With ``jobs`` ≥ 2 (and a database another process can open) the candidate is replayed in a
    second process while this one replays the baseline: the two paths share only read-only
    inputs, so the results are the same as one process replaying both.
    """
    configs = list(zip(request.labels, (request.baseline, request.candidate), strict=True))
    url = _shared_url(db) if jobs >= 2 else None
    if url is None:
        found = await _replay(db, request, channel, configs, progress)
        if found is None:
            return None
        replay, first, end = found
        runs = (replay.runs[0], replay.runs[1])
    else:
        loop = asyncio.get_running_loop()
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            other = loop.run_in_executor(pool, _replay_elsewhere, url, request, channel)
            found = await _replay(db, request, channel, configs[:1], progress)
            candidate = await other
        if found is None or candidate is None:
            return None
        replay, first, end = found
        runs = (replay.runs[0], candidate)
    result = ChannelResult(channel, replay.rows[0].currency, first, end, runs, replay.ticks)
    result.competition = await competition_paths(
        db, channel, most_changed(result), request.own_seller_ids, first, request.until
    )
    return result


def _shared_url(db: Database) -> str | None:
    """The database's URL if another process can open the same database (not in memory)."""
    url = db.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def _replay_elsewhere(url: str, request: BacktestRequest, channel: str) -> ConfigRun | None:
    """The candidate's replay, in a worker process with its own connection."""

    async def go() -> ConfigRun | None:
        db = Database(url)
        try:
            found = await _replay(
                db, request, channel, [(request.labels[1], request.candidate)], None
            )
        finally:
            await db.dispose()
        return None if found is None else found[0].runs[0]

    return asyncio.run(go())


async def _replay(
    db: Database,
    request: BacktestRequest,
    channel: str,
    configs: Sequence[tuple[str, PricingSettings]],
    progress: Callable[[int, int], None] | None,
) -> tuple[Replay, datetime, datetime] | None:
    """Replay ``configs`` on one channel: the replay, its first pass and its end."""
    selection = request.selection
    rows = await load_listing_rows(db, channel, selection)
    first = await first_snapshot_at(db, channel, selection, request.since)
    if not rows or first is None:
        return None
    warm_up = first - REFERENCE_KEPT
    recorded = await load_timeline(db, channel, selection, first - HISTORY_WINDOW)
    # Both configs' parity references, whichever configs this replay runs: the inputs are the
    # same in one process or two.
    peers = {
        rule.reference: await load_timeline(db, rule.reference, selection, first - HISTORY_WINDOW)
        for pricing in (request.baseline, request.candidate)
        for rule in pricing.guards.parity
        if rule.channel == channel
    }
    replay = Replay(
        channel=channel,
        rows=rows,
        configs=configs,
        recorded=recorded,
        peers=peers,
        ledger=await load_ledger(db, selection),
        own_seller_ids=request.own_seller_ids,
        start=first,
        elasticity=request.elasticity,
        resume_after=request.resume_after,
        discovered=await discovered_at(db, channel, selection),
    )
    total = sum(1 for _ in grid(first, request.until, request.step))
    # Stream: the replay consumes snapshots as the passes reach their time.
    ticks = grid(first, request.until, request.step)
    at = next(ticks, None)
    async for observation in stream_snapshots(db, channel, selection, warm_up, request.until):
        while at is not None and observation.observed_at > at:
            replay.tick(at)
            if progress:
                progress(1, total)
            at = next(ticks, None)
        replay.observe(observation)
    while at is not None:
        replay.tick(at)
        if progress:
            progress(1, total)
        at = next(ticks, None)
    end = (replay.previous or first) + request.step
    replay.finish(end)
    return replay, first, end


def most_changed(result: ChannelResult, count: int = 4) -> list[str]:
    """The SKUs whose two price paths differ most (most changes in either, then name)."""
    base, cand = result.runs
    score = {
        sku: abs(cand.stats[sku].changes - base.stats[sku].changes)
        + cand.stats[sku].changes
        + base.stats[sku].changes
        for sku in base.stats
    }
    ranked = sorted(score, key=lambda sku: (-score[sku], sku))
    return [sku for sku in ranked if score[sku]][:count]


async def competition_paths(
    db: Database,
    channel: str,
    skus: Sequence[str],
    own: frozenset[str],
    since: datetime,
    until: datetime,
) -> dict[str, list[tuple[datetime, Decimal | None]]]:
    """The lowest qualifying competitor over time of a few SKUs (for the report's charts)."""
    paths: dict[str, list[tuple[datetime, Decimal | None]]] = {sku: [] for sku in skus}
    if skus:
        async for obs in stream_snapshots(db, channel, frozenset(skus), since, until):
            paths[obs.sku].append((obs.observed_at, lowest_rival(competition(obs, own))))
    return paths


async def backtest_channels(
    db: Database, request: BacktestRequest, console: Console | None = None, *, jobs: int = 1
) -> list[ChannelResult]:
    """Replay every requested channel in turn, with a progress bar on ``console``."""
    results = []
    with Progress(console=console, disable=console is None, transient=True) as bar:
        for channel in request.channels:
            task = bar.add_task(f"replaying {channel}", total=None)

            def advance(done: int, total: int, task: TaskID = task) -> None:
                bar.update(task, advance=done, total=total)

            found = await backtest_channel(db, request, channel, progress=advance, jobs=jobs)
            if found is not None:
                results.append(found)
    return results
