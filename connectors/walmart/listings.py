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

from connectors.walmart.client import WalmartClient
from connectors.walmart.const import (
    GET_INVENTORIES,
    GET_ITEMS,
    GET_WFS_INVENTORY,
    INVENTORIES_PAGE_LIMIT,
    INVENTORIES_PATH,
    ITEMS_PAGE_LIMIT,
    ITEMS_PATH,
    WFS_INVENTORY_PATH,
    WFS_PAGE_LIMIT,
)
from connectors.walmart.models import money
from connectors.wire import to_decimal
from domain.errors import ChannelError, RejectedUpdateError
from domain.listings import ChannelListing, Fulfillment
from domain.offers import CompetitorOffer, OfferObservation

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


async def read_items(client: WalmartClient) -> dict[str, ParsedItem]:
    """Every item of the account (GET /v3/items, cursor-paged)."""
    items: dict[str, ParsedItem] = {}
    cursor = "*"
    while True:
        page = await _get(
            client, GET_ITEMS, ITEMS_PATH, {"nextCursor": cursor, "limit": str(ITEMS_PAGE_LIMIT)}
        )
        raw = page.get("ItemResponse")
        before = len(items)
        for entry in raw if isinstance(raw, list) else []:
            item = (
                parse_item(entry, client.settings.currency) if isinstance(entry, Mapping) else None
            )
            if item is not None:
                items[item.sku] = item
        total, following = page.get("totalItems"), page.get("nextCursor")
        # The cursor may repeat from page to page (the spec says so): stop on the count, an
        # empty page, or a page that brought nothing new, never on the cursor's value.
        if (
            not isinstance(following, str)
            or not following
            or len(items) == before
            or (isinstance(total, int) and len(items) >= total)
        ):
            return items
        cursor = following


async def read_quantities(client: WalmartClient) -> dict[str, int]:
    """Each SKU's managed quantity (GET /v3/inventories, cursor-paged)."""
    quantities: dict[str, int] = {}
    seen: set[str] = set()
    params = {"limit": str(INVENTORIES_PAGE_LIMIT)}
    while True:
        page = await _get(client, GET_INVENTORIES, INVENTORIES_PATH, params)
        elements = page.get("elements")
        rows = elements.get("inventories") if isinstance(elements, Mapping) else None
        before = len(seen)
        for row in rows if isinstance(rows, list) else []:
            sku = row.get("sku") if isinstance(row, Mapping) else None
            if not isinstance(sku, str):
                continue
            seen.add(sku)
            quantity = node_quantities(row, client.settings.ship_node)
            if quantity is not None:
                quantities[sku] = quantity
        meta = page.get("meta")
        cursor = meta.get("nextCursor") if isinstance(meta, Mapping) else None
        if not isinstance(cursor, str) or not cursor or len(seen) == before:
            return quantities
        params = {"limit": str(INVENTORIES_PAGE_LIMIT), "nextCursor": cursor}


async def read_wfs(client: WalmartClient) -> dict[str, int | None]:
    """WFS SKUs and their available units (GET /v3/fulfillment/inventory, offset-paged)."""
    found: dict[str, int | None] = {}
    offset = 0
    while True:
        params = {"offset": str(offset), "limit": str(WFS_PAGE_LIMIT)}
        try:
            page = await _get(client, GET_WFS_INVENTORY, WFS_INVENTORY_PATH, params)
        except RejectedUpdateError as err:
            # A seller without WFS is refused here; its items are all merchant-fulfilled.
            log.info("walmart.wfs.unavailable", code=err.code, status=err.status)
            return found
        payload = page.get("payload")
        rows = payload.get("inventory") if isinstance(payload, Mapping) else None
        rows = rows if isinstance(rows, list) else []
        for row in rows:
            if isinstance(row, Mapping) and isinstance(row.get("sku"), str):
                found[row["sku"]] = wfs_quantity(row)
        headers = page.get("headers")
        total = headers.get("totalCount") if isinstance(headers, Mapping) else None
        offset += len(rows)
        if not rows or not isinstance(total, int) or offset >= total:
            return found


async def _get(
    client: WalmartClient, op: str, path: str, params: Mapping[str, str]
) -> Mapping[str, Any]:
    page = await client.call(op, "GET", path, params=params)
    if not isinstance(page, Mapping):
        raise ChannelError(f"{op}: response is not an object")
    return page
