"""eBay's API gateway as the mock serves it: OAuth, the gate every API call passes (token, quota,
short-term bucket, faults), the ``{"errors": [...]}`` body, JSON answers, paging, OAS validation."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from jsonschema import Draft4Validator

from connectors.mock.ebay.const import API_SCOPE, ERROR_DOMAINS
from connectors.mock.ebay.state import APPLICATION, USER, EbayMockState
from connectors.mock.faults import Fault
from connectors.mock.kit.wire import basic_auth, spec_validator

TOKEN_PATH = "/identity/v1/oauth2/token"  # noqa: S105 - a path
STATE_KEY = web.AppKey("ebay_mock_state", EbayMockState)
SESSION_KEY = web.AppKey("ebay_mock_http", aiohttp.ClientSession)  # pushes notifications
Handler = Callable[[web.Request, EbayMockState], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
Scopes = frozenset[str]

# The identity service's ``error_description`` per ``error`` (status 400, invalid_client 401).
OAUTH_ERRORS = {
    "invalid_client": "client authentication failed",
    "invalid_request": "request is missing a required parameter or malformed.",
    "invalid_scope": "The requested scope is invalid, unknown, malformed, or exceeds the scope "
    "granted to the client",
    "invalid_grant": "the provided authorization {} is invalid or was issued to another client",
    "unsupported_grant_type": "grant type in request is not supported by the authorization server",
}


class WireError(Exception):
    """An eBay error answer raised from inside a handler (one or more errors, one status)."""

    def __init__(self, status: int, *errors: dict[str, Any]) -> None:
        super().__init__(f"{status} " + ",".join(str(e.get("errorId")) for e in errors))
        self.status = status
        self.errors = list(errors)


def error(
    error_id: int,
    domain: str,
    message: str,
    long_message: str | None = None,
    *,
    category: str = "REQUEST",
    **parameters: str,
) -> dict[str, Any]:
    """One entry of eBay's ``errors[]`` (Inventory OAS ``Error``); an API's name as ``domain``
    stands for its domain and subdomain (``ERROR_DOMAINS``)."""
    domain, subdomain, *_ = ERROR_DOMAINS.get(domain, (domain, None))
    entry = {
        "errorId": error_id,
        "domain": domain,
        "subdomain": subdomain,
        "category": category,
        "message": message,
        "longMessage": long_message,
        "parameters": [{"name": k, "value": v} for k, v in parameters.items()] or None,
    }
    return {key: value for key, value in entry.items() if value is not None}


def refuse(
    api: str, error_id: int, message: str, status: int = 400, **parameters: str
) -> WireError:
    """A whole-call refusal of ``api`` with one error entry."""
    return WireError(status, error(error_id, api, message, **parameters))


def answer(body: Any, status: int = 200) -> web.Response:
    """A JSON answer (compact, as eBay's gateways send)."""
    text = json.dumps(body, separators=(",", ":"))
    return web.Response(status=status, text=text, content_type="application/json")


def page(
    request: web.Request, limit: int, offset: int, end: int, step: int | None = None
) -> dict[str, Any]:
    """``href``, ``next``, ``prev`` (other query parameters kept); ``offset`` counts items (``step``
    = ``limit``) or pages (``step`` 1, Sell Inventory); ``end``: how many items can be paged."""
    step = step or limit
    kept = {k: v for k, v in request.query.items() if k not in ("limit", "offset")}

    def link(at: int) -> str:
        query = urlencode({**kept, "offset": at, "limit": limit})
        return f"{request.url.origin()}{request.path}?{query}"

    links = {"href": link(offset)}
    if (offset + step) * limit // step < end:
        links["next"] = link(offset + step)
    if offset > 0:
        links["prev"] = link(max(0, offset - step))
    return links


def inventory_validator(schema: str) -> Draft4Validator:
    """A validator of the Sell Inventory OAS's ``<schema>``: Draft 4 types, as eBay deserializes
    (``3.0`` is no ``integer``, a number no money ``value`` string)."""
    return spec_validator("ebay", "sell_inventory_v1_oas3.json", f"components/schemas/{schema}")


def invalid_field(schema: str, instance: Any) -> str | None:
    """The first field failing ``schema`` (like ``requests[0].offers[0].price.value``), or None."""
    found = next(iter(inventory_validator(schema).iter_errors(instance)), None)
    if found is None:
        return None
    path = ""
    for part in found.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "request"


def money(amount: Decimal) -> str:
    """eBay's money ``value``: a decimal string with two places."""
    return f"{amount.quantize(Decimal('0.01'))}"


def amount(value: Decimal, currency: str) -> dict[str, str]:
    """eBay's ``Amount``: ``{"value": "24.99", "currency": "USD"}``."""
    return {"value": money(value), "currency": currency}


# The gateway's refusals, before any API sees the call.
MISSING_TOKEN = error(
    1002,
    "OAuth",
    "Missing access token",
    "Access token is missing in the Authorization HTTP request header.",
)
INVALID_TOKEN = error(
    1001,
    "OAuth",
    "Invalid access token",
    "Invalid access token. Check the value of the Authorization HTTP request header.",
)
ACCESS_DENIED = error(
    1100, "ACCESS", "Access denied", "Insufficient permissions to fulfill the request."
)
# 429 errorId 2001 (guide §3.6, 3p); no Retry-After: unconfirmed, not sent.
TOO_MANY = error(
    2001, "ACCESS", "Too many requests", "The request limit has been reached for the resource."
)


def _same(given: str, secret: str) -> bool:
    return hmac.compare_digest(given.encode(), secret.encode())


def _client_ok(state: EbayMockState, header: str) -> bool:
    client = basic_auth(header)
    secret = state.client_secret.get_secret_value()
    return client is not None and _same(":".join(client), f"{state.client_id}:{secret}")


class OAuthError(Exception):
    """A refused token request: ``args`` are the OAuth ``error`` and what fills its text."""


def _grant(state: EbayMockState, form: dict[str, str]) -> tuple[str, frozenset[str]]:
    """The (token kind, scopes) a token request is granted; ``OAuthError`` when refused."""
    grant, scope = form.get("grant_type"), form.get("scope")
    requested = None if scope is None else frozenset(scope.split())
    if grant == "client_credentials":
        kind, allowed = APPLICATION, frozenset({API_SCOPE})  # public data only
    elif grant == "refresh_token" and form.get("refresh_token"):
        if not _same(form["refresh_token"], state.refresh_token.get_secret_value()):
            raise OAuthError("invalid_grant", "refresh token")
        kind, allowed = USER, state.refresh_scopes
        # Without ``scope`` the token carries everything the seller consented to.
        requested = allowed if requested is None else requested
    elif grant == "authorization_code":
        # The mock never runs the consent page, so no code it could exchange exists.
        raise OAuthError("invalid_grant", "grant code")
    else:
        raise OAuthError(
            "invalid_request" if grant in (None, "", "refresh_token") else "unsupported_grant_type"
        )
    if not requested or not requested <= allowed:
        raise OAuthError("invalid_scope")
    return kind, requested


async def token(request: web.Request) -> web.Response:
    """Token endpoint: ``client_credentials`` (application) and ``refresh_token`` (user)."""
    state = request.app[STATE_KEY]
    state.calls["identity"] += 1
    try:
        if not _client_ok(state, request.headers.get("Authorization", "")):
            raise OAuthError("invalid_client")
        if request.content_type != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request")
        form = {key: str(value) for key, value in (await request.post()).items()}
        kind, scopes = _grant(state, form)
    except OAuthError as exc:
        code, *detail = exc.args
        body = {"error": code, "error_description": OAUTH_ERRORS[code].format(*detail)}
        return answer(body, 401 if code == "invalid_client" else 400)
    body = {"access_token": state.issue_token(kind, scopes), "expires_in": state.token_ttl_s}
    return answer(body | {"token_type": f"{kind.title()} Access Token"})


async def _gate(state: EbayMockState, header: str, api: str, kind: str, scopes: Scopes) -> None:
    """The token (401, 403 for the wrong type or scope), short-term bucket and daily quota (429),
    then the fault plan (429, 500 or a hang)."""
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise WireError(401, MISSING_TOKEN)
    expiry = state.tokens.get(presented.strip())
    if expiry is None or state.clock.monotonic() >= expiry:
        raise WireError(401, INVALID_TOKEN)
    granted_kind, granted = state.grants[presented.strip()]
    if granted_kind != kind or not granted & scopes:
        raise WireError(403, ACCESS_DENIED)
    quota = f"quota:{api}"
    if state.today(quota) >= state.daily_quotas.get(api, 1 << 62) or not await state.take(api):
        raise WireError(429, TOO_MANY)
    state.today(quota, 1)
    fault = await state.fault()
    if fault is Fault.THROTTLE:
        raise WireError(429, TOO_MANY)
    if fault is Fault.ERROR:
        _, _, error_id, message = ERROR_DOMAINS[api]
        raise WireError(500, error(error_id, api, message, category="APPLICATION"))


def ebay_api(api: str, kind: str, scopes: Scopes) -> Callable[[Handler], Route]:
    """Wrap a handler with token check, daily quota, short-term limit, faults, error mapping."""

    def wrap(handler: Handler) -> Route:
        async def route(request: web.Request) -> web.StreamResponse:
            state = request.app[STATE_KEY]
            state.calls[api] += 1
            try:
                await _gate(state, request.headers.get("Authorization", ""), api, kind, scopes)
                return await handler(request, state)
            except WireError as exc:
                if exc.status == 429:
                    state.throttled[api] += 1
                return answer({"errors": exc.errors}, exc.status)

        route.__name__ = handler.__name__
        return route

    return wrap
