"""The 24 h drift, parity and reference-band guards, their order, and R7/R8 over random inputs."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from strategies.base import CENT, Decision, Snapshot, TraceStep
from strategies.guards import (
    GuardOutcome,
    GuardSettings,
    ParityRule,
    Verdict,
    apply_guards,
    drift_anchor,
    price_bounds,
    reference_price,
)

D = Decimal
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
# Loose limits, so that each test exercises only the guard it is about.
LOOSE: dict[str, Any] = {
    "max_step_pct": D("100"),
    "max_daily_move_pct": D("100"),
    "reference_band_pct": D("1000"),
}
TO_SHOP = ParityRule(channel="amazon", reference="shop", max_above_pct=D("5"))
TO_EBAY = ParityRule(channel="amazon", reference="ebay", max_above_pct=D("0"))


def guards(**fields: Any) -> GuardSettings:
    """Guard settings with loose limits, overridden by ``fields``."""
    return GuardSettings(**{**LOOSE, **fields})


def snap(**fields: Any) -> Snapshot:
    """A listing of SKU MUG-1 on amazon with bounds [1, 1000], overridden by ``fields``."""
    base: dict[str, Any] = {
        "channel": "amazon",
        "sku": "MUG-1",
        "currency": "USD",
        "now": NOW,
        "current_price": None,
        "min_price": D("1"),
        "max_price": D("1000"),
    }
    base.update(fields)
    return Snapshot(**base)


def history(*points: tuple[float, str]) -> tuple[tuple[datetime, Decimal], ...]:
    """Confirmed prices from (hours before NOW, price) pairs, oldest first as the daemon loads."""
    return tuple(
        sorted(((NOW - timedelta(hours=hours), D(price)) for hours, price in points), key=_at)
    )


def _at(point: tuple[datetime, Decimal]) -> datetime:
    return point[0]


def run(target: str, settings_: GuardSettings | None = None, **fields: Any) -> GuardOutcome:
    """Guard a proposed target on ``snap(**fields)``."""
    out = apply_guards(snap(**fields), Decision(D(target), "test"), settings_ or guards())
    assert (out.price is not None) == (out.verdict is Verdict.SEND)
    return out


def step(out: GuardOutcome, name: str) -> TraceStep:
    """The one trace step of guard ``name`` (``guard:`` prefix implied)."""
    found = [s for s in out.steps if s.step == f"guard:{name}"]
    assert len(found) == 1, out.steps
    return found[0]


# --- max drift per rolling 24 h --------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "current", "expected", "source"),
    [
        ([(30, "8"), (25, "9"), (10, "11")], "12", "9", "price 24 h ago"),  # last at/before -24 h
        ([(24, "9"), (10, "11")], "12", "9", "price 24 h ago"),  # exactly 24 h ago counts
        ([(700, "7")], "12", "7", "price 24 h ago"),  # a month ago is still in effect
        ([(23.99, "9"), (10, "11")], "12", "9", "oldest price in the last 24 h"),
        ([(10, "11"), (2, "11.5")], "12", "11", "oldest price in the last 24 h"),
        ([], "12", "12", "current price"),
        ([(-1, "30")], "12", "12", "current price"),  # a future entry is ignored
        ([(30, "0"), (25, "NaN")], "12", "12", "current price"),  # unusable entries are ignored
        ([(30, "0"), (10, "11")], "12", "11", "oldest price in the last 24 h"),
        ([], None, None, ""),
    ],
)
def test_drift_anchor_selection(
    points: list[tuple[float, str]], current: str | None, expected: str | None, source: str
) -> None:
    """The anchor is the price in effect 24 h ago, else the oldest of the day, else current."""
    anchor = drift_anchor(history(*points), NOW, None if current is None else D(current))
    assert anchor == (None if expected is None else D(expected), source)


@pytest.mark.parametrize(
    ("target", "anchor", "current", "step_pct", "expected", "verdict"),
    [
        ("15", "10.00", "10.00", "100", "12.50", "limited"),  # limited up
        ("5", "10.00", "10.00", "100", "7.50", "limited"),  # limited down
        ("12.50", "10.00", "10.00", "100", "12.50", "ok"),  # the band edge itself is allowed
        ("20", "10.01", "10.01", "100", "12.51", "limited"),  # rounded inward: 12.5125 → 12.51
        ("1", "10.01", "10.01", "100", "7.51", "limited"),  # 7.5075 → 7.51
        ("13.20", "10.00", "12.00", "10", "12.50", "limited"),  # earlier moves used up the band
        ("9", "10.00", "12.00", "10", "10.80", "ok"),  # down: the step binds before the drift
        ("20", "10.00", None, "10", "12.50", "limited"),  # no current price: history binds
    ],
)
def test_drift_limits_the_move_within_24_hours(
    target: str, anchor: str, current: str | None, step_pct: str, expected: str, verdict: str
) -> None:
    """The price stays within ±max_daily_move_pct of the anchor (band rounded inward)."""
    out = run(
        target,
        guards(max_step_pct=D(step_pct), max_daily_move_pct=D("25")),
        current_price=None if current is None else D(current),
        recent_prices=history((30, anchor)),
    )
    assert (out.verdict, out.price) == (Verdict.SEND, D(expected))
    assert step(out, "max_drift").verdict == verdict


def test_drift_without_history_is_measured_from_the_current_price() -> None:
    """Without history the anchor is the current price, so a narrower drift limit binds."""
    out = run(
        "20",
        guards(max_step_pct=D("50"), max_daily_move_pct=D("5")),
        current_price=D("10.00"),
    )
    assert out.price == D("10.50")
    assert step(out, "max_drift").verdict == "limited"


def test_drift_without_any_price_is_skipped() -> None:
    """A listing with no current price and no history has nothing to measure drift against."""
    out = run("20")
    assert out.price == D("20.00")
    assert step(out, "max_drift").verdict == "skipped"


@pytest.mark.parametrize("target", ["19", "21", "25", "10"])
def test_drift_band_out_of_reach_holds(target: str) -> None:
    """A current price more than a step outside the 24 h band is held, not moved either way."""
    out = run(
        target,
        guards(max_step_pct=D("10"), max_daily_move_pct=D("25")),
        current_price=D("20.00"),
        recent_prices=history((30, "10.00")),
    )
    assert out.verdict is Verdict.HOLD
    assert out.reason == (
        "no change: 24 h band [7.50, 12.50] (±25% of 10.00, the price 24 h ago) is more than one "
        "step from 20.00"
    )
    assert step(out, "max_drift").verdict == "limited"


@pytest.mark.parametrize(
    ("current", "bounds", "expected"),
    [
        ("20.00", {"max_price": D("15")}, "15.00"),  # far above the band and the ceiling
        ("5.00", {"min_price": D("6")}, "6.00"),  # far below the band and the floor
    ],
)
def test_bounds_win_over_an_unreachable_drift_band(
    current: str, bounds: dict[str, Decimal], expected: str
) -> None:
    """A current price outside [floor, ceiling] is corrected at once even when drift holds."""
    out = run(
        "19",
        guards(max_step_pct=D("10"), max_daily_move_pct=D("25")),
        current_price=D(current),
        recent_prices=history((30, "10.00")),
        **bounds,
    )
    assert (out.verdict, out.price) == (Verdict.SEND, D(expected))


def test_floor_wins_over_the_drift_band() -> None:
    """A floor above the whole drift band moves the price to the floor."""
    out = run(
        "12",
        guards(max_daily_move_pct=D("25")),
        min_price=D("14"),
        recent_prices=history((30, "10")),
    )
    assert out.price == D("14.00")
    assert step(out, "max_drift").verdict == "ok"
    assert step(out, "floor").verdict == "clamped"


def test_drift_pulls_an_out_of_band_price_back_within_a_step() -> None:
    """A current price just outside the band moves into it when the strategy asks for a change."""
    out = run(
        "10.60",
        guards(max_step_pct=D("10"), max_daily_move_pct=D("25")),
        current_price=D("12.60"),
        recent_prices=history((30, "10.00")),
    )
    assert out.price == D("11.34")  # the step limit, 12.60 − 1.26, inside [7.50, 12.50]
    out = run(
        "13",
        guards(max_step_pct=D("10"), max_daily_move_pct=D("25")),
        current_price=D("12.60"),
        recent_prices=history((30, "10.00")),
    )
    assert out.price == D("12.50")


# --- parity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "peers", "expected", "verdict"),
    [
        ("22", (("shop", "20.00"),), "21.00", "clamped"),  # 20.00 × 1.05
        ("22", (("shop", "19.99"),), "20.98", "clamped"),  # 20.9895 rounded down
        ("21", (("shop", "20.00"),), "21.00", "ok"),  # exactly at the cap
        ("20", (("ebay", "30"), ("shop", "20.00")), "20.00", "ok"),
        ("22", (), "22.00", "skipped"),  # no price on the reference channel
        ("22", (("ebay", "1"),), "22.00", "skipped"),  # another channel's price is not it
        ("22", (("shop", "0"),), "22.00", "skipped"),  # an unusable peer price
    ],
)
def test_parity_caps_the_price(
    target: str, peers: tuple[tuple[str, str], ...], expected: str, verdict: str
) -> None:
    """amazon is at most 5 % above our shop price: clamped down, skipped without a peer."""
    out = run(
        target,
        guards(parity=(TO_SHOP,)),
        peer_prices=tuple((name, D(price)) for name, price in peers),
    )
    assert (out.verdict, out.price) == (Verdict.SEND, D(expected))
    assert step(out, "parity").verdict == verdict


def test_parity_applies_only_to_its_channel() -> None:
    """A rule for amazon does not constrain the shop listing."""
    out = run("40", guards(parity=(TO_SHOP,)), channel="shop", peer_prices=(("shop", D("20")),))
    assert out.price == D("40.00")
    assert step(out, "parity") == TraceStep(
        "guard:parity", "skipped", "no parity rule for this channel"
    )


def test_parity_every_rule_applies() -> None:
    """With two rules for the channel the lower cap wins, and each leaves a trace step."""
    out = run(
        "30",
        guards(parity=(TO_SHOP, TO_EBAY)),
        peer_prices=(("shop", D("20.00")), ("ebay", D("19.50"))),
    )
    assert out.price == D("19.50")
    assert [s.verdict for s in out.steps if s.step == "guard:parity"] == ["clamped", "clamped"]


def test_parity_below_the_floor_is_blocked() -> None:
    """A parity cap below the floor cannot be met: the change is refused, never sent."""
    out = run(
        "30", guards(parity=(TO_SHOP,)), min_price=D("25"), peer_prices=(("shop", D("20.00")),)
    )
    assert (out.verdict, out.price) == (Verdict.BLOCKED, None)
    assert out.reason == (
        "parity cannot be met without selling below the floor: "
        "cap shop 20.00 + 5% = 21.00 is below the floor 25.00"
    )
    assert step(out, "parity").verdict == "blocked"


def test_parity_out_of_step_reach_is_blocked() -> None:
    """A cap further below than one step is refused rather than jumped to or walked above."""
    out = run(
        "30",
        guards(max_step_pct=D("10"), parity=(TO_SHOP,)),
        current_price=D("30.00"),
        peer_prices=(("shop", D("20.00")),),
    )
    assert out.verdict is Verdict.BLOCKED
    assert out.reason == (
        "parity cannot be met within the step and 24 h limits: cap shop 20.00 + 5% = 21.00 is "
        "below 27.00, the lowest price allowed now"
    )


def test_parity_within_step_reach_is_clamped() -> None:
    """A cap within one step of the current price is met in one change."""
    out = run(
        "30",
        guards(max_step_pct=D("10"), parity=(TO_SHOP,)),
        current_price=D("23.00"),
        peer_prices=(("shop", D("20.00")),),
    )
    assert out.price == D("21.00")


def test_parity_after_a_forced_ceiling() -> None:
    """When the ceiling already forces a big move, the price goes on down to the parity cap."""
    out = run(
        "50",
        guards(max_step_pct=D("10"), parity=(TO_SHOP,)),
        current_price=D("50.00"),
        max_price=D("30"),
        peer_prices=(("shop", D("20.00")),),
    )
    assert out.price == D("21.00")
    assert [s.step for s in out.steps][-3:] == [
        "guard:ceiling",
        "guard:parity",
        "guard:reference_band",
    ]


def test_parity_rule_needs_two_channels() -> None:
    """A parity rule against its own channel does not validate."""
    with pytest.raises(ValidationError, match="two different channels"):
        ParityRule(channel="amazon", reference="amazon")


# --- reference band --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "fields", "reason"),
    [
        (
            "10.50",
            {"reference_price": D("25.00")},
            "refused: 58 % below the reference price 25.00 (marketplace); limit ±35 %",
        ),
        (
            "30",
            {"reference_price": D("20.00")},
            "refused: 50 % above the reference price 20.00 (marketplace); limit ±35 %",
        ),
        (
            "10.49",
            {"reference_price": D("24.99")},
            "refused: 58.1 % below the reference price 24.99 (marketplace); limit ±35 %",
        ),
        (
            "28",
            {"recent_prices": history((200, "10"), (100, "30"), (50, "20"))},
            "refused: 40 % above the reference price 20 (own median); limit ±35 %",
        ),
        (
            "15",
            {"recent_prices": history((200, "10"), (100, "40"), (50, "30"), (40, "20"))},
            "refused: 40 % below the reference price 25 (own median); limit ±35 %",
        ),
        (
            "27.01",
            {"reference_price": D("20.00")},
            "refused: 35.1 % above the reference price 20.00 (marketplace); limit ±35 %",
        ),
        (
            "12.99",
            {"reference_price": D("20.00")},
            "refused: 35.1 % below the reference price 20.00 (marketplace); limit ±35 %",
        ),
    ],
)
def test_reference_band_refuses(target: str, fields: dict[str, Any], reason: str) -> None:
    """A price too far from the reference, on either side, is refused and never clamped."""
    out = run(target, guards(reference_band_pct=D("35")), **fields)
    assert (out.verdict, out.price, out.reason) == (Verdict.BLOCKED, None, reason)
    assert step(out, "reference_band").verdict == "blocked"


@pytest.mark.parametrize(
    ("target", "fields", "verdict", "detail"),
    [
        ("27.00", {"reference_price": D("20.00")}, "ok", "marketplace"),  # the edge is allowed
        ("13.00", {"reference_price": D("20.00")}, "ok", "marketplace"),
        (
            "28",
            {"reference_price": D("24"), "recent_prices": history((3, "20"), (2, "20"), (1, "20"))},
            "ok",
            "marketplace",  # the marketplace's reference wins over our own median
        ),
        (
            "12",
            {"reference_price": D("0"), "recent_prices": history((3, "10"), (2, "10"), (1, "10"))},
            "ok",
            "own median",  # an unusable marketplace reference falls back to our median
        ),
        ("19", {"recent_prices": history((2, "10"), (1, "10"))}, "skipped", "2 own prices"),
        (
            "19",
            {"recent_prices": history((800, "10"), (2, "10"), (1, "10"))},
            "skipped",
            "2 own prices",  # older than 30 days does not count
        ),
        ("100", {}, "skipped", "0 own prices in 30 days (need 3)"),
    ],
)
def test_reference_band_allows(
    target: str, fields: dict[str, Any], verdict: str, detail: str
) -> None:
    """Prices within the band (edge included) pass; without a reference the guard is skipped."""
    out = run(target, guards(reference_band_pct=D("35")), **fields)
    assert (out.verdict, out.price) == (Verdict.SEND, D(target))
    found = step(out, "reference_band")
    assert found.verdict == verdict
    assert detail in found.detail


@pytest.mark.parametrize(
    ("prices", "need", "expected"),
    [
        (["10", "30", "20"], 3, (D("20"), "own median", 3)),
        (["10", "40", "30", "20"], 3, (D("25"), "own median", 4)),
        (["10.01", "10.02"], 2, (D("10.015"), "own median", 2)),
        (["10", "NaN", "20", "0", "30"], 3, (D("20"), "own median", 3)),
        (["10", "20"], 3, (None, "", 2)),
    ],
)
def test_reference_own_median(prices: list[str], need: int, expected: tuple[Any, ...]) -> None:
    """The own reference is the median of usable 30-day prices, if there are enough of them."""
    points = history(*[(len(prices) - i, price) for i, price in enumerate(prices)])
    found = reference_price(snap(recent_prices=points), guards(reference_min_history=need))
    assert found == expected


UNPUBLISHED = {
    "current_price": D("18.99"),
    "reference_price": D("30.00"),
    "reference_source": "OFFER_UNPUBLISHED",
    "reference_at": NOW - timedelta(minutes=3),
}


def test_a_suppressed_price_moves_into_the_marketplace_band() -> None:
    """Our live price 18.99 is outside ±35 % of Walmart's reference 30.00 (the offer was
    unpublished): a target still below the band is moved to its bottom, 19.50, even past the
    step limit, instead of being refused, so the offer can be republished."""
    out = run("19.00", guards(reference_band_pct=D("35"), max_step_pct=D("1")), **UNPUBLISHED)
    assert (out.verdict, out.price) == (Verdict.SEND, D("19.50"))
    found = step(out, "reference_band")
    assert found.verdict == "clamped"
    assert found.detail == (
        "19.00 → 19.50: our price 18.99 is outside ±35% of the marketplace reference price "
        "30.00 (marketplace: OFFER_UNPUBLISHED, reported 2026-03-02 11:57:00Z, 3m old) "
        "[19.50, 40.50]; moved into it so the marketplace can republish"
    )
    assert out.reason.startswith("moved into the marketplace's reference band: ")


def test_a_holding_strategy_does_not_keep_a_suppressed_price() -> None:
    """A strategy that holds would leave the offer unpublished: the live price is judged and
    moved into the band."""
    band = guards(reference_band_pct=D("35"))
    out = apply_guards(snap(**UNPUBLISHED), Decision.hold("no competition"), band)
    assert (out.verdict, out.price) == (Verdict.SEND, D("19.50"))
    inside = {**UNPUBLISHED, "current_price": D("25.00")}
    out = apply_guards(snap(**inside), Decision.hold("no competition"), band)
    assert (out.verdict, out.reason) == (Verdict.HOLD, "no competition")


@pytest.mark.parametrize(
    ("bounds", "advice"),
    [
        (
            {"max_price": D("19.00")},
            "its bottom 19.50 is above the ceiling (max_price) 19.00: raise max_price to at "
            "least 19.50 if the marketplace is right, or ask it to correct the reference",
        ),
        (
            {"current_price": D("50.00"), "min_price": D("45.00")},
            "its top 40.50 is below the floor 45.00: lower min_price (or the cost margin) if the "
            "marketplace is right, or ask it to correct the reference",
        ),
    ],
)
def test_a_band_the_bounds_exclude_is_blocked_with_what_to_change(
    bounds: dict[str, Any], advice: str
) -> None:
    """No price inside both the band and [floor, ceiling]: blocked, saying which bound to move."""
    out = run("19.00", guards(reference_band_pct=D("35")), **{**UNPUBLISHED, **bounds})
    assert out.verdict is Verdict.BLOCKED
    assert step(out, "reference_band").verdict == "blocked"
    assert out.reason.endswith(advice)
    assert "30.00 (marketplace: OFFER_UNPUBLISHED" in out.reason


def test_only_a_marketplace_band_moves_a_price_an_own_median_refuses() -> None:
    """Our own median is no marketplace verdict: a price outside it is still refused."""
    out = run(
        "19.00",
        guards(reference_band_pct=D("35")),
        current_price=D("18.99"),
        recent_prices=history((3, "30"), (2, "30"), (1, "30")),
    )
    assert out.verdict is Verdict.BLOCKED
    assert out.reason == "refused: 36.7 % below the reference price 30 (own median); limit ±35 %"


def test_the_reference_value_source_and_age_are_in_the_trace() -> None:
    """`explain` shows the reference's value, source and age, in band or refused."""
    unpriced = {**UNPUBLISHED, "current_price": None}
    ok = run("25.00", guards(reference_band_pct=D("35")), **unpriced)
    assert step(ok, "reference_band").detail == (
        "within ±35% of the marketplace reference price 30.00 (marketplace: OFFER_UNPUBLISHED, "
        "reported 2026-03-02 11:57:00Z, 3m old)"
    )
    refused = run("10", guards(reference_band_pct=D("35")), **unpriced)
    assert refused.reason == (
        "refused: 66.7 % below the reference price 30.00 (marketplace: OFFER_UNPUBLISHED, "
        "reported 2026-03-02 11:57:00Z, 3m old); limit ±35 %"
    )
    median = run(
        "20",
        guards(reference_band_pct=D("35")),
        recent_prices=history((3, "20"), (2, "21"), (1, "22")),
    )
    assert step(median, "reference_band").detail == (
        "within ±35% of the own median reference price 21 (median of 3 own prices in 30 days)"
    )


