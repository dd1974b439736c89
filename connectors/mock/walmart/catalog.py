"""Reads of the catalog: ``GET /v3/items`` (+ ``/{sku}``) and the Insights endpoints.

Insights is where the spec exposes competitive prices: ``POST
/v3/insights/items/listingQuality/items`` answers ``scoreDetails.offer.price.competitorPrice``
(the lowest competing offer of the simulated market), and ``GET
/v3/insights/items/unpublished/items`` lists offers unpublished, e.g. for
``REASONABLE_PRICE_NOT_SATISFIED``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import Any

from aiohttp import web

from connectors.mock.market import MockListing
from connectors.mock.walmart.const import (
    DEFAULT_ITEMS_PAGE,
    INSIGHTS_CONTENT_CODE,
    ITEM_CONTENT_CODE,
    ITEM_NOT_FOUND_CODE,
    MART,
    MAX_ITEMS_OFFSET_PAGE,
    MAX_ITEMS_PAGE,
    UNPUBLISHED,
)
from connectors.mock.walmart.gate import walmart
from connectors.mock.walmart.offers import book
from connectors.mock.walmart.state import WalmartMockState
from connectors.mock.walmart.wire import (
    WireError,
    first_error,
    invalid,
    json_answer,
    json_body,
    number,
    spec_validator,
)
from domain.listings import Fulfillment


def item_view(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    """One ``ItemResponse`` entry (items.json), plus ``itemId``."""
    meta = state.meta_of(listing)
    view: dict[str, Any] = {
        "mart": MART,
        "sku": listing.sku,
        "wpid": meta.wpid,
        "itemId": meta.item_id,
        "upc": meta.gtin[2:],
        "gtin": meta.gtin,
        "productName": meta.product_name,
        "shelf": '["Home Page","Home"]',
        "productType": meta.product_type,
        "price": {"currency": listing.currency, "amount": number(listing.price)},
        "publishedStatus": meta.published_status,
        "lifecycleStatus": meta.lifecycle_status,
    }
    if meta.published_status == UNPUBLISHED:
        view["unpublishedReasons"] = {"reason": list(meta.reasons)}
    return view


def _cursor(position: int) -> str:
    return base64.b64encode(f"mock:{position}".encode()).decode()


def _position(cursor: str) -> int:
    if cursor == "*":
        return 0
    try:
        text = base64.b64decode(cursor, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid(ITEM_CONTENT_CODE, "nextCursor is invalid.", "nextCursor") from exc
    prefix, _, number_text = text.partition(":")
    if prefix != "mock" or not number_text.isdigit():
        raise invalid(ITEM_CONTENT_CODE, "nextCursor is invalid.", "nextCursor")
    return int(number_text)


def _limit(request: web.Request, default: int, high: int, code: str) -> int:
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise invalid(code, f"limit must be an integer from 1 to {high}.", "limit")
    return int(raw)


@walmart("getAllItems")
async def list_items(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/items``: ``nextCursor`` (``*`` first) or ``offset`` paging; status filters."""
    query = request.query
    listings = sorted(state.market.listings.values(), key=lambda listing: listing.sku)
    views = [item_view(state, listing) for listing in listings]
    for name in ("sku", "lifecycleStatus", "publishedStatus"):
        if name in query:
            views = [view for view in views if view[name] == query[name]]
    if "offset" in query and "nextCursor" not in query:
        if not query["offset"].isdigit():
            raise invalid(ITEM_CONTENT_CODE, "offset must be an integer.", "offset")
        start = int(query["offset"])
        limit = _limit(request, DEFAULT_ITEMS_PAGE, MAX_ITEMS_OFFSET_PAGE, ITEM_CONTENT_CODE)
        body: dict[str, Any] = {"ItemResponse": views[start : start + limit]}
        body["totalItems"] = len(views)
        return json_answer(body)
    start = _position(query.get("nextCursor", "*"))
    limit = _limit(request, DEFAULT_ITEMS_PAGE, MAX_ITEMS_PAGE, ITEM_CONTENT_CODE)
    body = {"ItemResponse": views[start : start + limit], "totalItems": len(views)}
    if start + limit < len(views):
        body["nextCursor"] = _cursor(start + limit)  # absent on the last page
    return json_answer(body)


