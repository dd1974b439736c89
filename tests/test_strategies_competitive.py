"""buy_box and lowest_price: every scenario, filter and own-offer rule, exact in Decimal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.offers import CompetitorOffer
from strategies import STRATEGIES
from strategies.base import Decision, Snapshot
from strategies.competitive import (
    BuyBoxParams,
    LowestPriceParams,
    buy_box,
    lowest_price,
    strategy_floor,
)
from strategies.offers import CompetitorFilters
from tests.strategy_fixtures import check, listing_snapshot

D = Decimal
OWN_IDS = frozenset({"ME", "ME-EU"})


def offer(
    seller: str,
    price: str,
    shipping: str = "0",
    kind: str = "fbm",
    rating: tuple[int | None, int | None] = (None, None),
    *,
    winner: bool = False,
    own: bool = False,
) -> CompetitorOffer:
    """A CompetitorOffer with Decimal money from strings."""
    return CompetitorOffer(
        seller_id=seller,
        price=D(price),
        shipping=D(shipping),
        fulfillment=kind,
        rating_pct=rating[0],
        rating_count=rating[1],
        is_buy_box_winner=winner,
        is_own=own,
    )


S1 = offer("S1", "9.50", "0.50", "fba", (98, 1000), winner=True)  # landed 10.00, Buy Box
S2 = offer("S2", "8.00", "1.00", "fbm", (85, 40))  # landed 9.00, the lowest
AMZ = offer("AMZ", "9.40", kind="retail")  # landed 9.40, the marketplace itself
MINE = offer("ME", "10.00", own=True)  # our offer on this listing
BASE = (S1, S2, AMZ, MINE)


def snap(**fields: Any) -> Snapshot:
    """Listing MUG-1 at 10.00 with bounds [5.00, 20.00] and the BASE offers, overridden."""
    return listing_snapshot(
        {
            "min_price": D("5.00"),
            "max_price": D("20.00"),
            "offers": BASE,
            "own_seller_ids": OWN_IDS,
        },
        **fields,
    )


# --- buy_box ----------------------------------------------------------------------------------

BEAT1 = {"position": "beat", "by_amount": "0.01"}
WIN_ME = {"buy_box_seller": "ME", "buy_box_price": D("10.00")}
S1_OFF = offer("S1", "9.50", "0.50", "fba", (98, 1000))  # S1 without the winner flag
OWN_WINS = offer("ME", "10.00", own=True, winner=True)


@pytest.mark.parametrize(
    ("fields", "params", "target", "reason"),
    [
        pytest.param(
            {}, BEAT1, "9.99", "beat by 0.01 Buy Box S1 (landed 10.00) → 9.99", id="beat-amount"
        ),
        pytest.param(
            {}, {"position": "beat", "by_pct": 2}, "9.80", "beat by 2% Buy Box S1", id="beat-pct"
        ),
        pytest.param({}, {}, "10.00", "match Buy Box S1 (landed 10.00)", id="match-default"),
        pytest.param(
            {},
            {"position": "above", "by_amount": "0.5"},
            "10.50",
            "stay 0.5 above",
            id="above-amount",
        ),
        pytest.param(
            {}, {"position": "above", "by_pct": "1.5"}, "10.15", "stay 1.5% above", id="above-pct"
        ),
        pytest.param(
            {"offers": (offer("S1", "9.99", winner=True), MINE)},
            {"position": "beat", "by_pct": 3},
            "9.69",  # 9.6903 rounded down: a beat never rounds up into a match
            "beat by 3%",
            id="beat-rounds-down",
        ),
        pytest.param(
            {"offers": (offer("S1", "9.99", winner=True), MINE)},
            {"position": "above", "by_pct": 3},
            "10.29",  # 10.2897 rounded up: "above" stays above
            "stay 3% above",
            id="above-rounds-up",
        ),
        pytest.param(
            {},
            {**BEAT1, "target": "lowest_offer"},
            "8.99",
            "lowest offer S2 (landed 9.00)",
            id="lowest-offer",
        ),
        pytest.param(
            {"offers": (S1, S2, AMZ, offer("ME", "9.00", "1.00", own=True))},
            BEAT1,
            "8.99",  # landed 9.99 minus our own shipping 1.00
            "Buy Box S1 (landed 10.00) → 8.99",
            id="own-shipping-subtracted",
        ),
        pytest.param(
            {
                "offers": (
                    S1,
                    offer("ME", "9", "1.50", own=True),
                    offer("ME", "9", "0.75", own=True),
                )
            },
            BEAT1,
            "9.24",  # several own offers: the lowest shipping, never undercut by more than asked
            "→ 9.24",
            id="own-shipping-lowest",
        ),
        pytest.param(
            {"offers": (S1_OFF, S2, MINE), "buy_box_seller": "S1"},
            BEAT1,
            "9.99",
            "Buy Box S1",
            id="holder-by-seller-id",
        ),
        pytest.param(
            {"offers": (S1_OFF, S2, MINE), "buy_box_seller": "S9", "buy_box_price": D("11.00")},
            BEAT1,
            "10.99",
            "Buy Box S9 (landed 11.00)",
            id="holder-not-listed-price-used",
        ),
        pytest.param(
            {"offers": (S1_OFF, S2, MINE), "buy_box_price": D("11.00")},
            BEAT1,
            "10.99",
            "Buy Box unknown seller (landed 11.00)",
            id="holder-unknown-seller",
        ),
        pytest.param(
            {"offers": (S1_OFF, S2, MINE), "buy_box_seller": "S9", "buy_box_price": D("11.00")},
            {**BEAT1, "filters": {"fulfillment": ["fba"]}},
            "9.99",  # cannot check S9 against the fba filter: lowest qualifying (S1) instead
            "lowest offer S1",
            id="holder-unverifiable-with-filters",
        ),
        pytest.param(
            {"offers": (S1_OFF, S2, MINE), "buy_box_seller": "S9", "buy_box_price": D("11.00")},
            {**BEAT1, "filters": {"exclude_sellers": "S9"}},
            "8.99",
            "lowest offer S2",
            id="holder-not-listed-excluded",
        ),
        pytest.param(
            {},
            {**BEAT1, "filters": {"exclude_sellers": ["S1"]}},
            "8.99",
            "lowest offer S2",
            id="holder-excluded",
        ),
        pytest.param(
            {"offers": (S1_OFF, S2, MINE)},
            BEAT1,
            "8.99",
            "lowest offer S2",
            id="no-buy-box-falls-back",
        ),
        pytest.param(
            {"offers": (S1_OFF, S2, MINE), "buy_box_price": D("0")},
            BEAT1,
            "8.99",
            "lowest offer S2",
            id="garbage-buy-box-price",
        ),
        pytest.param(
            {"offers": (MINE,)}, BEAT1, None, "no qualifying competition → hold", id="alone-hold"
        ),
        pytest.param(
            {"offers": (MINE,)},
            {**BEAT1, "when_no_competition": "max_price"},
            "20.00",
            "no qualifying competition → max_price 20.00",
            id="alone-max-price",
        ),
        pytest.param(
            {"offers": (MINE,), "max_price": None},
            {"when_no_competition": "max_price"},
            None,
            "no max_price known → hold",
            id="alone-max-price-unknown",
        ),
        pytest.param(
            {"offers": (offer("X", "1", kind="fba"), MINE)},
            {"filters": {"fulfillment": "fbm"}},
            None,
            "no qualifying competition",
            id="everyone-filtered-out",
        ),
        pytest.param(
            {"min_price": D("9.50")},
            {**BEAT1, "target": "lowest_offer"},
            "9.50",
            "competition below floor: beat by 0.01 lowest offer S2 (landed 9.00) gives 8.99"
            " < floor 9.50 → price at floor 9.50",
            id="below-floor-floor",
        ),
        pytest.param(
            {"min_price": D("9.50")},
            {**BEAT1, "target": "lowest_offer", "when_below_floor": "hold"},
            None,
            "< floor 9.50 → hold",
            id="below-floor-hold",
        ),
        pytest.param(
            {"min_price": D("9.50")},
            {**BEAT1, "target": "lowest_offer", "when_below_floor": "max_price"},
            "20.00",
            "→ max_price 20.00",
            id="below-floor-max-price",
        ),
        pytest.param(
            {"cost": D("9.00"), "fees": D("0.755")},
            BEAT1,
            "9.99",  # 9.99 is above the cost floor 9.76 (9.755 rounded up)
            "Buy Box S1",
            id="cost-floor-not-hit",
        ),
        pytest.param(
            {"cost": D("9.50"), "fees": D("0.755")},
            BEAT1,
            "10.26",
            "gives 9.99 < floor 10.26 → price at floor 10.26",
            id="cost-floor-hit",
        ),
        pytest.param(
            {
                "min_price": None,
                "offers": (offer("S1", "0.01", winner=True), offer("ME", "1", "5", own=True)),
            },
            BEAT1,
            None,
            "gives -5.00, not positive, and no floor is known → hold",
            id="non-positive-without-floor",
        ),
        pytest.param(
            WIN_ME,
            {**BEAT1, "when_winning": "hold"},
            None,
            "Buy Box is ours (Buy Box seller ME",
            id="ours-hold",
        ),
        pytest.param(
            {"offers": (S1_OFF, offer("S3", "12.00"), OWN_WINS)},
            {},
            "10.20",
            "Buy Box is ours: probe +2% toward S3 (fbm, landed 12.00) → 10.20",
            id="ours-flag-probe",
        ),
        pytest.param(
            {"offers": (offer("S3", "12.00"), offer("ME-EU", "9.00", winner=True))},
            {"probe_step_pct": 5},
            "10.50",
            "probe +5% toward S3",
            id="ours-other-account-probe",
        ),
        pytest.param(
            {**WIN_ME, "offers": (S2, offer("S3", "10.15"), MINE)},
            {},
            "10.14",  # never past the next offer above ours: 10.15 − gap 0.01
            "toward S3 (fbm, landed 10.15) → 10.14",
            id="ours-probe-capped-by-next",
        ),
        pytest.param(
            {**WIN_ME, "offers": (offer("S3", "12.00"), MINE), "max_price": D("10.10")},
            {},
            "10.10",
            "probe +2%",
            id="ours-probe-capped-by-max-price",
        ),
        pytest.param(
            {**WIN_ME, "offers": (offer("S3", "10.01"), MINE)},
            {},
            None,
            "next offer S3 (fbm, landed 10.01) leaves no room above 10.00 → hold",
            id="ours-probe-no-room",
        ),
        pytest.param(
            {**WIN_ME, "offers": (S2, AMZ, MINE)},
            {},
            None,
            "no qualifying offer above our landed 10.00 → hold",
            id="ours-probe-nothing-above",
        ),
        pytest.param(
            {
                **WIN_ME,
                "offers": (offer("S3", "12.00"), MINE),
                "current_price": D("0.20"),
                "min_price": D("0.10"),
            },
            {},
            "0.21",  # 2% of 0.20 is under a cent: a probe moves at least one cent
            "probe +2%",
            id="ours-probe-min-cent",
        ),
        pytest.param(
            {**WIN_ME, "offers": (offer("S3", "12.00"), MINE), "current_price": D("4.00")},
            {},
            "5.00",  # a price found under the floor is lifted to it, even while probing
            "probe +2% toward S3 (fbm, landed 12.00) → 5.00 (the floor)",
            id="ours-probe-raised-to-floor",
        ),
        pytest.param(
            {**WIN_ME, "offers": (offer("S3", "12.00"), MINE), "current_price": None},
            {},
            None,
            "current price is unknown → hold",
            id="ours-probe-no-current",
        ),
        pytest.param(
            {**WIN_ME, "offers": (MINE,)},
            {"when_no_competition": "max_price"},
            "20.00",
            "no qualifying competition → max_price",
            id="ours-alone-is-no-competition",
        ),
        pytest.param(
            {"offers": (S1_OFF, S2, MINE), "buy_box_price": D("10.00")},
            BEAT1,
            None,
            "Buy Box winner unknown and its price 10.00 equals our landed price:"
            " hold rather than undercut ourselves",
            id="unknown-winner-at-our-price",
        ),
    ],
)
def test_buy_box_scenarios(
    fields: dict[str, Any], params: dict[str, Any], target: str | None, reason: str
) -> None:
    """Each buy_box scenario gives its exact target (or hold) and says why."""
    check(buy_box(snap(**fields), BuyBoxParams.model_validate(params)), target, reason)


def test_buy_box_trace_names_the_competitor_used() -> None:
    """The trace names the own offers ignored, our shipping, the floor and the competitor used."""
    decision = buy_box(snap(), BuyBoxParams.model_validate(BEAT1))
    steps = {(s.step, s.verdict): s.detail for s in decision.trace}
    assert steps[("own_offers", "ignored")] == "ME"
    assert steps[("own_shipping", "0")] == "from our offer"
    assert steps[("floor", "5.00")]
    assert steps[("buy_box", "competitor")] == "S1 (fba, landed 10.00)"
    assert steps[("competitors", "qualifying")] == "3 of 3; lowest S2 (fbm, landed 9.00)"


# --- lowest_price and the competitor filters ---------------------------------------------------


@pytest.mark.parametrize(
    ("params", "target", "reason"),
    [
        pytest.param({}, "9.00", "match lowest offer S2 (landed 9.00) → 9.00", id="match"),
        pytest.param(BEAT1, "8.99", "beat by 0.01 lowest offer S2", id="beat-amount"),
        pytest.param({"position": "beat", "by_pct": 10}, "8.10", "beat by 10%", id="beat-pct"),
        pytest.param(
            {"position": "above", "by_amount": "0.25"}, "9.25", "stay 0.25 above", id="above-amount"
        ),
        pytest.param({"position": "above", "by_pct": 5}, "9.45", "stay 5% above", id="above-pct"),
        pytest.param(
            {"filters": {"fulfillment": "fba"}}, "10.00", "lowest offer S1", id="fba-only"
        ),
        pytest.param(
            {"filters": {"fulfillment": ["fba", "retail"]}}, "9.40", "AMZ", id="fba-and-retail"
        ),
        pytest.param({"filters": {"fulfillment": ["fbm"]}}, "9.00", "S2", id="fbm-only"),
        pytest.param(
            {"filters": {"min_rating_pct": 90}}, "9.40", "AMZ", id="rating-pct-retail-exempt"
        ),
        pytest.param({"filters": {"min_rating_pct": 85}}, "9.00", "S2", id="rating-pct-inclusive"),
        pytest.param({"filters": {"min_rating_count": 100}}, "9.40", "AMZ", id="rating-count"),
        pytest.param(
            {"filters": {"min_rating_count": 40}}, "9.00", "S2", id="rating-count-inclusive"
        ),
        pytest.param(
            {"filters": {"exclude_sellers": ["S2", "AMZ"]}}, "10.00", "S1", id="excluded-sellers"
        ),
        pytest.param(
            {"filters": {"fulfillment": "fba", "min_rating_pct": 99}},
            None,
            "no qualifying competition → hold",
            id="nothing-qualifies",
        ),
    ],
)
def test_lowest_price_positions_and_filters(
    params: dict[str, Any], target: str | None, reason: str
) -> None:
    """lowest_price positions against the lowest offer that passes the filters."""
    check(lowest_price(snap(), LowestPriceParams.model_validate(params)), target, reason)


@pytest.mark.parametrize(
    ("competitor", "verdict", "detail"),
    [
        pytest.param(
            offer("U", "1", rating=(None, 50)),
            "filtered",
            "rating < 90%: U (None%)",
            id="unknown-pct",
        ),
        pytest.param(
            offer("U", "1", rating=(95, None)),
            "filtered",
            "rating count < 10: U (None)",
            id="unknown-count",
        ),
        pytest.param(
            offer("U", "1", kind="sfp", rating=(99, 99)),
            "filtered",
            "fulfillment not in fba/fbm/retail: U (sfp)",
            id="unknown-kind",
        ),
        pytest.param(offer("U", "0"), "garbage", "ignored: U (price 0)", id="zero"),
        pytest.param(offer("U", "-1"), "garbage", "ignored: U (price -1)", id="negative"),
        pytest.param(offer("U", "NaN"), "garbage", "ignored: U (price NaN)", id="nan"),
        pytest.param(
            offer("U", "Infinity"), "garbage", "ignored: U (price Infinity)", id="infinite"
        ),
        pytest.param(
            offer("U", "5", "-1"), "garbage", "ignored: U (shipping -1)", id="negative-shipping"
        ),
        pytest.param(
            offer("U", "5", "sNaN"), "garbage", "ignored: U (shipping sNaN)", id="nan-shipping"
        ),
    ],
)
def test_bad_and_unrated_offers_are_left_out(
    competitor: CompetitorOffer, verdict: str, detail: str
) -> None:
    """Garbage prices and offers failing a rating or fulfillment filter never set the price."""
    params = LowestPriceParams(filters=CompetitorFilters(min_rating_pct=90, min_rating_count=10))
    decision = lowest_price(snap(offers=(S1, competitor, MINE)), params)
    assert decision.target == D("10.00")
    assert "S1" in decision.reason
    assert ("offers", verdict, detail) in decision.trace


def test_a_one_cent_competitor_is_a_real_offer() -> None:
    """A 0.01 competitor is valid competition (the floor scenario then applies)."""
    decision = lowest_price(snap(offers=(S1, offer("P", "0.01"), MINE)), LowestPriceParams())
    assert decision.target == D("5.00")
    assert "match lowest offer P (landed 0.01) gives 0.01 < floor 5.00" in decision.reason


@pytest.mark.parametrize(
    "cheap_own",
    [
        pytest.param(offer("ME", "1.00", own=True), id="is-own-flag"),
        pytest.param(offer("ME-EU", "1.00", "0", "fba", (100, 9999)), id="own-seller-id-only"),
        pytest.param(offer("ME-EU", "1.00", winner=False, own=True), id="both"),
    ],
)
@pytest.mark.parametrize("strategy", ["buy_box", "lowest_price"])
def test_own_offers_never_move_us(cheap_own: CompetitorOffer, strategy: str) -> None:
    """An own offer cheaper than everyone (by flag or by seller id) is never competed with."""
    params = (BuyBoxParams if strategy == "buy_box" else LowestPriceParams).model_validate(BEAT1)
    fn = STRATEGIES[strategy]
    with_own = fn(snap(offers=(*BASE, cheap_own)), params)
    expected = "9.99" if strategy == "buy_box" else "8.99"
    assert with_own.target == D(expected)
    assert "1.00" not in with_own.reason
    # Only our offers: nothing to compete with.
    alone = fn(snap(offers=(MINE, cheap_own)), params)
    assert alone.target is None
    assert "no qualifying competition" in alone.reason


def test_strategy_floor_uses_min_price_and_cost() -> None:
    """The strategy-side floor is max(min_price, cost + fees), rounded up, None when unknown."""
    assert strategy_floor(snap(min_price=None)) is None
    assert strategy_floor(snap(min_price=D("0"))) is None
    assert strategy_floor(snap(min_price=D("4"), cost=D("3.001"))) == D("4")
    assert strategy_floor(snap(min_price=D("4"), cost=D("3.001"), fees=D("1"))) == D("4.01")
    assert strategy_floor(snap(min_price=None, cost=D("2"))) == D("2.00")


# --- params validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "key", "message"),
    [
        ({"position": "beat"}, "by_pct", "position beat needs by_amount or by_pct"),
        ({"position": "above"}, "by_pct", "position above needs by_amount or by_pct"),
        (
            {"position": "beat", "by_amount": 1, "by_pct": 2},
            "by_pct",
            "by_amount and by_pct are exclusive",
        ),
        ({"by_amount": 1}, "by_amount", "position match takes no by_amount"),
        ({"by_pct": 1}, "by_pct", "position match takes no by_pct"),
        ({"position": "beat", "by_pct": 95}, "by_pct", "less than or equal to 90"),
        ({"position": "beat", "by_amount": 0}, "by_amount", "greater than 0"),
        ({"position": "beat", "by_amount": "0.00001"}, "by_amount", "4 decimal places"),
        ({"position": "undercut"}, "position", "'beat', 'match' or 'above'"),
        ({"when_below_floor": "ignore"}, "when_below_floor", "'hold', 'floor' or 'max_price'"),
        ({"when_no_competition": "ceiling"}, "when_no_competition", "'hold' or 'max_price'"),
        ({"when_winning": "jump"}, "when_winning", "'hold' or 'probe'"),
        ({"target": "featured"}, "target", "'buy_box' or 'lowest_offer'"),
        ({"probe_step_pct": 0}, "probe_step_pct", "greater than 0"),
        (
            {"filters": {"fulfillment": ["fba", "sfp"]}},
            "filters.fulfillment.1",
            "'fba', 'fbm' or 'retail'",
        ),
        ({"filters": {"fulfillment": []}}, "filters.fulfillment", "at least 1 item"),
        (
            {"filters": {"min_rating_pct": 101}},
            "filters.min_rating_pct",
            "less than or equal to 100",
        ),
        (
            {"filters": {"min_rating_count": -1}},
            "filters.min_rating_count",
            "greater than or equal to 0",
        ),
        ({"filters": {"sellers": []}}, "filters.sellers", "Extra inputs are not permitted"),
    ],
)
def test_buy_box_params_errors_name_their_key(
    params: dict[str, Any], key: str, message: str
) -> None:
    """Invalid buy_box params fail on the offending key with a clear message."""
    with pytest.raises(ValidationError) as info:
        BuyBoxParams.model_validate(params)
    errors = {".".join(map(str, e["loc"])): e["msg"] for e in info.value.errors()}
    assert key in errors, errors
    assert message in errors[key]


def test_lowest_price_has_no_buy_box_keys() -> None:
    """lowest_price rejects the Buy Box-only keys."""
    with pytest.raises(ValidationError, match="when_winning"):
        LowestPriceParams.model_validate({"when_winning": "hold"})


# --- properties --------------------------------------------------------------------------------

cents = st.decimals(min_value=D("0.01"), max_value=D("50"), places=2)
junk = st.sampled_from([D("0"), D("-1"), D("NaN"), D("Infinity")])
PARAMS = [
    BuyBoxParams.model_validate(p)
    for p in (
        {},
        BEAT1,
        {"position": "beat", "by_pct": 5, "when_below_floor": "hold"},
        {"position": "above", "by_amount": 1, "target": "lowest_offer"},
        {**BEAT1, "when_no_competition": "max_price", "when_below_floor": "max_price"},
        {**BEAT1, "when_winning": "hold", "filters": {"fulfillment": "fba"}},
        {**BEAT1, "filters": {"min_rating_pct": 90, "exclude_sellers": ["C1"]}},
    )
] + [LowestPriceParams.model_validate(p) for p in ({}, BEAT1, {"position": "beat", "by_pct": 50})]


@st.composite
def listings(draw: st.DrawFn) -> tuple[Snapshot, Any]:
    """A listing with random competitors (some garbage), own offers and Buy Box data."""
    competitors = draw(
        st.lists(
            st.builds(
                CompetitorOffer,
                seller_id=st.sampled_from(["C0", "C1", "C2", "C3"]),
                price=st.one_of(cents, cents, cents, junk),
                shipping=st.sampled_from([D("0"), D("0.99"), D("4.50"), D("-1")]),
                fulfillment=st.sampled_from(["fba", "fbm", "retail"]),
                rating_pct=st.none() | st.integers(0, 100),
                rating_count=st.none() | st.integers(0, 50),
                is_buy_box_winner=st.booleans(),
            ),
            min_size=1,
            max_size=5,
        )
    )
    own_ship = draw(st.sampled_from([D("0"), D("2.00")]))
    own = [
        offer("ME", "10.00", str(own_ship), own=True, winner=draw(st.booleans())),
        offer("ME-EU", "3.00", kind="fba"),
    ]
    low = draw(st.none() | cents)
    current = draw(st.none() | cents)
    if low is not None and current is not None and current < low:
        current = low
    snapshot = snap(
        offers=tuple(draw(st.permutations([*competitors, *own]))),
        min_price=low,
        max_price=draw(st.none() | cents.map(lambda c: c + 50)),
        cost=draw(st.none() | cents),
        current_price=current,
        buy_box_seller=draw(st.none() | st.sampled_from(["C0", "C9", "ME", "ME-EU"])),
        buy_box_price=draw(st.none() | cents | junk),
    )
    return snapshot, draw(st.sampled_from(PARAMS))


def run(snapshot: Snapshot, params: Any) -> Decision:
    """Run the strategy the params belong to."""
    if isinstance(params, BuyBoxParams):
        return buy_box(snapshot, params)
    return lowest_price(snapshot, params)


PROPERTY = settings(
    max_examples=500,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(listings())
def test_targets_are_finite_positive_and_above_floor(case: tuple[Snapshot, Any]) -> None:
    """A target is finite, positive, in cents and never under the strategy-side floor."""
    snapshot, params = case
    decision = run(snapshot, params)
    assert decision.reason
    assert decision.trace
    if decision.target is None:
        return
    assert decision.target.is_finite()
    assert decision.target > 0
    assert decision.target.as_tuple().exponent == -2
    floor = strategy_floor(snapshot)
    if floor is not None:
        assert decision.target >= floor


@PROPERTY
@given(listings(), st.lists(cents | junk, min_size=2, max_size=2))
def test_own_offer_prices_never_matter(case: tuple[Snapshot, Any], prices: list[Decimal]) -> None:
    """Repricing our own offers (even to a penny or garbage) never changes the decision."""
    snapshot, params = case
    it = iter(prices)
    moved = tuple(
        o if o.seller_id not in OWN_IDS else CompetitorOffer(**{**_fields(o), "price": next(it)})
        for o in snapshot.offers
    )
    assert run(snapshot._replace(offers=moved), params) == run(snapshot, params)


@PROPERTY
@given(listings())
def test_removing_own_offers_keeps_the_decision(case: tuple[Snapshot, Any]) -> None:
    """Without own shipping or own Buy Box flags, dropping own offers keeps target and reason."""
    snapshot, params = case
    neutral = tuple(
        o
        for o in snapshot.offers
        if o.seller_id not in OWN_IDS or (o.shipping == 0 and not o.is_buy_box_winner)
    )
    before = run(snapshot._replace(offers=neutral), params)
    only_theirs = tuple(o for o in neutral if o.seller_id not in OWN_IDS)
    after = run(snapshot._replace(offers=only_theirs), params)
    assert (after.target, after.reason) == (before.target, before.reason)


def _fields(o: CompetitorOffer) -> dict[str, Any]:
    """A CompetitorOffer's fields as a dict (slots dataclass)."""
    return {name: getattr(o, name) for name in CompetitorOffer.__dataclass_fields__}


