"""The mock eBay application: OAuth, Sell Inventory, Fulfillment, Browse, Notification, control
routes; ``start(state)`` serves it on loopback and returns the runner and the base URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from connectors.mock.ebay import browse, control, fulfillment, inventory, notify
from connectors.mock.ebay.auth import SESSION_KEY, STATE_KEY, token
from connectors.mock.ebay.state import EbayMockState
from connectors.mock.kit.serving import Starter, running

TOKEN_PATH = "/identity/v1/oauth2/token"  # noqa: S105 - a path
# eBay gives a notification endpoint a few seconds to answer (exact timeout unconfirmed).
PUSH_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=3)


async def _session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=PUSH_TIMEOUT) as session:
        app[SESSION_KEY] = session
        buyers = fulfillment.run_buyers(app[STATE_KEY], session)
        async with running(buyers, "ebay-mock-buyers"):
            yield


def make_app(state: EbayMockState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_post(TOKEN_PATH, token)
    for module in (inventory, fulfillment, browse, notify, control):
        module.add_routes(app)
    app.cleanup_ctx.append(_session)
    return app


start = Starter(make_app, "ebay")
