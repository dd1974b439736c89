"""Control routes for tests and the demo, under ``/_mock/`` (no Walmart auth, never on Walmart)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from connectors.mock.kit.control import add_control_routes, bad, json_object
from connectors.mock.market import MockListing
from connectors.mock.walmart.events import dispatch
from connectors.mock.walmart.keys import RUNTIME_KEY, STATE_KEY
from connectors.mock.walmart.offers import (
    buy_box_changed,
    competitors_move,
    is_live,
    place_order,
    set_reference,
)
from connectors.mock.walmart.purchases import cancel_line
from connectors.mock.walmart.state import WalmartMockState
from connectors.mock.walmart.wire import WireError


def _listing_view(state: WalmartMockState, listing: MockListing) -> dict[str, Any]:
    meta = state.meta_of(listing)
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
            for c in state.market.competitors.get(listing.sku, [])
        ],
    }


async def get_state(request: web.Request) -> web.Response:
    """``GET /_mock/state``: offers, counters, 429s, applied writes, feeds, pushed events."""
    state = request.app[STATE_KEY]
    body = {
        "partnerId": state.partner_id,
        "listings": [_listing_view(state, item) for item in state.market.listings.values()],
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


async def fire(request: web.Request) -> web.Response:
    """``POST /_mock/notify {sku, type?}``: competitors move; BUY_BOX_CHANGED is pushed."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None:
        return bad("expected a JSON object")
    if body.get("type", "BUY_BOX_CHANGED") != "BUY_BOX_CHANGED":
        return bad("type must be BUY_BOX_CHANGED (status events follow price writes)")
    listing = state.listing(str(body.get("sku", "")))
    if listing is None:
        return bad("no such listing", 404)
    competitors_move(state, listing)
    event = buy_box_changed(state, listing)
    if event is not None:
        dispatch(request.app, [event])
    await request.app[RUNTIME_KEY].settle()
    return web.json_response({"sent": event is not None})


async def reference(request: web.Request) -> web.Response:
    """``POST /_mock/reference {sku, referencePrice}``: Walmart revises the item's reasonable
    price; an offer now outside the band is unpublished and OFFER_UNPUBLISHED (with that
    ``referencePrice``) is pushed; one back inside is republished (OFFER_PUBLISHED)."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None:
        return bad("expected a JSON object")
    listing = state.listing(str(body.get("sku", "")))
    if listing is None:
        return bad("no such listing", 404)
    raw = body.get("referencePrice")
    try:
        value = Decimal(str(raw)) if isinstance(raw, int | float | str) else None
    except InvalidOperation:
        value = None
    if value is None or isinstance(raw, bool) or not value.is_finite() or value <= 0:
        return bad("referencePrice must be a positive number")
    events = set_reference(state, listing, value)
    dispatch(request.app, events)
    await request.app[RUNTIME_KEY].settle()
    return web.json_response({"sent": [e.event_type for e in events]})


async def order(request: web.Request) -> web.Response:
    """``POST /_mock/orders {sku, quantity}``: a shopper buys; stock drops; PO_CREATED."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None:
        return bad("expected a JSON object")
    listing = state.listing(str(body.get("sku", "")))
    quantity = body.get("quantity", 1)
    if listing is None:
        return bad("no such listing", 404)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        return bad("quantity must be a positive integer")
    if not is_live(state, listing) or listing.quantity < quantity:
        return bad("not enough buyable stock", 409)
    event = place_order(state, listing, quantity)
    dispatch(request.app, [event])
    await request.app[RUNTIME_KEY].settle()
    po = event.payload["purchaseOrderId"]
    return web.json_response(
        {"sku": listing.sku, "quantity": listing.quantity, "purchaseOrderId": po}
    )


async def cancel(request: web.Request) -> web.Response:
    """``POST /_mock/orders/{po}/cancel {lineNumber?}``: Walmart auto-cancels the line (default
    "1"): its status becomes Cancelled, the units come back, PO_LINE_AUTOCANCELLED is pushed."""
    state = request.app[STATE_KEY]
    body = await json_object(request) if request.can_read_body else {}
    if body is None:
        return bad("expected a JSON object")
    po = request.match_info["po"]
    try:
        event = cancel_line(state, po, str(body.get("lineNumber", "1")))
    except WireError as exc:
        return bad(exc.description, exc.status)
    dispatch(request.app, [event])
    await request.app[RUNTIME_KEY].settle()
    listing = state.listing(event.sku)
    return web.json_response(
        {"purchaseOrderId": po, "sku": event.sku, "quantity": listing.quantity if listing else 0}
    )


async def settle(request: web.Request) -> web.Response:
    """``POST /_mock/settle``: wait until every pending webhook delivery has finished."""
    await request.app[RUNTIME_KEY].settle()
    return web.json_response({"ok": True})


def add_routes(app: web.Application) -> None:
    """Register the ``/_mock`` control routes."""
    add_control_routes(
        app,
        STATE_KEY,
        get_state,
        {
            "notify": fire,
            "reference": reference,
            "orders": order,
            "orders/{po}/cancel": cancel,
            "settle": settle,
        },
    )
