"""SP-API notifications forwarded from SQS/EventBridge: signature check, unwrapping, parsing.

Amazon signs nothing (delivery to SQS/EventBridge is authorised by AWS IAM); our forwarder POSTs
to ``/webhooks/<channel>`` with ``X-Repricerd-Signature`` = lowercase hex HMAC-SHA256 of the raw
body under the channel's ``webhook_secret``. The body is the notification document, or the
SQS message, SNS notification or EventBridge event that carries it (``unwrap``); anything else
is stored and marked invalid with a warning that says what to send.
Envelopes differ in casing: ANY_OFFER_CHANGED is PascalCase (``NotificationMetadata.
NotificationId``), PRICING_HEALTH lowerCamel (``notificationMetadata.notificationId``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog
from pydantic import SecretStr

from connectors.amazon.const import (
    ANY_OFFER_CHANGED,
    EVENT_BRIDGE_SOURCE,
    MAX_ENVELOPES,
    ORDER_CHANGE,
    PRICING_HEALTH,
    SIGNATURE_HEADER,
    UNRECOGNIZED,
    UNRECOGNIZED_FIX,
)
from connectors.amazon.offers import buy_box_price, money, observation, parse_time
from connectors.amazon.orders import order_change
from connectors.wire import dumps_exact, loads_exact, quantize
from domain.errors import WebhookAuthError, WebhookError
from domain.events import ChannelEvent, OfferChanged, WebhookDelivery
from domain.offers import CompetitorOffer, OfferObservation

log = structlog.get_logger(__name__)

SkusFor = Callable[[str], list[str]]


def verify(secret: SecretStr | None, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
    """Check the HMAC over the raw body, take the notification out of its envelope (if any);
    dedupe key = the notification id, topic = its type, payload = the notification itself.

    A body that holds no notification is stored whole under topic ``unknown``, for ``parse`` to
    mark invalid with a warning (a forwarder that sends another shape loses nothing silently).
    """
    given = _header(headers, SIGNATURE_HEADER)
    if secret is None or not given:
        raise WebhookAuthError("missing signature")
    expected = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    # Compare bytes: a non-ASCII header must be a mismatch, not a TypeError.
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace")):
        raise WebhookAuthError("signature mismatch")
    try:
        text = body.decode("utf-8")
        document = loads_exact(text)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise WebhookError("body is not a JSON notification") from err
    found = unwrap(document, text)
    if found is None:
        return WebhookDelivery("sha256:" + hashlib.sha256(body).hexdigest(), UNRECOGNIZED, text)
    notification, topic, payload = found
    metadata = _either(notification, "NotificationMetadata", "notificationMetadata")
    notification_id = _either(metadata, "NotificationId", "notificationId")
    return WebhookDelivery(
        # Amazon redelivers with the same NotificationId, whatever envelope carries it; without
        # one, the notification itself is the identity.
        dedupe_key=notification_id
        if isinstance(notification_id, str) and notification_id
        else "sha256:" + hashlib.sha256(payload.encode()).hexdigest(),
        topic=topic,
        payload=payload,
    )


def unwrap(document: Any, text: str) -> tuple[Mapping[str, Any], str, str] | None:
    """(notification, its type, its JSON text) of a forwarded body, or None if it holds none.

    Accepted, nested up to ``MAX_ENVELOPES`` deep (an SQS message can carry an SNS envelope):
    the notification document itself (``NotificationType`` or ``notificationType``); an SQS
    message (``Body``, or ``body`` of an ``aws:sqs`` Lambda record) and an SNS notification
    (``{"Type":"Notification","Message":...}``) whose string holds the next document; an
    EventBridge event (``"version":"0"``, ``source`` ``aws.partner/sellingpartnerapi.amazon...``)
    whose ``detail`` is the notification, typed by ``detail-type`` if it names no type itself.
    """
    for _ in range(MAX_ENVELOPES + 1):
        if not isinstance(document, Mapping):
            return None
        topic = _either(document, "NotificationType", "notificationType")
        if isinstance(topic, str) and topic:
            return document, topic, text
        inner = _sqs_or_sns(document)
        if inner is None:
            return _event_bridge(document)
        text = inner
        try:
            document = loads_exact(text)
        except ValueError:
            return None
    return None


def _sqs_or_sns(document: Mapping[str, Any]) -> str | None:
    """The JSON text an SQS message or SNS notification carries (None: neither)."""
    if document.get("Type") == "Notification" and isinstance(document.get("Message"), str):
        return str(document["Message"])
    if isinstance(document.get("Body"), str):  # SQS ReceiveMessage's Message
        return str(document["Body"])
    if document.get("eventSource") == "aws:sqs" and isinstance(document.get("body"), str):
        return str(document["body"])  # one record of an SQS event (Lambda, EventBridge Pipes)
    return None


def _event_bridge(document: Mapping[str, Any]) -> tuple[Mapping[str, Any], str, str] | None:
    source, detail = document.get("source"), document.get("detail")
    if (
        document.get("version") != "0"
        or not isinstance(source, str)
        or not source.startswith(EVENT_BRIDGE_SOURCE)
        or not isinstance(detail, Mapping)
    ):
        return None
    topic = _either(detail, "NotificationType", "notificationType") or document.get("detail-type")
    if not isinstance(topic, str) or not topic:
        return None
    return detail, topic, dumps_exact(detail).decode("utf-8")


def parse(
    delivery: WebhookDelivery,
    *,
    seller_id: str,
    marketplace_id: str,
    currency: str,
    skus_for: SkusFor,
    now: datetime,
) -> list[ChannelEvent]:
    """Domain events of one stored delivery ([] for types the daemon does not use)."""
    if delivery.topic == UNRECOGNIZED:
        log.warning("amazon.notification.unrecognized", fix=UNRECOGNIZED_FIX)
        raise ValueError(f"no SP-API notification in the body: {UNRECOGNIZED_FIX}")
    document = loads_exact(delivery.payload)  # ValueError on bad JSON
    if not isinstance(document, Mapping):
        raise ValueError("notification is not a JSON object")
    if delivery.topic == ANY_OFFER_CHANGED:
        return _any_offer_changed(document, seller_id, marketplace_id, currency, skus_for, now)
    if delivery.topic == PRICING_HEALTH:
        return _pricing_health(document, seller_id, marketplace_id, currency, skus_for, now)
    if delivery.topic == ORDER_CHANGE:
        return order_change(document, seller_id=seller_id, marketplace_id=marketplace_id, now=now)
    return []


def _any_offer_changed(
    document: Mapping[str, Any],
    seller_id: str,
    market: str,
    currency: str,
    skus_for: SkusFor,
    now: datetime,
) -> list[ChannelEvent]:
    try:
        body = document["Payload"]["AnyOfferChangedNotification"]
        trigger = body["OfferChangeTrigger"]
        asin = trigger["ASIN"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"ANY_OFFER_CHANGED without {err}") from err
    if not isinstance(asin, str) or not isinstance(body, Mapping):
        raise ValueError("ANY_OFFER_CHANGED with a malformed ASIN or payload")
    if trigger.get("MarketplaceId") != market:
        return []  # the same destination can carry the seller's other marketplaces
    if str(trigger.get("ItemCondition", "new")).lower() != "new":
        return []  # used/collectible competition is not the competition of our new offers
    observed_at = (
        parse_time(document.get("EventTime")) or parse_time(trigger.get("TimeOfOfferChange")) or now
    )
    return [
        OfferChanged(
            sku,
            observation(
                sku,
                body,
                seller_id=seller_id,
                currency=currency,
                observed_at=observed_at,
                source="notification",
            ),
        )
        for sku in _skus(asin, skus_for)
    ]


def _pricing_health(
    document: Mapping[str, Any],
    seller_id: str,
    market: str,
    currency: str,
    skus_for: SkusFor,
    now: datetime,
) -> list[ChannelEvent]:
    try:
        payload = document["payload"]
        trigger = payload["offerChangeTrigger"]
        asin = trigger["asin"]
        summary = payload["summary"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"PRICING_HEALTH without {err}") from err
    if not isinstance(asin, str) or not isinstance(summary, Mapping):
        raise ValueError("PRICING_HEALTH with a malformed ASIN or summary")
    if trigger.get("marketplaceId") != market:
        return []
    reference = summary.get("referencePrice")
    reference = reference if isinstance(reference, Mapping) else {}
    # competitivePriceThreshold is what Buy Box eligibility is judged against; the others are
    # fallbacks in the order of how close they are to "a price shoppers accept today".
    reference_price = next(
        (
            amount
            for key in (
                "competitivePriceThreshold",
                "averageSellingPrice",
                "retailOfferPrice",
                "msrpPrice",
            )
            if (amount := money(reference.get(key), currency, "amount")) is not None
        ),
        None,
    )
    own = _merchant_offer(payload.get("merchantOffer"), seller_id, currency)
    observed_at = parse_time(document.get("eventTime")) or now
    return [
        OfferChanged(
            sku,
            OfferObservation(
                sku=sku,
                observed_at=observed_at,
                # Only our own offer is in this notification: competitors are not known here.
                offers=(own,) if own else (),
                source="notification",
                buy_box_price=_camel_buy_box(summary.get("buyBoxPrices"), currency),
                reference_price=reference_price,
            ),
        )
        for sku in _skus(asin, skus_for)
    ]


def _merchant_offer(offer: Any, seller_id: str, currency: str) -> CompetitorOffer | None:
    if not isinstance(offer, Mapping):
        return None
    price = money(offer.get("listingPrice"), currency, "amount")
    if price is None:
        return None
    return CompetitorOffer(
        seller_id=seller_id,
        price=price,
        shipping=money(offer.get("shipping"), currency, "amount") or quantize(Decimal(0), currency),
        fulfillment="fba" if offer.get("fulfillmentType") == "AFN" else "fbm",
        is_own=True,
    )


def _camel_buy_box(prices: Any, currency: str) -> Any:
    camel = [
        {
            "condition": p.get("condition"),
            "LandedPrice": _pascal(p.get("landedPrice")),
            "ListingPrice": _pascal(p.get("listingPrice")),
            "Shipping": _pascal(p.get("shipping")),
        }
        for p in (prices if isinstance(prices, list) else [])
        if isinstance(p, Mapping)
    ]
    return buy_box_price(camel, currency)


def _pascal(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {"Amount": value.get("amount"), "CurrencyCode": value.get("currencyCode")}
    return None


def _skus(asin: str, skus_for: SkusFor) -> list[str]:
    skus = skus_for(asin)
    if not skus:
        # Notifications name the ASIN only; until fetch_listings has seen it, it maps to no SKU.
        log.warning("amazon.notification.unknown_asin", asin=asin)
    return skus


def _either(mapping: Any, pascal: str, camel: str) -> Any:
    if not isinstance(mapping, Mapping):
        return None
    return mapping.get(pascal, mapping.get(camel))


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value or ""
