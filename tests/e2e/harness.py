"""The daemon of the end-to-end tests, wired as ``run_forever`` wires it: runtime, passes, inbox
and webhook route (without the scheduler: the test says when a periodic pass runs); ``run
--once`` in-process; and the small waits and posts the tests make against the mocks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import sqlalchemy as sa

from daemon.app import Passes, run_once
from daemon.config import load_config
from daemon.db.engine import Database
from daemon.db.models import Action
from daemon.inbox import InboxWorker
from daemon.logging import SecretRedactor
from daemon.runtime import Runtime
from daemon.server import ServerContext, start_server
from domain.clock import SystemClock

ACTIONS = Action.__table__  # type: ignore[attr-defined]


class Configured(Protocol):
    """A test environment: a daemon config file whose SQLite database is in ``tmp``."""

    @property
    def config(self) -> Path:
        """The daemon's YAML config."""
        ...

    @property
    def tmp(self) -> Path:
        """The folder of the daemon's ``repricerd.db``."""
        ...


async def daemon_once(env: Configured) -> int:
    """``repricerd run --once`` in-process: import, reconcile, reprice, stock sync."""
    config = load_config(env.config)
    return await run_once(config, SecretRedactor(config.secrets), SystemClock())


async def action_rows(env: Configured, **where: Any) -> list[Any]:
    """Action rows of the daemon's database matching column equality filters, oldest first."""
    db = Database(f"sqlite:///{env.tmp / 'repricerd.db'}")
    try:
        query = sa.select(ACTIONS).order_by(ACTIONS.c.id)
        for column, value in where.items():
            query = query.where(ACTIONS.c[column] == value)
        async with db.read() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await db.dispose()


async def open_actions(env: Configured) -> list[Any]:
    """Action rows still planned or sent."""
    return [r for r in await action_rows(env) if r.status in ("planned", "sent")]


class Daemon:
    """The daemon's runtime, passes, inbox and webhook route, as ``run_forever`` wires them
    (without the scheduler: the test says when a periodic pass runs)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.passes = Passes(rt)
        self.stock_passes: list[asyncio.Task[Any]] = []
        self.inbox = InboxWorker(
            rt, on_offer_change=lambda _c, _s: None, on_stock_change=self._stock_changed
        )
        self.server: Any = None

    def _stock_changed(self, skus: set[str]) -> None:
        self.stock_passes.append(
            asyncio.create_task(self.passes.run("stock_sync", (), frozenset(skus)))
        )

    async def serve(self, port: int = 0) -> int:
        """Start the daemon's HTTP server (webhooks, challenge) on ``port``; the port it took."""
        ctx = ServerContext(
            db=self.rt.db,
            metrics=self.rt.metrics,
            clock=self.rt.clock,
            channels=lambda: self.rt.channels,
            channel_errors=lambda: self.rt.channel_errors,
            webhook_max_bytes=lambda: self.rt.settings.server.webhook_max_bytes,
            sync_token=lambda: None,
            on_webhook_stored=self.inbox.wake,
            request_pass=self.passes.request,
            shutting_down=lambda: False,
        )
        self.server = await start_server(ctx, "127.0.0.1", port)
        taken: int = self.server.port
        return taken

    async def converge(self) -> None:
        """One reconcile, reprice and stock sync, as ``run --once`` does."""
        for name in ("reconcile", "reprice", "stock_sync"):
            await self.passes.run(name)

    async def close(self) -> None:
        """Stop the server, finish the inbox and stock passes, close the runtime."""
        if self.server is not None:
            await self.server.stop()
        await self.inbox.drain()
        await asyncio.gather(*self.stock_passes, return_exceptions=True)
        await self.rt.close()


async def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST JSON to a mock control route; (status, JSON answer)."""
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        answer: dict[str, Any] = await response.json()
        return response.status, answer


async def wait_for(predicate: Callable[[], bool], what: str) -> None:
    """Poll ``predicate`` until it holds (10 s at most: webhooks travel over real sockets)."""
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
