"""Listings Items API 2021-08-01: reading listings and building the patches that write them.

Casing: ``attributes`` are snake_case and carry money as a JSON number; ``summaries``, ``offers``
and ``fulfillmentAvailability`` are camelCase and ``offers[].price.amount`` is a decimal string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.amazon.const import (
    AUDIENCE_ALL,
    DEFAULT_CHANNEL_CODE,
    FULFILLMENT_AVAILABILITY_PATH,
    PURCHASABLE_OFFER_PATH,
)
from connectors.amazon.models import AmazonSettings
from connectors.wire import quantize, to_decimal
from domain.listings import ChannelListing, Fulfillment
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate


@dataclass(frozen=True, slots=True)
class ParsedItem:
    """One searchListingsItems item: the domain listing plus what the connector remembers."""

    listing: ChannelListing
    asin: str | None
    product_type: str | None
    created: str | None  # summaries[].createdDate, the cursor of the next search window


def parse_item(item: Mapping[str, Any], settings: AmazonSettings) -> ParsedItem | None:
    """Map one ``Item`` to a ``ChannelListing`` (None when it has no SKU)."""
    sku = item.get("sku")
    if not isinstance(sku, str) or not sku:
        return None
    market = settings.marketplace_id
    summary = _for_marketplace(item.get("summaries"), market, "marketplaceId")
    asin = _str(summary.get("asin"))
    price, currency = _attribute_price(item.get("attributes"), market)
    if price is None:
        price, currency = _offer_price(item.get("offers"), market)
    currency = currency or settings.currency
    quantity, fulfillment = _availability(item.get("fulfillmentAvailability"))
    listing = ChannelListing(
        sku=sku,
        external_id=asin,
        price=quantize(price, currency) if price is not None else None,
        currency=currency,
        quantity=quantity,
        fulfillment=fulfillment,
        # Suppressed (not BUYABLE) or out-of-stock listings stay active: a price or
        # quantity write is exactly what brings them back.
        status="active",
        external_ids={"asin": asin} if asin else {},
    )
    return ParsedItem(
        listing=listing,
        asin=asin,
        product_type=_str(summary.get("productType")),
        created=_str(summary.get("createdDate")),
    )


def price_patches(update: PriceUpdate, settings: AmazonSettings) -> list[dict[str, Any]]:
    """``replace`` of ``purchasable_offer`` with our price and the floor/ceiling Amazon enforces.

    ``replace`` swaps the whole attribute, so min/max go with every price write (omitting them
    would drop them on Amazon's side).
    """
    currency = settings.currency
    offer: dict[str, Any] = {
        "marketplace_id": settings.marketplace_id,
        "currency": currency,
        "audience": AUDIENCE_ALL,
        "our_price": _schedule(quantize(update.price, currency)),
    }
    if update.floor is not None:
        offer["minimum_seller_allowed_price"] = _schedule(quantize(update.floor, currency))
    if update.ceiling is not None:
        offer["maximum_seller_allowed_price"] = _schedule(quantize(update.ceiling, currency))
    return [{"op": "replace", "path": PURCHASABLE_OFFER_PATH, "value": [offer]}]


def stock_patches(update: StockUpdate) -> list[dict[str, Any]]:
    """``replace`` of the merchant-fulfilled (``DEFAULT``) quantity."""
    value = [{"fulfillment_channel_code": DEFAULT_CHANNEL_CODE, "quantity": update.quantity}]
    return [{"op": "replace", "path": FULFILLMENT_AVAILABILITY_PATH, "value": value}]


def submission_result(key: str, response: Any) -> PushResult:
    """ACCEPTED means queued (reconcile verifies it took); INVALID carries Amazon's issues."""
    if not isinstance(response, Mapping):
        return PushResult(key, PushStatus.RETRY, "BAD_RESPONSE", "submission response not JSON")
    status, ref = response.get("status"), response.get("submissionId")
    ref = ref if isinstance(ref, str) else None
    if status == "ACCEPTED":
        return PushResult(key, PushStatus.ACCEPTED, marketplace_ref=ref)
    if status != "INVALID":
        # VALID only answers a VALIDATION_PREVIEW (never sent); anything else is unknown.
        return PushResult(key, PushStatus.RETRY, str(status), "submission not accepted", ref)
    issues = [i for i in response.get("issues") or [] if isinstance(i, Mapping)]
    errors = [i for i in issues if i.get("severity", "ERROR") == "ERROR"] or issues
    if errors:
        first = errors[0]
        message = "; ".join(str(i.get("message", "")) for i in errors)
        return PushResult(key, PushStatus.REJECTED, str(first.get("code") or status), message, ref)
    return PushResult(key, PushStatus.REJECTED, str(status or "INVALID"), "no issues given", ref)


def _schedule(amount: Decimal) -> list[dict[str, Any]]:
    return [{"schedule": [{"value_with_tax": amount}]}]


def _attribute_price(attributes: Any, market: str) -> tuple[Decimal | None, str | None]:
    if not isinstance(attributes, Mapping):
        return None, None
    offers = attributes.get("purchasable_offer")
    if not isinstance(offers, list):
        return None, None
    for offer in offers:
        if not isinstance(offer, Mapping):
            continue
        if offer.get("marketplace_id", market) != market:
            continue
        if offer.get("audience", AUDIENCE_ALL) != AUDIENCE_ALL:
            continue  # B2B (Amazon Business) prices are not the consumer price we reprice
        try:
            value = offer["our_price"][0]["schedule"][0]["value_with_tax"]
        except (KeyError, IndexError, TypeError):
            continue
        amount = to_decimal(value)
        if amount is not None:
            return amount, _str(offer.get("currency"))
    return None, None


def _offer_price(offers: Any, market: str) -> tuple[Decimal | None, str | None]:
    if not isinstance(offers, list):
        return None, None
    for offer in offers:
        if not isinstance(offer, Mapping) or offer.get("marketplaceId") != market:
            continue
        if offer.get("offerType", "B2C") != "B2C":
            continue
        price = offer.get("price")
        if isinstance(price, Mapping):
            amount = to_decimal(price.get("amount"))  # a decimal *string* here
            if amount is not None:
                return amount, _str(price.get("currencyCode"))
    return None, None


def _availability(entries: Any) -> tuple[int | None, Fulfillment]:
    """The merchant (DEFAULT) quantity; a listing with only AFN channels is FBA-held."""
    if not isinstance(entries, list):
        return None, Fulfillment.MERCHANT
    afn: int | None = None
    has_afn = False
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        code = entry.get("fulfillmentChannelCode")
        quantity = entry.get("quantity")
        quantity = (
            quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None
        )
        if code == DEFAULT_CHANNEL_CODE:
            return quantity, Fulfillment.MERCHANT
        if isinstance(code, str):
            has_afn = True  # AMAZON_NA, AMAZON_EU...: Amazon counts these units
            afn = quantity if afn is None else afn + (quantity or 0)
    return (afn, Fulfillment.MARKETPLACE) if has_afn else (None, Fulfillment.MERCHANT)


def _for_marketplace(entries: Any, market: str, key: str) -> Mapping[str, Any]:
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get(key) == market:
                return entry
    return {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
