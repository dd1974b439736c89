"""Walmart tokens: the client-credentials grant on the wire, caching, one grant in flight, 401s."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
import respx

from connectors import CHANNELS
from connectors.base import ChannelDeps
from connectors.walmart import WalmartSettings
from daemon.config import load_config
from domain.clock import ManualClock
from domain.errors import ChannelAuthError, ConfigError
from tests.connectors.walmart_fixtures import (
    API,
    BASIC,
    CLIENT_SECRET,
    TOKEN,
    TOKEN_URL,
    FakeSleep,
    assert_wm_headers,
    channel,
    settings,
    token_route,
    walmart_error,
)

ITEMS = f"{API}/v3/items"
EMPTY = {"ItemResponse": [], "totalItems": 0}


async def test_grant_is_basic_auth_and_a_client_credentials_form(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        route = token_route(router)
        walmart = channel(http, clock, sleep)
        assert await walmart.client.auth.token() == TOKEN
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == TOKEN_URL
    assert request.headers["Authorization"] == BASIC
    assert request.headers["WM_SVC.NAME"] == "Walmart Marketplace"
    uuid.UUID(request.headers["WM_QOS.CORRELATION_ID"])
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert request.headers["Accept"] == "application/json"
    assert request.content == b"grant_type=client_credentials"


def test_auth_endpoint_follows_the_endpoint() -> None:
    assert settings().auth_endpoint == TOKEN_URL
    sandbox = settings(endpoint="https://sandbox.walmartapis.com/")
    assert sandbox.auth_endpoint == "https://sandbox.walmartapis.com/v3/token"
    assert settings(auth_endpoint="http://mock:9/tok").auth_endpoint == "http://mock:9/tok"


async def test_token_cached_for_80_percent_of_its_15_minutes(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        route = token_route(router, "tok-one", "tok-two")
        auth = channel(http, clock, sleep).client.auth
        assert await auth.token() == "tok-one"
        clock.advance(719)
        assert await auth.token() == "tok-one"
        assert route.call_count == 1
        clock.advance(1)  # 720 s = 80% of 900 s
        assert await auth.token() == "tok-two"
    assert route.call_count == 2


async def test_one_grant_in_flight_for_concurrent_callers(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        route = token_route(router, "tok-one", "tok-two")
        auth = channel(http, clock, sleep).client.auth
        tokens = await asyncio.gather(*(auth.token() for _ in range(8)))
    assert tokens == ["tok-one"] * 8
    assert route.call_count == 1
    assert auth.grants == 1


async def test_refused_credentials_raise_auth_error_without_secrets(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        router.post(TOKEN_URL).mock(
            return_value=walmart_error(401, "UNAUTHORIZED.GMP_GATEWAY_API", "Unauthorized")
        )
        walmart = channel(http, clock, sleep)
        with pytest.raises(ChannelAuthError) as caught:
            await walmart.open()
    error = caught.value
    assert error.code == "UNAUTHORIZED.GMP_GATEWAY_API"
    assert error.status == 401
    assert CLIENT_SECRET not in str(error)
    assert BASIC.split()[1] not in str(error)


async def test_grant_5xx_is_retried(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        route = router.post(TOKEN_URL).mock(
            side_effect=[
                httpx.Response(503),
                httpx.Response(200, json={"access_token": TOKEN, "expires_in": 900}),
            ]
        )
        assert await channel(http, clock, sleep).client.auth.token() == TOKEN
    assert route.call_count == 2
    assert len(sleep.waits) == 1


async def test_expired_token_is_refreshed_and_the_call_resent_once(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        grants = token_route(router, "tok-old", "tok-new")
        items = router.get(ITEMS).mock(
            side_effect=[
                walmart_error(401, "UNAUTHORIZED.GMP_GATEWAY_API", "Unauthorized"),
                httpx.Response(200, json=EMPTY),
            ]
        )
        # open() also reads the hour's feeds (the feed budget survives a restart).
        router.get(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(200, json={"totalResults": 0, "results": {"feed": []}})
        )
        await channel(http, clock, sleep).open()
    assert grants.call_count == 2
    assert_wm_headers(items.calls[0].request, "tok-old")
    assert_wm_headers(items.calls[1].request, "tok-new")
    first = items.calls[0].request.headers["WM_QOS.CORRELATION_ID"]
    assert first != items.calls[1].request.headers["WM_QOS.CORRELATION_ID"]


async def test_second_401_is_an_auth_error(clock: ManualClock, sleep: FakeSleep) -> None:
    refused = walmart_error(401, "UNAUTHORIZED.GMP_GATEWAY_API", "Unauthorized")
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "tok-old", "tok-new")
        items = router.get(ITEMS).mock(side_effect=[refused, refused])
        with pytest.raises(ChannelAuthError) as caught:
            await channel(http, clock, sleep).open()
    assert caught.value.code == "UNAUTHORIZED.GMP_GATEWAY_API"
    assert items.call_count == 2


def test_walmart_channels_load_from_yaml_with_env_secrets(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "repricerd.yaml"
    path.write_text(
        "channels:\n"
        "  walmart-us:\n"
        "    kind: walmart\n"
        "    client_id: abc\n"
        "    client_secret: ${WM_SECRET}\n"
        "    webhook_secret: ${WM_HOOK}\n"
        "    seller_id: '10001234567'\n"
        "    single_max_batch: 25\n"
        "pricing:\n"
        "  rules:\n"
        "    - name: default\n"
        "      strategy: cost_plus\n"
        "      params: {margin_pct: 30}\n"
    )
    loaded = load_config(path, {"WM_SECRET": "s3cr3t-long", "WM_HOOK": "h00k-long"})
    walmart = loaded.settings.channels["walmart-us"]
    assert isinstance(walmart, WalmartSettings)
    assert walmart.client_secret.get_secret_value() == "s3cr3t-long"
    assert walmart.auth_endpoint == TOKEN_URL
    built = CHANNELS["walmart"]("walmart-us", walmart, ChannelDeps(httpx.AsyncClient(), clock))
    assert built.capabilities.max_price_batch == 10_000
    assert built.capabilities.own_seller_id == "10001234567"
    assert not built.capabilities.sends_floor_and_ceiling
    literal = tmp_path / "literal.yaml"
    literal.write_text(path.read_text().replace("${WM_SECRET}", "plain"))
    with pytest.raises(ConfigError, match="ENV"):
        load_config(literal, {"WM_HOOK": "h00k-long"})


def test_settings_refuse_inconsistent_combinations() -> None:
    with pytest.raises(ValueError, match="needs ship_node"):
        settings(inventory_feed_type="MP_INVENTORY")
    with pytest.raises(ValueError, match="go together"):
        settings(webhook_basic_password=None)


async def test_403_missing_scope_is_an_auth_error_at_open(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        grants = token_route(router)
        items = router.get(url__startswith=ITEMS).mock(
            return_value=walmart_error(403, "FORBIDDEN.GMP_GATEWAY_API", "Forbidden")
        )
        with pytest.raises(ChannelAuthError, match=r"FORBIDDEN\.GMP_GATEWAY_API"):
            await channel(http, clock, sleep).open()
    assert grants.call_count == 1  # a 403 is not an expired token: no refresh
    assert str(items.calls.last.request.url) == f"{ITEMS}?nextCursor=%2A&limit=1"
