"""Offers and catalog: ``PUT /v3/price``, the inventory routes, ``GET /v3/items``, Insights.

Insights is where the spec exposes competitive prices: listingQuality answers
``scoreDetails.offer.price.competitorPrice`` (the lowest competing offer of the simulated market);
``unpublished/items`` lists offers unpublished, e.g. for ``REASONABLE_PRICE_NOT_SATISFIED``.
"""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

from aiohttp import web

from connectors.mock.market import MockListing
from connectors.mock.walmart.const import (
    DEFAULT_ITEMS_PAGE,
    MART,
    MAX_ITEMS_OFFSET_PAGE,
    MAX_ITEMS_PAGE,
    PRICE_MESSAGE,
    UNPUBLISHED,
)
from connectors.mock.walmart.events import dispatch
from connectors.mock.walmart.offers import apply_price, apply_quantity, book
from connectors.mock.walmart.state import WalmartMockState
from connectors.mock.walmart.wire import (
    Refusal,
    api,
    check_inventory,
    check_price,
    check_quantity,
    cursor_page,
    int_param,
    invalid,
    json_answer,
    json_body,
    not_found,
    number,
    validated,
)
from domain.listings import Fulfillment

T = TypeVar("T")


def _listing(state: WalmartMockState, sku: str, api_name: str) -> MockListing:
    listing = state.listing(sku)
    if listing is None:
        raise not_found(api_name, f"Item not found for SKU {sku}.", "sku")
    return listing


def _accepted(parsed: T | Refusal, api_name: str) -> T:
    if isinstance(parsed, Refusal):
        raise invalid(api_name, parsed.description, parsed.field)
    return parsed


@api("PUT", "/v3/price", "updatePrice")
async def update_price(request: web.Request, state: WalmartMockState) -> web.Response:
    """``PUT /v3/price``: one SKU's BASE price (amount a JSON number)."""
    stamp = state.clock.monotonic()  # the update's creation time decides precedence
    parsed = _accepted(check_price(await json_body(request, "PRICE"), "USD"), "PRICE")
    listing = _listing(state, parsed[0], "PRICE")
    dispatch(request.app, apply_price(state, listing, parsed[1], stamp))
    answer = {"mart": MART, "sku": listing.sku, "message": PRICE_MESSAGE}
    return json_answer({"ItemPriceResponse": answer})


def _check_node(request: web.Request, state: WalmartMockState) -> None:
    node = request.query.get("shipNode")
    if node is not None and node != state.ship_node:
        raise invalid("INVENTORY", f"Ship node {node} is not yours.", "shipNode")


def _seller_fulfilled(listing: MockListing) -> None:
    if listing.fulfillment is Fulfillment.MARKETPLACE:
        description = "Inventory of a WFS (Walmart-fulfilled) item cannot be updated by the seller."
        raise invalid("INVENTORY", description, "sku")


def _sku_param(request: web.Request) -> str:
    sku = request.query.get("sku", "")
    if not sku:
        raise invalid("INVENTORY", "Query parameter sku is required.", "sku")
    return sku


def _seller_quantity(listing: MockListing) -> dict[str, Any]:
    amount = 0 if listing.fulfillment is Fulfillment.MARKETPLACE else listing.quantity
    return {"unit": "EACH", "amount": amount}


@api("GET", "/v3/inventory", "getInventory")
async def get_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/inventory?sku=``: seller-fulfilled quantity (WFS items have none here)."""
    sku = _sku_param(request)
    _check_node(request, state)
    listing = _listing(state, sku, "INVENTORY")
    return json_answer({"sku": listing.sku, "quantity": _seller_quantity(listing)})


@api("PUT", "/v3/inventory", "updateInventory")
async def update_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``PUT /v3/inventory?sku=``: set seller-fulfilled quantity; WFS items refuse it."""
    sku = _sku_param(request)
    _check_node(request, state)
    parsed = _accepted(check_inventory(await json_body(request, "INVENTORY")), "INVENTORY")
    if parsed[0] != sku:
        raise invalid("INVENTORY", "The body's sku differs from the query's.", "sku")
    listing = _listing(state, sku, "INVENTORY")
    _seller_fulfilled(listing)
    amount = parsed[1][0][1]
    apply_quantity(state, listing, amount)
    return json_answer({"sku": sku, "quantity": {"unit": "EACH", "amount": amount}})


