"""hold, fixed, cost_plus, rule selection, guards and `decide` (R7 and R8 for these strategies)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from strategies import STRATEGIES
from strategies.base import CENT, Decision, Snapshot, quantize
from strategies.engine import bounded, decide
from strategies.guards import GuardSettings, Verdict, apply_guards, price_bounds
from strategies.rules import CostPlusRule, Rule, RuleMatch, rule_label, select_rule
from strategies.simple import CostPlusParams, FixedParams, HoldParams, cost_plus, fixed, hold

D = Decimal
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HALF_CENT = D("0.005")
RULES = TypeAdapter(list[Rule])
GUARDS = GuardSettings(min_margin_pct=D("0"), max_step_pct=D("10"))


def snap(**fields: Any) -> Snapshot:
    """A snapshot of listing MUG-1 on `shop`, with the given fields overridden."""
    base: dict[str, Any] = {
        "channel": "shop",
        "sku": "MUG-1",
        "currency": "USD",
        "now": NOW,
        "current_price": None,
    }
    base.update(fields)
    return Snapshot(**base)


def rules(*raw: dict[str, Any]) -> list[Any]:
    """Validate rules exactly as the YAML loader does."""
    return RULES.validate_python(list(raw))


def two_places(value: Decimal) -> bool:
    """True if ``value`` is written with exactly two decimal places."""
    return value.as_tuple().exponent == -2


# --- strategies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cost", "margin", "fees", "expected"),
    [
        ("10", "12.5", None, "11.25"),
        ("10", "10", "1.5", "12.50"),
        ("0.1", "0", "0.2", "0.30"),  # exact decimal arithmetic, no 0.30000000000000004
        ("2.675", "0", None, "2.68"),  # half-up; float rounding would give 2.67
        ("1.005", "0", None, "1.01"),  # half-up; banker's rounding would give 1.00
        ("1.015", "0", None, "1.02"),
        ("33.33", "33.333", None, "44.44"),  # 44.4398889
        ("19.99", "0.05", None, "20.00"),  # 19.999995
        ("12.3449", "0", None, "12.34"),
    ],
)
def test_cost_plus_maths(cost: str, margin: str, fees: str | None, expected: str) -> None:
    """cost_plus is cost × (1 + margin/100) + fees, exact in Decimal, rounded half-up to cents."""
    decision = cost_plus(
        snap(cost=D(cost), fees=None if fees is None else D(fees)),
        CostPlusParams(margin_pct=D(margin)),
    )
    assert decision.target is not None
    assert str(decision.target) == expected
    assert two_places(decision.target)
    assert decision.reason == f"cost plus {D(margin)}%"


def test_cost_plus_can_ignore_fees() -> None:
    """With include_fees false the fees are left out of the price."""
    params = CostPlusParams(margin_pct=D("10"), include_fees=False)
    assert cost_plus(snap(cost=D("10"), fees=D("1.50")), params).target == D("11.00")


def test_cost_plus_without_cost_holds() -> None:
    """cost_plus holds a SKU that has no cost."""
    decision = cost_plus(snap(cost=None), CostPlusParams(margin_pct=D("10")))
    assert decision.target is None
    assert decision.reason == "cost_plus: no cost for this SKU"


@pytest.mark.parametrize("margin", ["-1", "1000.01", "NaN", "lots"])
def test_cost_plus_params_are_validated(margin: str) -> None:
    """margin_pct must be a finite number between 0 and 1000."""
    with pytest.raises(ValidationError):
        CostPlusParams(margin_pct=margin)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("price", "expected"), [("7", "7.00"), ("12.345", "12.35"), ("19.999", "20.00")]
)
def test_fixed_sets_the_configured_price(price: str, expected: str) -> None:
    """fixed proposes its price, rounded half-up to cents."""
    decision = fixed(snap(), FixedParams(price=D(price)))
    assert str(decision.target) == expected
    assert decision.reason == f"fixed price {expected}"


@pytest.mark.parametrize("price", ["0", "-1", "1.23456"])
def test_fixed_params_are_validated(price: str) -> None:
    """fixed needs a positive price with at most 4 decimal places."""
    with pytest.raises(ValidationError):
        FixedParams(price=D(price))


def test_hold_never_proposes_a_price() -> None:
    """hold always keeps the current price."""
    decision = hold(snap(current_price=D("9.99"), cost=D("1")), HoldParams())
    assert decision.target is None
    assert "hold" in decision.reason


def test_registry_names_the_strategies() -> None:
    """The STRATEGIES registry maps each YAML strategy name to its function."""
    assert {"hold": hold, "fixed": fixed, "cost_plus": cost_plus}.items() <= dict(
        STRATEGIES
    ).items()
    assert set(STRATEGIES) == {
        "hold",
        "fixed",
        "cost_plus",
        "buy_box",
        "lowest_price",
        "excess_inventory",
        "sales_velocity",
    }


# --- rule selection --------------------------------------------------------------------------

SELECTION = rules(
    {"name": "clearance", "match": {"sku": "CLEAR-*"}, "strategy": "hold"},
    {"name": "gifts", "match": {"tags": ["gift", "seasonal"]}, "strategy": "hold"},
    {"name": "own-store", "match": {"channel": "shop"}, "strategy": "hold"},
    {
        "name": "ab-amazon",
        "match": {"sku": ["A-*", "B-*"], "channel": "amazon"},
        "strategy": "hold",
    },
    {"strategy": "hold"},
)


@pytest.mark.parametrize(
    ("sku", "tags", "channel", "expected"),
    [
        ("CLEAR-1", (), "amazon", "clearance"),
        ("CLEAR-1", ("gift",), "shop", "clearance"),  # first match wins
        ("clear-1", (), "amazon", "rules[4]"),  # globs are case-sensitive
        ("CLEARANCE", (), "amazon", "rules[4]"),
        ("MUG", ("other", "seasonal"), "amazon", "gifts"),  # any one tag matches
        ("MUG", ("other",), "shop", "own-store"),
        ("A-9", (), "amazon", "ab-amazon"),
        ("B-1", (), "amazon", "ab-amazon"),
        ("A-9", (), "ebay", "rules[4]"),  # every criterion must match
        ("MUG", (), "ebay", "rules[4]"),  # the last rule is the default
    ],
)
def test_select_rule(sku: str, tags: tuple[str, ...], channel: str, expected: str) -> None:
    """Rules match on SKU glob, any-of tags and channel; the first match wins."""
    index, rule = select_rule(SELECTION, sku=sku, tags=tags, channel=channel)
    assert rule is SELECTION[index]
    assert rule_label(index, rule) == expected


def test_select_rule_without_default_raises() -> None:
    """With no matching rule and no default, selection fails loudly."""
    only = rules({"match": {"sku": "X-*"}, "strategy": "hold"})
    with pytest.raises(LookupError):
        select_rule(only, sku="MUG", tags=(), channel="shop")


def test_rule_match_accepts_one_or_many() -> None:
    """A single string in match is the same as a one-element list."""
    assert RuleMatch(sku="A-*") == RuleMatch(sku=["A-*"])  # type: ignore[arg-type]
    assert RuleMatch(channel="shop").channel == ("shop",)  # type: ignore[arg-type]


def test_rule_rejects_max_below_min() -> None:
    """A rule whose max_price is below its min_price does not validate."""
    with pytest.raises(ValidationError, match="below min_price"):
        rules({"strategy": "hold", "min_price": "20", "max_price": "10"})


# --- guards ----------------------------------------------------------------------------------


def guard(
    target: str | None, settings_: GuardSettings = GUARDS, **fields: Any
) -> tuple[Verdict, Decimal | None, str]:
    """Run the guards on a proposed target; return (verdict, price, reason)."""
    decision = Decision(None if target is None else D(target), "test")
    out = apply_guards(snap(**fields), decision, settings_)
    assert (out.price is not None) == (out.verdict is Verdict.SEND)
    return out.verdict, out.price, out.reason


def test_price_bounds() -> None:
    """floor = max(min_price, cost × (1 + min margin) + fees), ceiling = max_price, in cents."""
    guards = GuardSettings(min_margin_pct=D("5"))
    assert price_bounds(snap(cost=D("10"), fees=D("1"), max_price=D("30")), guards) == (
        D("11.50"),
        D("30.00"),
    )
    assert price_bounds(snap(cost=D("10"), fees=D("1"), min_price=D("12")), guards) == (
        D("12.00"),
        None,
    )
    assert price_bounds(snap(), guards) == (None, None)


def test_no_floor_is_blocked() -> None:
    """Without cost and min_price nothing is sent (the $0.01 incident)."""
    verdict, price, reason = guard("10", max_price=D("20"))
    assert (verdict, price) == (Verdict.BLOCKED, None)
    assert reason == "no floor: set min_price or cost for this SKU"


def test_zero_floor_is_blocked() -> None:
    """A floor of 0.00 (zero cost, no min_price) counts as no floor."""
    verdict, _, reason = guard("10", cost=D("0"), max_price=D("20"))
    assert verdict is Verdict.BLOCKED
    assert reason.startswith("no floor")


def test_no_ceiling_is_blocked() -> None:
    """Without max_price nothing is sent."""
    verdict, price, reason = guard("10", min_price=D("5"))
    assert (verdict, price) == (Verdict.BLOCKED, None)
    assert reason == "no ceiling: set max_price for this SKU"


def test_floor_above_ceiling_is_blocked() -> None:
    """Impossible bounds block the SKU and say why."""
    verdict, _, reason = guard("25", min_price=D("30"), max_price=D("20"))
    assert verdict is Verdict.BLOCKED
    assert reason == "floor 30.00 is above ceiling 20.00"


@pytest.mark.parametrize("target", ["NaN", "Infinity", "-Infinity", "0", "-1"])
def test_impossible_target_is_blocked(target: str) -> None:
    """A non-finite, zero or negative proposal is never clamped into a price, it is refused."""
    verdict, _, reason = guard(target, min_price=D("5"), max_price=D("20"))
    assert verdict is Verdict.BLOCKED
    assert reason.startswith("strategy proposed an impossible price")


def test_tiny_positive_target_is_clamped_to_floor() -> None:
    """A positive target that rounds to 0.00 is raised to the floor, never sent as 0.00."""
    assert guard("0.001", min_price=D("5"), max_price=D("20"))[:2] == (Verdict.SEND, D("5.00"))


def test_target_below_floor_is_clamped() -> None:
    """A target under the floor is raised to the floor."""
    assert guard("3", min_price=D("5"), max_price=D("20"))[:2] == (Verdict.SEND, D("5.00"))


def test_target_above_ceiling_is_clamped() -> None:
    """A target over the ceiling is lowered to the ceiling."""
    assert guard("30", min_price=D("5"), max_price=D("20"))[:2] == (Verdict.SEND, D("20.00"))


def test_cost_floor_clamps_with_min_margin() -> None:
    """The floor from cost, min margin and fees beats a lower min_price."""
    guards = GuardSettings(min_margin_pct=D("20"))
    out = guard("1", guards, cost=D("10"), fees=D("0.50"), min_price=D("5"), max_price=D("50"))
    assert out[:2] == (Verdict.SEND, D("12.50"))


@pytest.mark.parametrize(
    ("target", "expected"), [("15", "11.00"), ("5", "9.00"), ("10.7", "10.70")]
)
def test_max_step_limits_a_big_move(target: str, expected: str) -> None:
    """No single change moves the price more than max_step_pct of the current price."""
    out = guard(target, current_price=D("10.00"), min_price=D("1"), max_price=D("100"))
    assert out[:2] == (Verdict.SEND, D(expected))


def test_max_step_then_bounds() -> None:
    """If the current price is outside the bounds, the clamp wins over the step limit."""
    out = guard("30", current_price=D("50.00"), min_price=D("1"), max_price=D("20"))
    assert out[:2] == (Verdict.SEND, D("20.00"))


def test_unchanged_price_holds() -> None:
    """A guarded price equal to the current one is a HOLD, not a write."""
    verdict, price, reason = guard(
        "12.004", current_price=D("12.00"), min_price=D("1"), max_price=D("100")
    )
    assert (verdict, price) == (Verdict.HOLD, None)
    assert reason == "no change: test"


def test_strategy_hold_holds() -> None:
    """A strategy that proposes nothing is a HOLD with the strategy's reason."""
    verdict, price, reason = guard(None, min_price=D("1"), max_price=D("100"))
    assert (verdict, price, reason) == (Verdict.HOLD, None, "test")


