"""Restock arithmetic: cover, safety stock, reorder point, order quantity and date, crossings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.restock import (
    RestockItem,
    crossings,
    days_of_supply,
    order_quantity,
    plan,
    reorder_point,
    round_to_pack,
    safety_stock,
    service_z,
)

TODAY = date(2026, 12, 8)
P95 = Decimal("0.95")


def test_days_of_supply_counts_every_pool_and_inbound() -> None:
    assert days_of_supply(on_hand=120, inbound=30, daily_demand=4.0) == Decimal("37.5")
    assert days_of_supply(on_hand=10, inbound=0, daily_demand=3.0) == Decimal("3.3")
    assert days_of_supply(on_hand=10, inbound=0, daily_demand=0.0) is None


def test_safety_stock_and_reorder_point_at_the_service_level() -> None:
    assert service_z(P95) == pytest.approx(1.6449, abs=1e-4)
    # z·σ·√L = 1.645 × 3 × 3 = 14.8 → 15 units; lead-time demand 10 × 9 = 90.
    assert safety_stock(3.0, 9, P95) == 15
    assert reorder_point(10.0, 3.0, 9, P95) == 105
    assert safety_stock(3.0, 9, Decimal("0.99")) == 21  # 2.326 × 9 = 20.9
    assert safety_stock(0.0, 9, P95) == 0
    with pytest.raises(ValueError, match="strictly between"):
        service_z(Decimal(1))


def test_order_quantity_covers_the_lead_time_and_the_target_then_moq_and_case_pack() -> None:
    common = {"daily_demand": 10.0, "target_cover_days": 30, "safety_units": 15}
    # 10 × (9 + 30) + 15 − 100 = 305 → 26 cases of 12 = 312.
    assert order_quantity(position=100, lead_time_days=9, moq=50, case_pack=12, **common) == 312
    # A longer lead time needs its extra days of demand: 10 × 21 more.
    assert (
        order_quantity(position=100, lead_time_days=30, moq=50, case_pack=12, **common)
        == round_to_pack(305 + 210, 12)
        == 516
    )
    # A small need is raised to the MOQ, then to whole cases: 40 → 48.
    assert order_quantity(position=400, lead_time_days=9, moq=40, case_pack=12, **common) == 48
    # Enough on hand and inbound: nothing to order.
    assert order_quantity(position=405, lead_time_days=9, moq=40, case_pack=12, **common) == 0


def test_plan_says_what_to_order_from_whom_and_by_when() -> None:
    item = RestockItem(
        sku="MUG-1",
        on_hand=150,
        inbound=50,
        daily_demand=10.0,
        sigma=3.0,
        lead_time_days=9,
        moq=50,
        case_pack=12,
        supplier="Acme",
        unit_cost=Decimal("2.35"),
    )
    result = plan(item, today=TODAY, target_cover_days=30)
    assert result.days_of_supply == Decimal("20.0")
    assert (result.safety_stock, result.reorder_point) == (15, 105)
    # The position (200) reaches 105 in 9.5 days → order in 9 days, when 90 more are sold:
    # 405 − (200 − 90) = 295 → 25 cases = 300 (ordering today's 205 then would land 90 short).
    assert result.order_quantity == 300
    assert result.order_by == date(2026, 12, 17)
    assert result.order_value == Decimal("705.00")
    assert result.supplier == "Acme"
    below = plan(
        RestockItem("MUG-1", 60, 0, 10.0, 3.0, 9, 50, 12), today=TODAY, target_cover_days=30
    )
    assert below.order_by == TODAY
    assert below.order_value is None
    idle = plan(RestockItem("MUG-1", 60, 0, 0.0, 0.0, 9), today=TODAY, target_cover_days=30)
    assert (idle.order_by, idle.order_quantity, idle.days_of_supply) == (None, 0, None)


def test_restock_alerts_fire_once_per_crossing() -> None:
    readings = [None, Decimal(30), Decimal(20), Decimal(18), Decimal(10), Decimal(9)]
    fired = [crossings(a, b) for a, b in pairwise(readings)]
    assert fired == [(), (21,), (), (14,), ()]
    # Back above 21 re-arms it; a fall past both fires both, highest first.
    assert crossings(Decimal(9), Decimal(25)) == ()
    assert crossings(Decimal(25), Decimal(13)) == (21, 14)
    # Exactly at a threshold is not below it.
    assert crossings(Decimal(30), Decimal(21)) == ()
    assert crossings(Decimal(21), Decimal("20.9")) == (21,)
    # A first reading already low fires; no demand (None) never does.
    assert crossings(None, Decimal(10)) == (21, 14)
    assert crossings(Decimal(10), None) == ()
    assert crossings(Decimal(40), Decimal(25), thresholds=(30, 7)) == (30,)


@given(
    position=st.integers(min_value=-50, max_value=5_000),
    daily=st.floats(min_value=0, max_value=500, allow_nan=False),
    lead=st.integers(min_value=0, max_value=120),
    target=st.integers(min_value=0, max_value=180),
    safety=st.integers(min_value=0, max_value=1_000),
    moq=st.integers(min_value=0, max_value=500),
    pack=st.integers(min_value=1, max_value=48),
)
def test_order_quantity_is_whole_cases_at_least_the_moq_and_enough(
    position: int, daily: float, lead: int, target: int, safety: int, moq: int, pack: int
) -> None:
    quantity = order_quantity(
        position=position,
        daily_demand=daily,
        lead_time_days=lead,
        target_cover_days=target,
        safety_units=safety,
        moq=moq,
        case_pack=pack,
    )
    assert quantity >= 0
    if quantity > 0:
        assert quantity % pack == 0
        assert quantity >= moq
        assert position + quantity >= daily * (lead + target) + safety - 1e-6
        assert quantity - pack < max(moq, daily * (lead + target) + safety - position)


@given(
    on_hand=st.integers(min_value=0, max_value=100_000),
    more=st.integers(min_value=0, max_value=10_000),
    inbound=st.integers(min_value=0, max_value=10_000),
    daily=st.floats(min_value=0.001, max_value=10_000, allow_nan=False),
)
def test_cover_is_monotone_in_on_hand(on_hand: int, more: int, inbound: int, daily: float) -> None:
    low = days_of_supply(on_hand, inbound, daily)
    high = days_of_supply(on_hand + more, inbound, daily)
    assert low is not None
    assert high is not None
    assert low <= high
