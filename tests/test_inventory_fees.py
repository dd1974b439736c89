"""The storage-fee forecast against a hand-computed case, and the dated fee table."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from inventory.fees import US_FEES, AgedTier, FeeTable, MonthlyRate, forecast_storage_fees, table_on
from inventory.health import Lot

HALF = Decimal("0.5")


def test_three_months_with_a_q4_month_and_aged_surcharges_by_hand() -> None:
    lots = [Lot(date(2026, 3, 1), 100), Lot(date(2026, 11, 1), 50)]
    months = forecast_storage_fees(
        lots, daily_demand=1.0, unit_volume_cuft=HALF, size_tier="standard", today=date(2026, 12, 8)
    )
    # Dec 15: 7 sold from the March lot → 93 aged 289 days (271–300: $3.80) + 50 aged 44.
    #   storage 143 × 0.5 × $2.40 (Oct–Dec) = 171.60; surcharge 93 × 0.5 × 3.80 = 176.70.
    # Jan 15: 38 sold → 62 aged 320 (301–330: $4.00) + 50.
    #   storage 112 × 0.5 × $0.78 = 43.68; surcharge 62 × 0.5 × 4.00 = 124.00.
    # Feb 15: 69 sold → 31 aged 351 (331–365: $4.20) + 50.
    #   storage 81 × 0.5 × 0.78 = 31.59; surcharge 31 × 0.5 × 4.20 = 65.10.
    assert [(m.month, m.snapshot, m.units) for m in months] == [
        (date(2026, 12, 1), date(2026, 12, 15), 143),
        (date(2027, 1, 1), date(2027, 1, 15), 112),
        (date(2027, 2, 1), date(2027, 2, 15), 81),
    ]
    assert [(m.storage, m.aged_surcharge) for m in months] == [
        (Decimal("171.60"), Decimal("176.70")),
        (Decimal("43.68"), Decimal("124.00")),
        (Decimal("31.59"), Decimal("65.10")),
    ]
    assert [m.total for m in months] == [Decimal("348.30"), Decimal("167.68"), Decimal("96.69")]


def test_the_oldest_tier_charges_per_unit_when_that_is_greater() -> None:
    lots = [Lot(date(2025, 1, 2), 10), Lot(date(2026, 12, 25), 5)]  # the second still inbound
    (month,) = forecast_storage_fees(
        lots,
        daily_demand=0.0,
        unit_volume_cuft=Decimal("0.01"),
        size_tier="oversize",
        today=date(2026, 12, 20),
        months=1,
    )
    # The 15th has passed: the snapshot is today. 0.01 × $6.90 < $0.15 a unit → 10 × 0.15.
    assert month.snapshot == date(2026, 12, 20)
    assert month.units == 10
    assert month.aged_surcharge == Decimal("1.50")
    assert month.storage == Decimal("0.14")  # 10 × 0.01 × $1.40 = 0.14


def test_the_table_in_force_is_picked_by_date_and_cites_its_source() -> None:
    newer = FeeTable(
        effective=date(2027, 1, 15),
        monthly=(MonthlyRate("standard", Decimal("1.00"), Decimal("3.00")),),
        aged=(AgedTier(181, None, Decimal("1.00")),),
    )
    tables = (US_FEES, newer)
    assert table_on(date(2027, 1, 14), tables) is US_FEES
    assert table_on(date(2027, 1, 15), tables) is newer
    with pytest.raises(LookupError):
        table_on(date(2020, 1, 1), tables)
    assert US_FEES.effective == date(2024, 4, 1)
    assert any("sellercentral.amazon.com" in source for source in US_FEES.sources)
    assert US_FEES.monthly_rate("standard", 10) == Decimal("2.40")
    assert US_FEES.aged_tier(180) is None
    with pytest.raises(KeyError, match="no storage fee"):
        US_FEES.monthly_rate("bulky", 1)
    # Priced month by month with the table in force on each snapshot day.
    months = forecast_storage_fees(
        [Lot(date(2026, 12, 1), 10)],
        daily_demand=0.0,
        unit_volume_cuft=Decimal(1),
        size_tier="standard",
        today=date(2026, 12, 1),
        months=2,
        tables=tables,
    )
    assert [m.storage for m in months] == [Decimal("24.00"), Decimal("10.00")]
