"""Control routes for tests and the demo, under ``/_mock/`` (no SP-API auth, never on Amazon)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.mock.amazon.listings import statuses
from connectors.mock.amazon.notify import BUILDERS, deliver, order_change
from connectors.mock.amazon.state import SESSION_KEY, STATE_KEY, AmazonMockState, MockOrder
from connectors.mock.amazon.wire import cents
from connectors.mock.kit.control import add_control_routes, bad, json_object
from connectors.mock.market import MockListing


def _listing_view(state: AmazonMockState, listing: MockListing) -> dict[str, Any]:
    meta = state.meta_of(listing.sku)
    return {
        "sku": listing.sku,
        "asin": listing.external_id,
        "price": cents(listing.price),
        "currency": listing.currency,
        "quantity": listing.quantity,
        "fulfillment": listing.fulfillment.value,
        "min_price": None if meta.min_price is None else cents(meta.min_price),
        "max_price": None if meta.max_price is None else cents(meta.max_price),
        "status": statuses(state, listing),
        "competitors": [
            {"seller_id": c.seller_id, "price": cents(c.price), "shipping": cents(c.shipping)}
            for c in state.market.competitors.get(listing.sku, [])
        ],
    }


async def get_state(request: web.Request) -> web.Response:
    """``GET /_mock/state``: listings, call counters, 429s, applied writes, feeds, notifications."""
    state = request.app[STATE_KEY]
    body = {
        "seller_id": state.seller_id,
        "marketplace_id": state.marketplace_id,
        "listings": [_listing_view(state, item) for item in state.market.listings.values()],
        "calls": dict(state.calls),
        "throttled": dict(state.throttled),
        "throttled_total": state.rate_limited_total,
        "failed": dict(state.failed),
        "applied": dict(state.applied),
        "dropped": dict(state.dropped),
        "orphan_patches": dict(state.orphan_patches),
        "feeds": {fid: feed.status for fid, feed in state.feeds.items()},
        "orders": {oid: order.status for oid, order in state.orders.items()},
        "notifications": [
            {"type": n.notification_type, "id": n.notification_id, "sku": n.sku, "status": n.status}
            for n in state.notifications
        ],
    }
    return web.json_response(body)


async def _listing(request: web.Request) -> tuple[dict[str, Any], MockListing | web.Response]:
    """The JSON body and the listing of its ``sku`` or ``asin``, or the refusal."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None:
        return {}, bad("expected a JSON object")
    listing = (
        state.listing(str(body["sku"]))
        if "sku" in body
        else state.listing_by_asin(str(body.get("asin")))
    )
    return body, web.json_response(
        {"error": "no such listing"}, status=404
    ) if listing is None else listing


async def fire_notification(request: web.Request) -> web.Response:
    """``POST /_mock/notify {sku|asin, type}``: competitors move, then the document is pushed."""
    state = request.app[STATE_KEY]
    body, listing = await _listing(request)
    kind = str(body.get("type", "ANY_OFFER_CHANGED"))
    if kind not in BUILDERS:
        return bad(f"type must be one of {', '.join(BUILDERS)}")
    if isinstance(listing, web.Response):
        return listing
    document = BUILDERS[kind](state, listing)
    sent = await deliver(state, request.app[SESSION_KEY], listing.sku, document)
    return web.json_response(
        {"notificationId": sent.notification_id, "status": sent.status, "body": sent.body}
    )


async def _order_changed(
    request: web.Request, order: MockOrder, listing: MockListing, answer: dict[str, Any]
) -> web.Response:
    """Push ORDER_CHANGE of ``order`` when a webhook target is set; answer ``answer``."""
    state = request.app[STATE_KEY]
    if state.webhook_url:
        document = order_change(
            state,
            listing,
            order.quantity,
            order.order_id,
            status=order.status,
            item_id=order.item_id,
        )
        sent = await deliver(state, request.app[SESSION_KEY], listing.sku, document)
        answer["notification"] = {"id": sent.notification_id, "status": sent.status}
    return web.json_response(answer)


async def place_order(request: web.Request) -> web.Response:
    """``POST /_mock/orders {sku, quantity}``: a shopper buys; stock goes down; ORDER_CHANGE."""
    state = request.app[STATE_KEY]
    body, listing = await _listing(request)
    if isinstance(listing, web.Response):
        return listing
    quantity = body.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        return bad("quantity must be a positive integer")
    if "BUYABLE" not in statuses(state, listing) or listing.quantity < quantity:
        return web.json_response({"error": "not enough buyable stock"}, status=409)
    listing.quantity -= quantity
    state.touch(listing.sku)
    now = state.clock.now()
    order = MockOrder(
        order_id=f"113-{state.rng.randrange(10**7):07d}-{len(state.orders) + 1:07d}",
        item_id=f"{state.rng.randrange(10**13, 10**14)}",
        sku=listing.sku,
        asin=listing.external_id,
        quantity=quantity,
        price=listing.price,
        currency=listing.currency,
        fulfillment="AFN" if listing.fulfillment.value == "marketplace" else "MFN",
        purchased=now,
        updated=now,
    )
    state.orders[order.order_id] = order
    answer = {"sku": listing.sku, "quantity": listing.quantity, "amazonOrderId": order.order_id}
    return await _order_changed(request, order, listing, answer)


async def cancel_order(request: web.Request) -> web.Response:
    """``POST /_mock/orders/{order_id}/cancel``: Canceled, its units back, ORDER_CHANGE pushed."""
    state = request.app[STATE_KEY]
    order = state.orders.get(request.match_info["order_id"])
    if order is None:
        return web.json_response({"error": "no such order"}, status=404)
    if order.status == "Canceled":
        return web.json_response({"error": "order already cancelled"}, status=409)
    order.status, order.updated = "Canceled", state.clock.now()
    listing = state.listing(order.sku)
    answer: dict[str, Any] = {"amazonOrderId": order.order_id, "status": order.status}
    if listing is None:
        return web.json_response(answer)
    listing.quantity += order.quantity
    state.touch(listing.sku)
    return await _order_changed(request, order, listing, answer | {"quantity": listing.quantity})


def add_routes(app: web.Application) -> None:
    """Register the ``/_mock`` control routes."""
    posts = {"notify": fire_notification, "orders": place_order}
    add_control_routes(
        app, STATE_KEY, get_state, posts | {"orders/{order_id}/cancel": cancel_order}
    )
