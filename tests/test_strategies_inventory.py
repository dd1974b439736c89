"""excess_inventory and sales_velocity: every branch, cadence, bounds, params and config."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from daemon.settings import Settings
from strategies import STRATEGIES
from strategies.base import Snapshot, parse_duration
from strategies.competitive import BuyBoxParams, LowestPriceParams, strategy_floor
from strategies.inventory import (
    ExcessInventoryParams,
    SalesVelocityParams,
    excess_inventory,
    sales_velocity,
)
from strategies.rules import (
    BuyBoxRule,
    ExcessInventoryRule,
    LowestPriceRule,
    SalesVelocityRule,
)
from tests.daemon_fixtures import settings as make_settings
from tests.strategy_fixtures import NOW, check, listing_snapshot

D = Decimal
SOLD = ((1, 1), (7, 14), (30, 30))  # 100 on hand: 100 days of cover over 30 d, 50 over 7 d


def snap(**fields: Any) -> Snapshot:
    """Listing MUG-1 at 10.00 in [6.00, 15.00], 100 on hand, oldest unit 50 days, overridden."""
    return listing_snapshot(
        {
            "min_price": D("6.00"),
            "max_price": D("15.00"),
            "stock_on_hand": 100,
            "units_sold": SOLD,
            "inventory_age_days": 50,
        },
        **fields,
    )


# --- excess_inventory ------------------------------------------------------------------------

EXCESS = {"target_days_of_cover": 60, "short_cover_days": 10, "max_inventory_age_days": 180}
AGO = {hours: NOW - timedelta(hours=hours) for hours in (13, 23, 24)}


@pytest.mark.parametrize(
    ("fields", "params", "target", "reason"),
    [
        pytest.param({}, {}, "9.50", "cover 100.0 days > target 60 → down 5% to 9.50", id="excess"),
        pytest.param(
            {}, {"window_days": 7}, None, "cover 50.0 days within target 60", id="window-7"
        ),
        pytest.param({}, {"window_days": 1}, "9.50", "cover 100.0 days", id="window-1"),
        pytest.param({}, {"markdown_pct": "12.5"}, "8.75", "down 12.5% to 8.75", id="markdown-pct"),
        pytest.param({"stock_on_hand": 50}, {}, None, "within target 60 → hold", id="within"),
        pytest.param(
            {"stock_on_hand": 50, "inventory_age_days": 200},
            {},
            "9.50",
            "oldest unit 200 days > max 180 → down 5% to 9.50",
            id="aged",
        ),
        pytest.param(
            {"stock_on_hand": 50, "inventory_age_days": 180}, {}, None, "within", id="age-at-max"
        ),
        pytest.param(
            {"stock_on_hand": 50, "inventory_age_days": None}, {}, None, "within", id="age-unknown"
        ),
        pytest.param(
            {"stock_on_hand": 5, "inventory_age_days": 200},
            {},
            None,
            "but cover 5.0 days < short 10: selling fast, no markdown → hold",
            id="aged-but-short",
        ),
        pytest.param(
            {"stock_on_hand": 5}, {}, "10.50", "cover 5.0 days < short 10 → up 5%", id="short"
        ),
        pytest.param({"stock_on_hand": 10}, {}, None, "within", id="short-boundary"),
        pytest.param(
            {"stock_on_hand": 5}, {"short_cover_days": None}, None, "within", id="no-markup"
        ),
        pytest.param(
            {"stock_on_hand": 5}, {"markup_pct": 2}, "10.20", "up 2% to 10.20", id="markup-pct"
        ),
        pytest.param(
            {"stock_on_hand": 5, "max_price": D("10.30")},
            {},
            "10.30",
            "up 5% to 10.30, stopped at max_price 10.30",
            id="markup-stops-at-max",
        ),
        pytest.param(
            {"stock_on_hand": 5, "current_price": D("15.00")},
            {},
            None,
            "already at max_price 15.00 → hold",
            id="markup-at-max",
        ),
        pytest.param(
            {"stock_on_hand": 5, "max_price": None}, {}, "10.50", "up 5%", id="markup-no-max"
        ),
        pytest.param(
            {"min_price": D("9.80")},
            {},
            "9.80",
            "down 5% to 9.80, stopped at floor 9.80",
            id="markdown-stops-at-floor",
        ),
        pytest.param(
            {"min_price": D("10.00")}, {}, None, "already at floor 10.00 → hold", id="at-floor"
        ),
        pytest.param(
            {"current_price": D("5.00")}, {}, None, "already at floor 6.00", id="below-floor"
        ),
        pytest.param(
            {"min_price": None},
            {},
            None,
            "no floor known (min_price or cost) → hold",
            id="no-floor",
        ),
        pytest.param(
            {"min_price": None, "cost": D("9.60"), "fees": D("0.20")},
            {},
            "9.80",
            "stopped at floor 9.80",
            id="cost-floor",
        ),
        pytest.param(
            {"current_price": D("0.10"), "min_price": D("0.01")},
            {"markdown_pct": 1},
            "0.09",  # 1% of 0.10 rounds to nothing: every step moves at least a cent
            "down 1% to 0.09",
            id="markdown-min-cent",
        ),
        pytest.param(
            {"current_price": D("0.10"), "stock_on_hand": 1},
            {"markup_pct": 1},
            "0.11",
            "up 1% to 0.11",
            id="markup-min-cent",
        ),
        pytest.param(
            {"units_sold": ((30, 0),)}, {}, "9.50", "cover ∞ days > target 60", id="no-sales"
        ),
        pytest.param({"stock_on_hand": 0}, {}, None, "no stock on hand", id="no-stock"),
        pytest.param(
            {"stock_on_hand": None}, {}, None, "stock on hand unknown", id="stock-unknown"
        ),
        pytest.param(
            {"units_sold": ((7, 14),)}, {}, None, "sales over 30 days unknown", id="window-missing"
        ),
        pytest.param({"current_price": None}, {}, None, "no current price", id="no-price"),
        pytest.param(
            {"last_change_at": AGO[23]},
            {},
            None,
            "cover 100.0 days > target 60, but the last change was 23h ago < cadence 1d → hold",
            id="cadence-wait",
        ),
        pytest.param({"last_change_at": AGO[24]}, {}, "9.50", "down 5%", id="cadence-due"),
        pytest.param(
            {"last_change_at": AGO[13]}, {"cadence": "12h"}, "9.50", "down 5%", id="cadence-12h"
        ),
        pytest.param(
            {"last_change_at": AGO[13], "stock_on_hand": 5},
            {"cadence": "2d"},
            None,
            "< short 10, but the last change was 13h ago < cadence 2d → hold",
            id="cadence-blocks-markup",
        ),
        pytest.param(
            {"last_change_at": NOW + timedelta(hours=1)},
            {},
            None,
            "the last change was -1h ago",
            id="cadence-clock-skew",
        ),
    ],
)
def test_excess_inventory_scenarios(
    fields: dict[str, Any], params: dict[str, Any], target: str | None, reason: str
) -> None:
    """Each excess_inventory scenario gives its exact target (or hold) and says why."""
    decision = excess_inventory(
        snap(**fields), ExcessInventoryParams.model_validate(EXCESS | params)
    )
    check(decision, target, reason)


# --- sales_velocity --------------------------------------------------------------------------

VELOCITY = {"target_units": 10}


def sold7(units: int) -> tuple[tuple[int, int], ...]:
    """A snapshot's sales windows with ``units`` sold in the last 7 days."""
    return ((1, 0), (7, units), (30, units * 4))


