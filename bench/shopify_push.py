"""10,000 price and 10,000 quantity changes pushed to the mock Shopify at its real cost limits.

The write path is the daemon's own: intents recorded by the ``Outbox``, dispatched in batches to
the real ``ShopifyChannel`` (httpx over loopback, cost bucket, retries), answered by the mock
Shopify server (aiohttp, graphql-core, Shopify's cost rules) on the real clock with a Standard
plan bucket: 2,000 points, 100 points/s restore. Prices are one ``productVariantsBulkUpdate`` per
product (10 variants each), quantities ``inventorySetQuantities`` of 250 rows; every mutation is
charged 10 points, so the bucket, not the CPU, sets the pace.

Lower bound: a full bucket at the start, then nothing can go faster than the restore rate:
``(points charged - initial bucket) / restoreRate``. Target: wall within 1.2x of it and no
THROTTLED answer (the connector's client-side bucket, fed by every ``throttleStatus``, waits
instead). Discovery (reading the 10,000 variants, ~50,000 points) is set-up and runs against an
unlimited bucket; the measured phase starts with a fresh Standard bucket on both sides.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from connectors.base import ChannelDeps
from connectors.mock.market import MockListing, MockMarket
from connectors.mock.shopify.app import start
from connectors.mock.shopify.cost import STANDARD_PLAN, CostBucket
from connectors.mock.shopify.state import ShopifyMockState
from connectors.ratelimit import TokenBucket
from connectors.shopify import ShopifyChannel, ShopifySettings
from connectors.shopify.const import COST_LIMIT
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import ActionKind, ActionStatus
from daemon.intents import PlannedWrite, new_idempotency_key
from daemon.listings import refresh_listings
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from domain.clock import SystemClock

CHANGES = 10_000
VARIANTS_PER_PRODUCT = 10
START_QUANTITY = 50
CHANNEL = "shop"
UNLIMITED = 1e12


def _market(count: int) -> MockMarket:
    market = MockMarket()
    for i in range(count):
        sku = f"P{i // VARIANTS_PER_PRODUCT:05d}-{i % VARIANTS_PER_PRODUCT}"
        market.listings[sku] = MockListing(sku, "", Decimal("20.00"), "USD", START_QUANTITY)
    return market


def _intents(skus: list[str], kind: ActionKind, now: datetime) -> list[PlannedWrite]:
    rows = []
    for i, sku in enumerate(skus):
        values: dict[str, Any] = (
            {
                "old_price": Decimal("20.00"),
                "new_price": Decimal("21.00") + Decimal(i % 100) / 100,
                "currency": "USD",
            }
            if kind is ActionKind.PRICE
            else {"old_quantity": START_QUANTITY, "new_quantity": i % 40}
        )
        rows.append(
            PlannedWrite(
                pass_id="bench",
                kind=kind,
                channel=CHANNEL,
                sku=sku,
                status=ActionStatus.PLANNED,
                idempotency_key=new_idempotency_key(),
                created_at=now,
                **values,
            )
        )
    return rows


def _counters(state: ShopifyMockState) -> dict[str, int]:
    c = state.counters
    return {
        "calls": c.calls,
        "points": c.points_actual,
        "throttled": c.throttled,
        "http_429": c.http_429,
    }


async def _phase(
    outbox: Outbox, channel: ShopifyChannel, state: ShopifyMockState, kind: ActionKind
) -> dict[str, Any]:
    before = _counters(state)
    started = time.perf_counter()
    report = await outbox.dispatch(channel, kind)
    wall = time.perf_counter() - started
    after = _counters(state)
    return {
        "wall_s": round(wall, 2),
        **{k: after[k] - before[k] for k in after},
        "confirmed": report.confirmed,
        "not_confirmed": report.sent - report.confirmed,
    }


async def main(listings: int = CHANGES) -> dict[str, Any]:
    """Push min(listings, 10,000) price and quantity changes; report time, calls and points."""
    count = min(listings, CHANGES)
    clock = SystemClock()
    state = ShopifyMockState(market=_market(count), webhooks_on_writes=False)
    state.bucket = CostBucket(UNLIMITED, UNLIMITED, clock)  # discovery is set-up, not measured
    runner, base_url = await start(state)
    settings = ShopifySettings.model_validate(
        {
            "kind": "shopify",
            "shop": state.shop_domain,
            "endpoint": base_url,
            "access_token": state.access_token.get_secret_value(),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        await upgrade(db)
        try:
            async with httpx.AsyncClient(timeout=30.0) as http:
                deps = ChannelDeps(http=http, clock=clock)
                channel = ShopifyChannel(CHANNEL, settings, deps)
                await channel.open()
                live = await channel.fetch_listings()
                await refresh_listings(db, clock, CHANNEL, live)
                outbox = Outbox(db, clock, Metrics())
                skus = sorted(listing.sku for listing in live)
                now = datetime.now(UTC)
                await outbox.record(_intents(skus, ActionKind.PRICE, now))
                await outbox.record(_intents(skus, ActionKind.STOCK, now))
                # The measured phase: a Standard plan's full bucket on both sides.
                plan = STANDARD_PLAN
                state.bucket = CostBucket(plan.maximum_available, plan.restore_rate, clock)
                channel.client.bucket = TokenBucket(COST_LIMIT, clock, deps.sleep)
                started = time.perf_counter()
                prices = await _phase(outbox, channel, state, ActionKind.PRICE)
                stock = await _phase(outbox, channel, state, ActionKind.STOCK)
                wall = time.perf_counter() - started
        finally:
            await runner.cleanup()
            await db.dispose()
    points = prices["points"] + stock["points"]
    bound = max(0.0, points - plan.maximum_available) / plan.restore_rate
    wrong_prices = sum(
        1
        for i, sku in enumerate(skus)
        if state.market.listings[sku].price != Decimal("21.00") + Decimal(i % 100) / 100
    )
    wrong_quantities = sum(
        1 for i, sku in enumerate(skus) if state.market.listings[sku].quantity != i % 40
    )
    effects = state.market.effects
    return {
        "price_changes": count,
        "quantity_changes": count,
        "plan": {"maximum_available": plan.maximum_available, "restore_rate": plan.restore_rate},
        "prices": prices,
        "quantities": stock,
        "wall_s": round(wall, 2),
        "calls": prices["calls"] + stock["calls"],
        "points": points,
        "throttled": prices["throttled"] + stock["throttled"],
        "http_429": prices["http_429"] + stock["http_429"],
        "lower_bound_s": round(bound, 2),
        "ratio_to_bound": round(wall / bound, 3) if bound else None,
        "target_ratio": 1.2,
        "not_applied": {"prices": wrong_prices, "quantities": wrong_quantities},
        "max_effects_per_key": max(effects.values(), default=0),
    }
