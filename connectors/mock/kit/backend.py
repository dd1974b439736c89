"""The state every mock marketplace builds on: its market, fault plan, clock and counters.

Each marketplace's state is a dataclass extending ``MockBackend`` with its account, its
marketplace's documents and its rate limits (``rate_limits``, one bucket per operation).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from connectors.mock.faults import Faults
from connectors.mock.market import MockListing, MockMarket, seed_market
from connectors.ratelimit import EXACT, RateLimit, TokenBucket
from domain.clock import Clock, SystemClock

Sleep = Callable[[float], Awaitable[None]]


@dataclass(kw_only=True)
class MockBackend:
    """Market, faults, clock and the counters the control routes and tests read."""

    market: MockMarket = field(default_factory=MockMarket)
    faults: Faults = field(default_factory=Faults)
    clock: Clock = field(default_factory=SystemClock)
    sleep: Sleep = asyncio.sleep  # injected so TIMEOUT faults need no real sleep in tests
    enforce_rate_limits: bool = True
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    calls: Counter[str] = field(default_factory=Counter)
    throttled: Counter[str] = field(default_factory=Counter)  # 429s sent, per operation
    applied: Counter[str] = field(default_factory=Counter)  # applied writes
    dropped: Counter[str] = field(default_factory=Counter)  # accepted but lost (drop fault)
    _buckets: dict[str, TokenBucket] = field(default_factory=dict, repr=False)

    @staticmethod
    def seeded(
        catalog: Path, channel: str, currency: str, competitors: int, seed: int
    ) -> tuple[MockMarket, random.Random]:
        """The market of a catalogue's ``id:<channel>`` rows and the random source it used."""
        rng = random.Random(f"{seed}:{channel}")
        market = seed_market(
            channel=channel, catalog=catalog, currency=currency, competitors=competitors, rng=rng
        )
        return market, rng

    def listing(self, sku: str) -> MockListing | None:
        """The listing of ``sku``, if the seller has one."""
        return self.market.listings.get(sku)

    def bucket(self, operation: str) -> TokenBucket:
        """The server-side token bucket of one operation (or API) for this seller."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            bucket = self._buckets[operation] = TokenBucket(
                self.rate_limits[operation], self.clock, margin=EXACT
            )
        return bucket


def expire(tokens: dict[str, float], clock: Clock) -> int:
    """Make every token of ``tokens`` (token -> monotonic expiry) expired; return how many."""
    past = clock.monotonic() - 1
    for token in tokens:
        tokens[token] = past
    return len(tokens)
