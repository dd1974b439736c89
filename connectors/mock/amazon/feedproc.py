"""``JSON_LISTINGS_FEED`` processing: IN_QUEUE → IN_PROGRESS → DONE | FATAL on the state's clock.

Half of ``feed_processing_s`` after createFeed the feed goes IN_PROGRESS and its messages are
applied; at ``feed_processing_s`` it ends DONE (or FATAL) and its report becomes readable.

Feeds advance lazily: every SP-API call (and the app's background ticker) moves due feeds on.
A document that fails the feed schema's envelope (header, 1..25 000 messages) is FATAL; each
message is then checked against the message schema and the patch rules on its own, so one bad
message is an issue in the processing report, not the end of the feed.
"""

from __future__ import annotations

import copy
import gzip
import json
from functools import cache
from typing import Any

from jsonschema import Draft7Validator

from connectors.mock.amazon.const import (
    ISSUE_INVALID_ATTRIBUTES,
    ISSUE_INVALID_VALUE,
    LISTINGS_FEED_TYPE,
)
from connectors.mock.amazon.items import INCLUDED_DATA, render_item
from connectors.mock.amazon.patching import apply_patches
from connectors.mock.amazon.state import AmazonMockState, Feed, FeedDocument
from connectors.mock.amazon.wire import WireError, json_schema_validator
from connectors.mock.kit.wire import first_error

FEED_SCHEMA = "listings-feed-schema-v2.json"
MESSAGE_SCHEMA = "listings-feed-message-schema-v2.json"
REPORT_SCHEMA = "listings-feed-processing-report-schema-v2.json"
_FINAL = frozenset({"DONE", "FATAL", "CANCELLED"})


@cache
def _envelope_validator() -> Draft7Validator:
    # The feed schema with messages reduced to "objects": messages are judged one by one.
    schema = copy.deepcopy(json_schema_validator(FEED_SCHEMA).schema)
    schema["properties"]["messages"]["items"] = {"type": "object"}
    return Draft7Validator(schema)


def advance_feeds(state: AmazonMockState) -> None:
    """Move every unfinished feed along its timeline; process those whose time has come."""
    if state.faults.hold_feeds:
        return
    now = state.clock.monotonic()
    half = state.feed_processing_s / 2
    for feed in state.feeds.values():
        if feed.status in _FINAL:
            continue
        if now - feed.created_mono >= half and feed.started is None:
            feed.status = "IN_PROGRESS"
            feed.started = state.at(feed.created_mono + half)
            # Amazon applies the messages while the feed is IN_PROGRESS; the outcome and the
            # report only show at the end. (A large feed's CPU work also stays off the end.)
            process_feed(state, feed)
        if now - feed.created_mono >= state.feed_processing_s and feed.outcome is not None:
            feed.ended = state.at(feed.created_mono + state.feed_processing_s)
            feed.status = feed.outcome
            feed.result_document_id = feed.report_document_id


def _store_report(state: AmazonMockState, feed: Feed, report: dict[str, Any]) -> None:
    data = json.dumps(report).encode()
    compression = None
    if state.gzip_reports:
        data, compression = gzip.compress(data, mtime=0), "GZIP"
    document_id = state.new_document_id()
    state.documents[document_id] = FeedDocument(
        document_id,
        "application/json",
        state.clock.monotonic(),
        data,
        compression,
    )
    feed.report_document_id = document_id


def _fatal(state: AmazonMockState, feed: Feed, message: str) -> None:
    report = {
        "header": {"sellerId": state.seller_id, "version": "2.0", "feedId": feed.feed_id},
        "issues": [{"code": ISSUE_INVALID_VALUE, "severity": "ERROR", "message": message}],
        "summary": {
            "errors": 1,
            "warnings": 0,
            "messagesProcessed": 0,
            "messagesAccepted": 0,
            "messagesInvalid": 0,
        },
    }
    _store_report(state, feed, report)
    feed.outcome = "FATAL"


