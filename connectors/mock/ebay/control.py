"""Control routes for tests and the demo, under ``/_mock/`` (no eBay auth, never on eBay)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from connectors.mock.ebay.auth import SESSION_KEY, STATE_KEY
from connectors.mock.ebay.fulfillment import cancel
from connectors.mock.ebay.notify import redeliver, run_challenge
from connectors.mock.ebay.orders import OrderRefused, sell
from connectors.mock.ebay.state import EbayMockState, SentNotification
from connectors.mock.ebay.wire import money
from connectors.mock.kit.control import add_control_routes, bad, json_object


def _listings(state: EbayMockState) -> list[dict[str, Any]]:
    rows = []
    for sku, listing in sorted(state.market.listings.items()):
        item = state.items.get(sku)
        for offer in state.offers_of(sku):
            rows.append(
                {
                    "sku": sku,
                    "offerId": offer.offer_id,
                    "listingId": offer.listing_id,
                    "status": offer.status,
                    "price": money(listing.price),
                    "currency": listing.currency,
                    "quantity": listing.quantity,
                    "availableQuantity": offer.available_quantity,
                    "shipToQuantity": item.ship_to_quantity if item else None,
                    "soldQuantity": offer.sold_quantity,
                    "revisionsToday": state.revisions_today(offer.listing_id),
                    "competitors": [
                        {"seller": c.seller_id, "price": money(c.price)}
                        for c in state.market.competitors.get(sku, [])
                    ],
                }
            )
    return rows


def _sent(sent: SentNotification) -> dict[str, Any]:
    return {
        "topic": sent.topic,
        "notificationId": sent.notification_id,
        "status": sent.status,
        "error": sent.error,
    }


async def get_state(request: web.Request) -> web.Response:
    """``GET /_mock/state``: listings, revisions today, calls, quotas, 429s, notifications."""
    state = request.app[STATE_KEY]
    body = {
        "seller": state.seller_username,
        "marketplaceId": state.marketplace_id,
        "listings": _listings(state),
        "calls": dict(state.calls),
        "quotaUsedToday": {api: state.quota_used(api) for api in state.daily_quotas},
        "throttled": dict(state.throttled),
        "throttledTotal": sum(state.throttled.values()),
        "applied": dict(state.applied),
        "dropped": dict(state.dropped),
        "publicKeyId": state.public_key_id,
        "notifications": [_sent(n) for n in state.notifications],
    }
    return web.json_response(body)


async def place_order(request: web.Request) -> web.Response:
    """``POST /_mock/orders {sku, quantity}``: a buyer checks out; ORDER_CONFIRMATION is pushed."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None:
        return bad("expected a JSON object")
    quantity = body.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        return bad("quantity must be a positive integer")
    try:
        sale = await sell(state, request.app[SESSION_KEY], str(body.get("sku", "")), quantity)
    except OrderRefused as exc:
        return bad(str(exc), exc.status)
    return web.json_response(
        {
            "orderId": sale.order_id,
            "lineItemId": sale.line_item_id,
            "sku": sale.sku,
            "quantity": sale.quantity_left,
            "notification": _sent(sale.notification),
        }
    )


async def cancel_order(request: web.Request) -> web.Response:
    """``POST /_mock/orders/{orderId}/cancel``: the order's cancellation completes (CANCELED,
    units back on the listing); getOrders shows it as modified now."""
    state = request.app[STATE_KEY]
    order = cancel(state, request.match_info["order_id"])
    if order is None:
        return bad("no such order, or already cancelled", 404)
    left = {}
    for item in order.document["lineItems"]:
        listing = state.listing(item["sku"])
        if listing is not None:
            left[item["sku"]] = listing.quantity
    return web.json_response(
        {"orderId": order.document["orderId"], "cancelState": "CANCELED", "quantities": left}
    )


async def challenge(request: web.Request) -> web.Response:
    """``POST /_mock/challenge {endpoint?}``: run eBay's endpoint validation; report pass/fail."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None:
        return bad("expected a JSON object")
    endpoint = body.get("endpoint")
    if endpoint is not None:
        state.notify_url = str(endpoint)  # validating a destination registers it
    return web.json_response(await run_challenge(state, request.app[SESSION_KEY]))


async def redeliver_route(request: web.Request) -> web.Response:
    """``POST /_mock/redeliver {notificationId}``: eBay's retry of a recorded notification."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None or "notificationId" not in body:
        return bad('body must be {"notificationId": ...}')
    sent = await redeliver(state, request.app[SESSION_KEY], str(body["notificationId"]))
    if sent is None:
        return bad("unknown notificationId", 404)
    return web.json_response(_sent(sent))


def add_routes(app: web.Application) -> None:
    """Register the ``/_mock`` control routes."""
    add_control_routes(
        app,
        STATE_KEY,
        get_state,
        {
            "orders": place_order,
            "orders/{order_id}/cancel": cancel_order,
            "challenge": challenge,
            "redeliver": redeliver_route,
        },
    )
