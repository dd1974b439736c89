"""eBay OAuth (``POST /identity/v1/oauth2/token``) and the gate every API route passes through.

The gate checks ``Authorization: Bearer``, the token's type (user / application) and scopes,
charges the API's daily quota and short-term bucket on the state's clock (429, errorId 2001),
draws the fault plan, and turns ``WireError`` into eBay's error body.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from connectors.mock.ebay.const import (
    ACCESS_DENIED_LONG,
    ACCESS_DOMAIN,
    APPLICATION_SCOPES,
    BROWSE_API,
    BROWSE_DOMAIN,
    ERR_ACCESS_DENIED,
    ERR_BROWSE_SYSTEM,
    ERR_FULFILLMENT_SYSTEM,
    ERR_INVALID_TOKEN,
    ERR_MISSING_TOKEN,
    ERR_NOTIFICATION_SYSTEM,
    ERR_SYSTEM,
    ERR_TOO_MANY_REQUESTS,
    FULFILLMENT_API,
    FULFILLMENT_DOMAIN,
    INVALID_TOKEN_LONG,
    INVALID_TOKEN_MESSAGE,
    INVENTORY_DOMAIN,
    MISSING_TOKEN_LONG,
    NOTIFICATION_API,
    NOTIFICATION_DOMAIN,
    OAUTH_DOMAIN,
    TOO_MANY_LONG,
    TOO_MANY_MESSAGE,
)
from connectors.mock.ebay.state import APPLICATION, USER, EbayMockState
from connectors.mock.ebay.wire import WireError, answer, error, errors_answer, oauth_error
from connectors.mock.faults import Fault

STATE_KEY = web.AppKey("ebay_mock_state", EbayMockState)
SESSION_KEY = web.AppKey("ebay_mock_http", aiohttp.ClientSession)  # pushes notifications
Handler = Callable[[web.Request, EbayMockState], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]

INVALID_CLIENT = "client authentication failed"
INVALID_SCOPE = (
    "The requested scope is invalid, unknown, malformed, or exceeds the scope granted to the client"
)
INVALID_REFRESH = (
    "the provided authorization refresh token is invalid or was issued to another client"
)
INVALID_CODE = "the provided authorization grant code is invalid or was issued to another client"
UNSUPPORTED_GRANT = "grant type in request is not supported by the authorization server"
MALFORMED = "request is missing a required parameter or malformed."


def _client_ok(state: EbayMockState, header: str) -> bool:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    client_id, sep, secret = decoded.partition(":")
    return bool(sep) and (
        hmac.compare_digest(client_id.encode(), state.client_id.encode())
        & hmac.compare_digest(secret.encode(), state.client_secret.get_secret_value().encode())
    )


def _scopes(raw: str | None) -> frozenset[str] | None:
    return None if raw is None else frozenset(raw.split())


async def token(request: web.Request) -> web.Response:
    """Token endpoint: ``client_credentials`` (application) and ``refresh_token`` (user)."""
    state = request.app[STATE_KEY]
    state.calls["identity"] += 1
    if not _client_ok(state, request.headers.get("Authorization", "")):
        return oauth_error(401, "invalid_client", INVALID_CLIENT)
    if request.content_type != "application/x-www-form-urlencoded":
        return oauth_error(400, "invalid_request", MALFORMED)
    form = {key: str(value) for key, value in (await request.post()).items()}
    grant = form.get("grant_type")
    if not grant:
        return oauth_error(400, "invalid_request", MALFORMED)
    requested = _scopes(form.get("scope"))
    if grant == "client_credentials":
        if not requested or not requested <= APPLICATION_SCOPES:
            return oauth_error(400, "invalid_scope", INVALID_SCOPE)
        access = state.issue_token(APPLICATION, requested)
        return answer(
            {
                "access_token": access,
                "expires_in": state.token_ttl_s,
                "token_type": "Application Access Token",
            }
        )
    if grant == "authorization_code":
        # The mock never runs the consent page, so no code it could exchange exists.
        return oauth_error(400, "invalid_grant", INVALID_CODE)
    if grant != "refresh_token":
        return oauth_error(400, "unsupported_grant_type", UNSUPPORTED_GRANT)
    refresh = form.get("refresh_token", "")
    if not refresh:
        return oauth_error(400, "invalid_request", MALFORMED)
    if not hmac.compare_digest(refresh.encode(), state.refresh_token.get_secret_value().encode()):
        return oauth_error(400, "invalid_grant", INVALID_REFRESH)
    # Without ``scope`` the token carries everything the seller consented to.
    scopes = state.refresh_scopes if requested is None else requested
    if not scopes or not scopes <= state.refresh_scopes:
        return oauth_error(400, "invalid_scope", INVALID_SCOPE)
    access = state.issue_token(USER, scopes)
    return answer(
        {"access_token": access, "expires_in": state.token_ttl_s, "token_type": "User Access Token"}
    )


def throttled(state: EbayMockState, api: str) -> web.Response:
    """eBay's 429: errorId 2001 "Too many requests" (no Retry-After: unconfirmed, not sent)."""
    state.throttled[api] += 1
    return errors_answer(
        429,
        error(ERR_TOO_MANY_REQUESTS, ACCESS_DOMAIN, "REQUEST", TOO_MANY_MESSAGE, TOO_MANY_LONG),
    )


