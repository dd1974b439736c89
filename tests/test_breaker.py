"""The account circuit breaker's verdict over one channel's pass (R9)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies.breaker import BreakerSettings, breaker_verdict, percent_text

D = Decimal
DEFAULT = BreakerSettings()  # more than 20 % of listings by more than 10 %, from 10 listings
BIG = (D("20.00"), D("0.01"))  # the 1p feed
SMALL = (D("20.00"), D("21.00"))  # 5 %


def moves(big: int, small: int = 0) -> list[tuple[Decimal | None, Decimal]]:
    """``big`` moves of more than 10 % and ``small`` ones of less."""
    return [BIG] * big + [SMALL] * small


@pytest.mark.parametrize(
    ("sent", "total", "tripped"),
    [
        (moves(0), 100, False),
        (moves(0, 100), 100, False),  # everything moves, but only by 5 %
        (moves(20), 100, False),  # exactly 20 % is not more than 20 %
        (moves(21), 100, True),
        (moves(21, 79), 100, True),
        (moves(3), 10, True),  # 30 % of the channel
        (moves(3), 20, False),  # the same moves among more held listings: 15 %
        (moves(2), 10, False),  # exactly 20 % again
        (moves(100), 100, True),  # the RepricerExpress pass
    ],
)
def test_trips_on_share_of_big_moves(
    sent: list[tuple[Decimal | None, Decimal]], total: int, tripped: bool
) -> None:
    """It trips only when strictly more than share_pct % of all listings move too far."""
    assert (breaker_verdict(sent, total, DEFAULT) is not None) is tripped


def test_reason_names_the_counts_and_limits() -> None:
    """The reason says how many listings would move, how far, and what the limit is."""
    assert breaker_verdict(moves(37), 120, DEFAULT) == (
        "would move 37 of 120 listings (30.9 %) by more than 10 %; limit 20 %"
    )
    assert breaker_verdict(moves(3), 10, DEFAULT) == (
        "would move 3 of 10 listings (30 %) by more than 10 %; limit 20 %"
    )


@pytest.mark.parametrize(
    ("old", "new", "counts"),
    [
        ("20.00", "22.00", False),  # exactly 10 % up is not more than 10 %
        ("20.00", "18.00", False),  # exactly 10 % down
        ("20.00", "22.01", True),
        ("20.00", "17.99", True),
        ("0.10", "0.12", True),  # 20 % of a small price is still 20 %
    ],
)
def test_move_threshold_is_strict(old: str, new: str, counts: bool) -> None:
    """A listing counts only if it moves by strictly more than move_pct % of its price."""
    rule = BreakerSettings(share_pct=D("50"), min_listings=1)
    assert (breaker_verdict([(D(old), D(new))], 1, rule) is not None) is counts


@pytest.mark.parametrize("current", [None, D("0"), D("-1"), D("NaN")])
def test_listing_without_current_price_does_not_move(current: Decimal | None) -> None:
    """A first price (no usable current price) is not a move, so a new catalogue never trips."""
    rule = BreakerSettings(share_pct=D("50"), min_listings=1)
    assert breaker_verdict([(current, D("10.00"))] * 10, 10, rule) is None
    assert breaker_verdict([(current, D("10.00"))] * 4 + moves(6), 10, rule) is not None


@pytest.mark.parametrize(("total", "tripped"), [(9, False), (10, True), (11, True)])
def test_min_listings(total: int, tripped: bool) -> None:
    """Channels with fewer than min_listings listings never trip, however much they move."""
    assert (breaker_verdict(moves(min(total, 9)), total, DEFAULT) is not None) is tripped


def test_settings_change_the_thresholds() -> None:
    """share_pct and move_pct come from the settings."""
    loose = BreakerSettings(share_pct=D("50"), move_pct=D("100"), min_listings=2)
    assert breaker_verdict(moves(2), 2, loose) is None  # -99.95 % is not more than 100 %
    up = [(D("10.00"), D("20.01"))] * 2
    assert breaker_verdict(up, 3, loose) == (
        "would move 2 of 3 listings (66.7 %) by more than 100 %; limit 50 %"
    )


@pytest.mark.parametrize(("sent", "total"), [(moves(3), 2), (moves(0), -1)])
def test_inconsistent_counts_are_an_error(
    sent: list[tuple[Decimal | None, Decimal]], total: int
) -> None:
    """More moves than listings is a caller bug and raises instead of guessing."""
    with pytest.raises(ValueError, match="moves out of"):
        breaker_verdict(sent, total, DEFAULT)


@pytest.mark.parametrize(
    ("value", "text"),
    [(D("30"), "30"), (D("30.8333"), "30.9"), (D("35.004"), "35.1"), (D("0.01"), "0.1")],
)
def test_percent_text(value: Decimal, text: str) -> None:
    """Percentages in messages round up to 0.1 so an excess never reads as the limit itself."""
    assert percent_text(value) == text


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(0, 60))
def test_more_big_moves_never_untrip(big: int, small: int, held: int) -> None:
    """Adding one more big move to a pass never turns a trip back into a pass."""
    total = big + small + held + 1
    before = breaker_verdict(moves(big, small), total, DEFAULT)
    after = breaker_verdict(moves(big + 1, small), total, DEFAULT)
    assert before is None or after is not None
    assert (after is not None) == (
        total >= DEFAULT.min_listings and (big + 1) * 100 > DEFAULT.share_pct * total
    )
