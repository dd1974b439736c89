"""Pricing v0 getListingOffersBatch: exact batch body, PascalCase mapping, per-item failures."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Any

import httpx
import pytest
import respx

from connectors.ratelimit import PACING
from domain.clock import ManualClock
from domain.offers import CompetitorOffer, OfferObservation
from tests.connectors.amazon_fixtures import (
    API,
    MARKET,
    SELLER,
    TOKEN,
    FakeSleep,
    body,
    channel,
    token_route,
)

BATCH = f"{API}/batches/products/pricing/v0/listingOffers"


def m(amount: Any) -> dict[str, Any]:
    return {"CurrencyCode": "USD", "Amount": amount}


def ok(sku: str, offers: list[dict[str, Any]], buy_box: float | None = 21.0) -> dict[str, Any]:
    summary: dict[str, Any] = {"TotalOfferCount": len(offers), "CompetitivePriceThreshold": m(26.5)}
    if buy_box is not None:
        summary["BuyBoxPrices"] = [
            {"condition": "used", "LandedPrice": m(5), "ListingPrice": m(5), "Shipping": m(0)},
            {"condition": "New", "LandedPrice": m(buy_box), "ListingPrice": m(buy_box),
             "Shipping": m(0)},
        ]  # fmt: skip
    return {
        "status": {"statusCode": 200, "reasonPhrase": "OK"},
        "headers": {"x-amzn-RequestId": "r", "Date": "Mon, 02 Mar 2026 12:00:00 GMT"},
        "body": {
            "payload": {
                "SKU": sku,
                "status": "Success",
                "ItemCondition": "New",
                "marketplaceId": MARKET,
                "Identifier": {"MarketplaceId": MARKET, "ItemCondition": "New", "SellerSKU": sku},
                "Summary": summary,
                "Offers": offers,
            }
        },
        "request": {"MarketplaceId": MARKET, "ItemCondition": "New", "SellerSKU": sku},
    }


def offer(seller: str | None, price: float, shipping: float, **flags: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "SubCondition": "new",
        "ListingPrice": m(price),
        "Shipping": m(shipping),
        "ShippingTime": {"minimumHours": 24, "maximumHours": 48, "availabilityType": "NOW"},
        "IsFulfilledByAmazon": False,
        **flags,
    }
    if seller is not None:
        result["SellerId"] = seller
    return result


async def test_offers_batch_request_and_mapping(clock: ManualClock, sleep: FakeSleep) -> None:
    response = {
        "responses": [
            ok(
                "MUG-1",
                [
                    offer("A2SNBFWOFW4SWG", 21.0, 0, IsBuyBoxWinner=True, IsFulfilledByAmazon=True,
                          SellerFeedbackRating={"SellerPositiveFeedbackRating": 98.6,
                                                "FeedbackCount": 1200}),
                    offer(None, 22.49, 3.99, MyOffer=True),
                    offer("A1OTHER", 19.1, 4.5,
                          SellerFeedbackRating={"FeedbackCount": 3}),
                ],
            ),
            {
                "status": {"statusCode": 400, "reasonPhrase": "Bad Request"},
                "body": {"errors": [{"code": "InvalidInput", "message": "Invalid SKU"}]},
                "request": {"MarketplaceId": MARKET, "ItemCondition": "New", "SellerSKU": "GONE"},
            },
        ]
    }  # fmt: skip
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        batch = router.post(BATCH).mock(return_value=httpx.Response(200, json=response))
        observations = await channel(http, clock, sleep).fetch_competitor_offers(["MUG-1", "GONE"])
    request = batch.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == BATCH
    assert request.headers["x-amz-access-token"] == TOKEN
    assert body(request) == {
        "requests": [
            {"uri": f"/products/pricing/v0/listings/{sku}/offers", "method": "GET",
             "MarketplaceId": MARKET, "ItemCondition": "New", "CustomerType": "Consumer"}
            for sku in ("MUG-1", "GONE")
        ]
    }  # fmt: skip
    assert observations == [
        OfferObservation(
            sku="MUG-1",
            observed_at=clock.now(),
            offers=(
                CompetitorOffer("A2SNBFWOFW4SWG", Decimal("21.00"), Decimal("0.00"), "fba",
                                99, 1200, is_buy_box_winner=True),
                CompetitorOffer(SELLER, Decimal("22.49"), Decimal("3.99"), "fbm", is_own=True),
                CompetitorOffer("A1OTHER", Decimal("19.10"), Decimal("4.50"), "fbm", None, 3),
            ),
            source="poll",
            buy_box_price=Decimal("21.00"),
            buy_box_seller="A2SNBFWOFW4SWG",
            reference_price=Decimal("26.50"),
        )
    ]  # fmt: skip


async def test_more_than_20_skus_are_split_and_paced(clock: ManualClock, sleep: FakeSleep) -> None:
    skus = [f"SKU-{i:02d}" for i in range(25)]

    def answer(request: httpx.Request) -> httpx.Response:
        asked = [r["uri"].split("/")[-2] for r in body(request)["requests"]]
        return httpx.Response(200, json={"responses": [ok(s, [], None) for s in asked]})

    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        batch = router.post(BATCH).mock(side_effect=answer)
        start = clock.monotonic()
        observations = await channel(http, clock, sleep).fetch_competitor_offers(skus)
    assert [len(body(c.request)["requests"]) for c in batch.calls] == [20, 5]
    assert [o.sku for o in observations] == skus
    assert all(o.buy_box_price is None and o.offers == () for o in observations)
    # getListingOffersBatch is 0.5/s burst 1: the second call waits two seconds, stretched by
    # the pacing margin (5 % and, at burst 1, twice the 50 ms jitter guard).
    interval = 1 / (0.5 * (1 - PACING.fraction)) + 2 * PACING.jitter_s
    assert clock.monotonic() - start == pytest.approx(interval)


async def test_sku_with_reserved_characters_is_encoded_in_the_inner_uri(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        batch = router.post(BATCH).mock(
            return_value=httpx.Response(200, json={"responses": [ok("A/B C", [])]})
        )
        (obs,) = await channel(http, clock, sleep).fetch_competitor_offers(["A/B C"])
    assert body(batch.calls.last.request)["requests"][0]["uri"] == (
        "/products/pricing/v0/listings/A%2FB%20C/offers"
    )
    assert obs.sku == "A/B C"


async def test_a_lower_applied_rate_slows_the_next_calls(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """x-amzn-RateLimit-Limit: 0.2 (a usage plan below the default 0.5/s) paces what follows."""
    skus = [f"SKU-{i:02d}" for i in range(45)]
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(clock.monotonic())
        asked = [r["uri"].split("/")[-2] for r in body(request)["requests"]]
        return httpx.Response(
            200,
            json={"responses": [ok(s, [], None) for s in asked]},
            headers={"x-amzn-RateLimit-Limit": "0.2"},
        )

    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        batch = router.post(BATCH).mock(side_effect=answer)
        amazon = channel(http, clock, sleep)
        await amazon.fetch_competitor_offers(skus)
    assert [body(c.request)["requests"][0]["uri"] for c in batch.calls] == [
        f"/products/pricing/v0/listings/SKU-{first:02d}/offers" for first in (0, 20, 40)
    ]
    assert amazon.client.buckets["getListingOffersBatch"].limit.rate == 0.2
    # Every call after the first waits 1/0.2 s (less the 5 % margin, plus the jitter guard),
    # not the table's 1/0.5 s. (The first wait also carries the jitter reserve the first call
    # took at 0.5/s, which counts for a little more time at 0.2/s: never less than the rest.)
    interval = 1 / (0.2 * (1 - PACING.fraction)) + 2 * PACING.jitter_s
    first, second = (b - a for a, b in pairwise(sent))
    assert interval <= first <= interval + 2 * PACING.jitter_s
    assert second == pytest.approx(interval)
