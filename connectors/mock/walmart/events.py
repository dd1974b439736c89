"""Webhook events Walmart pushes, their payload schemas, and the authenticated delivery.

Envelope (guide §2.4/§2.5): ``{"source": {"eventType", "eventTime", "eventId"}, "payload": {...}}``.
Auth per subscription ``authDetails.authMethod``: ``HMAC`` (``state.hmac_scheme`` "timestamped":
``WM_SEC.TIMESTAMP`` + base64 ``WM_SEC.SIGNATURE`` over "POST\\n<path?query>\\n<ts>\\n<hex
sha256(body)>", ``WM_SEC.KEY_ID`` = clientId if given; "body": ``<authHeaderName>`` = hex HMAC of
the body), ``BASIC_AUTH`` (``<authHeaderName>: Basic``), ``OAUTH`` (a client-credentials token
from ``authUrl``, then ``<authHeaderName>: Bearer``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from yarl import URL

from connectors.mock.kit.webhooks import hmac_sha256, post
from connectors.mock.kit.wire import iso
from connectors.mock.walmart.const import KEY_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from connectors.mock.walmart.state import (
    RUNTIME_KEY,
    STATE_KEY,
    SentEvent,
    Subscription,
    WalmartMockState,
)
from connectors.mock.walmart.wire import obj

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Event:
    """One event to push: its type, the SKU it is about, and its payload."""

    event_type: str
    sku: str
    payload: dict[str, Any]


def envelope(state: WalmartMockState, event: Event) -> dict[str, Any]:
    """The pushed document: ``source`` (type, time, id) and ``payload``."""
    source = {"eventType": event.event_type, "eventTime": iso(state.clock.now())}
    return {"source": {**source, "eventId": str(state.new_uuid())}, "payload": event.payload}


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def _oauth_token(session: aiohttp.ClientSession, auth: dict[str, str]) -> str | None:
    headers = {
        auth.get("authHeaderName") or "Authorization": _basic(
            auth.get("clientId", ""), auth.get("clientSecret", "")
        ),
        "Accept": "application/json; charset=UTF-8",
        "Content-Type": "application/x-www-form-urlencoded; charset=ISO-8859-1",
    }
    data = "grant_type=client_credentials"
    async with session.post(auth.get("authUrl", ""), data=data, headers=headers) as response:
        if response.status != 200:
            return None
        body = await response.json(content_type=None)
    token = body.get("access_token") if isinstance(body, dict) else None
    return str(token) if token and "expires_in" in body else None


async def auth_headers(
    state: WalmartMockState, session: aiohttp.ClientSession, sub: Subscription, body: bytes
) -> dict[str, str]:
    """The headers a delivery to ``sub`` carries (custom headers, then its auth method)."""
    headers = {"Content-Type": "application/json", **sub.headers}
    auth = sub.auth
    method, name = auth.get("authMethod", ""), auth.get("authHeaderName") or "Authorization"
    secret = auth.get("clientSecret", "")
    if method == "BASIC_AUTH":
        headers[name] = _basic(auth.get("userName", ""), auth.get("password", ""))
    elif method == "HMAC" and state.hmac_scheme == "body":
        headers[auth.get("authHeaderName") or SIGNATURE_HEADER] = hmac_sha256(secret, body).hex()
    elif method == "HMAC":
        # Walmart's security-and-authenticity page: "Unix epoch seconds when the event was created".
        stamp = str(int(state.clock.now().timestamp()))
        target = URL(sub.event_url)
        query = f"?{target.raw_query_string}" if target.raw_query_string else ""
        message = f"POST\n{target.raw_path}{query}\n{stamp}\n{hashlib.sha256(body).hexdigest()}"
        headers[TIMESTAMP_HEADER] = stamp
        headers[SIGNATURE_HEADER] = base64.b64encode(hmac_sha256(secret, message.encode())).decode()
        if auth.get("clientId"):
            headers[KEY_ID_HEADER] = auth["clientId"]
    elif method == "OAUTH":
        token = await _oauth_token(session, auth)
        if token is not None:
            headers[name] = f"Bearer {token}"
    return headers


async def deliver(
    state: WalmartMockState,
    session: aiohttp.ClientSession,
    sub: Subscription,
    event: Event,
    document: dict[str, Any],
) -> SentEvent:
    """POST one event to ``sub`` (up to ``webhook_attempts`` times until a 2xx); record it."""
    body = json.dumps(document).encode()
    status: int | None = None
    error: str | None = None
    headers: dict[str, str] = {}
    attempts = 0
    timeout = aiohttp.ClientTimeout(total=state.webhook_timeout_s)
    while attempts < max(1, state.webhook_attempts):
        if attempts:
            await state.sleep(state.webhook_retry_s)
        attempts += 1
        try:  # the subscription's OAUTH method fetches a token first: it can fail too
            headers = await auth_headers(state, session, sub, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, error = None, type(exc).__name__
        else:
            status, error = await post(session, sub.event_url, body, headers, timeout)
        if error is not None:
            log.warning("walmart_mock.push_failed", event_type=event.event_type, error=error)
        if status is not None and 200 <= status < 300:
            break
    event_id = str(document["source"]["eventId"])
    sent = SentEvent(
        event.event_type, event_id, event.sku, sub.event_url, status, attempts, body, headers
    )
    state.events.append(sent)
    return sent


def dispatch(app: web.Application, events: list[Event]) -> None:
    """Push each event to every ACTIVE subscription of its type, in the background."""
    state, runtime = app[STATE_KEY], app[RUNTIME_KEY]
    for event in events:
        subs = [
            sub
            for sub in state.subscriptions.values()
            if sub.event_type == event.event_type and sub.status == "ACTIVE"
        ]
        if not subs or runtime.session is None:
            continue
        document = envelope(state, event)  # one eventId per event, shared by its deliveries
        for sub in subs:
            runtime.spawn(deliver(state, runtime.session, sub, event, document))


def _typed(required: str, string: str = "", number: str = "", **more: Any) -> dict[str, Any]:
    """An object schema: ``required`` names, then properties by type (space-separated names)."""
    kinds = {"string": string, "number": number, "integer": more.pop("integer", "")}
    kinds["boolean"] = more.pop("boolean", "")
    typed = {name: {"type": kind} for kind, names in kinds.items() for name in names.split()}
    return obj(required, **typed, **more)


_OFFER = _typed(
    "sellerName sellerOfferPrice sellerShippingPrice",
    string="partnerId sellerName sellerShippingSpeed",
    number="sellerOfferPrice sellerShippingPrice",
    boolean="proSellerBadge isWFS",
)
_QUANTITY = _typed("unitOfMeasure measurementValue", "unitOfMeasure measurementValue")
_LINE = _typed(
    "lineNumber sku quantity status shipNodeType",
    "lineNumber sku productName status statusDate",
    quantity=_QUANTITY,
    shipNodeType={"enum": ["SellerFulfilled", "WFSFulfilled", "3PLFulfilled"]},
)


def _envelope_schema(payload: dict[str, Any]) -> dict[str, Any]:
    source = _typed("eventType eventTime eventId", "eventType eventTime eventId")
    schema = obj("source payload", source=source, payload=payload)
    return {"$schema": "http://json-schema.org/draft-07/schema#", **schema}


_STATUS = "partnerId sku publishStatus lifecycleStatus"
# Payload shapes from guide §2.4 (BUY_BOX_CHANGED) and §2.5 (OFFER_UNPUBLISHED); the published
# and order payloads mirror them and the Orders API order (shapes unconfirmed). notifications.json
# describes only the subscription API; tests hold every pushed body to these.
EVENT_SCHEMAS: dict[str, dict[str, Any]] = {
    "BUY_BOX_CHANGED": _envelope_schema(
        _typed(
            "partnerId itemInfo offer",
            "partnerId",
            itemInfo=_typed(
                "itemId sku totalNumberOfOffers",
                "itemId itemName sku itemCondition",
                integer="totalNumberOfOffers",
            ),
            offer=_typed(
                "currentOffer winningOffer offers priceDifference",
                number="priceDifference",
                currentOffer=_OFFER,
                winningOffer=_OFFER,
                offers={"type": "array", "maxItems": 5, "items": _OFFER},
            ),
        )
    ),
    "OFFER_UNPUBLISHED": _envelope_schema(
        _typed(
            _STATUS,
            "partnerId sku itemId lifecycleStatus referencePriceURL",
            "sellerOfferPrice sellerShippingPrice referencePrice",
            integer="totalNumberOfOffers",
            publishStatus={"const": "UNPUBLISHED"},
            statusChangeReasons={"type": "object", "additionalProperties": {"type": "string"}},
        )
    ),
    "OFFER_PUBLISHED": _envelope_schema(obj(_STATUS, publishStatus={"const": "PUBLISHED"})),
    "PO_CREATED": _envelope_schema(
        _typed(
            "partnerId purchaseOrderId customerOrderId orderDate orderLines",
            "partnerId purchaseOrderId customerOrderId orderDate estimatedDeliveryDate "
            "estimatedShipDate",
            orderLines={"type": "array", "minItems": 1, "items": _LINE},
        )
    ),
}
