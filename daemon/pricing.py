"""The reprice pass for one channel: snapshot → strategy → guards → breaker → action rows."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.bulk import gc_paused
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus, Listing
from daemon.decision_inputs import (
    config_digest,
    config_document,
    encode_inputs,
    remember_config,
    steps_json,
    trace_of,
)
from daemon.intents import PlannedWrite, idempotency_keys, new_idempotency_key
from daemon.ledger import on_hand
from daemon.outbox import Outbox
from daemon.pass_gate import abandon_pass, close_gate, open_gate
from daemon.pricing_history import (
    forecast_demand,
    inventory_age_days,
    no_sales,
    peer_prices,
    recent_prices,
    units_sold,
)
from daemon.settings import PricingSettings
from daemon.snapshots import ListingRow, MarketReference, marketplace_references
from domain.offers import OfferObservation
from strategies.base import Snapshot
from strategies.batch import decide_batch
from strategies.breaker import breaker_verdict, is_big_move
from strategies.engine import Outcome, decide
from strategies.guards import Verdict

LISTINGS = Listing.__table__  # type: ignore[attr-defined]
PLAN_CHUNK = 2_000
SELECTION_QUERY_LIMIT = 2_000
# A marketplace reference stays the listing's reference this long after it was last reported
# (unless a newer one replaces it): Walmart reports its reasonable price only when it unpublishes.
REFERENCE_KEPT = timedelta(days=30)
_STATUS = {
    Verdict.SEND: ActionStatus.PLANNED,
    Verdict.HOLD: ActionStatus.HELD,
    Verdict.BLOCKED: ActionStatus.BLOCKED,
}


@dataclass(frozen=True)
class PassInputs:
    """What snapshots are built from besides the listing row, for one channel and pass."""

    now: datetime
    observations: Mapping[str, OfferObservation] = field(default_factory=dict)
    on_hand: Mapping[str, int] = field(default_factory=dict)
    sales: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    ages: Mapping[str, int] = field(default_factory=dict)
    history: Mapping[str, tuple[tuple[datetime, Any], ...]] = field(default_factory=dict)
    peers: Mapping[str, tuple[tuple[str, Any], ...]] = field(default_factory=dict)
    own_seller_ids: frozenset[str] = frozenset()
    # Each listing's newest stored marketplace reference, for observations that bring none.
    references: Mapping[str, MarketReference] = field(default_factory=dict)
    # Forecast units a day per SKU from the last inventory pass (excess_inventory's forecast).
    forecast: Mapping[str, Decimal] = field(default_factory=dict)


async def load_inputs(
    db: Database,
    *,
    channel: str,
    now: datetime,
    pricing: PricingSettings,
    observations: Mapping[str, OfferObservation],
    own_seller_ids: frozenset[str],
    skus: Collection[str] | None = None,
) -> PassInputs:
    """Load the ledger and history inputs of one channel's pass in a handful of queries.

    ``skus`` limits them to an event-driven pass's few SKUs instead of the whole channel.
    """
    if skus is not None and len(skus) > SELECTION_QUERY_LIMIT:
        skus = None  # a big selection: one scan of everything beats a huge IN list
    peers = {rule.reference for rule in pricing.guards.parity if rule.channel == channel}
    async with db.read() as conn:
        return PassInputs(
            now=now,
            observations=observations,
            on_hand=await on_hand(conn, skus),
            sales=await units_sold(conn, now, skus),
            ages=await inventory_age_days(conn, now, skus),
            history=await recent_prices(conn, channel, now, skus),
            peers=await peer_prices(conn, channel, peers, skus),
            own_seller_ids=own_seller_ids,
            references=await marketplace_references(conn, channel, now - REFERENCE_KEPT, skus),
            forecast=await forecast_demand(conn, channel, skus),
        )


def make_snapshot(row: ListingRow, channel: str, inputs: PassInputs) -> Snapshot:
    """One listing's frozen snapshot: listing, product, offers, stock, sales and history."""
    observation = inputs.observations.get(row.sku)
    history = with_live_price(inputs.history.get(row.sku, ()), row)
    reference = observation.reference_price if observation else None
    if reference is not None and observation is not None:
        origin: tuple[str, datetime | None] = (observation.source, observation.observed_at)
    elif (stored := inputs.references.get(row.sku)) is not None:
        reference, origin = stored.price, (stored.source, stored.observed_at)
    else:
        origin = ("", None)
    return Snapshot(
        channel,
        row.sku,
        row.currency,
        inputs.now,
        row.price,
        row.cost,
        row.fees,
        row.min_price,
        row.max_price,
        row.tags,
        row.quantity,
        inputs.on_hand.get(row.sku),
        observation.offers if observation else (),
        observation.buy_box_price if observation else None,
        observation.buy_box_seller if observation else None,
        reference,
        inputs.own_seller_ids,
        inputs.sales.get(row.sku) or no_sales(),
        inputs.ages.get(row.sku),
        history,
        history[-1][0] if history else None,
        inputs.peers.get(row.sku, ()),
        *origin,
        forecast_daily_demand=inputs.forecast.get(row.sku),
    )


