"""Feeds API 2021-06-30 and the presigned "S3" URLs its documents travel through.

``POST /feeds/2021-06-30/documents`` answers 201 with an upload URL served by this mock
(``/_s3/upload/{id}?X-Amz-...``): a PUT there needs no SP-API token, only the URL's signature,
before it expires (5 minutes) and with the ``Content-Type`` the document was created with.

Presigned URLs name this server by the address the request's connection reached (or
``state.public_url`` when one is configured), never by the request's ``Host`` header: a client
may send a mangled one (python-amazon-sp-api cuts ``https://`` off its endpoint by length, so an
``http://127.0.0.1:P`` endpoint goes out as ``Host: 27.0.0.1:P``), and the URL must not lead off
this machine.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from connectors.mock.amazon.auth import STATE_KEY, ok, sp_api
from connectors.mock.amazon.const import PRESIGNED_URL_TTL_S
from connectors.mock.amazon.state import AmazonMockState, Feed, FeedDocument
from connectors.mock.amazon.wire import WireError, invalid_input, json_body, openapi_validator
from connectors.mock.kit.wire import first_error, iso

SPEC = "feeds_2021-06-30.json"
_STAMP = "%Y%m%dT%H%M%SZ"


def _presigned(request: web.Request, state: AmazonMockState, kind: str, document_id: str) -> str:
    stamp = state.clock.now().astimezone(UTC).strftime(_STAMP)
    query = {
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": str(int(PRESIGNED_URL_TTL_S)),
        "X-Amz-SignedHeaders": "content-type;host" if kind == "upload" else "host",
        "X-Amz-Signature": state.sign_url(kind, document_id, stamp),
    }
    return f"{_origin(request, state)}/_s3/{kind}/{document_id}?{urlencode(query)}"


def _origin(request: web.Request, state: AmazonMockState) -> str:
    """``state.public_url``, else the scheme, address and port this connection was accepted on."""
    if state.public_url:
        return state.public_url.rstrip("/")
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        raise WireError(500, "InternalFailure", "The server's own address is unknown.")
    host, port = str(sockname[0]), int(sockname[1])
    return f"{request.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def _s3_error(status: int, code: str, message: str) -> web.Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def _check_presigned(
    request: web.Request, state: AmazonMockState, kind: str
) -> FeedDocument | web.Response:
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
    return document


def _normal(content_type: str) -> str:
    return content_type.replace(" ", "").lower()


async def s3_upload(request: web.Request) -> web.Response:
    """``PUT`` a feed document's bytes to its presigned URL."""
    state = request.app[STATE_KEY]
    found = _check_presigned(request, state, "upload")
    if isinstance(found, web.Response):
        return found
    sent = request.headers.get("Content-Type", "")
    if _normal(sent) != _normal(found.content_type):
        # The content type is part of the signed request.
        return _s3_error(403, "SignatureDoesNotMatch", "Content-Type differs from the signed one.")
    found.data = await request.read()
    return web.Response(status=200, headers={"ETag": f'"{found.document_id[-32:]}"'})


async def s3_download(request: web.Request) -> web.Response:
    """``GET`` a (result) document's bytes from its presigned URL."""
    state = request.app[STATE_KEY]
    found = _check_presigned(request, state, "download")
    if isinstance(found, web.Response):
        return found
    if found.data is None:
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    content_type = "application/octet-stream" if found.compression else found.content_type
    return web.Response(body=found.data, headers={"Content-Type": content_type})


async def _validated(request: web.Request, definition: str) -> dict[str, Any]:
    body = await json_body(request)
    problem = first_error(openapi_validator(SPEC, definition), body)
    if problem is not None:
        raise invalid_input(problem)
    assert isinstance(body, dict)
    return body


@sp_api("createFeedDocument")
async def create_feed_document(request: web.Request, state: AmazonMockState) -> web.Response:
    """``POST /feeds/2021-06-30/documents`` → 201 ``{feedDocumentId, url}``."""
    body = await _validated(request, "CreateFeedDocumentSpecification")
    document_id = state.new_document_id()
    state.documents[document_id] = FeedDocument(
        document_id, body["contentType"], state.clock.monotonic()
    )
    url = _presigned(request, state, "upload", document_id)
    return ok({"feedDocumentId": document_id, "url": url}, state, "createFeedDocument", 201)