def test_floor_never_below_cost_margin_floor() -> None:
    """The price sent is never below cost × (1 + min_margin) + fees, even by a fraction."""
    guards = GuardSettings(min_margin_pct=D("5"))
    _, price, _ = guard("5", guards, cost=D("10.01"), max_price=D("100"))
    assert price is not None
    assert price >= D("10.01") * D("1.05")


def test_price_never_above_max_price() -> None:
    """The price sent is never above the product's max_price, even by a fraction."""
    _, price, _ = guard("50", min_price=D("1"), max_price=D("10.005"))
    assert price is not None
    assert price <= D("10.005")


def test_max_step_is_never_exceeded_by_rounding() -> None:
    """A single change never moves more than max_step_pct of the current price."""
    _, price, _ = guard("20", current_price=D("10.05"), min_price=D("1"), max_price=D("100"))
    assert price is not None
    assert abs(price - D("10.05")) <= D("10.05") * D("10") / 100


# --- decide ----------------------------------------------------------------------------------


def test_decide_runs_the_selected_rule() -> None:
    """decide picks the first matching rule, runs its strategy and guards the result."""
    config = rules(
        {
            "name": "clearance",
            "match": {"sku": "CLEAR-*"},
            "strategy": "fixed",
            "params": {"price": 1},
        },
        {"name": "default", "strategy": "cost_plus", "params": {"margin_pct": 30}},
    )
    outcome = decide(
        snap(cost=D("10"), max_price=D("50"), current_price=D("12.50")), config, GUARDS
    )
    assert (outcome.rule, outcome.strategy) == ("default", "cost_plus")
    assert outcome.decision.target == D("13.00")
    assert (outcome.verdict, outcome.price) == (Verdict.SEND, D("13.00"))


