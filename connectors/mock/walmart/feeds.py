"""Feeds: ``POST /v3/feeds?feedType=``, ``GET /v3/feeds[/{feedId}]``, and their processing.

The envelope (header + item array, <= 10,000 items) is checked at submission (400 when wrong).
Items are checked one by one when the feed is processed, so one bad item is a ``DATA_ERROR``
ingestion status, not the end of the feed. Feeds go RECEIVED -> INPROGRESS -> PROCESSED on the
state's clock, lazily on every API call and from the app's background ticker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from aiohttp import BodyPartReader, web
from jsonschema import Draft4Validator

from connectors.mock.walmart.const import (
    ERR_INVALID_DATA,
    ERR_ITEM_NOT_FOUND,
    ERR_SYSTEM,
    ERR_UNKNOWN_SHIP_NODE,
    ERR_WFS_INVENTORY,
    FEED_CATEGORIES,
    MAX_FEED_BYTES,
    MAX_FEED_DETAIL_LIMIT,
    MAX_FEED_ITEMS,
)
from connectors.mock.walmart.events import Event, dispatch
from connectors.mock.walmart.offers import apply_price, apply_quantity
from connectors.mock.walmart.state import STATE_KEY, Feed, WalmartMockState
from connectors.mock.walmart.wire import (
    Refusal,
    WireError,
    api,
    check_inventory,
    check_node_inventory,
    check_price,
    epoch_ms,
    first_error,
    int_param,
    invalid,
    json_answer,
    not_found,
)
from domain.listings import Fulfillment

DONE = ("PROCESSED", "ERROR")


_VERSION = {
    "type": "object",
    "required": ["version"],
    "properties": {"version": {"type": "string"}},
}


def _envelope(header: str, key: str, check: Callable[[Any], Any]) -> tuple[Any, ...]:
    # The JSON feed envelopes of the price.json / inventory.json request examples.
    array = {"type": "array", "minItems": 1, "items": {"type": "object"}}
    properties = {header: _VERSION, key: array}
    schema = {"type": "object", "required": [header, key], "properties": properties}
    return Draft4Validator(schema), key, check


# feedType -> (envelope validator, item array key, item check)
ENVELOPES: dict[str, tuple[Any, ...]] = {
    "price": _envelope("PriceHeader", "Price", lambda item: check_price(item, "USD")),
    "inventory": _envelope("InventoryHeader", "Inventory", check_inventory),
    "MP_INVENTORY": _envelope("inventoryHeader", "inventory", check_node_inventory),
}


def _too_large() -> WireError:
    description = f"The feed file exceeds {MAX_FEED_BYTES} bytes."
    return WireError(413, "INVALID_REQUEST_CONTENT.GMP_FEED_API", description, field="file")


async def _feed_file(request: web.Request, state: WalmartMockState) -> bytes:
    if request.content_type == "application/json" and state.accept_json_feed_body:
        raw = await request.read()
        if len(raw) > MAX_FEED_BYTES:
            raise _too_large()
        return raw
    if request.content_type != "multipart/form-data":
        raise WireError(
            415,
            "INVALID_REQUEST_CONTENT.GMP_FEED_API",
            "Feeds are uploaded as multipart/form-data with the file in part 'file'.",
            field="Content-Type",
        )
    async for part in await request.multipart():
        if isinstance(part, BodyPartReader) and part.name == "file":
            data = bytearray()
            while chunk := await part.read_chunk():
                data.extend(chunk)
                if len(data) > MAX_FEED_BYTES:
                    raise _too_large()
            return bytes(data)
    raise invalid("FEED", "The multipart body has no part named 'file'.", "file")


def parse_feed(feed_type: str, raw: bytes) -> list[Any]:
    """The item array of a JSON feed file, or the 400 for a file Walmart cannot take."""
    try:
        document = json.loads(raw, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid("FEED", "The feed file is not valid JSON.", "file") from exc
    validator, key, _ = ENVELOPES[feed_type]
    problem = first_error(validator, document)
    if problem is not None:
        raise invalid("FEED", f"Invalid {feed_type} feed: {problem}", "file")
    items: list[Any] = document[key]
    if len(items) > MAX_FEED_ITEMS:
        limit = f"A feed can hold at most {MAX_FEED_ITEMS} items; this one has {len(items)}."
        raise invalid("FEED", limit, "file")
    return items


def _feed_bucket(request: web.Request) -> str | None:
    category = FEED_CATEGORIES.get(request.query.get("feedType", ""))
    return f"feed:{category}" if category else None


@api("POST", "/v3/feeds", "submitFeed", _feed_bucket)
async def submit_feed(request: web.Request, state: WalmartMockState) -> web.Response:
    """Accept a price / inventory / MP_INVENTORY JSON feed; answer its ``feedId``."""
    feed_type = request.query.get("feedType", "")
    if feed_type not in FEED_CATEGORIES:
        allowed = ", ".join(FEED_CATEGORIES)
        raise invalid("FEED", f"feedType must be one of {allowed}.", "feedType")
    node = request.query.get("shipNode")
    if node is not None and node != state.ship_node:
        raise invalid("FEED", f"Ship node {node} is not yours.", "shipNode")
    raw = await _feed_file(request, state)
    error: str | None = None
    try:
        items = parse_feed(feed_type, raw)
    except WireError as exc:
        if not state.bad_feed_file_as_error_status or exc.status != 400:
            raise
        items, error = [], exc.description
    feed_id, now = state.new_feed_id(), state.clock.now()
    feed = Feed(feed_id, feed_type, now, state.clock.monotonic(), items, node, error=error)
    feed.modified = now
    state.feeds[feed_id] = feed
    return json_answer({"feedId": feed_id, "additionalAttributes": None, "errors": None})


def _counts(feed: Feed) -> dict[str, int]:
    received = len(feed.items)
    ok = sum(1 for entry in feed.results if entry["ingestionStatus"] == "SUCCESS")
    done = feed.status in DONE
    return {
        "itemsReceived": received,
        "itemsSucceeded": ok if done else 0,
        "itemsFailed": received - ok if done else 0,
        "itemsProcessing": 0 if done else received,
    }


def _record(state: WalmartMockState, feed: Feed) -> dict[str, Any]:
    statuses = [entry["ingestionStatus"] for entry in feed.results]
    return {
        "feedId": feed.feed_id,
        "feedSource": "MARKETPLACE_PARTNER",
        "feedType": feed.feed_type,
        "partnerId": state.partner_id,
        **_counts(feed),
        "feedStatus": feed.status,
        "feedDate": epoch_ms(feed.created.timestamp()),
        "modifiedDtm": epoch_ms((feed.modified or feed.created).timestamp()),
        "itemDataErrorCount": statuses.count("DATA_ERROR"),
        "itemSystemErrorCount": statuses.count("SYSTEM_ERROR"),
        "itemTimeoutErrorCount": 0,
    }


@api("GET", "/v3/feeds", "getAllFeedStatuses")
async def list_feeds(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/feeds[?feedId=&offset=&limit=]``: newest first."""
    offset = int_param(request.query, "offset", 0, "FEED")
    limit = int_param(request.query, "limit", 50, "FEED", 1, MAX_FEED_DETAIL_LIMIT)
    wanted = request.query.get("feedId")
    feeds = [f for f in state.feeds.values() if not wanted or f.feed_id == wanted]
    feeds.sort(key=lambda feed: feed.created_mono, reverse=True)
    page = [_record(state, feed) for feed in feeds[offset : offset + limit]]
    body = {"totalResults": len(feeds), "offset": offset, "limit": limit, "results": {"feed": page}}
    return json_answer(body)


