"""Notifications pushed to the daemon's webhook: ANY_OFFER_CHANGED and PRICING_HEALTH.

Amazon delivers these to SQS/EventBridge; our deployment forwards each message body unchanged
to the daemon's webhook and signs it: ``X-Repricerd-Signature`` = lowercase hex HMAC-SHA256 of
the raw body keyed with the shared secret. The mock plays Amazon and the forwarder together.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import aiohttp
import structlog

from connectors.mock.amazon.book import Book, read_book
from connectors.mock.amazon.const import SIGNATURE_HEADER
from connectors.mock.amazon.state import AmazonMockState, SentNotification
from connectors.mock.amazon.wire import number
from connectors.mock.kit.webhooks import hmac_sha256, post
from connectors.mock.kit.wire import iso
from connectors.mock.market import MockListing

log = structlog.get_logger(__name__)

ANY_OFFER_CHANGED = "ANY_OFFER_CHANGED"
PRICING_HEALTH = "PRICING_HEALTH"
ORDER_CHANGE = "ORDER_CHANGE"
TYPES = (ANY_OFFER_CHANGED, PRICING_HEALTH)  # what ``/_mock/notify`` can fire on demand


def sign(secret: str, body: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of ``body``."""
    return hmac_sha256(secret, body).hex()


def _money(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"Amount": number(amount), "CurrencyCode": currency}


def _aoc_summary(book: Book) -> dict[str, Any]:
    cur = book.currency
    counts, lowest = [], []
    for fba, channel in ((True, "Amazon"), (False, "Merchant")):
        cheapest = book.lowest(fba)
        if cheapest is None:
            continue
        count = sum(1 for offer in book.offers if offer.fba is fba)
        counts.append({"Condition": "new", "FulfillmentChannel": channel, "OfferCount": count})
        lowest.append(
            {
                "Condition": "new",
                "FulfillmentChannel": channel,
                "LandedPrice": _money(cheapest.landed, cur),
                "ListingPrice": _money(cheapest.price, cur),
                "Shipping": _money(cheapest.shipping, cur),
            }
        )
    winner = book.winner
    buy_box = []
    if winner is not None:
        buy_box.append(
            {
                "Condition": "new",
                "LandedPrice": _money(winner.landed, cur),
                "ListingPrice": _money(winner.price, cur),
                "Shipping": _money(winner.shipping, cur),
            }
        )
    lowest_landed = min((offer.landed for offer in book.offers), default=book.list_price)
    return {
        "NumberOfOffers": counts,
        "LowestPrices": lowest,
        "BuyBoxPrices": buy_box,
        "ListPrice": _money(book.list_price, cur),
        "MinimumAdvertisedPrice": _money(book.competitive_threshold, cur),
        "SuggestedLowerPricePlusShipping": _money(lowest_landed, cur),
        "TotalBuyBoxEligibleOffers": len(book.offers),
        "SalesRankings": [
            {"ProductCategoryId": "home_display_on_website", "Rank": book.sales_rank}
        ],
        "NumberOfBuyBoxEligibleOffers": counts,
        "CompetitivePriceThreshold": _money(book.competitive_threshold, cur),
    }


def any_offer_changed(state: AmazonMockState, listing: MockListing, change: str) -> dict[str, Any]:
    """An ANY_OFFER_CHANGED document (PascalCase) after competitors moved once more."""
    book = read_book(state, listing)
    now = iso(state.clock.now())
    offers = [
        {
            "SellerId": offer.seller_id,
            "SubCondition": "new",
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
            "ListingPrice": _money(offer.price, book.currency),
            "Points": {"PointsNumber": 0},
            "Shipping": _money(offer.shipping, book.currency),
            "ShipsFrom": {"Country": "US", "State": "WA"},
            "IsFulfilledByAmazon": offer.fba,
            "IsBuyBoxWinner": offer.buy_box,
            "PrimeInformation": {"IsOfferPrime": offer.fba, "IsOfferNationalPrime": offer.fba},
            "IsExpeditedShippingAvailable": offer.fba,
            "IsFeaturedMerchant": offer.rating_pct >= 90,
            "ShipsDomestically": True,
            "ShipsInternationally": False,
        }
        for offer in book.top
    ]
    return {
        "NotificationVersion": "1.0",
        "NotificationType": ANY_OFFER_CHANGED,
        "PayloadVersion": "1.0",
        "EventTime": now,
        "Payload": {
            "AnyOfferChangedNotification": {
                "SellerId": state.seller_id,
                "OfferChangeTrigger": {
                    "MarketplaceId": state.marketplace_id,
                    "ASIN": listing.external_id,
                    "ItemCondition": "new",
                    "TimeOfOfferChange": now,
                    "OfferChangeType": change,
                },
                "Summary": _aoc_summary(book),
                "Offers": offers,
            }
        },
        "NotificationMetadata": {
            "ApplicationId": state.application_id,
            "SubscriptionId": str(uuid.uuid5(uuid.NAMESPACE_URL, ANY_OFFER_CHANGED)),
            "PublishTime": now,
            "NotificationId": str(uuid.uuid4()),
        },
    }


def _m(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"amount": number(amount), "currencyCode": currency}


