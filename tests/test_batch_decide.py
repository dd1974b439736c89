"""The batch path decides exactly as the scalar reference, for every listing it covers."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.settings import PricingSettings
from strategies.base import Snapshot
from strategies.batch import decide_batch, units
from strategies.engine import Outcome, decide
from strategies.guards import Verdict
from tests.strategy_fixtures import NOW


def _key(outcome: Outcome) -> tuple[Any, ...]:
    """Everything of a decision but its trace and guard steps (exact Decimal text included)."""
    decision, guarded = outcome.decision, outcome.guards
    return (
        outcome.rule,
        outcome.strategy,
        None if decision.target is None else str(decision.target),
        decision.reason,
        guarded.verdict,
        None if guarded.price is None else str(guarded.price),
        guarded.reason,
        None if guarded.floor is None else str(guarded.floor),
        None if guarded.ceiling is None else str(guarded.ceiling),
        # A lean send has no guard steps (explained on demand); a hold has the reference's.
        guarded.steps if guarded.verdict is Verdict.HOLD else None,
    )


def _decimal(digits: int, places: int) -> Decimal:
    return Decimal(digits).scaleb(-places)


NICE_MONEY = st.builds(_decimal, st.integers(1, 20_000), st.sampled_from([0, 2, 2, 2, 4]))
MONEY = st.one_of(
    *[NICE_MONEY] * 12,
    st.builds(_decimal, st.integers(-300, 300_000), st.integers(0, 5)),
    st.none(),
    st.sampled_from([Decimal("0"), Decimal("NaN"), Decimal("Infinity"), Decimal("1E+2")]),
)
# 0 to 999.99 %, mostly with at most four decimals (the batch path's domain).
PCT = st.builds(_decimal, st.integers(0, 99_999), st.sampled_from([2, 2, 3, 4, 4, 5]))


@st.composite
def pricing(draw: st.DrawFn) -> PricingSettings:
    """Guards and rules: cost_plus variants (covered or not) before a buy_box default."""
    step = draw(st.sampled_from(["10", "2.5", "33.33", "10", "0.00001", "10"]))
    daily = draw(st.sampled_from(["25", "100", "50", "5"]))
    guards: dict[str, Any] = {
        "min_margin_pct": str(draw(PCT)),
        "max_step_pct": step,
        "max_daily_move_pct": daily,
    }
    if draw(st.integers(0, 3)) == 0:
        guards["parity"] = [{"channel": "amazon", "reference": "ebay", "max_above_pct": 5}]
    rules: list[dict[str, Any]] = []
    for glob in ("A*", "B*", "C*"):
        rule: dict[str, Any] = {
            "match": {"sku": glob},
            "strategy": "cost_plus",
            "params": {"margin_pct": str(draw(PCT)), "include_fees": draw(st.booleans())},
        }
        if draw(st.integers(0, 7)) == 0:
            rule["rounding"] = {"mode": "charm"}
        if draw(st.integers(0, 7)) == 0:
            rule["min_price"] = "7"
        rules.append(rule)
    rules.append({"strategy": "buy_box"})
    return PricingSettings.model_validate({"guards": guards, "rules": rules})


@st.composite
def snapshot(draw: st.DrawFn) -> Snapshot:
    """A listing with arbitrary money, sometimes a history, a reference or a peer price."""
    history: tuple[tuple[Any, Decimal], ...] = ()
    if draw(st.integers(0, 9)) == 0:
        history = ((NOW - timedelta(hours=30), Decimal("10.00")),)
    return Snapshot(
        channel=draw(st.sampled_from(["amazon", "ebay"])),
        sku=draw(st.sampled_from(["A-1", "B-2", "C-3", "D-4"])),
        currency="USD",
        now=NOW,
        current_price=draw(MONEY),
        cost=draw(MONEY),
        fees=draw(MONEY),
        min_price=draw(MONEY),
        max_price=draw(MONEY),
        recent_prices=history,
        last_change_at=history[-1][0] if history else None,
        reference_price=Decimal("12") if draw(st.integers(0, 9)) == 0 else None,
        peer_prices=(("ebay", Decimal("11.11")),),
    )


@settings(max_examples=300, deadline=None)
@given(pricing(), st.lists(snapshot(), min_size=1, max_size=12))
def test_the_batch_path_decides_as_the_scalar_path(
    config: PricingSettings, snapshots: list[Snapshot]
) -> None:
    """Same rule, target, verdict, price, reason, floor and ceiling, to the exact Decimal."""
    lean = decide_batch(snapshots, config.rules, config.guards)
    assert len(lean) == len(snapshots)
    for snap, outcome in zip(snapshots, lean, strict=True):
        if outcome is not None:
            reference = decide(snap, config.rules, config.guards)
            assert _key(outcome) == _key(reference), snap
            assert outcome.decision.trace == ()  # lean: explained on demand


def test_the_batch_path_covers_the_common_cost_plus_listing() -> None:
    """The reprice bench's listings are all decided in columns: sends, holds, clamps."""
    config = PricingSettings.model_validate(
        {
            "guards": {"min_margin_pct": 5, "max_step_pct": 10},
            "rules": [{"strategy": "cost_plus", "params": {"margin_pct": 30}}],
        }
    )
    rows = [
        ("20.00", "8.00", "1.25"),  # a 10 % step down
        ("11.65", "8.00", "1.25"),  # at target: hold
        ("12.00", "8.00", "1.25"),  # within the step
        ("9.0001", "8.00", "0"),  # four decimals, limited upward
    ]
    snapshots = [
        Snapshot(
            "amazon",
            f"S{i}",
            "USD",
            NOW,
            Decimal(price),
            Decimal(cost),
            Decimal(fees),
            Decimal("5"),
            Decimal("40"),
        )
        for i, (price, cost, fees) in enumerate(rows)
    ]
    lean = decide_batch(snapshots, config.rules, config.guards)
    verdicts = []
    for snap, outcome in zip(snapshots, lean, strict=True):
        assert outcome is not None
        assert _key(outcome) == _key(decide(snap, config.rules, config.guards))
        verdicts.append((outcome.verdict.value, str(outcome.price)))
    assert verdicts == [
        ("send", "18.00"),
        ("hold", "None"),
        ("send", "11.65"),
        ("send", "9.90"),
    ]


