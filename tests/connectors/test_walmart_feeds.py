"""Bulk feeds: multipart upload, polling, per-item ingestion → results, and the feed budget."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from connectors.journal import FeedEntry, MemoryFeedJournal
from connectors.walmart.const import PRICE_FEED
from domain.clock import ManualClock
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate
from tests.connectors.walmart_fixtures import (
    API,
    FakeSleep,
    assert_wm_headers,
    channel,
    feed_file,
    token_route,
    walmart_error,
)

FEED_ID = "F129C19240844B97A3C6AD8F1A2C4997@AU8BAQA"
FEED_URL = f"{API}/v3/feeds/F129C19240844B97A3C6AD8F1A2C4997%40AU8BAQA"
PRICE_OK = {"ItemPriceResponse": {"mart": "WALMART_US", "sku": "x", "message": "ok"}}


def prices(count: int, prefix: str = "SKU") -> list[PriceUpdate]:
    return [
        PriceUpdate(f"{prefix}-{n}", Decimal("10.00") + n, "USD", f"{prefix}-k{n}")
        for n in range(count)
    ]


def status_page(
    items: list[dict[str, Any]], status: str = "PROCESSED", received: int | None = None
) -> dict[str, Any]:
    return {
        "feedId": FEED_ID,
        "feedStatus": status,
        "feedSubmissionDate": 1568310803059,
        "itemsReceived": len(items) if received is None else received,
        "itemsSucceeded": sum(1 for i in items if i["ingestionStatus"] == "SUCCESS"),
        "itemsFailed": sum(1 for i in items if i["ingestionStatus"].endswith("ERROR")),
        "itemsProcessing": 0,
        "offset": 0,
        "limit": 50,
        "itemDetails": {"itemIngestionStatus": items},
    }


def item(
    sku: str, status: str = "SUCCESS", index: int | None = None, **error: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {"martId": 0, "sku": sku, "ingestionStatus": status}
    if index is not None:
        entry["index"] = index
    if error:
        entry["ingestionErrors"] = {"ingestionError": [{"type": status, **error}]}
    return entry


async def test_price_feed_lifecycle_maps_each_item_back(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    updates = prices(12)
    details = [item(u.sku, index=n) for n, u in enumerate(updates)]
    details[3] = item("SKU-3", "DATA_ERROR", 3, code="ERR_EXT_DATA_0101", description="bad price")
    details[5] = item("SKU-5", "SYSTEM_ERROR", 5, code="ERR_INT_SYS_0001", description="later")
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        submit = router.post(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(200, json={"feedId": FEED_ID})
        )
        poll = router.get(url__startswith=FEED_URL).mock(
            side_effect=[
                httpx.Response(200, json=status_page([], "INPROGRESS", 12)),
                httpx.Response(200, json=status_page(details)),
            ]
        )
        results = await channel(http, clock, sleep).push_prices(updates)
    request = submit.calls.last.request
    assert str(request.url) == f"{API}/v3/feeds?feedType=price"
    assert_wm_headers(request)
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    name, filename, document = feed_file(request)
    assert (name, filename) == ("file", "price.json")
    assert document["PriceHeader"] == {"version": "1.7"}
    assert document["Price"][0] == {
        "sku": "SKU-0",
        "pricing": [
            {"currentPriceType": "BASE", "currentPrice": {"currency": "USD", "amount": 10}}
        ],
    }
    assert [p["sku"] for p in document["Price"]] == [u.sku for u in updates]
    assert str(poll.calls.last.request.url) == f"{FEED_URL}?includeDetails=true&offset=0&limit=50"
    assert sleep.waits == [60, 60]  # a feed is never done the moment it is created
    by_key = {r.idempotency_key: r for r in results}
    assert by_key["SKU-k3"] == PushResult(
        "SKU-k3", PushStatus.REJECTED, "ERR_EXT_DATA_0101", "bad price", f"feed:{FEED_ID}"
    )
    assert by_key["SKU-k5"].status is PushStatus.RETRY
    assert by_key["SKU-k5"].code == "ERR_INT_SYS_0001"
    others = [r for k, r in by_key.items() if k not in ("SKU-k3", "SKU-k5")]
    assert len(others) == 10
    assert all(r.status is PushStatus.CONFIRMED for r in others)


async def test_inventory_feed_details_are_paged_and_matched_by_sku(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    updates = [StockUpdate(f"S{n}", n, f"k{n}") for n in range(60)]
    first = [item(f"S{n}") for n in range(50)]
    second = [item(f"S{n}", "TIMEOUT_ERROR" if n == 55 else "SUCCESS") for n in range(50, 60)]
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        submit = router.post(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(200, json={"feedId": FEED_ID})
        )
        poll = router.get(url__startswith=FEED_URL).mock(
            side_effect=[
                httpx.Response(200, json=status_page(first, received=60)),
                httpx.Response(200, json=status_page(second, received=60)),
            ]
        )
        results = await channel(http, clock, sleep).push_stock(updates)
    assert str(submit.calls.last.request.url) == f"{API}/v3/feeds?feedType=inventory"
    _, _, document = feed_file(submit.calls.last.request)
    assert document["InventoryHeader"] == {"version": "1.4"}
    assert document["Inventory"][7] == {"sku": "S7", "quantity": {"unit": "EACH", "amount": 7}}
    assert [str(c.request.url).split("?")[1] for c in poll.calls] == [
        "includeDetails=true&offset=0&limit=50",
        "includeDetails=true&offset=50&limit=50",
    ]
    statuses = {r.idempotency_key: r.status for r in results}
    assert statuses.pop("k55") is PushStatus.RETRY
    assert set(statuses.values()) == {PushStatus.CONFIRMED}


async def test_mp_inventory_feed_names_the_ship_node(clock: ManualClock, sleep: FakeSleep) -> None:
    updates = [StockUpdate(f"S{n}", 5, f"k{n}") for n in range(11)]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        submit = router.post(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(200, json={"feedId": FEED_ID})
        )
        router.get(url__startswith=FEED_URL).mock(
            return_value=httpx.Response(200, json=status_page([item(u.sku) for u in updates]))
        )
        walmart = channel(
            http, clock, sleep, ship_node="10000003527", inventory_feed_type="MP_INVENTORY"
        )
        await walmart.push_stock(updates)
    assert str(submit.calls.last.request.url) == f"{API}/v3/feeds?feedType=MP_INVENTORY"
    _, _, document = feed_file(submit.calls.last.request)
    assert document["inventoryHeader"] == {"version": "1.5"}
    assert document["inventory"][0] == {
        "sku": "S0",
        "shipNodes": [{"shipNode": "10000003527", "quantity": {"unit": "EACH", "amount": 5}}],
    }


async def test_feed_still_processing_at_the_timeout_is_accepted(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    updates = prices(11)
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(200, json={"feedId": FEED_ID})
        )
        poll = router.get(url__startswith=FEED_URL).mock(
            return_value=httpx.Response(200, json=status_page([], "RECEIVED", 11))
        )
        results = await channel(http, clock, sleep, feed_timeout_s=300).push_prices(updates)
    assert poll.call_count == 5  # 60 s apart, within the 300 s budget
    assert {r.status for r in results} == {PushStatus.ACCEPTED}
    assert {r.marketplace_ref for r in results} == {f"feed:{FEED_ID}"}


async def test_feed_error_with_a_data_error_rejects_every_item(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    page = status_page([], "ERROR", 11)
    page["ingestionErrors"] = {
        "ingestionError": [{"type": "DATA_ERROR", "code": "ERR_PDI_0001", "description": "bad"}]
    }
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(200, json={"feedId": FEED_ID})
        )
        router.get(url__startswith=FEED_URL).mock(return_value=httpx.Response(200, json=page))
        results = await channel(http, clock, sleep).push_prices(prices(11))
    assert {(r.status, r.code) for r in results} == {(PushStatus.REJECTED, "ERR_PDI_0001")}


async def test_feed_refused_at_submission(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(f"{API}/v3/feeds").mock(
            return_value=walmart_error(400, "INVALID_REQUEST.GMP_FEED_API", "bad file")
        )
        results = await channel(http, clock, sleep).push_prices(prices(11))
    assert {(r.status, r.code) for r in results} == {
        (PushStatus.REJECTED, "INVALID_REQUEST.GMP_FEED_API")
    }


async def test_eleven_big_batches_in_an_hour_make_ten_feeds(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        submit = router.post(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(200, json={"feedId": FEED_ID})
        )

        def processed(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, json=status_page([], received=0))

        router.get(url__startswith=FEED_URL).mock(side_effect=processed)
        singles = router.put(f"{API}/v3/price").mock(
            return_value=httpx.Response(200, json=PRICE_OK)
        )
        walmart = channel(http, clock, sleep, feed_poll_interval_s=1)
        for batch in range(10):
            await walmart.push_prices(prices(11, f"B{batch}"))
        assert submit.call_count == 10
        results = await walmart.push_prices(prices(11, "B10"))
        assert submit.call_count == 10  # the 11th feed is never sent: no 429 was needed
        assert singles.call_count == 10  # the first single_max_batch still go, one by one
        deferred = [r for r in results if r.status is PushStatus.DEFERRED]
        assert [r.idempotency_key for r in deferred] == ["B10-k10"]
        assert deferred[0].code == "FEED_BUDGET_EXHAUSTED"
        # The budget refills at 10/h: one feed is possible again ~6 minutes later.
        clock.advance(walmart.client.buckets[PRICE_FEED].wait_time())
        await walmart.push_prices(prices(11, "B11"))
        assert submit.call_count == 11


async def test_duplicate_skus_send_only_the_newest(clock: ManualClock, sleep: FakeSleep) -> None:
    updates = [*prices(11), PriceUpdate("SKU-0", Decimal("99.00"), "USD", "newer")]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        submit = router.post(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(200, json={"feedId": FEED_ID})
        )
        router.get(url__startswith=FEED_URL).mock(
            return_value=httpx.Response(200, json=status_page([], received=0))
        )
        results = await channel(http, clock, sleep).push_prices(updates)
    _, _, document = feed_file(submit.calls.last.request)
    skus = [p["sku"] for p in document["Price"]]
    assert len(skus) == len(set(skus)) == 11
    assert document["Price"][-1]["pricing"][0]["currentPrice"]["amount"] == Decimal("99.00")
    older = next(r for r in results if r.idempotency_key == "SKU-k0")
    assert (older.status, older.code) == (PushStatus.DEFERRED, "DUPLICATE_SKU")
    assert len(results) == len(updates)


async def test_walmarts_feed_window_reading_plans_the_next_push(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    replenish_ms = int(clock.now().timestamp() * 1000) + 3_600_000
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        submit = router.post(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(
                200,
                json={"feedId": FEED_ID},
                headers={
                    "X-Current-Token-Count": "0",
                    "X-Next-Replenishment-Time": str(replenish_ms),
                },
            )
        )
        router.get(url__startswith=FEED_URL).mock(
            return_value=httpx.Response(200, json=status_page([], received=0))
        )
        singles = router.put(f"{API}/v3/price").mock(
            return_value=httpx.Response(200, json=PRICE_OK)
        )
        walmart = channel(http, clock, sleep, feed_poll_interval_s=1)
        await walmart.push_prices(prices(11, "A"))
        results = await walmart.push_prices(prices(11, "B"))
    # Walmart said the hour's feeds are spent: no second feed, no 429 provoked.
    assert submit.call_count == 1
    assert singles.call_count == 10
    assert [r.code for r in results if r.status is PushStatus.DEFERRED] == ["FEED_BUDGET_EXHAUSTED"]
    assert walmart.client.buckets[PRICE_FEED].wait_time() == pytest.approx(3600 - 1, abs=1)


async def test_open_replays_the_hours_feeds_into_the_budget(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """A fresh process (restart, ``run --once``) reads GET /v3/feeds at open: ten price feeds
    in the last 40 minutes leave the price budget at 10 - 10 + 40 min x 10/h, one older than
    the hour and the inventory feed do not count, so the next push is planned, not throttled."""
    now_ms = int(clock.now().timestamp() * 1000)
    minute = 60_000
    records = [
        {"feedId": f"P{n}", "feedType": "price", "feedDate": now_ms - (40 - n) * minute}
        for n in range(10)
    ]
    records += [
        {"feedId": "I0", "feedType": "inventory", "feedDate": now_ms - 5 * minute},
        {"feedId": "OLD", "feedType": "price", "feedDate": now_ms - 61 * minute},
    ]
    records.sort(key=lambda r: -int(r["feedDate"]))  # newest first, as Walmart lists them
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(f"{API}/v3/items").mock(return_value=httpx.Response(200, json={}))
        listed = router.get(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(
                200, json={"totalResults": len(records), "results": {"feed": records}}
            )
        )
        walmart = channel(http, clock, sleep)
        await walmart.open()
    assert listed.calls[0].request.url.params["limit"] == "50"
    price_left = walmart.client.buckets[PRICE_FEED].available
    # A full bucket an hour ago; each feed spends a token; 10/h (1/6 a minute) come back.
    tokens, at = 10.0, -60.0
    for n in range(10):
        moment = -(40 - n)
        tokens = min(10.0, tokens + (moment - at) / 6) - 1
        at = moment
    tokens = min(10.0, tokens + (0 - at) / 6)
    assert price_left == pytest.approx(tokens, abs=0.01)
    assert price_left == pytest.approx(10 - 10 + 9 / 6 + 31 / 6, abs=0.01)
    inventory_left = walmart.client.buckets["updateBulkInventory"].available
    assert inventory_left == pytest.approx(10 - 1 + 5 / 6, abs=0.01)  # one feed 5 min ago


def journal_entries(updates: list[PriceUpdate]) -> list[FeedEntry]:
    return [FeedEntry(u.idempotency_key, u.sku) for u in updates]


async def test_a_journaled_feed_is_polled_not_submitted_again(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """The re-drive after a crash: the feed's items answer its updates, by their index in the
    feed (not in this push), even for a batch small enough for single PUTs."""
    updates = prices(12)
    journal = MemoryFeedJournal()
    await journal.record(FEED_ID, None, "price", journal_entries(updates))
    details = [item(u.sku, index=n) for n, u in enumerate(updates)]
    details[3] = item("SKU-3", "DATA_ERROR", 3, code="ERR_EXT_DATA_0101", description="bad price")
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        # No submit and no PUT route: either would fail the test (respx refuses unmatched).
        poll = router.get(url__startswith=FEED_URL).mock(
            side_effect=[
                httpx.Response(200, json=status_page([], "INPROGRESS", 12)),
                httpx.Response(200, json=status_page(details)),
            ]
        )
        results = await channel(http, clock, sleep, journal).push_prices([updates[7], updates[3]])
    assert poll.call_count == 2
    assert sleep.waits == [0.0, 60]  # a resumed feed is looked at at once
    ref = f"feed:{FEED_ID}"
    assert sorted(results, key=lambda r: r.idempotency_key) == [
        PushResult("SKU-k3", PushStatus.REJECTED, "ERR_EXT_DATA_0101", "bad price", ref),
        PushResult("SKU-k7", PushStatus.CONFIRMED, None, None, ref),
    ]
    (journaled,) = await journal.carrying(["SKU-k3"])
    assert (journaled.status, journaled.unapplied) == ("PROCESSED", frozenset())


async def test_items_a_resumed_feed_did_not_apply_go_out_again(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    updates = prices(2)
    journal = MemoryFeedJournal()
    await journal.record(FEED_ID, None, "price", journal_entries(updates))
    details = [
        item("SKU-0", index=0),
        item("SKU-1", "SYSTEM_ERROR", 1, code="ERR_INT_SYS_0001", description="later"),
    ]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(url__startswith=FEED_URL).mock(
            return_value=httpx.Response(200, json=status_page(details))
        )
        single = router.put(f"{API}/v3/price").mock(return_value=httpx.Response(200, json=PRICE_OK))
        results = await channel(http, clock, sleep, journal).push_prices(updates)
    assert single.call_count == 1
    assert json.loads(single.calls.last.request.content)["sku"] == "SKU-1"
    by_key = {r.idempotency_key: r for r in results}
    assert (by_key["SKU-k0"].status, by_key["SKU-k0"].marketplace_ref) == (
        PushStatus.CONFIRMED,
        f"feed:{FEED_ID}",
    )
    # Answered by the single PUT, not by the feed's SYSTEM_ERROR.
    assert (by_key["SKU-k1"].status, by_key["SKU-k1"].marketplace_ref) == (
        PushStatus.ACCEPTED,
        None,
    )
    (journaled,) = await journal.carrying(["SKU-k1"])
    assert journaled.unapplied == {"SKU-k1"}
