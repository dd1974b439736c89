"""The shared limiter's pacing margin: every operation of every marketplace table stays inside
its published limit under clock jitter, and a burst just spent is never spent twice."""

from __future__ import annotations

import pytest

from connectors.amazon.const import LISTING_OFFERS_BATCH
from connectors.amazon.const import RATE_LIMITS as AMAZON
from connectors.ebay.const import NEW_KEY_LOOKUPS
from connectors.ebay.const import RATE_LIMITS as EBAY
from connectors.ratelimit import EXACT, PACING, Margin, RateLimit, TokenBucket
from connectors.shopify.const import COST_LIMIT
from connectors.walmart.const import RATE_LIMITS as WALMART
from domain.clock import ManualClock
from tests.pacing_fixtures import EarlySleep, JitteryClock

TABLES = {
    **{f"amazon.{op}": (limit, 1.0) for op, limit in AMAZON.items()},
    **{f"walmart.{op}": (limit, 1.0) for op, limit in WALMART.items()},
    **{f"ebay.{family}": (limit, 1.0) for family, limit in EBAY.items()},
    "ebay.keyLookups": (NEW_KEY_LOOKUPS, 1.0),
    # A Shopify call of 100 points against the 2000-point, 100 points/s bucket.
    "shopify.graphql": (COST_LIMIT, 100.0),
}


class Advance:
    """A plain sleep on the manual clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.clock.advance(seconds)


async def refusals(limit: RateLimit, cost: float, calls: int, margin: Margin, seed: int) -> int:
    """Send ``calls`` back to back through a client bucket against the marketplace's own
    (exact) bucket, each side reading the world's time through its own jittery clock and the
    client's sleeps waking early; return how many calls the marketplace refused."""
    world = ManualClock()
    client = TokenBucket(
        limit, JitteryClock(world, seed), EarlySleep(world, seed + 1), margin=margin
    )
    server = TokenBucket(limit, JitteryClock(world, seed + 2), margin=EXACT)
    refused = 0
    sent = 0
    while sent < calls:
        await client.acquire(cost)
        if server.wait_time(cost) > 0:
            refused += 1
            client.drain()  # what retrying does with a 429: believe it, wait for the refill
            continue
        await server.acquire(cost)
        sent += 1
    return refused


@pytest.mark.parametrize("name", sorted(TABLES))
async def test_every_operation_paces_without_a_refusal_under_jitter(name: str) -> None:
    limit, cost = TABLES[name]
    calls = int(limit.burst / cost) + 30  # the whole burst, then 30 calls at the refill rate
    assert await refusals(limit, cost, calls, PACING, seed=len(name)) == 0


async def test_pacing_exactly_at_the_limit_is_refused_under_the_same_jitter() -> None:
    # The control: the jitter model bites. Calls 2.000 s apart at 0.5/s burst 1 (issue 12).
    refused = await refusals(AMAZON[LISTING_OFFERS_BATCH], 1.0, 30, EXACT, seed=3)
    assert refused >= 3


async def test_burst_one_waits_the_margin_on_every_call() -> None:
    clock = ManualClock()
    bucket = TokenBucket(RateLimit(0.5, 1), clock, Advance(clock))
    start = clock.monotonic()
    for _ in range(11):
        await bucket.acquire()
    # 10 intervals of 1/(0.5 × 0.95) s plus twice the jitter guard each (2.205 s, not 2.000).
    interval = 1 / (0.5 * (1 - PACING.fraction)) + 2 * PACING.jitter_s
    assert clock.monotonic() - start == pytest.approx(10 * interval)
    assert bucket.rate == pytest.approx(0.475)


async def test_a_larger_burst_pays_the_jitter_guard_once() -> None:
    clock = ManualClock()
    bucket = TokenBucket(RateLimit(5, 5), clock, Advance(clock))
    start = clock.monotonic()
    for _ in range(25):
        await bucket.acquire()
    # The burst, less a reserve of 2 × 50 ms of refill, then 20 calls at 5/s less 5 %.
    assert clock.monotonic() - start == pytest.approx(20 / 4.75 + 2 * PACING.jitter_s)


async def test_a_spent_burst_is_not_refilled_by_a_clock_stepping_back_and_forth() -> None:
    class Stepping:
        """A monotonic source that alternates between two readings 20 ms apart."""

        def __init__(self) -> None:
            self.readings = 0
            self.clock = ManualClock()

        def now(self):  # type: ignore[no-untyped-def]
            return self.clock.now()

        def monotonic(self) -> float:
            self.readings += 1
            return 1000.0 - (0.02 if self.readings % 2 else 0.0)

    bucket = TokenBucket(RateLimit(1, 1), Stepping(), margin=EXACT)
    await bucket.acquire()
    # Back and forth over the same 20 ms many times: they count once, not once per step.
    for _ in range(200):
        bucket.wait_time()
    assert bucket.available == pytest.approx(0.0, abs=1e-9)


async def test_a_new_limit_applies_from_now_on() -> None:
    clock = ManualClock()
    bucket = TokenBucket(RateLimit(1, 10), clock, margin=EXACT)
    await bucket.acquire(10)
    clock.advance(2)
    # Two seconds refilled at the old 1/s; the slower plan applies only to what follows.
    bucket.limit = RateLimit(0.2, 10)
    assert bucket.available == pytest.approx(2.0)
    clock.advance(5)
    assert bucket.available == pytest.approx(3.0)
    # A smaller burst caps what the bucket holds at once.
    bucket.limit = RateLimit(0.2, 1)
    assert bucket.available == pytest.approx(1.0)


def test_margin_values_are_checked() -> None:
    with pytest.raises(ValueError, match="invalid margin"):
        Margin(1.0, 0.05)
    with pytest.raises(ValueError, match="invalid margin"):
        Margin(0.05, -1)