# --- order and interactions ------------------------------------------------------------------


def test_trace_lists_every_guard_in_order() -> None:
    """Each guard leaves one verdict in the trace, in the documented order."""
    out = run(
        "30",
        guards(max_step_pct=D("10"), max_daily_move_pct=D("25"), parity=(TO_SHOP,)),
        current_price=D("20.00"),
        max_price=D("21.50"),
        recent_prices=history((30, "20.00")),
        peer_prices=(("shop", D("20.00")),),
        reference_price=D("20.00"),
    )
    assert out.price == D("21.00")
    assert [(s.step, s.verdict) for s in out.steps] == [
        ("guard:bounds", "ok"),
        ("guard:max_step", "limited"),
        ("guard:max_drift", "ok"),
        ("guard:ceiling", "clamped"),
        ("guard:parity", "clamped"),
        ("guard:reference_band", "ok"),
    ]


def test_reference_band_checks_the_final_price() -> None:
    """A wild target that the step limit brings back inside the band is sent, not refused."""
    out = run(
        "1",
        guards(max_step_pct=D("10"), reference_band_pct=D("35")),
        current_price=D("20.00"),
        reference_price=D("20.00"),
    )
    assert out.price == D("18.00")


def test_reference_band_refuses_a_forced_floor() -> None:
    """A floor far above the reference is refused: the bounds themselves look like an error."""
    out = run("20", guards(reference_band_pct=D("35")), min_price=D("30"), reference_price=D("20"))
    assert out.verdict is Verdict.BLOCKED
    assert out.reason.startswith("refused: 50 % above the reference price 20")