def system_error(api: str) -> web.Response:
    """The API's 500 system error."""
    if api == BROWSE_API:
        entry = error(
            ERR_BROWSE_SYSTEM,
            BROWSE_DOMAIN,
            "APPLICATION",
            "There was a problem with an eBay internal system or process. Contact eBay "
            "developer support for assistance.",
        )
    elif api == FULFILLMENT_API:
        entry = error(
            ERR_FULFILLMENT_SYSTEM,
            FULFILLMENT_DOMAIN,
            "APPLICATION",
            "There was a problem with an eBay internal system or process. Contact eBay "
            "developer support for assistance.",
        )
    elif api == NOTIFICATION_API:
        entry = error(
            ERR_NOTIFICATION_SYSTEM,
            NOTIFICATION_DOMAIN,
            "APPLICATION",
            "There was a problem with an eBay internal system or process. Contact eBay "
            "developer support for assistance.",
        )
    else:
        entry = error(
            ERR_SYSTEM,
            INVENTORY_DOMAIN,
            "APPLICATION",
            "A system error has occurred.",
            subdomain="Inventory",
        )
    return errors_answer(500, entry)


def check_token(
    state: EbayMockState, request: web.Request, kind: str, scopes: frozenset[str]
) -> web.Response | None:
    """401 for a missing/unknown/expired token, 403 for the wrong type or scope; else None."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return errors_answer(
            401,
            error(
                ERR_MISSING_TOKEN,
                OAUTH_DOMAIN,
                "REQUEST",
                "Missing access token",
                MISSING_TOKEN_LONG,
            ),
        )
    issued = state.tokens.get(presented.strip())
    if issued is None or state.clock.monotonic() >= issued.expires_mono:
        return errors_answer(
            401,
            error(
                ERR_INVALID_TOKEN,
                OAUTH_DOMAIN,
                "REQUEST",
                INVALID_TOKEN_MESSAGE,
                INVALID_TOKEN_LONG,
            ),
        )
    if issued.kind != kind or not issued.scopes & scopes:
        return errors_answer(
            403,
            error(ERR_ACCESS_DENIED, ACCESS_DOMAIN, "REQUEST", "Access denied", ACCESS_DENIED_LONG),
        )
    return None


def ebay_api(api: str, kind: str, scopes: frozenset[str]) -> Callable[[Handler], Route]:
    """Wrap a handler with token check, daily quota, short-term limit, faults, error mapping."""

    def wrap(handler: Handler) -> Route:
        async def route(request: web.Request) -> web.StreamResponse:
            state = request.app[STATE_KEY]
            state.calls[api] += 1
            denied = check_token(state, request, kind, scopes)
            if denied is not None:
                return denied
            if state.enforce_rate_limits:
                bucket = state.bucket(api)
                if bucket.wait_time() > 0:
                    return throttled(state, api)
            if not state.charge_quota(api):
                return throttled(state, api)
            if state.enforce_rate_limits:
                await state.bucket(api).acquire()  # a token is there: this never waits
            fault = state.faults.draw()
            if fault is Fault.THROTTLE:
                return throttled(state, api)
            if fault is Fault.ERROR:
                return system_error(api)
            if fault is Fault.TIMEOUT:
                await state.sleep(state.faults.hang_s)
            try:
                return await handler(request, state)
            except WireError as exc:
                return errors_answer(exc.status, *exc.errors)

        route.__name__ = handler.__name__
        return route

    return wrap