@walmart("getAnItem")
async def get_item(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/items/{sku}``."""
    listing = state.listing(request.match_info["sku"])
    if listing is None:
        raise WireError(404, ITEM_NOT_FOUND_CODE, "Item not found.", field="sku")
    return json_answer({"ItemResponse": [item_view(state, listing)], "totalItems": 1})


def _quality(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    meta = state.meta_of(listing)
    rivals = [offer for offer in book(state, listing) if not offer.ours]
    cheapest = rivals[0] if rivals else None
    price: dict[str, Any] = {
        "price": {"amount": number(listing.price), "currency": listing.currency},
        "walmartShipping": number(state.own_shipping),
    }
    if cheapest is not None:
        beaten = cheapest.landed < listing.price + state.own_shipping
        price.update(
            {
                "competitorPrice": {"amount": number(cheapest.price), "currency": listing.currency},
                "competitorShipping": number(cheapest.shipping),
                "issueTitle": "Price Not Competitive" if beaten else "Price Competitive",
                "score": 0 if beaten else 100,
            }
        )
    return {
        "productId": meta.wpid,
        "itemId": meta.item_id,
        "sku": listing.sku,
        "sellerId": state.partner_id,
        "productName": meta.product_name,
        "productType": meta.product_type,
        "categoryName": "Home",
        "wfsEnabled": 1 if listing.fulfillment is Fulfillment.MARKETPLACE else 0,
        "priority": "LOW",
        "scoreDetails": {"offer": {"price": price, "issueCount": 0 if price.get("score") else 1}},
    }


@walmart("itemsDetailsForListing")
async def listing_quality(request: web.Request, state: WalmartMockState) -> web.Response:
    """``POST /v3/insights/items/listingQuality/items``: per-item price vs competitor price."""
    body = await json_body(request, INSIGHTS_CONTENT_CODE)
    problem = first_error(spec_validator("insights.json", "ItemDetailsLQRequestPayload"), body)
    if problem is not None:
        raise invalid(INSIGHTS_CONTENT_CODE, f"Invalid request: {problem}")
    listings = sorted(state.market.listings.values(), key=lambda listing: listing.sku)
    query = body.get("query")
    if query:
        field, value = query.get("field"), str(query.get("value", ""))
        if field == "sku":
            listings = [item for item in listings if item.sku == value]
        elif field == "itemId":
            listings = [item for item in listings if state.meta_of(item).item_id == value]
        else:
            listings = [
                item
                for item in listings
                if value.lower() in state.meta_of(item).product_name.lower()
            ]
    start = _position(request.query.get("nextCursor", "*"))
    limit = _limit(request, 200, 200, INSIGHTS_CONTENT_CODE)
    answer: dict[str, Any] = {
        "totalItems": len(listings),
        "payload": [_quality(state, item) for item in listings[start : start + limit]],
    }
    if start + limit < len(listings):
        answer["nextCursor"] = _cursor(start + limit)
    return json_answer(answer)


@walmart("getUnpublishedItems")
async def unpublished_items(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/insights/items/unpublished/items?fromDate=YYYY-MM-DD``."""
    try:
        since = date.fromisoformat(request.query.get("fromDate", ""))
    except ValueError as exc:
        raise invalid(
            INSIGHTS_CONTENT_CODE, "fromDate (YYYY-MM-DD) is required.", "fromDate"
        ) from exc
    reason = request.query.get("unpublishedReasonCode", "all")
    limit = _limit(request, 20, 200, INSIGHTS_CONTENT_CODE)
    rows = []
    for listing in sorted(state.market.listings.values(), key=lambda item: item.sku):
        meta = state.meta_of(listing)
        when = meta.unpublished_at
        if meta.published_status != UNPUBLISHED or when is None or when.date() < since:
            continue
        if reason != "all" and reason not in meta.reasons:
            continue
        rows.append(
            {
                "sku": listing.sku,
                "itemId": meta.item_id,
                "gtin": meta.gtin,
                "productName": meta.product_name,
                "productType": meta.product_type,
                "brand": "Mock",
                "price": {"amount": f"{listing.price:.2f}", "currency": listing.currency},
                "marketPrice": {"amount": f"{meta.reference_price:.6f}", "currency": "USD"},
                "unpublishReasons": ",".join(meta.reasons),
                "unpublishedDate": when.date().isoformat(),
                "publishStatus": meta.published_status,
                "lifecycleStatus": meta.lifecycle_status,
            }
        )
    body = {"payload": rows[:limit], "totalCount": len(rows)}
    return json_answer(body)


def add_routes(app: web.Application) -> None:
    """Register the item and insights routes."""
    app.router.add_get("/v3/items", list_items)
    app.router.add_get("/v3/items/{sku}", get_item)
    app.router.add_post("/v3/insights/items/listingQuality/items", listing_quality)
    app.router.add_get("/v3/insights/items/unpublished/items", unpublished_items)
