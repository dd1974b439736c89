"""The async database handle: one writer and a reader pool on SQLite, one pool on PostgreSQL.

SQLite allows one writer at a time. A deferred ``BEGIN`` that reads and then writes cannot upgrade
its lock while another writer holds it and fails with SQLITE_BUSY *without* honouring
busy_timeout, so every write transaction here starts with ``BEGIN IMMEDIATE`` on a single
dedicated writer connection: writes queue in-process instead of deadlocking. Readers use WAL
snapshots and never block the writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from daemon.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 10_000


def normalize_database_url(raw: str) -> URL:
    """Map the operator's URL (``sqlite:///x.db``, ``postgresql://...``) to an async driver."""
    try:
        url = make_url(raw)
    except sa.exc.ArgumentError as err:
        raise ConfigError(f"database: not a database URL: {raw!r}") from err
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    raise ConfigError(f"database: unsupported backend {backend!r} (use sqlite or postgresql)")


def redacted_url(url: URL | str) -> str:
    """Render a URL for logs with any password hidden."""
    return (
        make_url(url).render_as_string(hide_password=True)
        if isinstance(url, str)
        else (url.render_as_string(hide_password=True))
    )


class Database:
    """Async engine(s) with explicit read and write transactions."""

    def __init__(self, raw_url: str, *, echo: bool = False) -> None:
        self.url = normalize_database_url(raw_url)
        self.dialect_name = self.url.get_backend_name()
        if self.is_sqlite:
            database = self.url.database or ""
            if database in ("", ":memory:"):
                raise ConfigError("database: SQLite needs a file path (WAL needs a file)")
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            self._writer = create_async_engine(self.url, echo=echo, pool_size=1, max_overflow=0)
            self._reader = create_async_engine(self.url, echo=echo, pool_size=4, max_overflow=4)
            _configure_sqlite(self._writer, begin="BEGIN IMMEDIATE")
            _configure_sqlite(self._reader, begin="BEGIN")
        else:
            self._writer = create_async_engine(
                self.url, echo=echo, pool_size=5, max_overflow=5, pool_pre_ping=True
            )
            self._reader = self._writer

    @property
    def is_sqlite(self) -> bool:
        """True when the backend is SQLite."""
        return self.dialect_name == "sqlite"

    @property
    def writer_engine(self) -> AsyncEngine:
        """The engine that owns write transactions (migrations use it)."""
        return self._writer

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """Open a write transaction; commits on success, rolls back on error."""
        async with self._writer.begin() as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Open a read-only snapshot (a transaction that is rolled back)."""
        async with self._reader.connect() as conn:
            yield conn

    def insert(self, table: sa.Table) -> Any:
        """Return the dialect's INSERT, which has ``on_conflict_do_nothing`` / ``_do_update``."""
        if self.is_sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)

    async def serialize(self, conn: AsyncConnection, key: str) -> None:
        """Serialize transactions on ``key`` until commit (read-then-write on PostgreSQL).

        SQLite needs nothing: every write transaction already holds the one write lock
        (BEGIN IMMEDIATE). PostgreSQL runs READ COMMITTED, so two transactions that each read
        a total and then write a row derived from it would both read the old total.
        """
        if not self.is_sqlite:
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key}
            )

    async def lock_table_for_writes(self, conn: AsyncConnection, table: sa.Table) -> None:
        """Block other writers of ``table`` (readers go on) until this transaction ends."""
        if not self.is_sqlite:
            await conn.execute(sa.text(f'LOCK TABLE "{table.name}" IN EXCLUSIVE MODE'))

    async def ping(self) -> None:
        """Run ``SELECT 1`` (readiness)."""
        async with self.read() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


def _configure_sqlite(engine: AsyncEngine, *, begin: str) -> None:
    """Set pragmas on each new connection and take over transaction begin from pysqlite."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own implicit BEGIN is disabled so that ours (below) is the only one.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL survives application crashes (kill -9); only an OS crash or power loss
        # can roll back the last commits, and every write is idempotent to replay.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)
