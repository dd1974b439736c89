"""Reading the catalogue: items, their quantities, WFS membership, and insights competitor prices.

``GET /v3/items`` gives sku, wpid, price and statuses (no quantity, no fulfillment type);
``GET /v3/inventories`` gives each SKU's quantity per ship node; ``GET /v3/fulfillment/inventory``
lists the WFS (Walmart-fulfilled) SKUs, whose stock is Walmart's to count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from connectors.base import ChannelListing, CompetitorOffer, Fulfillment, OfferObservation
from connectors.walmart.models import money, to_decimal

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ParsedItem:
    """One ``ItemResponse`` entry, before quantities are known."""

    sku: str
    wpid: str | None
    price: Decimal | None
    status: str
    external_ids: dict[str, str]


def parse_item(raw: Mapping[str, Any], currency: str) -> ParsedItem | None:
    """An ``ItemResponse`` → ``ParsedItem`` (None without a SKU)."""
    sku = raw.get("sku")
    if not isinstance(sku, str) or not sku:
        return None
    ids = {
        key: str(raw[key])
        for key in ("wpid", "itemId", "gtin", "upc")
        if isinstance(raw.get(key), str | int) and str(raw[key])
    }
    price = raw.get("price")
    amount = money(price, currency) if isinstance(price, Mapping) else None
    if isinstance(price, Mapping) and price.get("currency", currency) != currency:
        amount = None  # a price in another currency is not one we can compare with
    return ParsedItem(sku, ids.get("wpid"), amount, _status(raw), ids)


def _status(raw: Mapping[str, Any]) -> str:
    published = raw.get("publishedStatus")
    if isinstance(published, Mapping):  # the catalog-search shape: {"status": ..., "reasons"}
        published = published.get("status")
    lifecycle = str(raw.get("lifecycleStatus") or "ACTIVE").upper()
    if lifecycle != "ACTIVE":
        return lifecycle.lower()  # retired | archived
    published = str(published or "UNPUBLISHED").upper()
    return "active" if published == "PUBLISHED" else published.lower()


def node_quantities(raw: Mapping[str, Any], ship_node: str | None) -> int | None:
    """A ``/v3/inventories`` element → the quantity we manage (``inputQty``).

    With ``ship_node`` set, that node's; otherwise the sum over the SKU's nodes (one node for
    most sellers; a multi-node seller should set ``ship_node`` so reads match writes).
    """
    nodes = raw.get("nodes")
    total: int | None = None
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, Mapping):
            continue
        if ship_node is not None and node.get("shipNode") != ship_node:
            continue
        amount = _count(node.get("inputQty"))
        if amount is not None:
            total = (total or 0) + amount
    return total


def wfs_quantity(raw: Mapping[str, Any]) -> int | None:
    """A WFS ``InventoryWFS`` → its available-to-sell units."""
    nodes = raw.get("shipNodes")
    values = [
        n["availToSellQty"]
        for n in (nodes if isinstance(nodes, list) else [])
        if isinstance(n, Mapping) and isinstance(n.get("availToSellQty"), int)
    ]
    return sum(values) if values else None


def _count(quantity: Any) -> int | None:
    amount = to_decimal(quantity.get("amount")) if isinstance(quantity, Mapping) else None
    if amount is None or amount != amount.to_integral_value():
        return None
    return int(amount)


def to_listing(
    item: ParsedItem, quantity: int | None, wfs: bool, wfs_units: int | None, currency: str
) -> ChannelListing:
    """The domain listing: WFS items are marketplace-fulfilled with Walmart's count."""
    return ChannelListing(
        sku=item.sku,
        external_id=item.wpid,
        price=item.price,
        currency=currency,
        quantity=wfs_units if wfs else quantity,
        fulfillment=Fulfillment.MARKETPLACE if wfs else Fulfillment.MERCHANT,
        status=item.status,
        external_ids=item.external_ids,
    )


def insights_observation(
    sku: str, entry: Mapping[str, Any], *, seller_id: str, currency: str, now: datetime
) -> OfferObservation | None:
    """Listing-quality ``scoreDetails.offer.price`` → our offer and the competitor's price.

    Walmart compares our price with a competitor's (often off-Walmart, e.g. an Amazon ASIN)
    ``competitorPrice`` + ``competitorShipping``; it names no Walmart seller and no Buy Box.
    """
    details = entry.get("scoreDetails")
    offer = details.get("offer") if isinstance(details, Mapping) else None
    price = offer.get("price") if isinstance(offer, Mapping) else None
    if not isinstance(price, Mapping):
        return None
    offers: list[CompetitorOffer] = []
    own = money(price.get("price"), currency)
    if own is not None:
        shipping = money(price.get("walmartShipping"), currency) or Decimal("0.00")
        offers.append(CompetitorOffer(seller_id, own, shipping, "fbm", is_own=True))
    rival = money(price.get("competitorPrice"), currency)
    if rival is not None:
        asin = price.get("asin")
        who = f"external:{asin}" if isinstance(asin, str) and asin else "external"
        shipping = money(price.get("competitorShipping"), currency) or Decimal("0.00")
        offers.append(CompetitorOffer(who, rival, shipping, "fbm"))
    if not offers:
        return None
    return OfferObservation(sku=sku, observed_at=now, offers=tuple(offers), source="insights")
