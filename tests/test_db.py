"""The schema, migrations and column types behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from daemon.controls import health_of, record_health
from daemon.db.engine import COPY_MIN_ROWS, Database
from daemon.db.migrate import current_revision, head_revision, upgrade
from daemon.db.models import Action, Product
from domain.clock import ManualClock
from domain.errors import ChannelAuthError
from tests.conftest import POSTGRES_URL, _drop_postgres_database, _fresh_postgres_database
from tests.daemon_fixtures import channel_states


async def test_migrations_reach_head_and_are_idempotent(db: Database) -> None:
    """Upgrading twice leaves the database at the head revision."""
    assert await current_revision(db) == head_revision()
    before, after = await upgrade(db)
    assert before == after == head_revision()


async def test_migrations_match_the_models(db: Database) -> None:
    """The migrated schema equals the SQLModel metadata (no forgotten migration)."""
    async with db.read() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
        )
    # Money is a TypeDecorator whose DDL is chosen per dialect; type comparisons of it are noise.
    diff = [d for d in diff if not (isinstance(d, list) and d and d[0][0] == "modify_type")]
    assert diff == []


async def test_money_round_trips_exactly(db: Database) -> None:
    """A price stored and read back is the same Decimal, to the last digit."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with db.write() as conn:
        await conn.execute(
            sa.insert(Product.__table__),  # type: ignore[attr-defined]
            [
                {
                    "sku": "A",
                    "cost": Decimal("19.99"),
                    "min_price": Decimal("0.1"),
                    "tags": [],
                    "kit_components": {},
                    "created_at": now,
                    "updated_at": now,
                    "currency": "USD",
                }
            ],
        )
    async with db.read() as conn:
        row = (await conn.execute(sa.select(Product.__table__))).one()  # type: ignore[attr-defined]
    assert row.cost == Decimal("19.99")
    assert row.min_price == Decimal("0.1")
    assert row.created_at == now
    assert row.created_at.tzinfo is not None


async def test_naive_datetimes_are_refused(db: Database) -> None:
    """Times must be aware UTC; a naive one is a bug, not something to guess about."""
    with pytest.raises(sa.exc.StatementError):
        async with db.write() as conn:
            await conn.execute(
                sa.insert(Product.__table__),  # type: ignore[attr-defined]
                [
                    {
                        "sku": "A",
                        "tags": [],
                        "kit_components": {},
                        "currency": "USD",
                        "created_at": datetime(2026, 1, 1),
                        "updated_at": datetime(2026, 1, 1),
                    }
                ],
            )


