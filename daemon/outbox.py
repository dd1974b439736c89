"""The single write path: action rows are intents first, then sent, then completed in place.

Every price or quantity change is inserted as a ``planned`` action with an idempotency key
*before* any marketplace call. The dispatcher marks a batch ``sent`` (committed) before calling
the channel and writes each outcome onto the same rows afterwards. A crash between the two
leaves ``sent`` rows that start-up re-drives with the same keys, so the marketplace sees a retry,
never a second, different write.

Each round: ``PlannedWrite``s in (``record``), the newest open intent per listing read back as
``ClaimedWrite``s and claimed, ``daemon.push.push`` calls the channel, and
``daemon.push.record_outcomes`` writes each result onto its row.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.base import Channel
from daemon import action_status
from daemon.controls import write_block_reason
from daemon.db.engine import Database
from daemon.db.models import Action, ActionKind, ActionStatus, Listing
from daemon.intents import CLAIMED_COLUMNS, ClaimedWrite, PlannedWrite, claimed
from daemon.metrics import Metrics
from daemon.pass_gate import awaiting_verdict
from daemon.push import push, record_outcomes
from daemon.reports import DispatchReport
from domain.clock import Clock

ACTIONS = Action.__table__  # type: ignore[attr-defined]
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
INSERT_CHUNK = 5000
log = structlog.get_logger("repricerd.outbox")


def unfenced(_channel: str) -> Any:
    """No lease fence: one process owns every channel (SQLite, tests)."""
    return None


class Outbox:
    """Records intents and drives them through a channel; one dispatcher per (channel, kind)."""

    def __init__(self, db: Database, clock: Clock, metrics: Metrics) -> None:
        self.db = db
        self.clock = clock
        self.metrics = metrics
        # channel → the lease fence ANDed into every claim and completion (several replicas).
        self.fence: Callable[[str], sa.ColumnElement[bool] | None] = unfenced
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def record(
        self,
        writes: Sequence[PlannedWrite],
        also: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> int:
        """Insert action rows (intents, blocked or held decisions) with set-based inserts.

        ``also`` runs in the same transaction (e.g. remembering each listing's last decision).
        """
        if not writes and also is None:
            return 0
        async with self.db.write() as conn:
            for start in range(0, len(writes), INSERT_CHUNK):
                await self._insert(conn, writes[start : start + INSERT_CHUNK])
            if also is not None:
                await also(conn)
        self._count_recorded(writes)
        return len(writes)

    async def _insert(self, conn: AsyncConnection, writes: Sequence[PlannedWrite]) -> None:
        await self.db.insert_many(conn, ACTIONS, [write.insert_row() for write in writes])

    def _count_recorded(self, writes: Sequence[PlannedWrite]) -> None:
        for (channel, kind, status), count in Counter(
            (w.channel, w.kind.value, w.status.value) for w in writes
        ).items():
            self.metrics.actions.labels(channel, kind, status).inc(count)

    async def dispatch(
        self,
        channel: Channel,
        kind: ActionKind,
        *,
        redrive: bool = False,
        record: Sequence[PlannedWrite] = (),
    ) -> DispatchReport:
        """Send open intents of ``kind`` to ``channel``; ``redrive`` also resends ``sent`` rows.

        ``record``: new intents to insert first. Up to one batch of them (an event-driven
        round) is inserted in the transaction that marks the first batch sent: one commit makes
        them durable *and* sent before the marketplace call, as two commits did.
        """
        lock = self._locks.setdefault((channel.name, kind.value), asyncio.Lock())
        if len(record) > self._batch_size(channel, kind):
            # Many rows: recorded on their own, so the writer is not also held while every
            # open intent of the channel is read back.
            await self.record(record)
            record = ()
        async with lock:
            return await self._dispatch(channel, kind, redrive=redrive, record=record)

    @staticmethod
    def _batch_size(channel: Channel, kind: ActionKind) -> int:
        if kind is ActionKind.PRICE:
            return channel.capabilities.max_price_batch
        return channel.capabilities.max_stock_batch

    async def _dispatch(
        self,
        channel: Channel,
        kind: ActionKind,
        *,
        redrive: bool,
        record: Sequence[PlannedWrite],
    ) -> DispatchReport:
        report = DispatchReport()
        size = self._batch_size(channel, kind)
        if record:
            async with self.db.write() as conn:
                await self._insert(conn, record)
                pending = await self._pending(
                    conn, channel.name, kind, redrive, report, writing=True
                )
                batch = await self._claim(
                    conn, channel.name, kind, pending[:size], report, len(pending)
                )
            self._count_recorded(record)
        else:
            async with self.db.read() as conn:
                pending = await self._pending(
                    conn, channel.name, kind, redrive, report, writing=False
                )
            batch = []
        start = 0 if not record else size
        while True:
            if batch:
                # Committed as sent (logged only now: a claim rolled back never went out).
                ids = [row.id for row in batch]
                log.debug("batch_claimed", channel=channel.name, kind=kind.value, ids=ids)
                results = await push(channel, kind, batch, self.metrics)
                await record_outcomes(
                    self.db,
                    self.clock.now(),
                    self.metrics,
                    channel.name,
                    batch,
                    results,
                    report,
                    self.fence(channel.name),
                )
            if report.blocked_reason or start >= len(pending):
                return report
            async with self.db.write() as conn:
                batch = await self._claim(
                    conn,
                    channel.name,
                    kind,
                    pending[start : start + size],
                    report,
                    len(pending) - start,
                )
            start += size

    async def _claim(
        self,
        conn: AsyncConnection,
        channel: str,
        kind: ActionKind,
        rows: Sequence[ClaimedWrite],
        report: DispatchReport,
        queued: int,
    ) -> list[ClaimedWrite]:
        """Mark ``rows`` sent (committed before the call) unless writes to ``channel`` are
        blocked right now; return the rows to send."""
        if not rows:
            return []
        reason = await write_block_reason(conn, channel, prices=kind is ActionKind.PRICE)
        if reason:
            # The kill switch works between batches; queued intents stay queued.
            report.blocked_reason = reason
            log.warning(
                "dispatch_blocked",
                channel=channel,
                kind=kind.value,
                reason=reason,
                queued=queued,
            )
            return []
        fence = self.fence(channel)
        claimed = await action_status.claim(conn, [row.id for row in rows], self.clock.now(), fence)
        sending = [row for row in rows if row.id in claimed]
        report.sent += len(sending)
        if (
            fence is not None
            and not sending
            and not (await conn.execute(sa.select(fence))).scalar()
        ):
            # The lease moved or expired (the database says so): stop; the owner sends them.
            report.blocked_reason = "lease lost"
            log.warning("claim_fenced", channel=channel, kind=kind.value, rows=len(rows))
        return sending

    async def _pending(
        self,
        conn: AsyncConnection,
        channel: str,
        kind: ActionKind,
        redrive: bool,
        report: DispatchReport,
        *,
        writing: bool,
    ) -> list[ClaimedWrite]:
        """The newest open intent per listing; older ones are superseded.

        Unfinished ``sent`` rows (no response: a crash or shutdown cut the call) take part in
        "newest wins" in every round, so a newer intent supersedes them; they are re-sent, with
        their key, only by the start-up re-drive, and never if a newer write for the listing was
        confirmed since (re-sending would put an old price or quantity back). Unless ``writing``
        (``conn`` is a write transaction), the superseding is written in a transaction of its own.
        """
        query = (
            sa.select(*(ACTIONS.c[name] for name in CLAIMED_COLUMNS), LISTINGS.c.external_id)
            .select_from(
                ACTIONS.outerjoin(
                    LISTINGS,
                    sa.and_(
                        LISTINGS.c.channel == ACTIONS.c.channel, LISTINGS.c.sku == ACTIONS.c.sku
                    ),
                )
            )
            .where(
                ACTIONS.c.channel == channel,
                ACTIONS.c.kind == kind.value,
                action_status.open_intent(),
                sa.not_(awaiting_verdict()),
            )
            .order_by(ACTIONS.c.id)
        )
        rows = [claimed(row) for row in (await conn.execute(query)).all()]
        newest: dict[str, ClaimedWrite] = {}
        stale: list[int] = []
        for row in rows:
            if row.sku in newest:
                stale.append(newest[row.sku].id)  # a newer intent for the same listing wins
            newest[row.sku] = row
        leftovers = [r for r in newest.values() if r.status is ActionStatus.SENT]
        confirmed = await self._latest_confirmed(conn, channel, kind, [r.sku for r in leftovers])
        for row in leftovers:
            if confirmed.get(row.sku, 0) > row.id:
                stale.append(row.id)
                del newest[row.sku]
            elif not redrive:
                del newest[row.sku]  # left for the start-up re-drive
        if stale:
            if writing:
                await action_status.supersede_ids(conn, stale, self.clock.now())
            else:
                async with self.db.write() as writer:
                    await action_status.supersede_ids(writer, stale, self.clock.now())
            report.superseded = len(stale)
            self.metrics.actions.labels(channel, kind.value, ActionStatus.SUPERSEDED.value).inc(
                len(stale)
            )
        return sorted(newest.values(), key=lambda r: r.id)

    async def _latest_confirmed(
        self, conn: AsyncConnection, channel: str, kind: ActionKind, skus: Sequence[str]
    ) -> dict[str, int]:
        """Id of the newest confirmed write per SKU (only for the few leftover rows)."""
        found: dict[str, int] = {}
        for start in range(0, len(skus), 900):
            part = list(skus[start : start + 900])
            result = await conn.execute(
                sa.select(ACTIONS.c.sku, sa.func.max(ACTIONS.c.id))
                .where(
                    ACTIONS.c.channel == channel,
                    ACTIONS.c.kind == kind.value,
                    ACTIONS.c.status == ActionStatus.CONFIRMED.value,
                    ACTIONS.c.sku.in_(part),
                )
                .group_by(ACTIONS.c.sku)
            )
            found.update({sku: int(top) for sku, top in result.all()})
        return found

    async def supersede_open(
        self, channel: str, kind: ActionKind, skus: Sequence[str], *, before_pass: str
    ) -> int:
        """Supersede intents of earlier passes still planned for ``skus`` (a newer decision
        holds or blocks those listings, so the old target must not go out)."""
        if not skus:
            return 0
        async with self.db.read() as conn:
            waiting = set(
                (
                    await conn.execute(
                        sa.select(ACTIONS.c.sku).where(
                            ACTIONS.c.channel == channel,
                            ACTIONS.c.kind == kind.value,
                            ACTIONS.c.status == ActionStatus.PLANNED.value,
                            ACTIONS.c.pass_id != before_pass,
                        )
                    )
                )
                .scalars()
                .all()
            )
        stale = sorted(waiting.intersection(skus))
        if not stale:
            return 0
        async with self.db.write() as conn:
            for start in range(0, len(stale), action_status.ID_CHUNK):
                await action_status.supersede(
                    conn,
                    sa.and_(
                        ACTIONS.c.channel == channel,
                        ACTIONS.c.kind == kind.value,
                        ACTIONS.c.status == ActionStatus.PLANNED.value,
                        ACTIONS.c.pass_id != before_pass,
                        ACTIONS.c.sku.in_(stale[start : start + action_status.ID_CHUNK]),
                    ),
                    self.clock.now(),
                    "a newer decision holds or blocks this listing",
                )
        self.metrics.actions.labels(channel, kind.value, ActionStatus.SUPERSEDED.value).inc(
            len(stale)
        )
        return len(stale)

    async def count_open(self) -> int:
        """Actions planned or sent and not yet completed."""
        async with self.db.read() as conn:
            return int(
                (
                    await conn.execute(
                        sa.select(sa.func.count())
                        .select_from(ACTIONS)
                        .where(
                            ACTIONS.c.status.in_(
                                [ActionStatus.PLANNED.value, ActionStatus.SENT.value]
                            ),
                            sa.not_(awaiting_verdict()),
                        )
                    )
                ).scalar_one()
            )

    async def unsent_skus(self, channel: str, kind: ActionKind, skus: Collection[str]) -> set[str]:
        """SKUs of ``skus`` with an intent of ``kind`` not yet taken by the marketplace
        (planned, or sent without an answer); an accepted write counts as taken."""
        if not skus:
            return set()
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(ACTIONS.c.sku)
                .where(
                    ACTIONS.c.channel == channel,
                    ACTIONS.c.kind == kind.value,
                    ACTIONS.c.sku.in_(sorted(skus)),
                    action_status.open_intent(),
                    sa.not_(awaiting_verdict()),
                )
                .distinct()
            )
            return set(rows.scalars())
