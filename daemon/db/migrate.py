"""Apply Alembic migrations programmatically on the daemon's own writer connection."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from daemon.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"
# The advisory-lock key every replica takes around a migration ("rprcrdmg" as a bigint).
MIGRATION_LOCK_KEY = 0x7270726372646D67


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at our migrations, bound to ``connection`` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(db: Database) -> str | None:
    """The revision the database is at (``None`` if never migrated)."""
    async with db.read() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the schema; return (revision before, revision after).

    Safe to run from several replicas at once: on PostgreSQL the upgrade runs under a
    transaction-level advisory lock, so one replica migrates while the others wait and then
    find the schema already at ``revision`` (Alembic's DDL is transactional there). SQLite is
    single-process and its one writer already serializes this.
    """
    before = await current_revision(db)
    async with db.write() as conn:
        if not db.is_sqlite:
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))
    return before, await current_revision(db)
