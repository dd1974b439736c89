"""eBay's revisions per listing per day (issue 12, items 1-2): price moves stop at the limit less
the stock reserve, stock always finds its reserve, the count lives in the shared ledger (so a
fresh channel, like a new ``run --once``, sees it), and eBay's own limit refusal, whatever its
errorId, is deferred to the next eBay (Pacific) day."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from connectors.base import ChannelDeps, MemoryLedger
from connectors.ebay import EbayChannel
from connectors.ebay.inventory import OfferRef
from connectors.retry import RetryPolicy
from domain.clock import ManualClock
from domain.writes import PriceUpdate, PushStatus, StockUpdate
from tests.connectors.ebay_fixtures import BULK, FakeSleep, body, bulk_ok, settings, token_route

LISTING = "110012345678"
OFFER = "9876543210"


def fresh(
    http: httpx.AsyncClient,
    clock: ManualClock,
    sleep: FakeSleep,
    ledger: MemoryLedger,
    **overrides: Any,
) -> EbayChannel:
    """A new channel object over a shared ledger (the database, in the daemon)."""
    deps = ChannelDeps(http=http, clock=clock, sleep=sleep, ledger=ledger)
    ebay = EbayChannel("ebay-us", settings(**overrides), deps, RetryPolicy(attempts=3))
    ebay.refs["MUG"] = OfferRef("MUG", OFFER, LISTING, Decimal("20.00"), 5)
    return ebay


def kinds(requests: list[httpx.Request]) -> list[str]:
    """'price' or 'stock' for each bulk entry sent, in order."""
    entries = [e for r in requests for e in body(r)["requests"]]
    return ["stock" if "shipToLocationAvailability" in e else "price" for e in entries]


@pytest.mark.parametrize("restart", [False, True], ids=["one-channel", "fresh-each-push"])
async def test_price_moves_stop_at_limit_less_reserve_and_every_stock_change_lands(
    clock: ManualClock, sleep: FakeSleep, restart: bool
) -> None:
    """daily_revision_limit 20, stock_reserve 5: 30 one-cent moves and five stock changes
    (5 → 0); the listing never passes 20 and prices stop at 15. With ``restart`` every push
    is made by a new channel object, as separate ``run --once`` processes would."""
    ledger = MemoryLedger()
    overrides = {"daily_revision_limit": 20, "stock_reserve": 5}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, *(f"t{n}" for n in range(40)))  # a token per new channel
        bulk = router.post(BULK).mock(side_effect=bulk_ok)
        ebay = fresh(http, clock, sleep, ledger, **overrides)
        prices = []
        for n in range(30):
            ebay = fresh(http, clock, sleep, ledger, **overrides) if restart else ebay
            update = PriceUpdate("MUG", Decimal("20.01") + n * Decimal("0.01"), "USD", f"p{n}")
            [result] = await ebay.push_prices([update])
            prices.append(result)
        stock = []
        for units in (4, 3, 2, 1, 0):
            ebay = fresh(http, clock, sleep, ledger, **overrides) if restart else ebay
            [result] = await ebay.push_stock([StockUpdate("MUG", units, f"s{units}")])
            stock.append(result)
        # A sixth stock change would pass eBay's limit: it waits, eBay is not asked.
        [sixth] = await ebay.push_stock([StockUpdate("MUG", 3, "s-again")])
        used = await ebay.budget.used(LISTING)
    sent = [call.request for call in bulk.calls]
    assert kinds(sent) == ["price"] * 15 + ["stock"] * 5
    assert [r.status for r in prices] == [PushStatus.CONFIRMED] * 15 + [PushStatus.DEFERRED] * 15
    assert {r.code for r in prices[15:]} == {"REVISION_BUDGET"}
    assert "5 revisions left today, kept for stock updates" in (prices[-1].message or "")
    assert [r.status for r in stock] == [PushStatus.CONFIRMED] * 5
    assert body(sent[-1])["requests"][0]["shipToLocationAvailability"] == {"quantity": 0}
    assert (sixth.status, sixth.code) == (PushStatus.DEFERRED, "REVISION_BUDGET_EXHAUSTED")
    assert used == 20


async def test_stock_sent_before_the_prices_still_leaves_the_reserve(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """The reserve is on the listing's whole count: stock written earlier in the day counts,
    so prices stop at 15 revisions in all and the last five stay free for stock."""
    ledger = MemoryLedger()
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(side_effect=bulk_ok)
        ebay = fresh(http, clock, sleep, ledger, daily_revision_limit=20, stock_reserve=5)
        [first] = await ebay.push_stock([StockUpdate("MUG", 4, "s0")])
        for n in range(20):
            await ebay.push_prices([PriceUpdate("MUG", Decimal(21 + n), "USD", f"p{n}")])
        for units in (3, 2, 1, 0, 5):
            [result] = await ebay.push_stock([StockUpdate("MUG", units, f"s{units}")])
            assert result.status is PushStatus.CONFIRMED, result
    assert first.status is PushStatus.CONFIRMED
    assert kinds([c.request for c in bulk.calls]) == ["stock"] + ["price"] * 14 + ["stock"] * 5


# (errorId, message) of eBay refusing a revision for the daily limit: the Inventory API's
# documented "Cannot revise listing" (25019, OAS), with and without eBay's detail; the generic
# 25002 "Any User error. {additionalInfo}" carrying the limit text; and a Trading-style 219xxxxx
# id, which eBay does not document for this case, recognised by its message alone.
LIMIT_REFUSALS = [
    (25019, "Cannot revise listing."),
    (
        25019,
        "Cannot revise listing. Listing 110012345678 has reached the maximum of 250 revisions "
        "allowed per day.",
    ),
    (25002, "Any User error. The listing has reached its revision limit for today."),
    (21919999, "This listing has been revised the maximum number of times allowed today."),
]


def refusal(error_id: int, message: str) -> dict[str, Any]:
    """One 207 line refusing the offer's revision."""
    error = {"errorId": error_id, "domain": "API_INVENTORY", "category": "REQUEST"}
    return {"statusCode": 400, "offerId": OFFER, "errors": [{**error, "message": message}]}


