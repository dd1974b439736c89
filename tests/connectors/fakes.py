"""Test doubles every marketplace's connector tests use alike."""

from __future__ import annotations

from dataclasses import replace

import httpx

from connectors.base import ChannelDeps
from connectors.journal import FeedJournal
from domain.clock import ManualClock


class FakeSleep:
    """Advances the manual clock instead of sleeping, and remembers every wait."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


def channel_deps(
    http: httpx.AsyncClient,
    clock: ManualClock,
    sleep: FakeSleep,
    journal: FeedJournal | None = None,
) -> ChannelDeps:
    """What the daemon injects into a channel: ``http``, ``clock``, ``sleep`` (and ``journal``,
    if given, as its feed journal)."""
    deps = ChannelDeps(http=http, clock=clock, sleep=sleep)
    return deps if journal is None else replace(deps, feed_journal=journal)
