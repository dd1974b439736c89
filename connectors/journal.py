"""The feed journal: which marketplace feed carries which update, kept where a crash cannot lose it.

A bulk feed (Amazon ``createFeed``, Walmart ``POST /v3/feeds``) is created once and then polled
for minutes. A daemon killed in between would otherwise send the same updates as a second feed
on restart: a second write of every SKU, from a budget of a few feeds per hour. So the feed id
is recorded with the idempotency keys it carries the moment the marketplace returns it, and a
push of those keys later resumes that feed (poll, then map its report) instead of creating one.

The daemon implements ``FeedJournal`` over its database and passes it in ``ChannelDeps``; the
in-memory ``MemoryFeedJournal`` is the default (tests, and a connector used on its own).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Final, Protocol, TypeVar

import structlog

log = structlog.get_logger(__name__)

# The status of a journaled feed until its marketplace status is known to be final.
SUBMITTED: Final = "SUBMITTED"


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One update in a feed, at its position: its idempotency key and SKU."""

    idempotency_key: str
    sku: str


@dataclass(frozen=True, slots=True)
class JournaledFeed:
    """A feed as recorded: id, input document, kind, status, its entries in feed order (all of
    them: a position is a messageId or item index), and the keys it did not apply."""

    feed_id: str
    document_id: str | None
    kind: str
    status: str
    entries: tuple[FeedEntry, ...]
    unapplied: frozenset[str] = frozenset()


class FeedJournal(Protocol):
    """Durable record of the feeds a channel created and the updates each one carries."""

    async def record(
        self, feed_id: str, document_id: str | None, kind: str, entries: Sequence[FeedEntry]
    ) -> None:
        """Remember a feed the marketplace just created (status ``SUBMITTED``)."""
        ...

    async def carrying(self, keys: Collection[str]) -> list[JournaledFeed]:
        """The feeds holding an entry for any of ``keys``, newest first."""
        ...

    async def finish(self, feed_id: str, status: str, unapplied: Collection[str] = ()) -> None:
        """Mark a feed final with the marketplace's status and its ``unapplied`` keys (not
        applied, to be sent again): their next push is a new write, not this feed."""
        ...


class MemoryFeedJournal:
    """A ``FeedJournal`` in memory: survives nothing, but keeps one process's view coherent."""

    def __init__(self) -> None:
        self._feeds: dict[str, JournaledFeed] = {}  # in creation order

    async def record(
        self, feed_id: str, document_id: str | None, kind: str, entries: Sequence[FeedEntry]
    ) -> None:
        """Remember a feed the marketplace just created."""
        self._feeds[feed_id] = JournaledFeed(feed_id, document_id, kind, SUBMITTED, tuple(entries))

    async def carrying(self, keys: Collection[str]) -> list[JournaledFeed]:
        """The feeds holding an entry for any of ``keys``, newest first."""
        wanted = set(keys)
        return [
            feed
            for feed in reversed(self._feeds.values())
            if any(e.idempotency_key in wanted for e in feed.entries)
        ]

    async def finish(self, feed_id: str, status: str, unapplied: Collection[str] = ()) -> None:
        """Mark a feed final with its unapplied keys."""
        feed = self._feeds.get(feed_id)
        if feed is not None:
            self._feeds[feed_id] = replace(
                feed, status=status, unapplied=feed.unapplied | frozenset(unapplied)
            )


async def record_feed(
    journal: FeedJournal,
    feed_id: str,
    document_id: str | None,
    kind: str,
    entries: Sequence[FeedEntry],
) -> None:
    """Journal a feed the marketplace just created; a failure is logged, not raised."""
    try:
        await journal.record(feed_id, document_id, kind, entries)
    except Exception as err:
        # The feed exists either way: follow it in this process rather than report a failure
        # that would send the same updates as a second feed.
        log.error("feed.unrecorded", feed_id=feed_id, error=str(err))
    else:
        log.info("feed.recorded", feed_id=feed_id, kind=kind, entries=len(entries))


class Keyed(Protocol):
    """An update as the journal sees it: only its idempotency key."""

    @property
    def idempotency_key(self) -> str:
        """The key that names this intent across retries."""
        ...


Update = TypeVar("Update", bound=Keyed)


@dataclass(frozen=True, slots=True)
class Resumable:
    """A journaled feed to resume, and which of this push's updates it carries."""

    feed: JournaledFeed
    keys: frozenset[str]


async def split_by_feed(
    journal: FeedJournal, updates: Sequence[Update], resend: Collection[str]
) -> tuple[list[Resumable], list[Update]]:
    """Updates already in a journaled feed (to be resumed, grouped by feed) and the rest.

    The newest feed carrying a key decides for it: if that feed's status is in ``resend`` (it
    ended without applying anything) or it did not apply the key, the update goes out again.
    """
    keys = {u.idempotency_key for u in updates}
    if not keys:
        return [], []
    placed: dict[str, set[str]] = {}
    feeds: dict[str, JournaledFeed] = {}
    decided: set[str] = set()
    for feed in await journal.carrying(sorted(keys)):
        for entry in feed.entries:
            key = entry.idempotency_key
            if key not in keys or key in decided:
                continue
            decided.add(key)
            if feed.status not in resend and key not in feed.unapplied:
                placed.setdefault(feed.feed_id, set()).add(key)
                feeds[feed.feed_id] = feed
    resumable = [Resumable(feeds[fid], frozenset(found)) for fid, found in placed.items()]
    carried = set().union(*placed.values())
    return resumable, [u for u in updates if u.idempotency_key not in carried]
