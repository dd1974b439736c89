"""``POST /v3/token`` and the gateway every other Walmart route passes through.

The gateway checks ``WM_SVC.NAME`` and ``WM_QOS.CORRELATION_ID`` (400), ``WM_SEC.ACCESS_TOKEN``
(401 ``UNAUTHORIZED.GMP_GATEWAY_API``), the API's token bucket on the state's clock (429), draws
the fault plan, and stamps ``X-Current-Token-Count`` / ``X-Next-Replenishment-Time`` on every
answer. ``WireError`` raised by a handler becomes Walmart's error body.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
from collections.abc import Awaitable, Callable

from aiohttp import web

from connectors.mock.faults import Fault
from connectors.mock.walmart.const import (
    ACCESS_TOKEN_HEADER,
    BAD_HEADER_CODE,
    REPLENISH_HEADER,
    REQUIRED_HEADERS,
    SYSTEM_ERROR_CODE,
    THROTTLED_CODE,
    TOKEN_COUNT_HEADER,
    UNAUTHORIZED_CODE,
)
from connectors.mock.walmart.keys import STATE_KEY
from connectors.mock.walmart.processing import advance_feeds
from connectors.mock.walmart.state import WalmartMockState
from connectors.mock.walmart.wire import WireError, epoch_ms, error_body, json_answer

Handler = Callable[[web.Request, WalmartMockState], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
BucketOf = Callable[[web.Request], str | None]


def rate_headers(state: WalmartMockState, api: str | None) -> dict[str, str]:
    """Tokens left in the API's bucket and the epoch ms at which the next one is added."""
    if api is None or api not in state.rate_limits:
        return {}
    bucket = state.bucket(api)
    available = max(0.0, bucket.available)
    limit = bucket.limit
    now = state.clock.now().timestamp()
    if available >= limit.burst:
        next_at = now
    else:
        next_at = now + (math.floor(available) + 1 - available) / limit.rate
    return {
        TOKEN_COUNT_HEADER: str(math.floor(available)),
        REPLENISH_HEADER: str(epoch_ms(next_at)),
    }


def fail(state: WalmartMockState, error: WireError, api: str | None) -> web.Response:
    """Walmart's error answer for ``error``, with the API's rate headers."""
    headers = rate_headers(state, api)
    if error.status == 429 and headers:
        headers[TOKEN_COUNT_HEADER] = "0"  # a throttled seller has no token left, whatever drew it
    return json_answer(error_body(error, state.error_envelope), error.status, headers)


def unauthorized(info: str = "Unauthorized token or invalid client details") -> WireError:
    """The 401 Walmart's gateway gives for a missing, bad or expired token or client."""
    return WireError(401, UNAUTHORIZED_CODE, "Unauthorized", field="UNAUTHORIZED", info=info)


def throttled() -> WireError:
    """Walmart's 429."""
    return WireError(
        429,
        THROTTLED_CODE,
        "Too Many Requests",
        field="REQUEST_THRESHOLD_VIOLATED",
        info="You have exceeded the request threshold limit for this API.",
        category="REQUEST",
    )


def check_headers(request: web.Request) -> WireError | None:
    """The 400 for a missing ``WM_SVC.NAME`` / ``WM_QOS.CORRELATION_ID``."""
    for name in REQUIRED_HEADERS:
        if not request.headers.get(name, "").strip():
            return WireError(
                400,
                BAD_HEADER_CODE,
                f"{name} set blank or null",
                field=name,
                info="One or more request headers are invalid.",
            )
    return None


def check_token(state: WalmartMockState, request: web.Request) -> WireError | None:
    """The 401 for a missing, unknown or expired ``WM_SEC.ACCESS_TOKEN`` (Bearer is ignored)."""
    presented = request.headers.get(ACCESS_TOKEN_HEADER, "")
    expiry = state.tokens.get(presented) if presented else None
    if expiry is None:
        return unauthorized()
    if state.clock.monotonic() >= expiry:
        return unauthorized("Access token is expired")
    return None


