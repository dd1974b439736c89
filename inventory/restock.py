"""Restock arithmetic: days of supply, safety stock, reorder point, order quantity and date,
and the cover thresholds whose crossing raises a restock alert. Pure; Decimal at the edges.

Units are whole units, demand is units per day (a forecast's mean daily demand), the demand
deviation is the forecast's one-step daily sigma. Lead-time demand assumes independent days, so
its deviation is ``sigma·√lead_time``; safety stock is ``z·sigma·√lead_time`` with ``z`` the
normal quantile of the service level (the cycle service level: the probability that a
replenishment cycle ends without a stock-out).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist
from typing import Final

__all__ = [
    "DEFAULT_SERVICE_LEVEL",
    "DEFAULT_THRESHOLDS",
    "RestockItem",
    "RestockPlan",
    "crossings",
    "days_of_supply",
    "order_quantity",
    "plan",
    "reorder_point",
    "round_to_pack",
    "safety_stock",
    "service_z",
]

DEFAULT_SERVICE_LEVEL: Final = Decimal("0.95")
# Amazon's own replenishment alerts fire at 21 and 14 days of cover.
DEFAULT_THRESHOLDS: Final = (21, 14)
TENTH: Final = Decimal("0.1")
CENT: Final = Decimal("0.01")


def service_z(service_level: Decimal) -> float:
    """The standard normal quantile of ``service_level`` (0.95 → 1.645)."""
    if not Decimal(0) < service_level < Decimal(1):
        raise ValueError(f"service level {service_level} must lie strictly between 0 and 1")
    return NormalDist().inv_cdf(float(service_level))


def days_of_supply(on_hand: int, inbound: int, daily_demand: float) -> Decimal | None:
    """(sellable on hand in every pool + inbound) ÷ daily demand, to 0.1 day; None = no demand."""
    if daily_demand <= 0:
        return None
    cover = Decimal(max(on_hand + inbound, 0)) / Decimal(repr(float(daily_demand)))
    return cover.quantize(TENTH, rounding=ROUND_HALF_UP)


def safety_stock(sigma: float, lead_time_days: int, service_level: Decimal) -> int:
    """Units held against demand above the forecast over the lead time, rounded up."""
    if sigma <= 0 or lead_time_days <= 0:
        return 0
    return math.ceil(service_z(service_level) * sigma * math.sqrt(lead_time_days) - 1e-9)


def reorder_point(
    daily_demand: float, sigma: float, lead_time_days: int, service_level: Decimal
) -> int:
    """Lead-time demand + safety stock: order when the inventory position falls to this."""
    lead_time_demand = max(daily_demand, 0.0) * lead_time_days
    return math.ceil(lead_time_demand - 1e-9) + safety_stock(sigma, lead_time_days, service_level)


def round_to_pack(units: int, case_pack: int) -> int:
    """``units`` rounded up to a whole number of case packs."""
    pack = max(case_pack, 1)
    return -(-units // pack) * pack


def order_quantity(
    *,
    position: int,
    daily_demand: float,
    lead_time_days: int,
    target_cover_days: int,
    safety_units: int,
    moq: int,
    case_pack: int,
) -> int:
    """Units to order now so that ``target_cover_days`` of cover remain once the order lands.

    The need is demand over the lead time and the target cover plus safety stock, less the
    inventory position (on hand + inbound); a positive need is raised to the MOQ and then to
    whole case packs (so the result is a multiple of the case pack and at least the MOQ).
    """
    demand = max(daily_demand, 0.0) * (lead_time_days + target_cover_days)
    need = math.ceil(demand - 1e-9) + safety_units - position
    if need <= 0:
        return 0
    return round_to_pack(max(need, moq), case_pack)


@dataclass(frozen=True)
class RestockItem:
    """One SKU's stock position, forecast and supply terms."""

    sku: str
    on_hand: int
    inbound: int
    daily_demand: float
    sigma: float
    lead_time_days: int
    moq: int = 1
    case_pack: int = 1
    supplier: str | None = None
    unit_cost: Decimal | None = None


@dataclass(frozen=True)
class RestockPlan:
    """What to order for one SKU, from whom and by when (``order_by`` None: no demand)."""

    sku: str
    supplier: str | None
    days_of_supply: Decimal | None
    safety_stock: int
    reorder_point: int
    order_quantity: int
    order_by: date | None
    order_value: Decimal | None


def plan(
    item: RestockItem,
    *,
    today: date,
    target_cover_days: int,
    service_level: Decimal = DEFAULT_SERVICE_LEVEL,
) -> RestockPlan:
    """The restock plan of one SKU on ``today``.

    ``order_by`` is the day the position is expected to reach the reorder point at the
    forecast rate (``today`` when it already has); ``order_quantity`` is what to order on that
    day for ``target_cover_days`` of cover once it lands: the need is taken at the position
    expected then (today's less the forecast demand until then), so an order placed by the
    date it names is large enough. It is 0 when today's position already covers the lead time
    and the target (nothing to plan yet).
    """
    position = item.on_hand + item.inbound
    safety = safety_stock(item.sigma, item.lead_time_days, service_level)
    rop = reorder_point(item.daily_demand, item.sigma, item.lead_time_days, service_level)

    def quantity_at(units: int) -> int:
        return order_quantity(
            position=units,
            daily_demand=item.daily_demand,
            lead_time_days=item.lead_time_days,
            target_cover_days=target_cover_days,
            safety_units=safety,
            moq=item.moq,
            case_pack=item.case_pack,
        )

    quantity = quantity_at(position)
    order_by: date | None = None
    if item.daily_demand > 0:
        slack = max(0, math.floor((position - rop) / item.daily_demand))
        order_by = today + timedelta(days=slack)
        if quantity > 0 and slack > 0:
            # Sold between today and the order-by day: that order must make up for it too.
            sold = math.ceil(item.daily_demand * slack - 1e-9)
            quantity = quantity_at(position - sold)
    value = None
    if item.unit_cost is not None:
        value = (item.unit_cost * quantity).quantize(CENT, rounding=ROUND_HALF_UP)
    return RestockPlan(
        sku=item.sku,
        supplier=item.supplier,
        days_of_supply=days_of_supply(item.on_hand, item.inbound, item.daily_demand),
        safety_stock=safety,
        reorder_point=rop,
        order_quantity=quantity,
        order_by=order_by,
        order_value=value,
    )


def crossings(
    previous: Decimal | None,
    current: Decimal | None,
    thresholds: Sequence[int] = DEFAULT_THRESHOLDS,
) -> tuple[int, ...]:
    """The thresholds that cover fell below between two readings, highest first.

    Cover ``None`` is above every threshold: no demand (unbounded cover), or for ``previous`` no
    earlier reading. A threshold fires when the previous cover was at or above it and the
    current one is below: once per crossing; it re-arms when cover climbs back to it, and a fall
    straight past two thresholds fires both.
    """
    if current is None:
        return ()
    fired = [t for t in thresholds if current < t and (previous is None or previous >= t)]
    return tuple(sorted(fired, reverse=True))
