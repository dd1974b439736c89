"""Types every strategy shares: the frozen snapshot it reads and the decision it returns.

A strategy is ``(snapshot, params) -> Decision``: no I/O, no clock (``snapshot.now``), Decimal
money. Guards run after it (``strategies.guards``) and cannot be switched off by it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, NamedTuple, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

from domain.offers import CompetitorOffer

CENT = Decimal("0.01")
ZERO = Decimal("0")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
MAX_DURATION_S = 366 * 86400


def parse_duration(value: Any, *, allow_zero: bool = False) -> Any:
    """Accept ``90``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"`` (a bare number is seconds); > 0
    (or ≥ 0 with ``allow_zero``).

    Shared by the config (schedules) and strategy params (cadences).
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError("a duration like 30s, 5m, 1h or 1d")
    # NaN fails every comparison; infinity and absurd values fail the upper bound.
    if allow_zero and seconds == 0:
        return timedelta(0)
    if not 0 < seconds <= MAX_DURATION_S:
        lowest = "0 (0s) or more" if allow_zero else "more than 0"
        raise ValueError(f"a duration must be {lowest} and at most 366d")
    return timedelta(seconds=seconds)


def parse_duration_or_zero(value: Any) -> Any:
    """``parse_duration`` that also accepts 0 (``0s``), for the keys where 0 means "never keep"."""
    return parse_duration(value, allow_zero=True)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
DurationOrZero = Annotated[timedelta, BeforeValidator(parse_duration_or_zero)]


class StrategyParams(BaseModel):
    """Base of every strategy's params model: strict and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# Hot value types are NamedTuples: immutable like frozen dataclasses, but built several times
# faster, which matters at 100,000 decisions per pass (a frozen dataclass pays one
# object.__setattr__ per field).


# Reference sources that come with the marketplace taking our offer down for its price (Walmart's
# OFFER_UNPUBLISHED with REASONABLE_PRICE_NOT_SATISFIED). Only then may the reference band move
# a live price into the band past the step and drift limits: the offer is not selling anyway. A
# polled reference (Amazon's CompetitivePriceThreshold) that moves never jumps a price.
SUPPRESSING_REFERENCE_SOURCES = frozenset({"OFFER_UNPUBLISHED"})


class Snapshot(NamedTuple):
    """Everything a strategy may know about one listing at decision time (immutable).

    Money is Decimal in the listing's currency; times are aware UTC. ``offers`` holds every
    offer seen on the listing, ours included (``is_own``); strategies must never react to an
    offer whose ``is_own`` is set or whose seller is in ``own_seller_ids``.
    """

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
    # Units published on this channel, and units on hand in the ledger (all channels).
    quantity: int | None = None
    stock_on_hand: int | None = None
    offers: tuple[CompetitorOffer, ...] = ()
    buy_box_price: Decimal | None = None
    buy_box_seller: str | None = None
    # Marketplace-supplied reference (competitive price threshold, reasonable price).
    reference_price: Decimal | None = None
    # Our seller ids on every channel and account: never competitors.
    own_seller_ids: frozenset[str] = frozenset()
    # (window in days, units sold in that window), e.g. ((1, 2), (7, 9), (30, 41)).
    units_sold: tuple[tuple[int, int], ...] = ()
    # Age in days of the oldest unit on hand (FIFO over receipts and counts).
    inventory_age_days: int | None = None
    # Our own confirmed prices on this listing, oldest first, over the last 30 days.
    recent_prices: tuple[tuple[datetime, Decimal], ...] = ()
    # When our price on this listing last changed (confirmed), for cadences.
    last_change_at: datetime | None = None
    # Our current price of the same SKU on other channels, by channel name (parity guard).
    peer_prices: tuple[tuple[str, Decimal], ...] = ()
    # Where ``reference_price`` came from (e.g. "poll", "notification", "OFFER_UNPUBLISHED")
    # and when the marketplace reported it: ``explain`` shows both with the value.
    reference_source: str = ""
    reference_at: datetime | None = None
    # Forecast units a day (all channels) from the last inventory pass; None: not planned.
    forecast_daily_demand: Decimal | None = None

    @property
    def reference_suppresses(self) -> bool:
        """True if the marketplace reported the reference while unpublishing our offer for it."""
        return self.reference_source in SUPPRESSING_REFERENCE_SOURCES

    def sold_in(self, days: int) -> int | None:
        """Units sold in the last ``days`` days, if that window was loaded."""
        for window, units in self.units_sold:
            if window == days:
                return units
        return None

    def days_of_cover(self, window_days: int = 30) -> Decimal | None:
        """On-hand stock divided by the daily sales rate over ``window_days`` (None if unknown,
        ``Decimal('Infinity')`` with stock and no sales)."""
        sold = self.sold_in(window_days)
        if self.stock_on_hand is None or sold is None:
            return None
        if sold <= 0:
            return Decimal("Infinity") if self.stock_on_hand > 0 else ZERO
        return Decimal(self.stock_on_hand) * window_days / sold

    def competitors(self) -> tuple[CompetitorOffer, ...]:
        """Offers that are not ours (by flag or by any of our seller ids)."""
        own = self.own_seller_ids
        return tuple(o for o in self.offers if not o.is_own and o.seller_id not in own)


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
