"""Single-SKU writes and reads: ``PUT /v3/price``, ``GET|PUT /v3/inventory``, WFS inventory."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from connectors.mock.market import MockListing
from connectors.mock.walmart.const import (
    INVENTORY_CONTENT_CODE,
    INVENTORY_NOT_FOUND_CODE,
    MART,
    PRICE_CONTENT_CODE,
    PRICE_MESSAGE,
    PRICE_NOT_FOUND_CODE,
)
from connectors.mock.walmart.events import dispatch
from connectors.mock.walmart.gate import walmart
from connectors.mock.walmart.offers import apply_price, apply_quantity
from connectors.mock.walmart.rules import Refusal, check_inventory, check_price, check_quantity
from connectors.mock.walmart.state import WalmartMockState
from connectors.mock.walmart.wire import (
    WireError,
    first_error,
    invalid,
    json_answer,
    json_body,
    spec_validator,
)
from domain.listings import Fulfillment


@walmart("updatePrice")
async def update_price(request: web.Request, state: WalmartMockState) -> web.Response:
    """``PUT /v3/price``: one SKU's BASE price (amount a JSON number)."""
    stamp = state.clock.monotonic()  # the update's creation time decides precedence
    body = await json_body(request, PRICE_CONTENT_CODE)
    parsed = check_price(body, "USD")
    if isinstance(parsed, Refusal):
        raise invalid(PRICE_CONTENT_CODE, parsed.description, parsed.field)
    sku, amount = parsed
    listing = state.listing(sku)
    if listing is None:
        raise WireError(404, PRICE_NOT_FOUND_CODE, f"Item not found for SKU {sku}.", field="sku")
    dispatch(request.app, apply_price(state, listing, amount, stamp))
    return json_answer({"ItemPriceResponse": {"mart": MART, "sku": sku, "message": PRICE_MESSAGE}})


def _sku_param(request: web.Request) -> str:
    sku = request.query.get("sku", "")
    if not sku:
        raise invalid(INVENTORY_CONTENT_CODE, "Query parameter sku is required.", "sku")
    return sku


def _check_node(request: web.Request, state: WalmartMockState) -> None:
    node = request.query.get("shipNode")
    if node is not None and node != state.ship_node:
        raise invalid(INVENTORY_CONTENT_CODE, f"Ship node {node} is not yours.", "shipNode")


@walmart("getInventory")
async def get_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/inventory?sku=``: seller-fulfilled quantity (WFS items have none here)."""
    sku = _sku_param(request)
    _check_node(request, state)
    listing = state.listing(sku)
    if listing is None:
        raise WireError(
            404, INVENTORY_NOT_FOUND_CODE, f"Item not found for SKU {sku}.", field="sku"
        )
    amount = 0 if listing.fulfillment is Fulfillment.MARKETPLACE else listing.quantity
    return json_answer({"sku": sku, "quantity": {"unit": "EACH", "amount": amount}})


@walmart("updateInventory")
async def update_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``PUT /v3/inventory?sku=``: set seller-fulfilled quantity; WFS items refuse it."""
    sku = _sku_param(request)
    _check_node(request, state)
    body = await json_body(request, INVENTORY_CONTENT_CODE)
    parsed = check_inventory(body)
    if isinstance(parsed, Refusal):
        raise invalid(INVENTORY_CONTENT_CODE, parsed.description, parsed.field)
    if parsed[0] != sku:
        raise invalid(INVENTORY_CONTENT_CODE, "The body's sku differs from the query's.", "sku")
    listing = state.listing(sku)
    if listing is None:
        raise WireError(
            404, INVENTORY_NOT_FOUND_CODE, f"Item not found for SKU {sku}.", field="sku"
        )
    if listing.fulfillment is Fulfillment.MARKETPLACE:
        raise invalid(
            INVENTORY_CONTENT_CODE,
            "Inventory of a WFS (Walmart-fulfilled) item cannot be updated by the seller.",
            "sku",
        )
    apply_quantity(state, listing, parsed[1])
    return json_answer({"sku": sku, "quantity": {"unit": "EACH", "amount": parsed[1]}})


@walmart("getWfsInventory")
async def get_wfs_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/fulfillment/inventory[?sku=&offset=&limit=]``: WFS available-to-sell stock."""
    wanted = request.query.get("sku")
    try:
        offset = int(request.query.get("offset", "0"))
        limit = int(request.query.get("limit", "10"))
    except ValueError as exc:
        raise invalid(INVENTORY_CONTENT_CODE, "offset and limit must be integers.") from exc
    if offset < 0 or not 1 <= limit <= 300:
        raise invalid(INVENTORY_CONTENT_CODE, "offset >= 0 and 1 <= limit <= 300.", "limit")
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


def _seller_listing(request: web.Request, state: WalmartMockState) -> MockListing:
    sku = request.match_info["sku"]
    listing = state.listing(sku)
    if listing is None:
        raise WireError(
            404, INVENTORY_NOT_FOUND_CODE, f"Item not found for SKU {sku}.", field="sku"
        )
    return listing


@walmart("getMultiNodeInventory", bucket_of=lambda _: "getInventory")
async def get_node_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/inventories/{sku}[?shipNode=]``: the seller's one node."""
    listing = _seller_listing(request, state)
    _check_node(request, state)
    return json_answer({"sku": listing.sku, "nodes": [_node_view(state, listing)]})


