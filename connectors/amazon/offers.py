"""Competitor offers: Product Pricing v0 results and ANY_OFFER_CHANGED payloads → domain.

Both are PascalCase with money as ``{"Amount": <JSON number>, "CurrencyCode": ...}`` (parsed
exactly by ``loads_exact``); they differ in small ways (``condition`` vs ``Condition`` in
``BuyBoxPrices``; ``MyOffer`` only in Pricing v0; ``IsBuyBoxWinner`` optional in notifications).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from connectors.wire import quantize, to_decimal
from domain.offers import CompetitorOffer, OfferObservation


def money(value: Any, currency: str, amount_key: str = "Amount") -> Decimal | None:
    """``{"Amount": 21.0, "CurrencyCode": "USD"}`` → Decimal('21.00') (None if absent)."""
    if not isinstance(value, Mapping):
        return None
    amount = to_decimal(value.get(amount_key))
    return quantize(amount, currency) if amount is not None else None


def parse_offers(offers: Any, *, seller_id: str, currency: str) -> tuple[CompetitorOffer, ...]:
    """Offer list (Pricing v0 ``Offers`` or notification ``Offers``) → ``CompetitorOffer``s."""
    parsed = []
    for offer in offers if isinstance(offers, list) else []:
        if not isinstance(offer, Mapping):
            continue
        price = money(offer.get("ListingPrice"), currency)
        if price is None:
            continue
        mine = offer.get("MyOffer") is True
        seller = offer.get("SellerId")
        seller = seller if isinstance(seller, str) and seller else (seller_id if mine else "")
        rating = offer.get("SellerFeedbackRating")
        rating = rating if isinstance(rating, Mapping) else {}
        positive = to_decimal(rating.get("SellerPositiveFeedbackRating"))
        count = rating.get("FeedbackCount")
        parsed.append(
            CompetitorOffer(
                seller_id=seller or "unknown",
                price=price,
                shipping=money(offer.get("Shipping"), currency) or quantize(Decimal(0), currency),
                fulfillment="fba" if offer.get("IsFulfilledByAmazon") is True else "fbm",
                rating_pct=int(positive.to_integral_value()) if positive is not None else None,
                rating_count=count if isinstance(count, int) and count >= 0 else None,
                is_buy_box_winner=offer.get("IsBuyBoxWinner") is True,
                is_own=mine or seller == seller_id,
            )
        )
    return tuple(parsed)


def buy_box_price(prices: Any, currency: str, condition: str = "new") -> Decimal | None:
    """The landed Buy Box price for ``condition`` from ``Summary.BuyBoxPrices``."""
    for entry in prices if isinstance(prices, list) else []:
        if not isinstance(entry, Mapping):
            continue
        cond = entry.get("condition", entry.get("Condition"))
        if not isinstance(cond, str) or cond.lower() != condition:
            continue
        landed = money(entry.get("LandedPrice"), currency)
        if landed is not None:
            return landed
        listing = money(entry.get("ListingPrice"), currency)
        if listing is not None:
            return listing + (money(entry.get("Shipping"), currency) or Decimal(0))
    return None


def observation(
    sku: str,
    result: Mapping[str, Any],
    *,
    seller_id: str,
    currency: str,
    observed_at: datetime,
    source: str,
) -> OfferObservation:
    """A ``GetOffersResult``-shaped body (``Summary`` + ``Offers``) → ``OfferObservation``."""
    summary = result.get("Summary")
    summary = summary if isinstance(summary, Mapping) else {}
    offers = parse_offers(result.get("Offers"), seller_id=seller_id, currency=currency)
    winner = next((o.seller_id for o in offers if o.is_buy_box_winner), None)
    return OfferObservation(
        sku=sku,
        observed_at=observed_at,
        offers=offers,
        source=source,
        buy_box_price=buy_box_price(summary.get("BuyBoxPrices"), currency),
        buy_box_seller=winner,
        # Above this (price + shipping - points) the offer may lose Buy Box eligibility: the
        # marketplace's own reference for a sane price.
        reference_price=money(summary.get("CompetitivePriceThreshold"), currency),
    )


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 UTC timestamp (``2025-01-11T00:09:53.109Z``) → aware datetime."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
