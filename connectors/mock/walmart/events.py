"""Webhooks: the events Walmart pushes, their schemas and delivery, and the Notifications API.

Envelope (guide §2.4/§2.5): ``{"source": {"eventType", "eventTime", "eventId"}, "payload": {...}}``.
Auth per subscription ``authDetails.authMethod``: ``HMAC`` (``WM_SEC.TIMESTAMP`` + base64
``WM_SEC.SIGNATURE`` over "POST\\n<path?query>\\n<ts>\\n<hex sha256(body)>", ``WM_SEC.KEY_ID`` =
clientId if given), ``BASIC_AUTH`` (``<authHeaderName>: Basic``), ``OAUTH`` (a client-credentials
token from ``authUrl``, then ``<authHeaderName>: Bearer``).
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
from jsonschema import Draft4Validator
from yarl import URL

from connectors.mock.kit.webhooks import hmac_sha256, post
from connectors.mock.kit.wire import iso
from connectors.mock.walmart import const
from connectors.mock.walmart.state import (
    RUNTIME_KEY,
    STATE_KEY,
    SentEvent,
    Subscription,
    WalmartMockState,
)
from connectors.mock.walmart.wire import api, invalid, not_found, obj, validated

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


async def auth_headers(
    state: WalmartMockState, session: aiohttp.ClientSession, sub: Subscription, body: bytes
) -> dict[str, str]:
    """The headers a delivery to ``sub`` carries (custom headers, then its auth method)."""
    headers, auth = {"Content-Type": "application/json", **sub.headers}, sub.auth
    method, name = auth.get("authMethod"), auth.get("authHeaderName") or "Authorization"
    if method == "BASIC_AUTH":
        headers[name] = _basic(auth.get("userName", ""), auth.get("password", ""))
    elif method == "HMAC":
        # Walmart's security-and-authenticity page: "Unix epoch seconds when the event was created".
        stamp = str(int(state.clock.now().timestamp()))
        url = URL(sub.event_url)
        path = url.raw_path + (f"?{url.raw_query_string}" if url.raw_query_string else "")
        message = f"POST\n{path}\n{stamp}\n{hashlib.sha256(body).hexdigest()}".encode()
        signature = hmac_sha256(auth.get("clientSecret", ""), message)
        headers[const.TIMESTAMP_HEADER] = stamp
        headers[const.SIGNATURE_HEADER] = base64.b64encode(signature).decode()
        if auth.get("clientId"):
            headers[const.KEY_ID_HEADER] = auth["clientId"]
    elif method == "OAUTH":
        token_headers = {
            name: _basic(auth.get("clientId", ""), auth.get("clientSecret", "")),
            "Accept": "application/json; charset=UTF-8",
            "Content-Type": "application/x-www-form-urlencoded; charset=ISO-8859-1",
        }
        form = "grant_type=client_credentials"
        async with session.post(auth.get("authUrl", ""), data=form, headers=token_headers) as got:
            token = await got.json(content_type=None) if got.status == 200 else {}
        if isinstance(token, dict) and token.get("access_token") and "expires_in" in token:
            headers[name] = f"Bearer {token['access_token']}"
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
    timeout = aiohttp.ClientTimeout(total=state.webhook_timeout_s)
    for attempts in range(1, max(1, state.webhook_attempts) + 1):
        if attempts > 1:
            await state.sleep(state.webhook_retry_s)
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
    event_id, url = str(document["source"]["eventId"]), sub.event_url
    sent = SentEvent(event.event_type, event_id, event.sku, url, status, attempts, body, headers)
    state.events.append(sent)
    return sent


def dispatch(app: web.Application, events: list[Event]) -> None:
    """Push each event to every ACTIVE subscription of its type, in the background."""
    state, runtime = app[STATE_KEY], app[RUNTIME_KEY]
    for event in events:
        subs = [s for s in state.subscriptions.values() if s.event_type == event.event_type]
        subs = [sub for sub in subs if sub.status == "ACTIVE"]
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


# --- Notifications API (notifications.json) ------------------------------------------------

SUBSCRIPTIONS = "/v3/webhooks/subscriptions"
_NOTIFY = ("NOTIFICATION", "notifications.json")


def _rules(*types: str) -> dict[str, Any]:
    """What Walmart enforces on a subscription beyond notifications.json: a known event type
    (of ``types``, default any) with its resource and version, an absolute http(s) URL, a
    status, and the fields its auth method needs."""
    kinds = [
        obj(
            "", eventType={"enum": [name]}, resourceName={"enum": [res]}, eventVersion={"enum": [v]}
        )
        for name, (res, v, _) in const.EVENT_TYPES.items()
        if name in types or not types
    ]
    auth = [
        obj(
            " ".join(("authMethod", *needs)),
            authMethod={"enum": [method]},
            **{key: {"minLength": 1} for key in needs},
        )
        for method, needs in const.AUTH_NEEDS.items()
    ]
    url, status = {"pattern": "^https?://[^/?#]"}, {"enum": ["ACTIVE", "INACTIVE"]}
    methods = {"anyOf": [{"maxProperties": 0}, *auth]}
    return {"anyOf": kinds, **obj("", eventUrl=url, status=status, authDetails=methods)}


_CREATE = Draft4Validator(obj("events", events={"minItems": 1, "items": _rules()}))
_TEST = Draft4Validator(_rules())
_UPDATE = {name: Draft4Validator(_rules(name)) for name in const.EVENT_TYPES}


def _view(state: WalmartMockState, sub: Subscription, *, full: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "eventType": sub.event_type,
        "subscriptionId": sub.subscription_id,
        "partnerId": state.partner_id,
        "eventVersion": sub.event_version,
        "resourceName": sub.resource_name,
        "status": sub.status,
    }
    if full:
        view.update(eventUrl=sub.event_url, headers=dict(sub.headers))
        if sub.auth:
            view["authDetails"] = dict(sub.auth)
    return view


@api("GET", "/v3/webhooks/eventTypes", "getEventTypes", "webhooks")
async def event_types(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/webhooks/eventTypes``."""
    events = [
        {"resourceName": resource, "eventType": name, "eventVersion": version, "description": text}
        for name, (resource, version, text) in const.EVENT_TYPES.items()
    ]
    return web.json_response({"events": events})


