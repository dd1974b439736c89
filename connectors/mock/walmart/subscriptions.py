"""Notifications API (notifications.json): event types, subscriptions, test notification."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from yarl import URL

from connectors.mock.walmart.const import (
    AUTH_METHODS,
    EVENT_TYPES,
    WEBHOOK_CONTENT_CODE,
    WEBHOOK_NOT_FOUND_CODE,
)
from connectors.mock.walmart.events import Event, deliver, envelope
from connectors.mock.walmart.gate import walmart
from connectors.mock.walmart.keys import RUNTIME_KEY
from connectors.mock.walmart.state import Subscription, WalmartMockState
from connectors.mock.walmart.wire import (
    WireError,
    first_error,
    invalid,
    json_answer,
    json_body,
    spec_validator,
)

_AUTH_NEEDS = {
    "BASIC_AUTH": ("userName", "password"),
    "HMAC": ("clientSecret",),
    "OAUTH": ("authUrl", "clientId", "clientSecret"),
}


def _bad(description: str, field: str = "") -> WireError:
    return invalid(WEBHOOK_CONTENT_CODE, description, field)


def _check_event(record: dict[str, Any]) -> None:
    known = EVENT_TYPES.get(str(record.get("eventType")))
    if known is None:
        raise _bad(f"Unknown eventType {record.get('eventType')}.", "eventType")
    resource, version, _ = known
    if "resourceName" in record and record["resourceName"] != resource:
        raise _bad(f"resourceName of {record['eventType']} is {resource}.", "resourceName")
    if "eventVersion" in record and record["eventVersion"] != version:
        raise _bad(f"eventVersion of {record['eventType']} is {version}.", "eventVersion")


def _check_common(record: dict[str, Any]) -> None:
    if "eventUrl" in record:
        url = URL(str(record["eventUrl"]))
        if url.scheme not in ("http", "https") or not url.host:
            raise _bad("eventUrl must be an absolute http(s) URL.", "eventUrl")
    if "status" in record and record["status"] not in ("ACTIVE", "INACTIVE"):
        raise _bad("status must be ACTIVE or INACTIVE.", "status")
    auth = record.get("authDetails")
    if auth:
        method = auth.get("authMethod")
        if method not in AUTH_METHODS:
            raise _bad("authMethod must be BASIC_AUTH, OAUTH or HMAC.", "authMethod")
        missing = [name for name in _AUTH_NEEDS[method] if not auth.get(name)]
        if missing:
            raise _bad(f"{method} needs {', '.join(missing)}.", "authDetails")


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
        view["eventUrl"] = sub.event_url
        view["headers"] = dict(sub.headers)
        if sub.auth:
            view["authDetails"] = dict(sub.auth)
    return view


async def _validated(request: web.Request, schema: str) -> dict[str, Any]:
    body = await json_body(request, WEBHOOK_CONTENT_CODE)
    problem = first_error(spec_validator("notifications.json", schema), body)
    if problem is not None:
        raise _bad(f"Invalid request: {problem}")
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object.")
    return body


@walmart("getEventTypes", bucket_of=lambda _: "webhooks")
async def event_types(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/webhooks/eventTypes``."""
    events = [
        {"resourceName": resource, "eventType": name, "eventVersion": version, "description": text}
        for name, (resource, version, text) in EVENT_TYPES.items()
    ]
    return json_answer({"events": events})


@walmart("createSubscription", bucket_of=lambda _: "webhooks")
async def create(request: web.Request, state: WalmartMockState) -> web.Response:
    """``POST /v3/webhooks/subscriptions``: one or more events in one request."""
    body = await _validated(request, "CreateSubscriptionRequest")
    records = body.get("events") or []
    if not records:
        raise _bad("events must hold at least one subscription.", "events")
    for record in records:
        _check_event(record)
        _check_common(record)
    created = []
    for record in records:
        sub_id = str(uuid.UUID(int=state.rng.getrandbits(128)))
        resource, version, _ = EVENT_TYPES[record["eventType"]]
        sub = Subscription(
            sub_id,
            record["eventType"],
            version,
            resource,
            record["eventUrl"],
            record["status"],
            {k: str(v) for k, v in (record.get("authDetails") or {}).items()},
            {k: str(v) for k, v in (record.get("headers") or {}).items()},
        )
        state.subscriptions[sub_id] = sub
        created.append(_view(state, sub, full=False))
    return json_answer({"events": created})


