"""The webhook inbox worker: turns stored deliveries into events, marks each row processed.

Webhook handlers only verify and store (``daemon.server``); this worker runs after the 2xx, so a
slow marketplace or a parse error never delays an acknowledgement, and a crash leaves rows
unprocessed for the next start to pick up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.base import OfferChanged, OrderEvent, QuantityObserved, WebhookDelivery
from daemon.db.models import WebhookEvent
from daemon.runtime import Runtime
from daemon.snapshots import store_observations
from daemon.stock import Kits, apply_orders, load_kits, observe_quantity

INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
BATCH = 500
log = structlog.get_logger("repricerd.inbox")


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

    async def _loop(self, channel: str) -> None:
        try:
            while True:
                self._again.discard(channel)
                while await self.process(channel) == BATCH:
                    pass
                if channel not in self._again:
                    break
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
        outcomes: list[dict[str, Any]] = []
        changed: set[str] = set()
        observations = []
        verdicts: dict[int, list[str]] = {}
        stock: list[tuple[int, OrderEvent | QuantityObserved]] = []
        for row in rows:
            try:
                events = source.parse_webhook(
                    WebhookDelivery(row.dedupe_key, row.topic, row.payload)
                )
            except Exception as err:  # any bad payload is marked, never left to block the queue
                error = f"{type(err).__name__}: {err}"[:2000]
                outcomes.append({"id": row.id, "outcome": "invalid", "error": error})
                continue
            verdicts[row.id] = []
            for event in events:
                if isinstance(event, OfferChanged):
                    changed.add(event.sku)
                    verdicts[row.id].append("applied")
                    if event.observation is not None:
                        observations.append(event.observation)
                else:
                    stock.append((row.id, event))
        if observations:
            await store_observations(self.rt.db, channel, observations)
        stock_moved: set[str] = set()
        if rows:
            # The batch's ledger writes and the rows' processed marks commit together: one
            # write transaction per batch, and a crash re-applies nothing twice (refs are unique).
            async with self.rt.db.write() as conn:
                if stock:
                    stock_moved = await self._stock_events(conn, channel, stock, verdicts)
                outcomes += [
                    {"id": row_id, "outcome": _row_outcome(found), "error": None}
                    for row_id, found in verdicts.items()
                ]
                await _mark_processed(conn, outcomes, self.rt.clock.now())
        if changed:
            self.on_offer_change(channel, changed)
        if stock_moved and self.on_stock_change is not None:
            self.on_stock_change(stock_moved)
        return len(rows)

    async def _stock_events(
        self,
        conn: AsyncConnection,
        channel: str,
        stock: list[tuple[int, OrderEvent | QuantityObserved]],
        verdicts: dict[int, list[str]],
    ) -> set[str]:
        """Apply orders and quantity reports in delivery order (consecutive orders together);
        add each event's verdict to its row; return the SKUs to republish."""
        db = self.rt.db
        kits = await load_kits(conn)
        touched = {s for _, e in stock for s in _ledger_skus(kits, e)}
        for sku in sorted(touched):  # every lock up front, in one order (PostgreSQL)
            await db.serialize(conn, f"ledger:{sku}")
        now, moved = self.rt.clock.now(), set()
        index = 0
        while index < len(stock):
            row_id, event = stock[index]
            if isinstance(event, QuantityObserved):
                verdict, skus = await self._quantity(conn, channel, event, kits, now)
                verdicts[row_id].append(verdict)
                moved |= skus
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
                verdicts[order_row].append("applied" if outcome.applied else "duplicate")
                moved |= kits.affected(outcome.skus) if outcome.applied else set()
            index += len(run)
        return moved

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


def _ledger_skus(kits: Kits, event: OrderEvent | QuantityObserved) -> set[str]:
    """The ledger SKUs an event may write (locked before the batch starts)."""
    if isinstance(event, QuantityObserved):
        return {event.sku}
    return kits.ledger_skus({line.sku for line in event.lines})


async def _mark_processed(conn: AsyncConnection, outcomes: list[dict[str, Any]], now: Any) -> None:
    """Mark the batch's rows processed: one UPDATE per distinct outcome (most rows share one)."""
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for item in outcomes:
        groups[(item["outcome"], item["error"])].append(item["id"])
    for (outcome, error), ids in groups.items():
        for start in range(0, len(ids), 900):
            await conn.execute(
                sa.update(INBOX)
                .where(INBOX.c.id.in_(ids[start : start + 900]))
                .values(processed_at=now, outcome=outcome, error=error)
            )


def _row_outcome(verdicts: list[str]) -> str:
    """One outcome for a delivery: applied if any event took effect, else why not."""
    if not verdicts:
        return "ignored"
    if "applied" in verdicts:
        return "applied"
    return "skipped" if "stale" in verdicts else verdicts[0]
