"""Walmart's line cancels and ``GET /v3/orders`` (orders.json getAllOrders) over the orders kept.

Filters as the spec documents: created / lastModified dates (``yyyy-MM-dd`` or ISO-8601; with
none, the last 7 days), ``status``, ``sku``, ids, ``shipNodeType`` (default SellerFulfilled),
``limit`` 1..200; ``meta.nextCursor`` is the next page's query string, as in the spec's example.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from connectors.mock.walmart.events import Event
from connectors.mock.walmart.offers import order_event
from connectors.mock.walmart.state import PurchaseOrder, WalmartMockState
from connectors.mock.walmart.wire import api, epoch_ms, int_param, invalid, not_found

STATUSES = ("Created", "Acknowledged", "Shipped", "Delivered", "Cancelled")
SHIP_NODE_TYPES = ("SellerFulfilled", "WFSFulfilled", "3PLFulfilled")
DATES = ("createdStartDate", "createdEndDate", "lastModifiedStartDate", "lastModifiedEndDate")
CURSOR_KEYS = ("limit", "hasMoreElements", "soIndex", "poIndex", "partnerId", "sellerId")


def cancel_line(state: WalmartMockState, po: str, line_number: str) -> Event:
    """Auto-cancel one line: status Cancelled, units back on the listing, the event to push."""
    order = state.purchase_orders.get(po)
    lines = order.document["orderLines"]["orderLine"] if order else []
    line = next((row for row in lines if row["lineNumber"] == line_number), None)
    if order is None or line is None:
        raise not_found("ORDER", f"No line {line_number} in order {po}.")
    statuses = line["orderLineStatuses"]["orderLineStatus"]
    if all(entry["status"] == "Cancelled" for entry in statuses):
        raise invalid("ORDER", f"Line {line_number} of {po} is already cancelled.")
    order.modified = state.clock.now()
    cancelled = {"status": "Cancelled", "cancellationReason": "SELLER_CANCEL"}
    quantity = line["orderLineQuantity"]
    line["orderLineStatuses"]["orderLineStatus"] = [{**cancelled, "statusQuantity": dict(quantity)}]
    line["statusDate"] = epoch_ms(order.modified.timestamp())
    listing = state.listing(line["item"]["sku"])
    if listing is not None:
        listing.quantity += int(quantity["amount"])
    return order_event(state, "PO_LINE_AUTOCANCELLED", order, line, "CANCELLED")


def _date(name: str, raw: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid("ORDER", f"{name} {raw!r} is not a valid date.", name) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _choice(query: Any, name: str, allowed: tuple[str, ...], default: str = "") -> str:
    value: str = query.get(name, default)
    if value and value not in allowed:
        raise invalid("ORDER", f"{name} must be one of {', '.join(allowed)}.", name)
    return value


def _matches(order: PurchaseOrder, query: Any, dates: dict[str, datetime], node: str) -> bool:
    doc, lines = order.document, order.document["orderLines"]["orderLine"]
    found = {
        "sku": {line["item"]["sku"] for line in lines},
        "status": {e["status"] for r in lines for e in r["orderLineStatuses"]["orderLineStatus"]},
        "purchaseOrderId": {doc["purchaseOrderId"]},
        "customerOrderId": {doc["customerOrderId"]},
    }
    times = {"created": order.created, "lastModified": order.modified}
    return (
        order.ship_node_type == node
        and all(query[key] in values for key, values in found.items() if key in query)
        and all(
            dates.get(f"{kind}StartDate", when) <= when <= dates.get(f"{kind}EndDate", when)
            for kind, when in times.items()
        )
    )


@api("GET", "/v3/orders", "getAllOrders")
async def get_all_orders(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/orders``: the seller's purchase orders, filtered and cursor-paged."""
    query = request.query
    limit = int_param(query, "limit", 100, "ORDER", 1, 200)  # orders.json: "not larger than 200"
    offset = int_param(query, "poIndex", 0, "ORDER") if "hasMoreElements" in query else 0
    _choice(query, "productInfo", ("true", "false"))
    _choice(query, "replacementInfo", ("true", "false"))
    _choice(query, "status", STATUSES)
    node = _choice(query, "shipNodeType", SHIP_NODE_TYPES, "SellerFulfilled")
    dates = {name: _date(name, query[name]) for name in DATES if name in query}
    if not dates:  # createdStartDate "Default is current date - 7 days"
        dates["createdStartDate"] = state.clock.now() - timedelta(days=7)
    for start, end in (DATES[:2], DATES[2:]):
        if start in dates and end in dates and dates[start] > dates[end]:
            raise invalid("ORDER", f"{start} must be before {end}.", start)
    found = sorted(
        (o for o in state.purchase_orders.values() if _matches(o, query, dates, node)),
        key=lambda o: (o.created, o.document["purchaseOrderId"]),
        reverse=True,  # newest first (the spec's example lists them so)
    )
    meta: dict[str, Any] = {"totalCount": len(found), "limit": limit}
    if offset + limit < len(found):
        cursor = {
            "limit": str(limit),
            "hasMoreElements": "true",
            "soIndex": str(len(found)),
            "poIndex": str(offset + limit),
            "partnerId": state.partner_id,
            "sellerId": "8",
            **{k: v for k, v in query.items() if k not in CURSOR_KEYS},
        }
        meta["nextCursor"] = "?" + urlencode(cursor)
    page = [o.document for o in found[offset : offset + limit]]
    return web.json_response({"list": {"meta": meta, "elements": {"order": page}}})