def test_reference_band_refuses_a_parity_clamp() -> None:
    """A parity cap far below the reference is refused by the band, not sent."""
    out = run(
        "20",
        guards(reference_band_pct=D("35"), parity=(TO_SHOP,)),
        reference_price=D("20"),
        peer_prices=(("shop", D("10.00")),),
    )
    assert out.verdict is Verdict.BLOCKED
    assert out.reason.startswith("refused: 47.5 % below")


def test_guards_that_land_on_the_current_price_hold() -> None:
    """When the guards bring the target back to the current price, nothing is sent."""
    out = run(
        "30",
        guards(parity=(TO_SHOP,)),
        current_price=D("21.00"),
        peer_prices=(("shop", D("20.00")),),
    )
    assert (out.verdict, out.reason) == (Verdict.HOLD, "no change: test")


def test_settings_precompute_constants() -> None:
    """Config-derived constants are computed once and shared by every call."""
    settings_ = guards(max_daily_move_pct=D("20"), parity=(TO_SHOP, TO_EBAY))
    assert settings_.daily_fraction == D("0.2")
    assert settings_.step_ok is settings_.step_ok
    assert [rule.factor for rule in settings_.parity_by_channel["amazon"]] == [D("1.05"), D("1")]
    assert "shop" not in settings_.parity_by_channel


