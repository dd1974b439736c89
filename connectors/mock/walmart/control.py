"""Control routes for tests and the demo, under ``/_mock/`` (no Walmart auth, never on Walmart)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from connectors.mock.kit.control import Handler, add_control_routes, bad, json_object
from connectors.mock.market import MockListing
from connectors.mock.walmart.events import Event, dispatch
from connectors.mock.walmart.offers import (
    buy_box_changed,
    competitors_move,
    is_live,
    place_order,
    set_reference,
)
from connectors.mock.walmart.purchases import cancel_line
from connectors.mock.walmart.state import RUNTIME_KEY, STATE_KEY, WalmartMockState
from connectors.mock.walmart.wire import WireError

Body = dict[str, Any]
Answer = tuple[list[Event], Any]  # the events to push, the JSON answer
Action = Callable[[web.Request, WalmartMockState, Body], Answer]


def _listing(state: WalmartMockState, body: Body) -> MockListing:
    listing = state.listing(str(body.get("sku", "")))
    if listing is None:
        raise WireError(404, "", "no such listing")
    return listing


def _control(action: Action) -> Handler:
    """A ``POST /_mock/...`` route: JSON object in, the action's events pushed and settled."""

    async def handle(request: web.Request) -> web.Response:
        body = await json_object(request)
        if body is None:
            return bad("expected a JSON object")
        try:
            events, answer = action(request, request.app[STATE_KEY], body)
        except WireError as exc:
            return bad(exc.description, exc.status)
        dispatch(request.app, events)
        await request.app[RUNTIME_KEY].settle()
        return web.json_response(answer)

    return handle


def _notify(_: web.Request, state: WalmartMockState, body: Body) -> Answer:
    """``POST /_mock/notify {sku, type?}``: competitors move; BUY_BOX_CHANGED is pushed."""
    if body.get("type", "BUY_BOX_CHANGED") != "BUY_BOX_CHANGED":
        raise WireError(400, "", "type must be BUY_BOX_CHANGED (status events follow price writes)")
    listing = _listing(state, body)
    competitors_move(state, listing)
    event = buy_box_changed(state, listing)
    return ([event] if event else []), {"sent": event is not None}


def _reference(_: web.Request, state: WalmartMockState, body: Body) -> Answer:
    """``POST /_mock/reference {sku, referencePrice}``: Walmart revises the reasonable price
    (the offer is unpublished or republished as the new band says)."""
    listing = _listing(state, body)
    raw = body.get("referencePrice")
    try:
        value = Decimal(str(raw)) if isinstance(raw, int | float | str) else None
    except InvalidOperation:
        value = None
    if value is None or isinstance(raw, bool) or not value.is_finite() or value <= 0:
        raise WireError(400, "", "referencePrice must be a positive number")
    events = set_reference(state, listing, value)
    return events, {"sent": [e.event_type for e in events]}


def _order(_: web.Request, state: WalmartMockState, body: Body) -> Answer:
    """``POST /_mock/orders {sku, quantity}``: a shopper buys; stock drops; PO_CREATED."""
    listing = _listing(state, body)
    quantity = body.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise WireError(400, "", "quantity must be a positive integer")
    if not is_live(state, listing) or listing.quantity < quantity:
        raise WireError(409, "", "not enough buyable stock")
    event = place_order(state, listing, quantity)
    po = event.payload["purchaseOrderId"]
    return [event], {"sku": listing.sku, "quantity": listing.quantity, "purchaseOrderId": po}


def _cancel(request: web.Request, state: WalmartMockState, body: Body) -> Answer:
    """``POST /_mock/orders/{po}/cancel {lineNumber?}``: Walmart auto-cancels the line (default
    "1"): Cancelled, the units come back, PO_LINE_AUTOCANCELLED is pushed."""
    po = request.match_info["po"]
    event = cancel_line(state, po, str(body.get("lineNumber", "1")))
    listing = state.listing(event.sku)
    quantity = listing.quantity if listing else 0
    return [event], {"purchaseOrderId": po, "sku": event.sku, "quantity": quantity}


def _view(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    meta = state.meta_of(listing)
    rivals = state.market.competitors.get(listing.sku, [])
    return {
        "sku": listing.sku,
        "itemId": meta.item_id,
        "price": f"{listing.price:.2f}",
        "currency": listing.currency,
        "quantity": listing.quantity,
        "fulfillment": listing.fulfillment.value,
        "publishedStatus": meta.published_status,
        "unpublishedReasons": list(meta.reasons),
        "referencePrice": f"{meta.reference_price:.2f}",
        "competitors": [
            {"seller_id": c.seller_id, "price": f"{c.price:.2f}", "shipping": f"{c.shipping:.2f}"}
            for c in rivals
        ],
    }


async def get_state(request: web.Request) -> web.Response:
    """``GET /_mock/state``: offers, counters, 429s, applied writes, feeds, pushed events."""
    state = request.app[STATE_KEY]
    body = {
        "partnerId": state.partner_id,
        "listings": [_view(state, listing) for listing in state.market.listings.values()],
        "calls": dict(state.calls),
        "throttled": dict(state.throttled),
        "applied": dict(state.applied),
        "dropped": dict(state.dropped),
        "feeds": {fid: feed.status for fid, feed in state.feeds.items()},
        "subscriptions": len(state.subscriptions),
        "events": [
            {"type": e.event_type, "id": e.event_id, "sku": e.sku, "status": e.status}
            for e in state.events
        ],
    }
    return web.json_response(body)


def add_routes(app: web.Application) -> None:
    """Register the ``/_mock`` control routes."""
    actions: dict[str, Action] = {
        "notify": _notify,
        "reference": _reference,
        "orders": _order,
        "orders/{po}/cancel": _cancel,
        "settle": lambda *_: ([], {"ok": True}),  # wait until every pending delivery is done
    }
    add_control_routes(app, STATE_KEY, get_state, {k: _control(a) for k, a in actions.items()})
