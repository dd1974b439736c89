"""Offers and catalog: ``PUT /v3/price``, the inventory routes, ``GET /v3/items``, Insights
(where the spec exposes competitor prices and offers unpublished for their price).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from connectors.mock.market import MockListing
from connectors.mock.walmart import const, wire
from connectors.mock.walmart.events import dispatch
from connectors.mock.walmart.offers import apply_price, apply_quantity, book
from connectors.mock.walmart.state import WalmartMockState
from connectors.mock.walmart.wire import api, cursor_page, int_param, invalid, number
from domain.listings import Fulfillment

WFS = Fulfillment.MARKETPLACE


def _listing(state: WalmartMockState, sku: str, api_name: str = "INVENTORY") -> MockListing:
    listing = state.listing(sku)
    if listing is None:
        raise wire.not_found(api_name, f"Item not found for SKU {sku}.", "sku")
    return listing


@api("PUT", "/v3/price", "updatePrice")
async def update_price(request: web.Request, state: WalmartMockState) -> web.Response:
    """One SKU's BASE price (amount a JSON number)."""
    stamp = state.clock.monotonic()  # the update's creation time decides precedence
    body = await wire.json_body(request, "PRICE")
    with wire.accepted("PRICE"):
        sku, price = wire.check_price(body, "USD")
    listing = _listing(state, sku, "PRICE")
    dispatch(request.app, apply_price(state, listing, price, stamp))
    answer = {"mart": const.MART, "sku": listing.sku, "message": const.PRICE_MESSAGE}
    return web.json_response({"ItemPriceResponse": answer})


def _inventory_query(request: web.Request, state: WalmartMockState, sku: str | None = None) -> str:
    """The SKU (``?sku=`` unless given) after refusing a ``shipNode`` that is not the seller's."""
    sku = request.query.get("sku", "") if sku is None else sku
    if not sku:
        raise invalid("INVENTORY", "Query parameter sku is required.", "sku")
    node = request.query.get("shipNode")
    if node is not None and node != state.ship_node:
        raise invalid("INVENTORY", f"Ship node {node} is not yours.", "shipNode")
    return sku


def _seller_fulfilled(listing: MockListing) -> MockListing:
    if listing.fulfillment is WFS:
        refused = "Inventory of a WFS (Walmart-fulfilled) item cannot be updated by the seller."
        raise invalid("INVENTORY", refused, "sku")
    return listing


