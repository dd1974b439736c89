"""The mock eBay application: OAuth, Sell Inventory, Fulfillment (getOrders), Browse,
Notification, control routes.

``make_app(state)`` builds the aiohttp application; ``start(state)`` serves it on loopback for
tests and the demo and returns the runner (clean it up) and the base URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from connectors.mock.ebay import browse, control, fulfillment, inventory, notify
from connectors.mock.ebay.auth import SESSION_KEY, STATE_KEY, token
from connectors.mock.ebay.orders import run_buyers
from connectors.mock.ebay.state import EbayMockState
from connectors.mock.kit.serving import Starter, running

log = structlog.get_logger(__name__)

TOKEN_PATH = "/identity/v1/oauth2/token"  # noqa: S105 - a path
# eBay gives a notification endpoint a few seconds to answer (exact timeout unconfirmed).
PUSH_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=3)


async def _session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=PUSH_TIMEOUT) as session:
        app[SESSION_KEY] = session
        async with running(run_buyers(app[STATE_KEY], session), "ebay-mock-buyers"):
            yield


def make_app(state: EbayMockState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application()
    app[STATE_KEY] = state
    app.router.add_post(TOKEN_PATH, token)
    inventory.add_routes(app)
    fulfillment.add_routes(app)
    browse.add_routes(app)
    notify.add_routes(app)
    control.add_routes(app)
    app.cleanup_ctx.append(_session)
    return app


start = Starter(make_app, "ebay")
