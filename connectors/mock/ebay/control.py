"""Control routes for tests and the demo, under ``/_mock/`` (no eBay auth, never on eBay)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from connectors.mock.ebay.auth import SESSION_KEY, STATE_KEY
from connectors.mock.ebay.fulfillment import Refused, cancel, sell
from connectors.mock.ebay.notify import redeliver, run_challenge
from connectors.mock.ebay.state import EbayMockState, SentNotification
from connectors.mock.ebay.wire import money
from connectors.mock.kit.control import Handler, add_control_routes, bad, json_object

# (state, session, JSON body merged with the path's parameters) -> the JSON answer
Action = Callable[[EbayMockState, aiohttp.ClientSession, dict[str, Any]], Awaitable[Any]]


def _action(action: Action) -> Handler:
    async def route(request: web.Request) -> web.Response:
        body = await json_object(request)
        if body is None:
            return bad("expected a JSON object")
        try:
            args = {**body, **request.match_info}
            return web.json_response(
                await action(request.app[STATE_KEY], request.app[SESSION_KEY], args)
            )
        except Refused as exc:
            return bad(str(exc), exc.status)

    return route


def _sent(sent: SentNotification) -> dict[str, Any]:
    return {
        "topic": sent.topic,
        "notificationId": sent.notification_id,
        "status": sent.status,
        "error": sent.error,
    }


def _listings(state: EbayMockState) -> list[dict[str, Any]]:
    return [
        {
            "sku": sku,
            "offerId": offer.offer_id,
            "listingId": offer.listing_id,
            "status": offer.status,
            "price": money(listing.price),
            "currency": listing.currency,
            "quantity": listing.quantity,
            "availableQuantity": offer.available_quantity,
            "shipToQuantity": state.items[sku].ship_to_quantity if sku in state.items else None,
            "soldQuantity": offer.sold_quantity,
            "revisionsToday": state.revisions_today(offer.listing_id),
            "competitors": [
                {"seller": c.seller_id, "price": money(c.price)}
                for c in state.market.competitors.get(sku, [])
            ],
        }
        for sku, listing in sorted(state.market.listings.items())
        for offer in state.offers_of(sku)
    ]


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


async def place_order(
    state: EbayMockState, session: aiohttp.ClientSession, args: dict[str, Any]
) -> dict[str, Any]:
    """``POST /_mock/orders {sku, quantity}``: a buyer checks out; ORDER_CONFIRMATION is pushed."""
    quantity = args.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise Refused(400, "quantity must be a positive integer")
    sale = await sell(state, session, str(args.get("sku", "")), quantity)
    return {
        "orderId": sale.order_id,
        "lineItemId": sale.line_item_id,
        "sku": sale.sku,
        "quantity": sale.quantity_left,
        "notification": _sent(sale.notification),
    }


async def cancel_order(
    state: EbayMockState, session: aiohttp.ClientSession, args: dict[str, Any]
) -> dict[str, Any]:
    """``POST /_mock/orders/{order_id}/cancel``: the cancellation completes (CANCELED, units
    back on the listing); getOrders shows the order as modified now."""
    order = cancel(state, args["order_id"])
    if order is None:
        raise Refused(404, "no such order, or already cancelled")
    skus = [item["sku"] for item in order.document["lineItems"]]
    left = {sku: listing.quantity for sku in skus if (listing := state.listing(sku)) is not None}
    return {"orderId": order.document["orderId"], "cancelState": "CANCELED", "quantities": left}


async def challenge(
    state: EbayMockState, session: aiohttp.ClientSession, args: dict[str, Any]
) -> dict[str, Any]:
    """``POST /_mock/challenge {endpoint?}``: run eBay's endpoint validation; report pass/fail."""
    if args.get("endpoint") is not None:
        state.notify_url = str(args["endpoint"])  # validating a destination registers it
    return await run_challenge(state, session)


async def redeliver_notification(
    state: EbayMockState, session: aiohttp.ClientSession, args: dict[str, Any]
) -> dict[str, Any]:
    """``POST /_mock/redeliver {notificationId}``: eBay's retry of a recorded notification."""
    if "notificationId" not in args:
        raise Refused(400, 'body must be {"notificationId": ...}')
    sent = await redeliver(state, session, str(args["notificationId"]))
    if sent is None:
        raise Refused(404, "unknown notificationId")
    return _sent(sent)


def add_routes(app: web.Application) -> None:
    """Register the ``/_mock`` control routes."""
    actions = {
        "orders": place_order,
        "orders/{order_id}/cancel": cancel_order,
        "challenge": challenge,
        "redeliver": redeliver_notification,
    }
    posts = {path: _action(action) for path, action in actions.items()}
    add_control_routes(app, STATE_KEY, get_state, posts)
