"""Notifications pushed to the daemon's webhook: ANY_OFFER_CHANGED, PRICING_HEALTH, ORDER_CHANGE.

The mock plays Amazon (SQS/EventBridge) and our forwarder, which posts each message body to the
webhook with ``X-Repricerd-Signature`` = lowercase hex HMAC-SHA256 of the body (shared secret).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import aiohttp
import structlog

from connectors.mock.amazon.pricing import MAX_OFFERS, read_book
from connectors.mock.amazon.state import AmazonMockState, SentNotification, fulfillment_channel
from connectors.mock.kit.webhooks import hmac_sha256, post
from connectors.mock.kit.wire import iso
from connectors.mock.market import MockListing

log = structlog.get_logger(__name__)

ANY_OFFER_CHANGED = "ANY_OFFER_CHANGED"
PRICING_HEALTH = "PRICING_HEALTH"
ORDER_CHANGE = "ORDER_CHANGE"


def _lower(document: dict[str, Any]) -> dict[str, Any]:
    return {key[0].lower() + key[1:]: value for key, value in document.items()}


def _envelope(
    state: AmazonMockState, kind: str, payload: dict[str, Any], pascal: bool = True
) -> dict[str, Any]:
    """The notification envelope around ``payload`` (PascalCase, or lowerCamel keys)."""
    now = iso(state.clock.now())
    metadata = {
        "ApplicationId": state.application_id,
        "SubscriptionId": str(uuid.uuid5(uuid.NAMESPACE_URL, kind)),
        "PublishTime": now,
        "NotificationId": str(uuid.uuid4()),
    }
    document = {
        "NotificationVersion": "1.0",
        "NotificationType": kind,
        "PayloadVersion": "1.0",
        "EventTime": now,
        "Payload": payload,
        "NotificationMetadata": metadata if pascal else _lower(metadata),
    }
    return document if pascal else _lower(document)


def any_offer_changed(
    state: AmazonMockState, listing: MockListing, change: str = "External"
) -> dict[str, Any]:
    """An ANY_OFFER_CHANGED document (PascalCase) after competitors moved once more."""
    book = read_book(state, listing)
    money, now = book.money, iso(state.clock.now())
    summary = book.summary(pascal=True)
    lowest_landed = min((offer.landed for offer in book.offers), default=book.list_price)
    summary |= {
        "ListPrice": money(book.list_price),
        "MinimumAdvertisedPrice": money(book.competitive_threshold),
        "SuggestedLowerPricePlusShipping": money(lowest_landed),
        "TotalBuyBoxEligibleOffers": len(book.offers),
        "SalesRankings": [
            {"ProductCategoryId": "home_display_on_website", "Rank": book.sales_rank}
        ],
        "NumberOfBuyBoxEligibleOffers": summary["NumberOfOffers"],
        "CompetitivePriceThreshold": money(book.competitive_threshold),
    }
    offers = [
        book.offer(offer)
        | {
            "SellerFeedbackRating": {
                "FeedbackCount": offer.rating_count,
                "SellerPositiveFeedbackRating": offer.rating_pct,
            },
            "ShippingTime": {
                "MinimumHours": 0 if offer.fba else 24,
                "MaximumHours": 0 if offer.fba else 48,
                "AvailabilityType": "NOW",
                "AvailableDate": now,
            },
            "Points": {"PointsNumber": 0},
            "ShipsFrom": {"Country": "US", "State": "WA"},
            "PrimeInformation": {"IsOfferPrime": offer.fba, "IsOfferNationalPrime": offer.fba},
            "IsExpeditedShippingAvailable": offer.fba,
            "ShipsDomestically": True,
            "ShipsInternationally": False,
        }
        for offer in book.offers[:MAX_OFFERS]
    ]
    trigger = {
        "MarketplaceId": state.marketplace_id,
        "ASIN": listing.external_id,
        "ItemCondition": "new",
        "TimeOfOfferChange": now,
        "OfferChangeType": change,
    }
    notification = {"SellerId": state.seller_id, "OfferChangeTrigger": trigger, "Summary": summary}
    payload = {"AnyOfferChangedNotification": notification | {"Offers": offers}}
    return _envelope(state, ANY_OFFER_CHANGED, payload)


def pricing_health(state: AmazonMockState, listing: MockListing) -> dict[str, Any]:
    """A PRICING_HEALTH document (lowerCamel): our offer lost Buy Box eligibility."""
    book = read_book(state, listing)
    now = iso(state.clock.now())

    def money(amount: Decimal) -> dict[str, Any]:
        return book.money(amount, lower=True)

    counts = [
        {
            "condition": "new",
            "fulfillmentType": kind,
            "offerCount": sum(offer.fba is (kind == "AFN") for offer in book.offers),
        }
        for kind in ("AFN", "MFN")
    ]
    summary: dict[str, Any] = {
        "numberOfOffers": counts,
        "buyBoxEligibleOffers": counts,
        "salesRankings": [
            {"productCategoryId": "home_display_on_website", "rank": book.sales_rank}
        ],
        "referencePrice": {
            "competitivePriceThreshold": money(book.competitive_threshold),
            "retailOfferPrice": money(book.competitive_threshold),
            "msrpPrice": money(book.list_price),
            "averageSellingPrice": money(book.competitive_threshold),
        },
    }
    for winner in book.buy_box:
        prices = book.prices(winner.price, winner.shipping, lower=True)
        summary["buyBoxPrices"] = [{"condition": "new"} | prices]
    payload = {
        "issueType": "BuyBoxDisqualification",
        "sellerId": state.seller_id,
        "offerChangeTrigger": {
            "marketplaceId": state.marketplace_id,
            "asin": listing.external_id,
            "itemCondition": "new",
            "timeOfOfferChange": now,
        },
        "merchantOffer": {"condition": "new", "fulfillmentType": fulfillment_channel(listing)}
        | book.prices(listing.price, Decimal("0"), lower=True),
        "summary": summary,
    }
    return _envelope(state, PRICING_HEALTH, payload, pascal=False)


def order_change(
    state: AmazonMockState,
    listing: MockListing,
    quantity: int,
    order_id: str,
    *,
    status: str = "Unshipped",
    item_id: str | None = None,
) -> dict[str, Any]:
    """An ORDER_CHANGE (PascalCase) of ``quantity`` units placed or ``Canceled`` (Quantity 0)."""
    now = iso(state.clock.now())
    cancelled = status == "Canceled"
    item = {
        "OrderItemId": item_id or str(uuid.uuid4().int)[:14],
        "SellerSKU": listing.sku,
        "SupplySourceId": None,
        # Unshipped|Shipped only (schema): a cancelled item never shipped.
        "OrderItemStatus": "Unshipped",
        "Quantity": 0 if cancelled else quantity,
        "QuantityShipped": 0,
        "IsBuyerRequestedCancel": False,
    }
    summary = {
        "MarketplaceId": state.marketplace_id,
        "OrderStatus": status,
        "PurchaseDate": now,
        "DestinationPostalCode": "98109",
        "FulfillmentType": fulfillment_channel(listing),
        "OrderType": "StandardOrder",
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": 0 if cancelled else quantity,
        "OrderItems": [item],
    }
    notification = {
        "NotificationLevel": "OrderLevel",
        "SellerId": state.seller_id,
        "AmazonOrderId": order_id,
        "OrderChangeType": "OrderStatusChange",
        "OrderChangeTrigger": {
            "TimeOfOrderChange": now,
            "ChangeReason": "Order cancelled" if cancelled else "Order placed",
        },
        "Summary": summary,
    }
    return _envelope(state, ORDER_CHANGE, {"OrderChangeNotification": notification})


# What ``/_mock/notify`` can fire on demand.
BUILDERS: dict[str, Callable[[AmazonMockState, MockListing], dict[str, Any]]] = {
    ANY_OFFER_CHANGED: any_offer_changed,
    PRICING_HEALTH: pricing_health,
}


async def deliver(
    state: AmazonMockState, session: aiohttp.ClientSession, sku: str, document: dict[str, Any]
) -> SentNotification:
    """POST one signed document to the webhook target; record the outcome on the state."""
    kind = str(document.get("NotificationType") or document["notificationType"])
    meta = document.get("NotificationMetadata") or document["notificationMetadata"]
    body = json.dumps(document).encode()
    status: int | None = None
    if state.webhook_url:
        signature = hmac_sha256(state.webhook_secret, body).hex()
        headers = {"Content-Type": "application/json", "X-Repricerd-Signature": signature}
        status, error = await post(session, state.webhook_url, body, headers)
        if error is not None:
            log.warning("amazon_mock.notify_failed", kind=kind, sku=sku, error=error)
    notification_id = str(meta.get("NotificationId") or meta["notificationId"])
    sent = SentNotification(kind, notification_id, sku, status, document)
    state.notifications.append(sent)
    return sent
