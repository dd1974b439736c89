"""FBA storage-fee forecast for the next months from a dated fee table. Pure, Decimal.

A :class:`FeeTable` is data: the monthly storage fee per cubic foot by size tier for January–
September and October–December, and the aged-inventory surcharge per cubic foot by age tier
(the oldest tier "per cubic foot or per unit, whichever is greater"), with the day it took
effect and where it was published. ``US_FEES`` holds Amazon's published US figures; the daemon
may load newer ones from config and pick with :func:`table_on`.

The forecast takes one snapshot a month on the 15th (today, if the 15th has passed): Amazon
assesses the aged surcharge on the 15th, and the mid-month stock stands in for the month's
average daily volume on which the monthly fee is charged. Between today and each snapshot the
forecast demand leaves FIFO from the oldest lots (:func:`inventory.health.consume`); no
receipts are assumed (an inbound shipment is the caller's lot with its expected arrival day).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from inventory.health import Lot, consume

__all__ = [
    "US_FEES",
    "AgedTier",
    "FeeTable",
    "MonthFee",
    "MonthlyRate",
    "forecast_storage_fees",
    "table_on",
]

CENT: Final = Decimal("0.01")
ASSESSMENT_DAY: Final = 15


@dataclass(frozen=True)
class MonthlyRate:
    """Monthly storage fee per cubic foot of one size tier, off-peak and Q4."""

    size_tier: str
    jan_sep: Decimal
    oct_dec: Decimal

    def on(self, month: int) -> Decimal:
        """The rate that applies to calendar ``month`` (1–12)."""
        return self.oct_dec if month >= 10 else self.jan_sep


@dataclass(frozen=True)
class AgedTier:
    """Aged-inventory surcharge for units aged ``min_age_days`` to ``max_age_days`` inclusive."""

    min_age_days: int
    max_age_days: int | None
    per_cuft: Decimal
    # "…or per unit, whichever is greater" (the oldest tier); 0: per cubic foot only.
    per_unit: Decimal = Decimal(0)

    def covers(self, age_days: int) -> bool:
        """True when a unit of ``age_days`` falls in this tier."""
        return age_days >= self.min_age_days and (
            self.max_age_days is None or age_days <= self.max_age_days
        )

    def charge(self, units: int, unit_volume_cuft: Decimal) -> Decimal:
        """The surcharge on ``units`` of one volume in this tier (unrounded)."""
        return units * max(unit_volume_cuft * self.per_cuft, self.per_unit)


@dataclass(frozen=True)
class FeeTable:
    """The storage fees in force from ``effective``, and where they were published."""

    effective: date
    monthly: tuple[MonthlyRate, ...]
    aged: tuple[AgedTier, ...]
    sources: tuple[str, ...] = ()
    note: str = ""

    def monthly_rate(self, size_tier: str, month: int) -> Decimal:
        """The monthly fee per cubic foot for ``size_tier`` in calendar ``month``."""
        for rate in self.monthly:
            if rate.size_tier == size_tier:
                return rate.on(month)
        known = [r.size_tier for r in self.monthly]
        raise KeyError(f"no storage fee for size tier {size_tier!r} (known: {known})")

    def aged_tier(self, age_days: int) -> AgedTier | None:
        """The surcharge tier of a unit aged ``age_days`` (None below the first tier)."""
        return next((tier for tier in self.aged if tier.covers(age_days)), None)


# Amazon US. Monthly fees in force since 2024-04-01 (standard-size off-peak cut from $0.87 to
# $0.78; "large bulky / extra-large", previously "oversize", unchanged): Amazon Seller Central,
# "2024 FBA monthly inventory storage fee and aged inventory surcharge changes". Aged-inventory
# surcharge tiers in force since 2023-04-15 (181–270 days introduced, 271–365 days made finer),
# as published in Amazon's 2023 announcement and restated in its seller emails of 2024; the
# 2024 page above also announces surcharge changes whose figures were not retrievable here, so
# the aged tiers are the ones to check first when the table is next reviewed.
US_FEES: Final = FeeTable(
    effective=date(2024, 4, 1),
    monthly=(
        MonthlyRate("standard", Decimal("0.78"), Decimal("2.40")),
        MonthlyRate("oversize", Decimal("0.56"), Decimal("1.40")),
    ),
    aged=(
        AgedTier(181, 210, Decimal("0.50")),
        AgedTier(211, 240, Decimal("1.00")),
        AgedTier(241, 270, Decimal("1.50")),
        AgedTier(271, 300, Decimal("3.80")),
        AgedTier(301, 330, Decimal("4.00")),
        AgedTier(331, 365, Decimal("4.20")),
        AgedTier(366, None, Decimal("6.90"), per_unit=Decimal("0.15")),
    ),
    sources=(
        "https://sellercentral.amazon.com/help/hub/reference/external/GJ9NNG7RK4TU6E3Z",
        "https://petani-logistics.com/the-amazon-monthly-storage-fee-aged-inventory-surcharge"
        "-and-fba-capacity-limits-have-been-changed-in-2023/",
    ),
    note=(
        "monthly fees effective 2024-04-01 (Amazon); aged surcharge tiers effective 2023-04-15"
        " (Amazon's announcement as restated by the second source); the 181-270-day tiers"
        " exclude apparel, shoes, bags, jewelry and watches, which this table does not model"
    ),
)


def table_on(day: date, tables: Sequence[FeeTable] = (US_FEES,)) -> FeeTable:
    """The table in force on ``day``: the latest whose ``effective`` is not after it."""
    in_force = [t for t in tables if t.effective <= day]
    if not in_force:
        raise LookupError(f"no fee table in force on {day}")
    return max(in_force, key=lambda t: t.effective)


@dataclass(frozen=True)
class MonthFee:
    """One month's forecast: the snapshot day, units then, monthly fee and aged surcharge."""

    month: date
    snapshot: date
    units: int
    storage: Decimal
    aged_surcharge: Decimal

    @property
    def total(self) -> Decimal:
        """Storage fee plus aged surcharge."""
        return self.storage + self.aged_surcharge


