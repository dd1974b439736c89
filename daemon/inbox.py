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

from connectors.base import OfferChanged, WebhookDelivery
from daemon.db.models import WebhookEvent
from daemon.runtime import Runtime
from daemon.snapshots import store_observations

INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
BATCH = 500
log = structlog.get_logger("repricerd.inbox")


class InboxWorker:
    """Processes one channel's inbox at a time; a wake-up while busy schedules one more round."""

    def __init__(self, rt: Runtime, on_offer_change: Callable[[str, set[str]], None]) -> None:
        self.rt = rt
        self.on_offer_change = on_offer_change
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
        observations = []
        for row in rows:
            try:
                events = source.parse_webhook(
                    WebhookDelivery(row.dedupe_key, row.topic, row.payload)
                )
            except Exception as err:  # any bad payload is marked, never left to block the queue
                error = f"{type(err).__name__}: {err}"[:2000]
                outcomes.append({"b_id": row.id, "b_outcome": "invalid", "b_error": error})
                continue
            for event in events:
                if isinstance(event, OfferChanged):
                    changed.add(event.sku)
                    if event.observation is not None:
                        observations.append(event.observation)
            outcomes.append(
                {"b_id": row.id, "b_outcome": "applied" if events else "ignored", "b_error": None}
            )
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
        return len(rows)
