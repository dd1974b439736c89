"""``ORDER_CHANGE`` notifications → ``OrderEvent`` (schema: OrderChangeNotification.json).

The payload carries what stock-sync needs, so no getOrderItems call is made: ``AmazonOrderId``,
``Summary.OrderStatus`` and ``Summary.OrderItems[]`` with ``SellerSKU`` and ``Quantity`` (both
required by the schema). An ``OrderLevel`` notification lists every item of the order, an
``OrderItemLevel`` one only the item that changed; the daemon's ledger keys each line by
(order, SKU), so either kind, and any redelivery, applies each line once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog

from connectors.amazon.offers import parse_time
from connectors.base import ChannelEvent, OrderEvent, OrderLine, OrderStatus

log = structlog.get_logger(__name__)

# Summary.OrderStatus values (schema enum). Every status but Canceled holds the units: Amazon
# reserves them from the moment the order exists (Pending: payment not yet authorised).
CANCELLED_STATUSES = frozenset({"Canceled"})
PLACED_STATUSES = frozenset(
    {
        "Pending",
        "Unshipped",
        "PartiallyShipped",
        "Shipped",
        "InvoiceUnconfirmed",
        "PendingAvailability",
        "Unfulfillable",
    }
)
MERCHANT_FULFILLED = "MFN"


def order_change(
    document: Mapping[str, Any], *, seller_id: str, marketplace_id: str, now: datetime
) -> list[ChannelEvent]:
    """One ``OrderEvent`` for a merchant-fulfilled order of ours ([] for anything else)."""
    try:
        body = document["Payload"]["OrderChangeNotification"]
        summary = body["Summary"]
        order_id = body["AmazonOrderId"]
        status = summary["OrderStatus"]
        items = summary["OrderItems"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"ORDER_CHANGE without {err}") from err
    if not isinstance(order_id, str) or not order_id or not isinstance(items, list):
        raise ValueError("ORDER_CHANGE with a malformed AmazonOrderId or OrderItems")
    if body.get("SellerId") != seller_id or summary.get("MarketplaceId") != marketplace_id:
        return []  # one destination can carry the app's other sellers and marketplaces
    if summary.get("FulfillmentType") != MERCHANT_FULFILLED:
        # FBA (AFN) units are counted in Amazon's warehouses, never in our ledger.
        return []
    if status in CANCELLED_STATUSES:
        state = OrderStatus.CANCELLED
    elif status in PLACED_STATUSES:
        state = OrderStatus.PLACED
    else:
        raise ValueError(f"ORDER_CHANGE with an unknown OrderStatus {status!r}")
    trigger = body.get("OrderChangeTrigger")
    changed = trigger.get("TimeOfOrderChange") if isinstance(trigger, Mapping) else None
    # When the order changed; the publish time when Amazon leaves that null.
    updated_at = parse_time(changed) or parse_time(document.get("EventTime")) or now
    return [
        OrderEvent(
            order_id=order_id,
            status=state,
            # A cancel gives back what its order took, so its lines only name the SKUs: keep
            # them even if Amazon reports a cancelled item's Quantity as 0.
            lines=_lines(items, order_id, keep_zero=state is OrderStatus.CANCELLED),
            updated_at=updated_at,
        )
    ]


def _lines(items: list[Any], order_id: str, *, keep_zero: bool) -> tuple[OrderLine, ...]:
    units: dict[str, int] = {}
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError(f"ORDER_CHANGE {order_id}: an order item is not an object")
        sku, quantity = item.get("SellerSKU"), item.get("Quantity")
        if not isinstance(sku, str) or not sku:
            raise ValueError(f"ORDER_CHANGE {order_id}: an order item without SellerSKU")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise ValueError(f"ORDER_CHANGE {order_id}: {sku} has no valid Quantity")
        # Two items of one SKU (e.g. a gift-wrapped and a plain one) are one ledger line.
        units[sku] = units.get(sku, 0) + quantity
    return tuple(
        OrderLine(sku, quantity) for sku, quantity in units.items() if quantity > 0 or keep_zero
    )
