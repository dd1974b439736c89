"""SP-API wire helpers: JSON answers with Amazon's headers, the error body, schema validators."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from functools import cache
from typing import Any

from aiohttp import web
from jsonschema import Draft4Validator, Draft7Validator

from connectors.mock.amazon.const import (
    INVALID_INPUT_MESSAGE,
    RATE_LIMIT_HEADER,
    REQUEST_ID_HEADER,
)
from connectors.ratelimit import RateLimit
from connectors.specs import load_spec

# Amazon reports the applied usage plan only on these statuses (guide §1.2).
_RATE_HEADER_STATUSES = frozenset({200, 201, 202, 400, 404})


class WireError(Exception):
    """An SP-API error answer raised from deep inside a handler."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def invalid_input(details: str = "") -> WireError:
    """The 400 Amazon answers for a body or parameter it cannot accept."""
    return WireError(400, "InvalidInput", INVALID_INPUT_MESSAGE, details)


def answer(
    body: Any,
    status: int = 200,
    *,
    rate: RateLimit | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON answer with ``x-amzn-RequestId`` and, where Amazon sends it, the rate-limit header."""
    out = {REQUEST_ID_HEADER: str(uuid.uuid4())}
    if rate is not None and status in _RATE_HEADER_STATUSES:
        out[RATE_LIMIT_HEADER] = f"{float(rate.rate)}"
    out.update(headers or {})
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=out
    )


def error_answer(
    status: int,
    code: str,
    message: str,
    details: str = "",
    *,
    rate: RateLimit | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Amazon's ``{"errors": [{code, message, details}]}`` body."""
    body = {"errors": [{"code": code, "message": message, "details": details}]}
    return answer(body, status, rate=rate, headers=headers)


async def json_body(request: web.Request) -> Any:
    """Parse the request's JSON body, or raise the 400 Amazon gives for an unparsable one."""
    raw = await request.read()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid_input("The request body is not valid JSON.") from exc


@cache
def openapi_validator(spec: str, definition: str) -> Draft4Validator:
    """A validator for one ``#/definitions/<name>`` of an SP-API OpenAPI 2.0 model."""
    document = load_spec("amazon", spec)
    schema = {"$ref": f"#/definitions/{definition}", "definitions": document["definitions"]}
    return Draft4Validator(schema)


@cache
def json_schema_validator(name: str) -> Draft7Validator:
    """A validator for one of Amazon's standalone JSON Schemas (feeds, notifications)."""
    return Draft7Validator(load_spec("amazon", name))


def cents(amount: Decimal) -> str:
    """A money amount as Amazon's ``Decimal`` string (two places)."""
    return f"{amount.quantize(Decimal('0.01'))}"


def number(amount: Decimal) -> float:
    """A money amount as a JSON number (Pricing API, notifications)."""
    return float(amount.quantize(Decimal("0.01")))


def csv_param(request: web.Request, name: str) -> list[str]:
    """A ``collectionFormat: csv`` query parameter (also accepts the parameter repeated)."""
    values: list[str] = []
    for raw in request.query.getall(name, []):
        values.extend(part for part in raw.split(",") if part)
    return values
