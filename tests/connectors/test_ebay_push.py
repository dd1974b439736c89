"""bulkUpdatePriceQuantity: exact bodies, ≤25 per call, 207 per-item mapping, error classes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from connectors.ebay import EbayChannel
from connectors.ebay.inventory import OfferRef
from connectors.ratelimit import PACING
from domain.clock import ManualClock
from domain.errors import ChannelAuthError
from domain.writes import PriceUpdate, PushStatus, StockUpdate
from tests.connectors.ebay_fixtures import (
    BULK,
    OFFERS,
    FakeSleep,
    assert_request,
    body,
    channel,
    ebay_error,
    offer,
    token_route,
    user_headers,
)


def known(ebay: EbayChannel, count: int, *, price: str = "20.00", quantity: int = 10) -> None:
    """Teach the channel ``count`` SKUs (as fetch_listings would)."""
    for n in range(count):
        ebay.refs[f"SKU-{n}"] = OfferRef(
            f"SKU-{n}", str(9876543000 + n), str(110012345000 + n), Decimal(price), quantity
        )


def price(n: int, value: str, **kw: Any) -> PriceUpdate:
    return PriceUpdate(f"SKU-{n}", Decimal(value), "USD", f"p-{n}", **kw)


def by_key(results: list[Any]) -> dict[str, Any]:
    return {r.idempotency_key: r for r in results}


async def test_price_body_is_a_string_amount_on_the_offer(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(
            return_value=httpx.Response(
                200,
                json={"responses": [{"statusCode": 200, "sku": "SKU-0", "offerId": "9876543000"}]},
            )
        )
        ebay = channel(http, clock, sleep)
        known(ebay, 1)
        results = await ebay.push_prices([price(0, "29.9")])
    request = bulk.calls.last.request
    assert_request(request, "POST", BULK, headers=user_headers(body=True))
    assert body(request) == {
        "requests": [
            {"offers": [{"offerId": "9876543000", "price": {"value": "29.90", "currency": "USD"}}]}
        ]
    }
    assert results == [type(results[0])("p-0", PushStatus.CONFIRMED, marketplace_ref="9876543000")]
    assert ebay.refs["SKU-0"].price == Decimal("29.90")  # the next move is measured from here
    assert await ebay.budget.used("110012345000") == 1


async def test_stock_sets_item_and_offer_quantity(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(
            return_value=httpx.Response(
                200,
                json={
                    "responses": [
                        {"statusCode": 200, "sku": "SKU-0"},
                        {"statusCode": 200, "sku": "SKU-0", "offerId": "9876543000"},
                    ]
                },
            )
        )
        ebay = channel(http, clock, sleep)
        known(ebay, 1)
        results = await ebay.push_stock([StockUpdate("SKU-0", 3, "s-0")])
    assert body(bulk.calls.last.request) == {
        "requests": [
            {
                "sku": "SKU-0",
                "shipToLocationAvailability": {"quantity": 3},
                "offers": [{"offerId": "9876543000", "availableQuantity": 3}],
            }
        ]
    }
    assert [r.status for r in results] == [PushStatus.CONFIRMED]
    assert ebay.refs["SKU-0"].quantity == 3


async def test_sixty_updates_go_in_calls_of_25_25_10(clock: ManualClock, sleep: FakeSleep) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        entries = [
            {"statusCode": 200, "offerId": r["offers"][0]["offerId"]}
            for r in body(request)["requests"]
        ]
        return httpx.Response(200, json={"responses": entries})

    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(side_effect=answer)
        ebay = channel(http, clock, sleep)
        known(ebay, 60)
        results = await ebay.push_prices([price(n, "21.00") for n in range(60)])
    assert [len(body(c.request)["requests"]) for c in bulk.calls] == [25, 25, 10]
    assert len(results) == 60
    assert {r.status for r in results} == {PushStatus.CONFIRMED}


async def test_207_maps_each_item_to_its_own_result(clock: ManualClock, sleep: FakeSleep) -> None:
    multi = {
        "responses": [
            {"statusCode": 200, "sku": "SKU-0", "offerId": "9876543000"},
            {
                "statusCode": 400,
                "sku": "SKU-1",
                "offerId": "9876543001",
                "errors": [
                    {
                        "errorId": 25003,
                        "domain": "API_INVENTORY",
                        "category": "REQUEST",
                        "message": "Invalid price.",
                    }
                ],
            },
            {
                "statusCode": 500,
                "sku": "SKU-2",
                "offerId": "9876543002",
                "errors": [{"errorId": 25001, "message": "A system error has occurred."}],
            },
            {
                "statusCode": 400,
                "sku": "SKU-3",
                "offerId": "9876543003",
                "errors": [{"errorId": 25025, "message": "Concurrent access of the offer."}],
            },
        ]
    }
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(BULK).mock(return_value=httpx.Response(207, json=multi))
        ebay = channel(http, clock, sleep)
        known(ebay, 5)
        results = by_key(await ebay.push_prices([price(n, "25.00") for n in range(5)]))
    assert results["p-0"].status is PushStatus.CONFIRMED
    assert (results["p-1"].status, results["p-1"].code, results["p-1"].message) == (
        PushStatus.REJECTED,
        "25003",
        "Invalid price.",
    )
    assert (results["p-2"].status, results["p-2"].code) == (PushStatus.RETRY, "25001")
    assert (results["p-3"].status, results["p-3"].code) == (PushStatus.RETRY, "25025")
    # A 207 without an entry for an offer says nothing about it: keep the intent open.
    assert (results["p-4"].status, results["p-4"].code) == (PushStatus.RETRY, "NO_RESULT")
    assert await ebay.budget.used("110012345000") == 1
    assert await ebay.budget.used("110012345001") == 0
    assert ebay.refs["SKU-1"].price == Decimal("20.00")  # a refused price is not remembered


async def test_stock_half_applied_is_not_confirmed(clock: ManualClock, sleep: FakeSleep) -> None:
    multi = {
        "responses": [
            {"statusCode": 200, "sku": "SKU-0"},
            {
                "statusCode": 400,
                "sku": "SKU-0",
                "offerId": "9876543000",
                "errors": [{"errorId": 25004, "message": "Invalid quantity."}],
            },
        ]
    }
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(BULK).mock(return_value=httpx.Response(207, json=multi))
        ebay = channel(http, clock, sleep)
        known(ebay, 1)
        [result] = await ebay.push_stock([StockUpdate("SKU-0", 0, "s-0")])
    assert (result.status, result.code) == (PushStatus.REJECTED, "25004")
    assert await ebay.budget.used("110012345000") == 1  # the item's quantity did change


async def test_whole_call_400_rejects_the_chunk_with_ebays_error(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(
            return_value=ebay_error(400, 25709, "Invalid value for requests.")
        )
        ebay = channel(http, clock, sleep)
        known(ebay, 2)
        results = await ebay.push_prices([price(0, "22.00"), price(1, "22.00")])
    assert bulk.call_count == 1
    assert {(r.status, r.code) for r in results} == {(PushStatus.REJECTED, "25709")}
    assert "Invalid value for requests." in (results[0].message or "")


async def test_429_and_5xx_are_retried_then_left_open(clock: ManualClock, sleep: FakeSleep) -> None:
    throttled = httpx.Response(
        429,
        json={
            "errors": [
                {
                    "errorId": 2001,
                    "domain": "ACCESS",
                    "category": "REQUEST",
                    "message": "Too many requests",
                }
            ]
        },
    )
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(
            side_effect=[
                throttled,
                ebay_error(500, 25001, "A system error has occurred.", "APPLICATION"),
                httpx.ReadTimeout("slow"),
            ]
        )
        ebay = channel(http, clock, sleep)
        known(ebay, 1)
        [result] = await ebay.push_prices([price(0, "22.00")])
    assert bulk.call_count == 3  # RetryPolicy(attempts=3)
    # The 429 drains the Inventory bucket: the retry waits one token at its pace (25/s less the
    # margin, plus the jitter guard), not a backoff (tenacity's own wait is 0); the 5xx then
    # backs off.
    one_token = 1 / (25 * (1 - PACING.fraction)) + PACING.jitter_s
    assert next(w for w in sleep.waits if w > 0) == pytest.approx(one_token)
    assert len([w for w in sleep.waits if w > 0]) == 2
    assert result.status is PushStatus.RETRY
    # The 429 and the 500 were not applied; the read timeout may have been (eBay has no
    # idempotency keys), so it counts against the listing's day (it was 0 before: an
    # undercount that ends in eBay's 25019 refusals near the cap).
    assert await ebay.budget.used("110012345000") == 1


async def test_429_then_success(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(BULK).mock(
            side_effect=[
                ebay_error(429, 2001, "Too many requests", "REQUEST"),
                httpx.Response(200, json={"responses": []}),
            ]
        )
        ebay = channel(http, clock, sleep)
        known(ebay, 1)
        [result] = await ebay.push_prices([price(0, "22.00")])
    assert result.status is PushStatus.CONFIRMED  # a 200 confirms every request


async def test_auth_failure_propagates(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(BULK).mock(return_value=ebay_error(403, 1100, "Access denied", "REQUEST"))
        ebay = channel(http, clock, sleep)
        known(ebay, 1)
        with pytest.raises(ChannelAuthError):
            await ebay.push_prices([price(0, "22.00")])


async def test_local_refusals_make_no_call(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        ebay = channel(http, clock, sleep)
        known(ebay, 2)
        results = by_key(
            await ebay.push_prices(
                [
                    PriceUpdate("SKU-0", Decimal("20"), "EUR", "eur"),
                    price(1, "9.99", floor=Decimal("10.00")),
                ]
            )
        )
        assert not router.calls
    assert (results["eur"].status, results["eur"].code) == (
        PushStatus.REJECTED,
        "CURRENCY_MISMATCH",
    )
    assert (results["p-1"].status, results["p-1"].code) == (
        PushStatus.REJECTED,
        "PRICE_OUT_OF_BOUNDS",
    )


async def test_unknown_sku_is_looked_up_by_getoffers(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        offers = router.get(OFFERS).mock(
            side_effect=[
                httpx.Response(
                    200,
                    json={"total": 1, "size": 1, "offers": [offer("NEW-1", "555", "10.00", 2)]},
                ),
                httpx.Response(200, json={"total": 0, "size": 0, "offers": []}),
            ]
        )
        bulk = router.post(BULK).mock(return_value=httpx.Response(200, json={"responses": []}))
        ebay = channel(http, clock, sleep)
        results = by_key(
            await ebay.push_stock([StockUpdate("NEW-1", 4, "a"), StockUpdate("GONE", 1, "b")])
        )
    assert_request(
        offers.calls[0].request,
        "GET",
        OFFERS,
        {"sku": "NEW-1", "marketplace_id": "EBAY_US"},
        user_headers(),
    )
    assert body(bulk.calls.last.request)["requests"][0]["offers"][0]["offerId"] == "555"
    assert results["a"].status is PushStatus.CONFIRMED
    assert (results["b"].status, results["b"].code) == (PushStatus.REJECTED, "UNKNOWN_SKU")


async def test_a_stored_offer_id_still_asks_for_the_listing_id(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """Before discovery (intents redriven at start-up) the push learns the listingId its
    revision budget keys on, so it spends the same counter as the pushes after discovery."""
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        found = {"total": 1, "size": 1, "offers": [offer("X-1", "7777", "10.00", 2)]}
        offers = router.get(OFFERS).mock(return_value=httpx.Response(200, json=found))
        bulk = router.post(BULK).mock(return_value=httpx.Response(200, json={"responses": []}))
        ebay = channel(http, clock, sleep)
        await ebay.push_prices([PriceUpdate("X-1", Decimal("5.5"), "USD", "k", external_id="7777")])
    assert offers.call_count == 1
    assert body(bulk.calls.last.request)["requests"][0]["offers"][0] == {
        "offerId": "7777",
        "price": {"value": "5.50", "currency": "USD"},
    }
    listing = ebay.refs["X-1"].listing_id
    assert listing is not None
    assert await ebay.budget.used(listing) == 1
    assert await ebay.budget.used("sku:X-1") == 0


async def test_cannot_revise_25019_defers_and_spends_the_listings_day(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """eBay's "Cannot revise listing" (revisions spent before a restart, or by another tool)
    is not a verdict on the update: DEFERRED, no more writes to that listing today."""
    refused = {
        "statusCode": 400,
        "sku": "SKU-0",
        "offerId": "9876543000",
        "errors": [
            {
                "errorId": 25019,
                "domain": "API_INVENTORY",
                "category": "REQUEST",
                "message": "Cannot revise listing. Listing 110012345000 has reached the maximum "
                "of 250 revisions allowed per day.",
            }
        ],
    }
    fine = {"statusCode": 200, "sku": "SKU-1", "offerId": "9876543001"}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(
            return_value=httpx.Response(207, json={"responses": [refused, fine]})
        )
        ebay = channel(http, clock, sleep)
        known(ebay, 2)
        results = by_key(await ebay.push_prices([price(0, "25.00"), price(1, "25.00")]))
        assert results["p-0"].status is PushStatus.DEFERRED
        assert results["p-0"].code == "REVISION_BUDGET_EXHAUSTED"
        assert "25019" in (results["p-0"].message or "")
        assert results["p-1"].status is PushStatus.CONFIRMED
        assert await ebay.budget.remaining("110012345000") == 0
        [again] = await ebay.push_prices([price(0, "26.00")])
    assert again.status is PushStatus.DEFERRED
    assert bulk.call_count == 1  # the second push was not sent
