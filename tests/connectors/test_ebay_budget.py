"""Revision budget per listing per eBay (Pacific) day, value ordering, and daily call quotas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import respx

from connectors.base import MemoryLedger
from connectors.ebay import EbayChannel
from connectors.ebay.budget import DailyQuotas, pacific_date, value
from connectors.ebay.inventory import OfferRef
from domain.clock import ManualClock
from domain.writes import PriceUpdate, PushStatus, StockUpdate
from tests.connectors.ebay_fixtures import BULK, FakeSleep, body, bulk_ok, channel, token_route

LISTING = "110012345678"


def mug(ebay: EbayChannel, sku: str = "MUG", listing: str = LISTING, n: int = 0) -> None:
    ebay.refs[sku] = OfferRef(sku, str(9876543210 + n), listing, Decimal("20.00"), 10)


async def spent(ebay: EbayChannel, n: int, listing: str = LISTING) -> None:
    """Count ``n`` revisions of ``listing`` today, as earlier pushes would have."""
    await ebay.budget.record(ebay.budget.day(), [listing] * n)


@asynccontextmanager
async def mug_channel(
    clock: ManualClock, sleep: FakeSleep, **overrides: Any
) -> AsyncIterator[tuple[EbayChannel, respx.Route]]:
    """An eBay channel (its token granted, every bulk call accepted) that knows the MUG offer;
    and the bulk route."""
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(side_effect=bulk_ok)
        ebay = channel(http, clock, sleep, **overrides)
        mug(ebay)
        yield ebay, bulk


def move(sku: str, value_: str, key: str) -> PriceUpdate:
    return PriceUpdate(sku, Decimal(value_), "USD", key)


async def test_plenty_of_budget_sends_small_moves(clock: ManualClock, sleep: FakeSleep) -> None:
    async with mug_channel(clock, sleep) as (ebay, bulk):
        await spent(ebay, 225)  # 25 left = exactly 10%: not low yet
        [result] = await ebay.push_prices([move("MUG", "20.01", "a")])
    assert result.status is PushStatus.CONFIRMED
    assert bulk.call_count == 1
    assert await ebay.budget.remaining(LISTING) == 24


async def test_low_budget_coalesces_small_price_moves(clock: ManualClock, sleep: FakeSleep) -> None:
    async with mug_channel(clock, sleep) as (ebay, bulk):
        await spent(ebay, 226)  # 24 left < 10% of 250
        [small] = await ebay.push_prices([move("MUG", "20.30", "small")])  # 1.5% < 2%
        assert bulk.call_count == 0
        [large] = await ebay.push_prices([move("MUG", "21.00", "large")])  # 5%
        assert bulk.call_count == 1
    assert (small.status, small.code) == (PushStatus.DEFERRED, "REVISION_BUDGET")
    assert "1.50%" in (small.message or "")
    assert large.status is PushStatus.CONFIRMED


async def test_last_revisions_are_kept_for_stock(clock: ManualClock, sleep: FakeSleep) -> None:
    async with mug_channel(clock, sleep) as (ebay, bulk):
        await spent(ebay, 245)  # 5 left = the stock reserve
        [priced] = await ebay.push_prices([move("MUG", "30.00", "p")])
        [stocked] = await ebay.push_stock([StockUpdate("MUG", 0, "s")])
    assert (priced.status, priced.code) == (PushStatus.DEFERRED, "REVISION_BUDGET")
    assert stocked.status is PushStatus.CONFIRMED
    assert bulk.call_count == 1


async def test_exhausted_budget_makes_no_call_until_pacific_midnight(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with mug_channel(clock, sleep) as (ebay, bulk):
        await spent(ebay, 250)
        [stock] = await ebay.push_stock([StockUpdate("MUG", 0, "s")])
        [price] = await ebay.push_prices([move("MUG", "30.00", "p")])
        assert bulk.call_count == 0
        assert (stock.status, stock.code) == (PushStatus.DEFERRED, "REVISION_BUDGET_EXHAUSTED")
        assert (price.status, price.code) == (PushStatus.DEFERRED, "REVISION_BUDGET_EXHAUSTED")
        # 12:00 UTC is 04:00 PST: eBay's day ends at 08:00 UTC tomorrow.
        assert "2026-03-03T08:00:00+00:00" in (stock.message or "")
        clock.advance(12 * 3600)  # midnight UTC: still the same eBay day
        [still] = await ebay.push_stock([StockUpdate("MUG", 0, "s")])
        assert still.code == "REVISION_BUDGET_EXHAUSTED"
        clock.advance(8 * 3600 - 1)  # 23:59:59 PST
        [last] = await ebay.push_stock([StockUpdate("MUG", 0, "s")])
        assert last.code == "REVISION_BUDGET_EXHAUSTED"
        clock.advance(1)  # midnight Pacific
        [fresh] = await ebay.push_stock([StockUpdate("MUG", 0, "s")])
    assert fresh.status is PushStatus.CONFIRMED
    assert bulk.call_count == 1
    assert await ebay.budget.used(LISTING) == 1


async def test_every_successful_revision_counts(clock: ManualClock, sleep: FakeSleep) -> None:
    async with mug_channel(clock, sleep, daily_revision_limit=3, stock_reserve=0) as (ebay, _):
        statuses = []
        for n in range(4):
            [result] = await ebay.push_stock([StockUpdate("MUG", 10 + n, f"s{n}")])
            statuses.append(result.code or result.status.value)
    assert statuses == ["confirmed", "confirmed", "confirmed", "REVISION_BUDGET_EXHAUSTED"]


async def test_most_valuable_changes_use_a_shared_listing_budget_first(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(side_effect=bulk_ok)
        ebay = channel(http, clock, sleep)
        # Three variations of one multi-SKU listing with two revisions left today.
        for n, sku in enumerate(("RED", "BLUE", "GREEN")):
            mug(ebay, sku, n=n)
        await spent(ebay, 248)
        results = await ebay.push_stock(
            [
                StockUpdate("RED", 9, "small"),  # 10 -> 9
                StockUpdate("BLUE", 0, "sellout"),  # 10 -> 0
                StockUpdate("GREEN", 2, "big"),  # 10 -> 2
            ]
        )
    by_key = {r.idempotency_key: r for r in results}
    assert [r["sku"] for r in body(bulk.calls.last.request)["requests"]] == ["BLUE", "GREEN"]
    assert by_key["sellout"].status is PushStatus.CONFIRMED
    assert by_key["big"].status is PushStatus.CONFIRMED
    assert by_key["small"].code == "REVISION_BUDGET_EXHAUSTED"


def test_value_ranks_sellouts_then_restocks_then_larger_moves() -> None:
    ranked = sorted(
        [
            ("small", value(Decimal("20"), Decimal("20.5"), stock=False)),
            ("restock", value(0, 5, stock=True)),
            ("large", value(Decimal("20"), Decimal("15"), stock=False)),
            ("sellout", value(3, 0, stock=True)),
            ("unknown", value(None, Decimal("15"), stock=False)),
        ],
        key=lambda pair: pair[1],
    )
    assert [name for name, _ in ranked] == ["sellout", "restock", "unknown", "large", "small"]


async def test_call_quota_stops_calls_and_leaves_the_rest_open(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "today", "tomorrow")
        bulk = router.post(BULK).mock(side_effect=bulk_ok)
        ebay = channel(http, clock, sleep, daily_call_quotas={"sell.inventory": 1})
        for n in range(30):
            mug(ebay, f"SKU-{n}", listing=str(n), n=n)
        # From 10 to n % 10: SKU-0, SKU-10 and SKU-20 sell out, SKU-9/19/29 barely move.
        updates = [StockUpdate(f"SKU-{n}", n % 10, f"k{n}") for n in range(30)]
        results = await ebay.push_stock(updates)
        assert bulk.call_count == 1
        assert await ebay.client.quotas.used("sell.inventory") == 1
        codes = [r.code for r in results if r.status is PushStatus.DEFERRED]
        assert codes == ["DAILY_QUOTA_EXHAUSTED"] * 5
        sent = [r["sku"] for r in body(bulk.calls.last.request)["requests"]]
        assert sent[:3] == ["SKU-0", "SKU-10", "SKU-20"]  # the sell-outs went first
        held = {r.idempotency_key for r in results if r.status is PushStatus.DEFERRED}
        # The five smallest moves (10 -> 9 and two of 10 -> 8) wait for tomorrow's quota.
        assert {"k9", "k19", "k29"} <= held
        # The quota day is the Pacific day: 12:00 UTC + 20 h = 00:00 PST next day.
        clock.advance(20 * 3600)
        again = await ebay.push_stock(updates[:1])
    assert again[0].status is PushStatus.CONFIRMED
    assert bulk.call_count == 2


def test_quota_day_follows_us_pacific_time() -> None:
    # PST (UTC-8) in winter, PDT (UTC-7) in summer; switches on 2026-03-08 and 2026-11-01.
    assert pacific_date(datetime(2026, 1, 15, 7, 59, tzinfo=UTC)).isoformat() == "2026-01-14"
    assert pacific_date(datetime(2026, 1, 15, 8, 0, tzinfo=UTC)).isoformat() == "2026-01-15"
    assert pacific_date(datetime(2026, 7, 1, 6, 59, tzinfo=UTC)).isoformat() == "2026-06-30"
    assert pacific_date(datetime(2026, 7, 1, 7, 0, tzinfo=UTC)).isoformat() == "2026-07-01"
    assert pacific_date(datetime(2026, 3, 8, 9, 59, tzinfo=UTC)).isoformat() == "2026-03-08"
    assert pacific_date(datetime(2026, 11, 2, 7, 59, tzinfo=UTC)).isoformat() == "2026-11-01"
    assert pacific_date(datetime(2026, 11, 2, 8, 0, tzinfo=UTC)).isoformat() == "2026-11-02"


async def test_quota_counter_refuses_past_the_limit(clock: ManualClock) -> None:
    quotas = DailyQuotas(MemoryLedger(), "ebay-us", clock, {"buy.browse": 2})
    assert [await quotas.take("buy.browse") for _ in range(3)] == [True, True, False]
    assert await quotas.remaining("buy.browse") == 0
    assert await quotas.take("unlisted")  # no quota configured: never refused


async def test_concurrent_pushes_share_the_last_revision(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async def slow_ok(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # the other push plans while this one is on the wire
        return bulk_ok(request)

    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(side_effect=slow_ok)
        ebay = channel(http, clock, sleep, stock_reserve=0)
        mug(ebay)
        await ebay.client.auth.user.token()
        await spent(ebay, 249)
        [stock], [priced] = await asyncio.gather(
            ebay.push_stock([StockUpdate("MUG", 0, "s")]),
            ebay.push_prices([move("MUG", "30.00", "p")]),
        )
    assert bulk.call_count == 1
    assert stock.status is PushStatus.CONFIRMED
    assert priced.code == "REVISION_BUDGET_EXHAUSTED"
    assert await ebay.budget.remaining(LISTING) == 0


async def test_a_failed_call_gives_its_reservation_back(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(BULK).mock(return_value=httpx.Response(503))
        ebay = channel(http, clock, sleep)
        mug(ebay)
        await spent(ebay, 240)
        [result] = await ebay.push_stock([StockUpdate("MUG", 1, "s")])
    assert result.status is PushStatus.RETRY
    assert await ebay.budget.remaining(LISTING) == 10