def _node_view(state: WalmartMockState, listing: MockListing) -> dict[str, object]:
    amount = 0 if listing.fulfillment is Fulfillment.MARKETPLACE else listing.quantity
    each = {"unit": "EACH", "amount": amount}
    return {
        "shipNode": state.ship_node,
        "inputQty": each,
        "availToSellQty": each,
        "reservedQty": {"unit": "EACH", "amount": 0},
    }


def _inventories_cursor(position: int) -> str:
    return base64.b64encode(f"inv:{position}".encode()).decode()


def _inventories_position(cursor: str) -> int:
    try:
        prefix, _, number = base64.b64decode(cursor, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid(INVENTORY_CONTENT_CODE, "nextCursor is invalid.", "nextCursor") from exc
    if prefix != "inv" or not number.isdigit():
        raise invalid(INVENTORY_CONTENT_CODE, "nextCursor is invalid.", "nextCursor")
    return int(number)


@walmart("getMultiNodeInventoryForAllSkus", bucket_of=lambda _: "getInventory")
async def get_all_inventories(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/inventories[?limit=&nextCursor=]``: every SKU's nodes, cursor-paged (≤ 50)."""
    raw = request.query.get("limit", "10")
    if not raw.isdigit() or not 1 <= int(raw) <= 50:
        raise invalid(INVENTORY_CONTENT_CODE, "limit must be an integer from 1 to 50.", "limit")
    limit = int(raw)
    cursor = request.query.get("nextCursor")
    start = _inventories_position(cursor) if cursor else 0
    listings = list(state.market.listings.values())
    page = listings[start : start + limit]
    meta: dict[str, object] = {"totalCount": len(listings)}
    if start + limit < len(listings):
        meta["nextCursor"] = _inventories_cursor(start + limit)
    rows = [{"sku": listing.sku, "nodes": [_node_view(state, listing)]} for listing in page]
    return json_answer({"meta": meta, "elements": {"inventories": rows}})


@walmart("updateMultiNodeInventory", bucket_of=lambda _: "updateInventory")
async def put_node_inventory(request: web.Request, state: WalmartMockState) -> web.Response:
    """``PUT /v3/inventories/{sku}``: per-node status; a foreign node fails on its own."""
    listing = _seller_listing(request, state)
    body = await json_body(request, INVENTORY_CONTENT_CODE)
    problem = first_error(
        spec_validator("inventory.json", "MultiNodeInventoryUpdateRequestDTO"), body
    )
    if problem is not None:
        raise invalid(INVENTORY_CONTENT_CODE, f"Invalid inventory: {problem}")
    if listing.fulfillment is Fulfillment.MARKETPLACE:
        raise invalid(
            INVENTORY_CONTENT_CODE,
            "Inventory of a WFS (Walmart-fulfilled) item cannot be updated by the seller.",
            "sku",
        )
    amounts = []
    for node in body["inventories"]["nodes"]:
        amount = check_quantity(node["inputQty"])
        if isinstance(amount, Refusal):
            raise invalid(INVENTORY_CONTENT_CODE, amount.description, amount.field)
        amounts.append((node["shipNode"], amount))
    results: list[dict[str, object]] = []
    for node_id, amount in amounts:
        if node_id != state.ship_node:
            error = {
                "code": INVENTORY_CONTENT_CODE,
                "field": "shipNode",
                "description": f"Ship node {node_id} is not yours.",
            }
            results.append({"shipNode": node_id, "status": "Failure", "errors": [error]})
            continue
        apply_quantity(state, listing, amount)
        results.append({"shipNode": node_id, "status": "Success"})
    return json_answer({"sku": listing.sku, "nodes": results})


def add_routes(app: web.Application) -> None:
    """Register price and inventory routes."""
    app.router.add_put("/v3/price", update_price)
    app.router.add_get("/v3/inventory", get_inventory)
    app.router.add_put("/v3/inventory", update_inventory)
    app.router.add_get("/v3/fulfillment/inventory", get_wfs_inventory)
    app.router.add_get("/v3/inventories", get_all_inventories)
    app.router.add_get("/v3/inventories/{sku}", get_node_inventory)
    app.router.add_put("/v3/inventories/{sku}", put_node_inventory)