def with_live_price(
    history: tuple[tuple[datetime, Any], ...], row: ListingRow
) -> tuple[tuple[datetime, Any], ...]:
    """Our confirmed history, plus the live price if someone else set it since (seen by
    reconcile): the drift guard then anchors on it a day later instead of holding the listing
    against a price that is no longer live."""
    changed, price = row.price_changed_at, row.price
    if changed is None or price is None or (history and history[-1][1] == price):
        return history
    if history and changed <= history[-1][0]:
        return history
    return (*history, (changed, price))


@dataclass
class PricePlan:
    """Action rows to record and listing decision digests to remember, for one channel."""

    actions: list[PlannedWrite]
    digests: list[dict[str, Any]]
    counts: dict[str, int]
    # For each listing whose strategy asked for a price: (sku, current price, the move the
    # breaker judges). That is the strategy's own target whenever it wanted to go further than
    # the guards let it, whichever guard stopped it: a collapse of competitor prices must trip
    # the breaker while the step guard keeps each move at 10 %, and equally while the
    # reference band refuses every one of them (nothing sent, but nobody told either).
    moves: list[tuple[str, Any, Any]] = field(default_factory=list)
    # SKUs decided HOLD or BLOCKED in this plan (recorded or not): older open intents for them
    # must not be sent any more.
    quiet: list[str] = field(default_factory=list)


def digest(outcome: Outcome) -> str:
    """A short fingerprint of a decision, to record an unchanged hold or block only once."""
    text = f"{outcome.verdict}|{outcome.rule}|{outcome.reason}|{outcome.price}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def plan_prices(
    rows: Sequence[ListingRow],
    *,
    channel: str,
    pass_id: str,
    pricing: PricingSettings,
    inputs: PassInputs,
    every_decision: bool = False,
) -> PricePlan:
    """Decide every listing; SEND becomes a planned intent, a changed hold/block is recorded.

    ``every_decision`` keeps unchanged holds and blocks too (``repricerd simulate``).
    """
    actions: list[PlannedWrite] = []
    digests: list[dict[str, Any]] = []
    moves: list[tuple[str, Any, Any]] = []
    quiet: list[str] = []
    counts: dict[str, int] = dict.fromkeys(Verdict, 0)
    rules, guards, now = pricing.rules, pricing.guards, inputs.now
    keys = idempotency_keys(len(rows))
    config = config_digest(config_document(pricing, inputs.own_seller_ids))
    with gc_paused():
        snapshots = [make_snapshot(row, channel, inputs) for row in rows]
        lean = [] if every_decision else _decide_in_columns(rows, snapshots, pricing)
        for index, row in enumerate(rows):
            snapshot = snapshots[index]
            outcome = (lean[index] if lean else None) or decide(snapshot, rules, guards)
            counts[outcome.verdict] += 1
            if outcome.verdict is not Verdict.SEND:
                quiet.append(row.sku)
            # Judged every pass, recorded or not: an unchanged block is still a wish to move.
            judged = _judged(row.price, outcome)
            if judged is not None:
                moves.append((row.sku, row.price, judged))
            # A send is always recorded; a hold or block only when it differs from the last one.
            fingerprint = None if outcome.verdict is Verdict.SEND else digest(outcome)
            unchanged = fingerprint is not None and fingerprint == row.last_decision
            if unchanged and not every_decision:
                continue  # the same hold/block as last time: already explained in the log
            if fingerprint is not None and not outcome.guards.steps:
                outcome = decide(snapshot, rules, guards)  # a new hold: its guard steps are stored
            if fingerprint != row.last_decision:
                digests.append({"b_sku": row.sku, "b_digest": fingerprint})
            action = action_row(
                outcome,
                channel=channel,
                sku=row.sku,
                pass_id=pass_id,
                now=now,
                old_price=row.price,
                currency=row.currency,
                key=keys[index],
                explained_by=(encode_inputs(snapshot), config),
            )
            actions.append(action)
    return PricePlan(actions, digests, counts, moves, quiet)