@walmart("getAllSubscriptions", bucket_of=lambda _: "webhooks")
async def list_subscriptions(request: web.Request, state: WalmartMockState) -> web.Response:
    """``GET /v3/webhooks/subscriptions[?subscriptionId=&eventType=&resourceName=&status=]``."""
    filters = {
        "subscriptionId": "subscription_id",
        "eventType": "event_type",
        "resourceName": "resource_name",
        "status": "status",
    }
    subs = list(state.subscriptions.values())
    for param, attr in filters.items():
        if param in request.query:
            subs = [sub for sub in subs if getattr(sub, attr) == request.query[param]]
    return json_answer({"events": [_view(state, sub, full=True) for sub in subs]})


def _subscription(request: web.Request, state: WalmartMockState) -> Subscription:
    sub = state.subscriptions.get(request.match_info["subscriptionId"])
    if sub is None:
        raise WireError(404, WEBHOOK_NOT_FOUND_CODE, "Subscription not found.", field="id")
    return sub


@walmart("updateSubscription", bucket_of=lambda _: "webhooks")
async def update(request: web.Request, state: WalmartMockState) -> web.Response:
    """``PATCH /v3/webhooks/subscriptions/{id}``: URL, auth, headers, status, version."""
    sub = _subscription(request, state)
    body = await _validated(request, "UpdateSubscriptionRequest")
    if "eventType" in body and body["eventType"] != sub.event_type:
        raise _bad("eventType of a subscription cannot change.", "eventType")
    _check_event({**body, "eventType": sub.event_type})
    _check_common(body)
    if "eventUrl" in body:
        sub.event_url = str(body["eventUrl"])
    if "status" in body:
        sub.status = str(body["status"])
    if "authDetails" in body:
        sub.auth = {k: str(v) for k, v in (body["authDetails"] or {}).items()}
    if "headers" in body:
        sub.headers = {k: str(v) for k, v in (body["headers"] or {}).items()}
    return json_answer(_view(state, sub, full=True))


@walmart("deleteSubscription", bucket_of=lambda _: "webhooks")
async def delete(request: web.Request, state: WalmartMockState) -> web.Response:
    """``DELETE /v3/webhooks/subscriptions/{id}``."""
    sub = _subscription(request, state)
    del state.subscriptions[sub.subscription_id]
    return json_answer(
        {"subscriptionId": sub.subscription_id, "message": "Successfully deleted subscription"}
    )


@walmart("testNotification", bucket_of=lambda _: "webhooks")
async def test_notification(request: web.Request, state: WalmartMockState) -> web.Response:
    """``POST /v3/webhooks/test``: push a sample event to the URL with the given auth."""
    body = await _validated(request, "TestNotificationRequest")
    _check_event(body)
    _check_common(body)
    probe = Subscription(
        "test",
        body["eventType"],
        body["eventVersion"],
        body["resourceName"],
        body["eventUrl"],
        "ACTIVE",
        {k: str(v) for k, v in (body.get("authDetails") or {}).items()},
        {k: str(v) for k, v in (body.get("headers") or {}).items()},
    )
    session = request.app[RUNTIME_KEY].session
    assert session is not None  # set for the app's whole life
    event = Event(body["eventType"], "", {"partnerId": state.partner_id, "test": True})
    sent = await deliver(state, session, probe, event, envelope(state, event))
    if sent.status is None or not 200 <= sent.status < 300:
        raise _bad(f"Eventurl validation failed (status {sent.status}).", "eventUrl")
    return json_answer({"message": "Eventurl successfully validated"})


def add_routes(app: web.Application) -> None:
    """Register the notifications routes."""
    app.router.add_get("/v3/webhooks/eventTypes", event_types)
    app.router.add_post("/v3/webhooks/subscriptions", create)
    app.router.add_get("/v3/webhooks/subscriptions", list_subscriptions)
    app.router.add_patch("/v3/webhooks/subscriptions/{subscriptionId}", update)
    app.router.add_delete("/v3/webhooks/subscriptions/{subscriptionId}", delete)
    app.router.add_post("/v3/webhooks/test", test_notification)
