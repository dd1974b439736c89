"""Feeds: submission (the envelope is checked, a 400), status, and processing on the state's
clock (RECEIVED -> INPROGRESS -> PROCESSED; one bad item is a ``DATA_ERROR``, not the feed's end).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aiohttp import BodyPartReader, web
from jsonschema import Draft4Validator

from connectors.mock.kit.wire import first_error
from connectors.mock.walmart import const, wire
from connectors.mock.walmart.events import Event, dispatch
from connectors.mock.walmart.offers import apply_price, apply_quantity
from connectors.mock.walmart.state import STATE_KEY, Feed, WalmartMockState
from connectors.mock.walmart.wire import Refusal, WireError, api, epoch_ms, int_param, invalid
from domain.listings import Fulfillment

DONE = ("PROCESSED", "ERROR")
MAX_LIMIT = const.MAX_FEED_DETAIL_LIMIT


def _envelope(header: str, key: str, check: Any) -> tuple[Draft4Validator, str, Any]:
    # The JSON feed envelopes of the price.json / inventory.json request examples.
    version = wire.obj("version", version={"type": "string"})
    items = {"type": "array", "minItems": 1, "items": {"type": "object"}}
    return Draft4Validator(wire.obj(f"{header} {key}", **{header: version, key: items})), key, check


# feedType -> (envelope validator, item array key, item check)
ENVELOPES = {
    "price": _envelope("PriceHeader", "Price", lambda item: wire.check_price(item, "USD")),
    "inventory": _envelope("InventoryHeader", "Inventory", wire.check_inventory),
    "MP_INVENTORY": _envelope("inventoryHeader", "inventory", wire.check_node_inventory),
}


async def _feed_file(request: web.Request, state: WalmartMockState) -> bytes:
    too_large = invalid("FEED", f"The feed file exceeds {const.MAX_FEED_BYTES} bytes.", "file", 413)
    if request.content_type != "multipart/form-data":
        upload = "Feeds are uploaded as multipart/form-data with the file in part 'file'."
        raise invalid("FEED", upload, "Content-Type", 415)
    async for part in await request.multipart():
        if isinstance(part, BodyPartReader) and part.name == "file":
            data = bytearray()
            while chunk := await part.read_chunk():
                data.extend(chunk)
                if len(data) > const.MAX_FEED_BYTES:
                    raise too_large
            return bytes(data)
    raise invalid("FEED", "The multipart body has no part named 'file'.", "file")


def parse_feed(feed_type: str, raw: bytes) -> list[Any]:
    """The item array of a JSON feed file, or the 400 for a file Walmart cannot take."""
    try:
        document = json.loads(raw, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid("FEED", "The feed file is not valid JSON.", "file") from exc
    validator, key, _ = ENVELOPES[feed_type]
    problem = first_error(validator, document, separator=".")
    if problem is not None:
        raise invalid("FEED", f"Invalid {feed_type} feed: {problem}", "file")
    items: list[Any] = document[key]
    if len(items) > const.MAX_FEED_ITEMS:
        limit = f"A feed can hold at most {const.MAX_FEED_ITEMS} items; this one has {len(items)}."
        raise invalid("FEED", limit, "file")
    return items


def _feed_bucket(request: web.Request) -> str | None:
    category = const.FEED_CATEGORIES.get(request.query.get("feedType", ""))
    return f"feed:{category}" if category else None


@api("POST", "/v3/feeds", "submitFeed", _feed_bucket)
async def submit_feed(request: web.Request, state: WalmartMockState) -> web.Response:
    """Accept a price / inventory / MP_INVENTORY JSON feed; answer its ``feedId``."""
    feed_type = request.query.get("feedType", "")
    if feed_type not in const.FEED_CATEGORIES:
        allowed = ", ".join(const.FEED_CATEGORIES)
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
    return web.json_response({"feedId": feed_id, "additionalAttributes": None, "errors": None})


def _counts(feed: Feed) -> dict[str, int]:
    received, done = len(feed.items), feed.status in DONE
    ok = sum(1 for entry in feed.results if entry["ingestionStatus"] == "SUCCESS")
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
    limit = int_param(request.query, "limit", 50, "FEED", 1, MAX_LIMIT)
    wanted = request.query.get("feedId")
    feeds = [f for f in state.feeds.values() if not wanted or f.feed_id == wanted]
    feeds.sort(key=lambda feed: feed.created_mono, reverse=True)
    page = [_record(state, feed) for feed in feeds[offset : offset + limit]]
    body = {"totalResults": len(feeds), "offset": offset, "limit": limit, "results": {"feed": page}}
    return web.json_response(body)


def _entry(index: int, item: Any, status: str) -> dict[str, Any]:
    """The feeds.json ``PartnerItemIngestionStatus`` of an item (its sku if it names one)."""
    sku = item.get("sku") if isinstance(item, dict) else None
    sku = sku if isinstance(sku, str) else ""
    return {"martId": 0, "sku": sku, "index": index, "ingestionStatus": status}


@api("GET", "/v3/feeds/{feedId}", "getFeedItemStatus")
async def feed_status(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/feeds/{feedId}[?includeDetails=true&offset=&limit=]``."""
    feed = state.feeds.get(request.match_info["feedId"])
    if feed is None:
        raise wire.not_found("FEED", "Feed not found.", "feedId")
    offset = int_param(request.query, "offset", 0, "FEED")
    limit = int_param(request.query, "limit", MAX_LIMIT, "FEED", 1, MAX_LIMIT)
    body: dict[str, Any] = {"feedId": feed.feed_id, "feedStatus": feed.status}
    body["feedSubmissionDate"] = epoch_ms(feed.created.timestamp())
    body.update(**_counts(feed), offset=offset, limit=limit)
    if feed.status == "ERROR" and feed.error:
        error = {"type": "DATA_ERROR", "code": const.ERR_INVALID_DATA, "description": feed.error}
        body["ingestionErrors"] = {"ingestionError": [error]}
    if request.query.get("includeDetails", "false").lower() == "true":
        waiting = [_entry(index, item, "INPROGRESS") for index, item in enumerate(feed.items)]
        entries = feed.results or waiting
        body["itemDetails"] = {"itemIngestionStatus": entries[offset : offset + limit]}
    return web.json_response(body)


