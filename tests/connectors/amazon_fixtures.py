"""Shared pieces of the Amazon connector tests: settings, a fake sleep, respx routes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from connectors.amazon import AmazonChannel, AmazonSettings
from connectors.journal import FeedJournal
from connectors.retry import RetryPolicy
from domain.clock import ManualClock
from tests.connectors.fakes import FakeSleep as FakeSleep
from tests.connectors.fakes import channel_deps

API = "https://sellingpartnerapi-na.amazon.com"
LWA = "https://api.amazon.com/auth/o2/token"
SELLER = "A3EZFOFNDPFB8R"
MARKET = "ATVPDKIKX0DER"
TOKEN = "Atza|IwEBIA-first"
REFRESH = "Atzr|IwEB-refresh-secret"
CLIENT_SECRET = "s3cr3t-client"
WEBHOOK_SECRET = "whsec-amazon"


def settings(**overrides: Any) -> AmazonSettings:
    """A US seller account with test credentials."""
    data: dict[str, Any] = {
        "kind": "amazon",
        "marketplace_id": MARKET,
        "seller_id": SELLER,
        "credentials": {
            "client_id": "amzn1.application-oa2-client.abc",
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH,
        },
        "webhook_secret": WEBHOOK_SECRET,
        "feed_poll_interval_s": 30,
        "feed_timeout_s": 300,
    }
    data.update(overrides)
    return AmazonSettings.model_validate(data)


def channel(
    http: httpx.AsyncClient,
    clock: ManualClock,
    sleep: FakeSleep,
    journal: FeedJournal | None = None,
    **overrides: Any,
) -> AmazonChannel:
    """An AmazonChannel over ``http`` with a fast-failing retry policy (and ``journal``, if
    given, as its feed journal)."""
    deps = channel_deps(http, clock, sleep, journal)
    return AmazonChannel("amazon-us", settings(**overrides), deps, RetryPolicy(attempts=4))


def token_route(router: respx.MockRouter, *tokens: str, expires_in: int = 3600) -> respx.Route:
    """LWA answering each grant with the next token of ``tokens``."""
    return router.post(LWA).mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "access_token": t,
                    "token_type": "bearer",
                    "expires_in": expires_in,
                    "refresh_token": REFRESH,
                },
            )
            for t in (tokens or (TOKEN,))
        ]
    )


def body(request: httpx.Request) -> Any:
    """The JSON body a request carried (numbers kept as their literal text via Decimal)."""
    from decimal import Decimal

    return json.loads(request.content, parse_float=Decimal)


def amazon_error(status: int, code: str, message: str) -> httpx.Response:
    """An SP-API error response."""
    return httpx.Response(status, json={"errors": [{"code": code, "message": message}]})
