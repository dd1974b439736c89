"""Sell Inventory API: ``getInventoryItems``, ``getOffers`` and ``bulkUpdatePriceQuantity``
(OAS-validated bodies, per-line results, 250 revisions per listing per day; see README.md)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from connectors.mock.ebay.const import INVENTORY_API, INVENTORY_READ, INVENTORY_SCOPE
from connectors.mock.ebay.gateway import (
    amount,
    answer,
    ebay_api,
    error,
    invalid_field,
    page,
    refuse,
)
from connectors.mock.ebay.state import USER, EbayItem, EbayMockState, EbayOffer

ROUTES = web.RouteTableDef()
MAX_QUANTITY = 2**31 - 1
MAX_BULK_REQUESTS = 25
MAX_INVENTORY_PAGE = 100  # getInventoryItems and getOffers: limit 1..100 (OAS)
PRICE_TEXT = re.compile(r"\d{1,9}(\.\d{1,2})?")  # a plain decimal: no exponent, no sign


def _error(error_id: int, message: str, **parameters: str) -> dict[str, Any]:
    return error(error_id, INVENTORY_API, message, **parameters)


def _refuse(error_id: int, message: str, status: int = 400, **parameters: str) -> Exception:
    return refuse(INVENTORY_API, error_id, message, status, **parameters)


def _paged(request: web.Request, rows: list[Any]) -> tuple[dict[str, Any], list[Any]]:
    """The page's links, ``limit`` and ``total``, and its rows (``offset`` counts pages, OAS)."""
    try:
        limit = int(request.query.get("limit", str(MAX_INVENTORY_PAGE)))
        at = int(request.query.get("offset", "0"))
    except ValueError:
        limit = at = -1
    if not 1 <= limit <= MAX_INVENTORY_PAGE or at < 0:
        raise _refuse(
            25706,
            "You have provided invalid pagination values. "
            f"limit must be 1..{MAX_INVENTORY_PAGE} and offset 0 or more.",
        )
    body = page(request, limit, at, len(rows), step=1) | {"limit": limit, "total": len(rows)}
    return body, rows[at * limit :][:limit]


def _item_view(item: EbayItem) -> dict[str, Any]:
    product: dict[str, Any] = {"title": item.title}
    if item.gtin:
        product["upc" if len(item.gtin) == 12 else "ean"] = [item.gtin]
    return {
        "sku": item.sku,
        "locale": "en_US",
        "product": product,
        "condition": "NEW",
        "availability": {"shipToLocationAvailability": {"quantity": item.ship_to_quantity}},
    }


