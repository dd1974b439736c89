"""Shared pieces of the Walmart connector tests: settings, a fake sleep, respx routes, bodies."""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpx
import respx

from connectors.journal import FeedJournal
from connectors.retry import RetryPolicy
from connectors.walmart import WalmartChannel, WalmartSettings
from domain.clock import ManualClock
from tests.connectors.fakes import FakeSleep, channel_deps

__all__ = ["FakeSleep"]

API = "https://marketplace.walmartapis.com"
TOKEN_URL = f"{API}/v3/token"
CLIENT_ID = "c7291c6b-7290-4d1d-a0f6-client"
CLIENT_SECRET = "s3cr3t-walmart-client"
TOKEN = "eyJraWQiOi-first"
SELLER = "10001234567"
WEBHOOK_SECRET = "whsec-walmart"
BASIC_USER = "hook-user"
BASIC_PASSWORD = "hook-pass:word"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def settings(**overrides: Any) -> WalmartSettings:
    """A US seller account with test credentials."""
    data: dict[str, Any] = {
        "kind": "walmart",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "seller_id": SELLER,
        "webhook_secret": WEBHOOK_SECRET,
        "webhook_basic_user": BASIC_USER,
        "webhook_basic_password": BASIC_PASSWORD,
        "feed_poll_interval_s": 60,
        "feed_timeout_s": 600,
    }
    data.update(overrides)
    return WalmartSettings.model_validate(data)


def channel(
    http: httpx.AsyncClient,
    clock: ManualClock,
    sleep: FakeSleep,
    journal: FeedJournal | None = None,
    **overrides: Any,
) -> WalmartChannel:
    """A WalmartChannel over ``http`` with a fast-failing retry policy (and ``journal``, if
    given, as its feed journal)."""
    deps = channel_deps(http, clock, sleep, journal)
    return WalmartChannel("walmart-us", settings(**overrides), deps, RetryPolicy(attempts=4))


def token_route(router: respx.MockRouter, *tokens: str, expires_in: int = 900) -> respx.Route:
    """/v3/token answering each grant with the next token of ``tokens``."""
    return router.post(TOKEN_URL).mock(
        side_effect=[
            httpx.Response(
                200, json={"access_token": t, "token_type": "Bearer", "expires_in": expires_in}
            )
            for t in (tokens or (TOKEN,))
        ]
    )


def body(request: httpx.Request) -> Any:
    """The JSON body a request carried (fractional numbers kept exact as Decimal)."""
    return json.loads(request.content, parse_float=Decimal)


def feed_file(request: httpx.Request) -> tuple[str, str | None, Any]:
    """(name of the part, its filename, its JSON) of a multipart feed upload."""
    raw = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.content
    message = BytesParser(policy=HTTP).parsebytes(raw)
    parts = list(message.iter_parts())
    assert len(parts) == 1
    part = parts[0]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return (
        str(part.get_param("name", header="content-disposition")),
        part.get_filename(),
        json.loads(payload, parse_float=Decimal),
    )


def walmart_error(status: int, code: str, description: str, **headers: str) -> httpx.Response:
    """A Walmart GatewayError response."""
    error = {
        "code": code,
        "field": "sku",
        "description": description,
        "info": "Request invalid.",
        "severity": "ERROR",
        "category": "DATA",
        "causes": [],
        "errorIdentifiers": {},
    }
    return httpx.Response(status, json={"errors": [error]}, headers=headers)


def assert_wm_headers(request: httpx.Request, token: str = TOKEN) -> None:
    """Every API call carries the token, the service name, a fresh correlation id and JSON."""
    assert request.headers["WM_SEC.ACCESS_TOKEN"] == token
    assert request.headers["WM_SVC.NAME"] == "Walmart Marketplace"
    uuid.UUID(request.headers["WM_QOS.CORRELATION_ID"])
    assert request.headers["Accept"] == "application/json"
    assert "authorization" not in request.headers
