"""Feed parsing and processing: RECEIVED → INPROGRESS → PROCESSED on the state's clock.

The envelope (header + item array, ≤ 10,000 items) is checked at submission (400 when wrong).
Items are checked one by one when the feed is processed, so one bad item is a ``DATA_ERROR``
ingestion status, not the end of the feed. Feeds advance lazily on every API call and from the
app's background ticker.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aiohttp import web
from jsonschema import Draft4Validator

from connectors.mock.walmart.const import (
    ERR_ITEM_NOT_FOUND,
    ERR_SYSTEM,
    ERR_UNKNOWN_SHIP_NODE,
    ERR_WFS_INVENTORY,
    FEED_CONTENT_CODE,
    MAX_FEED_ITEMS,
)
from connectors.mock.walmart.events import Event, dispatch
from connectors.mock.walmart.keys import STATE_KEY
from connectors.mock.walmart.offers import apply_price, apply_quantity
from connectors.mock.walmart.rules import (
    Refusal,
    check_inventory,
    check_node_inventory,
    check_price,
)
from connectors.mock.walmart.state import Feed, WalmartMockState
from connectors.mock.walmart.wire import WireError, first_error, invalid
from domain.listings import Fulfillment


def _envelope(header: str, items: str) -> Draft4Validator:
    # The JSON feed envelopes of the price.json / inventory.json request examples.
    return Draft4Validator(
        {
            "type": "object",
            "required": [header, items],
            "properties": {
                header: {
                    "type": "object",
                    "required": ["version"],
                    "properties": {"version": {"type": "string"}},
                },
                items: {"type": "array", "minItems": 1, "items": {"type": "object"}},
            },
        }
    )


# feedType -> (envelope validator, item array key)
ENVELOPES: dict[str, tuple[Draft4Validator, str]] = {
    "price": (_envelope("PriceHeader", "Price"), "Price"),
    "inventory": (_envelope("InventoryHeader", "Inventory"), "Inventory"),
    "MP_INVENTORY": (_envelope("inventoryHeader", "inventory"), "inventory"),
}


def parse_feed(feed_type: str, raw: bytes) -> list[Any]:
    """The item array of a JSON feed file, or the 400 for a file Walmart cannot take."""
    try:
        document = json.loads(raw, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(FEED_CONTENT_CODE, "The feed file is not valid JSON.", "file") from exc
    validator, key = ENVELOPES[feed_type]
    problem = first_error(validator, document)
    if problem is not None:
        raise invalid(FEED_CONTENT_CODE, f"Invalid {feed_type} feed: {problem}", "file")
    items: list[Any] = document[key]
    if len(items) > MAX_FEED_ITEMS:
        raise WireError(
            400,
            FEED_CONTENT_CODE,
            f"A feed can hold at most {MAX_FEED_ITEMS} items; this one has {len(items)}.",
            field="file",
        )
    return items


def _status(
    state: WalmartMockState, index: int, sku: str, status: str, refusal: Refusal | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"martId": 0, "sku": sku, "index": index, "ingestionStatus": status}
    listing = state.listing(sku)
    if listing is not None:
        meta = state.meta_of(listing)
        entry["wpid"] = meta.wpid
        entry["itemid"] = meta.item_id
    if refusal is not None:
        kind = "SYSTEM_ERROR" if status == "SYSTEM_ERROR" else "DATA_ERROR"
        error = {"type": kind, "code": refusal.code, "description": refusal.description}
        entry["ingestionErrors"] = {"ingestionError": [error]}
    return entry


def _sku_of(item: Any) -> str:
    sku = item.get("sku") if isinstance(item, dict) else None
    return sku if isinstance(sku, str) else ""


def _process_item(
    state: WalmartMockState, feed: Feed, index: int, item: Any, events: list[Event]
) -> dict[str, Any]:
    sku = _sku_of(item)
    if feed.feed_type == "price":
        parsed_price = check_price(item, "USD")
        if isinstance(parsed_price, Refusal):
            return _status(state, index, sku, "DATA_ERROR", parsed_price)
    elif feed.feed_type == "inventory":
        parsed_qty = check_inventory(item)
        if isinstance(parsed_qty, Refusal):
            return _status(state, index, sku, "DATA_ERROR", parsed_qty)
        nodes = [(feed.ship_node or state.ship_node, parsed_qty[1])]
    else:
        parsed_nodes = check_node_inventory(item)
        if isinstance(parsed_nodes, Refusal):
            return _status(state, index, sku, "DATA_ERROR", parsed_nodes)
        nodes = parsed_nodes[1]
    listing = state.listing(sku)
    if listing is None:
        refusal = Refusal(ERR_ITEM_NOT_FOUND, f"Item not found for SKU {sku}.", "sku")
        return _status(state, index, sku, "DATA_ERROR", refusal)
    if state.faults.item_refused():
        refusal = Refusal(ERR_SYSTEM, "System error while processing the item; resubmit it.")
        return _status(state, index, sku, "SYSTEM_ERROR", refusal)
    if feed.feed_type == "price":
        assert not isinstance(parsed_price, Refusal)
        events.extend(apply_price(state, listing, parsed_price[1], feed.created_mono))
        return _status(state, index, sku, "SUCCESS")
    if listing.fulfillment is Fulfillment.MARKETPLACE:
        refusal = Refusal(ERR_WFS_INVENTORY, "Inventory of a WFS item is managed by Walmart.")
        return _status(state, index, sku, "DATA_ERROR", refusal)
    for node, amount in nodes:
        if node != state.ship_node:
            refusal = Refusal(ERR_UNKNOWN_SHIP_NODE, f"Ship node {node} is not yours.", "shipNode")
            return _status(state, index, sku, "DATA_ERROR", refusal)
        apply_quantity(state, listing, amount)
    return _status(state, index, sku, "SUCCESS")


def process_feed(state: WalmartMockState, feed: Feed) -> list[Event]:
    """Process every item of a due feed; return the events the changes caused."""
    events: list[Event] = []
    feed.results = [
        _process_item(state, feed, index, item, events) for index, item in enumerate(feed.items)
    ]
    feed.status = "PROCESSED"
    feed.modified = state.at(feed.created_mono + state.feed_processing_s)
    return events


def advance_feeds(app: web.Application) -> None:
    """Move every unfinished feed along its timeline; process and push for those now due."""
    state = app[STATE_KEY]
    if state.faults.hold_feeds:
        return
    now = state.clock.monotonic()
    half = state.feed_processing_s / 2
    events: list[Event] = []
    for feed in state.feeds.values():
        if feed.status in ("PROCESSED", "ERROR"):
            continue
        if now - feed.created_mono >= half and feed.status == "RECEIVED":
            feed.status = "INPROGRESS"
            feed.modified = state.at(feed.created_mono + half)
        if now - feed.created_mono >= state.feed_processing_s:
            if feed.error is not None:
                feed.status = "ERROR"
                feed.modified = state.at(feed.created_mono + state.feed_processing_s)
                continue
            events.extend(process_feed(state, feed))
    dispatch(app, events)
