"""Guards: always applied after the strategy, never disableable by it.

The result of ``apply_guards`` is the only price the daemon may send. Each guard appends a
``TraceStep("guard:<name>", verdict, detail)`` (verdicts ok / limited / clamped / skipped /
blocked) that is stored with the action.

Order, and why:

1. **bounds** — floor = max(min_price, cost × (1 + min margin) + fees) and ceiling = max_price,
   both rounded inward to cents. Without a floor or a ceiling, or with floor > ceiling, nothing is
   sent at all (the 2012 "blank minimum" incident priced listings at $0.01).
2. **sanity** — a non-finite, zero or negative target is refused, never clamped into a price.
3. **max_step** — the target is limited to ±max_step_pct of the current price (band rounded
   inward, so the rounding cent never exceeds the limit).
4. **max_drift** — the target is limited to ±max_daily_move_pct of the *anchor*, our price in
   effect 24 h ago (see ``drift_anchor``), band rounded inward. Step and drift are rate limits;
   they run before the hard bounds so that the bounds can override them (below).
5. **clamp** to [floor, ceiling] — the hard bounds, applied after the rate limits so that they
   always hold.
6. **parity** — per matching ``ParityRule``: not above peer × (1 + max_above_pct/100), rounded
   down to cents. Clamps down only; it runs after the bounds so that a cap below the floor is
   detected and refused instead of being clamped back up.
7. **reference_band** — refuses (never clamps) a final price further than reference_band_pct %
   from the reference price (the marketplace's, else our own 30-day median): Amazon and Walmart
   suppress such offers as "potential pricing errors". It checks the final price, so it runs
   after every guard that can still move it. One exception: when our *live* price is already
   outside the band of a *marketplace* reference that came with the marketplace unpublishing
   the offer (Walmart's REASONABLE_PRICE_NOT_SATISFIED), the price is moved
   into the band (even when the strategy holds) so the offer can be republished, or blocked
   with the bound to change when floor, ceiling or parity leave no price inside it.
8. **hold** if the result equals the current price (nothing to send).

What wins on a conflict:

- The floor and the ceiling always win. A SEND price is inside [floor, ceiling]. If the whole
  band allowed by step and drift (E below) lies outside [floor, ceiling], the price goes to the
  bound on E's side: the floor if E lies entirely below it, else the ceiling, further lowered
  to the parity cap if one applies (a price above the ceiling is corrected at once, not walked
  in steps).
- Otherwise the step and drift limits win over the strategy and over parity. E is the
  intersection of the step band around the current price and the drift band around the anchor.
  When they do not overlap (the current price already moved more than allowed in 24 h, e.g. by
  hand, outside repricerd or as the 24 h window rolled on, and is more than a step away from the
  drift band), E is the current price alone and the listing holds: jumping into the band would
  break max_step, and a guard must not start a walk the strategy did not ask for. The band
  re-centres when the anchor moves on; ``recent_prices`` holds only our confirmed prices, so
  after a change made outside repricerd that can take until its history ages out (30 days).
- A parity cap below the floor, or below E when the ceiling did not force the price out of E,
  is refused (BLOCKED): parity cannot be met without selling below the floor or without moving
  further than the rate limits allow. Walking towards the cap would send prices above it; the
  refusal repeats until the peer price rises or an operator acts.
- The reference band is never traded off: a final price outside it is refused. A live price
  already outside a marketplace's band is moved into it, past the step and drift limits (the
  offer is not selling anyway), but never past the floor, the ceiling or a parity cap.

So a SEND price p satisfies: finite, positive, 2 dp, floor ≤ p ≤ ceiling, p ≤ every parity cap,
|p − reference| ≤ reference_band_pct % of the reference, p ≠ current, and p ∈ E unless
(p = floor and E lies below the floor) or (p = min(ceiling, parity caps) and E lies above the
ceiling) or the current price lies outside the marketplace reference's band.
``tests/test_guards.py`` asserts exactly this over random inputs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from enum import StrEnum
from typing import NamedTuple

from strategies.base import CENT, ZERO, Decision, Snapshot, TraceStep, quantize
from strategies.breaker import BreakerSettings, percent_text
from strategies.guard_settings import GuardSettings, ParityRule

DRIFT_WINDOW = timedelta(hours=24)
REFERENCE_WINDOW = timedelta(days=30)

_DRIFT_SKIPPED = TraceStep("guard:max_drift", "skipped", "no current price and no price history")
PARITY_NONE = TraceStep("guard:parity", "skipped", "no parity rule for this channel")

__all__ = [
    "PARITY_NONE",
    "BreakerSettings",
    "GuardOutcome",
    "GuardSettings",
    "ParityRule",
    "Verdict",
    "apply_guards",
    "drift_anchor",
    "price_bounds",
    "reference_price",
]


class Verdict(StrEnum):
    """What the guards decided."""

    SEND = "send"
    HOLD = "hold"
    BLOCKED = "blocked"


class GuardOutcome(NamedTuple):
    """The guarded price (``None`` unless ``verdict`` is SEND) and every guard's verdict."""

    verdict: Verdict
    price: Decimal | None
    reason: str
    steps: tuple[TraceStep, ...]
    floor: Decimal | None
    ceiling: Decimal | None


