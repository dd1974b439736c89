"""Login with Amazon (``POST /auth/o2/token``) and the gate every SP-API route passes through.

The gate checks ``x-amz-access-token``, enforces the operation's usage plan on the state's clock
(429 ``QuotaExceeded``, no ``Retry-After``), draws the fault plan, checks the seller, query and
body against the model, and turns ``WireError`` into Amazon's error body. SigV4
``Authorization`` headers are accepted and ignored, as Amazon does.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from connectors.mock.amazon.state import STATE_KEY, AmazonMockState
from connectors.mock.amazon.wire import (
    INTERNAL_MESSAGE,
    WireError,
    answer,
    check,
    error_answer,
    invalid_input,
    json_body,
    openapi_validator,
    operations,
)
from connectors.mock.faults import Fault
from connectors.mock.kit.control import Handler

DENIED = "Access to requested resource is denied."
ROUTES: list[tuple[str, str, Handler]] = []  # (method, path, route) of every SP-API operation


@dataclass(frozen=True)
class Call:
    """One SP-API request, as a handler sees it: the state, typed query and validated body."""

    request: web.Request
    state: AmazonMockState
    query: dict[str, Any]
    body: Any

    def path(self, name: str) -> str:
        """A path parameter."""
        return self.request.match_info[name]


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


async def token(request: web.Request) -> web.Response:
    """LWA token endpoint: ``refresh_token`` (seller) and ``client_credentials`` (grantless)."""
    state = request.app[STATE_KEY]
    state.calls["lwaToken"] += 1
    if request.content_type != "application/x-www-form-urlencoded":
        return _oauth_error(400, "invalid_request", "Content-Type must be form-urlencoded")
    fields = {key: str(value) for key, value in (await request.post()).items()}
    grant = fields.get("grant_type", "")
    grantless = grant == "client_credentials"
    if not grant:
        return _oauth_error(400, "invalid_request", "The request is missing grant_type")
    if grant not in ("refresh_token", "client_credentials"):
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
    if not (
        hmac.compare_digest(fields.get("client_id", ""), state.client_id)
        and hmac.compare_digest(fields.get("client_secret", ""), state.client_secret)
    ):
        return _oauth_error(401, "invalid_client", "Client authentication failed")
    if grantless and not fields.get("scope", "").startswith("sellingpartnerapi::"):
        return _oauth_error(400, "invalid_scope", "The requested scope is invalid")
    if not grantless and not fields.get("refresh_token"):
        return _oauth_error(400, "invalid_request", "The request is missing refresh_token")
    if not grantless and not hmac.compare_digest(fields["refresh_token"], state.refresh_token):
        message = "The request has an invalid grant parameter : refresh_token"
        return _oauth_error(400, "invalid_grant", message)
    body = {
        "access_token": state.issue_token(grantless=grantless),
        "token_type": "bearer",
        "expires_in": state.token_ttl_s,
    }
    return web.json_response(body if grantless else {**body, "refresh_token": state.refresh_token})


async def _gate(state: AmazonMockState, request: web.Request, operation: str) -> WireError | None:
    """The 403 of a missing, unknown, grantless or expired token, or the 429/500 of the plans."""
    presented = request.headers.get("x-amz-access-token", "")
    expiry = state.tokens.get(presented)
    if expiry is None:
        details = "The access token you provided is revoked, malformed or invalid."
        return WireError(403, "Unauthorized", DENIED, details if presented else "")
    if state.clock.monotonic() >= expiry:
        details = "The access token you provided has expired."
        return WireError(403, state.expired_token_code, DENIED, details)
    if state.enforce_rate_limits and state.bucket(operation).wait_time() > 0:
        fault = Fault.THROTTLE
    else:
        if state.enforce_rate_limits:
            await state.bucket(operation).acquire()  # a token is there: this never waits
        wanted = state.fault_operations
        fault = state.faults.draw() if wanted is None or operation in wanted else Fault.NONE
    if fault is Fault.THROTTLE:
        state.throttled[operation] += 1
        return WireError(
            429, "QuotaExceeded", "You exceeded your quota for the requested resource."
        )
    if fault is Fault.ERROR:
        state.failed[operation] += 1
        return WireError(500, "InternalFailure", INTERNAL_MESSAGE)
    if fault is Fault.TIMEOUT:
        await state.sleep(state.faults.hang_s)
    return None


def sp_api(operation: str, status: int = 200) -> Callable[[Callable[[Call], Any]], Any]:
    """Register a handler of ``Call`` → body for the model's ``operation`` (route, gate, checks)."""
    op = operations()[operation]

    def register(handler: Callable[[Call], Any]) -> Any:
        async def route(request: web.Request) -> web.StreamResponse:
            state = request.app[STATE_KEY]
            state.calls[operation] += 1
            rate = state.rate_limits[operation]
            refused = await _gate(state, request, operation)
            if refused is not None:
                headers = {"x-amzn-ErrorType": "AccessDeniedException"}
                return error_answer(refused, None, **(headers if refused.status == 403 else {}))
            # Imported here: the feeds module registers its routes through this gate.
            from connectors.mock.amazon.feeds import advance_feeds

            advance_feeds(state)
            try:
                if request.match_info.get("sellerId", state.seller_id) != state.seller_id:
                    # The token was issued for one selling partner; another is not ours to read.
                    raise WireError(403, "Unauthorized", DENIED)
                query = op.query(request)
                unknown = [m for m in query.get("marketplaceIds", []) if m != state.marketplace_id]
                if unknown:
                    raise invalid_input(f"Invalid marketplaceIds: {','.join(unknown)}.")
                body = None
                if op.body is not None:
                    body = await json_body(request)
                    check(openapi_validator(op.spec, op.body), body)
                return answer(handler(Call(request, state, query, body)), status, rate)
            except WireError as exc:
                return error_answer(exc, rate)

        ROUTES.append((op.method, op.path, route))
        return handler

    return register
