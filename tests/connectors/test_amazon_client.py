"""The SP-API request function: exact headers, throttling, retries, Amazon's error codes."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx

from connectors.amazon.const import PATCH_LISTING, RATE_LIMITS
from connectors.ratelimit import PACING
from domain.clock import ManualClock
from domain.errors import ChannelAuthError
from domain.writes import PriceUpdate, PushStatus, StockUpdate
from tests.connectors.amazon_fixtures import (
    API,
    MARKET,
    SELLER,
    TOKEN,
    FakeSleep,
    amazon_error,
    channel,
    token_route,
)

PATCH_URL = f"{API}/listings/2021-08-01/items/{SELLER}/MUG-1"
ACCEPTED = {"sku": "MUG-1", "status": "ACCEPTED", "submissionId": "sub-1", "issues": []}
QUOTA = ("QuotaExceeded", "You exceeded your quota for the requested resource.")


def stock(quantity: int = 3, sku: str = "MUG-1", key: str = "k1") -> StockUpdate:
    return StockUpdate(sku=sku, quantity=quantity, idempotency_key=key)


async def test_every_call_carries_the_sp_api_headers(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        patch = router.patch(PATCH_URL).mock(return_value=httpx.Response(200, json=ACCEPTED))
        await channel(http, clock, sleep).push_stock([stock()])
    headers = patch.calls.last.request.headers
    assert headers["x-amz-access-token"] == TOKEN
    assert headers["user-agent"].startswith("repricerd/")
    assert headers["x-amz-date"] == "20260302T120000Z"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert "authorization" not in headers  # SigV4 is no longer required


async def test_429_drains_the_bucket_and_waits_for_refill(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        patch = router.patch(PATCH_URL).mock(
            side_effect=[amazon_error(429, *QUOTA), httpx.Response(200, json=ACCEPTED)]
        )
        amazon = channel(http, clock, sleep)
        results = await amazon.push_stock([stock()])
    assert results[0].status is PushStatus.ACCEPTED
    assert patch.call_count == 2
    # Drained to zero, the bucket waits one token at 5/s less the pacing margin, and the jitter
    # guard on top: the 429'd call may have reached Amazon later than it left.
    wait = 1 / (RATE_LIMITS[PATCH_LISTING].rate * (1 - PACING.fraction)) + PACING.jitter_s
    assert [w for w in sleep.waits if w] == [pytest.approx(wait)]


async def test_500_is_retried_then_succeeds(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        patch = router.patch(PATCH_URL).mock(
            side_effect=[
                amazon_error(500, "InternalFailure", "We encountered an internal error."),
                httpx.Response(503),
                httpx.Response(200, json=ACCEPTED),
            ]
        )
        results = await channel(http, clock, sleep).push_stock([stock()])
    assert results[0].status is PushStatus.ACCEPTED
    assert patch.call_count == 3


async def test_timeouts_are_retried_until_the_cap_then_retry_later(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        patch = router.patch(PATCH_URL).mock(side_effect=httpx.ReadTimeout("slow"))
        results = await channel(http, clock, sleep).push_stock([stock()])
    assert patch.call_count == 4  # RetryPolicy(attempts=4)
    assert results[0].status is PushStatus.RETRY


async def test_400_is_recorded_with_amazons_code_and_not_retried(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        patch = router.patch(PATCH_URL).mock(
            return_value=amazon_error(400, "InvalidInput", "Invalid sku: MUG-1")
        )
        update = PriceUpdate("MUG-1", Decimal("9.99"), "USD", idempotency_key="p1")
        results = await channel(http, clock, sleep).push_prices([update])
    assert patch.call_count == 1
    assert sleep.waits == []
    (result,) = results
    assert result.status is PushStatus.REJECTED
    assert result.code == "InvalidInput"
    assert result.message is not None
    assert "Invalid sku: MUG-1" in result.message


async def test_rate_header_adopts_the_applied_usage_plan(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.patch(PATCH_URL).mock(
            return_value=httpx.Response(
                200, json=ACCEPTED, headers={"x-amzn-RateLimit-Limit": "10.0"}
            )
        )
        amazon = channel(http, clock, sleep)
        await amazon.push_stock([stock()])
    assert amazon.client.buckets[PATCH_LISTING].limit.rate == 10.0


async def test_patches_are_paced_at_five_per_second(clock: ManualClock, sleep: FakeSleep) -> None:
    skus = [f"SKU-{i}" for i in range(15)]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.patch(url__regex=rf"{API}/listings/2021-08-01/items/{SELLER}/SKU-\d+").mock(
            return_value=httpx.Response(200, json={**ACCEPTED, "sku": "x"})
        )
        start = clock.monotonic()
        results = await channel(http, clock, sleep).push_stock(
            [stock(1, sku, f"k-{sku}") for sku in skus]
        )
    assert route.call_count == 15
    assert {r.status for r in results} == {PushStatus.ACCEPTED}
    # Burst 5, then 10 more at 5/s: never faster than the published two seconds, and only the
    # margin slower: 10 calls at 5/s less 5 %, plus one jitter reserve (2 × 50 ms) taken once.
    elapsed = clock.monotonic() - start
    assert elapsed >= RATE_LIMITS[PATCH_LISTING].lower_bound_s(15)
    paced = RATE_LIMITS[PATCH_LISTING].rate * (1 - PACING.fraction)
    assert elapsed == pytest.approx(10 / paced + 2 * PACING.jitter_s)
    assert {c.request.url.params["marketplaceIds"] for c in route.calls} == {MARKET}


async def test_refused_credentials_stop_the_whole_push(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "Atza|a", "Atza|b")
        router.patch(url__startswith=f"{API}/listings/").mock(
            return_value=amazon_error(
                403, "Unauthorized", "Access to requested resource is denied."
            )
        )
        amazon = channel(http, clock, sleep)
        with pytest.raises(ChannelAuthError):
            await amazon.push_stock([stock(1, f"S-{i}", f"k{i}") for i in range(8)])