def test_decide_without_floor_is_blocked() -> None:
    """decide blocks a SKU that has neither cost nor min_price, whatever the strategy says."""
    config = rules({"strategy": "fixed", "params": {"price": 9}})
    outcome = decide(snap(max_price=D("20")), config, GUARDS)
    assert outcome.verdict is Verdict.BLOCKED
    assert outcome.reason.startswith("no floor")


def test_strategy_that_raises_holds_the_sku(monkeypatch: pytest.MonkeyPatch) -> None:
    """A strategy exception becomes a HOLD of that SKU with the error in the reason."""

    def boom(snapshot: Snapshot, params: Any) -> Decision:
        raise ZeroDivisionError("division by zero in test strategy")

    monkeypatch.setitem(STRATEGIES, "cost_plus", boom)  # type: ignore[arg-type]
    config = rules({"strategy": "cost_plus", "params": {"margin_pct": 10}})
    outcome = decide(snap(cost=D("5"), max_price=D("20"), current_price=D("8")), config, GUARDS)
    assert outcome.verdict is Verdict.HOLD
    assert outcome.price is None
    assert outcome.reason == (
        "strategy cost_plus failed: ZeroDivisionError: division by zero in test strategy"
    )
    assert outcome.decision.trace[0].verdict == "error"


def test_params_that_break_the_maths_hold_the_sku() -> None:
    """Params that make the strategy's arithmetic raise hold the SKU instead of crashing."""
    broken = CostPlusRule.model_construct(
        name=None,
        match=None,
        min_price=None,
        max_price=None,
        strategy="cost_plus",
        params=CostPlusParams.model_construct(margin_pct="lots", include_fees=True),
    )
    outcome = decide(snap(cost=D("5"), max_price=D("20")), [broken], GUARDS)
    assert outcome.verdict is Verdict.HOLD
    assert outcome.reason.startswith("strategy cost_plus failed: TypeError")


