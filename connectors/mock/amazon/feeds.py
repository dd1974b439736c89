"""Feeds API 2021-06-30, its presigned "S3" document URLs, and ``JSON_LISTINGS_FEED`` processing.

A feed goes IN_QUEUE → IN_PROGRESS (at half of ``feed_processing_s``: its messages are applied)
→ DONE | FATAL (its report readable), lazily on every SP-API call and tick. A document failing
the feed schema's envelope is FATAL; a bad message is an issue in the report, not the end.
"""

from __future__ import annotations

import copy
import gzip
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from jsonschema import Draft7Validator

from connectors.mock.amazon.listings import INCLUDED_DATA, apply_patches, issue, render_item
from connectors.mock.amazon.state import AmazonMockState, Feed, FeedDocument
from connectors.mock.amazon.wire import (
    ISSUE_INVALID_ATTRIBUTES,
    ISSUE_INVALID_VALUE,
    STATE_KEY,
    Call,
    WireError,
    invalid_input,
    json_schema_validator,
    sp_api,
)
from connectors.mock.kit.wire import first_error, iso

PRESIGNED_URL_TTL_S = 300.0  # feed document upload/download URLs live 5 minutes
_STAMP = "%Y%m%dT%H%M%SZ"
_FINAL = frozenset({"DONE", "FATAL", "CANCELLED"})


def _presigned(request: web.Request, state: AmazonMockState, kind: str, document_id: str) -> str:
    stamp = state.clock.now().astimezone(UTC).strftime(_STAMP)
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(int(PRESIGNED_URL_TTL_S)),
        "X-Amz-SignedHeaders": "content-type;host" if kind == "upload" else "host",
        "X-Amz-Signature": state.sign_url(kind, document_id, stamp),
    }
    # The address the connection reached, never ``Host``: python-amazon-sp-api cuts ``https://``
    # off its endpoint by length, so ``http://127.0.0.1:P`` goes out as ``Host: 27.0.0.1:P``.
    origin = state.public_url
    if not origin:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if not isinstance(sockname, tuple) or len(sockname) < 2:
            raise WireError(500, "InternalFailure", "The server's own address is unknown.")
        host, port = str(sockname[0]), int(sockname[1])
        origin = f"{request.scheme}://{f'[{host}]' if ':' in host else host}:{port}"
    return f"{origin.rstrip('/')}/_s3/{kind}/{document_id}?{urlencode(query)}"


def _store(
    state: AmazonMockState, content_type: str, data: bytes | None = None, zipped: str | None = None
) -> FeedDocument:
    """A new document in the mock's "S3", with an id like Amazon's ``amzn1.tortuga`` ones."""
    document = FeedDocument(
        f"amzn1.tortuga.4.na.{secrets.token_hex(16)}", content_type, data, zipped
    )
    state.documents[document.document_id] = document
    return document


def _s3_error(status: int, code: str, message: str) -> web.Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


async def s3(request: web.Request) -> web.Response:
    """``PUT`` a feed document's bytes to its presigned URL, or ``GET`` a result document's."""
    kind = "upload" if request.method == "PUT" else "download"
    state = request.app[STATE_KEY]
    document = state.documents.get(request.match_info["documentId"])
    stamp = request.query.get("X-Amz-Date", "")
    signature = request.query.get("X-Amz-Signature", "")
    if document is None:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    expected = state.sign_url(kind, document.document_id, stamp)
    if not hmac.compare_digest(signature, expected):
        return _s3_error(403, "SignatureDoesNotMatch", "The request signature does not match.")
    issued = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
    if state.clock.now() > issued + timedelta(seconds=PRESIGNED_URL_TTL_S):
        return _s3_error(403, "AccessDenied", "Request has expired")
    if kind == "download":
        if document.data is None:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        content_type = "application/octet-stream" if document.compression else document.content_type
        return web.Response(body=document.data, headers={"Content-Type": content_type})
    sent = request.headers.get("Content-Type", "")
    if sent.replace(" ", "").lower() != document.content_type.replace(" ", "").lower():
        # The content type is part of the signed request.
        return _s3_error(403, "SignatureDoesNotMatch", "Content-Type differs from the signed one.")
    document.data = await request.read()
    return web.Response(status=200, headers={"ETag": f'"{document.document_id[-32:]}"'})


