"""Decide in columns: the common listings of a pass in numpy, exact to the cent. Pure.

``decide`` (``strategies.engine``) stays the reference: the scalar Decimal path every listing can
take, with its full trace. ``decide_batch`` answers the same decision (verdict, price, reason,
floor, ceiling, the strategy's target) for the listings it can compute exactly in integer
arithmetic, and ``None`` for the rest, which the caller decides with ``decide``. Its outcomes
carry no trace, and guard steps only for a hold (a hold is recorded with them): they are the
*lean* outcomes of a pass that stores its inputs and explains on demand (re-running ``decide``).
``tests/test_batch_decide.py`` checks them against ``decide`` over generated listings.

Covered so far: rules with ``cost_plus`` and cent rounding and no bounds of their own, on listings
with a usable current price and money of at most four decimals (the stored precision), under
guards whose drift band covers the step band, without parity on the channel, without price
history and without a marketplace reference (the reference band is then skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np

from strategies.base import Decision, Snapshot, TraceStep
from strategies.engine import Outcome
from strategies.guards import PARITY_NONE, GuardOutcome, GuardSettings, Verdict
from strategies.rules import AnyRule, CostPlusRule, rule_label, select_rule

# Money in 1/10,000 of the currency unit, as stored (NUMERIC(18, 4)); small enough that every
# product below fits in int64 (|units| < 1e10, factors ≤ 1.1e7).
_SCALE_DIGITS = 4
_LIMIT = 10**10
_PCT = 10**6  # a percentage in units over 100 %: pct × 10,000 / (100 × 10,000)
_TO_CENTS = _PCT * 100  # a (units × percentage factor) over this is cents
Int64s = np.ndarray[Any, np.dtype[np.int64]]


def units(value: Decimal | None) -> int | None:
    """``value`` in 1/10,000, if it is exact there and small enough; else None."""
    if value is None or not value.is_finite():
        return None
    scaled = value.scaleb(_SCALE_DIGITS)
    whole = int(scaled)  # truncates: equal only when nothing was cut
    return whole if whole == scaled and -_LIMIT < whole < _LIMIT else None


def _ceil_div(numerator: Int64s, denominator: int) -> Int64s:
    return -((-numerator) // denominator)


def _half_up(numerator: Int64s, denominator: int) -> Int64s:
    """Round numerator / denominator to an integer, halves away from zero (ROUND_HALF_UP)."""
    away = (2 * np.abs(numerator) + denominator) // (2 * denominator)
    return np.where(numerator < 0, -away, away)


def _cents(value: int) -> Decimal:
    return Decimal(value).scaleb(-2)


def _guards_covered(snapshot: Snapshot, guards: GuardSettings) -> bool:
    return (
        guards.drift_covers_step
        and not snapshot.recent_prices
        and snapshot.reference_price is None
        and snapshot.channel not in guards.parity_by_channel
    )


def _covered_rule(rule: AnyRule) -> tuple[CostPlusRule, int] | None:
    """A covered rule and its margin in units of a percentage (None: not covered)."""
    if not isinstance(rule, CostPlusRule) or rule.rounding.mode != "cents":
        return None
    if rule.min_price is not None or rule.max_price is not None:
        return None
    margin = units(rule.params.margin_pct)
    return None if margin is None else (rule, margin)


def decide_batch(
    snapshots: Sequence[Snapshot], rules: Sequence[AnyRule], guards: GuardSettings
) -> list[Outcome | None]:
    """The lean outcome of every snapshot the columns cover (None: decide it with ``decide``)."""
    outcomes: list[Outcome | None] = [None] * len(snapshots)
    margin, step = units(guards.min_margin_pct), units(guards.max_step_pct)
    if margin is None or step is None or not guards.drift_covers_step:
        return outcomes
    if not any(_covered_rule(rule) for rule in rules):
        return outcomes  # e.g. a buy_box catalogue: nothing to do per listing
    covered_rules: dict[int, tuple[CostPlusRule, int] | None] = {}
    taken: list[tuple[int, int]] = []  # (snapshot index, rule index)
    columns: list[tuple[int, int, int, int, int, int, int]] = []
    for index, snapshot in enumerate(snapshots):
        if not _guards_covered(snapshot, guards):
            continue
        at, rule = select_rule(
            rules, sku=snapshot.sku, tags=snapshot.tags, channel=snapshot.channel
        )
        if at not in covered_rules:
            covered_rules[at] = _covered_rule(rule)
        chosen = covered_rules[at]
        cost, fees = units(snapshot.cost), units(snapshot.fees or _ZERO)
        current, high = units(snapshot.current_price), units(snapshot.max_price)
        low = units(snapshot.min_price)
        if (
            chosen is None
            or cost is None
            or fees is None
            or current is None
            or current <= 0
            or high is None
            or (low is None and snapshot.min_price is not None)
        ):
            continue
        cost_plus, factor = chosen
        include = fees if cost_plus.params.include_fees else 0
        taken.append((index, at))
        columns.append(
            (factor, cost, fees, include, current, _NO_LOW if low is None else low, high)
        )
    if not columns:
        return outcomes
    factor, cost, fees, include, current, low, high = np.array(columns, dtype=np.int64).T
    # cost_plus: cost × (1 + margin) + fees, half-up to the cent (then cent rounding: no-op).
    target = _half_up(cost * (_PCT + factor) + include * _PCT, _TO_CENTS)
    # Bounds: floor = max(min_price, cost × (1 + min margin) + fees) rounded up, ceiling down.
    by_cost = cost * (_PCT + margin) + fees * _PCT
    floor = np.where(
        (low == _NO_LOW) | (by_cost > low * _PCT),
        _ceil_div(by_cost, _TO_CENTS),
        _ceil_div(low, 100),
    )
    ceiling = high // 100
    # Step band around the current price, rounded inward; the drift band covers it.
    step_low = _ceil_div(current * (_PCT - step), _TO_CENTS)
    step_high = (current * (_PCT + step)) // _TO_CENTS
    # Clamped to the high side first, then the low (as the scalar guard does: a band that
    # rounds to nothing, low above high on a sub-cent price, ends at its low side).
    stepped = np.maximum(np.minimum(target, step_high), step_low)
    price = np.where(stepped < floor, floor, np.where(stepped > ceiling, ceiling, stepped))
    # Blocked listings (no floor, floor above ceiling, an impossible target) are the scalar
    # path's: their guard steps are stored.
    covered = (floor > 0) & (floor <= ceiling) & (target > 0)
    hold = price * 100 == current
    send = Verdict.SEND
    words: dict[int, tuple[str, str, str, str]] = {}  # per rule: label, strategy, reasons
    for (index, at), ok, held, value, wished, cents, low_c, high_c in zip(
        taken,
        covered.tolist(),
        hold.tolist(),
        price.tolist(),
        target.tolist(),
        stepped.tolist(),
        floor.tolist(),
        ceiling.tolist(),
        strict=True,
    ):
        if not ok:
            continue
        if at not in words:
            chosen = covered_rules[at]
            assert chosen is not None
            rule = chosen[0]
            reason = f"cost plus {rule.params.margin_pct}%"
            words[at] = (rule_label(at, rule), rule.strategy, reason, f"no change: {reason}")
        label, strategy, reason, unchanged = words[at]
        wish = _cents(wished)
        bounds = _cents(low_c), _cents(high_c)
        if held:
            # A hold is recorded with its guard verdicts (when it is news): word them as
            # apply_guards does for this path (the property test compares them step by step).
            steps = _hold_steps(guards, wish, _cents(cents), bounds)
            guarded = GuardOutcome(Verdict.HOLD, None, unchanged, steps, *bounds)
        else:
            guarded = GuardOutcome(send, _cents(value), reason, (), *bounds)
        outcomes[index] = Outcome(label, strategy, Decision(wish, reason), guarded)
    return outcomes


def _hold_steps(
    guards: GuardSettings, wished: Decimal, stepped: Decimal, bounds: tuple[Decimal, Decimal]
) -> tuple[TraceStep, ...]:
    """The guard steps of a covered listing: bounds, step, drift, clamp, parity, reference."""
    floor, ceiling = bounds
    steps = [TraceStep("guard:bounds", "ok", f"[{floor}, {ceiling}]")]
    if stepped != wished:
        detail = f"{wished} → {stepped} (±{guards.max_step_pct}%)"
        steps.append(TraceStep("guard:max_step", "limited", detail))
    else:
        steps.append(guards.step_ok)
    steps.append(guards.drift_ok)
    if stepped < floor:
        steps.append(TraceStep("guard:floor", "clamped", f"{stepped} → {floor}"))
    elif stepped > ceiling:
        steps.append(TraceStep("guard:ceiling", "clamped", f"{stepped} → {ceiling}"))
    steps.append(PARITY_NONE)
    steps.append(guards.reference_skipped[0])
    return tuple(steps)


_ZERO = Decimal(0)
_NO_LOW = -(2**62)  # no min_price (units never reach it)