@pytest.mark.parametrize(
    ("fields", "params", "target", "reason"),
    [
        pytest.param(
            {"units_sold": sold7(12)},
            {},
            "10.30",
            "12 sold in 7d > 11 → up 3% to 10.30",
            id="raise",
        ),
        pytest.param(
            {"units_sold": sold7(11)}, {}, None, "11 sold in 7d within 9–11 → hold", id="band-top"
        ),
        pytest.param({"units_sold": sold7(9)}, {}, None, "within 9–11", id="band-bottom"),
        pytest.param(
            {"units_sold": sold7(8)}, {}, "9.80", "8 sold in 7d < 9 → down 2% to 9.80", id="lower"
        ),
        pytest.param({"units_sold": sold7(0)}, {}, "9.80", "0 sold in 7d < 9", id="no-sales"),
        pytest.param(
            {"units_sold": sold7(10)}, {"tolerance_pct": 0}, None, "within 10–10", id="no-band"
        ),
        pytest.param(
            {"units_sold": sold7(11)}, {"tolerance_pct": 0}, "10.30", "> 10", id="no-band-raise"
        ),
        pytest.param(
            {"units_sold": sold7(12)},
            {"raise_pct": "3.5"},
            "10.35",
            "up 3.5% to 10.35",
            id="raise-pct",
        ),
        pytest.param(
            {"units_sold": sold7(1)},
            {"lower_pct": "0.5"},
            "9.95",
            "down 0.5% to 9.95",
            id="lower-pct",
        ),
        pytest.param(
            {"units_sold": sold7(12)},
            {"window_days": 30, "target_units": 40},
            "10.30",
            "48 sold in 30d > 44",
            id="window-30",
        ),
        pytest.param(
            {"units_sold": ((7, 3),)},
            {"window_days": 1},
            None,
            "sales over 1 days unknown",
            id="window-missing",
        ),
        pytest.param(
            {"units_sold": sold7(12), "stock_on_hand": None},
            {},
            None,
            "stock on hand unknown",
            id="stock-unknown",
        ),
        pytest.param(
            {"units_sold": sold7(0), "stock_on_hand": 0},
            {},
            None,
            "out of stock",
            id="out-of-stock",
        ),
        pytest.param(
            {"units_sold": sold7(12), "current_price": None},
            {},
            None,
            "no current price",
            id="no-price",
        ),
        pytest.param(
            {"units_sold": sold7(12), "max_price": D("10.10")},
            {},
            "10.10",
            "stopped at max_price 10.10",
            id="raise-stops-at-max",
        ),
        pytest.param(
            {"units_sold": sold7(12), "max_price": D("10.00")},
            {},
            None,
            "already at max_price 10.00",
            id="raise-at-max",
        ),
        pytest.param(
            {"units_sold": sold7(8), "min_price": D("9.90")},
            {},
            "9.90",
            "stopped at floor 9.90",
            id="lower-stops-at-floor",
        ),
        pytest.param(
            {"units_sold": sold7(8), "min_price": D("10.00")},
            {},
            None,
            "already at floor 10.00",
            id="lower-at-floor",
        ),
        pytest.param(
            {"units_sold": sold7(8), "min_price": None},
            {},
            None,
            "no floor known",
            id="lower-no-floor",
        ),
        pytest.param(
            {"units_sold": sold7(12), "last_change_at": AGO[23]},
            {},
            None,
            "12 sold in 7d > 11, but the last change was 23h ago < cadence 1d → hold",
            id="cadence-wait",
        ),
        pytest.param(
            {"units_sold": sold7(8), "last_change_at": AGO[23]},
            {"cadence": 3600},
            "9.80",
            "down 2%",
            id="cadence-seconds",
        ),
    ],
)
def test_sales_velocity_scenarios(
    fields: dict[str, Any], params: dict[str, Any], target: str | None, reason: str
) -> None:
    """Each sales_velocity scenario gives its exact target (or hold) and says why."""
    decision = sales_velocity(snap(**fields), SalesVelocityParams.model_validate(VELOCITY | params))
    check(decision, target, reason)


