"""Which updates of a push a journaled feed answers, and which go out again."""

from __future__ import annotations

from decimal import Decimal

from connectors.journal import FeedEntry, MemoryFeedJournal, split_by_feed
from domain.writes import PriceUpdate


def update(key: str) -> PriceUpdate:
    return PriceUpdate(f"SKU-{key}", Decimal("9.99"), "USD", key)


async def test_the_newest_feed_carrying_a_key_decides_for_it() -> None:
    journal = MemoryFeedJournal()
    await journal.record("A", None, "price", [FeedEntry(k, f"SKU-{k}") for k in ("k1", "k2")])
    await journal.record("B", None, "price", [FeedEntry("k1", "SKU-k1")])
    await journal.finish("B", "DONE", ["k1"])  # B did not apply k1: A's copy is older news
    await journal.record("C", None, "price", [FeedEntry("k3", "SKU-k3")])
    await journal.finish("C", "FATAL", [])
    await journal.record("D", None, "price", [FeedEntry("k5", "SKU-k5")])
    pushed = [update(k) for k in ("k5", "k4", "k3", "k2", "k1")]
    resumable, fresh = await split_by_feed(journal, pushed, {"FATAL", "CANCELLED"})
    assert sorted((r.feed.feed_id, sorted(r.keys)) for r in resumable) == [
        ("A", ["k2"]),
        ("D", ["k5"]),
    ]
    assert [u.idempotency_key for u in fresh] == ["k4", "k3", "k1"]  # in the push's order


async def test_an_empty_push_reads_nothing() -> None:
    class Unreadable(MemoryFeedJournal):
        async def carrying(self, keys: object) -> list[object]:  # type: ignore[override]
            raise AssertionError("read")

    assert await split_by_feed(Unreadable(), [], ()) == ([], [])
