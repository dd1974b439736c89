"""Orders API v0 (``getOrders``, ``getOrderItems``) over the orders of ``POST /_mock/orders``.

Strict as the model's descriptions: one of ``CreatedAfter``/``LastUpdatedAfter``; a ``*Before``
after its ``*After`` and two minutes old; 1..100 per page; only a ``NextToken`` the mock issued.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.mock.amazon.state import AmazonMockState, MockOrder
from connectors.mock.amazon.wire import (
    Call,
    WireError,
    cents,
    from_page_token,
    invalid_input,
    page_token,
    sp_api,
    time_param,
)
from connectors.mock.kit.wire import iso

MAX_ORDERS_PAGE = 100  # getOrders MaxResultsPerPage: 1..100, default 100
_NOT_FLAGS = ["IsBusinessOrder", "IsPremiumOrder", "IsGlobalExpressEnabled", "IsReplacementOrder"]
_NOT_FLAGS += ["IsSoldByAB", "IsISPU", "IsAccessPointOrder", "HasRegulatedItems"]
_SALES_CHANNEL = {"ATVPDKIKX0DER": "Amazon.com", "A2EUQ1WTGCTBG2": "Amazon.ca"}
_WINDOW = ("CreatedAfter", "CreatedBefore", "LastUpdatedAfter", "LastUpdatedBefore")
_FILTERS = {
    "OrderStatuses": {
        *("Pending", "Unshipped", "PartiallyShipped", "Shipped", "Canceled", "Unfulfillable"),
        *("InvoiceUnconfirmed", "PendingAvailability"),
    },
    "FulfillmentChannels": {"AFN", "MFN"},
}


def _utc(moment: datetime) -> datetime:
    # ISO 8601 without an offset: Amazon reads UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _window(call: Call) -> tuple[str, datetime, datetime | None]:
    """Which date the query filters on (``LastUpdated`` or ``Created``) and its bounds."""
    given = {name for name in _WINDOW if name in call.query}
    if not given & {"CreatedAfter", "LastUpdatedAfter"}:
        raise invalid_input("Either CreatedAfter or LastUpdatedAfter must be specified")
    if "CreatedAfter" in given and given & {"LastUpdatedAfter", "LastUpdatedBefore"}:
        raise invalid_input(
            "LastUpdatedAfter and LastUpdatedBefore cannot be set with CreatedAfter"
        )
    if {"LastUpdatedAfter", "CreatedBefore"} <= given:
        raise invalid_input("CreatedBefore cannot be set with LastUpdatedAfter")
    kind = "LastUpdated" if "LastUpdatedAfter" in given else "Created"
    after, before = (
        _utc(time_param(call.query, kind + edge)) if kind + edge in given else None
        for edge in ("After", "Before")
    )
    assert after is not None
    now = call.state.clock.now()
    if after > now:
        raise invalid_input("The after date cannot be in the future")
    if before is not None and (before < after or before > now - timedelta(minutes=2)):
        raise invalid_input(
            "The before date must be after the after date and at least 2 minutes before now"
        )
    return kind, after, before


@sp_api("getOrders")
def get_orders(call: Call) -> Any:
    """``GET /orders/v0/orders``: oldest ``LastUpdateDate`` (or ``PurchaseDate``) first."""
    state, query = call.state, call.query
    kind, after, before = _window(call)
    size = query.get("MaxResultsPerPage", MAX_ORDERS_PAGE)
    if not 1 <= size <= MAX_ORDERS_PAGE:
        raise invalid_input(f"MaxResultsPerPage must be between 1 and {MAX_ORDERS_PAGE}")
    for name, allowed in _FILTERS.items():
        unknown = [value for value in query.get(name, []) if value not in allowed]
        if unknown:
            raise invalid_input(f"Invalid {name}: {', '.join(unknown)}")

    def stamp(order: MockOrder) -> datetime:
        return order.updated if kind == "LastUpdated" else order.purchased

    def key(order: MockOrder) -> list[str]:
        return [iso(stamp(order)), order.order_id]

    last = from_page_token(query["NextToken"], "NextToken") if "NextToken" in query else None
    if last is not None and not (isinstance(last, list) and len(last) == 2):
        raise invalid_input("Invalid NextToken.")
    last = None if last is None else [str(part) for part in last]
    chosen = sorted(
        (
            order
            for order in state.orders.values()
            if state.marketplace_id in query["MarketplaceIds"]
            and after <= stamp(order)
            and (before is None or stamp(order) <= before)
            and order.status in query.get("OrderStatuses", [order.status])
            and order.fulfillment in query.get("FulfillmentChannels", [order.fulfillment])
            and (last is None or key(order) > last)
        ),
        key=key,
    )
    payload: dict[str, Any] = {"Orders": [_order(state, order) for order in chosen[:size]]}
    if len(chosen) > size:
        payload["NextToken"] = page_token(key(chosen[size - 1]))
    window_end = iso(before or state.clock.now())
    return {"payload": payload | {f"{kind}Before": window_end}}


@sp_api("getOrderItems")
def get_order_items(call: Call) -> Any:
    """``GET /orders/v0/orders/{orderId}/orderItems`` (one item per order: one page)."""
    order = call.state.orders.get(call.path("orderId"))
    if order is None:
        raise WireError(
            404, "NotFound", "The resource specified does not exist.", call.path("orderId")
        )
    if "NextToken" in call.query:
        raise invalid_input("Invalid NextToken.")  # never issued: every order fits one page
    return {"payload": {"AmazonOrderId": order.order_id, "OrderItems": [_item(order)]}}


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
        "IsPrime": order.fulfillment == "AFN",
        **dict.fromkeys(_NOT_FLAGS, False),
    }
    if not cancelled:
        body["OrderTotal"] = _money(order.item.price * order.quantity, order.item.currency)
    return body


def _item(order: MockOrder) -> dict[str, Any]:
    cancelled = order.status == "Canceled"
    item: dict[str, Any] = {
        "ASIN": order.item.external_id,
        "OrderItemId": order.item_id,
        "SellerSKU": order.item.sku,
        "Title": f"{order.item.sku} title",
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
        item["ItemPrice"] = _money(order.item.price * order.quantity, order.item.currency)
        item["ItemTax"] = _money(Decimal(0), order.item.currency)
    return item