# --- params ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (3600, timedelta(hours=1)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(days=1)),
        ("1.5d", timedelta(hours=36)),
        (" 90 s ", timedelta(seconds=90)),
        (timedelta(hours=6), timedelta(hours=6)),
    ],
)
def test_cadence_accepts_durations(raw: Any, expected: timedelta) -> None:
    """cadence takes seconds, 30m/24h/7d strings or a timedelta."""
    assert parse_duration(raw) == expected
    assert SalesVelocityParams(target_units=1, cadence=raw).cadence == expected


@pytest.mark.parametrize(
    ("model", "params", "key", "message"),
    [
        (ExcessInventoryParams, {}, "target_days_of_cover", "Field required"),
        (
            ExcessInventoryParams,
            {**EXCESS, "short_cover_days": 60},
            "short_cover_days",
            "below target_days_of_cover (60)",
        ),
        (ExcessInventoryParams, {**EXCESS, "window_days": 14}, "window_days", "1, 7 or 30"),
        (ExcessInventoryParams, {**EXCESS, "markdown_pct": 0}, "markdown_pct", "greater than 0"),
        (
            ExcessInventoryParams,
            {**EXCESS, "markup_pct": 60},
            "markup_pct",
            "less than or equal to 50",
        ),
        (
            ExcessInventoryParams,
            {**EXCESS, "max_inventory_age_days": 0},
            "max_inventory_age_days",
            "greater than 0",
        ),
        (
            ExcessInventoryParams,
            {**EXCESS, "cadence": "soon"},
            "cadence",
            "a duration like 30s, 5m, 1h or 1d",
        ),
        (
            ExcessInventoryParams,
            {**EXCESS, "cadence": 0},
            "cadence",
            "more than 0 and at most 366d",
        ),
        (
            ExcessInventoryParams,
            {**EXCESS, "cadence": "400d"},
            "cadence",
            "more than 0 and at most 366d",
        ),
        (ExcessInventoryParams, {**EXCESS, "cadence": True}, "cadence", "a duration like"),
        (ExcessInventoryParams, {**EXCESS, "step": 1}, "step", "Extra inputs are not permitted"),
        (SalesVelocityParams, {}, "target_units", "Field required"),
        (SalesVelocityParams, {"target_units": 0}, "target_units", "greater than or equal to 1"),
        (SalesVelocityParams, {**VELOCITY, "tolerance_pct": 100}, "tolerance_pct", "less than 100"),
        (SalesVelocityParams, {**VELOCITY, "raise_pct": "NaN"}, "raise_pct", "finite number"),
        (SalesVelocityParams, {**VELOCITY, "lower_pct": -1}, "lower_pct", "greater than 0"),
    ],
)
def test_params_errors_name_their_key(
    model: Any, params: dict[str, Any], key: str, message: str
) -> None:
    """Invalid inventory params fail on the offending key with a clear message."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(params)
    errors = {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}
    assert key in errors, errors
    assert message in errors[key]


# --- registry and config ---------------------------------------------------------------------


def test_new_strategies_are_registered() -> None:
    """STRATEGIES maps the four new YAML names to their functions."""
    from strategies.competitive import buy_box, lowest_price

    assert STRATEGIES["buy_box"] is buy_box
    assert STRATEGIES["lowest_price"] is lowest_price
    assert STRATEGIES["excess_inventory"] is excess_inventory
    assert STRATEGIES["sales_velocity"] is sales_velocity


YAML_RULES: list[dict[str, Any]] = [
    {
        "name": "buy-box",
        "match": {"channel": "alpha"},
        "strategy": "buy_box",
        "params": {
            "position": "beat",
            "by_amount": D("0.01"),
            "filters": {"fulfillment": ["fba", "retail"], "min_rating_pct": 90},
            "when_below_floor": "hold",
            "when_winning": "probe",
            "probe_step_pct": 3,
        },
    },
    {
        "name": "cheapest",
        "match": {"tags": "commodity"},
        "strategy": "lowest_price",
        "params": {"position": "above", "by_pct": D("1.5"), "filters": {"exclude_sellers": "X1"}},
    },
    {
        "name": "clearance",
        "match": {"sku": "CLEAR-*"},
        "strategy": "excess_inventory",
        "params": {"target_days_of_cover": 90, "short_cover_days": 14, "cadence": "24h"},
    },
    {
        "name": "velocity",
        "match": {"sku": "FAST-*"},
        "strategy": "sales_velocity",
        "params": {"window_days": 30, "target_units": 40, "cadence": "12h"},
    },
    {"strategy": "buy_box"},
]


def test_new_rules_validate_from_yaml_like_dicts() -> None:
    """Each new rule loads through Settings with typed params (and buy_box defaults alone)."""
    config = make_settings(pricing={"rules": YAML_RULES})
    box, low, excess, velocity, default = config.pricing.rules
    assert isinstance(box, BuyBoxRule)
    assert box.params.by_amount == D("0.01")
    assert box.params.filters.fulfillment == ("fba", "retail")
    assert isinstance(low, LowestPriceRule)
    assert low.params.filters.exclude_sellers == ("X1",)
    assert isinstance(excess, ExcessInventoryRule)
    assert excess.params.cadence == timedelta(hours=24)
    assert isinstance(velocity, SalesVelocityRule)
    assert velocity.params.window_days == 30
    assert isinstance(default, BuyBoxRule)
    assert default.params == BuyBoxParams()
    assert LowestPriceRule(strategy="lowest_price").params == LowestPriceParams()


@pytest.mark.parametrize(
    ("rule", "loc"),
    [
        (
            {"strategy": "buy_box", "params": {"position": "beat"}},
            ("buy_box", "params", "by_pct"),
        ),
        (
            {"strategy": "lowest_price", "params": {"by_amount": 1, "position": "match"}},
            ("lowest_price", "params", "by_amount"),
        ),
        (
            {
                "strategy": "excess_inventory",
                "params": {"target_days_of_cover": 5, "short_cover_days": 9},
            },
            ("excess_inventory", "params", "short_cover_days"),
        ),
        (
            {"strategy": "sales_velocity", "params": {}},
            ("sales_velocity", "params", "target_units"),
        ),
        ({"strategy": "excess_inventory"}, ("excess_inventory", "params")),
    ],
)
def test_rule_errors_point_at_the_param(rule: dict[str, Any], loc: tuple[str, ...]) -> None:
    """A bad new rule is reported under pricing.rules[i].<strategy>.params.<key>."""
    with pytest.raises(ValidationError) as info:
        Settings.model_validate(
            {"channels": {"alpha": {"kind": "mock"}}, "pricing": {"rules": [rule]}}
        )
    locs = [tuple(e["loc"]) for e in info.value.errors()]
    assert ("pricing", "rules", 0, *loc) in locs, locs


# --- properties ------------------------------------------------------------------------------

price = st.decimals(min_value=D("0.01"), max_value=D("100"), places=2)


@st.composite
def stocked(draw: st.DrawFn) -> Snapshot:
    """A listing with random price, bounds, stock, sales, age and last change."""
    window_sales = draw(st.lists(st.integers(0, 200), min_size=3, max_size=3))
    return snap(
        current_price=draw(st.none() | price),
        min_price=draw(st.none() | price),
        max_price=draw(st.none() | price.map(lambda p: p + 100)),
        cost=draw(st.none() | price),
        stock_on_hand=draw(st.none() | st.integers(0, 5000)),
        units_sold=tuple(zip((1, 7, 30), window_sales, strict=True)),
        inventory_age_days=draw(st.none() | st.integers(0, 720)),
        last_change_at=draw(st.none() | st.integers(0, 72).map(lambda h: NOW - timedelta(hours=h))),
    )


PROPERTY = settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
EXCESS_PARAMS = ExcessInventoryParams.model_validate(EXCESS | {"window_days": 7})
VELOCITY_PARAMS = SalesVelocityParams.model_validate({"target_units": 20, "tolerance_pct": 20})


@PROPERTY
@given(stocked(), st.sampled_from(["excess", "velocity"]))
def test_steps_stay_inside_the_bounds_and_the_cadence(snapshot: Snapshot, which: str) -> None:
    """A target is finite, positive, in cents, one step from the current price, never below
    the floor nor above max_price, and never proposed inside the cadence."""
    if which == "excess":
        decision, cadence = excess_inventory(snapshot, EXCESS_PARAMS), EXCESS_PARAMS.cadence
    else:
        decision, cadence = sales_velocity(snapshot, VELOCITY_PARAMS), VELOCITY_PARAMS.cadence
    assert decision.reason
    assert decision.trace
    target, current = decision.target, snapshot.current_price
    if target is None:
        return
    assert current is not None
    assert target.is_finite()
    assert target > 0
    assert target.as_tuple().exponent == -2
    assert target != current
    if snapshot.last_change_at is not None:
        assert snapshot.now - snapshot.last_change_at >= cadence
    floor = strategy_floor(snapshot)
    if target < current:
        assert floor is not None
        assert target >= floor
        assert current - target <= max(current * D("0.05") + D("0.005"), D("0.01"))
    else:
        assert snapshot.max_price is None or target <= snapshot.max_price
        assert target - current <= max(current * D("0.05") + D("0.005"), D("0.01"))
