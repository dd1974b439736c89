"""Application keys of the mock Walmart server and its runtime (HTTP session, pending pushes)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from connectors.mock.walmart.state import WalmartMockState


@dataclass
class Runtime:
    """What lives only while the app runs: the webhook HTTP session and in-flight deliveries."""

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


STATE_KEY = web.AppKey("walmart_mock_state", WalmartMockState)
RUNTIME_KEY = web.AppKey("walmart_mock_runtime", Runtime)