def test_rule_bounds_tighten_product_bounds() -> None:
    """A rule's min/max narrow the product's bounds; looser rule bounds change nothing."""
    product = snap(min_price=D("5"), max_price=D("50"))
    tight = rules({"strategy": "hold", "min_price": "10", "max_price": "20"})[0]
    loose = rules({"strategy": "hold", "min_price": "1", "max_price": "100"})[0]
    assert (bounded(product, tight).min_price, bounded(product, tight).max_price) == (
        D("10"),
        D("20"),
    )
    assert bounded(product, loose) is product
    only_rule = bounded(snap(), tight)
    assert (only_rule.min_price, only_rule.max_price) == (D("10"), D("20"))

    high = rules({"strategy": "fixed", "params": {"price": 100}, "min_price": 10, "max_price": 20})
    low = rules({"strategy": "fixed", "params": {"price": 1}, "min_price": 10, "max_price": 20})
    assert decide(product, high, GUARDS).price == D("20.00")
    assert decide(product, low, GUARDS).price == D("10.00")
    # A rule's bounds alone are enough to let a SKU without product bounds be priced.
    assert decide(snap(), high, GUARDS).price == D("20.00")


# --- the R7/R8 property ----------------------------------------------------------------------

money = st.decimals(min_value=D("0.0001"), max_value=D("5000"), places=4)
shelf_price = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
percent = st.decimals(min_value=0, max_value=1000, places=2)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Snapshot, list[Any], GuardSettings]:
    """A random listing, one rule (cost_plus or fixed, maybe with its own bounds) and guards."""
    # Most values are drawn around one random scale so that bounds, cost and the current price
    # overlap often enough for every guard branch to be exercised; the rest are anywhere.
    scale = draw(st.integers(min_value=1, max_value=500_000)) / D(100)

    def near(places: str = "0.0001") -> Decimal:
        if draw(st.integers(0, 3)) == 0:
            return draw(money) if places == "0.0001" else draw(shelf_price)
        factor = draw(st.integers(min_value=20, max_value=300)) / D(100)
        return max((scale * factor).quantize(D(places)), D(places))

    def maybe(places: str = "0.0001") -> Decimal | None:
        return None if draw(st.integers(0, 7)) == 0 else near(places)

    snapshot = snap(
        cost=maybe(),
        fees=draw(st.none() | st.decimals(min_value=0, max_value=D("50"), places=4)),
        min_price=maybe(),
        max_price=None if (high := maybe()) is None else high + 2 * scale,
        current_price=maybe("0.01"),
    )
    rule_low, rule_high = sorted([near(), near()])
    rule: dict[str, Any]
    if draw(st.booleans()):
        rule = {"strategy": "cost_plus", "params": {"margin_pct": draw(percent)}}
    else:
        rule = {"strategy": "fixed", "params": {"price": near()}}
    if draw(st.booleans()):
        rule["min_price"] = rule_low
    if draw(st.booleans()):
        rule["max_price"] = rule_high
    guards = GuardSettings(
        min_margin_pct=draw(st.sampled_from([D(0), D(5), D(20)]) | percent),
        max_step_pct=draw(st.decimals(D("0.01"), 100, places=2)),
        max_daily_move_pct=draw(st.decimals(D("0.01"), 100, places=2)),
    )
    return snapshot, rules(rule), guards