@sp_api("createFeedDocument", ok=201)
def create_feed_document(call: Call) -> Any:
    """``POST /feeds/2021-06-30/documents`` → 201 ``{feedDocumentId, url}``."""
    document = _store(call.state, call.body["contentType"])
    url = _presigned(call.request, call.state, "upload", document.document_id)
    return {"feedDocumentId": document.document_id, "url": url}


@sp_api("createFeed", ok=202)
def create_feed(call: Call) -> Any:
    """``POST /feeds/2021-06-30/feeds`` → 202 ``{feedId}``; processing starts in the queue."""
    state, body = call.state, call.body
    unknown = [mid for mid in body["marketplaceIds"] if mid != state.marketplace_id]
    if unknown:
        raise invalid_input(f"Invalid marketplaceIds: {','.join(unknown)}.")
    if body["inputFeedDocumentId"] not in state.documents:
        raise invalid_input("Invalid inputFeedDocumentId.")
    feed_id = str(50001019655 + len(state.feeds))  # numeric, as Amazon's are
    feed = Feed(feed_id, body, state.clock.now(), state.clock.monotonic())
    state.feeds[feed.feed_id] = feed
    return {"feedId": feed.feed_id}


def _feed(call: Call) -> Feed:
    feed = call.state.feeds.get(call.path("feedId"))
    if feed is None:
        raise WireError(404, "NotFound", "The requested feed was not found.")
    return feed


@sp_api("getFeed")
def get_feed(call: Call) -> Any:
    """``GET /feeds/2021-06-30/feeds/{feedId}``."""
    feed = _feed(call)
    body: dict[str, Any] = {
        "feedId": feed.feed_id,
        "feedType": feed.spec["feedType"],
        "marketplaceIds": feed.spec["marketplaceIds"],
        "createdTime": iso(feed.created),
        "processingStatus": feed.status,
    }
    times = {"processingStartTime": feed.started, "processingEndTime": feed.ended}
    body |= {name: iso(moment) for name, moment in times.items() if moment is not None}
    return body | ({"resultFeedDocumentId": feed.report_document_id} if feed.ended else {})


@sp_api("cancelFeed")
def cancel_feed(call: Call) -> Any:
    """``DELETE /feeds/2021-06-30/feeds/{feedId}``: only a feed still IN_QUEUE can be cancelled."""
    feed = _feed(call)
    if feed.status != "IN_QUEUE":
        raise invalid_input(f"The feed is {feed.status} and can no longer be cancelled.")
    feed.status = "CANCELLED"
    return {}


@sp_api("getFeedDocument")
def get_feed_document(call: Call) -> Any:
    """``GET /feeds/2021-06-30/documents/{id}``: id, download URL, ``compressionAlgorithm``."""
    document = call.state.documents.get(call.path("feedDocumentId"))
    if document is None:
        raise WireError(404, "NotFound", "The requested feed document was not found.")
    url = _presigned(call.request, call.state, "download", document.document_id)
    body = {"feedDocumentId": document.document_id, "url": url}
    return body | ({"compressionAlgorithm": document.compression} if document.compression else {})


@cache
def _envelope_validator() -> Draft7Validator:
    # The feed schema with messages reduced to "objects": messages are judged one by one.
    schema = copy.deepcopy(json_schema_validator("listings-feed-schema-v2.json").schema)
    schema["properties"]["messages"]["items"] = {"type": "object"}
    return Draft7Validator(schema)


def advance_feeds(state: AmazonMockState) -> None:
    """Move every unfinished feed along its timeline; process those whose time has come."""
    if state.faults.hold_feeds:
        return
    now = state.clock.monotonic()
    half = timedelta(seconds=state.feed_processing_s / 2)
    for feed in state.feeds.values():
        if feed.status in _FINAL:
            continue
        if now - feed.created_mono >= half.total_seconds() and feed.started is None:
            feed.status, feed.started = "IN_PROGRESS", feed.created + half
            # Amazon applies the messages while the feed is IN_PROGRESS; the outcome and the
            # report only show at the end. (A large feed's CPU work also stays off the end.)
            _process(state, feed)
        if now - feed.created_mono >= state.feed_processing_s and feed.outcome is not None:
            feed.status, feed.ended = feed.outcome, feed.created + 2 * half


