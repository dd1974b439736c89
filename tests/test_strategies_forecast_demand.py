"""excess_inventory with ``demand: forecast``: cover from the inventory pass's stored forecast
(a stock-out does not make it look like excess), and end to end through the reprice inputs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from daemon.db.engine import Database
from daemon.db.models import RestockRow
from daemon.pricing_history import forecast_demand
from strategies.inventory import ExcessInventoryParams, excess_inventory
from tests.inventory_fixtures import T0, held, product
from tests.strategy_fixtures import check
from tests.test_strategies_inventory import EXCESS, snap

D = Decimal
RESTOCK = RestockRow.__table__  # type: ignore[attr-defined]
# 100 on hand; 30 sold in 30 days (a stock-out half the month): trailing cover 100 days.


@pytest.mark.parametrize(
    ("fields", "params", "target", "reason"),
    [
        pytest.param(
            {"forecast_daily_demand": D("2")},
            {"demand": "forecast"},
            None,
            "cover 50.0 days within target 60 → hold",
            id="forecast-within-target",
        ),
        pytest.param(
            {"forecast_daily_demand": D("1")},
            {"demand": "forecast"},
            "9.50",
            "cover 100.0 days > target 60 → down 5% to 9.50",
            id="forecast-excess",
        ),
        pytest.param(
            {"forecast_daily_demand": D("0")},
            {"demand": "forecast"},
            "9.50",
            "cover ∞ days > target 60 → down 5% to 9.50",
            id="forecast-no-demand",
        ),
        pytest.param(
            {"forecast_daily_demand": D("20")},
            {"demand": "forecast"},
            "10.50",
            "cover 5.0 days < short 10 → up 5% to 10.50",
            id="forecast-short",
        ),
        pytest.param(
            {},
            {"demand": "forecast"},
            None,
            "excess_inventory: demand forecast unknown",
            id="forecast-missing",
        ),
        pytest.param(
            {"forecast_daily_demand": D("2")},
            {},
            "9.50",
            "cover 100.0 days > target 60 → down 5% to 9.50",
            id="trailing-is-the-default",
        ),
    ],
)
def test_excess_inventory_on_forecast_demand(
    fields: dict[str, Any], params: dict[str, Any], target: str | None, reason: str
) -> None:
    """The forecast's cover decides when asked to; trailing sales stay the default."""
    decision = excess_inventory(
        snap(**fields), ExcessInventoryParams.model_validate(EXCESS | params)
    )
    check(decision, target, reason)
    if "demand" in params and fields:
        assert decision.trace[0].detail.startswith("100 on hand, ")


def test_demand_must_be_forecast_or_trailing() -> None:
    """Anything else is a config error."""
    with pytest.raises(ValueError, match="demand"):
        ExcessInventoryParams.model_validate(EXCESS | {"demand": "magic"})


async def test_forecast_demand_loads_a_channel_in_one_query(db: Database) -> None:
    """The stored forecast of every SKU listed on the channel, and only those."""
    for sku in ("A", "B"):
        await product(db, sku)
    await held(db, "amazon", "A", 5)
    rows = [
        {
            "sku": sku,
            "on_hand_pools": {},
            "daily_demand": demand,
            "forecast_start": T0.date(),
            "computed_at": T0,
        }
        for sku, demand in (("A", 2.345678), ("B", 1.0))
    ]
    async with db.write() as conn:
        await conn.execute(sa.insert(RESTOCK), rows)
    async with db.read() as conn:
        assert await forecast_demand(conn, "amazon") == {"A": D("2.3457")}
        assert await forecast_demand(conn, "amazon", {"B"}) == {}
        assert await forecast_demand(conn, "shop") == {}
