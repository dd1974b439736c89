"""Resuming journaled feeds inside a push: the shared half of the Amazon and Walmart feed paths."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol, TypeVar

from connectors.journal import FeedJournal, JournaledFeed, split_by_feed
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate

Update = TypeVar("Update", PriceUpdate, StockUpdate)


class FollowsFeeds(Protocol):
    """A connector's feed runner: follows a journaled feed, then maps its outcome to results."""

    async def resume(self, feed: JournaledFeed) -> Any:
        """Poll ``feed`` from where an earlier process left it; return its outcome."""
        ...

    async def settle(self, outcome: Any, keys: Sequence[str]) -> list[PushResult]:
        """One result per key in feed order; an ended feed is marked final in the journal."""
        ...


async def resume_carried(
    journal: FeedJournal,
    runner: FollowsFeeds,
    updates: Sequence[Update],
    resend: Collection[str],
) -> tuple[list[PushResult], list[Update]]:
    """Answer the updates a journaled feed already carries from that feed; return those
    results and the updates still to send (never in a feed, or not applied by theirs)."""
    resumable, fresh = await split_by_feed(journal, updates, resend)
    by_key = {u.idempotency_key: u for u in updates}
    results: list[PushResult] = []
    for item in resumable:
        outcome = await runner.resume(item.feed)
        keys = [entry.idempotency_key for entry in item.feed.entries]
        for result in await runner.settle(outcome, keys):
            if result.idempotency_key not in item.keys:
                continue  # another push's update (superseded since, or already answered)
            if result.status is PushStatus.RETRY:
                fresh.append(by_key[result.idempotency_key])
            else:
                results.append(result)
    return results, fresh
