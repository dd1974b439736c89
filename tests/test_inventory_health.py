"""Inventory health: FIFO age buckets from receipts and sales, excess, sell-through, stranded."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from inventory.health import (
    AgeBuckets,
    Lot,
    age_buckets,
    average_on_hand,
    consume,
    excess_units,
    fifo_lots,
    sell_through,
    stranded_units,
)


def test_fifo_age_buckets_from_receipts_and_sales_match_the_hand_computed_case() -> None:
    receipts = [
        (date(2025, 1, 10), 100),
        (date(2025, 6, 1), 50),
        (date(2025, 10, 1), 30),
        (date(2026, 3, 1), 40),
        (date(2026, 4, 1), 99),  # after the day asked about: not on hand yet
    ]
    sales = [(date(2025, 3, 1), 60), (date(2025, 7, 1), 50), (date(2026, 1, 5), 35)]
    on = date(2026, 3, 15)
    # By hand: the 60 leave the January lot (40 left); the 50 take its 40 and 10 of June's
    # (40 left); the 35 take 35 of June's (5 left). On hand: 5 from 2025-06-01 (287 days),
    # 30 from 2025-10-01 (165 days), 40 from 2026-03-01 (14 days).
    lots = fifo_lots(receipts, sales, on)
    assert lots == (
        Lot(date(2025, 6, 1), 5),
        Lot(date(2025, 10, 1), 30),
        Lot(date(2026, 3, 1), 40),
    )
    assert [lot.age(on) for lot in lots] == [287, 165, 14]
    buckets = age_buckets(lots, on)
    assert buckets == AgeBuckets(days_0_90=40, days_91_180=30, days_271_365=5)
    assert buckets.total == 75
    assert buckets.as_dict() == {"0-90": 40, "91-180": 30, "181-270": 0, "271-365": 5, "365+": 0}


def test_bucket_edges_and_same_day_receipts_before_sales() -> None:
    on = date(2026, 12, 31)
    lots = [Lot(date.fromordinal(on.toordinal() - age), 1) for age in (90, 91, 180, 181, 365, 366)]
    assert age_buckets(lots, on) == AgeBuckets(1, 2, 1, 1, 1)
    # A receipt and a sale on one day: the sale can take from that day's receipt.
    day = date(2026, 5, 1)
    assert fifo_lots([(day, 10)], [(day, 4)], day) == (Lot(day, 6),)
    # More sold than ever received (history starting mid-life): nothing left, no negative lot.
    assert fifo_lots([(day, 3)], [(day, 5)], day) == ()
    assert consume([Lot(day, 3), Lot(on, 2)], 4) == (Lot(on, 1),)


def test_excess_sell_through_and_stranded() -> None:
    assert excess_units(on_hand=100, daily_demand=2.0, target_cover_days=30) == 40
    assert excess_units(on_hand=50, daily_demand=2.0, target_cover_days=30) == 0
    assert excess_units(on_hand=25, daily_demand=0.0, target_cover_days=30) == 25
    average = average_on_hand([40, 50, 45])
    assert average == Decimal(45)
    assert sell_through(90, average) == Decimal("2.00")
    assert sell_through(10, Decimal(0)) is None
    assert average_on_hand([]) == Decimal(0)
    pools = {"amazon:fba": 10, "walmart:wfs": 5, "amazon:merchant": 0, "ebay": 3}
    active = {"amazon:fba": False, "walmart:wfs": True}
    assert stranded_units(pools, active) == 13


@given(
    events=st.lists(
        st.tuples(st.integers(min_value=0, max_value=400), st.booleans(), st.integers(0, 50)),
        max_size=40,
    )
)
def test_fifo_keeps_the_newest_units_and_conserves_the_count(
    events: list[tuple[int, bool, int]],
) -> None:
    base = date(2025, 1, 1)
    receipts = [(base + timedelta(days=d), u) for d, is_receipt, u in events if is_receipt]
    outflows = [(base + timedelta(days=d), u) for d, is_receipt, u in events if not is_receipt]
    on = base + timedelta(days=400)
    lots = fifo_lots(receipts, outflows, on)
    # The count is a running balance that never goes below zero (receipts first on a day).
    balance = 0
    for day in sorted({d for d, _ in receipts + outflows}):
        balance += sum(u for d, u in receipts if d == day)
        balance = max(balance - sum(u for d, u in outflows if d == day), 0)
    assert sum(lot.units for lot in lots) == balance
    assert all(lot.units > 0 for lot in lots)
    assert [lot.received for lot in lots] == sorted({lot.received for lot in lots})
    # Every lot but the oldest is whole: FIFO only ever eats into the oldest remaining receipt.
    received = {}
    for day, units in receipts:
        received[day] = received.get(day, 0) + units
    assert all(lot.units == received[lot.received] for lot in lots[1:])
    assert age_buckets(lots, on).total == balance
