"""The webhook inbox worker: turns stored deliveries into events, marks each row processed.

Webhook handlers only verify and store (``daemon.server``); this worker runs after the 2xx, so a
slow marketplace or a parse error never delays an acknowledgement, and a crash leaves rows
unprocessed for the next start to pick up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog

from connectors.base import OfferChanged, OrderEvent, QuantityObserved, WebhookDelivery
from daemon.db.models import WebhookEvent
from daemon.runtime import Runtime
from daemon.snapshots import store_observations
from daemon.stock import Kits, apply_order, load_kits, observe_quantity

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
        if source is None:
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
        stock_moved: set[str] = set()
        observations = []
        kits: Kits | None = None
        for row in rows:
            try:
                events = source.parse_webhook(
                    WebhookDelivery(row.dedupe_key, row.topic, row.payload)
                )
            except Exception as err:  # any bad payload is marked, never left to block the queue
                error = f"{type(err).__name__}: {err}"[:2000]
                outcomes.append({"b_id": row.id, "b_outcome": "invalid", "b_error": error})
                continue
            verdicts: list[str] = []
            for event in events:
                if isinstance(event, OfferChanged):
                    changed.add(event.sku)
                    verdicts.append("applied")
                    if event.observation is not None:
                        observations.append(event.observation)
                    continue
                if kits is None:
                    async with self.rt.db.read() as conn:
                        kits = await load_kits(conn)
                verdict, moved = await self._stock_event(channel, event, kits)
                verdicts.append(verdict)
                stock_moved |= moved
            outcomes.append({"b_id": row.id, "b_outcome": _row_outcome(verdicts), "b_error": None})
        if observations:
            await store_observations(self.rt.db, channel, observations)
        if outcomes:
            now = self.rt.clock.now()
            async with self.rt.db.write() as conn:
                await conn.execute(
                    sa.update(INBOX)
                    .where(INBOX.c.id == sa.bindparam("b_id"))
                    .values(
                        processed_at=now,
                        outcome=sa.bindparam("b_outcome"),
                        error=sa.bindparam("b_error"),
                    ),
                    outcomes,
                )
        if changed:
            self.on_offer_change(channel, changed)
        if stock_moved and self.on_stock_change is not None:
            self.on_stock_change(stock_moved)
        return len(rows)

    async def _stock_event(
        self, channel: str, event: OrderEvent | QuantityObserved, kits: Kits
    ) -> tuple[str, set[str]]:
        """Apply one order or quantity report; return its verdict and the SKUs to republish."""
        now = self.rt.clock.now()
        if isinstance(event, OrderEvent):
            outcome = await apply_order(self.rt.db, kits, channel=channel, event=event, now=now)
            if not outcome.applied:
                return "duplicate", set()
            return "applied", kits.affected(outcome.skus)
        policy = self.rt.settings.inventory.external_policy(channel)
        verdict = await observe_quantity(
            self.rt.db, channel=channel, event=event, policy=policy, now=now
        )
        if verdict == "overwrite":
            return "applied", {event.sku}
        if verdict == "lowered":
            return "applied", set()
        if verdict == "adopted":
            return "applied", kits.affected({event.sku})
        return verdict, set()


def _row_outcome(verdicts: list[str]) -> str:
    """One outcome for a delivery: applied if any event took effect, else why not."""
    if not verdicts:
        return "ignored"
    if "applied" in verdicts:
        return "applied"
    return "skipped" if "stale" in verdicts else verdicts[0]
