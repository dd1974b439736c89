"""eBay OAuth: both grants on the wire, caching to 80% of life, one grant in flight, 401s."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from domain.clock import ManualClock
from domain.errors import ChannelAuthError
from tests.connectors.ebay_fixtures import (
    APP_TOKEN,
    BASIC,
    CLIENT_SECRET,
    ITEMS,
    PUBLIC_SCOPE,
    REFRESH,
    TOKEN_URL,
    USER_TOKEN,
    FakeSleep,
    assert_request,
    channel,
    token_route,
    user_headers,
)

PAGE = {"total": 0, "size": 0, "limit": 1, "inventoryItems": []}


async def test_user_grant_is_a_basic_auth_form_with_refresh_token_and_scopes(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        grant = token_route(router)
        ebay = channel(http, clock, sleep)
        assert await ebay.client.auth.user.token() == USER_TOKEN
    request = grant.calls.last.request
    assert_request(request, "POST", TOKEN_URL)
    assert request.headers["authorization"] == BASIC
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH],
        "scope": ["https://api.ebay.com/oauth/api_scope/sell.inventory"],
    }


async def test_several_scopes_are_space_separated(clock: ManualClock, sleep: FakeSleep) -> None:
    scopes = [
        "https://api.ebay.com/oauth/api_scope/sell.inventory",
        "https://api.ebay.com/oauth/api_scope/sell.fulfillment",
    ]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        grant = router.post(TOKEN_URL).mock(
            return_value=httpx.Response(200, json={"access_token": "t", "expires_in": 7200})
        )
        await channel(http, clock, sleep, scopes=scopes).client.auth.user.token()
    assert parse_qs(grant.calls.last.request.content.decode())["scope"] == [" ".join(scopes)]


async def test_application_grant_uses_client_credentials_and_the_public_scope(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        grant = token_route(router, grant="client_credentials")
        ebay = channel(http, clock, sleep)
        assert await ebay.client.auth.application.token() == APP_TOKEN
    assert parse_qs(grant.calls.last.request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": [PUBLIC_SCOPE],
    }


async def test_token_cached_until_80_percent_of_its_life(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        grant = token_route(router, "one", "two")
        auth = channel(http, clock, sleep).client.auth.user
        assert await auth.token() == "one"
        clock.advance(5759)  # 80% of 7200 s is 5760 s
        assert await auth.token() == "one"
        clock.advance(1)
        assert await auth.token() == "two"
    assert grant.call_count == 2


async def test_one_grant_in_flight_for_concurrent_callers(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return httpx.Response(200, json={"access_token": USER_TOKEN, "expires_in": 7200})

    async with respx.mock() as router, httpx.AsyncClient() as http:
        grant = router.post(TOKEN_URL).mock(side_effect=slow)
        auth = channel(http, clock, sleep).client.auth.user
        tokens = await asyncio.gather(*(auth.token() for _ in range(8)))
    assert tokens == [USER_TOKEN] * 8
    assert grant.call_count == 1


async def test_refused_grant_is_an_auth_error_without_secrets(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    refusal = {
        "error": "invalid_grant",
        "error_description": f"the provided refresh token {REFRESH} is invalid",
    }
    async with respx.mock() as router, httpx.AsyncClient() as http:
        grant = router.post(TOKEN_URL).mock(return_value=httpx.Response(400, json=refusal))
        ebay = channel(http, clock, sleep)
        with pytest.raises(ChannelAuthError) as caught:
            await ebay.open()
    assert grant.call_count == 1  # not retried
    assert caught.value.code == "invalid_grant"
    text = str(caught.value) + repr(caught.value.args)
    assert REFRESH not in text
    assert CLIENT_SECRET not in text
    assert CLIENT_SECRET not in repr(ebay.client.auth) + repr(ebay.settings)


async def test_grant_5xx_is_retried(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        grant = router.post(TOKEN_URL).mock(
            side_effect=[
                httpx.Response(503),
                httpx.Response(200, json={"access_token": "ok", "expires_in": 7200}),
            ]
        )
        assert await channel(http, clock, sleep).client.auth.user.token() == "ok"
    assert grant.call_count == 2
    assert len(sleep.waits) == 1


async def test_api_401_refreshes_the_token_and_resends_once(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        grant = token_route(router, "stale", "fresh")
        items = router.get(ITEMS).mock(
            side_effect=[
                httpx.Response(
                    401, json={"errors": [{"errorId": 1001, "message": "Invalid access token"}]}
                ),
                httpx.Response(200, json=PAGE),
            ]
        )
        await channel(http, clock, sleep).open()
    assert grant.call_count == 2
    first, second = (call.request for call in items.calls)
    assert first.headers["authorization"] == "Bearer stale"
    assert_request(second, "GET", ITEMS, {"limit": "1", "offset": "0"}, user_headers("fresh"))


async def test_second_401_is_an_auth_error(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "token-one-abc", "token-two-def")
        items = router.get(ITEMS).mock(return_value=httpx.Response(401, json={"errors": []}))
        with pytest.raises(ChannelAuthError) as caught:
            await channel(http, clock, sleep).open()
    assert items.call_count == 2
    assert "token-one" not in str(caught.value)
    assert "token-two" not in str(caught.value)


def test_ebay_is_a_registered_channel_kind() -> None:
    from pydantic import TypeAdapter

    from connectors import CHANNELS
    from connectors.ebay import EbayChannel, EbaySettings
    from daemon.settings import ChannelSettings

    parsed = TypeAdapter(ChannelSettings).validate_python(
        {"kind": "ebay", "client_id": "id", "client_secret": "s", "refresh_token": "r"}
    )
    assert isinstance(parsed, EbaySettings)
    assert parsed.endpoint == "https://api.ebay.com"
    assert parsed.auth_endpoint == "https://api.ebay.com/identity/v1/oauth2/token"
    assert parsed.marketplace_id == "EBAY_US"
    assert parsed.daily_revision_limit == 250
    assert parsed.daily_call_quotas["buy.browse"] == 5000
    assert CHANNELS["ebay"] is EbayChannel
