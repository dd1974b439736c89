"""Incident replays: the pricing errors repricers have shipped, and why they cannot happen here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from daemon.db.engine import Database
from daemon.passes import run_named_pass
from daemon.settings import PricingSettings
from domain.clock import ManualClock
from domain.offers import CompetitorOffer
from strategies.base import Snapshot
from strategies.engine import decide
from strategies.guards import Verdict
from tests.daemon_fixtures import actions, make_runtime, seed, settings

D = Decimal


async def test_every_competitor_at_one_penny_sends_nothing_below_floor_and_trips_the_breaker(
    db: Database, clock: ManualClock
) -> None:
    """RepricerExpress, Dec 2014: all competitors at 0.01. Nothing goes below the floor, and the
    breaker stops the channel after one pass, logging a blocked action per listing."""
    config = settings(
        channels={"alpha": {"kind": "mock", "competitors": 5}},
        pricing={
            "rules": [{"strategy": "buy_box", "params": {"position": "beat", "by_amount": "0.01"}}]
        },
    )
    rt = await make_runtime(db, clock, config)
    products = [
        {
            "sku": f"TOY-{i:02d}",
            "cost": D("8.00"),
            "fees": D("1.00"),
            "min_price": D("12.00"),
            "max_price": D("40.00"),
            "price": D("20.00"),
            "stock": 3,
        }
        for i in range(30)
    ]
    await seed(db, clock, rt, products, listed_on=("alpha",))
    await run_named_pass(rt, "reconcile", "p0")
    market = rt.channels["alpha"].market  # type: ignore[attr-defined]
    rt.channels["alpha"].fetch_competitor_offers = _penny_market(rt)  # type: ignore[method-assign]
    result = await run_named_pass(rt, "reprice", "p1")
    assert result["alpha"]["breaker"] is not None
    rows = await actions(db, kind="price")
    assert len(rows) == 30
    assert {row.status for row in rows} == {"blocked"}
    assert all(row.new_price is None or row.new_price >= D("12.00") for row in rows)
    assert {item.price for item in market.listings.values()} == {D("20.00")}
    again = await run_named_pass(rt, "reprice", "p2")
    assert "circuit breaker" in again["alpha"]["skipped"]
    await rt.close()


def _penny_market(rt: Any) -> Any:
    channel = rt.channels["alpha"]
    original = channel.fetch_competitor_offers

    async def fetch(skus: Any) -> Any:
        observations = await original(skus)
        penny = []
        for obs in observations:
            offers = tuple(o if o.is_own else _with_price(o, D("0.01")) for o in obs.offers)
            penny.append(
                type(obs)(
                    sku=obs.sku,
                    observed_at=obs.observed_at,
                    offers=offers,
                    buy_box_price=D("0.01"),
                    buy_box_seller="COMP01",
                )
            )
        return penny

    return fetch


def _with_price(offer: CompetitorOffer, price: Decimal) -> CompetitorOffer:
    return CompetitorOffer(
        seller_id=offer.seller_id,
        price=price,
        shipping=D("0"),
        fulfillment=offer.fulfillment,
        rating_pct=offer.rating_pct,
        rating_count=offer.rating_count,
        is_own=offer.is_own,
    )


def _duellist(position: str, pct: str) -> PricingSettings:
    return PricingSettings.model_validate(
        {
            "rules": [
                {
                    "strategy": "buy_box",
                    "params": {
                        "position": position,
                        "by_pct": pct,
                        "target": "lowest_offer",
                        "when_winning": "hold",
                    },
                }
            ],
        }
    )


def test_two_bots_duelling_with_the_fly_coefficients_stay_bounded_and_settle() -> None:
    """ "The Making of a Fly", 2011: 0.9983 × and 1.270589 × each other. Over 1,000 cycles the
    prices never leave [floor, ceiling] and stop changing instead of compounding to $23.7M."""
    undercutter = _duellist("beat", "0.17")  # 0.9983 × the other
    overbidder = _duellist("above", "27.0589")  # 1.270589 × the other
    start = datetime(2011, 4, 8, tzinfo=UTC)
    prices = {"profnath": D("35.54"), "bordeebook": D("45.14")}
    history: dict[str, list[tuple[datetime, Decimal]]] = {name: [] for name in prices}
    last_change = None
    for cycle in range(1000):
        now = start + timedelta(hours=12 * cycle)
        for me, rival, pricing in (
            ("profnath", "bordeebook", undercutter),
            ("bordeebook", "profnath", overbidder),
        ):
            snapshot = Snapshot(
                channel="amazon",
                sku="FLY-BOOK",
                currency="USD",
                now=now,
                current_price=prices[me],
                cost=D("20.00"),
                min_price=D("25.00"),
                max_price=D("150.00"),
                offers=(
                    CompetitorOffer(seller_id=rival, price=prices[rival]),
                    CompetitorOffer(seller_id=me, price=prices[me], is_own=True),
                ),
                own_seller_ids=frozenset({me}),
                recent_prices=tuple(p for p in history[me] if p[0] > now - timedelta(days=30)),
            )
            outcome = decide(snapshot, pricing.rules, pricing.guards)
            if outcome.verdict is Verdict.SEND:
                assert outcome.price is not None
                assert D("25.00") <= outcome.price <= D("150.00")
                prices[me] = outcome.price
                history[me].append((now, outcome.price))
                last_change = cycle
    assert all(D("25.00") <= p <= D("150.00") for p in prices.values())
    assert last_change is not None
    assert last_change < 900, f"still moving at cycle {last_change}: {prices}"


def test_a_listing_with_a_blank_minimum_is_never_repriced() -> None:
    """Appeagle, July 2012: listings with a blank minimum went to $0.01. Here: no floor, no
    price, and the reason says which field is missing."""
    pricing = _duellist("beat", "5")
    snapshot = Snapshot(
        channel="amazon",
        sku="BLANK-MIN",
        currency="USD",
        now=datetime(2012, 7, 18, tzinfo=UTC),
        current_price=D("19.99"),
        max_price=D("40.00"),
        offers=(CompetitorOffer(seller_id="RIVAL", price=D("0.01")),),
    )
    outcome = decide(snapshot, pricing.rules, pricing.guards)
    assert outcome.verdict is Verdict.BLOCKED
    assert outcome.price is None
    assert "no floor" in outcome.reason
