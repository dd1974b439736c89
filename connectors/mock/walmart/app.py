"""The mock Walmart Marketplace (US) application: token, price, inventory, feeds, items,
insights, orders, notifications, and the ``/_mock`` control routes.

``make_app(state)`` builds the aiohttp application; ``start(state)`` serves it on loopback for
tests and the demo and returns the runner (clean it up) and the base URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from connectors.mock.kit.serving import Starter, running
from connectors.mock.walmart import control, endpoints, purchases  # noqa: F401
from connectors.mock.walmart.events import dispatch
from connectors.mock.walmart.feeds import advance_feeds
from connectors.mock.walmart.gate import token, walmart
from connectors.mock.walmart.offers import buy_box_changed, competitors_move
from connectors.mock.walmart.state import RUNTIME_KEY, STATE_KEY, Runtime, WalmartMockState
from connectors.mock.walmart.wire import ROUTES

TICK_S = 0.25  # how often (real time) the background ticker looks at feeds and notifications


def tick(app: web.Application, last_push: float) -> float:
    """One ticker step: advance feeds; move competitors + BUY_BOX_CHANGED when due.

    Returns the monotonic time of the last periodic push.
    """
    state = app[STATE_KEY]
    advance_feeds(app)
    interval = state.notify_interval_s
    now = state.clock.monotonic()
    if interval is None or now - last_push < interval or not state.market.listings:
        return last_push
    listing = state.rng.choice(list(state.market.listings.values()))
    events = competitors_move(state, listing)
    if not events:
        event = buy_box_changed(state, listing)
        events = [event] if event is not None else []
    dispatch(app, events)
    return now


async def _ticker(app: web.Application) -> None:
    last_push = app[STATE_KEY].clock.monotonic()
    while True:
        await asyncio.sleep(TICK_S)
        last_push = tick(app, last_push)


async def _background(app: web.Application) -> AsyncIterator[None]:
    runtime = app[RUNTIME_KEY]
    async with aiohttp.ClientSession() as session:
        runtime.session = session
        async with running(_ticker(app), "walmart-mock-ticker"):
            yield
        await runtime.settle()
        runtime.session = None


def make_app(state: WalmartMockState) -> web.Application:
    """The aiohttp application serving ``state``."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # feed files can be large
    app[STATE_KEY] = state
    app[RUNTIME_KEY] = Runtime()
    app.router.add_post("/v3/token", token)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, walmart(route))
    control.add_routes(app)
    app.cleanup_ctx.append(_background)
    return app


start = Starter(make_app, "walmart")