# --- properties ------------------------------------------------------------------------------

CHANNELS = ("amazon", "shop", "ebay")
shelf = st.decimals(min_value=D("0.01"), max_value=D("5000"), places=2)
RULES = [
    ParityRule(channel=c, reference=r, max_above_pct=p)
    for c in ("amazon", "shop")
    for r in CHANNELS
    if r != c
    for p in (D("0"), D("5"), D("12.5"))
]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Snapshot, Decimal, GuardSettings]:
    """A random listing with history, reference and peer prices, a target, and guard settings."""
    # Values cluster around one scale so that the bands overlap often enough to SEND.
    scale = draw(st.integers(min_value=100, max_value=100_000)) / D(100)

    def near(places: str = "0.01") -> Decimal:
        if draw(st.integers(0, 9)) == 7:
            return draw(shelf)
        factor = draw(st.integers(min_value=70, max_value=150)) / D(100)
        return max((scale * factor).quantize(D(places)), D(places))

    def maybe(places: str = "0.01") -> Decimal | None:
        return None if draw(st.integers(0, 9)) == 7 else near(places)

    minutes = st.sampled_from([24 * 60, 24 * 60 + 1, 24 * 60 - 1]) | st.integers(0, 33 * 24 * 60)
    widen = st.sampled_from([D(1), D(0)])
    lower = st.sampled_from([D(1), D("0.5")])
    ages = sorted(draw(st.just([]) | st.lists(minutes, max_size=8)), reverse=True)
    recent = tuple((NOW - timedelta(minutes=age), near()) for age in ages)
    peers = tuple((channel, near()) for channel in CHANNELS if draw(st.integers(0, 2)) > 0)
    snapshot = Snapshot(
        channel=draw(st.sampled_from(CHANNELS[:2])),
        sku="P-1",
        currency="USD",
        now=NOW,
        current_price=maybe(),
        # Floors often well below the scale, so that parity caps and step bands can bind.
        cost=None if (cost := maybe("0.0001")) is None else cost * draw(lower),
        fees=draw(st.none() | st.decimals(min_value=0, max_value=D("5"), places=2)),
        min_price=None if (low := maybe("0.0001")) is None else low * draw(lower),
        max_price=None if (high := maybe("0.0001")) is None else high + draw(widen) * scale,
        recent_prices=recent,
        reference_price=maybe(),
        peer_prices=peers,
    )
    percent = st.sampled_from([D(1), D(5), D(10), D(25), D(50), D(100)]) | st.decimals(
        min_value=D("0.5"), max_value=D("100"), places=1
    )
    settings_ = GuardSettings(
        min_margin_pct=draw(st.sampled_from([D(0), D(5), D(20)])),
        max_step_pct=draw(percent),
        max_daily_move_pct=draw(percent),
        reference_band_pct=draw(percent | st.decimals(D("100"), D("1000"), places=0)),
        reference_min_history=draw(st.integers(1, 5)),
        parity=tuple(draw(st.lists(st.sampled_from(RULES), max_size=3, unique=True))),
    )
    return snapshot, near("0.0001"), settings_


