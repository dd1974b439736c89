"""The SP-API wire: Login with Amazon, and the gate of every operation of the vendored models.

An operation's route, query parameters, body and usage plan (rate, burst) come from its model
(connectors/specs/amazon). The gate checks the access token (SigV4 is ignored, as on Amazon), the
usage plan (429 ``QuotaExceeded``), faults, seller, query and body (guide §1, marketplace-apis).
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from aiohttp import web
from jsonschema import Draft4Validator, Draft7Validator

from connectors.mock.faults import Fault
from connectors.mock.kit.control import Handler
from connectors.mock.kit.wire import b64_json, first_error, from_b64_json, spec_validator
from connectors.ratelimit import RateLimit
from connectors.specs import load_spec

if TYPE_CHECKING:
    from connectors.mock.amazon.state import AmazonMockState

STATE_KEY: web.AppKey[AmazonMockState] = web.AppKey("amazon_mock_state")
SESSION_KEY = web.AppKey("amazon_mock_http", aiohttp.ClientSession)  # pushes notifications
ROUTES: list[tuple[str, str, Handler]] = []  # (method, path, route) of every SP-API operation

MODELS: Final = (
    "listingsItems_2021-08-01.json",
    "feeds_2021-06-30.json",
    "productPricingV0.json",
    "ordersV0.json",
    "reports_2021-06-30.json",
)
INVALID_INPUT_MESSAGE: Final = "Request has missing or invalid parameters and cannot be parsed."
INTERNAL_MESSAGE: Final = "We encountered an internal error. Please try again."
DENIED: Final = "Access to requested resource is denied."
# Listings issue codes. 4000001 ("The provided value for '<attr>' is invalid.") and 90000900 are
# observed in SP-API answers (amzn/selling-partner-api-models#5219, model sandbox examples); 18155
# is the model's minimum-price example. The ceiling code is not published: ours is a stand-in.
ISSUE_INVALID_VALUE: Final = "4000001"
ISSUE_INVALID_ATTRIBUTES: Final = "90000900"
ISSUE_BELOW_MINIMUM: Final = "18155"
ISSUE_ABOVE_MAXIMUM: Final = "18156"  # unconfirmed stand-in
# Amazon reports the applied usage plan only on these statuses (guide §1.2).
_RATE_HEADER_STATUSES = frozenset({200, 201, 202, 400, 404})
_USAGE_PLAN = re.compile(r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|")


class WireError(Exception):
    """An SP-API error answer raised from deep inside a handler."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code, self.message, self.details = status, code, message, details


def invalid_input(details: str = "") -> WireError:
    """The 400 Amazon answers for a body or parameter it cannot accept."""
    return WireError(400, "InvalidInput", INVALID_INPUT_MESSAGE, details)


def openapi_validator(spec: str, definition: str) -> Draft4Validator:
    """A validator for one ``#/definitions/<name>`` of an SP-API OpenAPI 2.0 model."""
    return spec_validator("amazon", spec, f"definitions/{definition}")


@cache
def json_schema_validator(name: str) -> Draft7Validator:
    """A validator for one of Amazon's standalone JSON Schemas (feeds, notifications)."""
    return Draft7Validator(load_spec("amazon", name))


def check(validator: Draft4Validator, instance: Any) -> Any:
    """``instance``, or the ``InvalidInput`` naming its first violation of ``validator``."""
    problem = first_error(validator, instance)
    if problem is not None:
        raise invalid_input(problem)
    return instance


@dataclass(frozen=True)
class Operation:
    """One operation of an SP-API model: its route, usage plan, query parameters and body."""

    method: str
    path: str
    rate: RateLimit
    params: dict[str, dict[str, Any]]  # query parameters by name, as the model declares them
    checker: Draft4Validator  # of the typed query parameters (a parameter is its own schema)
    body: Draft4Validator | None  # of the body's definition

    def query(self, request: web.Request) -> dict[str, Any]:
        """The query parameters typed as declared (csv arrays), defaults filled, validated."""
        values: dict[str, Any] = {}
        for name, param in self.params.items():
            raw = request.query.getall(name, [])
            if param["type"] == "array":
                raw = [part for item in raw for part in item.split(",") if part]
                if raw:
                    values[name] = raw
            elif raw:
                number = param["type"] == "integer" and raw[0].lstrip("-").isdigit()
                values[name] = int(raw[0]) if number else raw[0]
            if name not in values and "default" in param:
                values[name] = param["default"]
        check(self.checker, values)
        return values


@cache
def operations() -> dict[str, Operation]:
    """Every operation of the models the mock serves, by ``operationId``."""
    found = {}
    for spec in MODELS:
        for path, methods in load_spec("amazon", spec)["paths"].items():
            for method, op in methods.items():
                if method == "parameters":  # path-level parameters: empty in these models
                    continue
                params = op.get("parameters", [])
                rate, burst = _USAGE_PLAN.findall(op["description"])[0]
                body = [p["schema"]["$ref"].rsplit("/")[-1] for p in params if p["in"] == "body"]
                query = {p["name"]: p for p in params if p["in"] == "query"}
                required = [name for name, p in query.items() if p.get("required")]
                found[op["operationId"]] = Operation(
                    method.upper(),
                    path,
                    RateLimit(float(rate), float(burst)),
                    query,
                    Draft4Validator({"properties": query, "required": required}),
                    openapi_validator(spec, body[0]) if body else None,
                )
    return found


