"""eBay REST wire helpers: the ``{"errors": [...]}`` body, JSON answers, paging, OAS validation."""

from __future__ import annotations

import json
from decimal import Decimal
from functools import cache
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jsonschema import Draft4Validator

from connectors.mock.ebay.const import ERROR_DOMAINS
from connectors.specs import load_spec


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


@cache
def inventory_validator(schema: str) -> Draft4Validator:
    """A validator of the Sell Inventory OAS's ``<schema>``: Draft 4 types, as eBay deserializes
    (``3.0`` is no ``integer``, a number no money ``value`` string)."""
    document = load_spec("ebay", "sell_inventory_v1_oas3.json")
    root = {
        "$ref": f"#/components/schemas/{schema}",
        "components": {"schemas": document["components"]["schemas"]},
    }
    return Draft4Validator(root)


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
