"""The database feed journal: what a restarted daemon reads back is what was recorded, the same
as the connectors' in-memory journal, per channel, newest feed first, positions kept."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from connectors.journal import SUBMITTED, FeedEntry, FeedJournal, JournaledFeed, MemoryFeedJournal
from daemon.db.engine import Database
from daemon.feeds import FEEDS, DbFeedJournal
from domain.clock import ManualClock


def entries(*keys: str) -> list[FeedEntry]:
    return [FeedEntry(key, f"SKU-{key}") for key in keys]


async def play(journal: FeedJournal, clock: ManualClock) -> list[list[JournaledFeed]]:
    """Two feeds for the same keys (the first ended FATAL), one still running, one elsewhere."""
    seen = []
    await journal.record("F1", "doc-1", "price", entries("a", "b", "c"))
    seen.append(await journal.carrying(["b"]))
    clock.advance(60)
    await journal.finish("F1", "FATAL", ["a", "b", "c"])
    await journal.record("F2", "doc-2", "price", entries("c", "b", "a"))
    await journal.record("F3", None, "stock", entries("x"))
    seen.append(await journal.carrying(["a", "x", "nobody"]))
    await journal.finish("F2", "DONE", ["b"])
    seen.append(await journal.carrying(["b"]))
    seen.append(await journal.carrying(["nobody"]))
    return seen


async def test_the_database_journal_reads_back_what_the_memory_one_holds(
    db: Database, clock: ManualClock
) -> None:
    stored = await play(DbFeedJournal(db, clock, "amz"), clock)
    assert stored == await play(MemoryFeedJournal(), ManualClock(clock.now()))
    first, both, after, none = stored
    assert first == [
        JournaledFeed("F1", "doc-1", "price", SUBMITTED, tuple(entries("a", "b", "c")))
    ]
    assert [(f.feed_id, f.status) for f in both] == [
        ("F3", SUBMITTED),
        ("F2", SUBMITTED),
        ("F1", "FATAL"),
    ]
    assert both[2].unapplied == {"a", "b", "c"}
    # Positions are kept: an unapplied entry stays in place, flagged.
    assert after[0].entries == tuple(entries("c", "b", "a"))
    assert after[0].unapplied == {"b"}
    assert none == []


async def test_feeds_belong_to_their_channel_and_carry_their_times(
    db: Database, clock: ManualClock
) -> None:
    amazon, walmart = DbFeedJournal(db, clock, "amz"), DbFeedJournal(db, clock, "wm")
    await amazon.record("F1", "doc-1", "price", entries("a"))
    await walmart.record("F1", None, "stock", entries("a"))
    clock.advance(90)
    await walmart.finish("F1", "PROCESSED")
    assert [f.kind for f in await amazon.carrying(["a"])] == ["price"]
    assert [(f.kind, f.status) for f in await walmart.carrying(["a"])] == [("stock", "PROCESSED")]
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(FEEDS).order_by(FEEDS.c.channel))).all()
    assert [(r.channel, r.status, r.finished_at) for r in rows] == [
        ("amz", SUBMITTED, None),
        ("wm", "PROCESSED", clock.now()),
    ]
    assert rows[0].created_at == clock.now() - timedelta(seconds=90)
