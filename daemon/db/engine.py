"""The async database handle: one writer and a reader pool on SQLite, one pool on PostgreSQL.

SQLite allows one writer at a time. A deferred ``BEGIN`` that reads and then writes cannot upgrade
its lock while another writer holds it and fails with SQLITE_BUSY *without* honouring
busy_timeout, so every write transaction here starts with ``BEGIN IMMEDIATE`` on a single
dedicated writer connection: writes queue in-process instead of deadlocking. Readers use WAL
snapshots and never block the writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from domain.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 10_000
# From this many rows, PostgreSQL inserts go through COPY (cheaper than a batched INSERT).
COPY_MIN_ROWS = 500


def _json_dumps(value: Any) -> str:
    # orjson: ~8x faster than json for the trace and offer columns written 100,000 at a time.
    return orjson.dumps(value, default=str).decode()


_JSON_CODEC: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


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
        # Compiled bulk statements, reused pass after pass (a compile costs milliseconds).
        self._inserts: dict[tuple[str, tuple[str, ...]], sa.Insert] = {}
        self._compiled: dict[
            sa.Insert | sa.Update, tuple[str, tuple[str, ...], tuple[Any, ...]]
        ] = {}
        self.dialect_name = self.url.get_backend_name()
        if self.is_sqlite:
            database = self.url.database or ""
            if database in ("", ":memory:"):
                raise ConfigError("database: SQLite needs a file path (WAL needs a file)")
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            # Only write() checks the writer out, and engine.begin() always ends its transaction
            # (commit or rollback) before the connection goes back: the pool's own rollback on
            # return would be one more round trip to aiosqlite's thread per write transaction.
            self._writer = create_async_engine(
                self.url,
                echo=echo,
                pool_size=1,
                max_overflow=0,
                pool_reset_on_return=None,
                **_JSON_CODEC,
            )
            self._reader = create_async_engine(
                self.url, echo=echo, pool_size=4, max_overflow=4, **_JSON_CODEC
            )
            _configure_sqlite(self._writer, begin="BEGIN IMMEDIATE")
            _configure_sqlite(self._reader, begin="BEGIN")
        else:
            self._writer = create_async_engine(
                self.url, echo=echo, pool_size=5, max_overflow=5, pool_pre_ping=True, **_JSON_CODEC
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

    async def insert_many(
        self, conn: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert many rows that share one set of keys (action rows, offer snapshots)."""
        if not rows:
            return
        if not self.is_sqlite and len(rows) >= COPY_MIN_ROWS:
            await self._copy(conn, table, rows)
            return
        key = (table.name, tuple(rows[0]))
        statement = self._inserts.get(key)
        if statement is None:
            values = {name: sa.bindparam(name, type_=table.c[name].type) for name in key[1]}
            statement = self._inserts[key] = sa.insert(table).values(values)
        await self.execute_many(conn, statement, rows)

    async def _copy(
        self, conn: AsyncConnection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """PostgreSQL's COPY for a big batch: no SQL to parse per row, binary values.

        Each column is converted with its bind processor, as an INSERT would (JSON encoded,
        money checked), column by column. The adapter begins its transaction at the first
        statement, so one is run first: the COPY must be part of the caller's transaction.
        """
        dialect = conn.dialect
        names = tuple(rows[0])
        columns = []
        for name in names:
            processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            values = [row[name] for row in rows]
            columns.append(list(map(_repeat_aware(processor), values)) if processor else values)
        await conn.exec_driver_sql("SELECT 1")
        raw = await conn.get_raw_connection()
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            table.name, records=list(zip(*columns, strict=True)), columns=names
        )

    async def execute_many(
        self,
        conn: AsyncConnection,
        statement: sa.Insert | sa.Update,
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """Run one INSERT/UPDATE for many parameter sets (the 100,000-row paths).

        PostgreSQL takes Core's batched executemany. On SQLite, Core builds the parameters row
        by row (~40 µs for a 20-column action row, three times SQLite's own cost), so the
        statement is compiled once here and the parameters are converted column by column with
        each bind's own type processor, then handed to the driver as positional tuples.
        """
        if not rows:
            return
        if not self.is_sqlite:
            await conn.execute(statement, list(rows))
            return
        plan = self._compiled.get(statement)
        if plan is None:
            compiled = statement.compile(dialect=conn.dialect)
            names = tuple(compiled.positiontup or ())
            # The dialect's implementation of each type, as a row-by-row insert uses it (the
            # generic one leaves, e.g., datetimes to the driver, which formats them otherwise).
            processors = tuple(
                compiled.binds[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
                for name in names
            )
            plan = self._compiled[statement] = (compiled.string, names, processors)
        sql, names, processors = plan
        columns = []
        for name, processor in zip(names, processors, strict=True):
            values = [row[name] for row in rows]
            columns.append(list(map(_repeat_aware(processor), values)) if processor else values)
        await conn.exec_driver_sql(sql, list(zip(*columns, strict=True)))

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

    async def ping_writable(self) -> None:
        """Open a write transaction and end it (readiness: can a webhook be stored now?).

        On SQLite that takes the one write lock (``BEGIN IMMEDIATE``), which a read-only file
        or a stuck writer refuses; PostgreSQL is asked whether it would accept writes (a
        standby or a read-only default would not).
        """
        async with self.write() as conn:
            if self.is_sqlite:
                await conn.execute(sa.text("SELECT 1"))
                return
            read_only = (await conn.execute(sa.text("SHOW transaction_read_only"))).scalar_one()
            if read_only != "off":
                raise RuntimeError("the database accepts no writes (transaction_read_only)")

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self._writer.dispose()
        if self._reader is not self._writer:
            await self._reader.dispose()


def _repeat_aware(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Wrap a bind processor so a value repeated down a column (a pass's timestamp, its id)
    is converted once."""
    last_in: Any = object()
    last_out: Any = None

    def convert(value: Any) -> Any:
        nonlocal last_in, last_out
        if value is not last_in:
            last_in, last_out = value, processor(value)
        return last_out

    return convert


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