def _nodes(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    each = {"unit": "EACH", "amount": 0 if listing.fulfillment is WFS else listing.quantity}
    node = {"shipNode": state.ship_node, "inputQty": each, "availToSellQty": each}
    return {"sku": listing.sku, "nodes": [{**node, "reservedQty": {"unit": "EACH", "amount": 0}}]}


@api("GET", "/v3/inventory", "getInventory")
async def get_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """Seller-fulfilled quantity (WFS items have none here)."""
    nodes = _nodes(state, _listing(state, _inventory_query(request, state)))
    return web.json_response({"sku": nodes["sku"], "quantity": nodes["nodes"][0]["inputQty"]})


@api("PUT", "/v3/inventory", "updateInventory")
async def update_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """Set seller-fulfilled quantity; WFS items refuse it."""
    sku = _inventory_query(request, state)
    body = await wire.json_body(request, "INVENTORY")
    with wire.accepted("INVENTORY"):
        named, [(_, amount)] = wire.check_inventory(body)
    if named != sku:
        raise invalid("INVENTORY", "The body's sku differs from the query's.", "sku")
    apply_quantity(state, _seller_fulfilled(_listing(state, sku)), amount)
    return web.json_response({"sku": sku, "quantity": {"unit": "EACH", "amount": amount}})


@api("GET", "/v3/fulfillment/inventory", "getWfsInventory")
async def get_wfs_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """WFS available-to-sell stock (``?sku=&offset=&limit=``)."""
    wanted = request.query.get("sku")
    offset = int_param(request.query, "offset", 0, "INVENTORY")
    limit = int_param(request.query, "limit", 10, "INVENTORY", 1, 300)
    wfs = [
        listing
        for listing in state.market.listings.values()
        if listing.fulfillment is WFS and (not wanted or listing.sku == wanted)
    ]
    node = {"modifiedDate": state.clock.now().strftime("%Y-%m-%d"), "shipNodeType": "WFSFulfilled"}
    page = [
        {
            "sku": item.sku,
            "shipNodes": [{**node, "availToSellQty": item.quantity, "onHandQty": item.quantity}],
        }
        for item in wfs[offset : offset + limit]
    ]
    headers = {"totalCount": len(wfs), "offset": offset, "limit": limit}
    return web.json_response({"headers": headers, "payload": {"inventory": page}})


@api("GET", "/v3/inventories/{sku}", "getMultiNodeInventory", "getInventory")
async def get_node_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """The seller's one node (``?shipNode=``)."""
    listing = _listing(state, request.match_info["sku"])
    _inventory_query(request, state, listing.sku)
    return web.json_response(_nodes(state, listing))


@api("GET", "/v3/inventories", "getMultiNodeInventoryForAllSkus", "getInventory")
async def get_all_inventories(request: web.Request, state: WalmartMockState) -> web.Response:
    """Every SKU's nodes, cursor-paged (<= 50)."""
    listings = list(state.market.listings.values())
    page, after = cursor_page(request.query, listings, "INVENTORY", 10, 50, "inv")
    rows = [_nodes(state, listing) for listing in page]
    meta = {"totalCount": len(listings), **after}
    return web.json_response({"meta": meta, "elements": {"inventories": rows}})


@api("PUT", "/v3/inventories/{sku}", "updateMultiNodeInventory", "updateInventory")
async def put_node_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """Per-node status; a foreign node fails on its own."""
    listing = _listing(state, request.match_info["sku"])
    schema = "MultiNodeInventoryUpdateRequestDTO"
    body = await wire.validated(request, "INVENTORY", "inventory.json", schema)
    _seller_fulfilled(listing)
    nodes = body["inventories"]["nodes"]
    with wire.accepted("INVENTORY"):  # the schema checked each inputQty
        amounts = [(node["shipNode"], wire.whole(node["inputQty"])) for node in nodes]
    results: list[dict[str, Any]] = []
    for node_id, amount in amounts:
        if node_id != state.ship_node:
            error = {"code": "INVALID_REQUEST_CONTENT.GMP_INVENTORY_API", "field": "shipNode"}
            error["description"] = f"Ship node {node_id} is not yours."
            results.append({"shipNode": node_id, "status": "Failure", "errors": [error]})
            continue
        apply_quantity(state, listing, amount)
        results.append({"shipNode": node_id, "status": "Success"})
    return web.json_response({"sku": listing.sku, "nodes": results})


def item_view(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    """One ``ItemResponse`` entry (items.json), plus ``itemId``."""
    meta = state.meta_of(listing)
    view: dict[str, Any] = {
        "mart": const.MART,
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
    if meta.published_status == const.UNPUBLISHED:
        view["unpublishedReasons"] = {"reason": list(meta.reasons)}
    return view


def _by_sku(state: WalmartMockState) -> list[MockListing]:
    return sorted(state.market.listings.values(), key=lambda listing: listing.sku)


@api("GET", "/v3/items", "getAllItems")
async def list_items(request: web.Request, state: WalmartMockState) -> web.Response:
    """``nextCursor`` (``*`` first) or ``offset`` paging; sku and status filters."""
    query, after = request.query, dict[str, str]()
    views = [item_view(state, listing) for listing in _by_sku(state)]
    for name in ("sku", "lifecycleStatus", "publishedStatus"):
        if name in query:
            views = [view for view in views if view[name] == query[name]]
    if "offset" in query and "nextCursor" not in query:
        start = int_param(query, "offset", 0, "ITEM_QUERY")
        limit = int_param(
            query, "limit", const.DEFAULT_ITEMS_PAGE, "ITEM_QUERY", 1, const.MAX_ITEMS_OFFSET_PAGE
        )
        page = views[start : start + limit]
    else:  # nextCursor is absent on the last page
        page, after = cursor_page(
            query, views, "ITEM_QUERY", const.DEFAULT_ITEMS_PAGE, const.MAX_ITEMS_PAGE, "mock"
        )
    return web.json_response({"ItemResponse": page, "totalItems": len(views), **after})


@api("GET", "/v3/items/{sku}", "getAnItem")
async def get_item(request: web.Request, state: WalmartMockState) -> web.Response:
    """One item, as the list shows it."""
    view = item_view(state, _listing(state, request.match_info["sku"], "ITEM_QUERY"))
    return web.json_response({"ItemResponse": [view], "totalItems": 1})


def _quality(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    meta = state.meta_of(listing)
    rivals = [offer for offer in book(state, listing) if not offer.ours]
    price: dict[str, Any] = {
        "price": {"amount": number(listing.price), "currency": listing.currency},
        "walmartShipping": number(state.own_shipping),
    }
    if rivals:
        beaten = rivals[0].landed < listing.price + state.own_shipping
        price["competitorPrice"] = {"amount": number(rivals[0].price), "currency": listing.currency}
        price["competitorShipping"] = number(rivals[0].shipping)
        price["issueTitle"] = "Price Not Competitive" if beaten else "Price Competitive"
        price["score"] = 0 if beaten else 100
    return {
        "productId": meta.wpid,
        "itemId": meta.item_id,
        "sku": listing.sku,
        "sellerId": state.partner_id,
        "productName": meta.product_name,
        "productType": meta.product_type,
        "categoryName": "Home",
        "wfsEnabled": 1 if listing.fulfillment is WFS else 0,
        "priority": "LOW",
        "scoreDetails": {"offer": {"price": price, "issueCount": 0 if price.get("score") else 1}},
    }


def _matches(state: WalmartMockState, item: MockListing, field: str, value: str) -> bool:
    if field == "sku":
        return item.sku == value
    if field == "itemId":
        return state.meta_of(item).item_id == value
    return value.lower() in state.meta_of(item).product_name.lower()


@api("POST", "/v3/insights/items/listingQuality/items", "itemsDetailsForListing")
async def listing_quality(request: web.Request, state: WalmartMockState) -> web.Response:
    """Per-item price vs the lowest competitor price; ``query`` by sku, itemId or name."""
    schema = "ItemDetailsLQRequestPayload"
    query = (await wire.validated(request, "INSIGHTS", "insights.json", schema)).get("query")
    listings = _by_sku(state)
    if query:
        field, value = query.get("field"), str(query.get("value", ""))
        listings = [item for item in listings if _matches(state, item, field, value)]
    page, after = cursor_page(request.query, listings, "INSIGHTS", 200, 200, "mock")
    payload = [_quality(state, item) for item in page]
    return web.json_response({"totalItems": len(listings), "payload": payload, **after})


@api("GET", "/v3/insights/items/unpublished/items", "getUnpublishedItems")
async def unpublished_items(request: web.Request, state: WalmartMockState) -> web.Response:
    """Offers unpublished since ``fromDate`` (YYYY-MM-DD), for a reason or ``all``."""
    try:
        since = date.fromisoformat(request.query.get("fromDate", ""))
    except ValueError as exc:
        raise invalid("INSIGHTS", "fromDate (YYYY-MM-DD) is required.", "fromDate") from exc
    reason = request.query.get("unpublishedReasonCode", "all")
    limit = int_param(request.query, "limit", 20, "INSIGHTS", 1, 200)
    metas = [(listing, state.meta_of(listing)) for listing in _by_sku(state)]
    rows = [
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
            "unpublishedDate": meta.unpublished_at.date().isoformat(),
            "publishStatus": meta.published_status,
            "lifecycleStatus": meta.lifecycle_status,
        }
        for listing, meta in metas
        if meta.published_status == const.UNPUBLISHED
        and meta.unpublished_at is not None
        and meta.unpublished_at.date() >= since
        and (reason == "all" or reason in meta.reasons)
    ]
    return web.json_response({"payload": rows[:limit], "totalCount": len(rows)})
