"""Group commit of the webhook inbox: every delivery durable before its answer, few commits."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from daemon.db.engine import Database
from daemon.db.models import WebhookEvent
from daemon.webhook_store import InboxRow, WebhookStore
from domain.clock import ManualClock

INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]


def row(clock: ManualClock, key: str, channel: str = "shop") -> InboxRow:
    return InboxRow(channel, key, "orders/create", '{"id": 1}', clock.now())


async def test_concurrent_deliveries_share_commits_and_each_is_stored_once(
    db: Database, clock: ManualClock
) -> None:
    store = WebhookStore(db)
    keys = [f"k{i % 150}" for i in range(300)]  # every key delivered twice, concurrently
    results = await asyncio.gather(*(store.store(row(clock, key)) for key in keys))
    assert sum(results) == 150  # one "new" per key, the twin is a duplicate
    assert store.commits < 300 / 4  # grouped: far fewer transactions than deliveries
    async with db.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(INBOX))).scalar_one()
    assert count == 150
    assert await store.store(row(clock, "k1")) is False  # a later redelivery too
    assert await store.store(row(clock, "k1", channel="other")) is True  # keys are per channel


async def test_a_failed_commit_fails_every_delivery_in_it(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = WebhookStore(db)

    async def broken(_rows: list[InboxRow]) -> set[tuple[str, str]]:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_write", broken)
    results = await asyncio.gather(
        *(store.store(row(clock, f"x{i}")) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(result, RuntimeError) for result in results)
    monkeypatch.undo()
    assert await store.store(row(clock, "x1")) is True  # nothing was stored by the failure


async def test_an_odd_delivery_id_or_topic_is_stored_without_failing_its_group(
    db: Database, clock: ManualClock
) -> None:
    """A signed document may carry a 300-character or NUL-bearing id or topic: it is stored
    (its id digested, so a redelivery is still a duplicate) with the deliveries beside it."""
    store = WebhookStore(db)
    odd = [
        row(clock, "k" * 300),
        row(clock, "nul\x00id"),
        InboxRow("shop", "topic", "orders/\x00" + "x" * 200, "{}", clock.now()),
    ]
    batch = [*odd, row(clock, "plain-1"), row(clock, "plain-2")]
    assert await asyncio.gather(*(store.store(r) for r in batch)) == [True] * 5
    assert await asyncio.gather(*(store.store(r) for r in odd)) == [False] * 3
    async with db.read() as conn:
        stored = (await conn.execute(sa.select(INBOX.c.dedupe_key, INBOX.c.topic))).all()
    keys = {key for key, _ in stored}
    assert {"topic", "plain-1", "plain-2"} < keys
    assert len([key for key in keys if key.startswith("sha256:")]) == 2
    assert {topic for key, topic in stored if key == "topic"} == {"orders/\\x00" + "x" * 89}