async def test_sqlite_runs_in_wal_with_busy_timeout(sqlite_db: Database) -> None:
    """SQLite connections use WAL and wait for the writer instead of failing."""
    async with sqlite_db.read() as conn:
        mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        timeout = (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    assert mode == "wal"
    assert timeout is not None
    assert timeout >= 5000


def _action_row(sku: str, key: str, *, reason: str, created_at: datetime) -> dict[str, object]:
    return {
        "pass_id": "p1",
        "kind": "price",
        "channel": "amazon",
        "sku": sku,
        "status": "planned",
        "old_price": Decimal("10"),
        "new_price": Decimal("9.5"),
        "currency": "USD",
        "floor": Decimal("1.2345"),
        "ceiling": None,
        "old_quantity": None,
        "new_quantity": 2**31 - 1,
        "strategy": "buy_box",
        "rule": "rule 1",
        "reason": reason,
        "trace": [{"step": "offers", "verdict": "filtered", "detail": 'say "hi" \\ → −'}],
        "guard_verdicts": [],
        "idempotency_key": key,
        "attempts": 0,
        "created_at": created_at,
    }


@pytest.mark.parametrize(
    "reason",
    ["plain", 'quotes " and \\ and é → −', "a NUL \x00 inside", "emoji 🙂 and \t tab"],
)
async def test_bulk_inserts_store_what_row_by_row_inserts_store(db: Database, reason: str) -> None:
    """insert_many (one JSON statement per chunk on SQLite) stores every column exactly as a
    row-by-row insert does: money text, timestamps with and without microseconds, NULLs, big
    integers, JSON, and strings with quotes, backslashes, non-ASCII or NUL."""
    if "\x00" in reason and not db.is_sqlite:
        pytest.skip("PostgreSQL text cannot hold NUL at all")
    actions = Action.__table__  # type: ignore[attr-defined]
    times = [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 0, 0, 1234, tzinfo=UTC)]
    bulk = [
        _action_row(f"B{i}", f"kb{i}", reason=reason, created_at=t) for i, t in enumerate(times)
    ]
    # Enough rows for PostgreSQL's COPY path.
    bulk += [
        _action_row(f"P{i}", f"kp{i}", reason=reason, created_at=times[1])
        for i in range(COPY_MIN_ROWS)
    ]
    single = [
        _action_row(f"S{i}", f"ks{i}", reason=reason, created_at=t) for i, t in enumerate(times)
    ]
    async with db.write() as conn:
        await db.insert_many(conn, actions, bulk)
        for row in single:
            await conn.execute(sa.insert(actions), row)
    columns = [name for name in bulk[0] if name not in ("sku", "idempotency_key")]
    select = ", ".join(f'"{name}"' for name in columns)
    async with db.read() as conn:
        raw = (await conn.exec_driver_sql(f"SELECT sku, {select} FROM action ORDER BY id")).all()
        typed = (await conn.execute(sa.select(actions).order_by(actions.c.id))).all()
    stored = {row[0]: tuple(row[1:]) for row in raw}
    assert stored["B0"] == stored["S0"]
    assert stored["B1"] == stored["S1"]
    assert [(r.reason, r.trace, r.created_at, r.new_quantity) for r in typed[:2]] == [
        (reason, bulk[i]["trace"], times[i], 2**31 - 1) for i in range(2)
    ]


async def test_a_bulk_insert_is_part_of_the_callers_transaction(db: Database) -> None:
    """A big insert_many (COPY on PostgreSQL) is rolled back with the transaction around it."""
    actions = Action.__table__  # type: ignore[attr-defined]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        _action_row(f"R{i}", f"kr{i}", reason="r", created_at=at)
        for i in range(COPY_MIN_ROWS + 100)
    ]

    async def insert_then_fail() -> None:
        async with db.write() as conn:
            await db.insert_many(conn, actions, rows)
            raise RuntimeError("after the insert")

    with pytest.raises(RuntimeError):
        await insert_then_fail()
    async with db.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(actions))).scalar_one()
    assert count == 0


async def test_channel_health_moves_its_since_only_when_it_changes(
    db: Database, clock: ManualClock
) -> None:
    async def state() -> tuple[str | None, datetime | None]:
        rows = {r["channel"]: r for r in await channel_states(db)}
        return rows["amazon-us"]["health"], rows["amazon-us"]["health_since"]  # type: ignore[return-value]

    started = clock.now()
    await record_health(db, clock, channel="amazon-us", error=None)
    assert await state() == ("ok", started)
    clock.advance(60)
    await record_health(db, clock, channel="amazon-us", error=None)
    assert await state() == ("ok", started)
    clock.advance(60)
    await record_health(db, clock, channel="amazon-us", error="TransientChannelError: timeout")
    degraded_at = clock.now()
    assert await state() == ("degraded", degraded_at)
    clock.advance(60)
    refused = ChannelAuthError("invalid_grant")
    await record_health(
        db, clock, channel="amazon-us", error=str(refused), health=health_of(refused)
    )
    assert await state() == ("auth_failed", clock.now())


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (REPRICERD_TEST_POSTGRES_URL)")
async def test_replicas_may_upgrade_at_once() -> None:
    """Several replicas running `repricerd db upgrade` together: one migrates, all succeed."""
    url, name = await _fresh_postgres_database()
    replicas = [Database(url) for _ in range(4)]
    try:
        # Without the migration lock they deadlock on Alembic's DDL: fail, don't hang.
        results = await asyncio.wait_for(asyncio.gather(*(upgrade(r) for r in replicas)), 60)
        assert {after for _, after in results} == {head_revision()}
        assert sum(before is None for before, _ in results) >= 1
        assert await current_revision(replicas[0]) == head_revision()
    finally:
        for replica in replicas:
            await replica.dispose()
        await _drop_postgres_database(name)
