"""The mock shop's client-credentials grant: form (or JSON) body, grant type, the configured
credentials, expiring tokens and Shopify's 401 for an expired or unknown token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from connectors.mock.market import MockMarket
from connectors.mock.shopify import ShopifyMockState, start
from domain.clock import ManualClock

TOKEN_PATH = "/admin/oauth/access_token"
API = "/admin/api/2026-04/graphql.json"
CLIENT_ID = "mock-client-id-0001"
CLIENT_SECRET = "mock-client-secret-0002"
STATIC = "shpat_static_token"
SHOP_QUERY = {"query": "{ shop { name currencyCode } }"}
UNAUTHORIZED = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}
FORM = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


@pytest.fixture
def state(clock: ManualClock) -> ShopifyMockState:
    return ShopifyMockState(
        market=MockMarket(),
        access_token=SecretStr(STATIC),
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        token_ttl_s=600,
        clock=clock,
    )


@pytest.fixture
async def shop(state: ShopifyMockState) -> AsyncIterator[httpx.AsyncClient]:
    runner, base_url = await start(state)
    async with httpx.AsyncClient(base_url=base_url) as client:
        yield client
    await runner.cleanup()


async def grant(shop: httpx.AsyncClient, **overrides: str) -> httpx.Response:
    """A form-encoded grant, with fields replaced (or dropped when given as '')."""
    form = {k: v for k, v in {**FORM, **overrides}.items() if v}
    return await shop.post(TOKEN_PATH, data=form)


async def call(shop: httpx.AsyncClient, token: str) -> httpx.Response:
    return await shop.post(API, json=SHOP_QUERY, headers={"X-Shopify-Access-Token": token})


async def test_a_form_grant_issues_an_expiring_token_the_api_accepts(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    answer = await grant(shop)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"access_token", "scope", "expires_in"}
    assert body["access_token"].startswith("shpat_")
    assert body["expires_in"] == 600
    assert "write_inventory" in body["scope"].split(",")
    ok = await call(shop, body["access_token"])
    assert ok.status_code == 200
    assert ok.json()["data"]["shop"]["currencyCode"] == "USD"
    assert state.counters.token_grants == 1


async def test_a_json_grant_is_accepted_as_shopifys_libraries_send_it(
    shop: httpx.AsyncClient,
) -> None:
    answer = await shop.post(TOKEN_PATH, json=FORM)
    assert answer.status_code == 200
    assert answer.json()["access_token"].startswith("shpat_")


async def test_the_token_expires_on_the_mock_clock(
    shop: httpx.AsyncClient, state: ShopifyMockState, clock: ManualClock
) -> None:
    token = (await grant(shop)).json()["access_token"]
    clock.advance(599)
    assert (await call(shop, token)).status_code == 200
    clock.advance(1)
    refused = await call(shop, token)
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    assert state.counters.unauthorized == 1
    fresh = (await grant(shop)).json()["access_token"]
    assert fresh != token
    assert (await call(shop, fresh)).status_code == 200
    assert token not in state.tokens  # expired tokens are dropped at the next grant


async def test_the_control_route_expires_every_issued_token(shop: httpx.AsyncClient) -> None:
    first = (await grant(shop)).json()["access_token"]
    second = (await grant(shop)).json()["access_token"]
    expired = await shop.post("/_mock/tokens/expire")
    assert expired.json() == {"expired": 2}
    for token in (first, second):
        assert (await call(shop, token)).status_code == 401
    assert (await call(shop, STATIC)).status_code == 200  # the static token is not an issued one


async def test_unknown_and_missing_tokens_get_shopifys_401(shop: httpx.AsyncClient) -> None:
    refused = await call(shop, "shpat_never_issued")
    assert (refused.status_code, refused.json()) == (401, UNAUTHORIZED)
    missing = await shop.post(API, json=SHOP_QUERY)
    assert missing.status_code == 401


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_secret": "wrong-secret-000000"}, "invalid_client"),
        ({"client_id": "another-app"}, "invalid_client"),
        ({"client_secret": ""}, "invalid_client"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({"grant_type": ""}, "unsupported_grant_type"),
    ],
)
async def test_wrong_credentials_or_grant_type_are_oauth_errors(
    shop: httpx.AsyncClient, state: ShopifyMockState, overrides: dict[str, str], error: str
) -> None:
    answer = await grant(shop, **overrides)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"] == error
    assert body["error_description"]
    assert CLIENT_SECRET not in answer.text
    assert state.tokens == {}


async def test_a_body_neither_form_nor_json_is_malformed(shop: httpx.AsyncClient) -> None:
    answer = await shop.post(TOKEN_PATH, content=b"grant_type=client_credentials")
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")


async def test_a_shop_without_a_dev_dashboard_app_refuses_the_grant(clock: ManualClock) -> None:
    state = ShopifyMockState(market=MockMarket(), clock=clock)
    runner, base_url = await start(state)
    try:
        async with httpx.AsyncClient(base_url=base_url) as shop:
            answer = await grant(shop)
    finally:
        await runner.cleanup()
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "shop_not_permitted",
        "error_description": "Client credentials cannot be performed on this shop.",
    }


async def test_the_state_snapshot_counts_grants_and_refusals(
    shop: httpx.AsyncClient,
) -> None:
    await grant(shop)
    await grant(shop, client_secret="wrong-secret-000000")
    await call(shop, "shpat_unknown")
    counters = (await shop.get("/_mock/state")).json()["counters"]
    assert (counters["token_grants"], counters["token_refusals"], counters["unauthorized"]) == (
        1,
        1,
        1,
    )
