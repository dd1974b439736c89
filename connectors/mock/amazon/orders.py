"""Orders API v0: ``getOrders`` and ``getOrderItems`` over the orders of ``POST /_mock/orders``.

Strict where the model (ordersV0.json) is: ``MarketplaceIds`` is required (1..50); exactly one of
``CreatedAfter`` and ``LastUpdatedAfter`` is required, and ``LastUpdated*`` cannot go with
``Created*``; dates are ISO 8601; a ``*Before`` must not precede its ``*After`` and must be at
least two minutes before now; ``MaxResultsPerPage`` is 1..100. Anything else is a 400
``InvalidInput``. Orders are returned oldest ``LastUpdateDate`` first (created-date order with
``CreatedAfter``); ``NextToken`` only moves the page, so the filters go with every request, and a
token the mock did not issue is a 400. A cancelled order's item reports ``QuantityOrdered`` 0, as
Amazon can. Every answer is checked against the model's response definitions in the tests.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.mock.amazon.auth import Call, sp_api
from connectors.mock.amazon.state import AmazonMockState, MockOrder
from connectors.mock.amazon.wire import WireError, cents, invalid_input, time_param
from connectors.mock.kit.wire import iso

MAX_ORDERS_PAGE = 100  # getOrders MaxResultsPerPage: 1..100, default 100
ORDER_ITEMS_PAGE = 100  # order items per getOrderItems page (the model sets none)
ORDERS_BEFORE_MARGIN_S = 120.0  # a *Before must be at least this long before now
_SALES_CHANNEL = {"ATVPDKIKX0DER": "Amazon.com", "A2EUQ1WTGCTBG2": "Amazon.ca"}
STATUSES = {
    "Pending",
    "Unshipped",
    "PartiallyShipped",
    "Shipped",
    "Canceled",
    "Unfulfillable",
    "InvoiceUnconfirmed",
    "PendingAvailability",
}


def _time(query: dict[str, Any], name: str) -> datetime | None:
    if name not in query:
        return None
    moment = time_param(query, name)
    # ISO 8601 without an offset: Amazon reads UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _token(position: tuple[str, str]) -> str:
    raw = json.dumps({"after": list(position)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _position(token: str) -> tuple[str, str]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        first, second = decoded["after"]
        return str(first), str(second)
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        raise invalid_input("Invalid NextToken") from err


def _window(call: Call) -> tuple[str, datetime, datetime | None]:
    """Which date the query filters on (``updated``/``created``) and its bounds."""
    created_after, created_before, updated_after, updated_before = (
        _time(call.query, name)
        for name in ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
    )
    if created_after is None and updated_after is None:
        raise invalid_input("Either CreatedAfter or LastUpdatedAfter must be specified")
    if created_after is not None and (updated_after is not None or updated_before is not None):
        raise invalid_input(
            "LastUpdatedAfter and LastUpdatedBefore cannot be set with CreatedAfter"
        )
    if updated_after is not None and created_before is not None:
        raise invalid_input("CreatedBefore cannot be set with LastUpdatedAfter")
    kind, after, before = (
        ("updated", updated_after, updated_before)
        if updated_after is not None
        else ("created", created_after, created_before)
    )
    assert after is not None
    now = call.state.clock.now()
    if after > now:
        raise invalid_input("The after date cannot be in the future")
    if before is not None and (
        before < after or before > now - timedelta(seconds=ORDERS_BEFORE_MARGIN_S)
    ):
        raise invalid_input(
            "The before date must be after the after date and at least 2 minutes before now"
        )
    return kind, after, before


def _filter(call: Call, name: str, allowed: set[str]) -> set[str] | None:
    unknown = [value for value in call.query.get(name, []) if value not in allowed]
    if unknown:
        raise invalid_input(f"Invalid {name}: {', '.join(unknown)}")
    return set(call.query.get(name, [])) or None


@sp_api("getOrders")
def get_orders(call: Call) -> Any:
    """``GET /orders/v0/orders``."""
    state, marketplaces = call.state, call.query["MarketplaceIds"]
    kind, after, before = _window(call)
    size = call.query.get("MaxResultsPerPage", MAX_ORDERS_PAGE)
    if not 1 <= size <= MAX_ORDERS_PAGE:
        raise invalid_input(f"MaxResultsPerPage must be between 1 and {MAX_ORDERS_PAGE}")
    statuses = _filter(call, "OrderStatuses", STATUSES)
    channels = _filter(call, "FulfillmentChannels", {"AFN", "MFN"})

    def stamp(order: MockOrder) -> datetime:
        return order.updated if kind == "updated" else order.purchased

    def key(order: MockOrder) -> tuple[str, str]:
        return iso(stamp(order)), order.order_id

    chosen = sorted(
        (
            order
            for order in state.orders.values()
            if state.marketplace_id in marketplaces
            and stamp(order) >= after
            and (before is None or stamp(order) <= before)
            and (statuses is None or order.status in statuses)
            and (channels is None or order.fulfillment in channels)
        ),
        key=key,
    )
    if "NextToken" in call.query:
        last = _position(call.query["NextToken"])
        chosen = [order for order in chosen if key(order) > last]
    page = chosen[:size]
    payload: dict[str, Any] = {"Orders": [_order(state, order) for order in page]}
    if len(chosen) > size:
        payload["NextToken"] = _token(key(page[-1]))
    payload["CreatedBefore" if kind == "created" else "LastUpdatedBefore"] = iso(
        before or state.clock.now()
    )
    return {"payload": payload}


@sp_api("getOrderItems")
def get_order_items(call: Call) -> Any:
    """``GET /orders/v0/orders/{orderId}/orderItems``."""
    order_id = call.path("orderId")
    order = call.state.orders.get(order_id)
    if order is None:
        raise WireError(404, "NotFound", "The resource specified does not exist.", order_id)
    items = [_item(order)]
    start = 0
    if "NextToken" in call.query:
        mark, wanted = _position(call.query["NextToken"])
        if wanted != order_id or not mark.isdigit():
            raise invalid_input("Invalid NextToken")
        start = int(mark)
    page = items[start : start + ORDER_ITEMS_PAGE]
    payload: dict[str, Any] = {"AmazonOrderId": order_id, "OrderItems": page}
    if start + ORDER_ITEMS_PAGE < len(items):
        payload["NextToken"] = _token((str(start + ORDER_ITEMS_PAGE), order_id))
    return {"payload": payload}


def _money(amount: Decimal, currency: str) -> dict[str, str]:
    return {"CurrencyCode": currency, "Amount": cents(amount)}


def _order(state: AmazonMockState, order: MockOrder) -> dict[str, Any]:
    cancelled = order.status == "Canceled"
    body: dict[str, Any] = {
        "AmazonOrderId": order.order_id,
        "PurchaseDate": iso(order.purchased),
        "LastUpdateDate": iso(order.updated),
        "OrderStatus": order.status,
        "FulfillmentChannel": order.fulfillment,
        "SalesChannel": _SALES_CHANNEL.get(state.marketplace_id, "Amazon"),
        "ShipServiceLevel": "Std US D2D Dom",
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": 0 if cancelled else order.quantity,
        "PaymentMethod": "Other",
        "PaymentMethodDetails": ["Standard"],
        "MarketplaceId": state.marketplace_id,
        "ShipmentServiceLevelCategory": "Standard",
        "OrderType": "StandardOrder",
        "EarliestShipDate": iso(order.purchased),
        "LatestShipDate": iso(order.purchased + timedelta(days=2)),
        "IsBusinessOrder": False,
        "IsPrime": order.fulfillment == "AFN",
        "IsPremiumOrder": False,
        "IsGlobalExpressEnabled": False,
        "IsReplacementOrder": False,
        "IsSoldByAB": False,
        "IsISPU": False,
        "IsAccessPointOrder": False,
        "HasRegulatedItems": False,
    }
    if not cancelled:
        body["OrderTotal"] = _money(order.price * order.quantity, order.currency)
    return body


def _item(order: MockOrder) -> dict[str, Any]:
    cancelled = order.status == "Canceled"
    item: dict[str, Any] = {
        "ASIN": order.asin,
        "OrderItemId": order.item_id,
        "SellerSKU": order.sku,
        "Title": f"{order.sku} title",
        # Amazon reports a cancelled item with quantity 0 (the connector keys cancels by SKU).
        "QuantityOrdered": 0 if cancelled else order.quantity,
        "QuantityShipped": 0,
        "ProductInfo": {"NumberOfItems": "1"},
        "ConditionId": "New",
        "ConditionSubtypeId": "New",
        "IsGift": "false",
        "IsTransparency": False,
        "SerialNumberRequired": False,
    }
    if order.status not in ("Pending", "Canceled"):
        # Pricing appears once payment is authorised (getOrderItems description).
        item["ItemPrice"] = _money(order.price * order.quantity, order.currency)
        item["ItemTax"] = _money(Decimal(0), order.currency)
    return item