def price_bounds(
    snapshot: Snapshot, settings: GuardSettings
) -> tuple[Decimal | None, Decimal | None]:
    """Return (floor, ceiling): floor = max(min_price, cost × (1 + min margin) + fees)."""
    floor = snapshot.min_price
    if snapshot.cost is not None:
        by_cost = snapshot.cost * settings.margin_factor + (snapshot.fees or ZERO)
        floor = by_cost if floor is None or by_cost > floor else floor
    # Round inward: a floor rounded down or a ceiling rounded up would let through a price
    # just outside the bound it stands for.
    return (
        None if floor is None else floor.quantize(CENT, ROUND_CEILING),
        None if snapshot.max_price is None else snapshot.max_price.quantize(CENT, ROUND_FLOOR),
    )


def _usable(price: Decimal | None) -> bool:
    """True for a finite, positive price (NaN is never ordered, so test finiteness first)."""
    return price is not None and price.is_finite() and price > 0


def drift_anchor(
    history: tuple[tuple[datetime, Decimal], ...], now: datetime, current: Decimal | None
) -> tuple[Decimal | None, str]:
    """Our price in effect 24 h before ``now``, and where it came from.

    The last ``history`` entry at or before now − 24 h; if none, the oldest entry inside the
    24 h; if none, ``current``. ``history`` is oldest first (``Snapshot.recent_prices``), so the
    scan runs backwards and usually stops after the few entries of the last day. Entries after
    ``now`` and unusable prices are ignored.
    """
    cutoff = now - DRIFT_WINDOW
    inside: Decimal | None = None
    for at, price in reversed(history):
        if at > now or not (price.is_finite() and price > 0):
            continue
        if at <= cutoff:
            return price, "price 24 h ago"
        inside = price
    if inside is not None:
        return inside, "oldest price in the last 24 h"
    if current is not None:
        return current, "current price"
    return None, ""


def reference_price(snapshot: Snapshot, settings: GuardSettings) -> tuple[Decimal | None, str, int]:
    """The reference for the band, its source ("marketplace" or "own median") and the number
    of own prices counted.

    The marketplace's reference if usable, else the median of our own confirmed prices over the
    last 30 days if there are at least ``reference_min_history`` of them, else ``None``.
    """
    if _usable(snapshot.reference_price):
        return snapshot.reference_price, "marketplace", 0
    history = snapshot.recent_prices
    if len(history) < settings.reference_min_history:
        return None, "", len(history)
    now = snapshot.now
    start = now - REFERENCE_WINDOW
    values: list[Decimal] | None = None
    if start <= history[0][0] and history[-1][0] <= now:
        # Fast path: oldest first and all inside the window, as the daemon loads it.
        try:
            values = sorted([price for _, price in history])
        except InvalidOperation:  # a NaN cannot be ordered
            values = None
        if values is not None and not (values[0] > 0 and values[-1].is_finite()):
            values = None
    if values is None:
        values = sorted(price for at, price in history if start <= at <= now and _usable(price))
    count = len(values)
    if count < settings.reference_min_history:
        return None, "", count
    middle = count // 2
    median = values[middle] if count % 2 else (values[middle - 1] + values[middle]) / 2
    return median, "own median", count