def _decide_in_columns(
    rows: Sequence[ListingRow], snapshots: Sequence[Snapshot], pricing: PricingSettings
) -> list[Outcome | None]:
    """Lean outcomes of the listings the columns cover, among those likely to move.

    A listing whose last decision was a hold or block (a digest remembered) most likely holds
    again, unchanged and unrecorded: the scalar path is as fast for it (its Decimals are at
    hand, nothing is converted), so it stays there. The rest (last sent, or never decided) go
    to ``decide_batch``. ``simulate`` (every decision, guard verdicts shown) uses none of it.
    """
    moving = [index for index, row in enumerate(rows) if row.last_decision is None]
    lean: list[Outcome | None] = [None] * len(rows)
    if moving:
        found = decide_batch([snapshots[i] for i in moving], pricing.rules, pricing.guards)
        for index, outcome in zip(moving, found, strict=True):
            lean[index] = outcome
    return lean


def _judged(current: Any, outcome: Outcome) -> Any:
    """The bigger of the strategy's wish and the guarded price, as a move from ``current``;
    the wish alone when a guard held or refused it; ``None`` when the strategy held."""
    wished, sent = outcome.decision.target, outcome.price
    if wished is None or not wished.is_finite():
        return sent  # a strategy hold, or an impossible target (refused by the sanity guard)
    if sent is None or current is None:
        return wished
    return wished if abs(wished - current) > abs(sent - current) else sent


def action_row(
    outcome: Outcome,
    *,
    channel: str,
    sku: str,
    pass_id: str,
    now: datetime,
    old_price: Decimal | None,
    currency: str,
    key: str | None = None,
    explained_by: tuple[dict[str, Any], str] | None = None,
) -> PlannedWrite:
    """The recorded decision for one outcome (``key``: its idempotency key, else a new one).

    ``explained_by`` (the snapshot's compact inputs, the config digest): store those instead of
    the strategy's trace, which ``explain`` re-derives from them (``daemon.decision_inputs``).
    """
    inputs, config = explained_by if explained_by is not None else (None, None)
    return PlannedWrite(
        pass_id=pass_id,
        kind=ActionKind.PRICE,
        channel=channel,
        sku=sku,
        status=_STATUS[outcome.verdict],
        idempotency_key=key or new_idempotency_key(),
        created_at=now,
        reason=outcome.reason[:1000],
        old_price=old_price,
        new_price=outcome.price,
        currency=currency,
        floor=outcome.guards.floor,
        ceiling=outcome.guards.ceiling,
        strategy=outcome.strategy,
        rule=outcome.rule,
        trace=[] if inputs is not None else trace_of(outcome),
        inputs=inputs,
        config=config,
        guard_verdicts=steps_json(outcome.guards.steps),
    )


def apply_breaker(
    plans: Sequence[PricePlan], *, total: int, pricing: PricingSettings
) -> str | None:
    """Block every intent of the pass if it would move too many listings too far at once."""
    moves = [(old, new) for plan in plans for _sku, old, new in plan.moves]
    reason = breaker_verdict(moves, total, pricing.guards.breaker)
    if reason is None:
        return None
    step = {"step": "guard:breaker", "verdict": "blocked", "detail": reason}
    for plan in plans:
        plan.actions = [
            replace(
                action,
                status=ActionStatus.BLOCKED,
                reason=f"circuit breaker: {reason}"[:1000],
                guard_verdicts=[*action.guard_verdicts, step],
            )
            if action.status is ActionStatus.PLANNED
            else action
            for action in plan.actions
        ]
    for plan in plans:
        # A breaker block is news every time: make sure the next pass's decision is recorded.
        plan.digests = [{**d, "b_digest": None} for d in plan.digests]
        plan.counts[Verdict.BLOCKED] += plan.counts[Verdict.SEND]
        plan.counts[Verdict.SEND] = 0
    return reason


class BreakerWindow:
    """Big moves of recent passes per channel, so event-driven reprices of a few SKUs each are
    judged together by the breaker (a competitor collapse can arrive webhook by webhook).
    In memory: a restart forgets the window, the next full pass judges the channel afresh."""

    def __init__(self) -> None:
        self._moves: dict[str, dict[str, datetime]] = {}

    def earlier(self, channel: str, now: datetime, window_s: int, excluding: set[str]) -> int:
        """Listings of ``channel`` that moved big within the window, outside ``excluding``."""
        recent = self._moves.get(channel, {})
        cutoff = now - timedelta(seconds=window_s)
        for sku in [sku for sku, at in recent.items() if at < cutoff]:
            del recent[sku]
        return sum(1 for sku in recent if sku not in excluding)

    def add(self, channel: str, skus: Sequence[str], now: datetime) -> None:
        """Remember big moves that were let through."""
        self._moves.setdefault(channel, {}).update(dict.fromkeys(skus, now))

    def clear(self, channel: str) -> None:
        """Forget a channel's moves (its breaker tripped: they were all blocked)."""
        self._moves.pop(channel, None)