def _parse(state: AmazonMockState, feed: Feed) -> dict[str, Any] | str:
    document = state.documents.get(feed.input_document_id)
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


def _message_issue(message: dict[str, Any], code: str, text: str) -> dict[str, Any]:
    found: dict[str, Any] = {"code": code, "severity": "ERROR", "message": text}
    if isinstance(message.get("messageId"), int) and message["messageId"] >= 1:
        found["messageId"] = message["messageId"]
    if isinstance(message.get("sku"), str) and message["sku"]:
        found["sku"] = message["sku"]
    return found


def _patches_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    if message["operationType"] == "PATCH":
        patches: list[dict[str, Any]] = message["patches"]
        return patches
    return [
        {"op": "replace", "path": f"/attributes/{name}", "value": value}
        for name, value in message["attributes"].items()
    ]


def _process_message(state: AmazonMockState, message: dict[str, Any]) -> list[dict[str, Any]]:
    """Apply one message; return its issues (empty if accepted)."""
    problem = first_error(json_schema_validator(MESSAGE_SCHEMA), message)
    if problem is not None:
        return [_message_issue(message, ISSUE_INVALID_VALUE, f"Invalid message: {problem}")]
    if state.faults.item_refused():
        text = "The attributes are invalid (refused by the fault plan)."
        return [_message_issue(message, ISSUE_INVALID_ATTRIBUTES, text)]
    sku = message["sku"]
    listing = state.listing(sku)
    if message["operationType"] == "DELETE":
        if listing is not None:
            del state.market.listings[sku]
            state.market.competitors.pop(sku, None)
            state.meta.pop(sku, None)
        return []
    if listing is None:
        state.orphan_patches[sku] += 1
        return []
    try:
        outcome = apply_patches(state, listing, _patches_of(message))
    except WireError as exc:
        return [_message_issue(message, exc.code, exc.details or exc.message)]
    issues = []
    for found in outcome.issues:
        entry = _message_issue(message, found["code"], found["message"])
        if found.get("attributeNames"):
            entry["attributeName"] = found["attributeNames"][0]
        issues.append(entry)
    return issues


def process_feed(state: AmazonMockState, feed: Feed) -> None:
    """Process one feed (apply its messages) and hold its outcome and report for the end."""
    if feed.feed_type != LISTINGS_FEED_TYPE:
        # Legacy XML/flat-file feeds stopped working on 2025-07-31: they end FATAL.
        _fatal(state, feed, f"Feed type {feed.feed_type} is no longer supported.")
        return
    parsed = _parse(state, feed)
    if isinstance(parsed, str):
        _fatal(state, feed, parsed)
        return
    header = parsed["header"]
    issues: list[dict[str, Any]] = []
    accepted = invalid = 0
    items = []
    wanted = set(header.get("report", {}).get("includedData", [])) & INCLUDED_DATA
    for message in parsed["messages"]:
        found = _process_message(state, message)
        issues.extend(found)
        if found:
            invalid += 1
        else:
            accepted += 1
        listing = state.listing(message.get("sku", "")) if wanted else None
        if listing is not None:
            items.append(render_item(state, listing, wanted))
    report_header = {"sellerId": state.seller_id, "version": "2.0", "feedId": feed.feed_id}
    if "report" in header:
        report_header["report"] = header["report"]
    report: dict[str, Any] = {
        "header": report_header,
        "issues": issues,
        "summary": {
            "errors": sum(1 for found in issues if found["severity"] == "ERROR"),
            "warnings": sum(1 for found in issues if found["severity"] == "WARNING"),
            "messagesProcessed": len(parsed["messages"]),
            "messagesAccepted": accepted,
            "messagesInvalid": invalid,
        },
    }
    if wanted:
        report["items"] = items
    _store_report(state, feed, report)
    feed.outcome = "DONE"