@api("GET", "/v3/fulfillment/inventory", "getWfsInventory")
async def get_wfs_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/fulfillment/inventory[?sku=&offset=&limit=]``: WFS available-to-sell stock."""
    wanted = request.query.get("sku")
    offset = int_param(request.query, "offset", 0, "INVENTORY")
    limit = int_param(request.query, "limit", 10, "INVENTORY", 1, 300)
    wfs = [
        listing
        for listing in state.market.listings.values()
        if listing.fulfillment is Fulfillment.MARKETPLACE and (not wanted or listing.sku == wanted)
    ]
    modified = state.clock.now().strftime("%Y-%m-%d")
    page = [
        {
            "sku": listing.sku,
            "shipNodes": [
                {
                    "modifiedDate": modified,
                    "availToSellQty": listing.quantity,
                    "onHandQty": listing.quantity,
                    "shipNodeType": "WFSFulfilled",
                }
            ],
        }
        for listing in wfs[offset : offset + limit]
    ]
    body = {
        "headers": {"totalCount": len(wfs), "offset": offset, "limit": limit},
        "payload": {"inventory": page},
    }
    return json_answer(body)


def _nodes(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    each = _seller_quantity(listing)
    reserved = {"unit": "EACH", "amount": 0}
    node = {"shipNode": state.ship_node, "inputQty": each, "availToSellQty": each}
    return {"sku": listing.sku, "nodes": [{**node, "reservedQty": reserved}]}


@api("GET", "/v3/inventories/{sku}", "getMultiNodeInventory", "getInventory")
async def get_node_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/inventories/{sku}[?shipNode=]``: the seller's one node."""
    listing = _listing(state, request.match_info["sku"], "INVENTORY")
    _check_node(request, state)
    return json_answer(_nodes(state, listing))


