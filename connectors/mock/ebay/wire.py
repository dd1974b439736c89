"""eBay REST wire helpers: the ``{"errors": [...]}`` body, JSON answers, schema validation."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from typing import Any

from aiohttp import web
from jsonschema import Draft4Validator

from connectors.mock.ebay.const import INVENTORY_DOMAIN
from connectors.specs import load_spec

INVENTORY_SPEC = "sell_inventory_v1_oas3.json"


class WireError(Exception):
    """An eBay error answer raised from inside a handler (one or more errors, one status)."""

    def __init__(self, status: int, *errors: dict[str, Any]) -> None:
        super().__init__(f"{status} " + ",".join(str(e.get("errorId")) for e in errors))
        self.status = status
        self.errors = list(errors)


def error(
    error_id: int,
    domain: str,
    category: str,
    message: str,
    long_message: str | None = None,
    parameters: dict[str, str] | None = None,
    subdomain: str | None = None,
) -> dict[str, Any]:
    """One entry of eBay's ``errors[]`` (Inventory OAS ``Error``)."""
    entry: dict[str, Any] = {"errorId": error_id, "domain": domain}
    if subdomain:
        entry["subdomain"] = subdomain
    entry["category"] = category
    entry["message"] = message
    if long_message:
        entry["longMessage"] = long_message
    if parameters:
        entry["parameters"] = [{"name": k, "value": v} for k, v in parameters.items()]
    return entry


def inventory_error(
    error_id: int, message: str, *, category: str = "REQUEST", **parameters: str
) -> dict[str, Any]:
    """An ``API_INVENTORY`` error entry."""
    return error(
        error_id,
        INVENTORY_DOMAIN,
        category,
        message,
        parameters=parameters or None,
        subdomain="Inventory",
    )


def inventory_bad_request(error_id: int, message: str, **parameters: str) -> WireError:
    """A whole-call 400 of the Sell Inventory API."""
    return WireError(400, inventory_error(error_id, message, **parameters))


def answer(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer (compact, as eBay's gateways send)."""
    return web.Response(
        status=status,
        text=json.dumps(body, separators=(",", ":")),
        content_type="application/json",
        headers=headers,
    )


def errors_answer(status: int, *errors: dict[str, Any]) -> web.Response:
    """``{"errors": [...]}`` with ``status``."""
    return answer({"errors": list(errors)}, status)


def oauth_error(status: int, code: str, description: str) -> web.Response:
    """The identity service's OAuth error body ``{error, error_description}``."""
    return answer({"error": code, "error_description": description}, status)


@cache
def inventory_validator(schema: str) -> Draft4Validator:
    """A validator for ``#/components/schemas/<schema>`` of the Sell Inventory OAS.

    Draft 4 semantics: an ``integer`` must be a JSON integer (``3.0`` is refused), a
    ``string`` a JSON string (a money ``value`` sent as a number is refused).
    """
    document = load_spec("ebay", INVENTORY_SPEC)
    root = {
        "$ref": f"#/components/schemas/{schema}",
        "components": {"schemas": document["components"]["schemas"]},
    }
    return Draft4Validator(root)


def schema_violation(schema: str, instance: Any) -> tuple[str, str] | None:
    """(field path like ``requests[0].offers[0].price.value``, reason) or None if valid."""
    found = next(iter(inventory_validator(schema).iter_errors(instance)), None)
    if found is None:
        return None
    path = ""
    for part in found.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "request", found.message


async def json_body(request: web.Request) -> Any:
    """The parsed JSON body; ``ValueError`` if it is not JSON."""
    raw = await request.read()
    return json.loads(raw) if raw else None


def money(amount: Decimal) -> str:
    """eBay's money ``value``: a decimal string with two places."""
    return f"{amount.quantize(Decimal('0.01'))}"
