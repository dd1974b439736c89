"""Rate limits as data, and the token bucket that paces one account's calls to one operation.

Every marketplace publishes its limits as a token bucket (SP-API: rate tokens/s, burst bucket
size; Shopify: a cost bucket with a restore rate; Walmart: tokens per window). A ``TokenBucket``
is owned by one channel instance (one seller account) per operation; it is never module state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connectors.base import Clock

_EPSILON = 1e-9
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A published limit: ``rate`` tokens restored per second, at most ``burst`` held."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"invalid rate limit {self.rate}/s burst {self.burst}")

    def lower_bound_s(self, calls: int) -> float:
        """Least wall time ``calls`` calls need from a full bucket."""
        return max(0.0, (calls - self.burst) / self.rate)


class TokenBucket:
    """Client-side copy of a marketplace's bucket: ``acquire`` waits until a call fits.

    The bucket starts full (as the marketplace's does for an idle account). ``drain`` is what a
    throttle signal does: the marketplace says we are out, so we believe it and wait for refill;
    ``observe`` adopts the marketplace's own reading of the bucket (Shopify's throttleStatus,
    Walmart's X-Current-Token-Count) so client and server never drift apart.
    """

    def __init__(self, limit: RateLimit, clock: Clock, sleep: Sleep = asyncio.sleep) -> None:
        self.limit = limit
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(limit.burst)
        self._at = clock.monotonic()
        self._lock = asyncio.Lock()
        self.waited_s = 0.0  # total time spent waiting, for benches and metrics

    @property
    def available(self) -> float:
        """Tokens in the bucket now."""
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._at)
        self._tokens = min(float(self.limit.burst), self._tokens + elapsed * self.limit.rate)
        self._at = now

    def wait_time(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are available (0 if they are now)."""
        self._refill()
        missing = min(cost, float(self.limit.burst)) - self._tokens
        # A float residue must not turn into an endless series of tiny waits.
        return 0.0 if missing <= _EPSILON else missing / self.limit.rate

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait until ``cost`` tokens are available and take them (FIFO among waiters)."""
        async with self._lock:
            while (delay := self.wait_time(cost)) > 0:
                self.waited_s += delay
                await self._sleep(delay)
            self._tokens -= min(cost, float(self.limit.burst))

    def drain(self, retry_after_s: float | None = None) -> None:
        """The marketplace throttled us: empty the bucket (or wait ``retry_after_s``)."""
        self._refill()
        if retry_after_s is not None:
            self._tokens = min(self._tokens, 0.0) - retry_after_s * self.limit.rate
        else:
            self._tokens = min(self._tokens, 0.0)

    def observe(self, available: float, rate: float | None = None) -> None:
        """Adopt the marketplace's reported bucket level (and restore rate, if it says)."""
        if rate is not None and rate > 0 and rate != self.limit.rate:
            self.limit = RateLimit(rate, self.limit.burst)
        self._refill()
        self._tokens = min(float(available), float(self.limit.burst))
