"""The simplest strategies: ``hold``, ``fixed`` and ``cost_plus``."""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property

from pydantic import Field

from strategies.base import ZERO, Decision, Snapshot, StrategyParams, TraceStep, quantize


class HoldParams(StrategyParams):
    """``hold`` takes no params."""


def hold(snapshot: Snapshot, params: HoldParams) -> Decision:
    """Never change the price."""
    return Decision.hold("strategy hold: price is managed by hand")


class FixedParams(StrategyParams):
    """``fixed``: one price for every matched listing."""

    price: Decimal = Field(gt=0, max_digits=12, decimal_places=4)


def fixed(snapshot: Snapshot, params: FixedParams) -> Decision:
    """Set the configured price."""
    target = quantize(params.price)
    return Decision(target, f"fixed price {target}", (TraceStep("fixed", "target", str(target)),))


class CostPlusParams(StrategyParams):
    """``cost_plus``: cost × (1 + margin) + fees."""

    margin_pct: Decimal = Field(ge=0, le=1000, description="markup over cost, in percent")
    include_fees: bool = True

    @cached_property
    def factor(self) -> Decimal:
        """1 + margin_pct / 100, computed once per config."""
        return 1 + self.margin_pct / 100


def cost_plus(snapshot: Snapshot, params: CostPlusParams) -> Decision:
    """Price at cost plus margin plus fees."""
    if snapshot.cost is None:
        return Decision.hold("cost_plus: no cost for this SKU", TraceStep("cost", "missing"))
    fees = (snapshot.fees or ZERO) if params.include_fees else ZERO
    target = quantize(snapshot.cost * params.factor + fees)
    detail = f"{snapshot.cost} × (1 + {params.margin_pct}%) + {fees} = {target}"
    return Decision(
        target, f"cost plus {params.margin_pct}%", (TraceStep("cost_plus", "target", detail),)
    )
