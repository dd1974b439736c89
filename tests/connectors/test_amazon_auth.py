"""LWA auth: the refresh-token grant on the wire, caching, one refresh in flight, 403 retry."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from pydantic import ValidationError

from domain.clock import ManualClock
from domain.errors import ChannelAuthError
from tests.connectors.amazon_fixtures import (
    API,
    CLIENT_SECRET,
    LWA,
    MARKET,
    REFRESH,
    SELLER,
    TOKEN,
    FakeSleep,
    amazon_error,
    channel,
    settings,
    token_route,
)

SEARCH = f"{API}/listings/2021-08-01/items/{SELLER}"
EMPTY_PAGE = {"numberOfResults": 0, "items": []}


async def test_grant_is_a_form_post_with_the_refresh_token(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        lwa = token_route(router)
        amazon = channel(http, clock, sleep)
        assert await amazon.client.auth.token() == TOKEN
    request = lwa.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == LWA
    assert request.headers["content-type"] == "application/x-www-form-urlencoded;charset=UTF-8"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH],
        "client_id": ["amzn1.application-oa2-client.abc"],
        "client_secret": [CLIENT_SECRET],
    }


async def test_token_cached_until_80_percent_of_its_life(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        lwa = token_route(router, "Atza|one", "Atza|two")
        auth = channel(http, clock, sleep).client.auth
        assert await auth.token() == "Atza|one"
        clock.advance(2879)  # 80% of 3600 s is 2880 s
        assert await auth.token() == "Atza|one"
        clock.advance(1)
        assert await auth.token() == "Atza|two"
    assert lwa.call_count == 2


async def test_one_refresh_in_flight_for_concurrent_callers(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async def slow_grant(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # let every caller reach the lock while this grant is out
        await asyncio.sleep(0)
        return httpx.Response(200, json={"access_token": TOKEN, "expires_in": 3600})

    async with respx.mock() as router, httpx.AsyncClient() as http:
        lwa = router.post(LWA).mock(side_effect=slow_grant)
        auth = channel(http, clock, sleep).client.auth
        tokens = await asyncio.gather(*(auth.token() for _ in range(10)))
    assert tokens == [TOKEN] * 10
    assert lwa.call_count == 1


@pytest.mark.parametrize(("status", "error"), [(400, "invalid_grant"), (401, "invalid_client")])
async def test_refused_grant_is_an_auth_error_without_secrets(
    clock: ManualClock, sleep: FakeSleep, status: int, error: str
) -> None:
    refusal = {
        "error": error,
        # Descriptions can echo grant values: they must not reach the exception.
        "error_description": f"The request has an invalid grant parameter : {REFRESH}",
    }
    async with respx.mock() as router, httpx.AsyncClient() as http:
        lwa = router.post(LWA).mock(return_value=httpx.Response(status, json=refusal))
        amazon = channel(http, clock, sleep)
        with pytest.raises(ChannelAuthError) as caught:
            await amazon.open()
    assert lwa.call_count == 1  # never retried
    assert caught.value.code == error
    text = str(caught.value) + repr(caught.value.args)
    assert REFRESH not in text
    assert CLIENT_SECRET not in text


async def test_lwa_outage_is_retried(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        lwa = router.post(LWA).mock(
            side_effect=[
                httpx.Response(503),
                httpx.Response(200, json={"access_token": TOKEN, "expires_in": 3600}),
            ]
        )
        assert await channel(http, clock, sleep).client.auth.token() == TOKEN
    assert lwa.call_count == 2
    assert len(sleep.waits) == 1


async def test_403_refreshes_the_token_once_and_resends(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        lwa = token_route(router, "Atza|expired", "Atza|fresh")
        search = router.get(SEARCH).mock(
            side_effect=[
                amazon_error(403, "Unauthorized", "Access to requested resource is denied."),
                httpx.Response(200, json=EMPTY_PAGE),
            ]
        )
        assert await channel(http, clock, sleep).fetch_listings() == []
    assert lwa.call_count == 2
    assert [c.request.headers["x-amz-access-token"] for c in search.calls] == [
        "Atza|expired",
        "Atza|fresh",
    ]


async def test_second_403_is_an_auth_error(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        lwa = token_route(router, "Atza|one", "Atza|two")
        search = router.get(SEARCH).mock(
            return_value=amazon_error(
                403, "Unauthorized", "Access to requested resource is denied."
            )
        )
        with pytest.raises(ChannelAuthError) as caught:
            await channel(http, clock, sleep).fetch_listings()
    assert search.call_count == 2
    assert lwa.call_count == 2
    assert caught.value.code == "Unauthorized"
    assert caught.value.status == 403


async def test_open_checks_the_account_with_one_search(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        search = router.get(SEARCH).mock(return_value=httpx.Response(200, json=EMPTY_PAGE))
        await channel(http, clock, sleep).open()
    assert search.calls.last.request.url.params["marketplaceIds"] == MARKET
    assert search.calls.last.request.url.params["pageSize"] == "1"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8101", "https://api.amazon.com/"])
def test_auth_endpoint_must_be_the_full_token_url(url: str) -> None:
    """A base URL (a mock's, say) is refused at config time, not met with a 404 at start-up."""
    with pytest.raises(ValidationError, match="full token URL"):
        settings(auth_endpoint=url)
    assert settings(auth_endpoint=url.rstrip("/") + "/auth/o2/token").auth_endpoint.endswith(
        "/auth/o2/token"
    )