def band(center: Decimal, pct: Decimal) -> tuple[Decimal, Decimal]:
    """±pct % around ``center``, rounded inward to cents."""
    limit = center * pct / 100
    return (
        (center - limit).quantize(CENT, ROUND_CEILING),
        (center + limit).quantize(CENT, ROUND_FLOOR),
    )


def expected_anchor(snapshot: Snapshot) -> Decimal | None:
    """The price in effect 24 h ago, straight from the definition."""
    cutoff = snapshot.now - timedelta(hours=24)
    before = [p for at, p in snapshot.recent_prices if at <= cutoff]
    inside = [p for at, p in snapshot.recent_prices if cutoff < at <= snapshot.now]
    return before[-1] if before else inside[0] if inside else snapshot.current_price


def expected_reference(snapshot: Snapshot, settings_: GuardSettings) -> Decimal | None:
    """The marketplace reference, else the median of 30 days of own prices if enough."""
    if snapshot.reference_price is not None:
        return snapshot.reference_price
    start = snapshot.now - timedelta(days=30)
    values = [p for at, p in snapshot.recent_prices if at >= start]
    if len(values) < settings_.reference_min_history:
        return None
    return statistics.median(values)


def parity_caps(snapshot: Snapshot, settings_: GuardSettings) -> list[Decimal]:
    """Every parity cap that applies to the listing."""
    peers = dict(snapshot.peer_prices)
    return [
        (peers[rule.reference] * (1 + rule.max_above_pct / 100)).quantize(CENT, ROUND_FLOOR)
        for rule in settings_.parity
        if rule.channel == snapshot.channel and rule.reference in peers
    ]