def _drift_band(
    low: Decimal, high: Decimal, anchor: Decimal, source: str, settings: GuardSettings
) -> str:
    return f"[{low}, {high}] (±{settings.max_daily_move_pct}% of {anchor}, the {source})"


def _blocked(
    reason: str,
    steps: list[TraceStep],
    floor: Decimal | None,
    ceiling: Decimal | None,
) -> GuardOutcome:
    return GuardOutcome(Verdict.BLOCKED, None, reason, tuple(steps), floor, ceiling)


def apply_guards(snapshot: Snapshot, decision: Decision, settings: GuardSettings) -> GuardOutcome:
    """Turn a strategy decision into a price that is safe to send, or refuse it."""
    floor, ceiling = price_bounds(snapshot, settings)
    if floor is None or floor <= 0:
        step = TraceStep("guard:floor", "blocked", "no min_price and no cost")
        return _blocked("no floor: set min_price or cost for this SKU", [step], floor, ceiling)
    if ceiling is None:
        step = TraceStep("guard:ceiling", "blocked", "no max_price")
        return _blocked("no ceiling: set max_price for this SKU", [step], floor, ceiling)
    if floor > ceiling:
        step = TraceStep("guard:bounds", "blocked", f"floor {floor} > ceiling {ceiling}")
        return _blocked(f"floor {floor} is above ceiling {ceiling}", [step], floor, ceiling)
    steps = [TraceStep("guard:bounds", "ok", f"[{floor}, {ceiling}]")]

    target = decision.target
    current = snapshot.current_price
    live = current if _usable(current) else None
    if target is None:
        if live is None or not _off_marketplace_band(snapshot, live, settings):
            return GuardOutcome(Verdict.HOLD, None, decision.reason, tuple(steps), floor, ceiling)
        # The marketplace suppresses the listing at this price: holding keeps it unsold, so
        # the guards judge the live price and the reference band moves it back in.
        target = live
    if not target.is_finite() or target <= 0:
        steps.append(TraceStep("guard:sanity", "blocked", f"target {target}"))
        return _blocked(f"strategy proposed an impossible price {target}", steps, floor, ceiling)
    target = quantize(target)
    # [low, high] is E, the band the rate limits allow (None: unbounded).
    low: Decimal | None = None
    high: Decimal | None = None

    # max_step: ± max_step_pct of the current price.
    if live is not None:
        limit = live * settings.step_fraction
        # Inward again, so a limited move never exceeds the step by a rounding cent.
        low = (live - limit).quantize(CENT, ROUND_CEILING)
        high = (live + limit).quantize(CENT, ROUND_FLOOR)
        if target > high or target < low:
            limited = high if target > high else low
            steps.append(
                TraceStep(
                    "guard:max_step", "limited", f"{target} → {limited} (±{settings.max_step_pct}%)"
                )
            )
            target = limited
        else:
            steps.append(settings.step_ok)

    # max_drift: ± max_daily_move_pct of the price in effect 24 h ago.
    held_by_drift: str | None = None
    history = snapshot.recent_prices
    if history:
        anchor, source = drift_anchor(history, snapshot.now, live)
    else:
        anchor, source = live, "current price"
    if anchor is None:
        steps.append(_DRIFT_SKIPPED)
    elif anchor is live and settings.drift_covers_step:
        # Both bands are centred on the current price and the drift band is the wider one.
        steps.append(settings.drift_ok)
    else:
        limit = anchor * settings.daily_fraction
        drift_low = (anchor - limit).quantize(CENT, ROUND_CEILING)
        drift_high = (anchor + limit).quantize(CENT, ROUND_FLOOR)
        if low is None or high is None:
            low, high = drift_low, drift_high
        else:
            low, high = max(low, drift_low), min(high, drift_high)
        if live is not None and low > high:
            # Beyond one step of the drift band: no price satisfies both; do not move.
            band = _drift_band(drift_low, drift_high, anchor, source, settings)
            held_by_drift = f"24 h band {band} is more than one step from {live}"
            steps.append(
                TraceStep("guard:max_drift", "limited", f"{target} → {live}: {held_by_drift}")
            )
            target = low = high = live
        elif target > drift_high or target < drift_low:
            limited = drift_high if target > drift_high else drift_low
            band = _drift_band(drift_low, drift_high, anchor, source, settings)
            steps.append(TraceStep("guard:max_drift", "limited", f"{target} → {limited} {band}"))
            target = limited
        else:
            steps.append(settings.drift_ok)

    # The hard bounds win over both rate limits.
    if target < floor:
        steps.append(TraceStep("guard:floor", "clamped", f"{target} → {floor}"))
        target = floor
    elif target > ceiling:
        steps.append(TraceStep("guard:ceiling", "clamped", f"{target} → {ceiling}"))
        target = ceiling

    # parity: clamp down to each matching cap; refuse a cap below the floor or out of reach.
    lowest_cap: Decimal | None = None
    rules = settings.parity_by_channel.get(snapshot.channel)
    if rules is None:
        steps.append(PARITY_NONE)
    else:
        for rule in rules:
            peer: Decimal | None = None
            for channel, price in snapshot.peer_prices:
                if channel == rule.reference:
                    peer = price
                    break
            if peer is None or not _usable(peer):
                steps.append(rule.skipped)
                continue
            cap = (peer * rule.factor).quantize(CENT, ROUND_FLOOR)
            lowest_cap = cap if lowest_cap is None or cap < lowest_cap else lowest_cap
            if target <= cap:
                steps.append(rule.ok)
                continue
            what = f"{rule.reference} {peer} + {rule.pct}% = {cap}"
            if cap < floor:
                steps.append(TraceStep("guard:parity", "blocked", f"cap {what} < floor {floor}"))
                return _blocked(
                    f"parity cannot be met without selling below the floor: cap {what} "
                    f"is below the floor {floor}",
                    steps,
                    floor,
                    ceiling,
                )
            if low is not None and cap < low <= ceiling:
                steps.append(TraceStep("guard:parity", "blocked", f"cap {what} < {low}"))
                return _blocked(
                    f"parity cannot be met within the step and 24 h limits: cap {what} is below "
                    f"{low}, the lowest price allowed now",
                    steps,
                    floor,
                    ceiling,
                )
            steps.append(TraceStep("guard:parity", "clamped", f"{target} → {cap} ({what})"))
            target = cap

    # reference_band: refuse, never clamp, a price too far from the reference; except that a
    # live price already outside the marketplace's band (the marketplace suppressed or
    # unpublished the listing for it) moves into the band, floor, ceiling and parity allowing.
    reason = decision.reason
    if history or snapshot.reference_price is not None:
        reference, source, count = reference_price(snapshot, settings)
    else:
        reference, source, count = None, "", 0
    if reference is None:
        steps.append(settings.reference_skipped[count])
    else:
        limit = reference * settings.band_fraction
        gap = target - reference
        pct = settings.reference_band_pct
        if abs(gap) <= limit:
            what = reference_text(snapshot, reference, source, count)
            steps.append(TraceStep("guard:reference_band", "ok", f"within ±{pct}% of {what}"))
        elif (
            source == "marketplace"
            and snapshot.reference_suppresses
            and live is not None
            and abs(live - reference) > limit
        ):
            what = reference_text(snapshot, reference, source, count)
            band_low = max((reference - limit).quantize(CENT, ROUND_CEILING), CENT)
            band_high = (reference + limit).quantize(CENT, ROUND_FLOOR)
            upper, upper_name = ceiling, "ceiling (max_price)"
            if lowest_cap is not None and lowest_cap < upper:
                upper, upper_name = lowest_cap, "parity cap"
            low, high = max(band_low, floor), min(band_high, upper)
            if low > high:
                text = _band_unreachable(
                    live, what, pct, (band_low, band_high), floor, (upper, upper_name)
                )
                steps.append(TraceStep("guard:reference_band", "blocked", text))
                return _blocked(text, steps, floor, ceiling)
            moved = min(max(target, low), high)
            text = (
                f"{target} → {moved}: our price {live} is outside ±{pct}% of {what} "
                f"[{band_low}, {band_high}]; moved into it so the marketplace can republish"
            )
            steps.append(TraceStep("guard:reference_band", "clamped", text))
            reason = f"moved into the marketplace's reference band: {text}"
            target = moved
        else:
            side = "above" if gap > 0 else "below"
            off = percent_text(abs(gap) * 100 / reference)
            named = f"{source}{_reference_origin(snapshot)}" if source == "marketplace" else source
            text = (
                f"{off} % {side} the reference price {reference} ({named}); "
                f"limit ±{settings.reference_band_pct} %"
            )
            steps.append(TraceStep("guard:reference_band", "blocked", f"{target}: {text}"))
            return _blocked(f"refused: {text}", steps, floor, ceiling)

    if current is not None and target == current:
        reason = reason if held_by_drift is None else held_by_drift
        return GuardOutcome(
            Verdict.HOLD, None, f"no change: {reason}", tuple(steps), floor, ceiling
        )
    return GuardOutcome(Verdict.SEND, target, reason, tuple(steps), floor, ceiling)