@pytest.mark.parametrize(("error_id", "message"), LIMIT_REFUSALS)
async def test_ebays_limit_refusal_waits_for_the_next_ebay_day(
    clock: ManualClock, sleep: FakeSleep, error_id: int, message: str
) -> None:
    ledger = MemoryLedger()
    refusing = httpx.Response(207, json={"responses": [refusal(error_id, message)]})
    applied = httpx.Response(200, json={"responses": [{"statusCode": 200, "offerId": OFFER}]})
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "t1", "t2", "t3")
        bulk = router.post(BULK).mock(side_effect=[refusing, applied])
        ebay = fresh(http, clock, sleep, ledger)
        [refused] = await ebay.push_stock([StockUpdate("MUG", 2, "s")])
        assert (refused.status, refused.code) == (PushStatus.DEFERRED, "REVISION_BUDGET_EXHAUSTED")
        assert str(error_id) in (refused.message or "")
        # The same day (a new channel too: the count is in the ledger): eBay is not asked.
        clock.advance(12 * 3600)  # 00:00 UTC, 16:00 PST
        [waiting] = await fresh(http, clock, sleep, ledger).push_stock([StockUpdate("MUG", 2, "s")])
        assert (waiting.status, waiting.code) == (PushStatus.DEFERRED, "REVISION_BUDGET_EXHAUSTED")
        assert "2026-03-03T08:00:00+00:00" in (waiting.message or "")
        clock.advance(8 * 3600 - 1)  # 23:59:59 PST
        [still] = await ebay.push_stock([StockUpdate("MUG", 2, "s")])
        assert still.code == "REVISION_BUDGET_EXHAUSTED"
        assert bulk.call_count == 1
        clock.advance(1)  # midnight Pacific: eBay's next day
        [sent] = await ebay.push_stock([StockUpdate("MUG", 2, "s")])
        assert sent.status is PushStatus.CONFIRMED
        assert bulk.call_count == 2
        assert await ebay.budget.used(LISTING) == 1


async def test_a_whole_call_refused_for_the_limit_defers_its_one_entry(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    error = refusal(25019, "Cannot revise listing.")["errors"]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        bulk = router.post(BULK).mock(return_value=httpx.Response(400, json={"errors": error}))
        ebay = fresh(http, clock, sleep, MemoryLedger())
        [refused] = await ebay.push_prices([PriceUpdate("MUG", Decimal("21.00"), "USD", "p")])
        [again] = await ebay.push_prices([PriceUpdate("MUG", Decimal("22.00"), "USD", "p2")])
    assert (refused.status, refused.code) == (PushStatus.DEFERRED, "REVISION_BUDGET_EXHAUSTED")
    assert again.code == "REVISION_BUDGET_EXHAUSTED"
    assert bulk.call_count == 1


async def test_other_refusals_are_rejected_and_give_their_revision_back(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """A revise refused for its content ("price … maximum") is not the daily limit."""
    line = refusal(25002, "Any User error. Cannot revise: the price exceeds the maximum allowed.")
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(BULK).mock(return_value=httpx.Response(207, json={"responses": [line]}))
        ebay = fresh(http, clock, sleep, MemoryLedger())
        [result] = await ebay.push_prices([PriceUpdate("MUG", Decimal("21.00"), "USD", "p")])
        used = await ebay.budget.used(LISTING)
    assert (result.status, result.code) == (PushStatus.REJECTED, "25002")
    assert used == 0


async def test_call_quotas_survive_a_fresh_channel(clock: ManualClock, sleep: FakeSleep) -> None:
    ledger = MemoryLedger()
    quotas = {"daily_call_quotas": {"sell.inventory": 1}}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "t1", "t2")
        bulk = router.post(BULK).mock(side_effect=bulk_ok)
        [first] = await fresh(http, clock, sleep, ledger, **quotas).push_stock(
            [StockUpdate("MUG", 2, "s")]
        )
        [second] = await fresh(http, clock, sleep, ledger, **quotas).push_stock(
            [StockUpdate("MUG", 1, "s2")]
        )
    assert first.status is PushStatus.CONFIRMED
    assert (second.status, second.code) == (PushStatus.DEFERRED, "DAILY_QUOTA_EXHAUSTED")
    assert bulk.call_count == 1