def test_memoised_rejection_wording_matches_a_fresh_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wording of a rejected offer is memoised per (seller, fulfillment, rating) on the
    filters; a memo that is full starts over; traces match a filter that never saw an offer."""
    import strategies.offers as offers

    monkeypatch.setattr(offers, "_REJECTION_MEMO_SIZE", 2)
    params = BuyBoxParams.model_validate(
        {**BEAT1, "filters": {"fulfillment": ["fba", "fbm"], "min_rating_pct": 90}}
    )
    listings = [
        snap(offers=(S1, S2, AMZ, MINE)),
        snap(offers=(S1, offer("S2", "7.00", kind="FBM", rating=(85, 40)), AMZ, MINE)),
        snap(offers=(S1, offer("S3", "8.50", kind="fbm", rating=(None, 5)), AMZ, S2, MINE)),
        snap(offers=(S1, S2, AMZ, MINE)),
    ]
    for listing in listings:
        fresh = BuyBoxParams.model_validate(params.model_dump())
        assert buy_box(listing, params) == buy_box(listing, fresh)
        assert len(params.filters.worded_rejections) <= 2
    filters = params.filters
    for rejected in (S2, AMZ, offer("S3", "8.50", rating=(None, 5))):
        found = filters.rejection(rejected)
        assert found is not None
        key = (rejected.seller_id, rejected.fulfillment, rejected.rating_pct, rejected.rating_count)
        assert filters.remember_rejection(key, rejected) == (("filtered", found[0]), found[1])
        assert filters.worded_rejections[key] == (("filtered", found[0]), found[1])
