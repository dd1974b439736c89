"""Sell Inventory API reads (``getInventoryItems``, ``getOffers``) and the route table."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.mock.ebay.auth import ebay_api
from connectors.mock.ebay.bulk import bulk_update_price_quantity
from connectors.mock.ebay.const import (
    ERR_INVALID_VALUE,
    ERR_NO_OFFER,
    ERR_PAGINATION,
    ERR_SKU_NOT_AVAILABLE,
    INVENTORY_API,
    INVENTORY_READONLY_SCOPE,
    INVENTORY_SCOPE,
    MAX_INVENTORY_PAGE,
    MAX_OFFERS_PAGE,
)
from connectors.mock.ebay.state import USER, EbayItem, EbayMockState, EbayOffer
from connectors.mock.ebay.wire import (
    WireError,
    answer,
    inventory_bad_request,
    inventory_error,
    money,
)

BASE = "/sell/inventory/v1"
READ = frozenset({INVENTORY_SCOPE, INVENTORY_READONLY_SCOPE})


# -- reads ------------------------------------------------------------------------------------


def _page_params(request: web.Request, cap: int) -> tuple[int, int]:
    try:
        limit = int(request.query.get("limit", str(cap)))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        limit = offset = -1
    if not 1 <= limit <= cap or offset < 0:
        raise inventory_bad_request(
            ERR_PAGINATION,
            "You have provided invalid pagination values. "
            f"limit must be 1..{cap} and offset 0 or more.",
        )
    return limit, offset


def _item_view(state: EbayMockState, item: EbayItem) -> dict[str, Any]:
    product: dict[str, Any] = {"title": item.title}
    if item.gtin:
        product["upc" if len(item.gtin) == 12 else "ean"] = [item.gtin]
    return {
        "sku": item.sku,
        "locale": "en_US",
        "product": product,
        "condition": item.condition,
        "availability": {"shipToLocationAvailability": {"quantity": item.ship_to_quantity}},
    }


@ebay_api(INVENTORY_API, USER, READ)
async def get_inventory_items(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /sell/inventory/v1/inventory_item?limit=&offset=`` (offset is a page index, OAS)."""
    limit, page = _page_params(request, MAX_INVENTORY_PAGE)
    skus = sorted(state.items)
    chunk = skus[page * limit : (page + 1) * limit]
    root = f"{request.url.origin()}{BASE}/inventory_item"
    pages = -(-len(skus) // limit)
    body: dict[str, Any] = {"href": f"{root}?offset={page}&limit={limit}"}
    if page + 1 < pages:
        body["next"] = f"{root}?offset={page + 1}&limit={limit}"
    if page > 0:
        body["prev"] = f"{root}?offset={page - 1}&limit={limit}"
    body.update(
        {
            "inventoryItems": [_item_view(state, state.items[sku]) for sku in chunk],
            "limit": limit,
            "size": pages,  # "the total number of pages of results" (OAS InventoryItems.size)
            "total": len(skus),
        }
    )
    return answer(body)


def offer_view(state: EbayMockState, offer: EbayOffer) -> dict[str, Any]:
    """An ``EbayOfferDetailsWithAll``."""
    listing = state.listing(offer.sku)
    view: dict[str, Any] = {
        "offerId": offer.offer_id,
        "sku": offer.sku,
        "marketplaceId": offer.marketplace_id,
        "format": "FIXED_PRICE",
        "availableQuantity": offer.available_quantity,
        "categoryId": offer.category_id,
        "merchantLocationKey": "warehouse-1",
        "status": offer.status,
    }
    if listing is not None:
        view["pricingSummary"] = {
            "price": {"value": money(listing.price), "currency": listing.currency}
        }
    if offer.status == "PUBLISHED":
        view["listing"] = {
            "listingId": offer.listing_id,
            "listingStatus": offer.listing_status,
            "soldQuantity": offer.sold_quantity,
        }
    return view


@ebay_api(INVENTORY_API, USER, READ)
async def get_offers(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /sell/inventory/v1/offer?sku=[&marketplace_id=][&format=]``."""
    sku = request.query.get("sku", "")
    if not sku:
        raise inventory_bad_request(
            ERR_INVALID_VALUE, "Invalid request. Invalid value for field sku", fieldName="sku"
        )
    limit, page = _page_params(request, MAX_OFFERS_PAGE)
    if sku not in state.items:
        raise inventory_bad_request(
            ERR_SKU_NOT_AVAILABLE, f"SKU {sku} is not available in the system", sku=sku
        )
    marketplace, fmt = request.query.get("marketplace_id"), request.query.get("format")
    offers = [
        o
        for o in state.offers_of(sku)
        if (marketplace is None or o.marketplace_id == marketplace)
        and (fmt is None or fmt == "FIXED_PRICE")
    ]
    if not offers:
        raise WireError(404, inventory_error(ERR_NO_OFFER, "No offer found"))
    chunk = offers[page * limit : (page + 1) * limit]
    root = f"{request.url.origin()}{BASE}/offer"
    body: dict[str, Any] = {"href": f"{root}?sku={sku}&offset={page}&limit={limit}"}
    if (page + 1) * limit < len(offers):
        body["next"] = f"{root}?sku={sku}&offset={page + 1}&limit={limit}"
    body.update(
        {
            "limit": limit,
            "offers": [offer_view(state, o) for o in chunk],
            "size": len(chunk),
            "total": len(offers),
        }
    )
    return answer(body)


def add_routes(app: web.Application) -> None:
    """Register the Sell Inventory routes."""
    app.router.add_post(f"{BASE}/bulk_update_price_quantity", bulk_update_price_quantity)
    app.router.add_get(f"{BASE}/inventory_item", get_inventory_items)
    app.router.add_get(f"{BASE}/offer", get_offers)