@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenarios())
def test_sent_prices_are_always_safe(scenario: tuple[Snapshot, list[Any], GuardSettings]) -> None:
    """Whatever the inputs, a SEND price is finite, positive, in cents, inside the bounds and
    within one (rounded) step and the 24 h drift band of the current price (the drift anchor
    without history) unless a bound forced it further."""
    snapshot, config, guards = scenario
    outcome = decide(snapshot, config, guards)
    event(f"verdict: {outcome.verdict}")
    if outcome.verdict is not Verdict.SEND:
        assert outcome.price is None
        return
    price = outcome.price
    assert price is not None
    assert price.is_finite()
    assert price > 0
    assert two_places(price)

    # The bounds the guards used: the product's, tightened by the rule, rounded inward.
    effective = bounded(snapshot, config[0])
    candidates = [] if effective.min_price is None else [effective.min_price]
    if effective.cost is not None:
        fees = effective.fees or D("0")
        candidates.append(effective.cost * (1 + guards.min_margin_pct / 100) + fees)
    assert candidates, "no floor must never SEND"
    assert effective.max_price is not None, "no ceiling must never SEND"
    raw_floor, raw_ceiling = max(candidates), effective.max_price
    floor, ceiling = outcome.guards.floor, outcome.guards.ceiling
    assert floor == quantize(raw_floor, CENT, ROUND_CEILING)
    assert ceiling == quantize(raw_ceiling, CENT, ROUND_FLOOR)
    assert floor is not None
    assert ceiling is not None
    assert 0 < floor <= price <= ceiling
    # R7 exactly: never below cost × (1 + min margin) + fees, never above max_price.
    assert raw_floor <= price <= raw_ceiling

    current = snapshot.current_price
    if current is None:
        return
    assert price != current
    limit = current * guards.max_step_pct / 100
    # Without price history the 24 h drift anchor is the current price: both bands around it.
    daily = current * guards.max_daily_move_pct / 100
    low = quantize(current - min(limit, daily), CENT, ROUND_CEILING)
    high = quantize(current + min(limit, daily), CENT, ROUND_FLOOR)
    if low <= price <= high:
        # R8 exactly: the bands are rounded inward, so no move exceeds either limit.
        assert abs(price - current) <= limit
        assert abs(price - current) <= daily
        event("send: within the step band")
        return
    # Outside the step band only when the whole band lay beyond a bound and the clamp moved the
    # price to that bound, towards the current price's side.
    forced_up = price == floor and high < floor and current < floor
    forced_down = price == ceiling and low > ceiling and current > ceiling
    assert forced_up or forced_down
    event("send: forced to a bound")
