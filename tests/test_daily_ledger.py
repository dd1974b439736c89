"""The connectors' daily ledger in the database (revision_budget): atomic capped spends shared
by separate handles (runs, replicas), raise_to, and pruning of old days; on both engines."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import sqlalchemy as sa

from connectors.base import Spend
from daemon.daily_ledger import BUDGET, KEEP_DAYS, DatabaseLedger
from daemon.db.engine import Database

DAY = date(2026, 3, 2)


async def test_spends_add_up_and_stop_at_their_cap(db: Database) -> None:
    ledger = DatabaseLedger(db)
    assert await ledger.spend("ebay", DAY, [Spend("L1", 1, 3)] * 4) == [True, True, True, False]
    assert await ledger.spend("ebay", DAY, [Spend("L1", 2, 5), Spend("L1", 1, 5)]) == [True, False]
    assert await ledger.spend("ebay", DAY, [Spend("L1", -1), Spend("L2", 9, 8)]) == [True, False]
    assert await ledger.counts("ebay", DAY, ["L1", "L2"]) == {"L1": 4, "L2": 0}
    # Another channel, another day: counted apart.
    await ledger.spend("other", DAY, [Spend("L1")])
    await ledger.spend("ebay", DAY + timedelta(days=1), [Spend("L1")])
    assert await ledger.counts("ebay", DAY, ["L1"]) == {"L1": 4}
    assert await ledger.counts("other", DAY, ["L1"]) == {"L1": 1}


async def test_raise_to_only_raises(db: Database) -> None:
    ledger = DatabaseLedger(db)
    await ledger.spend("ebay", DAY, [Spend("L1", 7)])
    await ledger.raise_to("ebay", DAY, "L1", 5)
    await ledger.raise_to("ebay", DAY, "L2", 250)
    assert await ledger.counts("ebay", DAY, ["L1", "L2"]) == {"L1": 7, "L2": 250}
    await ledger.raise_to("ebay", DAY, "L1", 250)
    assert await ledger.counts("ebay", DAY, ["L1"]) == {"L1": 250}
    assert await ledger.spend("ebay", DAY, [Spend("L1", 1, 250)]) == [False]


async def test_two_handles_cannot_both_take_the_last_revision(db: Database) -> None:
    """Two database handles (two processes or replicas) race for a listing's last revisions:
    together they take exactly what the cap leaves, never more."""
    other = Database(db.url.render_as_string(hide_password=False))
    try:
        first, second = DatabaseLedger(db), DatabaseLedger(other)
        await first.spend("ebay", DAY, [Spend("L1", 17)])
        results = await asyncio.gather(
            *(ledger.spend("ebay", DAY, [Spend("L1", 1, 20)]) for ledger in [first, second] * 5)
        )
        assert sorted(ok for [ok] in results) == [False] * 7 + [True] * 3
        assert await second.counts("ebay", DAY, ["L1"]) == {"L1": 20}
    finally:
        await other.dispose()


async def test_mixed_spends_answer_in_their_own_order(db: Database) -> None:
    """Spends are applied in key order (no deadlock between replicas) but answered in the
    order given, each key's own spends in sequence."""
    ledger = DatabaseLedger(db)
    spends = [Spend("B", 1, 1), Spend("A", 2, 2), Spend("B", 1, 1), Spend("A", 1, 2)]
    assert await ledger.spend("ebay", DAY, spends) == [True, True, False, False]
    assert await ledger.counts("ebay", DAY, ["A", "B"]) == {"A": 2, "B": 1}


async def test_old_days_are_pruned_on_a_new_days_first_spend(db: Database) -> None:
    ledger = DatabaseLedger(db)
    for back in range(5):
        await DatabaseLedger(db).spend("ebay", DAY - timedelta(days=back), [Spend("L1")])
    await ledger.spend("ebay", DAY + timedelta(days=1), [Spend("L1")])
    async with db.read() as conn:
        days = sorted((await conn.execute(sa.select(BUDGET.c.day))).scalars())
    first_kept = DAY + timedelta(days=1) - timedelta(days=KEEP_DAYS)
    assert days == [first_kept + timedelta(days=n) for n in range(KEEP_DAYS + 1)]
