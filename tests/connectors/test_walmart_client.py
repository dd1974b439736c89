"""Single-SKU writes on the wire, error classification, and pacing by Walmart's token windows."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx

from connectors.ratelimit import PACING
from connectors.walmart.const import UPDATE_PRICE
from connectors.walmart.models import error_details
from domain.clock import ManualClock
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate
from tests.connectors.walmart_fixtures import (
    API,
    FakeSleep,
    assert_wm_headers,
    channel,
    token_route,
    walmart_error,
)

PRICE = f"{API}/v3/price"
PRICE_OK = {
    "ItemPriceResponse": {
        "mart": "WALMART_US",
        "sku": "MUG-1",
        "message": "Thank you. Your price has been updated. Please allow up to five minutes for "
        "this change to be reflected on the site.",
    }
}


def price(sku: str = "MUG-1", amount: str = "24.99", key: str = "p1") -> PriceUpdate:
    return PriceUpdate(sku, Decimal(amount), "USD", key)


async def test_single_price_put_on_the_wire(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.put(PRICE).mock(return_value=httpx.Response(200, json=PRICE_OK))
        results = await channel(http, clock, sleep).push_prices([price()])
    assert results == [
        PushResult("p1", PushStatus.ACCEPTED, None, PRICE_OK["ItemPriceResponse"]["message"])
    ]
    request = route.calls.last.request
    assert request.method == "PUT"
    assert str(request.url) == PRICE
    assert_wm_headers(request)
    assert request.headers["Content-Type"] == "application/json"
    assert request.content == (
        b'{"sku":"MUG-1","pricing":[{"currentPriceType":"BASE",'
        b'"currentPrice":{"currency":"USD","amount":24.99}}]}'
    )


async def test_single_inventory_put_escapes_the_sku(clock: ManualClock, sleep: FakeSleep) -> None:
    echo = {"sku": "MUG/1 x@", "quantity": {"unit": "EACH", "amount": 12}}
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.put(url__startswith=f"{API}/v3/inventory").mock(
            return_value=httpx.Response(200, json=echo)
        )
        results = await channel(http, clock, sleep).push_stock([StockUpdate("MUG/1 x@", 12, "s1")])
    assert results == [PushResult("s1", PushStatus.CONFIRMED)]
    request = route.calls.last.request
    assert request.method == "PUT"
    assert str(request.url) == f"{API}/v3/inventory?sku=MUG%2F1%20x%40"
    assert_wm_headers(request)
    assert request.content == b'{"sku":"MUG/1 x@","quantity":{"unit":"EACH","amount":12}}'


async def test_inventory_put_names_the_configured_ship_node(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    echo = {"sku": "A", "quantity": {"unit": "EACH", "amount": 3}}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.put(url__startswith=f"{API}/v3/inventory").mock(
            return_value=httpx.Response(200, json=echo)
        )
        walmart = channel(http, clock, sleep, ship_node="10000003527")
        await walmart.push_stock([StockUpdate("A", 3, "s1")])
    assert str(route.calls.last.request.url) == f"{API}/v3/inventory?sku=A&shipNode=10000003527"


async def test_400_is_rejected_with_walmarts_code(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.put(PRICE).mock(
            return_value=walmart_error(400, "INVALID_REQUEST_CONTENT.GMP_PRICE_API", "Bad sku")
        )
        results = await channel(http, clock, sleep).push_prices([price()])
    assert route.call_count == 1  # never retried
    assert results[0].status is PushStatus.REJECTED
    assert results[0].code == "INVALID_REQUEST_CONTENT.GMP_PRICE_API"
    assert results[0].message is not None
    assert "Bad sku: Request invalid." in results[0].message


async def test_5xx_and_timeouts_are_retried(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.put(PRICE).mock(
            side_effect=[
                httpx.Response(503),
                httpx.ReadTimeout("slow"),
                httpx.Response(200, json=PRICE_OK),
            ]
        )
        results = await channel(http, clock, sleep).push_prices([price()])
    assert route.call_count == 3
    assert len(sleep.waits) == 2
    assert results[0].status is PushStatus.ACCEPTED
    ids = {c.request.headers["WM_QOS.CORRELATION_ID"] for c in route.calls}
    assert len(ids) == 3  # a fresh correlation id on every request


async def test_5xx_until_the_cap_leaves_the_intent_open(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.put(PRICE).mock(return_value=httpx.Response(500))
        results = await channel(http, clock, sleep).push_prices([price()])
    assert route.call_count == 4
    assert results[0].status is PushStatus.RETRY


async def test_429_waits_until_the_replenishment_time(clock: ManualClock, sleep: FakeSleep) -> None:
    replenish_ms = int(clock.now().timestamp() * 1000) + 30_000
    seen: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(clock.monotonic())
        if len(seen) == 1:
            return httpx.Response(
                429,
                json={"errors": [{"code": "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"}]},
                headers={
                    "X-Current-Token-Count": "0",
                    "X-Next-Replenishment-Time": str(replenish_ms),
                },
            )
        return httpx.Response(200, json=PRICE_OK)

    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.put(PRICE).mock(side_effect=answer)
        results = await channel(http, clock, sleep).push_prices([price()])
    assert results[0].status is PushStatus.ACCEPTED
    assert len(seen) == 2
    # Walmart's replenishment time on its clock, plus our jitter guard against clock skew.
    assert seen[1] - seen[0] == pytest.approx(30.0 + PACING.jitter_s)
    assert sum(sleep.waits) == pytest.approx(30.0 + PACING.jitter_s)


async def test_an_empty_window_on_a_200_paces_the_next_call(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    replenish_ms = int(clock.now().timestamp() * 1000) + 45_000
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(clock.monotonic())
        count = "0" if len(sent) == 1 else "7"
        headers = {"X-Current-Token-Count": count, "X-Next-Replenishment-Time": str(replenish_ms)}
        return httpx.Response(200, json=PRICE_OK, headers=headers)

    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.put(PRICE).mock(side_effect=answer)
        walmart = channel(http, clock, sleep)
        await walmart.push_prices([price()])
        await walmart.push_prices([price(key="p2")])
        bucket = walmart.client.buckets[UPDATE_PRICE]
        assert bucket.available == pytest.approx(7.0)  # Walmart's count, adopted
    # Waited (plus the jitter guard), no 429 needed.
    assert sent[1] - sent[0] == pytest.approx(45.0 + PACING.jitter_s)


async def test_token_count_caps_the_burst(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.put(PRICE).mock(
            return_value=httpx.Response(200, json=PRICE_OK, headers={"X-Current-Token-Count": "2"})
        )
        walmart = channel(http, clock, sleep)
        await walmart.push_prices([price()])
    assert walmart.client.buckets[UPDATE_PRICE].available == pytest.approx(2.0)


def test_error_details_reads_every_shape() -> None:
    new = b'{"errors":[{"code":"A.B","description":"d","info":"i"}]}'
    old_list = b'{"errors":{"error":[{"code":"C","description":"only"}]}}'
    old_one = b'{"errors":{"error":{"code":"D","info":"why"}}}'
    assert error_details(new, 400) == ("A.B", "d: i")
    assert error_details(old_list, 400) == ("C", "only")
    assert error_details(old_one, 400) == ("D", "why")
    assert error_details(b"<html/>", 502) == ("HTTP502", "no Walmart error body")


async def test_200_price_response_with_errors_is_rejected(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    refused = {"ItemPriceResponse": {"errors": [{"code": "ERR_PRICE", "description": "too low"}]}}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.put(PRICE).mock(return_value=httpx.Response(200, json=refused))
        results = await channel(http, clock, sleep).push_prices([price()])
    assert results == [PushResult("p1", PushStatus.REJECTED, "ERR_PRICE", "too low")]


async def test_currency_mismatch_is_refused_locally(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        walmart = channel(http, clock, sleep)
        results = await walmart.push_prices([PriceUpdate("A", Decimal("1.00"), "CAD", "k")])
        assert router.calls.call_count == 0
    assert results[0].status is PushStatus.REJECTED
    assert results[0].code == "CURRENCY_MISMATCH"


@pytest.mark.parametrize("status", [429, 200])
async def test_a_window_reopening_within_one_token_interval_is_waited_exactly(
    clock: ManualClock, sleep: FakeSleep, status: int
) -> None:
    """Walmart says the next token comes in 0.5 s: the next call goes in 0.5 s, not after the
    client's own 1/rate guess (6 s for updatePrice; six minutes for a 10/hour feed type)."""
    replenish_ms = int(clock.now().timestamp() * 1000) + 500
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(clock.monotonic())
        headers = {
            "X-Current-Token-Count": "0" if len(sent) == 1 else "9",
            "X-Next-Replenishment-Time": str(replenish_ms),
        }
        if len(sent) == 1 and status == 429:
            body = {"errors": [{"code": "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"}]}
            return httpx.Response(429, json=body, headers=headers)
        return httpx.Response(200, json=PRICE_OK, headers=headers)

    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.put(PRICE).mock(side_effect=answer)
        walmart = channel(http, clock, sleep)
        await walmart.push_prices([price()])
        if status == 200:
            await walmart.push_prices([price(key="p2")])
    assert len(sent) == 2
    assert sent[1] - sent[0] == pytest.approx(0.5 + PACING.jitter_s)
