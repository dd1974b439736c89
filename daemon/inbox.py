"""The webhook inbox worker: turns stored deliveries into events, marks each row processed.

Webhook handlers only verify and store (``daemon.server``); this worker runs after the 2xx, so a
slow marketplace or a parse error never delays an acknowledgement, and a crash leaves rows
unprocessed for the next start to pick up.

One bad delivery never holds up the ones behind it. A delivery that cannot be parsed, or whose
events fail ``daemon.event_checks`` (a SKU with a NUL byte, an order of 2^70 units), is marked
``invalid`` with its reason before the database sees it. A batch is applied in one transaction;
if that fails, its rows are applied one by one, and a row that fails on its own is marked
``invalid`` with the database's error. Only a failure that is not the row's (the database is
down, a deadlock) leaves rows unprocessed, for the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.base import Channel, ResolvesEvents
from daemon.db.failures import blames_database, error_line
from daemon.db.models import WebhookEvent
from daemon.event_checks import Problem, event_problem, printable
from daemon.leases import LeaseLostError
from daemon.runtime import Runtime
from daemon.snapshots import insert_observations
from daemon.stock import Kits, OrderOutcome, apply_orders, load_kits, observe_quantity
from domain.errors import ChannelError, RejectedUpdateError
from domain.events import (
    ChannelEvent,
    OfferChanged,
    OrderEvent,
    OrderNotice,
    QuantityObserved,
    WebhookDelivery,
)

INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
BATCH = 500
REASON_LENGTH: Final = 2000  # webhook_event.error
log = structlog.get_logger("repricerd.inbox")

Verdict = tuple[str, str | None]  # (what an event did, why it did nothing)


@dataclass(frozen=True, slots=True)
class _Delivery:
    """One inbox row in a round: its events, or why it has none."""

    id: int
    events: tuple[ChannelEvent, ...] = ()
    invalid: Problem | None = None


@dataclass(frozen=True, slots=True)
class _Mark:
    """How one row ends: its outcome, the reason, and (invalid rows) the metric label."""

    id: int
    outcome: str
    reason: str | None = None
    kind: str | None = None


@dataclass
class _Done:
    """What a committed round did: rows marked, and what the triggers hear about."""

    marks: list[_Mark] = field(default_factory=list)
    offers: set[str] = field(default_factory=set)
    stock: set[str] = field(default_factory=set)
    unknown_lines: int = 0

    def add(self, other: _Done) -> None:
        """Fold another committed round into this one."""
        self.marks += other.marks
        self.offers |= other.offers
        self.stock |= other.stock
        self.unknown_lines += other.unknown_lines


class InboxWorker:
    """Processes one channel's inbox at a time; a wake-up while busy schedules one more round."""

    def __init__(
        self,
        rt: Runtime,
        on_offer_change: Callable[[str, set[str]], None],
        on_stock_change: Callable[[set[str]], None] | None = None,
    ) -> None:
        self.rt = rt
        self.on_offer_change = on_offer_change
        self.on_stock_change = on_stock_change
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()

    def wake(self, channel: str) -> None:
        """Process ``channel``'s inbox soon (called after a webhook is stored)."""
        if channel in self._running:
            self._again.add(channel)
            return
        self._running[channel] = asyncio.create_task(self._loop(channel), name=f"inbox-{channel}")

    async def drain(self) -> None:
        """Wait for every running round (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def close(self, timeout_s: float) -> None:
        """Let running rounds finish for up to ``timeout_s``, then cancel them (shutdown): their
        rows stay unprocessed and the next start picks them up."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), timeout=timeout_s)
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    async def cancel(self, channel: str) -> None:
        """Stop ``channel``'s round now (its lease is lost); its rows stay for the new owner."""
        self._again.discard(channel)
        task = self._running.get(channel)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self, channel: str) -> None:
        try:
            while True:
                self._again.discard(channel)
                while await self.process(channel) == BATCH:
                    pass
                if channel not in self._again:
                    break
        except LeaseLostError as err:
            log.info("inbox_round_fenced", channel=channel, note=str(err))
        except Exception as err:
            log.exception("inbox_failed", channel=channel, error=str(err))
        finally:
            self._running.pop(channel, None)

    async def process(self, channel: str) -> int:
        """Process up to BATCH unprocessed deliveries of ``channel``; return how many."""
        source = self.rt.channels.get(channel)
        # A channel not open yet may lack what parsing needs (its location, its ASINs): its
        # deliveries wait, stored, until it opens.
        if source is None or not self.rt.is_open(channel):
            return 0
        async with self.rt.db.read() as conn:
            rows = (
                await conn.execute(
                    sa.select(INBOX.c.id, INBOX.c.dedupe_key, INBOX.c.topic, INBOX.c.payload)
                    .where(INBOX.c.channel == channel, INBOX.c.processed_at.is_(None))
                    .order_by(INBOX.c.id)
                    .limit(BATCH)
                )
            ).all()
        if not rows:
            return 0
        resolver = _Resolver(channel, source)
        parsed = [await resolver.resolve(_parse(source, row)) for row in rows]
        deliveries = [delivery for delivery in parsed if delivery is not None]
        # Deferred rows are not counted: a full batch of them must not spin the caller's loop.
        if not deliveries:
            return len(rows) - resolver.deferred
        done = _Done()
        try:
            try:
                # The batch's writes and the rows' processed marks commit together: one write
                # transaction per batch, and a crash re-applies nothing twice (refs are unique).
                async with self.rt.db.write() as conn:
                    batch = await self._apply(conn, channel, deliveries)
                done = batch
            except LeaseLostError:
                raise  # another replica owns the channel now: nothing of this round commits
            except Exception as err:
                log.warning(
                    "inbox_batch_failed", channel=channel, rows=len(rows), error=_describe(err)
                )
                for delivery in deliveries:
                    done.add(await self._apply_alone(channel, delivery))
        finally:
            self._report(channel, done)  # whatever committed, even if a later row stopped us
        return len(rows) - resolver.deferred

    async def _apply_alone(self, channel: str, delivery: _Delivery) -> _Done:
        """Apply one row in its own transaction; mark it invalid if it fails on its own."""
        try:
            async with self.rt.db.write() as conn:
                return await self._apply(conn, channel, [delivery])
        except Exception as err:
            if blames_database(err) or isinstance(err, LeaseLostError):
                raise  # the database is down or busy, or the lease moved: the row waits
            mark = _Mark(delivery.id, "invalid", f"database: {_describe(err)}", "database")
            # Fails as well if the database went away meanwhile: then the round stops here.
            async with self.rt.db.write() as conn:
                await _mark_processed(
                    conn, [mark], self.rt.clock.now(), self.rt.outbox.fence(channel)
                )
            return _Done(marks=[mark])

    async def _apply(
        self, conn: AsyncConnection, channel: str, deliveries: list[_Delivery]
    ) -> _Done:
        """Apply the deliveries' events and mark every row, in the caller's transaction."""
        done = _Done()
        verdicts: dict[int, list[Verdict]] = {}
        observations = []
        stock: list[tuple[int, OrderEvent | QuantityObserved]] = []
        for delivery in deliveries:
            if delivery.invalid is not None:
                problem = delivery.invalid
                done.marks.append(_Mark(delivery.id, "invalid", problem.reason, problem.kind))
                continue
            verdicts[delivery.id] = []
            for event in delivery.events:
                if isinstance(event, OrderNotice):
                    continue  # never reaches here: _Resolver replaced or deferred it
                if isinstance(event, OfferChanged):
                    done.offers.add(event.sku)
                    verdicts[delivery.id].append(("applied", None))
                    if event.observation is not None:
                        observations.append(event.observation)
                else:
                    stock.append((delivery.id, event))
        if observations:
            await insert_observations(conn, self.rt.db, channel, observations)
        if stock:
            await self._stock_events(conn, channel, stock, verdicts, done)
        done.marks += [_Mark(row_id, *_row_outcome(found)) for row_id, found in verdicts.items()]
        await _mark_processed(conn, done.marks, self.rt.clock.now(), self.rt.outbox.fence(channel))
        return done

    async def _stock_events(
        self,
        conn: AsyncConnection,
        channel: str,
        stock: list[tuple[int, OrderEvent | QuantityObserved]],
        verdicts: dict[int, list[Verdict]],
        done: _Done,
    ) -> None:
        """Apply orders and quantity reports in delivery order (consecutive orders together);
        add each event's verdict to its row, and the SKUs to republish to ``done``."""
        db = self.rt.db
        kits = await load_kits(conn)
        touched = {s for _, e in stock for s in _ledger_skus(kits, e)}
        for sku in sorted(touched):  # every lock up front, in one order (PostgreSQL)
            await db.serialize(conn, f"ledger:{sku}")
        now = self.rt.clock.now()
        index = 0
        while index < len(stock):
            row_id, event = stock[index]
            if isinstance(event, QuantityObserved):
                verdict, skus = await self._quantity(conn, channel, event, kits, now)
                verdicts[row_id].append((verdict, None))
                done.stock |= skus
                index += 1
                continue
            run = [stock[index]]
            while index + len(run) < len(stock) and isinstance(
                stock[index + len(run)][1], OrderEvent
            ):
                run.append(stock[index + len(run)])
            orders = [e for _, e in run if isinstance(e, OrderEvent)]
            found = await apply_orders(conn, db, kits, channel=channel, events=orders, now=now)
            for (order_row, _), outcome in zip(run, found, strict=True):
                verdicts[order_row].append(_order_verdict(outcome))
                done.stock |= kits.affected(outcome.skus) if outcome.applied else set()
                done.unknown_lines += len(outcome.unknown)
            index += len(run)

    async def _quantity(
        self, conn: AsyncConnection, channel: str, event: QuantityObserved, kits: Kits, now: Any
    ) -> tuple[str, set[str]]:
        """Apply one quantity report; return its verdict and the SKUs to republish."""
        policy = self.rt.settings.inventory.external_policy(channel)
        verdict = await observe_quantity(
            conn, self.rt.db, channel=channel, event=event, policy=policy, now=now
        )
        if verdict == "overwrite":
            return "applied", {event.sku}
        if verdict == "lowered":
            return "applied", set()
        if verdict == "adopted":
            return "applied", kits.affected({event.sku})
        return verdict, set()

    def _report(self, channel: str, done: _Done) -> None:
        """Count and log what a round committed, and tell the triggers what moved."""
        metrics = self.rt.metrics
        for mark in done.marks:
            if mark.outcome == "invalid":
                metrics.webhooks_invalid.labels(channel, mark.kind or "unparsable").inc()
                log.warning("webhook_invalid", channel=channel, row=mark.id, reason=mark.reason)
        if done.unknown_lines:
            metrics.unknown_sku_lines.labels(channel).inc(done.unknown_lines)
        if done.offers:
            self.on_offer_change(channel, done.offers)
        if done.stock and self.on_stock_change is not None:
            self.on_stock_change(done.stock)


