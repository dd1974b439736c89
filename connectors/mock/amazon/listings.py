"""Listings Items API 2021-08-01: get, search and patch, and a listing rendered as an ``Item``."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from typing import Any

from connectors.mock.amazon.auth import Call, sp_api
from connectors.mock.amazon.patching import (
    apply_patches,
    bound_issues,
    fulfillment_code,
    implied,
    scheduled,
)
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.amazon.wire import (
    WireError,
    cents,
    invalid_input,
    operations,
    time_param,
)
from connectors.mock.kit.wire import iso
from connectors.mock.market import MockListing
from domain.listings import Fulfillment

INCLUDED_DATA = frozenset(operations()["getListingsItem"].params["includedData"]["items"]["enum"])
MAX_SEARCH_RESULTS = 1000  # searchListingsItems pages through at most 1000 SKUs
_DATE_FILTERS = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")


def listing_issues(state: AmazonMockState, listing: MockListing) -> list[dict[str, Any]]:
    """Standing issues of a listing (a price outside the seller's own min/max suppresses it)."""
    meta = state.meta_of(listing.sku)
    found = bound_issues(listing.price, meta.min_price, meta.max_price)
    return [entry | {"marketplaceIds": [state.marketplace_id]} for entry in found]


def statuses(state: AmazonMockState, listing: MockListing) -> list[str]:
    """``BUYABLE`` needs a live offer, stock and no suppression; ``DISCOVERABLE`` always."""
    meta = state.meta_of(listing.sku)
    buyable = not meta.offer_deleted and listing.quantity > 0
    buyable = buyable and not listing_issues(state, listing)
    return ["BUYABLE", "DISCOVERABLE"] if buyable else ["DISCOVERABLE"]


def attributes(state: AmazonMockState, listing: MockListing) -> dict[str, Any]:
    """Snake_case attributes: what was written, or what the seed implies."""
    meta = state.meta_of(listing.sku)
    out: dict[str, Any] = dict(meta.attributes)
    if "purchasable_offer" not in out and not meta.offer_deleted:
        out["purchasable_offer"] = implied(state, listing, "purchasable_offer")
    elif "purchasable_offer" in out:
        # The stored value carries the last written price; the live one may have moved since.
        for entry in out["purchasable_offer"]:
            if entry.get("audience", "ALL") == "ALL" and "our_price" in entry:
                entry["our_price"] = scheduled(listing.price)
    out["fulfillment_availability"] = implied(state, listing, "fulfillment_availability")
    return out


def render_item(
    state: AmazonMockState, listing: MockListing, included: frozenset[str] | set[str]
) -> dict[str, Any]:
    """One ``Item`` with the requested ``includedData`` sections."""
    meta = state.meta_of(listing.sku)
    market = state.marketplace_id
    summary: dict[str, Any] = {
        "marketplaceId": market,
        "asin": listing.external_id,
        "productType": meta.product_type,
        "conditionType": "new_new",
        "status": statuses(state, listing),
        "itemName": meta.item_name or listing.sku,
        "createdDate": iso(meta.created or state.clock.now()),
        "lastUpdatedDate": iso(meta.updated or state.clock.now()),
    }
    if listing.fulfillment is Fulfillment.MARKETPLACE:
        summary["fnSku"] = "X00" + listing.external_id[-7:]
    offer = {
        "marketplaceId": market,
        "offerType": "B2C",
        "price": {"currencyCode": listing.currency, "amount": cents(listing.price)},
        "audience": {"value": "ALL", "displayName": "Sell on Amazon"},
    }
    sections: dict[str, Callable[[], Any]] = {
        "summaries": lambda: [summary],
        "attributes": lambda: attributes(state, listing),
        "issues": lambda: listing_issues(state, listing),
        "offers": lambda: [] if meta.offer_deleted else [offer],
        "fulfillmentAvailability": lambda: [
            {"fulfillmentChannelCode": fulfillment_code(listing), "quantity": listing.quantity}
        ],
        "productTypes": lambda: [{"marketplaceId": market, "productType": meta.product_type}],
        "relationships": lambda: [{"marketplaceId": market, "relationships": []}],
        "procurement": lambda: [],
    }
    return {"sku": listing.sku} | {
        name: make() for name, make in sections.items() if name in included
    }


def _listing(call: Call) -> MockListing:
    listing = call.state.listing(call.path("sku"))
    if listing is None:
        message = f"SKU '{call.path('sku')}' not found in marketplace {call.state.marketplace_id}"
        raise WireError(404, "NOT_FOUND", message)
    return listing


@sp_api("getListingsItem")
def get_listings_item(call: Call) -> Any:
    """``GET /listings/2021-08-01/items/{sellerId}/{sku}``."""
    return render_item(call.state, _listing(call), set(call.query["includedData"]))


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid_input("Invalid pageToken.") from exc
    if not isinstance(offset, int) or offset < 0:
        raise invalid_input("Invalid pageToken.")
    return offset


def _search(call: Call) -> list[MockListing]:
    """The listings in the inclusive created/lastUpdated windows and of the given identifiers."""
    state, query = call.state, call.query
    bounds = {name: time_param(query, name) for name in _DATE_FILTERS if name in query}
    if any(bound.tzinfo is None for bound in bounds.values()):
        raise invalid_input("Dates must carry a time zone.")

    def keep(item: MockListing) -> bool:
        meta = state.meta_of(item.sku)
        for name, bound in bounds.items():
            moment = meta.created if name.startswith("created") else meta.updated
            if moment is None or (moment < bound if name.endswith("After") else moment > bound):
                return False
        return True

    identifiers, kind = query.get("identifiers"), query.get("identifiersType")
    if (identifiers is None) != (kind is None):
        raise invalid_input("identifiers and a valid identifiersType go together.")
    return [
        item
        for item in state.market.listings.values()
        if keep(item)
        and (
            kind is None
            or {"SKU": item.sku, "ASIN": item.external_id}.get(kind) in (identifiers or [])
        )
    ]


@sp_api("searchListingsItems")
def search_listings_items(call: Call) -> Any:
    """``GET /listings/2021-08-01/items/{sellerId}``: paged, ≤ 20 per page, ≤ 1000 in all."""
    state, query = call.state, call.query
    page_size, sort_by = query["pageSize"], query["sortBy"]
    if page_size < 1:
        raise invalid_input("pageSize must be at least 1.")
    listings = _search(call)

    def key(item: MockListing) -> Any:
        meta = state.meta_of(item.sku)
        moment = meta.created if sort_by == "createdDate" else meta.updated
        return item.sku if sort_by == "sku" else (moment, item.sku)

    listings.sort(key=key, reverse=query["sortOrder"] == "DESC")
    offset = _offset(query["pageToken"]) if "pageToken" in query else 0
    pageable = listings[:MAX_SEARCH_RESULTS]
    page = pageable[offset : offset + page_size]
    body: dict[str, Any] = {
        "numberOfResults": len(listings),
        "items": [render_item(state, item, set(query["includedData"])) for item in page],
    }
    pagination = {}
    if offset + page_size < len(pageable):
        pagination["nextToken"] = _page_token(offset + page_size)
    if offset > 0:
        pagination["previousToken"] = _page_token(max(0, offset - page_size))
    return body | ({"pagination": pagination} if pagination else {})


@sp_api("patchListingsItem")
def patch_listings_item(call: Call) -> Any:
    """``PATCH /listings/2021-08-01/items/{sellerId}/{sku}`` (``mode=VALIDATION_PREVIEW`` too)."""
    state, sku, included = call.state, call.path("sku"), call.query["includedData"]
    preview = call.query.get("mode") == "VALIDATION_PREVIEW"
    if "identifiers" in included and not preview:
        raise invalid_input("includedData=identifiers needs mode=VALIDATION_PREVIEW.")
    answer: dict[str, Any] = {"sku": sku, "status": "ACCEPTED", "submissionId": uuid.uuid4().hex}
    if state.listing(sku) is None and state.unknown_sku_patch != "not_found":
        state.orphan_patches[sku] += 1
        return answer | {"issues": []}
    listing = _listing(call)
    outcome = apply_patches(state, listing, call.body["patches"], preview=preview)
    answer["status"] = outcome.status
    if "issues" in included:
        answer["issues"] = outcome.issues
    if "identifiers" in included:
        answer["identifiers"] = [
            {"marketplaceId": state.marketplace_id, "asin": listing.external_id}
        ]
    return answer