def _parse(state: AmazonMockState, feed: Feed) -> dict[str, Any] | str:
    """The feed's document, or why it is FATAL."""
    document = state.documents.get(feed.spec["inputFeedDocumentId"])
    if feed.spec["feedType"] != "JSON_LISTINGS_FEED":
        # Legacy XML/flat-file feeds stopped working on 2025-07-31: they end FATAL.
        return f"Feed type {feed.spec['feedType']} is no longer supported."
    if document is None or document.data is None:
        return "The feed document was never uploaded."
    try:
        parsed = json.loads(document.data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"The feed document is not valid JSON: {exc}."
    problem = first_error(_envelope_validator(), parsed)
    if problem is not None:
        return f"The feed document does not match the JSON_LISTINGS_FEED schema: {problem}"
    if parsed["header"]["sellerId"] != state.seller_id:
        return "The sellerId in the feed header does not match the submitting seller."
    assert isinstance(parsed, dict)
    return parsed


def _message_issues(state: AmazonMockState, message: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply one message; return its issues (empty if accepted)."""
    sku, number = message.get("sku"), message.get("messageId")
    where: dict[str, Any] = {"messageId": number} if isinstance(number, int) and number >= 1 else {}
    where |= {"sku": sku} if isinstance(sku, str) and sku else {}
    problem = first_error(json_schema_validator("listings-feed-message-schema-v2.json"), message)
    found: list[dict[str, Any]] = []
    if problem is not None:
        found = [issue(ISSUE_INVALID_VALUE, f"Invalid message: {problem}", None)]
    elif state.faults.item_refused():
        text = "The attributes are invalid (refused by the fault plan)."
        found = [issue(ISSUE_INVALID_ATTRIBUTES, text, None)]
    elif message["operationType"] == "DELETE":
        for table in (state.market.listings, state.market.competitors, state.meta):
            table.pop(message["sku"], None)
    elif (listing := state.listing(message["sku"])) is None:
        state.orphan_patches[message["sku"]] += 1
    else:
        patches = (
            message["patches"]
            if message["operationType"] == "PATCH"
            else [
                {"op": "replace", "path": f"/attributes/{name}", "value": value}
                for name, value in message["attributes"].items()
            ]
        )
        try:
            _, found = apply_patches(state, listing, patches)
        except WireError as exc:
            found = [issue(exc.code, exc.details or exc.message, None)]
    return [
        {"code": entry["code"], "severity": "ERROR", "message": entry["message"]}
        | where
        | ({"attributeName": entry["attributeNames"][0]} if entry.get("attributeNames") else {})
        for entry in found
    ]


def _process(state: AmazonMockState, feed: Feed) -> None:
    """Apply the feed's messages; hold its outcome and store its report for the end."""
    parsed = _parse(state, feed)
    header = {"sellerId": state.seller_id, "version": "2.0", "feedId": feed.feed_id}
    processed = invalid = 0
    if isinstance(parsed, str):
        issues = [{"code": ISSUE_INVALID_VALUE, "severity": "ERROR", "message": parsed}]
        report: dict[str, Any] = {"header": header, "issues": issues}
    else:
        wanted = set(parsed["header"].get("report", {}).get("includedData", [])) & INCLUDED_DATA
        issues, items, invalid = [], [], 0
        for message in parsed["messages"]:
            found = _message_issues(state, message)
            issues += found
            invalid += bool(found)
            listing = state.listing(message.get("sku", "")) if wanted else None
            if listing is not None:
                items.append(render_item(state, listing, wanted))
        if "report" in parsed["header"]:
            header["report"] = parsed["header"]["report"]
        report = {"header": header, "issues": issues} | ({"items": items} if wanted else {})
        processed = len(parsed["messages"])
    errors = sum(found["severity"] == "ERROR" for found in issues)
    report["summary"] = {"errors": errors, "warnings": len(issues) - errors}
    report["summary"] |= {"messagesProcessed": processed, "messagesInvalid": invalid}
    report["summary"]["messagesAccepted"] = processed - invalid
    data = json.dumps(report).encode()
    data, zipped = (gzip.compress(data, mtime=0), "GZIP") if state.gzip_reports else (data, None)
    feed.report_document_id = _store(state, "application/json", data, zipped).document_id
    feed.outcome = "FATAL" if isinstance(parsed, str) else "DONE"