def _parse(source: Channel, row: Any) -> _Delivery:
    """A stored row's events, or why it is invalid (any bad payload is marked, never retried)."""
    try:
        events = source.parse_webhook(WebhookDelivery(row.dedupe_key, row.topic, row.payload))
    except Exception as err:
        return _Delivery(row.id, invalid=Problem("unparsable", _describe(err)))
    for event in events:
        if (problem := event_problem(event)) is not None:
            return _Delivery(row.id, invalid=problem)
    return _Delivery(row.id, tuple(events))


class _Resolver:
    """Fetches what order notices leave out (``ResolvesEvents``), for one round of one channel.

    A delivery whose order the marketplace cannot read now (slow, down, token refused) is left
    unprocessed - never marked without its effect - and picked up by a later round (the next
    delivery's wake-up or the minute's sweep; the orders poll reads the order anyway). After one
    such failure the round stops asking: each try already spent the connector's retry budget.
    An order the marketplace refuses for good (``RejectedUpdateError``) makes the row invalid,
    and so do fetched lines that fail ``daemon.event_checks``.
    """

    def __init__(self, channel: str, source: Channel) -> None:
        self.channel = channel
        self.source = source if isinstance(source, ResolvesEvents) else None
        self.deferred = 0
        self._unreachable = False

    async def resolve(self, delivery: _Delivery) -> _Delivery | None:
        """``delivery`` with its notices resolved; None when the row must wait."""
        notices = [e for e in delivery.events if isinstance(e, OrderNotice)]
        if not notices:
            return delivery
        order = notices[0].order_id
        if self.source is None:
            problem = Problem("unparsable", f"order {order}: the channel cannot read orders by id")
            return _Delivery(delivery.id, invalid=problem)
        if self._unreachable:
            self.deferred += 1
            return None
        try:
            resolved = await self.source.resolve_events(list(delivery.events))
        except RejectedUpdateError as err:
            return _Delivery(delivery.id, invalid=Problem("order", _describe(err)))
        except ChannelError as err:
            self._unreachable = True
            log.warning("inbox_order_deferred", channel=self.channel, order=order, error=str(err))
            self.deferred += 1
            return None
        if any(isinstance(e, OrderNotice) for e in resolved):
            left = Problem("unparsable", f"order {order}: the channel left it unresolved")
            return _Delivery(delivery.id, invalid=left)
        for event in resolved:
            if (found := event_problem(event)) is not None:
                return _Delivery(delivery.id, invalid=found)
        return _Delivery(delivery.id, tuple(resolved))


