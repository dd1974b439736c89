"""The mock SP-API application: LWA, Listings Items, Feeds, Product Pricing v0, Orders v0,
notifications.

``make_app(state)`` builds the aiohttp application; ``start(state)`` serves it on loopback for
tests and the demo and returns the runner (clean it up) and the base URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import structlog
from aiohttp import web

from connectors.mock.amazon import control, feeds, listings, orders, pricing, reports
from connectors.mock.amazon.auth import SESSION_KEY, STATE_KEY, token
from connectors.mock.amazon.feedproc import advance_feeds
from connectors.mock.amazon.notify import ANY_OFFER_CHANGED, build, deliver
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.kit.serving import Starter, running

log = structlog.get_logger(__name__)

TICK_S = 0.25  # how often (real time) the background ticker looks at feeds and notifications


async def tick(state: AmazonMockState, session: aiohttp.ClientSession, last_push: float) -> float:
    """One ticker step: advance feeds; push ANY_OFFER_CHANGED if the interval has passed.

    Returns the monotonic time of the last periodic push.
    """
    advance_feeds(state)
    interval = state.notify_interval_s
    now = state.clock.monotonic()
    if interval is None or now - last_push < interval:
        return last_push
    if state.webhook_url and state.market.listings:
        listing = state.rng.choice(list(state.market.listings.values()))
        await deliver(state, session, listing.sku, build(state, listing, ANY_OFFER_CHANGED))
    return now


async def _ticker(app: web.Application) -> None:
    state = app[STATE_KEY]
    last_push = state.clock.monotonic()
    while True:
        await asyncio.sleep(TICK_S)
        last_push = await tick(state, app[SESSION_KEY], last_push)


async def _background(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[SESSION_KEY] = session
        async with running(_ticker(app), "amazon-mock-ticker"):
            yield


def make_app(state: AmazonMockState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # feed documents can be large
    app[STATE_KEY] = state
    app.router.add_post("/auth/o2/token", token)
    listings.add_routes(app)
    feeds.add_routes(app)
    pricing.add_routes(app)
    orders.add_routes(app)
    reports.add_routes(app)
    control.add_routes(app)
    app.cleanup_ctx.append(_background)
    return app


start = Starter(make_app, "amazon")
