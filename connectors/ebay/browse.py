"""Competitor offers from the Browse API ``item_summary/search`` (guide §3.4).

One search per SKU, by the product's GTIN (or its title), cheapest first (``sort=price``), with
the configured ``filter`` plus ``priceCurrency``; the application token is enough. Offers of our
own seller (``own_seller_id``) and our own listings (``legacyItemId``) are left out, as are
offers in another currency. eBay has no Buy Box, so observations carry offers only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import structlog

from connectors.ebay.inventory import OfferRef
from connectors.ebay.models import EbaySettings, to_money
from domain.offers import CompetitorOffer, OfferObservation

log = structlog.get_logger(__name__)


def search_params(settings: EbaySettings, ref: OfferRef) -> dict[str, str] | None:
    """The query of one SKU's search, or None when the product has neither GTIN nor title."""
    params: dict[str, str] = {}
    if settings.browse_query == "gtin" and ref.gtin:
        params["gtin"] = ref.gtin
    elif ref.title:
        params["q"] = ref.title
    else:
        return None
    currency = f"priceCurrency:{settings.currency}"
    params["filter"] = (
        f"{settings.browse_filter},{currency}" if settings.browse_filter else currency
    )
    params["sort"] = "price"
    params["limit"] = str(settings.browse_limit)
    return params


def observation(
    sku: str,
    body: Mapping[str, Any],
    *,
    settings: EbaySettings,
    own_listing_ids: frozenset[str],
    observed_at: datetime,
) -> OfferObservation:
    """Competitor offers of one search answer (``itemSummaries``), cheapest landed price first."""
    offers: list[CompetitorOffer] = []
    summaries = body.get("itemSummaries")
    for summary in summaries if isinstance(summaries, list) else []:
        offer = _offer(summary, settings, own_listing_ids)
        if offer is not None:
            offers.append(offer)
    offers.sort(key=lambda o: (o.landed_price, o.seller_id))
    return OfferObservation(sku=sku, observed_at=observed_at, offers=tuple(offers), source="poll")


def _offer(
    summary: object, settings: EbaySettings, own_listing_ids: frozenset[str]
) -> CompetitorOffer | None:
    if not isinstance(summary, Mapping):
        return None
    seller = summary.get("seller")
    username = seller.get("username") if isinstance(seller, Mapping) else None
    if not isinstance(username, str) or not username:
        return None
    if settings.own_seller_id and username.lower() == settings.own_seller_id.lower():
        return None
    if str(summary.get("legacyItemId") or "") in own_listing_ids:
        return None
    price = _amount(summary.get("price"), settings.currency)
    if price is None:
        return None
    shipping = _shipping(summary.get("shippingOptions"), settings.currency)
    return CompetitorOffer(
        seller_id=username,
        price=price,
        shipping=shipping,
        fulfillment="fbm",
        rating_pct=_percent(
            seller.get("feedbackPercentage") if isinstance(seller, Mapping) else None
        ),
        rating_count=_count(seller.get("feedbackScore") if isinstance(seller, Mapping) else None),
    )


def _amount(value: object, currency: str) -> Decimal | None:
    if not isinstance(value, Mapping) or value.get("currency") not in (None, currency):
        return None
    return to_money(value.get("value"))


def _shipping(options: object, currency: str) -> Decimal:
    """The cheapest known shipping cost (0 when eBay gives none, e.g. free or calculated)."""
    costs = [
        cost
        for option in (options if isinstance(options, list) else [])
        if isinstance(option, Mapping)
        and (cost := _amount(option.get("shippingCost"), currency)) is not None
    ]
    return min(costs) if costs else Decimal("0.00")


def _percent(value: object) -> int | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        return int(Decimal(value).to_integral_value())
    except (InvalidOperation, ValueError):
        return None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