def test_units_are_exact_or_refused() -> None:
    """Money converts to 1/10,000 only when nothing is lost."""
    assert units(Decimal("19.99")) == 199_900
    assert units(Decimal("1E+2")) == 1_000_000
    assert units(Decimal("0.00001")) is None
    assert units(Decimal("NaN")) is None
    assert units(Decimal("1E+7")) is None
    assert units(None) is None


@st.composite
def covered_listing(draw: st.DrawFn) -> Snapshot:
    """A listing inside the batch path's domain: money of at most four decimals, no history."""
    return Snapshot(
        channel="amazon",
        sku=draw(st.sampled_from(["A-1", "B-2", "C-3"])),
        currency="USD",
        now=NOW,
        current_price=draw(NICE_MONEY),
        cost=draw(NICE_MONEY),
        fees=draw(st.one_of(st.none(), NICE_MONEY)),
        min_price=draw(st.one_of(st.none(), NICE_MONEY)),
        max_price=draw(NICE_MONEY),
    )


@settings(max_examples=300, deadline=None)
@given(
    st.builds(_decimal, st.integers(0, 99_999), st.sampled_from([2, 3, 4])),
    st.builds(_decimal, st.integers(0, 9_999), st.sampled_from([2, 3, 4])),
    st.booleans(),
    st.lists(covered_listing(), min_size=1, max_size=12),
)
def test_the_batch_path_covers_its_domain_exactly(
    margin: Decimal, min_margin: Decimal, include_fees: bool, snapshots: list[Snapshot]
) -> None:
    """Inside its domain the batch path decides every listing the guards do not block, and
    exactly as the scalar path (half-up targets, inward-rounded bands, clamps, holds)."""
    config = PricingSettings.model_validate(
        {
            "guards": {"min_margin_pct": str(min_margin), "max_step_pct": "7.5"},
            "rules": [
                {
                    "strategy": "cost_plus",
                    "params": {"margin_pct": str(margin), "include_fees": include_fees},
                }
            ],
        }
    )
    lean = decide_batch(snapshots, config.rules, config.guards)
    for snap, outcome in zip(snapshots, lean, strict=True):
        reference = decide(snap, config.rules, config.guards)
        if reference.verdict.value == "blocked":
            assert outcome is None  # blocked listings keep their stored guard steps
        else:
            assert outcome is not None, snap
            assert _key(outcome) == _key(reference), snap


def test_a_step_band_that_rounds_to_nothing_ends_at_its_low_side() -> None:
    """A sub-cent price whose ±step band holds no whole cent (found by the property above):
    the scalar guard clamps high, then low; the batch path does the same."""
    config = PricingSettings.model_validate(
        {
            "guards": {"min_margin_pct": "0.00", "max_step_pct": "7.5"},
            "rules": [{"strategy": "cost_plus", "params": {"margin_pct": "0.00"}}],
        }
    )
    snap = Snapshot(
        channel="amazon",
        sku="A-1",
        currency="USD",
        now=NOW,
        current_price=Decimal("0.0109"),
        cost=Decimal("0.0050"),
        max_price=Decimal("1"),
    )
    (outcome,) = decide_batch([snap], config.rules, config.guards)
    reference = decide(snap, config.rules, config.guards)
    assert outcome is not None
    assert _key(outcome) == _key(reference)
    assert outcome.price == Decimal("0.02")
