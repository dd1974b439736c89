"""Walmart wire helpers: the error body, JSON answers, money, and OpenAPI schema validators."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from typing import Any

from aiohttp import web
from jsonschema import Draft4Validator

from connectors.mock.kit import wire as kit_wire
from connectors.specs import load_spec

CENT = Decimal("0.01")


class WireError(Exception):
    """A Walmart error answer raised from deep inside a handler."""

    def __init__(
        self,
        status: int,
        code: str,
        description: str,
        *,
        field: str = "",
        info: str = "",
        category: str = "DATA",
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.description = description
        self.field = field
        self.info = info
        self.category = category


def gateway_error(error: WireError) -> dict[str, Any]:
    """One ``GatewayError`` object (price.json / feeds.json ``GatewayError``)."""
    return {
        "code": error.code,
        "field": error.field or error.code.split(".", 1)[0],
        "description": error.description,
        "info": error.info or error.description,
        "severity": "ERROR",
        "category": error.category,
        "causes": [],
        "errorIdentifiers": {},
    }


def error_body(error: WireError, envelope: str) -> dict[str, Any]:
    """Walmart's error body in one of its renderings (guide §2.7).

    ``errors`` -> ``{"errors": [...]}``; ``errors.error`` -> ``{"errors": {"error": [...]}}``
    (older endpoints); ``error`` -> ``{"error": [...]}`` (gateway answers seen by 3p clients).
    """
    entries = [gateway_error(error)]
    if envelope == "errors.error":
        return {"errors": {"error": entries}}
    if envelope == "error":
        return {"error": entries}
    return {"errors": entries}


def json_answer(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON answer (Walmart answers ``application/json`` when asked with ``Accept``)."""
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=headers or {},
    )


def invalid(code: str, description: str, field: str = "") -> WireError:
    """A 400 for a request body or parameter Walmart cannot accept."""
    return WireError(400, code, description, field=field, info="Request content is invalid.")


async def json_body(request: web.Request, code: str) -> Any:
    """The request's JSON body (numbers with a fraction as ``Decimal``), or a 400."""
    if request.content_type != "application/json":
        raise WireError(
            415,
            code,
            f"Content-Type {request.content_type or '(none)'} is not supported.",
            field="Content-Type",
            info="Only supported Media Type : application/json",
        )
    raw = await request.read()
    try:
        return json.loads(raw, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(code, "The request body is not valid JSON.") from exc


@cache
def spec_validator(spec: str, schema: str) -> Draft4Validator:
    """A validator for ``#/components/schemas/<schema>`` of ``walmart/<spec>`` ($refs resolve)."""
    document = load_spec("walmart", spec)
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    return Draft4Validator(root)


def first_error(validator: Draft4Validator, instance: Any) -> str | None:
    """The first schema violation, as ``field.path: message`` (None if ``instance`` is valid)."""
    return kit_wire.first_error(validator, instance, separator=".")


def number(amount: Decimal) -> float:
    """Money as Walmart sends it: a JSON number (double) with two places."""
    return float(amount.quantize(CENT))


def money(value: Any) -> Decimal | None:
    """A JSON money amount as Decimal; None for anything that is not a number with <= 2 places."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return None
    amount = Decimal(str(value))
    if not amount.is_finite() or amount != amount.quantize(CENT):
        return None
    return amount.quantize(CENT)


def whole(value: Any) -> int | None:
    """A JSON quantity as int; None for fractions, negatives, non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return None
    amount = Decimal(str(value))
    if not amount.is_finite() or amount != amount.to_integral_value() or amount < 0:
        return None
    return int(amount)


def epoch_ms(seconds: float) -> int:
    """Walmart timestamps: integer epoch milliseconds."""
    return round(seconds * 1000)