async def take(state: WalmartMockState, api: str) -> WireError | None:
    """Spend one token of ``api``'s bucket, or the 429 when it is empty."""
    if not state.enforce_rate_limits:
        return None
    bucket = state.bucket(api)
    if bucket.wait_time() > 0:
        state.throttled[api] += 1
        return throttled()
    await bucket.acquire()  # a token is there: this never waits
    return None


def walmart(operation: str, bucket_of: BucketOf | None = None) -> Callable[[Handler], Route]:
    """Wrap a handler with the gateway: headers, token, rate limit, faults, error mapping."""

    def wrap(handler: Handler) -> Route:
        async def route(request: web.Request) -> web.StreamResponse:
            state = request.app[STATE_KEY]
            state.calls[operation] += 1
            api = bucket_of(request) if bucket_of is not None else operation
            problem = check_headers(request) or check_token(state, request)
            if problem is None and api is not None:
                problem = await take(state, api)
            if problem is not None:
                return fail(state, problem, api)
            fault = state.faults.draw()
            if fault is Fault.THROTTLE:
                state.throttled[api or operation] += 1
                return fail(state, throttled(), api)
            if fault is Fault.ERROR:
                error = WireError(
                    500, SYSTEM_ERROR_CODE, "Internal Server Error", category="SYSTEM"
                )
                return fail(state, error, api)
            if fault is Fault.TIMEOUT:
                await state.sleep(state.faults.hang_s)
            advance_feeds(request.app)  # feeds move on lazily with every call
            try:
                response = await handler(request, state)
            except WireError as exc:
                return fail(state, exc, api)
            response.headers.update(rate_headers(state, api))
            return response

        route.__name__ = operation
        return route

    return wrap


def _basic_client(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


async def token(request: web.Request) -> web.Response:
    """``POST /v3/token``: Basic client id/secret, form ``grant_type=client_credentials``."""
    state = request.app[STATE_KEY]
    state.calls["getToken"] += 1
    problem = check_headers(request)
    if problem is None:
        problem = await take(state, "getToken")
    if problem is not None:
        return fail(state, problem, "getToken")
    client = _basic_client(request)
    client_ok = client is not None and (
        hmac.compare_digest(client[0], state.client_id)
        and hmac.compare_digest(client[1], state.client_secret)
    )
    if not client_ok:
        return fail(state, unauthorized(), "getToken")
    if request.content_type != "application/x-www-form-urlencoded":
        error = WireError(
            400,
            "INVALID_REQUEST_CONTENT.GMP_GATEWAY_API",
            "Content-Type must be application/x-www-form-urlencoded",
            field="Content-Type",
        )
        return fail(state, error, "getToken")
    form = await request.post()
    grant = str(form.get("grant_type", ""))
    if grant != "client_credentials":
        # Sellers' own keys only know client_credentials; the other grants are for Solution
        # Providers with an authorization code (not modelled).
        error = WireError(
            400,
            "INVALID_REQUEST_CONTENT.GMP_GATEWAY_API",
            f"grant_type {grant or '(missing)'} is not supported for this client",
            field="grant_type",
        )
        return fail(state, error, "getToken")
    body = {
        "access_token": state.issue_token(),
        "token_type": "Bearer",
        "expires_in": state.token_ttl_s,
    }
    return json_answer(body, headers=rate_headers(state, "getToken"))


@walmart("getTokenDetail")
async def token_detail(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/token/detail``: the presented token's validity and scopes."""
    presented = request.headers[ACCESS_TOKEN_HEADER]
    expiry = state.tokens[presented]
    expires = state.clock.now().timestamp() + (expiry - state.clock.monotonic())
    full = "full_access"
    body = {
        "scopes": {
            "item": full,
            "price": full,
            "inventory": full,
            "feeds": full,
            "orders": full,
            "reports": "view_only",
        },
        "expire_at": str(epoch_ms(expires)),
        "issued_at": str(epoch_ms(expires - state.token_ttl_s)),
        "is_valid": True,
        "is_channel_match": True,
    }
    return json_answer(body)
