"""Guards: always applied after the strategy, never disableable by it.

The result of ``apply_guards`` is the only price the daemon may send. It is finite, positive,
quantized to the minor unit and inside [floor, ceiling]; without a floor or a ceiling nothing is
sent at all (the 2012 "blank minimum" incident priced listings at $0.01).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum
from functools import cached_property
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from strategies.base import ZERO, Decision, Snapshot, TraceStep, quantize


class GuardSettings(BaseModel):
    """``pricing.guards`` in the YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_margin_pct: Decimal = Field(
        default=Decimal("0"), ge=0, le=1000, description="floor = cost × (1 + this) + fees"
    )
    max_step_pct: Decimal = Field(
        default=Decimal("10"), gt=0, le=100, description="largest move per change, % of current"
    )

    @cached_property
    def margin_factor(self) -> Decimal:
        """1 + min_margin_pct / 100, computed once per config."""
        return 1 + self.min_margin_pct / 100

    @cached_property
    def step_fraction(self) -> Decimal:
        """max_step_pct / 100, computed once per config."""
        return self.max_step_pct / 100


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
        None if floor is None else quantize(floor, rounding=ROUND_CEILING),
        None if snapshot.max_price is None else quantize(snapshot.max_price, rounding=ROUND_FLOOR),
    )


def apply_guards(snapshot: Snapshot, decision: Decision, settings: GuardSettings) -> GuardOutcome:
    """Turn a strategy decision into a price that is safe to send, or refuse it."""
    floor, ceiling = price_bounds(snapshot, settings)
    if floor is None or floor <= 0:
        step = TraceStep("guard:floor", "blocked", "no min_price and no cost")
        return GuardOutcome(
            Verdict.BLOCKED,
            None,
            "no floor: set min_price or cost for this SKU",
            (step,),
            floor,
            ceiling,
        )
    if ceiling is None:
        step = TraceStep("guard:ceiling", "blocked", "no max_price")
        return GuardOutcome(
            Verdict.BLOCKED, None, "no ceiling: set max_price for this SKU", (step,), floor, ceiling
        )
    if floor > ceiling:
        step = TraceStep("guard:bounds", "blocked", f"floor {floor} > ceiling {ceiling}")
        return GuardOutcome(
            Verdict.BLOCKED,
            None,
            f"floor {floor} is above ceiling {ceiling}",
            (step,),
            floor,
            ceiling,
        )
    steps = [TraceStep("guard:bounds", "ok", f"[{floor}, {ceiling}]")]

    target = decision.target
    if target is None:
        return GuardOutcome(Verdict.HOLD, None, decision.reason, tuple(steps), floor, ceiling)
    if not target.is_finite() or target <= 0:
        steps.append(TraceStep("guard:sanity", "blocked", f"target {target}"))
        return GuardOutcome(
            Verdict.BLOCKED,
            None,
            f"strategy proposed an impossible price {target}",
            tuple(steps),
            floor,
            ceiling,
        )
    target = quantize(target)

    current = snapshot.current_price
    if current is not None and current > 0:
        limit = current * settings.step_fraction
        # Inward again, so a limited move never exceeds the step by a rounding cent.
        low = quantize(current - limit, rounding=ROUND_CEILING)
        high = quantize(current + limit, rounding=ROUND_FLOOR)
        if target > high or target < low:
            limited = high if target > high else low
            steps.append(
                TraceStep(
                    "guard:max_step", "limited", f"{target} → {limited} (±{settings.max_step_pct}%)"
                )
            )
            target = limited
        else:
            steps.append(TraceStep("guard:max_step", "ok", f"within ±{settings.max_step_pct}%"))

    if target < floor:
        steps.append(TraceStep("guard:floor", "clamped", f"{target} → {floor}"))
        target = floor
    elif target > ceiling:
        steps.append(TraceStep("guard:ceiling", "clamped", f"{target} → {ceiling}"))
        target = ceiling

    if current is not None and target == current:
        return GuardOutcome(
            Verdict.HOLD, None, f"no change: {decision.reason}", tuple(steps), floor, ceiling
        )
    return GuardOutcome(Verdict.SEND, target, decision.reason, tuple(steps), floor, ceiling)
