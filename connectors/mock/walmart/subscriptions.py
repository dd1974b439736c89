"""Notifications API (notifications.json): event types, subscriptions, test notification."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from yarl import URL

from connectors.mock.walmart.const import AUTH_NEEDS, EVENT_TYPES
from connectors.mock.walmart.events import Event, deliver, envelope
from connectors.mock.walmart.state import RUNTIME_KEY, Subscription, WalmartMockState
from connectors.mock.walmart.wire import WireError, api, invalid, not_found, validated

SUBSCRIPTIONS = "/v3/webhooks/subscriptions"


def _bad(description: str, field: str = "") -> WireError:
    return invalid("NOTIFICATION", description, field)


async def _record(request: web.Request, schema: str, event_type: str = "") -> dict[str, Any]:
    """The body held to ``schema`` and to what Walmart knows of event types, URLs and auth."""
    record = await validated(request, "NOTIFICATION", "notifications.json", schema)
    if not isinstance(record, dict):
        raise _bad("The body must be a JSON object.")
    events = record.get("events") or [] if schema == "CreateSubscriptionRequest" else [record]
    for event in events:
        name = event_type or event.get("eventType")
        if event_type and event.get("eventType", name) != name:
            raise _bad("eventType of a subscription cannot change.", "eventType")
        known = EVENT_TYPES.get(str(name))
        if known is None:
            raise _bad(f"Unknown eventType {name}.", "eventType")
        for key, expected in zip(("resourceName", "eventVersion"), known, strict=False):
            if key in event and event[key] != expected:
                raise _bad(f"{key} of {name} is {expected}.", key)
        url = URL(str(event.get("eventUrl", "http://x")))
        if url.scheme not in ("http", "https") or not url.host:
            raise _bad("eventUrl must be an absolute http(s) URL.", "eventUrl")
        if event.get("status", "ACTIVE") not in ("ACTIVE", "INACTIVE"):
            raise _bad("status must be ACTIVE or INACTIVE.", "status")
        auth = event.get("authDetails") or {}
        if auth and auth.get("authMethod") not in AUTH_NEEDS:
            raise _bad("authMethod must be BASIC_AUTH, OAUTH or HMAC.", "authMethod")
        missing = [
            name for name in AUTH_NEEDS.get(str(auth.get("authMethod")), ()) if not auth.get(name)
        ]
        if missing:
            raise _bad(f"{auth['authMethod']} needs {', '.join(missing)}.", "authDetails")
    return record


def _strings(record: dict[str, Any], key: str) -> dict[str, str]:
    return {k: str(v) for k, v in (record.get(key) or {}).items()}


def _subscription(sub_id: str, record: dict[str, Any]) -> Subscription:
    resource, version, _ = EVENT_TYPES[record["eventType"]]
    auth, headers = _strings(record, "authDetails"), _strings(record, "headers")
    status = record.get("status", "ACTIVE")
    return Subscription(
        sub_id, record["eventType"], version, resource, record["eventUrl"], status, auth, headers
    )


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
        for name, (resource, version, text) in EVENT_TYPES.items()
    ]
    return web.json_response({"events": events})


@api("POST", SUBSCRIPTIONS, "createSubscription", "webhooks")
async def create(request: web.Request, state: WalmartMockState) -> web.Response:
    """``POST /v3/webhooks/subscriptions``: one or more events in one request."""
    records = (await _record(request, "CreateSubscriptionRequest")).get("events") or []
    if not records:
        raise _bad("events must hold at least one subscription.", "events")
    created = []
    for record in records:
        sub = _subscription(str(state.new_uuid()), record)
        state.subscriptions[sub.subscription_id] = sub
        created.append(_view(state, sub, full=False))
    return web.json_response({"events": created})


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
    body = await _record(request, "UpdateSubscriptionRequest", sub.event_type)
    sub.event_url = str(body.get("eventUrl", sub.event_url))
    sub.status = str(body.get("status", sub.status))
    if "authDetails" in body:
        sub.auth = _strings(body, "authDetails")
    if "headers" in body:
        sub.headers = _strings(body, "headers")
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
    body = await _record(request, "TestNotificationRequest")
    probe = _subscription("test", body)
    session = request.app[RUNTIME_KEY].session
    assert session is not None  # set for the app's whole life
    event = Event(body["eventType"], "", {"partnerId": state.partner_id, "test": True})
    sent = await deliver(state, session, probe, event, envelope(state, event))
    if sent.status is None or not 200 <= sent.status < 300:
        raise _bad(f"Eventurl validation failed (status {sent.status}).", "eventUrl")
    return web.json_response({"message": "Eventurl successfully validated"})
