"""Login with Amazon (``POST /auth/o2/token``) and the gate every SP-API route passes through.

The gate checks ``x-amz-access-token``, enforces the operation's usage plan on the state's clock
(429 ``QuotaExceeded``, no ``Retry-After``), draws the fault plan, and turns ``WireError`` into
Amazon's error body. SigV4 ``Authorization`` headers are accepted and ignored, as Amazon does.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from connectors.mock.amazon.const import (
    ACCESS_TOKEN_HEADER,
    DENIED_MESSAGE,
    ERROR_TYPE_HEADER,
    EXPIRED_TOKEN_DETAILS,
    INTERNAL_MESSAGE,
    INVALID_TOKEN_DETAILS,
    QUOTA_MESSAGE,
)
from connectors.mock.amazon.feedproc import advance_feeds
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.amazon.wire import WireError, answer, error_answer
from connectors.mock.faults import Fault

STATE_KEY = web.AppKey("amazon_mock_state", AmazonMockState)
SESSION_KEY = web.AppKey("amazon_mock_http", aiohttp.ClientSession)  # pushes notifications
Handler = Callable[[web.Request, AmazonMockState], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


async def token(request: web.Request) -> web.Response:
    """LWA token endpoint: ``refresh_token`` (seller) and ``client_credentials`` (grantless)."""
    state = request.app[STATE_KEY]
    state.calls["lwaToken"] += 1
    if request.content_type != "application/x-www-form-urlencoded":
        return _oauth_error(400, "invalid_request", "Content-Type must be form-urlencoded")
    form = await request.post()
    fields = {key: str(value) for key, value in form.items()}
    grant = fields.get("grant_type", "")
    if not grant:
        return _oauth_error(400, "invalid_request", "The request is missing grant_type")
    if grant not in ("refresh_token", "client_credentials"):
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
    client_ok = hmac.compare_digest(fields.get("client_id", ""), state.client_id) and (
        hmac.compare_digest(fields.get("client_secret", ""), state.client_secret)
    )
    if not client_ok:
        return _oauth_error(401, "invalid_client", "Client authentication failed")
    if grant == "client_credentials":
        if not fields.get("scope", "").startswith("sellingpartnerapi::"):
            return _oauth_error(400, "invalid_scope", "The requested scope is invalid")
        access = state.issue_token(grantless=True)
        body = {"access_token": access, "token_type": "bearer", "expires_in": state.token_ttl_s}
        return web.json_response(body)
    refresh = fields.get("refresh_token", "")
    if not refresh:
        return _oauth_error(400, "invalid_request", "The request is missing refresh_token")
    if not hmac.compare_digest(refresh, state.refresh_token):
        return _oauth_error(
            400,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        )
    access = state.issue_token()
    return web.json_response(
        {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": state.token_ttl_s,
            "refresh_token": state.refresh_token,
        }
    )


def _denied(code: str, details: str) -> web.Response:
    return error_answer(
        403, code, DENIED_MESSAGE, details, headers={ERROR_TYPE_HEADER: "AccessDeniedException"}
    )


def check_token(state: AmazonMockState, request: web.Request) -> web.Response | None:
    """The 403 for a missing, unknown, grantless or expired token; None if the token is live."""
    presented = request.headers.get(ACCESS_TOKEN_HEADER)
    if not presented:
        return _denied("Unauthorized", "")
    expiry = state.tokens.get(presented)
    if expiry is None:
        return _denied("Unauthorized", INVALID_TOKEN_DETAILS)
    if state.clock.monotonic() >= expiry:
        return _denied(state.expired_token_code, EXPIRED_TOKEN_DETAILS)
    return None


def throttled_answer() -> web.Response:
    """Amazon's 429: ``QuotaExceeded``, no ``Retry-After``, no rate-limit header."""
    return error_answer(429, "QuotaExceeded", QUOTA_MESSAGE)


def sp_api(operation: str) -> Callable[[Handler], Route]:
    """Wrap a handler with token check, usage plan, fault plan and error mapping."""

    def wrap(handler: Handler) -> Route:
        async def route(request: web.Request) -> web.StreamResponse:
            state = request.app[STATE_KEY]
            state.calls[operation] += 1
            rate = state.rate_limits[operation]
            denied = check_token(state, request)
            if denied is not None:
                return denied
            if state.enforce_rate_limits:
                bucket = state.bucket(operation)
                if bucket.wait_time() > 0:
                    state.throttled[operation] += 1
                    return throttled_answer()
                await bucket.acquire()  # a token is there: this never waits
            wanted = state.fault_operations
            fault = state.faults.draw() if wanted is None or operation in wanted else Fault.NONE
            if fault is Fault.THROTTLE:
                state.throttled[operation] += 1
                return throttled_answer()
            if fault is Fault.ERROR:
                state.failed[operation] += 1
                return error_answer(500, "InternalFailure", INTERNAL_MESSAGE)
            if fault is Fault.TIMEOUT:
                await state.sleep(state.faults.hang_s)
            advance_feeds(state)
            try:
                return await handler(request, state)
            except WireError as exc:
                return error_answer(exc.status, exc.code, exc.message, exc.details, rate=rate)

        route.__name__ = operation
        return route

    return wrap


def ok(body: object, state: AmazonMockState, operation: str, status: int = 200) -> web.Response:
    """A success answer carrying the operation's ``x-amzn-RateLimit-Limit``."""
    return answer(body, status, rate=state.rate_limits[operation])
