"""The connectors' ``DailyLedger`` over the ``revision_budget`` table (migration 0007).

Every spend is one ``INSERT … ON CONFLICT (channel, listing_key, day) DO UPDATE SET revisions =
revisions + n [WHERE revisions + n <= cap] RETURNING revisions``: the check and the add are one
statement on one row, so two runs or replicas cannot both take a listing's last revision (on
PostgreSQL the second waits for the first's row lock and re-checks the cap; SQLite has one
writer). A spend that returns no row was refused by its cap. Rows of past days are pruned.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.base import Spend
from daemon.db.engine import Database
from daemon.db.models import RevisionBudget

BUDGET = RevisionBudget.__table__  # type: ignore[attr-defined]
# Days kept behind the newest one spent: yesterday's count still answers "what happened".
KEEP_DAYS = 2


class DatabaseLedger:
    """Daily counters in the daemon's database, shared by every run and replica."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._pruned: date | None = None  # the newest day whose older rows were deleted

    async def counts(self, channel: str, day: date, keys: Sequence[str]) -> dict[str, int]:
        """The count of each key on ``day`` (0 when nothing was spent)."""
        found: dict[str, int] = dict.fromkeys(keys, 0)
        if not keys:
            return found
        query = sa.select(BUDGET.c.listing_key, BUDGET.c.revisions).where(
            BUDGET.c.channel == channel,
            BUDGET.c.day == day,
            BUDGET.c.listing_key.in_(list(dict.fromkeys(keys))),
        )
        async with self.db.read() as conn:
            for key, revisions in (await conn.execute(query)).all():
                found[key] = revisions
        return found

    async def spend(self, channel: str, day: date, spends: Sequence[Spend]) -> list[bool]:
        """Apply each spend atomically against its cap, in one transaction; a key's spends in
        their order."""
        done = [False] * len(spends)
        if not spends:
            return done
        # Rows are locked in key order (a stable sort keeps each key's own spends in order):
        # two transactions spending the same listings in different orders would deadlock on
        # PostgreSQL.
        order = sorted(range(len(spends)), key=lambda i: spends[i].key)
        async with self.db.write() as conn:
            await self._prune(conn, day)
            for i in order:
                done[i] = await self._spend_one(conn, channel, day, spends[i])
        return done

    async def _spend_one(self, conn: AsyncConnection, channel: str, day: date, item: Spend) -> bool:
        if item.cap is not None and item.n > item.cap:
            return False  # not even a first spend fits
        stmt = self.db.insert(BUDGET).values(
            channel=channel, listing_key=item.key, day=day, revisions=item.n
        )
        total = BUDGET.c.revisions + stmt.excluded.revisions
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel", "listing_key", "day"],
            set_={"revisions": total},
            where=None if item.cap is None else total <= item.cap,
        ).returning(BUDGET.c.revisions)
        return (await conn.execute(stmt)).first() is not None

    async def raise_to(self, channel: str, day: date, key: str, count: int) -> None:
        """Make the key's count on ``day`` at least ``count``."""
        stmt = self.db.insert(BUDGET).values(
            channel=channel, listing_key=key, day=day, revisions=count
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel", "listing_key", "day"],
            set_={"revisions": stmt.excluded.revisions},
            where=BUDGET.c.revisions < stmt.excluded.revisions,
        )
        async with self.db.write() as conn:
            await conn.execute(stmt)

    async def _prune(self, conn: AsyncConnection, day: date) -> None:
        """Delete rows older than ``KEEP_DAYS`` before ``day``, once per new day per process."""
        if self._pruned is not None and day <= self._pruned:
            return
        self._pruned = day
        await conn.execute(sa.delete(BUDGET).where(BUDGET.c.day < day - timedelta(days=KEEP_DAYS)))