def rate_band(snapshot: Snapshot, settings_: GuardSettings) -> tuple[Decimal, Decimal] | None:
    """E: step band ∩ drift band; the current price alone when they do not overlap."""
    current, anchor = snapshot.current_price, expected_anchor(snapshot)
    bands = []
    if current is not None:
        bands.append(band(current, settings_.max_step_pct))
    if anchor is not None:
        bands.append(band(anchor, settings_.max_daily_move_pct))
    if not bands:
        return None
    low, high = max(b[0] for b in bands), min(b[1] for b in bands)
    if low > high:
        assert current is not None
        return current, current
    return low, high


PROPERTY = settings(
    max_examples=600,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(scenarios())
def test_sent_price_satisfies_every_guard(
    scenario: tuple[Snapshot, Decimal, GuardSettings],
) -> None:
    """A SEND price is in cents, inside the bounds, the parity caps and the reference band, and
    inside the step and drift bands unless a bound forced it out of both."""
    snapshot, target, settings_ = scenario
    out = apply_guards(snapshot, Decision(target, "prop"), settings_)
    event(f"verdict: {out.verdict}")
    assert (out.price is not None) == (out.verdict is Verdict.SEND)
    if out.verdict is not Verdict.SEND:
        event(f"not sent: {out.reason.split(':')[0][:30]}")
        return
    price = out.price
    assert price is not None
    assert price.is_finite()
    assert price > 0
    assert price.as_tuple().exponent == -2
    assert price != snapshot.current_price

    floor, ceiling = price_bounds(snapshot, settings_)
    assert floor is not None
    assert ceiling is not None
    assert 0 < floor <= price <= ceiling
    assert snapshot.max_price is not None
    assert price <= snapshot.max_price
    if snapshot.cost is not None:
        assert price >= snapshot.cost * (1 + settings_.min_margin_pct / 100) + (snapshot.fees or 0)

    caps = parity_caps(snapshot, settings_)
    assert all(price <= cap for cap in caps)

    reference = expected_reference(snapshot, settings_)
    if reference is not None:
        assert abs(price - reference) <= reference * settings_.reference_band_pct / 100

    rates = rate_band(snapshot, settings_)
    if rates is None:
        event("send: no rate limit")
        return
    low, high = rates
    if low <= price <= high:
        current, anchor = snapshot.current_price, expected_anchor(snapshot)
        if current is not None:
            assert abs(price - current) <= current * settings_.max_step_pct / 100
        assert anchor is not None
        assert abs(price - anchor) <= anchor * settings_.max_daily_move_pct / 100
        event("send: within the step and drift bands")
        return
    # Outside E only when all of E lies beyond a bound: at the floor, or at the ceiling (or a
    # parity cap below it); or when our live price is outside the marketplace's reference band
    # (the listing is suppressed) and the price moved into it (asserted above).
    forced_up = price == floor and high < floor
    forced_down = low > ceiling and price == min([ceiling, *caps])
    market, current = snapshot.reference_price, snapshot.current_price
    moved_in = (
        snapshot.reference_suppresses
        and market is not None
        and market > 0
        and current is not None
        and current > 0
        and abs(current - market) > market * settings_.reference_band_pct / 100
    )
    assert forced_up or forced_down or moved_in
    if moved_in and not (forced_up or forced_down):
        event("send: moved into the marketplace band")
        return
    event("send: forced up" if forced_up else f"send: forced down{' (cap)' * (price < ceiling)}")


@PROPERTY
@given(scenarios())
def test_a_safe_target_is_sent_unchanged(scenario: tuple[Snapshot, Decimal, GuardSettings]) -> None:
    """A target that already satisfies every guard is sent as it is (or held if unchanged)."""
    snapshot, target, settings_ = scenario
    target = target.quantize(CENT)
    floor, ceiling = price_bounds(snapshot, settings_)
    rates = rate_band(snapshot, settings_)
    reference = expected_reference(snapshot, settings_)
    caps = parity_caps(snapshot, settings_)
    safe = (
        floor is not None
        and ceiling is not None
        and 0 < floor <= target <= ceiling
        and (rates is None or rates[0] <= target <= rates[1])
        and all(floor <= cap and target <= cap for cap in caps)
        and (
            reference is None
            or abs(target - reference) <= reference * settings_.reference_band_pct / 100
        )
    )
    out = apply_guards(snapshot, Decision(target, "prop"), settings_)
    event(f"safe: {safe}")
    if not safe:
        return
    if target == snapshot.current_price:
        assert out.verdict is Verdict.HOLD
    else:
        assert (out.verdict, out.price) == (Verdict.SEND, target)


def test_a_polled_reference_that_moved_never_jumps_a_live_price() -> None:
    """Only a reference that came with the marketplace unpublishing the offer moves a live
    price into the band; a polled threshold that dropped refuses the step instead."""
    polled = {**UNPUBLISHED, "reference_source": "poll"}
    out = run("19.00", guards(reference_band_pct=D("35"), max_step_pct=D("1")), **polled)
    assert out.verdict == Verdict.BLOCKED
    assert step(out, "reference_band").verdict == "blocked"
    held = apply_guards(snap(**polled), Decision.hold("no competition"), guards())
    assert held.verdict == Verdict.HOLD
