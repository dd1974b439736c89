"""Control routes for tests and the demo, under ``/_mock/`` (no SP-API auth, never on Amazon)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.mock.amazon.auth import SESSION_KEY, STATE_KEY
from connectors.mock.amazon.items import statuses
from connectors.mock.amazon.notify import TYPES, build, deliver, order_change
from connectors.mock.amazon.state import AmazonMockState, MockOrder
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


def _find(state: AmazonMockState, body: dict[str, Any]) -> MockListing | None:
    if "sku" in body:
        return state.listing(str(body["sku"]))
    if "asin" in body:
        return state.listing_by_asin(str(body["asin"]))
    return None


async def fire_notification(request: web.Request) -> web.Response:
    """``POST /_mock/notify {sku|asin, type}``: competitors move, then the document is pushed."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None:
        return bad("expected a JSON object")
    kind = str(body.get("type", "ANY_OFFER_CHANGED"))
    if kind not in TYPES:
        return bad(f"type must be one of {', '.join(TYPES)}")
    listing = _find(state, body)
    if listing is None:
        return web.json_response({"error": "no such listing"}, status=404)
    sent = await deliver(state, request.app[SESSION_KEY], listing.sku, build(state, listing, kind))
    return web.json_response(
        {"notificationId": sent.notification_id, "status": sent.status, "body": sent.body}
    )


async def place_order(request: web.Request) -> web.Response:
    """``POST /_mock/orders {sku, quantity}``: a shopper buys; stock goes down; ORDER_CHANGE."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None:
        return bad("expected a JSON object")
    listing = _find(state, body)
    quantity = body.get("quantity", 1)
    if listing is None:
        return web.json_response({"error": "no such listing"}, status=404)
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        return bad("quantity must be a positive integer")
    if "BUYABLE" not in statuses(state, listing) or listing.quantity < quantity:
        return web.json_response({"error": "not enough buyable stock"}, status=409)
    listing.quantity -= quantity
    state.touch(listing.sku)
    serial = len(state.orders) + 1
    order_id = f"113-{state.rng.randrange(10**7):07d}-{serial:07d}"
    now = state.clock.now()
    order = MockOrder(
        order_id=order_id,
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
    state.orders[order_id] = order
    answer: dict[str, Any] = {"sku": listing.sku, "quantity": listing.quantity}
    answer["amazonOrderId"] = order_id
    if state.webhook_url:
        document = order_change(state, listing, quantity, order_id, item_id=order.item_id)
        sent = await deliver(state, request.app[SESSION_KEY], listing.sku, document)
        answer["notification"] = {"id": sent.notification_id, "status": sent.status}
    return web.json_response(answer)


async def cancel_order(request: web.Request) -> web.Response:
    """``POST /_mock/orders/{order_id}/cancel``: the order is Canceled, its units come back,
    ORDER_CHANGE (OrderStatus Canceled) is pushed when a webhook target is set."""
    state = request.app[STATE_KEY]
    order = state.orders.get(request.match_info["order_id"])
    if order is None:
        return web.json_response({"error": "no such order"}, status=404)
    if order.status == "Canceled":
        return web.json_response({"error": "order already cancelled"}, status=409)
    order.status, order.updated = "Canceled", state.clock.now()
    listing = state.listing(order.sku)
    answer: dict[str, Any] = {"amazonOrderId": order.order_id, "status": order.status}
    if listing is not None:
        listing.quantity += order.quantity
        state.touch(listing.sku)
        answer["quantity"] = listing.quantity
        if state.webhook_url:
            document = order_change(
                state,
                listing,
                order.quantity,
                order.order_id,
                status="Canceled",
                item_id=order.item_id,
            )
            sent = await deliver(state, request.app[SESSION_KEY], listing.sku, document)
            answer["notification"] = {"id": sent.notification_id, "status": sent.status}
    return web.json_response(answer)


def add_routes(app: web.Application) -> None:
    """Register the ``/_mock`` control routes."""
    add_control_routes(
        app,
        STATE_KEY,
        get_state,
        {
            "notify": fire_notification,
            "orders": place_order,
            "orders/{order_id}/cancel": cancel_order,
        },
    )