@api("GET", "/v3/inventories", "getMultiNodeInventoryForAllSkus", "getInventory")
async def get_all_inventories(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/inventories[?limit=&nextCursor=]``: every SKU's nodes, cursor-paged (<= 50)."""
    listings = list(state.market.listings.values())
    page, after = cursor_page(request.query, listings, "INVENTORY", 10, 50, "inv")
    meta: dict[str, object] = {"totalCount": len(listings)}
    if after is not None:
        meta["nextCursor"] = after
    rows = [_nodes(state, listing) for listing in page]
    return json_answer({"meta": meta, "elements": {"inventories": rows}})


@api("PUT", "/v3/inventories/{sku}", "updateMultiNodeInventory", "updateInventory")
async def put_node_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``PUT /v3/inventories/{sku}``: per-node status; a foreign node fails on its own."""
    listing = _listing(state, request.match_info["sku"], "INVENTORY")
    schema = "MultiNodeInventoryUpdateRequestDTO"
    body = await validated(request, "INVENTORY", "inventory.json", schema)
    _seller_fulfilled(listing)
    amounts = []
    for node in body["inventories"]["nodes"]:
        amounts.append((node["shipNode"], _accepted(check_quantity(node["inputQty"]), "INVENTORY")))
    results: list[dict[str, object]] = []
    for node_id, amount in amounts:
        if node_id != state.ship_node:
            description = f"Ship node {node_id} is not yours."
            error = {"code": "INVALID_REQUEST_CONTENT.GMP_INVENTORY_API", "field": "shipNode"}
            failure = {"status": "Failure", "errors": [{**error, "description": description}]}
            results.append({"shipNode": node_id, **failure})
            continue
        apply_quantity(state, listing, amount)
        results.append({"shipNode": node_id, "status": "Success"})
    return json_answer({"sku": listing.sku, "nodes": results})


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


def _by_sku(state: WalmartMockState) -> list[MockListing]:
    return sorted(state.market.listings.values(), key=lambda listing: listing.sku)


@api("GET", "/v3/items", "getAllItems")
async def list_items(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/items``: ``nextCursor`` (``*`` first) or ``offset`` paging; status filters."""
    query = request.query
    views = [item_view(state, listing) for listing in _by_sku(state)]
    for name in ("sku", "lifecycleStatus", "publishedStatus"):
        if name in query:
            views = [view for view in views if view[name] == query[name]]
    if "offset" in query and "nextCursor" not in query:
        start = int_param(query, "offset", 0, "ITEM_QUERY")
        limit = int_param(
            query, "limit", DEFAULT_ITEMS_PAGE, "ITEM_QUERY", 1, MAX_ITEMS_OFFSET_PAGE
        )
        return json_answer({"ItemResponse": views[start : start + limit], "totalItems": len(views)})
    page, after = cursor_page(
        query, views, "ITEM_QUERY", DEFAULT_ITEMS_PAGE, MAX_ITEMS_PAGE, "mock"
    )
    body: dict[str, Any] = {"ItemResponse": page, "totalItems": len(views)}
    if after is not None:
        body["nextCursor"] = after  # absent on the last page
    return json_answer(body)


@api("GET", "/v3/items/{sku}", "getAnItem")
async def get_item(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/items/{sku}``."""
    listing = _listing(state, request.match_info["sku"], "ITEM_QUERY")
    return json_answer({"ItemResponse": [item_view(state, listing)], "totalItems": 1})


def _quality(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    meta = state.meta_of(listing)
    rivals = [offer for offer in book(state, listing) if not offer.ours]
    price: dict[str, Any] = {
        "price": {"amount": number(listing.price), "currency": listing.currency},
        "walmartShipping": number(state.own_shipping),
    }
    if rivals:
        cheapest = rivals[0]
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


@api("POST", "/v3/insights/items/listingQuality/items", "itemsDetailsForListing")
async def listing_quality(request: web.Request, state: WalmartMockState) -> web.Response:
    """``POST /v3/insights/items/listingQuality/items``: per-item price vs competitor price."""
    schema = "ItemDetailsLQRequestPayload"
    body = await validated(request, "INSIGHTS", "insights.json", schema)
    listings = _by_sku(state)
    if body.get("query"):
        field, value = body["query"].get("field"), str(body["query"].get("value", ""))
        listings = [
            item
            for item in listings
            if (field == "sku" and item.sku == value)
            or (field == "itemId" and state.meta_of(item).item_id == value)
            or (
                field not in ("sku", "itemId")
                and value.lower() in state.meta_of(item).product_name.lower()
            )
        ]
    page, after = cursor_page(request.query, listings, "INSIGHTS", 200, 200, "mock")
    answer: dict[str, Any] = {
        "totalItems": len(listings),
        "payload": [_quality(state, item) for item in page],
    }
    if after is not None:
        answer["nextCursor"] = after
    return json_answer(answer)


@api("GET", "/v3/insights/items/unpublished/items", "getUnpublishedItems")
async def unpublished_items(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/insights/items/unpublished/items?fromDate=YYYY-MM-DD``."""
    try:
        since = date.fromisoformat(request.query.get("fromDate", ""))
    except ValueError as exc:
        raise invalid("INSIGHTS", "fromDate (YYYY-MM-DD) is required.", "fromDate") from exc
    reason = request.query.get("unpublishedReasonCode", "all")
    limit = int_param(request.query, "limit", 20, "INSIGHTS", 1, 200)
    rows = []
    for listing in _by_sku(state):
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
    return json_answer({"payload": rows[:limit], "totalCount": len(rows)})
