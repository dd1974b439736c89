"""The mock SP-API application: LWA, Listings Items, Feeds, Product Pricing v0, Orders v0,
notifications; ``start(state)`` serves it on loopback and returns the runner and base URL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from connectors.mock.amazon import control, listings, orders, pricing
from connectors.mock.amazon.auth import ROUTES, token
from connectors.mock.amazon.feeds import advance_feeds, s3_download, s3_upload
from connectors.mock.amazon.notify import any_offer_changed, deliver
from connectors.mock.amazon.state import SESSION_KEY, STATE_KEY, AmazonMockState
from connectors.mock.kit.serving import Starter, running

_ = (listings, orders, pricing)  # imported for the SP-API routes they register


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


async def _ticker(app: web.Application, period_s: float) -> None:
    state = app[STATE_KEY]
    last_push = state.clock.monotonic()
    while True:
        await asyncio.sleep(period_s)
        last_push = await tick(state, app[SESSION_KEY], last_push)


async def _background(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        app[SESSION_KEY] = session
        period_s = app[STATE_KEY].ticker_s
        if period_s is None:
            yield
            return
        async with running(_ticker(app, period_s), "amazon-mock-ticker"):
            yield


def make_app(state: AmazonMockState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # feed documents can be large
    app[STATE_KEY] = state
    app.router.add_post("/auth/o2/token", token)
    for method, path, route in ROUTES:
        app.router.add_route(method, path, route)
    app.router.add_put("/_s3/upload/{documentId}", s3_upload)
    app.router.add_get("/_s3/download/{documentId}", s3_download)
    control.add_routes(app)
    app.cleanup_ctx.append(_background)
    return app


start = Starter(make_app, "amazon")
