"""`inventory` restock settings and `schedule.inventory`: defaults, a dated fee table from YAML,
and problems reported with their keys."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from daemon.config import load_config
from domain.errors import ConfigError
from inventory.fees import US_FEES
from tests.test_config import MINIMAL, write


def test_defaults(tmp_path: Path) -> None:
    """95 % service, 60 days' target cover, alerts at 21 and 14 days, a year of history, the
    built-in US fee table, a daily pass."""
    settings = load_config(write(tmp_path, MINIMAL), environ={}).settings
    inventory = settings.inventory
    assert inventory.service_level == Decimal("0.95")
    assert inventory.target_cover_days == 60
    assert inventory.restock_alert_days == [21, 14]
    assert inventory.history_days == 365
    assert inventory.fee_tables() == (US_FEES,)
    assert settings.schedule.inventory == timedelta(days=1)


def test_fee_table_and_thresholds_from_yaml(tmp_path: Path) -> None:
    """A dated fee table in YAML becomes an exact FeeTable; thresholds are sorted, highest first."""
    text = MINIMAL + (
        "schedule: {inventory: 12h}\n"
        "inventory:\n"
        "  service_level: 0.98\n"
        "  restock_alert_days: [7, 30]\n"
        "  storage_fees:\n"
        "    - effective: 2025-01-15\n"
        "      monthly: {standard: {jan_sep: 0.78, oct_dec: 2.40}}\n"
        "      aged: [{min_age_days: 366, per_cuft: 6.90, per_unit: 0.15}]\n"
    )
    settings = load_config(write(tmp_path, text), environ={}).settings
    (table,) = settings.inventory.fee_tables()
    assert table.effective == date(2025, 1, 15)
    assert table.monthly_rate("standard", 11) == Decimal("2.40")
    aged = table.aged_tier(400)
    assert aged is not None
    assert (aged.per_cuft, aged.per_unit) == (Decimal("6.90"), Decimal("0.15"))
    assert settings.inventory.restock_alert_days == [30, 7]
    assert settings.inventory.service_level == Decimal("0.98")
    assert settings.schedule.inventory == timedelta(hours=12)


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ("inventory: {service_level: 1}\n", "inventory.service_level"),
        ("inventory: {restock_alert_days: [14, 14]}\n", "inventory.restock_alert_days"),
        ("inventory: {target_cover_days: 0}\n", "inventory.target_cover_days"),
        ("inventory: {history_days: 7}\n", "inventory.history_days"),
        (
            "inventory: {storage_fees: [{effective: 2025-01-01, monthly: {}}]}\n",
            "inventory.storage_fees[0].monthly",
        ),
        (
            "inventory: {storage_fees: [{effective: 2025-01-01, monthly: {standard: "
            "{jan_sep: 1, oct_dec: 2}}, aged: [{min_age_days: 271, max_age_days: 180, "
            "per_cuft: 1}]}]}\n",
            "inventory.storage_fees[0].aged[0].max_age_days",
        ),
        (
            "inventory: {storage_fees: [{effective: 2025-01-01, monthly: {standard: "
            "{jan_sep: 1, oct_dec: 2}}, aged: [{min_age_days: 181, max_age_days: 300, "
            "per_cuft: 1}, {min_age_days: 271, per_cuft: 2}]}]}\n",
            "inventory.storage_fees[0].aged",
        ),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, block: str, key: str) -> None:
    """Each bad value is a problem under its dotted key."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, MINIMAL + block), environ={})
    assert key in {p.key for p in caught.value.problems}
