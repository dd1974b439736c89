"""Types every strategy shares: the frozen snapshot it reads and the decision it returns.

A strategy is ``(snapshot, params) -> Decision``: no I/O, no clock (``snapshot.now``), Decimal
money. Guards run after it (``strategies.guards``) and cannot be switched off by it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict

from connectors.base import CompetitorOffer

CENT = Decimal("0.01")
ZERO = Decimal("0")


class StrategyParams(BaseModel):
    """Base of every strategy's params model: strict and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Hot value types are NamedTuples: immutable like frozen dataclasses, but built several times
# faster, which matters at 100,000 decisions per pass (a frozen dataclass pays one
# object.__setattr__ per field).


class Snapshot(NamedTuple):
    """Everything a strategy may know about one listing at decision time (immutable)."""

    channel: str
    sku: str
    currency: str
    now: datetime
    current_price: Decimal | None
    cost: Decimal | None = None
    fees: Decimal | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    tags: tuple[str, ...] = ()
    quantity: int | None = None
    stock_on_hand: int | None = None
    offers: tuple[CompetitorOffer, ...] = ()
    buy_box_price: Decimal | None = None
    reference_price: Decimal | None = None


class TraceStep(NamedTuple):
    """One line of a decision's explanation."""

    step: str
    verdict: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Render for the ``action.trace`` JSON column."""
        return {"step": self.step, "verdict": self.verdict, "detail": self.detail}


class Decision(NamedTuple):
    """A strategy's answer: a target price, or ``None`` to hold, with the reason and trace."""

    target: Decimal | None
    reason: str
    trace: tuple[TraceStep, ...] = ()

    @classmethod
    def hold(cls, reason: str, *trace: TraceStep) -> Decision:
        """Keep the current price."""
        return cls(None, reason, trace)


P = TypeVar("P", bound=StrategyParams)
StrategyFn = Callable[[Snapshot, Any], Decision]


def quantize(value: Decimal, step: Decimal = CENT, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round to the currency's minor unit (half-up unless a direction is asked for)."""
    return value.quantize(step, rounding=rounding)
