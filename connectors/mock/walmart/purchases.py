"""Purchase orders: what a shopper's order leaves behind, and Walmart's line cancels.

``record`` stores each order placed through ``/_mock/orders`` in the shape getAllOrders returns
(orders.json ``Order``: ``orderDate``/``statusDate`` epoch ms, ``orderLines.orderLine[]`` with
``item.sku``, ``orderLineQuantity`` and ``orderLineStatuses``); ``GET /v3/orders``
(``connectors.mock.walmart.orders``) lists them. ``cancel_line`` is Walmart's auto-cancel: the
line's status becomes ``Cancelled``, the order is modified, the units come back, and the
``PO_LINE_AUTOCANCELLED`` event is returned for the caller to push.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from connectors.mock.kit.wire import iso as iso_time
from connectors.mock.market import MockListing
from connectors.mock.walmart.const import ORDER_CONTENT_CODE, ORDER_NOT_FOUND_CODE
from connectors.mock.walmart.events import Event
from connectors.mock.walmart.state import PurchaseOrder, WalmartMockState
from connectors.mock.walmart.wire import WireError, epoch_ms, invalid, number


def record(
    state: WalmartMockState, listing: MockListing, quantity: int, po: str, customer: str, wfs: bool
) -> dict[str, Any]:
    """Store the purchase order of one shopper's order (one line) and return its document."""
    now = state.clock.now()
    ms = epoch_ms(now.timestamp())
    units = {"unitOfMeasurement": "EACH", "amount": str(quantity)}
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
        "orderLines": {
            "orderLine": [
                {
                    "lineNumber": "1",
                    "item": {
                        "productName": state.meta_of(listing).product_name,
                        "sku": listing.sku,
                    },
                    "charges": {
                        "charge": [
                            {
                                "chargeType": "PRODUCT",
                                "chargeName": "ItemPrice",
                                "chargeAmount": {
                                    "currency": listing.currency,
                                    "amount": number(listing.price * Decimal(quantity)),
                                },
                            }
                        ]
                    },
                    "orderLineQuantity": dict(units),
                    "statusDate": ms,
                    "orderLineStatuses": {
                        "orderLineStatus": [{"status": "Created", "statusQuantity": dict(units)}]
                    },
                    "fulfillment": {"fulfillmentOption": "S2H", "shipMethod": "VALUE"},
                }
            ]
        },
        "shipNode": {"type": "WFSFulfilled" if wfs else "SellerFulfilled"},
    }
    state.purchase_orders[po] = PurchaseOrder(
        document, now, now, "WFSFulfilled" if wfs else "SellerFulfilled"
    )
    return document


def cancel_line(state: WalmartMockState, po: str, line_number: str) -> Event:
    """Auto-cancel one line: status Cancelled, units back on the listing, the event to push."""
    order = state.purchase_orders.get(po)
    lines = order.document["orderLines"]["orderLine"] if order else []
    line = next((row for row in lines if row["lineNumber"] == line_number), None)
    if order is None or line is None:
        raise WireError(404, ORDER_NOT_FOUND_CODE, f"No line {line_number} in order {po}.")
    statuses = line["orderLineStatuses"]["orderLineStatus"]
    if all(entry["status"] == "Cancelled" for entry in statuses):
        raise invalid(ORDER_CONTENT_CODE, f"Line {line_number} of {po} is already cancelled.")
    now = state.clock.now()
    line["orderLineStatuses"]["orderLineStatus"] = [
        {
            "status": "Cancelled",
            "statusQuantity": dict(line["orderLineQuantity"]),
            "cancellationReason": "SELLER_CANCEL",
        }
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
        "orderDate": iso_time(order.created),
        "orderLines": [
            {
                "lineNumber": line_number,
                "sku": sku,
                "quantity": {"unitOfMeasure": "EACH", "measurementValue": str(quantity)},
                "status": "CANCELLED",
                "statusDate": iso_time(now),
                "shipNodeType": order.ship_node_type,
            }
        ],
    }
    return Event("PO_LINE_AUTOCANCELLED", sku, payload)
