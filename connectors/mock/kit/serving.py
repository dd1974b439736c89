"""Serving a mock marketplace's aiohttp app on loopback, and its background work: a ticker, the
HTTP session its pushes go out on and the deliveries under way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
import structlog
from aiohttp import web

from connectors.mock.market import MockMarket

log = structlog.get_logger(__name__)


class Served(Protocol):
    """A mock's state, as serving it needs: its market (the log line counts its listings)."""

    market: MockMarket


S = TypeVar("S", bound=Served)


async def serve_app(
    app: web.Application, host: str, port: int, *, kind: str, listings: int
) -> tuple[web.AppRunner, str]:
    """Listen on ``host:port`` (0 = any free port); return the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    base_url = f"http://{host}:{runner.addresses[0][1]}"
    log.info(f"{kind}_mock.started", base_url=base_url, listings=listings)
    return runner, base_url


@dataclass(frozen=True)
class Starter(Generic[S]):
    """A mock's ``start(state, host, port)``: build its app for ``state`` and serve it."""

    make_app: Callable[[S], web.Application]
    kind: str

    async def __call__(
        self, state: S, host: str = "127.0.0.1", port: int = 0
    ) -> tuple[web.AppRunner, str]:
        """Serve ``state`` on ``host:port`` (0 = any free port); return the runner and base URL."""
        app = self.make_app(state)
        return await serve_app(app, host, port, kind=self.kind, listings=len(state.market.listings))


@contextlib.asynccontextmanager
async def running(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """Run ``work`` as a task while the block runs (a mock's ticker or shoppers); then cancel it."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ticker(
    period_s: float | None, tick: Callable[[float], Awaitable[float]], last: float
) -> None:
    """Call ``tick(last)`` every ``period_s`` of real time, ``last`` being what the previous call
    returned (when the mock last pushed); None: never (a test on a manual clock calls ``tick``)."""
    while period_s is not None:
        await asyncio.sleep(period_s)
        last = await tick(last)


@dataclass
class Runtime:
    """What lives only while a mock's app runs: its pushes' HTTP session, deliveries under way."""

    session: aiohttp.ClientSession | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a delivery in the background (API answers never wait for the webhook target)."""
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settle(self) -> None:
        """Wait until every delivery started so far (and those they start) has finished."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
