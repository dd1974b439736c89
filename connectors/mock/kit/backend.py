"""The state every mock marketplace builds on: its market, fault plan, clock and counters.

Each marketplace's state is a dataclass extending ``MockBackend`` with its account, its
marketplace's documents and its rate limits (``rate_limits``, one bucket per operation).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from connectors.mock.faults import Fault, Faults
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
    token_ttl_s: int = 3600
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expiry (monotonic)
    _buckets: dict[str, TokenBucket] = field(default_factory=dict, repr=False)

    # The seeding of ``from_catalog``: the default channel name, and whether the catalogue's
    # ``stock`` and ``fulfillment:<channel>`` columns apply (``seed_market``).
    default_channel: ClassVar[str] = "mock"
    catalog_stock: ClassVar[bool] = True

    @staticmethod
    def seeded(
        catalog: Path, channel: str, currency: str, competitors: int, seed: int, stock: bool = True
    ) -> tuple[MockMarket, random.Random]:
        """The market of a catalogue's ``id:<channel>`` rows and the random source it used."""
        rng = random.Random(f"{seed}:{channel}")
        market = seed_market(
            channel=channel,
            catalog=catalog,
            currency=currency,
            competitors=competitors,
            rng=rng,
            stock=stock,
        )
        return market, rng

    @classmethod
    def from_catalog(
        cls,
        catalog: Path,
        *,
        channel: str | None = None,
        currency: str = "USD",
        competitors: int = 4,
        seed: int = 1,
        **kwargs: Any,
    ) -> Self:
        """Seed from a catalogue CSV's ``id:<channel>`` and ``price:<channel>`` columns."""
        channel = channel or cls.default_channel
        market, rng = cls.seeded(catalog, channel, currency, competitors, seed, cls.catalog_stock)
        return cls(market=market, rng=rng, **kwargs)

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

    def counted(self, *extra: str) -> dict[str, dict[str, int]]:
        """Per-operation counters for ``/_mock/state``: calls, 429s, applied, dropped, ``extra``."""
        names = ("calls", "throttled", "applied", "dropped", *extra)
        return {name: dict(getattr(self, name)) for name in names}

    def mint(self, token: str) -> str:
        """Keep ``token`` valid for ``token_ttl_s`` on the state's clock; return it."""
        self.tokens[token] = self.clock.monotonic() + self.token_ttl_s
        return token

    def expire_tokens(self) -> int:
        """Make every issued token expired (tests of the refresh path); return how many."""
        return expire(self.tokens, self.clock)

    def new_uuid(self) -> uuid.UUID:
        """A UUID from the state's seeded random source (ids repeat across seeded runs)."""
        return uuid.UUID(int=self.rng.getrandbits(128))

    async def take(self, bucket: str | None) -> bool:
        """Spend a token of ``bucket`` (free when limits are off or there is none); False: empty."""
        if not self.enforce_rate_limits or bucket is None:
            return True
        tokens = self.bucket(bucket)
        if tokens.wait_time() > 0:
            return False
        await tokens.acquire()  # a token is there: this never waits
        return True

    async def fault(self) -> Fault:
        """Draw one call's fault; a TIMEOUT hangs ``hang_s`` here, then the call goes on."""
        fault = self.faults.draw()
        if fault is Fault.TIMEOUT:
            await self.sleep(self.faults.hang_s)
        return fault


def expire(tokens: dict[str, float], clock: Clock) -> int:
    """Make every token of ``tokens`` (token -> monotonic expiry) expired; return how many."""
    past = clock.monotonic() - 1
    for token in tokens:
        tokens[token] = past
    return len(tokens)
