"""The mock eBay application: OAuth, Sell Inventory, Fulfillment, Browse and Notification routes,
and the ``/_mock/`` control routes for tests and the demo (no eBay auth, never on eBay)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from connectors.mock.ebay import browse, fulfillment, inventory, notify
from connectors.mock.ebay.fulfillment import cancel, sell
from connectors.mock.ebay.gateway import SESSION_KEY, STATE_KEY, TOKEN_PATH, money, token
from connectors.mock.ebay.state import EbayMockState
from connectors.mock.kit.control import Action, Args, Refused, add_control_routes
from connectors.mock.kit.serving import Starter, running

# eBay gives a notification endpoint a few seconds to answer (exact timeout unconfirmed).
PUSH_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=3)
Session = aiohttp.ClientSession


def _action(action: Callable[[EbayMockState, Session, Args], Awaitable[Args]]) -> Action:
    async def do(request: web.Request, args: Args) -> Args:
        return await action(request.app[STATE_KEY], request.app[SESSION_KEY], args)

    return do


async def get_state(request: web.Request) -> web.Response:
    """``GET /_mock/state``: listings, revisions today, calls, quotas, 429s, notifications."""
    state = request.app[STATE_KEY]
    listings = [
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
    body = {
        "seller": state.seller_username,
        "marketplaceId": state.marketplace_id,
        "listings": listings,
        **state.counted(),
        "quotaUsedToday": {api: state.today(f"quota:{api}") for api in state.daily_quotas},
        "throttledTotal": sum(state.throttled.values()),
        "publicKeyId": state.public_key_id,
        "notifications": [n.view() for n in state.notifications],
    }
    return web.json_response(body)


async def place_order(state: EbayMockState, session: Session, args: Args) -> Args:
    """``POST /_mock/orders {sku, quantity}``: a buyer checks out; ORDER_CONFIRMATION is pushed."""
    quantity = args.get("quantity", 1)
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        raise Refused(400, "quantity must be a positive integer")  # sell refuses one below 1
    return await sell(state, session, str(args.get("sku", "")), quantity)


async def cancel_order(state: EbayMockState, session: Session, args: Args) -> Args:
    """``POST /_mock/orders/{order_id}/cancel``: the cancellation completes (getOrders shows it)."""
    order = cancel(state, args["order_id"])
    if order is None:
        raise Refused(404, "no such order, or already cancelled")
    skus = [item["sku"] for item in order.document["lineItems"]]
    left = {sku: listing.quantity for sku in skus if (listing := state.listing(sku)) is not None}
    return {"orderId": order.document["orderId"], "cancelState": "CANCELED", "quantities": left}


async def challenge(state: EbayMockState, session: Session, args: Args) -> Args:
    """``POST /_mock/challenge {endpoint?}``: run eBay's endpoint validation; report pass/fail."""
    if args.get("endpoint") is not None:
        state.notify_url = str(args["endpoint"])  # validating a destination registers it
    return await notify.run_challenge(state, session)


async def redeliver(state: EbayMockState, session: Session, args: Args) -> Args:
    """``POST /_mock/redeliver {notificationId}``: eBay's retry of a recorded notification."""
    if "notificationId" not in args:
        raise Refused(400, 'body must be {"notificationId": ...}')
    sent = await notify.redeliver(state, session, str(args["notificationId"]))
    if sent is None:
        raise Refused(404, "unknown notificationId")
    return sent.view()


async def _session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=PUSH_TIMEOUT) as session:
        app[SESSION_KEY] = session
        async with running(fulfillment.run_buyers(app[STATE_KEY], session), "ebay-mock-buyers"):
            yield


def make_app(state: EbayMockState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_post(TOKEN_PATH, token)
    for module in (inventory, fulfillment, browse, notify):
        app.add_routes(module.ROUTES)
    actions = {
        "orders": place_order,
        "orders/{order_id}/cancel": cancel_order,
        "challenge": challenge,
        "redeliver": redeliver,
    }
    add_control_routes(app, STATE_KEY, get_state, {p: _action(a) for p, a in actions.items()})
    app.cleanup_ctx.append(_session)
    return app


start = Starter(make_app, "ebay")
