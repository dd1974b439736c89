"""Shopify auth: the client-credentials grant (exact request, caching, refresh on expiry and on a
401, refusals) and the settings' one-auth-mode rule with file, line and key."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from connectors.shopify import queries
from connectors.shopify.auth import ClientCredentialsAuth, StaticTokenAuth
from connectors.shopify.channel import ShopifyChannel
from daemon.config import load_config
from domain.clock import ManualClock
from domain.errors import ChannelAuthError, ConfigError, TransientChannelError
from tests.connectors.shopify_fixtures import (
    LOCATION,
    SHOP,
    TOKEN,
    URL,
    FakeSleep,
    answer,
    gql,
    make_channel,
)

TOKEN_URL = f"https://{SHOP}/admin/oauth/access_token"
CLIENT_ID = "0123456789abcdef0123456789abcdef"
CLIENT_SECRET = "shpss_client_secret_0123456789"
OPEN_AT = gql(queries.OPEN_AT_LOCATION, {"id": LOCATION})
OPEN_OK = {
    "shop": {"name": "Example", "currencyCode": "USD"},
    "location": {"id": LOCATION, "name": "Warehouse", "isActive": True},
}
UNAUTHORIZED = {
    "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
}


def granted(token: str, expires_in: int = 86399) -> httpx.Response:
    """Shopify's answer to a client-credentials grant."""
    scope = "read_products,write_products"
    return httpx.Response(
        200, json={"access_token": token, "scope": scope, "expires_in": expires_in}
    )


@pytest.fixture
def channel(http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep) -> ShopifyChannel:
    """A channel of a Dev Dashboard app: client credentials, no static token."""
    return make_channel(
        http, clock, sleep, access_token=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )


def auth_of(channel: ShopifyChannel) -> ClientCredentialsAuth:
    auth = channel.client.auth
    assert isinstance(auth, ClientCredentialsAuth)
    return auth


async def test_the_token_request_is_the_documented_form_post_and_its_token_is_sent(
    channel: ShopifyChannel,
) -> None:
    with respx.mock(assert_all_called=True) as mock:
        grant = mock.post(TOKEN_URL).mock(return_value=granted("shpat_granted_1"))
        api = mock.post(URL, json=OPEN_AT).mock(return_value=answer(OPEN_OK))
        await channel.open()
    [call] = grant.calls
    request = call.request
    assert (request.method, str(request.url)) == ("POST", TOKEN_URL)
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "X-Shopify-Access-Token" not in request.headers
    assert parse_qs(request.content.decode("ascii"), strict_parsing=True) == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    assert api.calls[0].request.headers["X-Shopify-Access-Token"] == "shpat_granted_1"
    assert CLIENT_SECRET not in repr(channel.client.auth)


async def test_the_token_is_reused_then_renewed_before_it_expires(
    channel: ShopifyChannel, clock: ManualClock
) -> None:
    with respx.mock() as mock:
        grant = mock.post(TOKEN_URL).mock(
            side_effect=[granted("shpat_first", 1000), granted("shpat_second", 1000)]
        )
        api = mock.post(URL).mock(return_value=answer(OPEN_OK))
        await channel.open()
        clock.advance(799)  # still within 80% of its life
        await channel.open()
        assert grant.call_count == 1
        clock.advance(2)  # past 80%: renewed before Shopify would refuse it
        await channel.open()
    assert grant.call_count == 2
    sent = [c.request.headers["X-Shopify-Access-Token"] for c in api.calls]
    assert sent == ["shpat_first", "shpat_first", "shpat_second"]
    assert auth_of(channel).grants == 2


async def test_concurrent_calls_share_one_grant(channel: ShopifyChannel) -> None:
    with respx.mock() as mock:
        grant = mock.post(TOKEN_URL).mock(return_value=granted("shpat_shared"))
        mock.post(URL).mock(return_value=answer(OPEN_OK))
        await asyncio.gather(*(channel.open() for _ in range(5)))
    assert grant.call_count == 1


async def test_a_401_drops_the_token_and_resends_once_with_a_new_one(
    channel: ShopifyChannel,
) -> None:
    with respx.mock() as mock:
        grant = mock.post(TOKEN_URL).mock(
            side_effect=[granted("shpat_revoked"), granted("shpat_fresh")]
        )
        api = mock.post(URL).mock(
            side_effect=[httpx.Response(401, json=UNAUTHORIZED), answer(OPEN_OK)]
        )
        await channel.open()
    assert grant.call_count == 2
    sent = [c.request.headers["X-Shopify-Access-Token"] for c in api.calls]
    assert sent == ["shpat_revoked", "shpat_fresh"]


async def test_a_second_401_is_an_auth_error_after_one_refresh(channel: ShopifyChannel) -> None:
    with respx.mock() as mock:
        grant = mock.post(TOKEN_URL).mock(
            side_effect=[granted("shpat_one"), granted("shpat_two"), granted("shpat_three")]
        )
        api = mock.post(URL).mock(return_value=httpx.Response(401, json=UNAUTHORIZED))
        with pytest.raises(ChannelAuthError) as err:
            await channel.open()
    assert (grant.call_count, api.call_count) == (2, 2)
    assert err.value.status == 401


async def test_a_static_token_refused_is_not_resent(
    http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep
) -> None:
    channel = make_channel(http, clock, sleep)
    assert isinstance(channel.client.auth, StaticTokenAuth)
    with respx.mock() as mock:
        api = mock.post(URL).mock(return_value=httpx.Response(401, json=UNAUTHORIZED))
        with pytest.raises(ChannelAuthError):
            await channel.open()
    assert api.call_count == 1
    assert api.calls[0].request.headers["X-Shopify-Access-Token"] == TOKEN