def pricing_health(state: AmazonMockState, listing: MockListing) -> dict[str, Any]:
    """A PRICING_HEALTH document (lowerCamel): our offer lost Buy Box eligibility."""
    book = read_book(state, listing)
    cur = book.currency
    now = iso(state.clock.now())
    fulfillment = "AFN" if listing.fulfillment.value == "marketplace" else "MFN"
    counts = [
        {
            "condition": "new",
            "fulfillmentType": kind,
            "offerCount": sum(1 for offer in book.offers if offer.fba is (kind == "AFN")),
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
            "competitivePriceThreshold": _m(book.competitive_threshold, cur),
            "retailOfferPrice": _m(book.competitive_threshold, cur),
            "msrpPrice": _m(book.list_price, cur),
            "averageSellingPrice": _m(book.competitive_threshold, cur),
        },
    }
    winner = book.winner
    if winner is not None:
        summary["buyBoxPrices"] = [
            {
                "condition": "new",
                "listingPrice": _m(winner.price, cur),
                "shipping": _m(winner.shipping, cur),
                "landedPrice": _m(winner.landed, cur),
            }
        ]
    return {
        "notificationVersion": "1.0",
        "notificationType": PRICING_HEALTH,
        "payloadVersion": "1.0",
        "eventTime": now,
        "payload": {
            "issueType": "BuyBoxDisqualification",
            "sellerId": state.seller_id,
            "offerChangeTrigger": {
                "marketplaceId": state.marketplace_id,
                "asin": listing.external_id,
                "itemCondition": "new",
                "timeOfOfferChange": now,
            },
            "merchantOffer": {
                "condition": "new",
                "fulfillmentType": fulfillment,
                "listingPrice": _m(listing.price, cur),
                "shipping": _m(Decimal("0"), cur),
                "landedPrice": _m(listing.price, cur),
            },
            "summary": summary,
        },
        "notificationMetadata": {
            "applicationId": state.application_id,
            "subscriptionId": str(uuid.uuid5(uuid.NAMESPACE_URL, PRICING_HEALTH)),
            "publishTime": now,
            "notificationId": str(uuid.uuid4()),
        },
    }


def order_change(
    state: AmazonMockState,
    listing: MockListing,
    quantity: int,
    order_id: str,
    *,
    status: str = "Unshipped",
    item_id: str | None = None,
) -> dict[str, Any]:
    """An ORDER_CHANGE document (PascalCase): an order of ``quantity`` units of ``listing`` is
    placed (``Unshipped``) or cancelled (``Canceled``, its item's Quantity then 0)."""
    now = iso(state.clock.now())
    fulfillment = "AFN" if listing.fulfillment.value == "marketplace" else "MFN"
    cancelled = status == "Canceled"
    reason = "Order cancelled" if cancelled else "Order placed"
    return {
        "NotificationVersion": "1.0",
        "NotificationType": ORDER_CHANGE,
        "PayloadVersion": "1.0",
        "EventTime": now,
        "Payload": {
            "OrderChangeNotification": {
                "NotificationLevel": "OrderLevel",
                "SellerId": state.seller_id,
                "AmazonOrderId": order_id,
                "OrderChangeType": "OrderStatusChange",
                "OrderChangeTrigger": {"TimeOfOrderChange": now, "ChangeReason": reason},
                "Summary": {
                    "MarketplaceId": state.marketplace_id,
                    "OrderStatus": status,
                    "PurchaseDate": now,
                    "DestinationPostalCode": "98109",
                    "FulfillmentType": fulfillment,
                    "OrderType": "StandardOrder",
                    "NumberOfItemsShipped": 0,
                    "NumberOfItemsUnshipped": 0 if cancelled else quantity,
                    "OrderItems": [
                        {
                            "OrderItemId": item_id or str(uuid.uuid4().int)[:14],
                            "SellerSKU": listing.sku,
                            "SupplySourceId": None,
                            # Unshipped|Shipped only (schema): a cancelled item never shipped.
                            "OrderItemStatus": "Unshipped",
                            "Quantity": 0 if cancelled else quantity,
                            "QuantityShipped": 0,
                            "IsBuyerRequestedCancel": False,
                        }
                    ],
                },
            }
        },
        "NotificationMetadata": {
            "ApplicationId": state.application_id,
            "SubscriptionId": str(uuid.uuid5(uuid.NAMESPACE_URL, ORDER_CHANGE)),
            "PublishTime": now,
            "NotificationId": str(uuid.uuid4()),
        },
    }


def build(state: AmazonMockState, listing: MockListing, kind: str) -> dict[str, Any]:
    """The notification document of ``kind`` for ``listing``."""
    if kind == ANY_OFFER_CHANGED:
        return any_offer_changed(state, listing, "External")
    if kind == PRICING_HEALTH:
        return pricing_health(state, listing)
    raise ValueError(f"unsupported notification type {kind!r}")


def notification_id(document: dict[str, Any]) -> str:
    """The id Amazon puts in the metadata (whatever the casing of the envelope)."""
    meta = document.get("NotificationMetadata") or document["notificationMetadata"]
    return str(meta.get("NotificationId") or meta["notificationId"])


async def deliver(
    state: AmazonMockState, session: aiohttp.ClientSession, sku: str, document: dict[str, Any]
) -> SentNotification:
    """POST one signed document to the webhook target; record the outcome on the state."""
    kind = str(document.get("NotificationType") or document["notificationType"])
    body = json.dumps(document).encode()
    status: int | None = None
    if state.webhook_url:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(state.webhook_secret, body),
        }
        status, error = await post(session, state.webhook_url, body, headers)
        if error is not None:
            log.warning("amazon_mock.notify_failed", kind=kind, sku=sku, error=error)
    sent = SentNotification(kind, notification_id(document), sku, status, document)
    state.notifications.append(sent)
    return sent
