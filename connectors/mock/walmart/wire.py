"""Walmart wire helpers: errors, JSON bodies, money, paging, item checks, the route table."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web
from jsonschema import Draft4Validator

from connectors.mock.kit.wire import first_error
from connectors.mock.kit.wire import spec_validator as kit_validator
from connectors.mock.walmart.const import ERR_INVALID_DATA
from connectors.mock.walmart.state import WalmartMockState
from connectors.specs import load_spec

CENT = Decimal("0.01")
Handler = Callable[[web.Request, WalmartMockState], Awaitable[web.StreamResponse]]
BucketOf = Callable[[web.Request], str | None]


@dataclass(frozen=True)
class Route:
    """One Walmart API route; ``app.make_app`` puts it behind the gateway (``app.walmart``)."""

    method: str
    path: str
    operation: str
    handler: Handler
    bucket: str | BucketOf | None = None  # the rate-limit bucket (default: the operation's)


ROUTES: list[Route] = []


def api(
    method: str, path: str, operation: str, bucket: str | BucketOf | None = None
) -> Callable[[Handler], Handler]:
    """Register a handler as the Walmart operation ``operation`` on ``method path``."""

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, path, operation, handler, bucket))
        return handler

    return register


@dataclass(eq=False)
class WireError(Exception):
    """A Walmart error answer raised from deep inside a handler."""

    status: int
    code: str
    description: str
    field: str = ""
    info: str = ""
    category: str = "DATA"


def error_body(error: WireError, envelope: str) -> dict[str, Any]:
    """Walmart's error body of price.json / feeds.json ``GatewayError`` entries (guide §2.7).

    ``errors`` -> ``{"errors": [...]}``; ``errors.error`` -> ``{"errors": {"error": [...]}}``
    (older endpoints); ``error`` -> ``{"error": [...]}`` (gateway answers seen by 3p clients).
    """
    entry = {
        "code": error.code,
        "field": error.field or error.code.split(".", 1)[0],
        "description": error.description,
        "info": error.info or error.description,
        "severity": "ERROR",
        "category": error.category,
        "causes": [],
        "errorIdentifiers": {},
    }
    if envelope == "errors.error":
        return {"errors": {"error": [entry]}}
    return {"error" if envelope == "error" else "errors": [entry]}


def invalid(api: str, description: str, field: str = "", status: int = 400) -> WireError:
    """A 400 ``INVALID_REQUEST_CONTENT.GMP_<api>_API`` for a body or parameter Walmart refuses."""
    code = f"INVALID_REQUEST_CONTENT.GMP_{api}_API"
    return WireError(status, code, description, field, "Request content is invalid.")


def not_found(api: str, description: str, field: str = "") -> WireError:
    """A 404 ``CONTENT_NOT_FOUND.GMP_<api>_API``."""
    return WireError(404, f"CONTENT_NOT_FOUND.GMP_{api}_API", description, field)


async def json_body(request: web.Request, api: str) -> Any:
    """The request's JSON body (numbers with a fraction as ``Decimal``), or a 415 / 400."""
    if request.content_type != "application/json":
        description = f"Content-Type {request.content_type or '(none)'} is not supported."
        error = invalid(api, description, "Content-Type", 415)
        error.info = "Only supported Media Type : application/json"
        raise error
    try:
        return json.loads(await request.read(), parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(api, "The request body is not valid JSON.") from exc


def spec_validator(spec: str, schema: str) -> Draft4Validator:
    """A validator for ``#/components/schemas/<schema>`` of ``walmart/<spec>`` ($refs resolve)."""
    return kit_validator("walmart", spec, f"components/schemas/{schema}")


def schema_error(spec: str, schema: str, instance: Any) -> str | None:
    """The first violation of the vendored schema, as ``field.path: message`` (None if valid)."""
    return first_error(spec_validator(spec, schema), instance, separator=".")


async def validated(request: web.Request, api: str, spec: str, schema: str) -> Any:
    """The JSON body, held to the vendored ``spec``'s ``schema`` (a 400 when it breaks it)."""
    body = await json_body(request, api)
    problem = schema_error(spec, schema, body)
    if problem is not None:
        raise invalid(api, f"Invalid request: {problem}")
    return body


def obj(required: str = "", **properties: Any) -> dict[str, Any]:
    """A JSON Schema object with the space-separated ``required`` names and ``properties``."""
    return {"type": "object", "required": required.split(), "properties": properties}


def int_param(
    query: Mapping[str, str], name: str, default: int, api: str, low: int = 0, high: int = 10**9
) -> int:
    """A whole-number query parameter in ``low..high``, or the 400."""
    raw = query.get(name, str(default))
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise invalid(api, f"{name} must be an integer from {low} to {high}.", name)
    return int(raw)


def cursor_page(
    query: Mapping[str, str], rows: list[Any], api: str, default: int, high: int, prefix: str
) -> tuple[list[Any], dict[str, str]]:
    """The page ``nextCursor`` (``*`` or absent: the first) and ``limit`` ask for, and
    ``{"nextCursor": <base64 "<prefix>:<position>">}`` unless it is the last page."""
    raw = query.get("nextCursor", "*")
    start = 0
    if raw != "*":
        try:
            head, _, number = base64.b64decode(raw, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            head, number = "", ""
        if head != prefix or not number.isdigit():
            raise invalid(api, "nextCursor is invalid.", "nextCursor")
        start = int(number)
    end = start + int_param(query, "limit", default, api, 1, high)
    after = {"nextCursor": base64.b64encode(f"{prefix}:{end}".encode()).decode()}
    return rows[start:end], after if end < len(rows) else {}


def number(amount: Decimal) -> float:
    """Money as Walmart sends it: a JSON number (double) with two places."""
    return float(amount.quantize(CENT))


def epoch_ms(seconds: float) -> int:
    """Walmart timestamps: integer epoch milliseconds."""
    return round(seconds * 1000)


# --- item checks shared by the single-SKU endpoints (a 400) and feeds (a DATA_ERROR item) ----


@dataclass(frozen=True)
class Refusal:
    """Why one item was not accepted."""

    description: str
    field: str = ""
    code: str = ERR_INVALID_DATA


# Every price.json ``Pricing`` field but the BASE price's own is a promotion field.
_PRICING = load_spec("walmart", "price.json")["components"]["schemas"]["Pricing"]["properties"]
_PROMO_FIELDS = set(_PRICING) - {"currentPriceType", "currentPrice"}


def _schema_refusal(
    spec: str, schema: str, item: Any, what: str, field: str = ""
) -> Refusal | None:
    problem = schema_error(spec, schema, item)
    return None if problem is None else Refusal(f"Invalid {what}: {problem}", field)


def check_price(item: Any, currency: str) -> tuple[str, Decimal] | Refusal:
    """A price.json ``Price`` with one BASE price in the seller's currency -> (sku, amount)."""
    refusal = _schema_refusal("price.json", "Price", item, "price")
    if refusal is not None:
        return refusal
    pricing = item["pricing"]
    if len(pricing) != 1 or pricing[0]["currentPriceType"] != "BASE":
        # Promotions (REDUCED/CLEARANCE, several entries) are not modelled by this mock.
        return Refusal("Exactly one BASE price is expected.", "pricing")
    if any(name in pricing[0] for name in _PROMO_FIELDS):
        return Refusal("Promotion fields are not supported.", "pricing")
    price = pricing[0]["currentPrice"]
    if "amount" not in price or "currency" not in price:
        return Refusal("currentPrice needs currency and amount.", "amount")
    if price["currency"] != currency:
        return Refusal(f"Currency must be {currency}.", "currency")
    amount = Decimal(str(price["amount"]))  # the schema made it a JSON number
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        return Refusal("amount must be a positive number with at most 2 decimals.", "amount")
    return str(item["sku"]), amount.quantize(CENT)


def check_quantity(quantity: Any) -> int | Refusal:
    """An ``InputQty`` (unit EACH, whole non-negative amount) -> the amount."""
    refusal = _schema_refusal("inventory.json", "InputQty", quantity, "quantity", "quantity")
    if refusal is not None:
        return refusal
    amount = Decimal(str(quantity["amount"]))  # the schema made it a JSON number
    if not amount.is_finite() or amount < 0 or amount != amount.to_integral_value():
        return Refusal("quantity.amount must be a whole number >= 0.", "quantity.amount")
    return int(amount)


def check_inventory(item: Any) -> tuple[str, list[tuple[str | None, int]]] | Refusal:
    """An inventory.json ``Inventory`` (spec 1.4 feed item / single PUT) -> (sku, [(None, n)])."""
    refusal = _schema_refusal("inventory.json", "Inventory", item, "inventory")
    amount = check_quantity(item["quantity"]) if refusal is None else refusal
    return amount if isinstance(amount, Refusal) else (str(item["sku"]), [(None, amount)])


def check_node_inventory(item: Any) -> tuple[str, list[tuple[str | None, int]]] | Refusal:
    """An MP_INVENTORY (spec 1.5) item ``{sku, shipNodes: [{shipNode, quantity}]}``."""
    refusal = _schema_refusal("inventory.json", "InventoryWFS", item, "inventory")
    if refusal is not None:
        return refusal
    if not isinstance(item.get("sku"), str) or not item.get("shipNodes"):
        return Refusal("sku and shipNodes are required.")
    nodes: list[tuple[str | None, int]] = []
    for node in item["shipNodes"]:
        if not isinstance(node.get("shipNode"), str) or "quantity" not in node:
            return Refusal("Each shipNode needs shipNode and quantity.")
        amount = check_quantity(node["quantity"])
        if isinstance(amount, Refusal):
            return amount
        nodes.append((node["shipNode"], amount))
    return item["sku"], nodes