def _describe(err: BaseException) -> str:
    """An error as one printable line (a database error without its SQL and parameters)."""
    return printable(error_line(err))[:REASON_LENGTH]


def _ledger_skus(kits: Kits, event: OrderEvent | QuantityObserved) -> set[str]:
    """The ledger SKUs an event may write (locked before the batch starts)."""
    if isinstance(event, QuantityObserved):
        return {event.sku}
    return kits.ledger_skus({line.sku for line in event.lines})


def _order_verdict(outcome: OrderOutcome) -> Verdict:
    """What one order did: applied, duplicate (replayed), or ignored (nothing we stock)."""
    reason = None
    if outcome.unknown:
        reason = "unknown sku " + ", ".join(repr(sku) for sku in sorted(outcome.unknown))
    if outcome.applied:
        return "applied", reason
    return ("duplicate" if outcome.duplicate else "ignored"), reason


async def _mark_processed(
    conn: AsyncConnection,
    marks: list[_Mark],
    now: datetime,
    fence: sa.ColumnElement[bool] | None = None,
) -> None:
    """Mark the batch's rows processed: one UPDATE per distinct outcome (most rows share one).

    ``fence`` (several replicas): the channel's lease. A replica that lost it marks nothing;
    ``LeaseLostError`` rolls back the round's writes with it, and the owner applies the rows.
    """
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for mark in marks:
        reason = None if mark.reason is None else mark.reason[:REASON_LENGTH]
        groups[(mark.outcome, reason)].append(mark.id)
    for (outcome, reason), ids in groups.items():
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            where = [INBOX.c.id.in_(chunk)] + ([] if fence is None else [fence])
            result = await conn.execute(
                sa.update(INBOX)
                .where(*where)
                .values(processed_at=now, outcome=outcome, error=reason)
            )
            if fence is not None and (result.rowcount or 0) < len(chunk):
                raise LeaseLostError("the channel's lease moved: inbox rows left to the owner")


def _row_outcome(verdicts: list[Verdict]) -> tuple[str, str | None]:
    """One outcome for a delivery (applied if any event took effect, else why not) and the
    reasons its events gave."""
    reason = "; ".join(dict.fromkeys(why for _, why in verdicts if why)) or None
    found = [verdict for verdict, _ in verdicts]
    if not found:
        return "ignored", reason
    if "applied" in found:
        return "applied", reason
    return ("skipped" if "stale" in found else found[0]), reason