def time_param(query: dict[str, Any], name: str) -> datetime:
    """An ISO 8601 date-time query parameter (naive if it carries no offset)."""
    try:
        return datetime.fromisoformat(str(query[name]).replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid_input(f"{name} must be an ISO 8601 date-time.") from exc


def page_token(position: Any) -> str:
    """An opaque page token: the base64 of ``position``'s JSON."""
    return b64_json(position, urlsafe=True)


def from_page_token(token: str, name: str) -> Any:
    """The position a ``page_token`` holds; a token the mock did not issue is a 400."""
    try:
        return from_b64_json(token, urlsafe=True)
    except ValueError as exc:
        raise invalid_input(f"Invalid {name}.") from exc


def cents(amount: Decimal) -> str:
    """A money amount as Amazon's ``Decimal`` string (two places)."""
    return f"{amount.quantize(Decimal('0.01'))}"


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
    grant, refresh = fields.get("grant_type", ""), fields.get("refresh_token", "")
    grantless = grant == "client_credentials"
    if not grant:
        return _oauth_error(400, "invalid_request", "The request is missing grant_type")
    if grant not in ("refresh_token", "client_credentials"):
        return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
    client = (fields.get("client_id", ""), fields.get("client_secret", ""))
    if not all(map(hmac.compare_digest, client, (state.client_id, state.client_secret))):
        return _oauth_error(401, "invalid_client", "Client authentication failed")
    if grantless and not fields.get("scope", "").startswith("sellingpartnerapi::"):
        return _oauth_error(400, "invalid_scope", "The requested scope is invalid")
    if not grantless and not refresh:
        return _oauth_error(400, "invalid_request", "The request is missing refresh_token")
    if not grantless and not hmac.compare_digest(refresh, state.refresh_token):
        message = "The request has an invalid grant parameter : refresh_token"
        return _oauth_error(400, "invalid_grant", message)
    body: dict[str, Any] = {"access_token": state.issue_token(grantless=grantless)}
    body |= {"token_type": "bearer", "expires_in": state.token_ttl_s}
    return web.json_response(body if grantless else {**body, "refresh_token": state.refresh_token})


async def _gate(state: AmazonMockState, request: web.Request, operation: str) -> None:
    """Raise the 403 of a missing, unknown, grantless or expired token, or a plan's 429/500."""
    presented = request.headers.get("x-amz-access-token", "")
    expiry = state.tokens.get(presented)
    if expiry is None:
        details = "The access token you provided is revoked, malformed or invalid."
        raise WireError(403, "Unauthorized", DENIED, details if presented else "")
    if state.clock.monotonic() >= expiry:
        details = "The access token you provided has expired."
        raise WireError(403, state.expired_token_code, DENIED, details)
    fault = Fault.THROTTLE
    if await state.take(operation):
        wanted = state.fault_operations
        fault = await state.fault() if wanted is None or operation in wanted else Fault.NONE
    if fault is Fault.THROTTLE:
        state.throttled[operation] += 1
        raise WireError(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")
    if fault is Fault.ERROR:
        state.failed[operation] += 1
        raise WireError(500, "InternalFailure", INTERNAL_MESSAGE)


def sp_api(operation: str, ok: int = 200) -> Callable[[Callable[[Call], Any]], Any]:
    """Register a handler of ``Call`` → body for the model's ``operation`` (route, gate, checks)."""
    op = operations()[operation]

    def register(handler: Callable[[Call], Any]) -> Any:
        async def route(request: web.Request) -> web.StreamResponse:
            state = request.app[STATE_KEY]
            state.calls[operation] += 1
            rate = state.rate_limits[operation]
            status, headers = ok, {"x-amzn-RequestId": str(uuid.uuid4())}
            try:
                await _gate(state, request, operation)
                # Imported here: the feeds module registers its routes through this gate.
                from connectors.mock.amazon.feeds import advance_feeds

                advance_feeds(state)
                if request.match_info.get("sellerId", state.seller_id) != state.seller_id:
                    # The token was issued for one selling partner; another is not ours to read.
                    raise WireError(403, "Unauthorized", DENIED)
                query = op.query(request)
                unknown = [m for m in query.get("marketplaceIds", []) if m != state.marketplace_id]
                if unknown:
                    raise invalid_input(f"Invalid marketplaceIds: {','.join(unknown)}.")
                try:
                    body = check(op.body, json.loads(await request.read())) if op.body else None
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise invalid_input("The request body is not valid JSON.") from exc
                answer = handler(Call(request, state, query, body))
            except WireError as exc:
                status, error = exc.status, {"code": exc.code, "message": exc.message}
                answer = {"errors": [error | {"details": exc.details}]}
                if status == 403:
                    headers["x-amzn-ErrorType"] = "AccessDeniedException"
            if status in _RATE_HEADER_STATUSES:
                headers["x-amzn-RateLimit-Limit"] = f"{float(rate.rate)}"
            return web.json_response(answer, status=status, headers=headers)

        ROUTES.append((op.method, op.path, route))
        return handler

    return register
