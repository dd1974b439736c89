"""``GET /v3/orders`` (getAllOrders, orders.json) over the purchase orders the mock holds.

Filters as the spec documents: created / lastModified start and end dates (``yyyy-MM-dd`` or
``yyyy-MM-dd'T'HH:mm:ssZ``; with neither, orders created in the last 7 days), ``status``,
``sku``, ``purchaseOrderId``, ``customerOrderId``, ``shipNodeType`` (default SellerFulfilled),
``limit`` 1..200 (default 100). More orders than ``limit``: ``meta.nextCursor`` is the next
page's query string (``?limit=..&hasMoreElements=true&soIndex=<total>&poIndex=<next offset>&
partnerId=..&sellerId=..`` + the filters), as in the spec's example. A parameter the spec does
not allow is a 400 with Walmart's error body (the exact code is the mock's stand-in).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from connectors.mock.walmart.const import ORDER_CONTENT_CODE
from connectors.mock.walmart.gate import walmart
from connectors.mock.walmart.state import PurchaseOrder, WalmartMockState
from connectors.mock.walmart.wire import invalid, json_answer

DEFAULT_LIMIT = 100
MAX_LIMIT = 200  # orders.json: "Cannot be larger than 200"
DEFAULT_WINDOW = timedelta(days=7)  # createdStartDate "Default is current date - 7 days"
STATUSES = ("Created", "Acknowledged", "Shipped", "Delivered", "Cancelled")
SHIP_NODE_TYPES = ("SellerFulfilled", "WFSFulfilled", "3PLFulfilled")
BOOLEAN = ("true", "false")
DATES = ("createdStartDate", "createdEndDate", "lastModifiedStartDate", "lastModifiedEndDate")
CURSOR_KEYS = ("hasMoreElements", "soIndex", "poIndex", "partnerId", "sellerId")


def _date(name: str, raw: str) -> datetime:
    """``yyyy-MM-dd`` or an ISO-8601 timestamp with ``Z`` or an offset (the spec's formats)."""
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(ORDER_CONTENT_CODE, f"{name} {raw!r} is not a valid date.", name) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _choice(query: Any, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value: str | None = query.get(name, default)
    if value is not None and value not in allowed:
        raise invalid(ORDER_CONTENT_CODE, f"{name} must be one of {', '.join(allowed)}.", name)
    return value


def _whole(query: Any, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = query.get(name, str(default))
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise invalid(ORDER_CONTENT_CODE, f"{name} must be an integer {bound}.", name)
    return int(raw)


def _matches(order: PurchaseOrder, query: Any, dates: dict[str, datetime], node: str) -> bool:
    doc = order.document
    lines = doc["orderLines"]["orderLine"]
    checks = (
        order.ship_node_type == node,
        dates.get("createdStartDate", order.created) <= order.created,
        order.created <= dates.get("createdEndDate", order.created),
        dates.get("lastModifiedStartDate", order.modified) <= order.modified,
        order.modified <= dates.get("lastModifiedEndDate", order.modified),
        query.get("purchaseOrderId", doc["purchaseOrderId"]) == doc["purchaseOrderId"],
        query.get("customerOrderId", doc["customerOrderId"]) == doc["customerOrderId"],
        "sku" not in query or any(line["item"]["sku"] == query["sku"] for line in lines),
        "status" not in query
        or any(
            entry["status"] == query["status"]
            for line in lines
            for entry in line["orderLineStatuses"]["orderLineStatus"]
        ),
    )
    return all(checks)


@walmart("getAllOrders")
async def get_all_orders(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/orders``: the seller's purchase orders, filtered and cursor-paged."""
    query = request.query
    limit = _whole(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _whole(query, "poIndex", 0, 0) if "hasMoreElements" in query else 0
    _choice(query, "productInfo", BOOLEAN, "false")
    _choice(query, "replacementInfo", BOOLEAN, "false")
    _choice(query, "status", STATUSES, None)
    node = _choice(query, "shipNodeType", SHIP_NODE_TYPES, "SellerFulfilled") or ""
    dates = {name: _date(name, query[name]) for name in DATES if name in query}
    if not dates:
        dates["createdStartDate"] = state.clock.now() - DEFAULT_WINDOW
    for start, end in (DATES[:2], DATES[2:]):
        if start in dates and end in dates and dates[start] > dates[end]:
            raise invalid(ORDER_CONTENT_CODE, f"{start} must be before {end}.", start)
    found = sorted(
        (o for o in state.purchase_orders.values() if _matches(o, query, dates, node)),
        key=lambda o: (o.created, o.document["purchaseOrderId"]),
        reverse=True,  # newest first (the spec's example lists them so)
    )
    page = found[offset : offset + limit]
    meta: dict[str, Any] = {"totalCount": len(found), "limit": limit}
    if offset + limit < len(found):
        kept = {k: v for k, v in query.items() if k not in ("limit", *CURSOR_KEYS)}
        cursor = {
            "limit": str(limit),
            "hasMoreElements": "true",
            "soIndex": str(len(found)),
            "poIndex": str(offset + limit),
            "partnerId": state.partner_id,
            "sellerId": "8",
            **kept,
        }
        meta["nextCursor"] = "?" + urlencode(cursor)
    body = {"list": {"meta": meta, "elements": {"order": [o.document for o in page]}}}
    return json_answer(body)


def add_routes(app: web.Application) -> None:
    """Register ``GET /v3/orders``."""
    app.router.add_get("/v3/orders", get_all_orders)
