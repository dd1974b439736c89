"""Feeds: ``POST /v3/feeds?feedType=``, ``GET /v3/feeds``, ``GET /v3/feeds/{feedId}``."""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from connectors.mock.walmart.const import (
    ERR_INVALID_DATA,
    FEED_CATEGORIES,
    FEED_CONTENT_CODE,
    FEED_NOT_FOUND_CODE,
    MAX_FEED_BYTES,
    MAX_FEED_DETAIL_LIMIT,
)
from connectors.mock.walmart.gate import walmart
from connectors.mock.walmart.processing import parse_feed
from connectors.mock.walmart.state import Feed, WalmartMockState
from connectors.mock.walmart.wire import WireError, epoch_ms, invalid, json_answer


def _feed_bucket(request: web.Request) -> str | None:
    category = FEED_CATEGORIES.get(request.query.get("feedType", ""))
    return f"feed:{category}" if category else None


def _too_large() -> WireError:
    return WireError(
        413, FEED_CONTENT_CODE, f"The feed file exceeds {MAX_FEED_BYTES} bytes.", field="file"
    )


async def _feed_file(request: web.Request, state: WalmartMockState) -> bytes:
    if request.content_type == "application/json" and state.accept_json_feed_body:
        raw = await request.read()
        if len(raw) > MAX_FEED_BYTES:
            raise _too_large()
        return raw
    if request.content_type != "multipart/form-data":
        raise WireError(
            415,
            FEED_CONTENT_CODE,
            "Feeds are uploaded as multipart/form-data with the file in part 'file'.",
            field="Content-Type",
        )
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == "file":
            data = bytearray()
            while chunk := await part.read_chunk():
                data.extend(chunk)
                if len(data) > MAX_FEED_BYTES:
                    raise _too_large()
            return bytes(data)
    raise invalid(FEED_CONTENT_CODE, "The multipart body has no part named 'file'.", "file")


@walmart("submitFeed", bucket_of=_feed_bucket)
async def submit_feed(request: web.Request, state: WalmartMockState) -> web.Response:
    """Accept a price / inventory / MP_INVENTORY JSON feed; answer its ``feedId``."""
    feed_type = request.query.get("feedType", "")
    if feed_type not in FEED_CATEGORIES:
        allowed = ", ".join(FEED_CATEGORIES)
        raise invalid(FEED_CONTENT_CODE, f"feedType must be one of {allowed}.", "feedType")
    node = request.query.get("shipNode")
    if node is not None and node != state.ship_node:
        raise invalid(FEED_CONTENT_CODE, f"Ship node {node} is not yours.", "shipNode")
    raw = await _feed_file(request, state)
    error: str | None = None
    try:
        items = parse_feed(feed_type, raw)
    except WireError as exc:
        if not state.bad_feed_file_as_error_status or exc.status != 400:
            raise
        items, error = [], exc.description
    feed_id = state.new_feed_id()
    mono = state.clock.monotonic()
    feed = Feed(feed_id, feed_type, state.clock.now(), mono, items, ship_node=node)
    feed.error = error
    feed.modified = feed.created
    state.feeds[feed_id] = feed
    return json_answer({"feedId": feed_id, "additionalAttributes": None, "errors": None})


def _counts(feed: Feed) -> dict[str, int]:
    received = len(feed.items)
    if feed.status not in ("PROCESSED", "ERROR"):
        return {
            "itemsReceived": received,
            "itemsSucceeded": 0,
            "itemsFailed": 0,
            "itemsProcessing": received,
        }
    ok = sum(1 for entry in feed.results if entry["ingestionStatus"] == "SUCCESS")
    return {
        "itemsReceived": received,
        "itemsSucceeded": ok,
        "itemsFailed": received - ok,
        "itemsProcessing": 0,
    }


def _record(state: WalmartMockState, feed: Feed) -> dict[str, Any]:
    data_errors = sum(1 for e in feed.results if e["ingestionStatus"] == "DATA_ERROR")
    system_errors = sum(1 for e in feed.results if e["ingestionStatus"] == "SYSTEM_ERROR")
    modified = feed.modified or feed.created
    return {
        "feedId": feed.feed_id,
        "feedSource": "MARKETPLACE_PARTNER",
        "feedType": feed.feed_type,
        "partnerId": state.partner_id,
        **_counts(feed),
        "feedStatus": feed.status,
        "feedDate": epoch_ms(feed.created.timestamp()),
        "modifiedDtm": epoch_ms(modified.timestamp()),
        "itemDataErrorCount": data_errors,
        "itemSystemErrorCount": system_errors,
        "itemTimeoutErrorCount": 0,
    }


def _int_param(request: web.Request, name: str, default: int, high: int) -> int:
    raw = request.query.get(name, str(default))
    if not raw.isdigit() or int(raw) > high or (name == "limit" and int(raw) < 1):
        raise invalid(FEED_CONTENT_CODE, f"{name} must be an integer in range (max {high}).", name)
    return int(raw)


@walmart("getAllFeedStatuses")
async def list_feeds(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/feeds[?feedId=&offset=&limit=]``: newest first."""
    offset = _int_param(request, "offset", 0, 10**9)
    limit = _int_param(request, "limit", 50, MAX_FEED_DETAIL_LIMIT)
    wanted = request.query.get("feedId")
    feeds = [f for f in state.feeds.values() if not wanted or f.feed_id == wanted]
    feeds.sort(key=lambda feed: feed.created_mono, reverse=True)
    body = {
        "totalResults": len(feeds),
        "offset": offset,
        "limit": limit,
        "results": {"feed": [_record(state, feed) for feed in feeds[offset : offset + limit]]},
    }
    return json_answer(body)


@walmart("getFeedItemStatus")
async def feed_status(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/feeds/{feedId}[?includeDetails=true&offset=&limit=]``."""
    feed = state.feeds.get(request.match_info["feedId"])
    if feed is None:
        raise WireError(404, FEED_NOT_FOUND_CODE, "Feed not found.", field="feedId")
    offset = _int_param(request, "offset", 0, 10**9)
    limit = _int_param(request, "limit", MAX_FEED_DETAIL_LIMIT, MAX_FEED_DETAIL_LIMIT)
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
        if feed.status in ("PROCESSED", "ERROR"):
            entries = feed.results[offset : offset + limit]
        else:
            entries = [
                {"martId": 0, "sku": _sku(item), "index": index, "ingestionStatus": "INPROGRESS"}
                for index, item in enumerate(feed.items)
            ][offset : offset + limit]
        body["itemDetails"] = {"itemIngestionStatus": entries}
    return json_answer(body)


def _sku(item: Any) -> str:
    sku = item.get("sku") if isinstance(item, dict) else None
    return sku if isinstance(sku, str) else ""


def add_routes(app: web.Application) -> None:
    """Register the feed routes."""
    app.router.add_post("/v3/feeds", submit_feed)
    app.router.add_get("/v3/feeds", list_feeds)
    app.router.add_get("/v3/feeds/{feedId}", feed_status)
