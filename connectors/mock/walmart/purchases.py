"""Purchase orders: what a shopper's order leaves, Walmart's line cancels, ``GET /v3/orders``.

``record`` stores each order in the shape getAllOrders returns (orders.json ``Order``: epoch-ms
dates, ``orderLines.orderLine[]`` with ``item.sku``, ``orderLineQuantity``, ``orderLineStatuses``).
``GET /v3/orders`` filters as the spec documents: created / lastModified dates (``yyyy-MM-dd`` or
ISO-8601; with none, the last 7 days), ``status``, ``sku``, ids, ``shipNodeType`` (default
SellerFulfilled), ``limit`` 1..200; ``meta.nextCursor`` is the next page's query string, as in
the spec's example.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from connectors.mock.kit.wire import iso
from connectors.mock.market import MockListing
from connectors.mock.walmart.events import Event
from connectors.mock.walmart.state import PurchaseOrder, WalmartMockState
from connectors.mock.walmart.wire import (
    api,
    epoch_ms,
    int_param,
    invalid,
    not_found,
    number,
)

STATUSES = ("Created", "Acknowledged", "Shipped", "Delivered", "Cancelled")
SHIP_NODE_TYPES = ("SellerFulfilled", "WFSFulfilled", "3PLFulfilled")
DATES = ("createdStartDate", "createdEndDate", "lastModifiedStartDate", "lastModifiedEndDate")
CURSOR_KEYS = ("limit", "hasMoreElements", "soIndex", "poIndex", "partnerId", "sellerId")


def record(
    state: WalmartMockState, listing: MockListing, quantity: int, po: str, customer: str, wfs: bool
) -> dict[str, Any]:
    """Store the purchase order of one shopper's order (one line) and return its document."""
    now = state.clock.now()
    ms = epoch_ms(now.timestamp())
    units = {"unitOfMeasurement": "EACH", "amount": str(quantity)}
    node_type = "WFSFulfilled" if wfs else "SellerFulfilled"
    amount = {"currency": listing.currency, "amount": number(listing.price * Decimal(quantity))}
    line = {
        "lineNumber": "1",
        "item": {"productName": state.meta_of(listing).product_name, "sku": listing.sku},
        "charges": {
            "charge": [{"chargeType": "PRODUCT", "chargeName": "ItemPrice", "chargeAmount": amount}]
        },
        "orderLineQuantity": dict(units),
        "statusDate": ms,
        "orderLineStatuses": {
            "orderLineStatus": [{"status": "Created", "statusQuantity": dict(units)}]
        },
        "fulfillment": {"fulfillmentOption": "S2H", "shipMethod": "VALUE"},
    }
    document: dict[str, Any] = {
        "purchaseOrderId": po,
        "customerOrderId": customer,
        "customerEmailId": f"{po}@relay.walmart.com",
        "orderType": "REGULAR",
        "orderDate": ms,
        "shippingInfo": {
            "phone": "6501234567",
            "estimatedDeliveryDate": epoch_ms((now + timedelta(days=3)).timestamp()),
            "estimatedShipDate": epoch_ms((now + timedelta(days=1)).timestamp()),
            "methodCode": "Value",
            "postalAddress": {
                "name": "Jane Doe",
                "address1": "123 Main street",
                "city": "Sunnyvale",
                "state": "CA",
                "postalCode": "94086",
                "country": "USA",
                "addressType": "RESIDENTIAL",
            },
        },
        "orderLines": {"orderLine": [line]},
        "shipNode": {"type": node_type},
    }
    state.purchase_orders[po] = PurchaseOrder(document, now, now, node_type)
    return document


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
    now = state.clock.now()
    cancelled = {"status": "Cancelled", "cancellationReason": "SELLER_CANCEL"}
    line["orderLineStatuses"]["orderLineStatus"] = [
        {**cancelled, "statusQuantity": dict(line["orderLineQuantity"])}
    ]
    line["statusDate"] = epoch_ms(now.timestamp())
    order.modified = now
    sku, quantity = line["item"]["sku"], int(line["orderLineQuantity"]["amount"])
    listing = state.listing(sku)
    if listing is not None:
        listing.quantity += quantity
    payload = {
        "partnerId": state.partner_id,
        "purchaseOrderId": po,
        "customerOrderId": order.document["customerOrderId"],
        "orderDate": iso(order.created),
        "orderLines": [
            {
                "lineNumber": line_number,
                "sku": sku,
                "quantity": {"unitOfMeasure": "EACH", "measurementValue": str(quantity)},
                "status": "CANCELLED",
                "statusDate": iso(now),
                "shipNodeType": order.ship_node_type,
            }
        ],
    }
    return Event("PO_LINE_AUTOCANCELLED", sku, payload)


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