@pytest.mark.parametrize(
    ("status", "body", "code", "text"),
    [
        (
            400,
            {"error": "invalid_client", "error_description": "Client authentication failed"},
            "invalid_client",
            "Client authentication failed",
        ),
        (
            400,
            {
                "error": "shop_not_permitted",
                "error_description": "Client credentials cannot be performed on this shop.",
            },
            "shop_not_permitted",
            "cannot be performed on this shop",
        ),
        (401, {"errors": "[API] Invalid API key or access token"}, "[API] Invalid", "HTTP 401"),
        (  # a description echoing the secret (never seen) is masked
            400,
            {"error": "invalid_request", "error_description": f"bad value {CLIENT_SECRET}"},
            "invalid_request",
            "bad value **********",
        ),
    ],
)
async def test_a_refused_grant_is_an_auth_error_with_shopifys_message(
    channel: ShopifyChannel, status: int, body: dict[str, str], code: str, text: str
) -> None:
    with respx.mock(assert_all_called=False) as mock:
        grant = mock.post(TOKEN_URL).mock(return_value=httpx.Response(status, json=body))
        api = mock.post(URL)
        with pytest.raises(ChannelAuthError) as err:
            await channel.open()
    assert grant.call_count == 1  # not retried
    assert api.call_count == 0
    assert err.value.status == status
    assert str(err.value.code).startswith(code)
    assert text in str(err.value)
    assert CLIENT_SECRET not in str(err.value)


async def test_throttled_failing_and_timed_out_grants_go_through_the_retry_loop(
    channel: ShopifyChannel, sleep: FakeSleep
) -> None:
    with respx.mock() as mock:
        grant = mock.post(TOKEN_URL).mock(
            side_effect=[
                httpx.Response(429, json={"errors": "Too many requests"}),
                httpx.Response(503, text="Service Unavailable"),
                httpx.ReadTimeout("slow"),
                granted("shpat_at_last"),
            ]
        )
        mock.post(URL).mock(return_value=answer(OPEN_OK))
        await channel.open()
    assert grant.call_count == 4
    assert len(sleep.waits) == 3  # backed off between the attempts, on the injected clock


async def test_an_answer_without_a_token_is_transient_and_one_without_expiry_assumes_a_day(
    channel: ShopifyChannel, clock: ManualClock
) -> None:
    with respx.mock() as mock:
        grant = mock.post(TOKEN_URL).mock(
            side_effect=[
                httpx.Response(200, json={"scope": "read_products"}),
                httpx.Response(200, json={"access_token": "shpat_no_expiry"}),
                granted("shpat_next"),
            ]
        )
        api = mock.post(URL).mock(return_value=answer(OPEN_OK))
        await channel.open()  # the first answer is retried
        clock.advance(86399 * 0.8 - 1)
        await channel.open()
        assert grant.call_count == 2
        clock.advance(2)
        await channel.open()
    assert grant.call_count == 3
    assert api.calls[-1].request.headers["X-Shopify-Access-Token"] == "shpat_next"


async def test_grant_exhausting_its_retries_raises_the_transient_error(
    http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep
) -> None:
    channel = make_channel(
        http, clock, sleep, access_token=None, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    with respx.mock() as mock:
        mock.post(TOKEN_URL).mock(return_value=httpx.Response(500, text="oops"))
        with pytest.raises(TransientChannelError):
            await auth_of(channel).token()


# -- settings ---------------------------------------------------------------------------------

CONFIG = """\
channels:
  shop:
    kind: shopify
    shop: example.myshopify.com
{auth}
pricing:
  rules:
    - strategy: hold
"""
ENV = {"TOKEN": TOKEN, "SECRET": CLIENT_SECRET}


def load(tmp_path: Path, auth: str) -> ConfigError | None:
    path = tmp_path / "repricerd.yaml"
    path.write_text(CONFIG.format(auth=textwrap.indent(auth, "    ")), encoding="utf-8")
    try:
        load_config(path, environ=ENV)
    except ConfigError as err:
        return err
    return None


def test_either_auth_mode_alone_is_valid(tmp_path: Path) -> None:
    assert load(tmp_path, "access_token: ${TOKEN}") is None
    assert load(tmp_path, f"client_id: {CLIENT_ID}\nclient_secret: ${{SECRET}}") is None


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        (
            f"access_token: ${{TOKEN}}\nclient_id: {CLIENT_ID}\nclient_secret: ${{SECRET}}",
            "either access_token or client_id + client_secret, not both",
        ),
        ("currency: USD", "no Shopify credentials"),
        (f"client_id: {CLIENT_ID}", "client_id and client_secret go together"),
        ("client_secret: ${SECRET}", "client_id and client_secret go together"),
    ],
)
def test_both_neither_or_half_a_mode_is_a_config_error_at_the_channel(
    tmp_path: Path, auth: str, message: str
) -> None:
    err = load(tmp_path, auth)
    assert err is not None
    [problem] = err.problems
    assert (problem.line, problem.key) == (2, "channels.shop")
    assert message in problem.message
    assert str(tmp_path / "repricerd.yaml") in str(err)
    assert CLIENT_SECRET not in str(err)


def test_a_literal_client_secret_is_refused(tmp_path: Path) -> None:
    err = load(tmp_path, f"client_id: {CLIENT_ID}\nclient_secret: {CLIENT_SECRET}")
    assert err is not None
    [problem] = err.problems
    assert (problem.line, problem.key) == (6, "channels.shop.client_secret")
    assert "${ENV_VAR}" in problem.message
