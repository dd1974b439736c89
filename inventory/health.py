"""Inventory health per SKU and pool, the drivers of Amazon's IPI: FIFO age buckets, excess
units above target cover, sell-through and stranded units. Pure; whole units, Decimal ratios.

Age is first-in, first-out, as Amazon counts it: whatever unit actually shipped, a sale or a
removal is taken from the oldest units on hand, so what remains are the newest receipts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

__all__ = [
    "AGE_BUCKETS",
    "AgeBuckets",
    "Lot",
    "age_buckets",
    "average_on_hand",
    "consume",
    "excess_units",
    "fifo_lots",
    "sell_through",
    "stranded_units",
]

# (label, first day, last day) of each age bucket; None: no upper bound. "365+" is over 365 days.
AGE_BUCKETS: Final = (
    ("0-90", 0, 90),
    ("91-180", 91, 180),
    ("181-270", 181, 270),
    ("271-365", 271, 365),
    ("365+", 366, None),
)
HUNDREDTH: Final = Decimal("0.01")


@dataclass(frozen=True)
class Lot:
    """Units received on one day and still on hand."""

    received: date
    units: int

    def age(self, on: date) -> int:
        """Whole days since receipt on ``on``."""
        return (on - self.received).days


def consume(lots: Sequence[Lot], units: int) -> tuple[Lot, ...]:
    """``lots`` (oldest first) after ``units`` left from the oldest; more than there is empties
    them."""
    left: list[Lot] = []
    for lot in lots:
        taken = min(units, lot.units)
        units -= taken
        if lot.units > taken:
            left.append(Lot(lot.received, lot.units - taken))
    return tuple(left)


def fifo_lots(
    receipts: Iterable[tuple[date, int]], outflows: Iterable[tuple[date, int]], on: date
) -> tuple[Lot, ...]:
    """The lots on hand on ``on``, oldest first, from dated receipts and outflows (sales,
    removals, losses) up to and including that day.

    Events replay in date order, a day's receipts before its outflows; an outflow larger than
    the stock on hand (history starting mid-life) takes what there is.
    """
    events = sorted(
        [(day, 0, units) for day, units in receipts if day <= on]
        + [(day, 1, units) for day, units in outflows if day <= on]
    )
    lots: tuple[Lot, ...] = ()
    for day, kind, units in events:
        if units <= 0:
            continue
        lots = (*lots, Lot(day, units)) if kind == 0 else consume(lots, units)
    return _merged(lots)


def _merged(lots: Sequence[Lot]) -> tuple[Lot, ...]:
    """One lot per receipt day (two receipts on a day age together)."""
    by_day: dict[date, int] = {}
    for lot in lots:
        by_day[lot.received] = by_day.get(lot.received, 0) + lot.units
    return tuple(Lot(day, units) for day, units in sorted(by_day.items()))


@dataclass(frozen=True)
class AgeBuckets:
    """Units on hand by age: 0–90, 91–180, 181–270, 271–365 and over 365 days."""

    days_0_90: int = 0
    days_91_180: int = 0
    days_181_270: int = 0
    days_271_365: int = 0
    days_365_plus: int = 0

    @property
    def total(self) -> int:
        """All units on hand."""
        return (
            self.days_0_90
            + self.days_91_180
            + self.days_181_270
            + self.days_271_365
            + self.days_365_plus
        )

    def as_dict(self) -> dict[str, int]:
        """The buckets under their labels ("0-90" … "365+")."""
        values = (
            self.days_0_90,
            self.days_91_180,
            self.days_181_270,
            self.days_271_365,
            self.days_365_plus,
        )
        return {label: value for (label, _, _), value in zip(AGE_BUCKETS, values, strict=True)}


def age_buckets(lots: Iterable[Lot], on: date) -> AgeBuckets:
    """Sum the lots' units into the age buckets as of ``on``."""
    counts = [0] * len(AGE_BUCKETS)
    for lot in lots:
        age = max(lot.age(on), 0)
        for i, (_, low, high) in enumerate(AGE_BUCKETS):
            if age >= low and (high is None or age <= high):
                counts[i] += lot.units
                break
    return AgeBuckets(*counts)


def excess_units(on_hand: int, daily_demand: float, target_cover_days: int) -> int:
    """Units on hand beyond ``target_cover_days`` of demand (all of them when nothing sells)."""
    keep = math.ceil(max(daily_demand, 0.0) * target_cover_days - 1e-9)
    return max(on_hand - keep, 0)


def average_on_hand(daily_units: Sequence[int]) -> Decimal:
    """The mean of daily on-hand readings (0 for none)."""
    if not daily_units:
        return Decimal(0)
    return Decimal(sum(daily_units)) / Decimal(len(daily_units))


def sell_through(units_sold: int, average_units: Decimal) -> Decimal | None:
    """Units sold over the period (90 days) ÷ average units on hand, to 0.01; None: no stock."""
    if average_units <= 0:
        return None
    return (Decimal(units_sold) / average_units).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)


def stranded_units(units_by_pool: Mapping[str, int], offer_active: Mapping[str, bool]) -> int:
    """Sellable units in pools where the SKU has no active offer (a pool not listed has none)."""
    return sum(
        units for pool, units in units_by_pool.items() if units > 0 and not offer_active.get(pool)
    )