def _ingest(state: WalmartMockState, feed: Feed, item: Any, events: list[Event]) -> None:
    """Apply one feed item, or raise the ``Refusal`` saying why it is not applied."""
    sku, value = ENVELOPES[feed.feed_type][2](item)
    listing = state.listing(sku)
    if listing is None:
        raise Refusal(f"Item not found for SKU {sku}.", "sku", const.ERR_ITEM_NOT_FOUND)
    if state.faults.item_refused():
        resubmit = "System error while processing the item; resubmit it."
        raise Refusal(resubmit, code=const.ERR_SYSTEM)
    if feed.feed_type == "price":
        events.extend(apply_price(state, listing, value, feed.created_mono))
        return
    if listing.fulfillment is Fulfillment.MARKETPLACE:
        wfs = "Inventory of a WFS item is managed by Walmart."
        raise Refusal(wfs, code=const.ERR_WFS_INVENTORY)
    for node, amount in value:
        node = node or feed.ship_node or state.ship_node
        if node != state.ship_node:
            foreign = f"Ship node {node} is not yours."
            raise Refusal(foreign, "shipNode", const.ERR_UNKNOWN_SHIP_NODE)
        apply_quantity(state, listing, amount)


def _status(state: WalmartMockState, feed: Feed, index: int, events: list[Event]) -> dict[str, Any]:
    try:
        _ingest(state, feed, feed.items[index], events)
    except Refusal as refusal:
        status = "SYSTEM_ERROR" if refusal.code == const.ERR_SYSTEM else "DATA_ERROR"
        error = {"type": status, "code": refusal.code, "description": refusal.description}
        errors = {"ingestionErrors": {"ingestionError": [error]}}
    else:
        status, errors = "SUCCESS", {}
    entry = _entry(index, feed.items[index], status)
    listing = state.listing(entry["sku"])
    if listing is not None:
        entry.update(wpid=state.meta_of(listing).wpid, itemid=state.meta_of(listing).item_id)
    return {**entry, **errors}


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
                feed.results = [_status(state, feed, i, events) for i in range(len(feed.items))]
            feed.status = "PROCESSED" if feed.error is None else "ERROR"
            feed.modified = state.at(feed.created_mono + full)
    dispatch(app, events)