def _month_start(day: date, ahead: int) -> date:
    """The first day of the month ``ahead`` months after ``day``'s."""
    index = day.year * 12 + day.month - 1 + ahead
    return date(index // 12, index % 12 + 1, 1)


def forecast_storage_fees(
    lots: Sequence[Lot],
    *,
    daily_demand: float,
    unit_volume_cuft: Decimal,
    size_tier: str,
    today: date,
    months: int = 3,
    tables: Sequence[FeeTable] = (US_FEES,),
) -> tuple[MonthFee, ...]:
    """Storage fee and aged surcharge for this month and the ``months - 1`` after it.

    ``lots`` are the units on hand today by receipt day (:func:`inventory.health.fifo_lots`).
    Each month is priced with the table in force on its snapshot day.
    """
    ordered = sorted(lots, key=lambda lot: lot.received)
    out: list[MonthFee] = []
    for ahead in range(months):
        month = _month_start(today, ahead)
        snapshot = max(month.replace(day=ASSESSMENT_DAY), today)
        sold = math.floor(max(daily_demand, 0.0) * (snapshot - today).days + 1e-9)
        # A lot still inbound on the snapshot day is neither stored nor sold from yet.
        left = consume([lot for lot in ordered if lot.received <= snapshot], sold)
        table = table_on(snapshot, tables)
        units = sum(lot.units for lot in left)
        rate = table.monthly_rate(size_tier, month.month)
        aged = Decimal(0)
        for lot in left:
            tier = table.aged_tier(lot.age(snapshot))
            if tier is not None:
                aged += tier.charge(lot.units, unit_volume_cuft)
        out.append(
            MonthFee(
                month=month,
                snapshot=snapshot,
                units=units,
                storage=(units * unit_volume_cuft * rate).quantize(CENT, rounding=ROUND_HALF_UP),
                aged_surcharge=aged.quantize(CENT, rounding=ROUND_HALF_UP),
            )
        )
    return tuple(out)