@sp_api("createFeed")
async def create_feed(request: web.Request, state: AmazonMockState) -> web.Response:
    """``POST /feeds/2021-06-30/feeds`` → 202 ``{feedId}``; processing starts in the queue."""
    body = await _validated(request, "CreateFeedSpecification")
    unknown = [mid for mid in body["marketplaceIds"] if mid != state.marketplace_id]
    if unknown:
        raise invalid_input(f"Invalid marketplaceIds: {','.join(unknown)}.")
    if body["inputFeedDocumentId"] not in state.documents:
        raise invalid_input("Invalid inputFeedDocumentId.")
    feed = Feed(
        feed_id=state.new_feed_id(),
        feed_type=body["feedType"],
        marketplace_ids=list(body["marketplaceIds"]),
        input_document_id=body["inputFeedDocumentId"],
        created=state.clock.now(),
        created_mono=state.clock.monotonic(),
    )
    state.feeds[feed.feed_id] = feed
    return ok({"feedId": feed.feed_id}, state, "createFeed", 202)


def _feed_body(feed: Feed) -> dict[str, Any]:
    body: dict[str, Any] = {
        "feedId": feed.feed_id,
        "feedType": feed.feed_type,
        "marketplaceIds": feed.marketplace_ids,
        "createdTime": iso(feed.created),
        "processingStatus": feed.status,
    }
    if feed.started is not None:
        body["processingStartTime"] = iso(feed.started)
    if feed.ended is not None:
        body["processingEndTime"] = iso(feed.ended)
    if feed.result_document_id is not None:
        body["resultFeedDocumentId"] = feed.result_document_id
    return body


def _feed(state: AmazonMockState, request: web.Request) -> Feed:
    feed = state.feeds.get(request.match_info["feedId"])
    if feed is None:
        raise WireError(404, "NotFound", "The requested feed was not found.")
    return feed


@sp_api("getFeed")
async def get_feed(request: web.Request, state: AmazonMockState) -> web.Response:
    """``GET /feeds/2021-06-30/feeds/{feedId}``."""
    return ok(_feed_body(_feed(state, request)), state, "getFeed")


@sp_api("cancelFeed")
async def cancel_feed(request: web.Request, state: AmazonMockState) -> web.Response:
    """``DELETE /feeds/2021-06-30/feeds/{feedId}``: only a feed still IN_QUEUE can be cancelled."""
    feed = _feed(state, request)
    if feed.status != "IN_QUEUE":
        raise invalid_input(f"The feed is {feed.status} and can no longer be cancelled.")
    feed.status = "CANCELLED"
    return ok({}, state, "cancelFeed")


@sp_api("getFeedDocument")
async def get_feed_document(request: web.Request, state: AmazonMockState) -> web.Response:
    """``GET /feeds/2021-06-30/documents/{id}``: id, download URL, ``compressionAlgorithm``."""
    document = state.documents.get(request.match_info["documentId"])
    if document is None:
        raise WireError(404, "NotFound", "The requested feed document was not found.")
    body: dict[str, Any] = {
        "feedDocumentId": document.document_id,
        "url": _presigned(request, state, "download", document.document_id),
    }
    if document.compression:
        body["compressionAlgorithm"] = document.compression
    return ok(body, state, "getFeedDocument")


def add_routes(app: web.Application) -> None:
    """Register the Feeds and presigned-URL routes."""
    app.router.add_post("/feeds/2021-06-30/documents", create_feed_document)
    app.router.add_get("/feeds/2021-06-30/documents/{documentId}", get_feed_document)
    app.router.add_post("/feeds/2021-06-30/feeds", create_feed)
    app.router.add_get("/feeds/2021-06-30/feeds/{feedId}", get_feed)
    app.router.add_delete("/feeds/2021-06-30/feeds/{feedId}", cancel_feed)
    app.router.add_put("/_s3/upload/{documentId}", s3_upload)
    app.router.add_get("/_s3/download/{documentId}", s3_download)
