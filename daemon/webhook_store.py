"""Durable inbox writes with group commit: many concurrent deliveries, one transaction.

Every webhook must be committed before it is acknowledged, and a commit per delivery caps
ingest at what one writer can commit per second (on SQLite, ~700/s here). Deliveries that
arrive while a commit is in flight wait for the next one and are written together, so the cost
of a commit is shared and each handler still answers only after *its* row is durable. A failed
transaction fails every delivery in it (each sender gets a 503 and retries); none is
acknowledged without its row.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.db.engine import Database
from daemon.db.models import WebhookEvent
from daemon.event_checks import printable

INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
# One statement's worth of deliveries (bound parameters stay far below SQLite's limit).
MAX_GROUP = 500
DEDUPE_KEY_LENGTH, TOPIC_LENGTH = 200, 100  # webhook_event's columns
_COLUMNS = ("channel", "dedupe_key", "topic", "payload", "received_at")


@dataclass(frozen=True, slots=True)
class InboxRow:
    """One verified delivery, ready to be stored."""

    channel: str
    dedupe_key: str
    topic: str
    payload: str
    received_at: datetime


def storable(row: InboxRow) -> InboxRow:
    """``row`` with a delivery id and topic every database accepts.

    Both come from the sender's signed document and may be any JSON string: one over its
    column's width, or with a NUL byte, would fail on PostgreSQL the whole group it is committed
    with, and the sender would retry it for ever. An odd id is replaced by its digest, so a
    redelivery still finds its twin; an odd topic is escaped and cut (no connector knows it).
    """
    key, topic = row.dedupe_key, row.topic
    if len(key) > DEDUPE_KEY_LENGTH or printable(key) != key:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        key = f"sha256:{digest}"
    topic = printable(topic)[:TOPIC_LENGTH]
    if (key, topic) == (row.dedupe_key, row.topic):
        return row
    return replace(row, dedupe_key=key, topic=topic)


class WebhookStore:
    """Writes inbox rows in groups; ``store`` returns once the row (or its twin) is committed."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[tuple[InboxRow, asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.commits = 0  # transactions run, for the bench and tests
        self._sqlite_sql: tuple[str, str, str] | None = None
        self._time_processor: Callable[[Any], Any] | None = None

    async def store(self, row: InboxRow) -> bool:
        """Commit ``row``; True if it is new, False if that delivery was already stored."""
        row = storable(row)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush(), name="webhook-group-commit")
        return await asyncio.shield(future)  # a client hanging up must not undo a commit

    async def _flush(self) -> None:
        while self._queue:
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            try:
                stored = await self._write([row for row, _ in group])
            except Exception as err:
                for _, future in group:
                    if not future.done():
                        future.set_exception(err)
                continue
            seen: set[tuple[str, str]] = set()
            for row, future in group:
                key = (row.channel, row.dedupe_key)
                # The first of twins in one group is the one that was stored.
                new = key in stored and key not in seen
                seen.add(key)
                if not future.done():
                    future.set_result(new)

    async def _write(self, rows: list[InboxRow]) -> set[tuple[str, str]]:
        unique: dict[tuple[str, str], InboxRow] = {}
        for row in rows:
            unique.setdefault((row.channel, row.dedupe_key), row)
        values = [
            {
                "channel": row.channel,
                "dedupe_key": row.dedupe_key,
                "topic": row.topic,
                "payload": row.payload,
                "received_at": row.received_at,
            }
            for row in unique.values()
        ]
        async with self.db.write() as conn:
            if self.db.is_sqlite:
                result = await self._insert_sqlite(conn, values)
            else:
                result = await conn.execute(
                    self.db.insert(INBOX)
                    .values(values)
                    .on_conflict_do_nothing(index_elements=["channel", "dedupe_key"])
                    .returning(INBOX.c.channel, INBOX.c.dedupe_key)
                )
            stored = {(channel, key) for channel, key in result.all()}
        self.commits += 1
        return stored

    async def _insert_sqlite(self, conn: AsyncConnection, values: list[dict[str, Any]]) -> Any:
        """The same INSERT … ON CONFLICT DO NOTHING RETURNING, its SQL written once.

        Building a multi-row INSERT through SQLAlchemy costs a compilation (or a cache key over
        every value) per group: at 1,500 deliveries/s that was a large share of the daemon's
        CPU. The one-row statement is compiled once and its VALUES group repeated.
        """
        if self._sqlite_sql is None:
            one = (
                self.db.insert(INBOX)
                .values({name: sa.bindparam(name, type_=INBOX.c[name].type) for name in _COLUMNS})
                .on_conflict_do_nothing(index_elements=["channel", "dedupe_key"])
                .returning(INBOX.c.channel, INBOX.c.dedupe_key)
                .compile(dialect=conn.dialect)
            )
            group = "(" + ", ".join("?" for _ in _COLUMNS) + ")"
            head, found, tail = one.string.partition(f"VALUES {group}")
            if not found or tuple(one.positiontup or ()) != _COLUMNS:
                raise RuntimeError(f"unexpected compiled inbox insert: {one.string}")
            convert = one.binds["received_at"].type.dialect_impl(conn.dialect)
            self._sqlite_sql = (head + "VALUES ", group, tail)
            self._time_processor = convert.bind_processor(conn.dialect)
        head, group, tail = self._sqlite_sql
        sql = head + ", ".join([group] * len(values)) + tail
        params: list[Any] = []
        for value in values:
            when = value["received_at"]
            params += [
                value["channel"],
                value["dedupe_key"],
                value["topic"],
                value["payload"],
                self._time_processor(when) if self._time_processor else when,
            ]
        return await conn.exec_driver_sql(sql, tuple(params))

    async def close(self) -> None:
        """Wait for the group in flight (shutdown)."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