async def plan_and_record(
    outbox: Outbox,
    rows: Sequence[ListingRow],
    *,
    channel: str,
    pass_id: str,
    pricing: PricingSettings,
    inputs: PassInputs,
    breaker_armed: bool = True,
    channel_total: int | None = None,
    window: BreakerWindow | None = None,
) -> tuple[dict[str, int], str | None]:
    """Decide every row, run the breaker over the whole pass, record the actions.

    ``channel_total`` is the channel's listing count when ``rows`` is a selection (the breaker
    judges a share of the whole channel); ``window`` carries recent passes' big moves.
    Returns counts per verdict (plus ``recorded``) and the breaker's reason if it tripped.
    Deciding is CPU work on the event loop; between chunks the loop answers webhooks and
    health checks. (Deciding in a worker thread was measured slower: the database driver's
    thread needs the GIL for every row it binds and convoys behind the deciding thread; so was
    recording chunk k while deciding chunk k+1, see bench/RESULTS.md.)
    """
    counts = {verdict.value: 0 for verdict in Verdict}
    counts["recorded"] = 0
    moves: list[tuple[str, Any, Any]] = []
    quiet: list[str] = []
    db, clock = outbox.db, outbox.clock
    # Chunk by chunk: decide, record behind the pass gate, forget. Memory stays flat however
    # large the catalogue; the breaker needs only the moves, and opens the gate at the end.
    # The collector stays paused meanwhile: a collection half-way would walk every live object
    # of the pass (offers included) for nothing.
    document = config_document(pricing, inputs.own_seller_ids)
    async with db.write() as conn:
        await remember_config(db, conn, config_digest(document), document, inputs.now)
    await open_gate(db, clock, channel=channel, pass_id=pass_id)
    try:
        with gc_paused():
            for start in range(0, len(rows), PLAN_CHUNK):
                plan = plan_prices(
                    rows[start : start + PLAN_CHUNK],
                    channel=channel,
                    pass_id=pass_id,
                    pricing=pricing,
                    inputs=inputs,
                )
                moves.extend(plan.moves)
                quiet.extend(plan.quiet)
                for verdict, count in plan.counts.items():
                    counts[verdict] += count
                counts["recorded"] += await outbox.record(
                    plan.actions, also=_digest_writer(db, channel, plan)
                )
            settings = pricing.guards.breaker
            total = max(channel_total or 0, len(rows))
            big = [sku for sku, old, new in moves if is_big_move(old, new, settings)]
            earlier = (
                window.earlier(channel, inputs.now, settings.window_s, set(big)) if window else 0
            )
            tripped = None
            if breaker_armed:
                pairs = [(old, new) for _sku, old, new in moves]
                tripped = breaker_verdict(
                    pairs, total, settings, earlier_big=min(earlier, total - len(pairs))
                )
            await close_gate(db, clock, channel=channel, pass_id=pass_id, blocked_by=tripped)
    except Exception:
        # Nothing of a pass that was not judged as a whole may go out; the next pass decides again.
        await abandon_pass(db, clock, channel=channel, pass_id=pass_id)
        raise
    # A newer decision to hold or block wins over an older intent still waiting to be sent.
    await outbox.supersede_open(channel, ActionKind.PRICE, quiet, before_pass=pass_id)
    if window is not None:
        if tripped:
            window.clear(channel)
        else:
            window.add(channel, big, inputs.now)
    if tripped:
        counts[Verdict.BLOCKED.value] += counts[Verdict.SEND.value]
        counts[Verdict.SEND.value] = 0
    return counts, tripped


def _digest_writer(
    db: Database, channel: str, plan: PricePlan
) -> Callable[[AsyncConnection], Awaitable[None]]:
    async def write(conn: AsyncConnection) -> None:
        await remember_digests(db, conn, channel, plan.digests)

    return write


async def remember_digests(
    db: Database, conn: AsyncConnection, channel: str, digests: Sequence[dict[str, Any]]
) -> None:
    """Store each listing's latest decision fingerprint (inside the caller's transaction)."""
    rows = [{**d, "b_channel": channel} for d in digests]
    await db.execute_many(conn, _REMEMBER_DIGEST, rows)


_REMEMBER_DIGEST = (
    sa.update(LISTINGS)
    .where(LISTINGS.c.channel == sa.bindparam("b_channel"), LISTINGS.c.sku == sa.bindparam("b_sku"))
    .values(last_decision=sa.bindparam("b_digest"))
)
