"""Stock-driven strategies: ``excess_inventory`` and ``sales_velocity``. Pure, Decimal.

Both step from the current price by a percentage, at most once per ``cadence`` (measured from
``snapshot.last_change_at``; a listing that never changed is due). Down-steps never go below the
strategy-side floor (``strategy_floor``: max(min_price, cost + fees)) and need one; up-steps stop
at ``max_price``. A step is the percentage of the current price rounded half-up to the cent,
and at least one cent. The guards still run afterwards and remain the authority.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from strategies.base import (
    CENT,
    Decision,
    Duration,
    Snapshot,
    StrategyParams,
    TraceStep,
    quantize,
)
from strategies.competitive import strategy_ceiling, strategy_floor

# Cadences read like the config's schedule durations: 30m, 24h, 7d, or seconds.
Cadence = Duration
# The sales windows a snapshot carries (``Snapshot.units_sold``).
Window = Literal[1, 7, 30]
DAY = timedelta(days=1)


class ExcessInventoryParams(StrategyParams):
    """``excess_inventory``: mark down while cover or age is excessive, back up when short."""

    target_days_of_cover: Decimal = Field(gt=0, le=3650, description="mark down above this")
    short_cover_days: Decimal | None = Field(
        default=None, gt=0, description="step back up below this (None: never step up)"
    )
    max_inventory_age_days: int | None = Field(
        default=None, gt=0, le=3650, description="mark down when the oldest unit is older"
    )
    markdown_pct: Decimal = Field(default=Decimal("5"), gt=0, le=50)
    markup_pct: Decimal = Field(default=Decimal("5"), gt=0, le=50)
    window_days: Window = 30
    demand: Literal["trailing", "forecast"] = Field(
        default="trailing",
        description="cover from units sold over window_days (trailing) or from the inventory "
        "pass's stored demand forecast (forecast: stock-outs do not count as no demand)",
    )
    cadence: Cadence = DAY

    @field_validator("short_cover_days")
    @classmethod
    def _short_below_target(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        target = info.data.get("target_days_of_cover")
        if value is not None and target is not None and value >= target:
            raise ValueError(f"short_cover_days must be below target_days_of_cover ({target})")
        return value


class SalesVelocityParams(StrategyParams):
    """``sales_velocity``: units sold in a window vs a target → raise or lower by a step."""

    target_units: int = Field(ge=1, le=10_000_000)
    window_days: Window = 7
    raise_pct: Decimal = Field(default=Decimal("3"), gt=0, le=50)
    lower_pct: Decimal = Field(default=Decimal("2"), gt=0, le=50)
    tolerance_pct: Decimal = Field(
        default=Decimal("10"), ge=0, lt=100, description="dead band around target_units"
    )
    cadence: Cadence = DAY


def _span(delta: timedelta) -> str:
    """A short duration, e.g. ``23h 5m``, ``2d`` or ``-1h`` (clock skew)."""
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = [
        f"{n}{unit}"
        for n, unit in (
            (seconds // 86400, "d"),
            (seconds % 86400 // 3600, "h"),
            (seconds % 3600 // 60, "m"),
            (seconds % 60, "s"),
        )
        if n
    ]
    return sign + (" ".join(parts[:2]) or "0s")


def _days(value: Decimal) -> str:
    return "∞" if value.is_infinite() else str(value.quantize(Decimal("0.1")))


def _current(snapshot: Snapshot) -> Decimal | None:
    price = snapshot.current_price
    return price if price is not None and price.is_finite() and price > 0 else None


def _not_due(
    snapshot: Snapshot, cadence: timedelta, why: str, steps: list[TraceStep]
) -> Decision | None:
    """A hold if the last change is more recent than ``cadence``, else None."""
    last = snapshot.last_change_at
    if last is None:
        steps.append(TraceStep("cadence", "due", "no previous change"))
        return None
    elapsed = snapshot.now - last
    if elapsed < cadence:
        steps.append(TraceStep("cadence", "wait", f"last change {_span(elapsed)} ago"))
        since = f"the last change was {_span(elapsed)} ago < cadence {_span(cadence)}"
        return Decision.hold(f"{why}, but {since} → hold", *steps)
    steps.append(TraceStep("cadence", "due", f"last change {_span(elapsed)} ago"))
    return None


def _lower(
    snapshot: Snapshot, current: Decimal, pct: Decimal, why: str, steps: list[TraceStep]
) -> Decision:
    floor = strategy_floor(snapshot)
    if floor is None:
        steps.append(TraceStep("floor", "unknown", "needs min_price or cost"))
        return Decision.hold(f"{why}; no floor known (min_price or cost) → hold", *steps)
    if current <= floor:
        steps.append(TraceStep("floor", str(floor), f"current {current} is at or below it"))
        return Decision.hold(f"{why}; already at floor {floor} → hold", *steps)
    stepped = min(quantize(current * (1 - pct / 100)), current - CENT)
    target = max(stepped, floor)
    note = f", stopped at floor {floor}" if target > stepped else ""
    steps.append(TraceStep("step_down", str(target), f"{current} − {pct}% = {stepped}{note}"))
    return Decision(target, f"{why} → down {pct}% to {target}{note}", tuple(steps))


def _raise(
    snapshot: Snapshot, current: Decimal, pct: Decimal, why: str, steps: list[TraceStep]
) -> Decision:
    high = strategy_ceiling(snapshot)
    if high is not None and current >= high:
        steps.append(TraceStep("ceiling", str(high), f"current {current} is at or above it"))
        return Decision.hold(f"{why}; already at max_price {high} → hold", *steps)
    stepped = max(quantize(current * (1 + pct / 100)), current + CENT)
    target = stepped if high is None else min(stepped, high)
    note = f", stopped at max_price {high}" if target < stepped else ""
    steps.append(TraceStep("step_up", str(target), f"{current} + {pct}% = {stepped}{note}"))
    return Decision(target, f"{why} → up {pct}% to {target}{note}", tuple(steps))


def _cover(snapshot: Snapshot, params: ExcessInventoryParams) -> tuple[Decimal, str] | Decision:
    """Days of cover and what it rests on, by ``params.demand``; a hold when it is unknown."""
    name, window, stock = "excess_inventory", params.window_days, snapshot.stock_on_hand or 0
    if params.demand == "forecast":
        demand = snapshot.forecast_daily_demand
        if demand is None:
            detail = "the inventory pass has not forecast this SKU yet"
            return Decision.hold(
                f"{name}: demand forecast unknown", TraceStep("forecast", "unknown", detail)
            )
        if demand <= 0:
            return Decimal("Infinity") if stock > 0 else Decimal(0), "no forecast demand"
        return Decimal(stock) / demand, f"forecast {demand}/day"
    sold = snapshot.sold_in(window)
    if sold is None:
        detail = f"no {window}-day sales window in the snapshot"
        return Decision.hold(
            f"{name}: sales over {window} days unknown", TraceStep("sales", "unknown", detail)
        )
    cover = snapshot.days_of_cover(window)
    assert cover is not None
    return cover, f"{sold} sold in {window}d"


def excess_inventory(snapshot: Snapshot, params: ExcessInventoryParams) -> Decision:
    """Clear excess or aged stock by stepping toward the floor; step back up when cover is short."""
    name = "excess_inventory"
    current = _current(snapshot)
    if current is None:
        return Decision.hold(f"{name}: no current price", TraceStep("price", "missing"))
    stock = snapshot.stock_on_hand
    if stock is None:
        return Decision.hold(f"{name}: stock on hand unknown", TraceStep("stock", "unknown"))
    measured = _cover(snapshot, params)
    if isinstance(measured, Decision):
        return measured
    if stock <= 0:
        return Decision.hold(
            f"{name}: no stock on hand, nothing to clear", TraceStep("stock", "none")
        )
    cover, basis = measured
    steps = [TraceStep("cover", _days(cover), f"{stock} on hand, {basis}")]
    age, max_age = snapshot.inventory_age_days, params.max_inventory_age_days
    if max_age is not None:
        steps.append(TraceStep("age", "unknown" if age is None else str(age), f"max {max_age}"))
    aged = max_age is not None and age is not None and age > max_age
    short = params.short_cover_days is not None and cover < params.short_cover_days
    cover_text = f"cover {_days(cover)} days"
    if cover > params.target_days_of_cover:
        down, why = True, f"{cover_text} > target {params.target_days_of_cover}"
    elif aged and short:
        why = (
            f"oldest unit {age} days > {max_age} but {cover_text} < short {params.short_cover_days}"
        )
        return Decision.hold(f"{why}: selling fast, no markdown → hold", *steps)
    elif aged:
        down, why = True, f"oldest unit {age} days > max {max_age}"
    elif short:
        down, why = False, f"{cover_text} < short {params.short_cover_days}"
    else:
        return Decision.hold(
            f"{cover_text} within target {params.target_days_of_cover} → hold", *steps
        )
    if (wait := _not_due(snapshot, params.cadence, why, steps)) is not None:
        return wait
    if down:
        return _lower(snapshot, current, params.markdown_pct, why, steps)
    return _raise(snapshot, current, params.markup_pct, why, steps)


def sales_velocity(snapshot: Snapshot, params: SalesVelocityParams) -> Decision:
    """Raise when units sold in the window beat the target, lower when they fall short."""
    name, window = "sales_velocity", params.window_days
    current = _current(snapshot)
    if current is None:
        return Decision.hold(f"{name}: no current price", TraceStep("price", "missing"))
    sold, stock = snapshot.sold_in(window), snapshot.stock_on_hand
    if sold is None:
        detail = f"no {window}-day sales window in the snapshot"
        return Decision.hold(
            f"{name}: sales over {window} days unknown", TraceStep("sales", "unknown", detail)
        )
    if stock is None:
        detail = "cannot tell slow sales from a stock-out"
        return Decision.hold(
            f"{name}: stock on hand unknown", TraceStep("stock", "unknown", detail)
        )
    if stock <= 0:
        return Decision.hold(
            f"{name}: out of stock, sales say nothing about price", TraceStep("stock", "none")
        )
    band = params.target_units * params.tolerance_pct / 100
    low, high = params.target_units - band, params.target_units + band
    steps = [TraceStep("sales", str(sold), f"in {window}d; target {params.target_units} ± {band}")]
    if sold > high:
        why = f"{sold} sold in {window}d > {high}"
        pct, up = params.raise_pct, True
    elif sold < low:
        why = f"{sold} sold in {window}d < {low}"
        pct, up = params.lower_pct, False
    else:
        return Decision.hold(f"{sold} sold in {window}d within {low}–{high} → hold", *steps)
    if (wait := _not_due(snapshot, params.cadence, why, steps)) is not None:
        return wait
    if up:
        return _raise(snapshot, current, pct, why, steps)
    return _lower(snapshot, current, pct, why, steps)
