"""The connectors' ``FeedJournal`` over the database: one ``marketplace_feed`` row per feed a
channel created and one ``marketplace_feed_item`` row per update it carries, in feed order.

A feed is recorded in its own transaction the moment the marketplace returned its id, before
the daemon waits for it: a process killed while the feed is processed finds it here on restart,
and the re-drive of its ``sent`` intents resumes that feed rather than creating a second one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import sqlalchemy as sa

from connectors.journal import SUBMITTED, FeedEntry, JournaledFeed
from daemon.db.engine import Database
from daemon.db.models import MarketplaceFeed, MarketplaceFeedItem
from domain.clock import Clock

FEEDS = MarketplaceFeed.__table__  # type: ignore[attr-defined]
ITEMS = MarketplaceFeedItem.__table__  # type: ignore[attr-defined]
CHUNK = 900  # bound parameters per IN list (SQLite's limit is far above; this keeps it cheap)


class DbFeedJournal:
    """The feed journal of one channel, in the daemon's database."""

    def __init__(self, db: Database, clock: Clock, channel: str) -> None:
        self.db = db
        self.clock = clock
        self.channel = channel

    async def record(
        self, feed_id: str, document_id: str | None, kind: str, entries: Sequence[FeedEntry]
    ) -> None:
        """Store the feed and its entries (positions 0..n-1) in one transaction."""
        async with self.db.write() as conn:
            row = await conn.execute(
                sa.insert(FEEDS)
                .values(
                    channel=self.channel,
                    feed_id=feed_id,
                    document_id=document_id,
                    kind=kind,
                    status=SUBMITTED,
                    created_at=self.clock.now(),
                )
                .returning(FEEDS.c.id)
            )
            feed = row.scalar_one()
            await self.db.insert_many(
                conn,
                ITEMS,
                [
                    {
                        "feed": feed,
                        "position": position,
                        "idempotency_key": entry.idempotency_key,
                        "sku": entry.sku,
                        "unapplied": False,
                    }
                    for position, entry in enumerate(entries)
                ],
            )

    async def carrying(self, keys: Collection[str]) -> list[JournaledFeed]:
        """This channel's feeds holding any of ``keys``, newest first, with all their entries."""
        wanted = sorted(keys)
        async with self.db.read() as conn:
            ids: set[int] = set()
            for start in range(0, len(wanted), CHUNK):
                found = await conn.execute(
                    sa.select(ITEMS.c.feed)
                    .where(ITEMS.c.idempotency_key.in_(wanted[start : start + CHUNK]))
                    .distinct()
                )
                ids.update(found.scalars())
            if not ids:
                return []
            feeds = (
                await conn.execute(
                    sa.select(FEEDS)
                    .where(FEEDS.c.id.in_(sorted(ids)), FEEDS.c.channel == self.channel)
                    .order_by(FEEDS.c.id.desc())
                )
            ).all()
            items = (
                await conn.execute(
                    sa.select(ITEMS)
                    .where(ITEMS.c.feed.in_([feed.id for feed in feeds]))
                    .order_by(ITEMS.c.feed, ITEMS.c.position)
                )
            ).all()
        entries: dict[int, list[FeedEntry]] = {}
        unapplied: dict[int, set[str]] = {}
        for item in items:
            entries.setdefault(item.feed, []).append(FeedEntry(item.idempotency_key, item.sku))
            if item.unapplied:
                unapplied.setdefault(item.feed, set()).add(item.idempotency_key)
        return [
            JournaledFeed(
                feed.feed_id,
                feed.document_id,
                feed.kind,
                feed.status,
                tuple(entries.get(feed.id, ())),
                frozenset(unapplied.get(feed.id, ())),
            )
            for feed in feeds
        ]

    async def finish(self, feed_id: str, status: str, unapplied: Collection[str] = ()) -> None:
        """Store the feed's final status and flag the entries it did not apply."""
        dropped = sorted(unapplied)
        async with self.db.write() as conn:
            feed = (
                await conn.execute(
                    sa.update(FEEDS)
                    .where(FEEDS.c.channel == self.channel, FEEDS.c.feed_id == feed_id)
                    .values(status=status, finished_at=self.clock.now())
                    .returning(FEEDS.c.id)
                )
            ).scalar_one_or_none()
            if feed is None:
                return
            for start in range(0, len(dropped), CHUNK):
                await conn.execute(
                    sa.update(ITEMS)
                    .where(
                        ITEMS.c.feed == feed,
                        ITEMS.c.idempotency_key.in_(dropped[start : start + CHUNK]),
                    )
                    .values(unapplied=True)
                )
