"""The SP-API wire: Amazon's answers and error bodies, and the operations of the vendored models.

Each operation's method, path, query parameters, body definition and usage plan (the "Usage
Plan" table: rate, burst) are read from connectors/specs/amazon, so the mock refuses what the
model refuses. Facts follow /work/shared/guides/marketplace-apis.md §1.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any, Final

from aiohttp import web
from jsonschema import Draft4Validator, Draft7Validator

from connectors.mock.kit.wire import first_error
from connectors.ratelimit import RateLimit
from connectors.specs import load_spec

MODELS: Final = (
    "listingsItems_2021-08-01.json",
    "feeds_2021-06-30.json",
    "productPricingV0.json",
    "ordersV0.json",
)
INVALID_INPUT_MESSAGE: Final = "Request has missing or invalid parameters and cannot be parsed."
INTERNAL_MESSAGE: Final = "We encountered an internal error. Please try again."
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
_NOT_SCHEMA = ("name", "in", "required", "description", "collectionFormat", "default")


class WireError(Exception):
    """An SP-API error answer raised from deep inside a handler."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(f"{status} {code}")
        self.status, self.code, self.message, self.details = status, code, message, details


def invalid_input(details: str = "") -> WireError:
    """The 400 Amazon answers for a body or parameter it cannot accept."""
    return WireError(400, "InvalidInput", INVALID_INPUT_MESSAGE, details)


def answer(
    body: Any, status: int = 200, rate: RateLimit | None = None, **headers: str
) -> web.Response:
    """A JSON answer with ``x-amzn-RequestId`` and, where Amazon sends it, the rate-limit header."""
    out = {"x-amzn-RequestId": str(uuid.uuid4()), **headers}
    if rate is not None and status in _RATE_HEADER_STATUSES:
        out["x-amzn-RateLimit-Limit"] = f"{float(rate.rate)}"
    return web.json_response(body, status=status, headers=out)


def error_answer(error: WireError, rate: RateLimit | None = None, **headers: str) -> web.Response:
    """Amazon's ``{"errors": [{code, message, details}]}`` body."""
    body = {"errors": [{"code": error.code, "message": error.message, "details": error.details}]}
    return answer(body, error.status, rate, **headers)


async def json_body(request: web.Request) -> Any:
    """Parse the request's JSON body, or raise the 400 Amazon gives for an unparsable one."""
    try:
        return json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid_input("The request body is not valid JSON.") from exc


@cache
def openapi_validator(spec: str, definition: str) -> Draft4Validator:
    """A validator for one ``#/definitions/<name>`` of an SP-API OpenAPI 2.0 model."""
    document = load_spec("amazon", spec)
    return Draft4Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": document["definitions"]}
    )


@cache
def json_schema_validator(name: str) -> Draft7Validator:
    """A validator for one of Amazon's standalone JSON Schemas (feeds, notifications)."""
    return Draft7Validator(load_spec("amazon", name))


def check(validator: Draft4Validator | Draft7Validator, instance: Any) -> None:
    """Raise ``InvalidInput`` naming the first violation of ``validator`` by ``instance``."""
    problem = first_error(validator, instance)
    if problem is not None:
        raise invalid_input(problem)


@dataclass(frozen=True)
class Operation:
    """One operation of an SP-API model: its route, usage plan, query parameters and body."""

    spec: str
    method: str
    path: str
    rate: RateLimit
    params: dict[str, dict[str, Any]]  # query parameters by name, as the model declares them
    body: str | None  # the definition the body must match
    checker: Draft4Validator  # of the typed query parameters

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
                schema = {
                    "properties": {
                        name: {k: v for k, v in p.items() if k not in _NOT_SCHEMA}
                        for name, p in query.items()
                    },
                    "required": [name for name, p in query.items() if p.get("required")],
                }
                found[op["operationId"]] = Operation(
                    spec,
                    method.upper(),
                    path,
                    RateLimit(float(rate), float(burst)),
                    query,
                    body[0] if body else None,
                    Draft4Validator(schema),
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
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def from_page_token(token: str, name: str) -> Any:
    """The position a ``page_token`` holds; a token the mock did not issue is a 400."""
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError) as exc:
        raise invalid_input(f"Invalid {name}.") from exc


def cents(amount: Decimal) -> str:
    """A money amount as Amazon's ``Decimal`` string (two places)."""
    return f"{amount.quantize(Decimal('0.01'))}"


def number(amount: Decimal) -> float:
    """A money amount as a JSON number (Pricing API, notifications)."""
    return float(amount.quantize(Decimal("0.01")))
