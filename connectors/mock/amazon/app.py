"""The mock SP-API app: the SP-API routes, notifications, and the ``/_mock/`` control routes for
tests and the demo (no SP-API auth); ``start(state)`` serves it on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from connectors.mock.amazon import orders, pricing, reports
from connectors.mock.amazon.feeds import advance_feeds, s3
from connectors.mock.amazon.listings import statuses
from connectors.mock.amazon.notify import BUILDERS, any_offer_changed, deliver, order_change
from connectors.mock.amazon.state import AmazonMockState, MockOrder
from connectors.mock.amazon.wire import ROUTES, SESSION_KEY, STATE_KEY, cents, token
from connectors.mock.kit.control import add_control_routes, bad, json_object
from connectors.mock.kit.serving import Starter, running
from connectors.mock.market import MockListing

_ = (orders, pricing, reports)  # imported for the SP-API routes they register
_COUNTERS = ("calls", "throttled", "failed", "applied", "dropped", "orphan_patches")


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
        **{name: dict(getattr(state, name)) for name in _COUNTERS},
        "throttled_total": state.rate_limited_total,
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
    sku, asin = body.get("sku"), body.get("asin")
    listing = state.listing(str(sku)) if sku is not None else state.listing_by_asin(str(asin))
    return body, listing or web.json_response({"error": "no such listing"}, status=404)


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
        what = (state, listing, order.quantity, order.order_id)
        document = order_change(*what, status=order.status, item_id=order.item_id)
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
    now, serial = state.clock.now(), len(state.orders) + 1
    order_id = f"113-{state.rng.randrange(10**7):07d}-{serial:07d}"
    item_id = f"{state.rng.randrange(10**13, 10**14)}"
    order = MockOrder(order_id, item_id, replace(listing), quantity, now, now)
    state.orders[order_id] = order
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
    listing = state.listing(order.item.sku)
    answer: dict[str, Any] = {"amazonOrderId": order.order_id, "status": order.status}
    if listing is None:
        return web.json_response(answer)
    listing.quantity += order.quantity
    state.touch(listing.sku)
    return await _order_changed(request, order, listing, answer | {"quantity": listing.quantity})


async def tick(state: AmazonMockState, session: aiohttp.ClientSession, last_push: float) -> float:
    """Advance feeds; push ANY_OFFER_CHANGED if the interval has passed; the last push's time."""
    advance_feeds(state)
    interval, now = state.notify_interval_s, state.clock.monotonic()
    if interval is None or now - last_push < interval:
        return last_push
    if state.webhook_url and state.market.listings:
        listing = state.rng.choice(list(state.market.listings.values()))
        await deliver(state, session, listing.sku, any_offer_changed(state, listing))
    return now


async def _ticker(app: web.Application) -> None:
    state = app[STATE_KEY]
    last_push = state.clock.monotonic()
    while state.ticker_s is not None:  # None: tests on a manual clock call ``tick`` themselves
        await asyncio.sleep(state.ticker_s)
        last_push = await tick(state, app[SESSION_KEY], last_push)


async def _background(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        app[SESSION_KEY] = session
        async with running(_ticker(app), "amazon-mock-ticker"):
            yield


def make_app(state: AmazonMockState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # feed documents can be large
    app[STATE_KEY] = state
    app.router.add_post("/auth/o2/token", token)
    for method, path, route in ROUTES:
        app.router.add_route(method, path, route)
    app.router.add_put("/_s3/upload/{documentId}", s3)
    app.router.add_get("/_s3/download/{documentId}", s3)
    posts = {"notify": fire_notification, "orders": place_order}
    posts["reports/outcome"] = reports.force_outcome
    add_control_routes(
        app, STATE_KEY, get_state, posts | {"orders/{order_id}/cancel": cancel_order}
    )
    app.cleanup_ctx.append(_background)
    return app


start = Starter(make_app, "amazon")
