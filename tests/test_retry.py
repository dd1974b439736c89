"""The one retry loop and the token bucket: pacing, throttle signals, deadlines, no real sleeps.

Buckets here run with the ``EXACT`` margin (the bucket's own arithmetic); the pacing margin is
tested in tests/test_ratelimit.py.
"""

from __future__ import annotations

import httpx
import pytest

from connectors.ratelimit import EXACT, RateLimit, TokenBucket
from connectors.retry import RetryPolicy, retrying, transport_errors
from domain.clock import ManualClock
from domain.errors import ChannelAuthError, RateLimitedError, TransientChannelError


class FakeSleep:
    """Advances the manual clock instead of sleeping, and remembers every wait."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def sleep(clock: ManualClock) -> FakeSleep:
    return FakeSleep(clock)


async def test_bucket_allows_burst_then_paces_at_rate(clock: ManualClock, sleep: FakeSleep) -> None:
    bucket = TokenBucket(RateLimit(rate=5, burst=5), clock, sleep, EXACT)
    start = clock.monotonic()
    for _ in range(15):
        await bucket.acquire()
    # 5 from the burst, then 10 more at 5/s: exactly the published lower bound.
    assert clock.monotonic() - start == pytest.approx(2.0)
    assert RateLimit(5, 5).lower_bound_s(15) == pytest.approx(2.0)


async def test_drain_and_observe_adopt_the_marketplace_view(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    bucket = TokenBucket(RateLimit(rate=50, burst=1000), clock, sleep, EXACT)
    bucket.observe(100)
    assert bucket.available == pytest.approx(100)
    assert bucket.wait_time(300) == pytest.approx(4.0)
    bucket.drain(retry_after_s=2)
    assert bucket.wait_time(1) == pytest.approx(2.02)
    bucket.observe(10, rate=100)
    assert bucket.limit.rate == 100


async def test_transient_errors_are_retried_with_backoff(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TransientChannelError("503", status=503)
        return "ok"

    assert await retrying(flaky, clock=clock, sleep=sleep) == "ok"
    assert calls == 3
    assert len(sleep.waits) == 2
    assert all(0 <= wait <= 30 for wait in sleep.waits)


async def test_rate_limited_waits_for_the_bucket_refill(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    bucket = TokenBucket(RateLimit(rate=0.5, burst=1), clock, sleep, EXACT)
    calls = 0

    async def throttled_once() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RateLimitedError("QuotaExceeded", status=429)
        return calls

    assert await retrying(throttled_once, clock=clock, bucket=bucket, sleep=sleep) == 2
    # One token taken, bucket drained by the 429: the retry waits one full refill (2 s).
    assert sum(sleep.waits) == pytest.approx(2.0)


async def test_attempt_cap_and_deadline_reraise_the_last_error(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    calls = 0

    async def always_down() -> None:
        nonlocal calls
        calls += 1
        raise TransientChannelError(f"down {calls}")

    with pytest.raises(TransientChannelError, match="down 3"):
        await retrying(always_down, clock=clock, sleep=sleep, policy=RetryPolicy(attempts=3))
    calls = 0
    policy = RetryPolicy(attempts=100, deadline_s=5, backoff_base_s=2, backoff_max_s=2)
    with pytest.raises(TransientChannelError):
        await retrying(always_down, clock=clock, sleep=sleep, policy=policy)
    assert calls < 100


async def test_auth_errors_are_not_retried(clock: ManualClock, sleep: FakeSleep) -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise ChannelAuthError("Unauthorized", status=403)

    with pytest.raises(ChannelAuthError):
        await retrying(refused, clock=clock, sleep=sleep)
    assert calls == 1
    assert sleep.waits == []


def test_transport_errors_become_transient() -> None:
    with pytest.raises(TransientChannelError, match="timeout"), transport_errors("getFeed"):
        raise httpx.ReadTimeout("slow")
    with pytest.raises(TransientChannelError, match="ConnectError"), transport_errors("getFeed"):
        raise httpx.ConnectError("refused")
