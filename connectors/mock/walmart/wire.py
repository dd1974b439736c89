"""Walmart wire helpers: errors, JSON bodies, money, paging, item checks, the route table."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
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


async def validated(
    request: web.Request, api: str, spec: str, schema: str, rules: Draft4Validator | None = None
) -> Any:
    """The JSON body, held to the vendored ``spec``'s ``schema`` and then to the mock's own
    ``rules`` (what Walmart enforces beyond the spec); a 400 when it breaks either."""
    body = await json_body(request, api)
    problem = schema_error(spec, schema, body)
    if problem is None and rules is not None:
        problem = first_error(rules, body, separator=".")
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


@dataclass(eq=False)
class Refusal(Exception):
    """Why one item was not accepted (a feed item's ``DATA_ERROR``; a 400 via ``accepted``)."""

    description: str
    field: str = ""
    code: str = ERR_INVALID_DATA


@contextmanager
def accepted(api: str) -> Iterator[None]:
    """Answer an item check's refusal inside the block as the single-item API's 400."""
    try:
        yield
    except Refusal as exc:
        raise invalid(api, exc.description, exc.field) from exc


# Every price.json ``Pricing`` field but the BASE price's own is a promotion field.
_PRICING = load_spec("walmart", "price.json")["components"]["schemas"]["Pricing"]["properties"]
_PROMO_FIELDS = set(_PRICING) - {"currentPriceType", "currentPrice"}
_INPUT_QTY = "#/components/schemas/InputQty"
# An MP_INVENTORY (spec 1.5) item: inventory.json ``InventoryWFS`` names no field a seller's
# update needs, so these say which, and that each node's quantity is an ``InputQty``.
_NODE = obj("shipNode quantity", shipNode={"type": "string"}, quantity={"$ref": _INPUT_QTY})
_NODE_ITEM = Draft4Validator(
    {
        "allOf": [{"$ref": "#/components/schemas/InventoryWFS"}],
        **obj("sku shipNodes", shipNodes={"minItems": 1, "items": _NODE}),
        "components": load_spec("walmart", "inventory.json")["components"],
    }
)


def _conform(problem: str | None, what: str, field: str = "") -> None:
    if problem is not None:
        raise Refusal(f"Invalid {what}: {problem}", field)


def check_price(item: Any, currency: str) -> tuple[str, Decimal]:
    """A price.json ``Price`` with one BASE price in the seller's currency -> (sku, amount)."""
    _conform(schema_error("price.json", "Price", item), "price")
    pricing = item["pricing"]
    if len(pricing) != 1 or pricing[0]["currentPriceType"] != "BASE":
        # Promotions (REDUCED/CLEARANCE, several entries) are not modelled by this mock.
        raise Refusal("Exactly one BASE price is expected.", "pricing")
    if any(name in pricing[0] for name in _PROMO_FIELDS):
        raise Refusal("Promotion fields are not supported.", "pricing")
    price = pricing[0]["currentPrice"]
    if "amount" not in price or "currency" not in price:
        raise Refusal("currentPrice needs currency and amount.", "amount")
    if price["currency"] != currency:
        raise Refusal(f"Currency must be {currency}.", "currency")
    amount = Decimal(str(price["amount"]))  # the schema made it a JSON number
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise Refusal("amount must be a positive number with at most 2 decimals.", "amount")
    return str(item["sku"]), amount.quantize(CENT)


def whole(quantity: dict[str, Any]) -> int:
    """The amount of an ``InputQty`` the spec's schema passed (whole and non-negative)."""
    amount = Decimal(str(quantity["amount"]))  # the schema made it a JSON number
    if not amount.is_finite() or amount < 0 or amount != amount.to_integral_value():
        raise Refusal("quantity.amount must be a whole number >= 0.", "quantity.amount")
    return int(amount)


def check_inventory(item: Any) -> tuple[str, list[tuple[str | None, int]]]:
    """An inventory.json ``Inventory`` (spec 1.4 feed item / single PUT) -> (sku, [(None, n)])."""
    _conform(schema_error("inventory.json", "Inventory", item), "inventory")
    return str(item["sku"]), [(None, whole(item["quantity"]))]


def check_node_inventory(item: Any) -> tuple[str, list[tuple[str | None, int]]]:
    """An MP_INVENTORY (spec 1.5) item ``{sku, shipNodes: [{shipNode, quantity}]}``."""
    _conform(first_error(_NODE_ITEM, item, separator="."), "inventory")
    return item["sku"], [(node["shipNode"], whole(node["quantity"])) for node in item["shipNodes"]]