def _sku(item: Any) -> str:
    sku = item.get("sku") if isinstance(item, dict) else None
    return sku if isinstance(sku, str) else ""


@api("GET", "/v3/feeds/{feedId}", "getFeedItemStatus")
async def feed_status(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/feeds/{feedId}[?includeDetails=true&offset=&limit=]``."""
    feed = state.feeds.get(request.match_info["feedId"])
    if feed is None:
        raise not_found("FEED", "Feed not found.", "feedId")
    offset = int_param(request.query, "offset", 0, "FEED")
    limit = int_param(
        request.query, "limit", MAX_FEED_DETAIL_LIMIT, "FEED", 1, MAX_FEED_DETAIL_LIMIT
    )
    body: dict[str, Any] = {
        "feedId": feed.feed_id,
        "feedStatus": feed.status,
        "feedSubmissionDate": epoch_ms(feed.created.timestamp()),
        **_counts(feed),
        "offset": offset,
        "limit": limit,
    }
    if feed.status == "ERROR" and feed.error:
        error = {"type": "DATA_ERROR", "code": ERR_INVALID_DATA, "description": feed.error}
        body["ingestionErrors"] = {"ingestionError": [error]}
    if request.query.get("includeDetails", "false").lower() == "true":
        entries = feed.results or [
            {"martId": 0, "sku": _sku(item), "index": index, "ingestionStatus": "INPROGRESS"}
            for index, item in enumerate(feed.items)
        ]
        body["itemDetails"] = {"itemIngestionStatus": entries[offset : offset + limit]}
    return json_answer(body)


def _ingested(
    state: WalmartMockState, index: int, sku: str, refusal: Refusal | None, status: str = ""
) -> dict[str, Any]:
    status = status or ("DATA_ERROR" if refusal else "SUCCESS")
    entry: dict[str, Any] = {"martId": 0, "sku": sku, "index": index, "ingestionStatus": status}
    listing = state.listing(sku)
    if listing is not None:
        meta = state.meta_of(listing)
        entry["wpid"], entry["itemid"] = meta.wpid, meta.item_id
    if refusal is not None:
        error = {"type": status, "code": refusal.code, "description": refusal.description}
        entry["ingestionErrors"] = {"ingestionError": [error]}
    return entry


def _process_item(
    state: WalmartMockState, feed: Feed, index: int, item: Any, events: list[Event]
) -> dict[str, Any]:
    sku = _sku(item)
    parsed = ENVELOPES[feed.feed_type][2](item)
    if isinstance(parsed, Refusal):
        return _ingested(state, index, sku, parsed)
    listing = state.listing(sku)
    if listing is None:
        refusal = Refusal(ERR_ITEM_NOT_FOUND, f"Item not found for SKU {sku}.", "sku")
        return _ingested(state, index, sku, refusal)
    if state.faults.item_refused():
        refusal = Refusal(ERR_SYSTEM, "System error while processing the item; resubmit it.")
        return _ingested(state, index, sku, refusal, "SYSTEM_ERROR")
    if feed.feed_type == "price":
        events.extend(apply_price(state, listing, parsed[1], feed.created_mono))
        return _ingested(state, index, sku, None)
    if listing.fulfillment is Fulfillment.MARKETPLACE:
        refusal = Refusal(ERR_WFS_INVENTORY, "Inventory of a WFS item is managed by Walmart.")
        return _ingested(state, index, sku, refusal)
    for node, amount in parsed[1]:
        node = node or feed.ship_node or state.ship_node
        if node != state.ship_node:
            refusal = Refusal(ERR_UNKNOWN_SHIP_NODE, f"Ship node {node} is not yours.", "shipNode")
            return _ingested(state, index, sku, refusal)
        apply_quantity(state, listing, amount)
    return _ingested(state, index, sku, None)


def advance_feeds(app: web.Application) -> None:
    """Move every unfinished feed along its timeline; process and push for those now due."""
    state = app[STATE_KEY]
    if state.faults.hold_feeds:
        return
    now, full = state.clock.monotonic(), state.feed_processing_s
    events: list[Event] = []
    for feed in state.feeds.values():
        if feed.status in DONE:
            continue
        if now - feed.created_mono >= full / 2 and feed.status == "RECEIVED":
            feed.status = "INPROGRESS"
            feed.modified = state.at(feed.created_mono + full / 2)
        if now - feed.created_mono >= full:
            if feed.error is None:
                feed.results = [
                    _process_item(state, feed, index, item, events)
                    for index, item in enumerate(feed.items)
                ]
            feed.status = "PROCESSED" if feed.error is None else "ERROR"
            feed.modified = state.at(feed.created_mono + full)
    dispatch(app, events)