@ROUTES.get("/sell/inventory/v1/inventory_item")
@ebay_api(INVENTORY_API, USER, INVENTORY_READ)
async def get_inventory_items(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /sell/inventory/v1/inventory_item?limit=&offset=``."""
    body, skus = _paged(request, sorted(state.items))
    body["inventoryItems"] = [_item_view(state.items[sku]) for sku in skus]
    body["size"] = -(-len(state.items) // body["limit"])  # "the total number of pages" (OAS)
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
        "categoryId": "20625",
        "merchantLocationKey": "warehouse-1",
        "status": offer.status,
    }
    if listing is not None:
        view["pricingSummary"] = {"price": amount(listing.price, listing.currency)}
    if offer.status == "PUBLISHED":
        view["listing"] = {
            "listingId": offer.listing_id,
            "listingStatus": "ACTIVE",
            "soldQuantity": offer.sold_quantity,
        }
    return view


@ROUTES.get("/sell/inventory/v1/offer")
@ebay_api(INVENTORY_API, USER, INVENTORY_READ)
async def get_offers(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /sell/inventory/v1/offer?sku=[&marketplace_id=][&format=]``."""
    sku = request.query.get("sku", "")
    if not sku:
        raise _refuse(25709, "Invalid request. Invalid value for field sku", fieldName="sku")
    if sku not in state.items:
        raise _refuse(25702, f"SKU {sku} is not available in the system", sku=sku)
    marketplace, fmt = request.query.get("marketplace_id"), request.query.get("format")
    offers = [
        o
        for o in state.offers_of(sku)
        if marketplace in (None, o.marketplace_id) and fmt in (None, "FIXED_PRICE")
    ]
    if not offers:
        raise _refuse(25725, "No offer found", 404)
    body, chunk = _paged(request, offers)
    body.update(offers=[offer_view(state, o) for o in chunk], size=len(chunk))
    return answer(body)


def _missing(what: str, name: str) -> dict[str, Any]:
    return _error(25017, f"Missing field {what}.", fieldName=name)


@dataclass
class _Part:
    """One line of ``responses[]`` in the making (an offer, or the SKU alone)."""

    sku: str | None
    offer_id: str | None
    status: int = 200
    errors: list[dict[str, Any]] = field(default_factory=list)
    offer: EbayOffer | None = None
    price: Decimal | None = None
    quantity: int | None = None

    def fail(self, entry: dict[str, Any] | None, status: int = 400) -> bool:
        """Add ``entry`` (if any) to this line's errors; whether there was one."""
        if entry is not None:
            self.status = status if self.status == 200 else self.status
            self.errors.append(entry)
        return entry is not None

    def view(self) -> dict[str, Any]:
        line = {
            "statusCode": self.status,
            "sku": self.sku,
            "offerId": self.offer_id,
            "errors": self.errors or None,
        }
        return {k: v for k, v in line.items() if v is not None}


def _price_error(part: _Part, raw: dict[str, Any], currency: str) -> dict[str, Any] | None:
    value, given = raw.get("value"), raw.get("currency")
    if value is None or given is None:
        return _missing("price.value or price.currency", "price")
    if given != currency:
        message = f"Invalid price. Currency {given} is not valid for this marketplace."
        return _error(25003, message, text1=given)
    price = Decimal(value) if PRICE_TEXT.fullmatch(value) else Decimal(0)
    if price <= 0:
        message = f"Invalid price. The price {value} is not a valid amount."
        return _error(25003, message, text1=value)
    part.price = price
    return None


def _quantity_error(state: EbayMockState, quantity: int, name: str) -> dict[str, Any] | None:
    if 0 < quantity <= MAX_QUANTITY or (quantity == 0 and state.out_of_stock_control):
        return None
    message = f"Invalid quantity. The value of {name} ({quantity}) is not valid."
    return _error(25004, message, fieldName=name)


def _offer_part(state: EbayMockState, sku: str | None, raw: dict[str, Any]) -> _Part:
    offer_id = raw.get("offerId")
    part = _Part(sku, offer_id)
    offer = state.offers.get(offer_id) if offer_id else None
    if offer is not None and offer.status == "PUBLISHED":
        part.sku, part.offer = offer.sku, offer
    if not offer_id:
        part.fail(_missing("offerId", "offerId"))
    elif part.offer is None:
        part.fail(_error(25713, f"This Offer is not available : {offer_id}.", offerId=offer_id))
    elif sku is not None and part.offer.sku != sku:
        message = f"A user error has occurred. Offer {offer_id} does not belong to SKU {sku}."
        part.fail(_error(25002, message, offerId=offer_id))
    elif "price" not in raw and "availableQuantity" not in raw:
        part.fail(_missing("availableQuantity or price", "availableQuantity"))
    else:
        listing = state.listing(part.offer.sku)
        if "price" in raw and listing is not None:
            part.fail(_price_error(part, raw["price"], listing.currency))
        quantity = raw.get("availableQuantity")
        name = "availableQuantity"
        if quantity is not None and not part.fail(_quantity_error(state, quantity, name)):
            part.quantity = quantity
    return part


def _entry_error(
    state: EbayMockState, entry: dict[str, Any], ship_quantity: int | None
) -> dict[str, Any] | None:
    """What refuses a whole entry (every line of it), or None."""
    sku, ship = entry.get("sku"), entry.get("shipToLocationAvailability")
    if ship is None and not entry.get("offers"):
        return _missing("offers or shipToLocationAvailability", "offers")
    if sku is not None and sku not in state.items:
        return _error(25702, f"SKU {sku} is not available in the system", sku=sku)
    if ship is None:
        return None
    if sku is None:
        return _missing("sku", "sku")
    if ship_quantity is None:
        return _missing("shipToLocationAvailability.quantity", "quantity")
    return _quantity_error(state, ship_quantity, "shipToLocationAvailability.quantity")


def _apply_request(state: EbayMockState, entry: dict[str, Any]) -> list[_Part]:
    sku: str | None = entry.get("sku")
    parts = [_offer_part(state, sku, raw) for raw in entry.get("offers") or []]
    whole = parts or [_Part(sku, None)]  # a SKU-only update answers one line with the SKU alone
    ship = entry.get("shipToLocationAvailability") or {}
    ship_quantity = ship.get("quantity")
    if ship_quantity is None and ship.get("availabilityDistributions"):
        ship_quantity = sum(d.get("quantity", 0) for d in ship["availabilityDistributions"])
    refusal = _entry_error(state, entry, ship_quantity)
    good = [p for p in parts if p.status == 200]
    if refusal is None and not good and ship_quantity is None:
        return whole
    # Every listing this entry changes is revised once; one at its daily cap blocks the entry.
    listings = {p.offer.listing_id for p in good if p.offer is not None}
    touched = {p.offer.sku for p in good if p.offer is not None}
    if ship_quantity is not None and sku is not None:
        listings |= {o.listing_id for o in state.published(sku)}
        touched.add(sku)
    capped = sorted(i for i in listings if state.revisions_today(i) >= state.revisions_per_day)
    status, failing = 400, good or whole
    if refusal is not None:
        failing = whole
    elif capped:
        refusal = _error(
            25019,
            f"Cannot revise listing. Listing {capped[0]} has reached the maximum of "
            f"{state.revisions_per_day} revisions allowed per day.",
            listingId=capped[0],
        )
    elif state.faults.item_refused():
        message = "Concurrent access of Inventory or InventoryItemGroup. Please try again later"
        status, refusal = 500, _error(25025, message, category="APPLICATION")
    if refusal is not None:
        for part in failing:
            part.fail(refusal, status)
        return whole
    if state.faults.write_dropped():
        state.dropped.update(touched)
        return whole
    for part in good:
        assert part.offer is not None
        listing = state.listing(part.offer.sku)
        if part.price is not None and listing is not None:
            listing.price = part.price
        if part.quantity is not None:
            part.offer.available_quantity = part.quantity
    if ship_quantity is not None and sku is not None:
        state.items[sku].ship_to_quantity = ship_quantity
    for listing_id in listings:
        state.revise(listing_id)
    state.applied.update(touched)
    for name in touched:
        state.sync_quantity(name)
    return whole


@ROUTES.post("/sell/inventory/v1/bulk_update_price_quantity")
@ebay_api(INVENTORY_API, USER, frozenset({INVENTORY_SCOPE}))
async def bulk_update_price_quantity(request: web.Request, state: EbayMockState) -> web.Response:
    """``POST /sell/inventory/v1/bulk_update_price_quantity``."""
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        body = None  # not JSON: refused as the root "request" field below
    # A body the OAS refuses, or no (or empty) ``requests``.
    wrong = invalid_field("BulkPriceQuantity", body) or ("" if body.get("requests") else "requests")
    if wrong:
        raise _refuse(25709, f"Invalid request. Invalid value for field {wrong}", fieldName=wrong)
    requests = body["requests"]
    if len(requests) > MAX_BULK_REQUESTS:
        message = f"The number of InventoryItems in the request cannot exceed {MAX_BULK_REQUESTS}."
        raise _refuse(25727, message, text1=str(MAX_BULK_REQUESTS))
    parts = [part for entry in requests for part in _apply_request(state, entry)]
    status = 200 if all(p.status == 200 for p in parts) else 207
    return answer({"responses": [p.view() for p in parts]}, status)