@api("POST", SUBSCRIPTIONS, "createSubscription", "webhooks")
async def create(request: web.Request, state: WalmartMockState) -> web.Response:
    """``POST /v3/webhooks/subscriptions``: one or more events in one request."""
    body = await validated(request, *_NOTIFY, "CreateSubscriptionRequest", _CREATE)
    created = state.subscribe(body["events"])
    return web.json_response({"events": [_view(state, sub, full=False) for sub in created]})


@api("GET", SUBSCRIPTIONS, "getAllSubscriptions", "webhooks")
async def list_subscriptions(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/webhooks/subscriptions[?subscriptionId=&eventType=&resourceName=&status=]``."""
    views = [_view(state, sub, full=True) for sub in state.subscriptions.values()]
    for param in ("subscriptionId", "eventType", "resourceName", "status"):
        if param in request.query:
            views = [view for view in views if view[param] == request.query[param]]
    return web.json_response({"events": views})


def _find(request: web.Request, state: WalmartMockState) -> Subscription:
    sub = state.subscriptions.get(request.match_info["subscriptionId"])
    if sub is None:
        raise not_found("NOTIFICATION", "Subscription not found.", "id")
    return sub


@api("PATCH", SUBSCRIPTIONS + "/{subscriptionId}", "updateSubscription", "webhooks")
async def update(request: web.Request, state: WalmartMockState) -> web.Response:
    """``PATCH /v3/webhooks/subscriptions/{id}``: URL, auth, headers, status, version."""
    sub = _find(request, state)
    body = await validated(request, *_NOTIFY, "UpdateSubscriptionRequest", _UPDATE[sub.event_type])
    record = {**_view(state, sub, full=True), **body}  # what the body leaves out stays
    sub = state.subscriptions[sub.subscription_id] = Subscription.of(sub.subscription_id, record)
    return web.json_response(_view(state, sub, full=True))


@api("DELETE", SUBSCRIPTIONS + "/{subscriptionId}", "deleteSubscription", "webhooks")
async def delete(request: web.Request, state: WalmartMockState) -> web.Response:
    """``DELETE /v3/webhooks/subscriptions/{id}``."""
    sub = state.subscriptions.pop(_find(request, state).subscription_id)
    message = "Successfully deleted subscription"
    return web.json_response({"subscriptionId": sub.subscription_id, "message": message})


@api("POST", "/v3/webhooks/test", "testNotification", "webhooks")
async def test_notification(request: web.Request, state: WalmartMockState) -> web.Response:
    """``POST /v3/webhooks/test``: push a sample event to the URL with the given auth."""
    body = await validated(request, *_NOTIFY, "TestNotificationRequest", _TEST)
    probe = Subscription.of("test", body)
    session = request.app[RUNTIME_KEY].session
    assert session is not None  # set for the app's whole life
    event = Event(body["eventType"], "", {"partnerId": state.partner_id, "test": True})
    sent = await deliver(state, session, probe, event, envelope(state, event))
    if sent.status is None or not 200 <= sent.status < 300:
        failed = f"Eventurl validation failed (status {sent.status})."
        raise invalid("NOTIFICATION", failed, "eventUrl")
    return web.json_response({"message": "Eventurl successfully validated"})
