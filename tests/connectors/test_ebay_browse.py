"""Competitor offers from the Browse API: the search on the wire and its parsing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import respx

from connectors.ebay import EbayChannel
from connectors.ebay.inventory import OfferRef
from domain.clock import ManualClock
from domain.offers import CompetitorOffer
from tests.connectors.ebay_fixtures import (
    APP_TOKEN,
    SEARCH,
    FakeSleep,
    assert_request,
    channel,
    ebay_error,
    token_route,
)


def summary(
    seller: str,
    value: str,
    shipping: str | None = None,
    *,
    legacy: str = "110099999999",
    currency: str = "USD",
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "itemId": f"v1|{legacy}|0",
        "legacyItemId": legacy,
        "title": "Blue mug 12 oz",
        "price": {"value": value, "currency": currency},
        "seller": {"username": seller, "feedbackPercentage": "99.4", "feedbackScore": 1520},
        "condition": "New",
        "conditionId": "1000",
        "buyingOptions": ["FIXED_PRICE"],
    }
    if shipping is not None:
        data["shippingOptions"] = [
            {"shippingCostType": "FIXED", "shippingCost": {"value": shipping, "currency": "USD"}}
        ]
    return data


def know(ebay: EbayChannel) -> None:
    ebay.refs["MUG"] = OfferRef(
        "MUG", "9876543210", "110012345678", Decimal("24.99"), 3, "099482432621", "Blue mug"
    )
    ebay.refs["NOGTIN"] = OfferRef("NOGTIN", "1", "2", None, None, None, "Red teapot")


async def test_not_configured_returns_nothing(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        ebay = channel(http, clock, sleep)
        know(ebay)
        assert await ebay.fetch_competitor_offers(["MUG"]) == []
        assert not router.calls


async def test_search_by_gtin_with_an_application_token(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    answer = {
        "href": "...",
        "total": 5,
        "limit": 50,
        "offset": 0,
        "itemSummaries": [
            summary("cheap_mugs", "21.50", "4.99"),
            summary("our_store", "24.99"),  # us, by username
            summary("someone", "18.00", legacy="110012345678"),  # our own listing
            summary("euro_seller", "10.00", currency="EUR"),
            summary("free_ship", "25.00"),
        ],
    }
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router, grant="client_credentials")
        search = router.get(SEARCH).mock(return_value=httpx.Response(200, json=answer))
        ebay = channel(http, clock, sleep, browse_enabled=True)
        know(ebay)
        [observation] = await ebay.fetch_competitor_offers(["MUG", "UNKNOWN"])
    assert_request(
        search.calls.last.request,
        "GET",
        SEARCH,
        {
            "gtin": "099482432621",
            "filter": "buyingOptions:{FIXED_PRICE},conditionIds:{1000},priceCurrency:USD",
            "sort": "price",
            "limit": "50",
        },
        {"authorization": f"Bearer {APP_TOKEN}", "x-ebay-c-marketplace-id": "EBAY_US"},
    )
    assert observation.sku == "MUG"
    assert observation.observed_at == clock.now()
    assert observation.offers == (
        CompetitorOffer(
            "free_ship", Decimal("25.00"), Decimal("0.00"), "fbm", rating_pct=99, rating_count=1520
        ),
        CompetitorOffer(
            "cheap_mugs", Decimal("21.50"), Decimal("4.99"), "fbm", rating_pct=99, rating_count=1520
        ),
    )
    assert observation.buy_box_price is None


async def test_title_query_and_failures_are_skipped(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, grant="client_credentials")
        search = router.get(SEARCH).mock(
            side_effect=[
                ebay_error(400, 12001, "The call must have a valid 'q' or 'gtin'"),
                httpx.Response(200, json={"total": 0, "itemSummaries": []}),
            ]
        )
        ebay = channel(
            http, clock, sleep, browse_enabled=True, browse_query="title", browse_filter=None
        )
        know(ebay)
        found = await ebay.fetch_competitor_offers(["MUG", "NOGTIN"])
    assert [dict(c.request.url.params) for c in search.calls] == [
        {"q": "Blue mug", "filter": "priceCurrency:USD", "sort": "price", "limit": "50"},
        {"q": "Red teapot", "filter": "priceCurrency:USD", "sort": "price", "limit": "50"},
    ]
    assert [(o.sku, o.offers) for o in found] == [("NOGTIN", ())]


async def test_browse_quota_stops_the_searches(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, grant="client_credentials")
        search = router.get(SEARCH).mock(
            return_value=httpx.Response(200, json={"itemSummaries": []})
        )
        ebay = channel(
            http,
            clock,
            sleep,
            browse_enabled=True,
            browse_query="title",
            daily_call_quotas={"buy.browse": 1},
        )
        know(ebay)
        found = await ebay.fetch_competitor_offers(["MUG", "NOGTIN"])
    assert search.call_count == 1
    assert [o.sku for o in found] == ["MUG"]
