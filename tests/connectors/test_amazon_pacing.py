"""Offers polling against the mock SP-API at its published limits: 0 × 429 under clock jitter.

The mock enforces getListingOffersBatch at 0.5/s with burst 1, strictly, as Amazon does. The
daemon's clock and the mock's read one world's time, each a few ms off on every reading (they
disagree by up to 20 ms, either way), and the connector's sleeps wake up to 20 ms early
(tests/pacing_fixtures.py). Nothing takes real time but the loopback round trips.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from connectors.amazon import AmazonChannel
from connectors.amazon.const import LISTING_OFFERS_BATCH, PRICING_BATCH_MAX
from connectors.base import ChannelDeps
from connectors.mock.amazon import AmazonMockState, start
from connectors.mock.market import MockListing, MockMarket, make_competitors
from connectors.ratelimit import EXACT, TokenBucket
from connectors.retry import RetryPolicy
from domain.clock import ManualClock
from tests.connectors.amazon_fixtures import CLIENT_SECRET, MARKET, REFRESH, SELLER, settings
from tests.pacing_fixtures import EarlySleep, JitteryClock

LISTINGS = 60
POLLS = 10  # 60 listings in batches of 20, ten times over: 30 getListingOffersBatch calls
SKUS = [f"SKU-{i:03d}" for i in range(LISTINGS)]


def _market() -> MockMarket:
    rng = random.Random(5)
    market = MockMarket()
    for index, sku in enumerate(SKUS):
        price = Decimal("20.00") + index
        market.listings[sku] = MockListing(sku, f"B0{index:08d}", price, "USD", quantity=3)
        market.competitors[sku] = make_competitors(sku, price, 3, rng)
    return market


@dataclass
class Run:
    """The mock's state (what Amazon counted) and a channel on it."""

    state: AmazonMockState
    amazon: AmazonChannel
    world: ManualClock


@pytest.fixture
async def run() -> AsyncIterator[Run]:
    world = ManualClock()
    state = AmazonMockState(
        market=_market(),
        seller_id=SELLER,
        marketplace_id=MARKET,
        client_id=settings().credentials.client_id,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH,
        clock=JitteryClock(world, seed=11),
    )
    runner, base_url = await start(state)
    async with httpx.AsyncClient() as http:
        deps = ChannelDeps(
            http=http, clock=JitteryClock(world, seed=12), sleep=EarlySleep(world, seed=13)
        )
        amazon_settings = settings(endpoint=base_url, auth_endpoint=f"{base_url}/auth/o2/token")
        amazon = AmazonChannel("amazon-us", amazon_settings, deps, RetryPolicy(attempts=10))
        yield Run(state, amazon, world)
    await runner.cleanup()


async def _poll(run: Run) -> float:
    start = run.world.monotonic()
    for _ in range(POLLS):
        observations = await run.amazon.fetch_competitor_offers(SKUS)
        assert [o.sku for o in observations] == SKUS
    return run.world.monotonic() - start


async def test_offers_polling_at_the_published_limit_draws_no_429(run: Run) -> None:
    elapsed = await _poll(run)
    calls = POLLS * LISTINGS // PRICING_BATCH_MAX
    assert run.state.calls[LISTING_OFFERS_BATCH] == calls
    assert run.state.throttled[LISTING_OFFERS_BATCH] == 0
    # The mock held us to its limit: burst 1, then one call per 2 s at most.
    assert elapsed >= run.state.rate_limits[LISTING_OFFERS_BATCH].lower_bound_s(calls)


async def test_pacing_exactly_at_the_limit_draws_429s_from_the_same_mock(run: Run) -> None:
    # The control: with no margin the same jitter costs 429s (issue 12 saw 2-4 per 30 calls).
    client = run.amazon.client
    limit = client.buckets[LISTING_OFFERS_BATCH].limit
    client.buckets[LISTING_OFFERS_BATCH] = TokenBucket(
        limit, client.deps.clock, client.deps.sleep, margin=EXACT
    )
    await _poll(run)
    assert run.state.throttled[LISTING_OFFERS_BATCH] >= 2
