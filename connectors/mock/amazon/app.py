"""The mock SP-API app: the SP-API routes, notifications, and the ``/_mock/`` control routes for
tests and the demo (no SP-API auth); ``start(state)`` serves it on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web

from connectors.mock.amazon import orders, pricing, reports
from connectors.mock.amazon.feeds import advance_feeds, s3
from connectors.mock.amazon.listings import statuses
from connectors.mock.amazon.notify import BUILDERS, any_offer_changed, deliver, order_change
from connectors.mock.amazon.state import AmazonMockState, MockOrder
from connectors.mock.amazon.wire import ROUTES, SESSION_KEY, STATE_KEY, cents, token
from connectors.mock.kit.control import Args, Refused, add_control_routes, found, positive
from connectors.mock.kit.serving import Starter, running, ticker
from connectors.mock.market import MockListing

_ = (orders, pricing, reports)  # imported for the SP-API routes they register


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
        **state.counted("failed", "orphan_patches"),
        "throttled_total": state.rate_limited_total,
        "feeds": {fid: feed.status for fid, feed in state.feeds.items()},
        "orders": {oid: order.status for oid, order in state.orders.items()},
        "notifications": [
            {"type": n.notification_type, "id": n.notification_id, "sku": n.sku, "status": n.status}
            for n in state.notifications
        ],
    }
    return web.json_response(body)


def _listing(state: AmazonMockState, args: Args) -> MockListing:
    """The listing of the body's ``sku`` or ``asin``, or the 404."""
    sku, asin = args.get("sku"), args.get("asin")
    return found(state.listing(str(sku)) if sku is not None else state.listing_by_asin(str(asin)))


async def fire_notification(request: web.Request, args: Args) -> Args:
    """``POST /_mock/notify {sku|asin, type}``: competitors move, then the document is pushed."""
    state = request.app[STATE_KEY]
    kind = str(args.get("type", "ANY_OFFER_CHANGED"))
    if kind not in BUILDERS:
        raise Refused(400, f"type must be one of {', '.join(BUILDERS)}")
    listing = _listing(state, args)
    document = BUILDERS[kind](state, listing)
    sent = await deliver(state, request.app[SESSION_KEY], listing.sku, document)
    return {"notificationId": sent.notification_id, "status": sent.status, "body": sent.body}


async def _order_changed(
    request: web.Request, order: MockOrder, listing: MockListing, answer: Args
) -> Args:
    """Push ORDER_CHANGE of ``order`` when a webhook target is set; answer ``answer``."""
    state = request.app[STATE_KEY]
    if state.webhook_url:
        what = (state, listing, order.quantity, order.order_id)
        document = order_change(*what, status=order.status, item_id=order.item_id)
        sent = await deliver(state, request.app[SESSION_KEY], listing.sku, document)
        answer["notification"] = {"id": sent.notification_id, "status": sent.status}
    return answer


async def place_order(request: web.Request, args: Args) -> Args:
    """``POST /_mock/orders {sku, quantity}``: a shopper buys; stock goes down; ORDER_CHANGE."""
    state = request.app[STATE_KEY]
    listing = _listing(state, args)
    quantity = positive(args)
    if "BUYABLE" not in statuses(state, listing) or listing.quantity < quantity:
        raise Refused(409, "not enough buyable stock")
    listing.quantity -= quantity
    state.touch(listing.sku)
    now, serial = state.clock.now(), len(state.orders) + 1
    order_id = f"113-{state.rng.randrange(10**7):07d}-{serial:07d}"
    item_id = f"{state.rng.randrange(10**13, 10**14)}"
    order = MockOrder(order_id, item_id, replace(listing), quantity, now, now)
    state.orders[order_id] = order
    answer = {"sku": listing.sku, "quantity": listing.quantity, "amazonOrderId": order.order_id}
    return await _order_changed(request, order, listing, answer)


async def cancel_order(request: web.Request, args: Args) -> Args:
    """``POST /_mock/orders/{order_id}/cancel``: Canceled, its units back, ORDER_CHANGE pushed."""
    state = request.app[STATE_KEY]
    order = found(state.orders.get(args["order_id"]), "order")
    if order.status == "Canceled":
        raise Refused(409, "order already cancelled")
    order.status, order.updated = "Canceled", state.clock.now()
    listing = state.listing(order.item.sku)
    answer: Args = {"amazonOrderId": order.order_id, "status": order.status}
    if listing is None:
        return answer
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


async def _background(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        app[SESSION_KEY] = session
        state = app[STATE_KEY]
        work = ticker(state.ticker_s, partial(tick, state, session), state.clock.monotonic())
        async with running(work, "amazon-mock-ticker"):
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
