"""Shared fixtures: a migrated database on SQLite and PostgreSQL, and a manual clock."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import create_async_engine

from daemon.db.engine import Database, normalize_database_url
from daemon.db.migrate import upgrade
from domain.clock import ManualClock

POSTGRES_ENV = "REPRICERD_TEST_POSTGRES_URL"
POSTGRES_URL = os.environ.get(POSTGRES_ENV)


@pytest.fixture
def clock() -> ManualClock:
    """A clock that only moves when the test says so."""
    return ManualClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


async def _fresh_postgres_database() -> tuple[str, str]:
    """Create an empty database next to the configured one; return (url, name)."""
    assert POSTGRES_URL
    base = normalize_database_url(POSTGRES_URL)
    name = f"repricerd_t_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False), name


async def _drop_postgres_database(name: str) -> None:
    assert POSTGRES_URL
    admin = create_async_engine(normalize_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgres",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    not POSTGRES_URL,
                    reason=f"{POSTGRES_ENV} is not set (CI sets it to the local PostgreSQL)",
                ),
            ],
        ),
    ]
)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database: every DB test runs on SQLite and on PostgreSQL."""
    dropped: str | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'repricerd.db'}"
    else:
        url, dropped = await _fresh_postgres_database()
    database = Database(url)
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()
        if dropped:
            await _drop_postgres_database(dropped)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database, for tests about SQLite itself or the daemon on its default."""
    database = Database(f"sqlite:///{tmp_path / 'repricerd.db'}")
    await upgrade(database)
    try:
        yield database
    finally:
        await database.dispose()


# Loggers the daemon's logging setup quiets; a test that runs it must give their levels back.
NOISY_LOGGERS = ("apscheduler", "aiohttp.access", "alembic", "httpx", "httpcore", "x")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put structlog and stdlib logging back exactly as they were (CLI commands and in-process
    daemons configure them). Autouse: a test that left the level at warning would hide the info
    events a later test's ``capture_logs`` expects."""
    saved_structlog = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    structlog.configure(**saved_structlog)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