def _off_marketplace_band(snapshot: Snapshot, live: Decimal, settings: GuardSettings) -> bool:
    """True if the marketplace's reference says our live price is outside the band."""
    reference = snapshot.reference_price
    if reference is None or not _usable(reference) or not snapshot.reference_suppresses:
        return False
    return abs(live - reference) > reference * settings.band_fraction


def _age_text(age: timedelta) -> str:
    """A short age: 45s, 12m, 3h, 2d (rounded down)."""
    seconds = max(int(age.total_seconds()), 0)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _reference_origin(snapshot: Snapshot) -> str:
    """``: <source>, <age> old`` of the marketplace reference, when known ("" otherwise)."""
    parts = [snapshot.reference_source] if snapshot.reference_source else []
    if snapshot.reference_at is not None:
        at = snapshot.reference_at.strftime("%Y-%m-%d %H:%M:%SZ")
        parts.append(f"reported {at}, {_age_text(snapshot.now - snapshot.reference_at)} old")
    return f": {', '.join(parts)}" if parts else ""


def reference_text(snapshot: Snapshot, reference: Decimal, source: str, count: int) -> str:
    """The reference for a trace: its value, source and age (``explain`` shows it)."""
    if source == "marketplace":
        origin = _reference_origin(snapshot)
        return f"the marketplace reference price {reference} (marketplace{origin})"
    return f"the own median reference price {reference} (median of {count} own prices in 30 days)"


def _band_unreachable(
    live: Decimal,
    what: str,
    pct: Decimal,
    band: tuple[Decimal, Decimal],
    floor: Decimal,
    upper: tuple[Decimal, str],
) -> str:
    """Why no price can bring a suppressed listing back into the band, and what to change."""
    (band_low, band_high), (cap, cap_name) = band, upper
    if band_high < floor:
        advice = (
            f"its top {band_high} is below the floor {floor}: lower min_price (or the cost "
            "margin) if the marketplace is right, or ask it to correct the reference"
        )
    else:
        advice = (
            f"its bottom {band_low} is above the {cap_name} {cap}: raise "
            f"{'max_price' if cap_name.startswith('ceiling') else 'the peer price'} to at least "
            f"{band_low} if the marketplace is right, or ask it to correct the reference"
        )
    return (
        f"our price {live} is outside ±{pct}% of {what} [{band_low}, {band_high}] "
        f"(the marketplace may have suppressed the listing), and no price inside the band is "
        f"allowed: {advice}"
    )
