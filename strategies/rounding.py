"""Price endings applied to a strategy's target before the guards: cents or charm (.99)."""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from strategies.base import CENT

ONE = Decimal("1")


class Rounding(BaseModel):
    """``rounding`` of a pricing rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["cents", "charm"] = "cents"
    ending: Decimal = Field(
        default=Decimal("0.99"),
        ge=0,
        lt=1,
        decimal_places=2,
        description="charm: the cents every price ends in, e.g. 0.99 or 0.95",
    )
    direction: Literal["down", "nearest", "up"] = Field(
        default="down", description="charm: which charm price to pick around the target"
    )


CENTS = Rounding()


def apply_rounding(target: Decimal, rounding: Rounding) -> Decimal:
    """Round ``target`` as configured (guards still clamp the result afterwards)."""
    if rounding.mode == "cents":
        return target.quantize(CENT, rounding=ROUND_HALF_UP)
    base = target.to_integral_value(rounding=ROUND_FLOOR)
    below = base + rounding.ending
    if below > target:
        below -= ONE
    above = below + ONE
    if rounding.direction == "down":
        chosen = below
    elif rounding.direction == "up":
        chosen = below if below == target else above
    else:
        chosen = below if target - below <= above - target else above
    if chosen <= 0:
        chosen = above  # a charm price below a dollar: the first positive one
    return chosen.quantize(CENT)
