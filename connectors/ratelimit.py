"""Rate limits as data, and the token bucket that paces one account's calls to one operation.

Every marketplace publishes its limits as a token bucket (SP-API: rate tokens/s, burst bucket
size; Shopify: a cost bucket with a restore rate; Walmart: tokens per window). A ``TokenBucket``
is owned by one channel instance (one seller account) per operation; it is never module state.

A client paces inside the published limit by a ``Margin`` (``PACING``, the default): the
marketplace's bucket refills on its own clock and counts a call when the call *arrives*, and
arrival times jitter against our send times (latency, connection set-up, a scheduler waking up
early or late). Pacing exactly at the limit then draws an occasional 429 whenever one call
arrives a few milliseconds "early". A mock marketplace enforcing a limit uses ``EXACT``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from domain.clock import Clock

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


@dataclass(frozen=True, slots=True)
class Margin:
    """How far inside a published limit a client paces.

    ``fraction``: refill our copy of the bucket this much slower than the published rate (a
    marketplace's refill may run slower than its rounded, published figure; over a long run
    only a proportional margin keeps up). ``jitter_s``: a call may arrive at the marketplace up
    to this long before or after we sent it, so two calls may arrive up to twice this closer
    together than we sent them. With a burst to spare that costs one small reserve; at burst 1
    every call waits ``2 × jitter_s`` longer.
    """

    fraction: float
    jitter_s: float

    def __post_init__(self) -> None:
        if not 0 <= self.fraction < 1 or self.jitter_s < 0:
            raise ValueError(f"invalid margin {self.fraction} / {self.jitter_s} s")


EXACT: Final = Margin(0.0, 0.0)  # the marketplace's own bucket (the mocks enforce with this)
# Every client bucket: 5 % under the rate and 50 ms of arrival jitter each way (see README).
PACING: Final = Margin(0.05, 0.05)


class TokenBucket:
    """Client-side copy of a marketplace's bucket: ``acquire`` waits until a call fits.

    The bucket starts full (as the marketplace's does for an idle account). ``drain`` is what a
    throttle signal does: the marketplace says we are out, so we believe it and wait for refill;
    ``observe`` adopts the marketplace's own reading of the bucket (Shopify's throttleStatus,
    Walmart's X-Current-Token-Count) so client and server never drift apart.

    The model is the marketplace's bucket as seen by a call that arrives as early as the margin
    allows, after every earlier call arrived as late as it allows: a call needs ``jitter_s ×
    rate`` tokens on top of its cost, and a spent token refills as from ``jitter_s`` after the
    send. Time is only ever credited once: a clock reading earlier than one already seen (two
    clocks disagreeing, a jittery source) adds nothing, so a burst just spent cannot be spent
    again because the clock stepped back and forth.
    """

    def __init__(
        self,
        limit: RateLimit,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        margin: Margin = PACING,
    ) -> None:
        self._limit = limit
        self.margin = margin
        self._clock = clock
        self._sleep = sleep
        self._at = clock.monotonic()
        # Idle long enough, the marketplace's bucket is full however late our last call arrived.
        self._tokens = self._ceiling
        self._lock = asyncio.Lock()
        self.waited_s = 0.0  # total time spent waiting, for benches and metrics

    @property
    def limit(self) -> RateLimit:
        """The published (or adopted) limit; pacing applies the margin to it."""
        return self._limit

    @limit.setter
    def limit(self, limit: RateLimit) -> None:
        # Time up to now refills at the old rate; only what follows at the new one.
        self._refill()
        self._limit = limit
        self._tokens = min(self._tokens, self._ceiling)

    @property
    def rate(self) -> float:
        """Tokens per second this bucket refills at: the limit's rate less the margin."""
        return self._limit.rate * (1.0 - self.margin.fraction)

    @property
    def _reserve(self) -> float:
        return self.margin.jitter_s * self.rate

    @property
    def _ceiling(self) -> float:
        return float(self._limit.burst) + self._reserve

    @property
    def available(self) -> float:
        """Tokens in the marketplace's bucket now, as far as we can tell."""
        self._refill()
        return min(self._tokens, float(self._limit.burst))

    def _refill(self) -> None:
        now = self._clock.monotonic()
        if now > self._at:
            self._tokens = min(self._ceiling, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def wait_time(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are available (0 if they are now)."""
        self._refill()
        missing = min(cost, float(self._limit.burst)) + self._reserve - self._tokens
        # A float residue must not turn into an endless series of tiny waits.
        return 0.0 if missing <= _EPSILON else missing / self.rate

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait until ``cost`` tokens are available and take them (FIFO among waiters)."""
        async with self._lock:
            while (delay := self.wait_time(cost)) > 0:
                self.waited_s += delay
                await self._sleep(delay)
            spent = min(cost, float(self._limit.burst))
            self._tokens = min(self._tokens, float(self._limit.burst) - self._reserve) - spent

    def drain(self, retry_after_s: float | None = None) -> None:
        """The marketplace throttled us: empty the bucket (or wait ``retry_after_s``)."""
        self._refill()
        if retry_after_s is not None:
            self._tokens = min(self._tokens, 0.0) - retry_after_s * self.rate
        else:
            self._tokens = min(self._tokens, 0.0)

    def observe(self, available: float, rate: float | None = None) -> None:
        """Adopt the marketplace's reported bucket level (and restore rate, if it says)."""
        if rate is not None and rate > 0 and rate != self._limit.rate:
            self.limit = RateLimit(rate, self._limit.burst)
        self._refill()
        self._tokens = min(float(available), float(self._limit.burst))
