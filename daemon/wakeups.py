"""Waking a channel's owner across replicas: PostgreSQL LISTEN/NOTIFY on ``repricerd_inbox``.

Any replica verifies and stores a webhook (the inbox is shared and deduplicated); the channel's
owner may be another process. The storing replica sends ``NOTIFY repricerd_inbox, '<channel>'``
and every replica listens on a dedicated connection; the owner wakes its inbox worker. A
notification lost (the listener reconnecting, a replica restarting) costs latency only: the
periodic inbox sweep drains every owned channel anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Final

import asyncpg  # type: ignore[import-untyped]
import structlog

from daemon.db.engine import Database

NOTIFY_CHANNEL: Final = "repricerd_inbox"
RECONNECT_S: Final = 2.0
log = structlog.get_logger("repricerd.wakeups")


def asyncpg_dsn(db: Database) -> str:
    """The database URL as asyncpg's ``connect`` takes it (no SQLAlchemy driver suffix)."""
    return db.url.set(drivername="postgresql").render_as_string(hide_password=False)


class InboxWakeups:
    """One dedicated connection per replica: listens for wake-ups and sends them, coalesced."""

    def __init__(self, db: Database, on_wake: Callable[[str], None]) -> None:
        self.dsn = asyncpg_dsn(db)
        self.on_wake = on_wake
        self.received = 0  # notifications heard (tests, metrics)
        self._conn: Any = None
        self._pending: set[str] = set()
        self._flushing: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Connect and listen in the background (reconnecting); returns once listening or
        after one failed attempt (the sweep covers the gap)."""
        self._task = asyncio.create_task(self._listen(), name="inbox-wakeups")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.received += 1
        self.on_wake(payload)

    async def _listen(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
                closed = asyncio.Event()
                try:
                    conn.add_termination_listener(lambda _conn, ev=closed: ev.set())
                    await conn.add_listener(NOTIFY_CHANNEL, self._heard)
                    self._conn = conn
                    self._ready.set()
                    await closed.wait()
                finally:
                    self._conn = None
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("inbox_listener_failed", error=str(err).splitlines()[0][:200])
            self._ready.set()  # start() waits for the first attempt only
            await asyncio.sleep(RECONNECT_S)

    def notify(self, channel: str) -> None:
        """Tell the replicas (the owner among them) that ``channel`` has new inbox rows."""
        self._pending.add(channel)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="inbox-notify")

    async def _flush(self) -> None:
        while self._pending:
            channels, self._pending = sorted(self._pending), set()
            conn = self._conn
            if conn is None:
                return  # not connected: the owner's sweep finds the rows
            try:
                for channel in channels:
                    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, channel)
            except Exception as err:
                log.warning("inbox_notify_failed", error=str(err).splitlines()[0][:200])
                return

    async def close(self) -> None:
        """Stop listening and close the connection."""
        for task in (self._flushing, self._task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
