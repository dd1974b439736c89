"""JSON_LISTINGS_FEED end to end: document, upload, createFeed, polling, report mapping."""

from __future__ import annotations

import gzip
import json
from collections.abc import Collection, Sequence
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from connectors.journal import FeedEntry, MemoryFeedJournal
from domain.clock import ManualClock
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate
from tests.connectors.amazon_fixtures import (
    API,
    MARKET,
    SELLER,
    TOKEN,
    FakeSleep,
    body,
    channel,
    token_route,
)

UPLOAD = "https://tortuga-prod-na.s3-external-1.amazonaws.com/in-1?X-Amz-Signature=abc"
REPORT = "https://tortuga-prod-na.s3-external-1.amazonaws.com/out-1?X-Amz-Signature=def"
DOC_IN = "amzn1.tortuga.4.na.in-1"
DOC_OUT = "amzn1.tortuga.4.na.out-1"
FEED_ID = "50001019654"


def feed(status: str, **extra: Any) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "feedId": FEED_ID,
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": [MARKET],
            "createdTime": "2026-03-02T12:00:00Z",
            "processingStatus": status,
            **extra,
        },
    )


def report(issues: list[dict[str, Any]], accepted: int, invalid: int) -> dict[str, Any]:
    return {
        "header": {"sellerId": SELLER, "version": "2.0", "feedId": FEED_ID},
        "issues": issues,
        "summary": {
            "errors": len(issues),
            "warnings": 0,
            "messagesProcessed": accepted + invalid,
            "messagesAccepted": accepted,
            "messagesInvalid": invalid,
        },
    }


def routes(
    router: respx.MockRouter, statuses: list[str], report_body: bytes | None
) -> dict[str, respx.Route]:
    token_route(router)
    polls = [feed(s) for s in statuses[:-1]] + [
        feed(statuses[-1], resultFeedDocumentId=DOC_OUT)
        if statuses[-1] == "DONE"
        else feed(statuses[-1])
    ]
    out = {
        "document": router.post(f"{API}/feeds/2021-06-30/documents").mock(
            return_value=httpx.Response(201, json={"feedDocumentId": DOC_IN, "url": UPLOAD})
        ),
        "upload": router.put(UPLOAD).mock(return_value=httpx.Response(200)),
        "create": router.post(f"{API}/feeds/2021-06-30/feeds").mock(
            return_value=httpx.Response(202, json={"feedId": FEED_ID})
        ),
        "poll": router.get(f"{API}/feeds/2021-06-30/feeds/{FEED_ID}").mock(side_effect=polls),
    }
    if report_body is not None:
        out["meta"] = router.get(f"{API}/feeds/2021-06-30/documents/{DOC_OUT}").mock(
            return_value=httpx.Response(
                200,
                json={"feedDocumentId": DOC_OUT, "url": REPORT, "compressionAlgorithm": "GZIP"},
            )
        )
        out["download"] = router.get(REPORT).mock(
            return_value=httpx.Response(200, content=report_body)
        )
    return out


def prices(n: int) -> list[PriceUpdate]:
    return [
        PriceUpdate(f"SKU-{i}", Decimal("19.99") + i, "USD", f"key-{i}", floor=Decimal("10.00"))
        for i in range(1, n + 1)
    ]


async def test_large_batch_goes_as_one_feed_and_the_report_maps_back(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    issues = [
        {"messageId": 2, "sku": "SKU-2", "code": "4000003", "severity": "ERROR",
         "message": "The Amazon product type specified is invalid or not supported."},
        {"messageId": 3, "sku": "SKU-3", "code": "99010", "severity": "WARNING",
         "message": "A value was not provided for optional attribute."},
    ]  # fmt: skip
    gz = gzip.compress(json.dumps(report(issues, accepted=2, invalid=1)).encode())
    async with respx.mock() as router, httpx.AsyncClient() as http:
        r = routes(router, ["IN_QUEUE", "IN_PROGRESS", "DONE"], gz)
        # No PATCH route: a single-item call would fail the test (respx refuses unmatched).
        amazon = channel(http, clock, sleep, patch_max_batch=2)
        results = await amazon.push_prices(prices(3))

    assert body(r["document"].calls.last.request) == {
        "contentType": "application/json; charset=UTF-8"
    }
    upload = r["upload"].calls.last.request
    assert upload.method == "PUT"
    assert upload.headers["content-type"] == "application/json; charset=UTF-8"
    assert "x-amz-access-token" not in upload.headers  # S3 authenticates by the URL alone
    document = body(upload)
    assert document["header"] == {"sellerId": SELLER, "version": "2.0", "issueLocale": "en_US"}
    assert [m["messageId"] for m in document["messages"]] == [1, 2, 3]
    assert document["messages"][0] == {
        "messageId": 1,
        "sku": "SKU-1",
        "operationType": "PATCH",
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/purchasable_offer",
                "value": [
                    {
                        "marketplace_id": MARKET,
                        "currency": "USD",
                        "audience": "ALL",
                        "our_price": [{"schedule": [{"value_with_tax": Decimal("20.99")}]}],
                        "minimum_seller_allowed_price": [
                            {"schedule": [{"value_with_tax": Decimal("10.00")}]}
                        ],
                    }
                ],
            }
        ],
    }
    assert b'"value_with_tax":20.99' in upload.content
    create = r["create"].calls.last.request
    assert create.headers["x-amz-access-token"] == TOKEN
    assert body(create) == {
        "feedType": "JSON_LISTINGS_FEED",
        "marketplaceIds": [MARKET],
        "inputFeedDocumentId": DOC_IN,
    }
    assert r["poll"].call_count == 3
    for name, method in (("document", "POST"), ("create", "POST"), ("poll", "GET"),
                         ("meta", "GET")):  # fmt: skip
        for call in r[name].calls:
            assert call.request.method == method
            assert call.request.headers["x-amz-access-token"] == TOKEN
            assert call.request.headers["x-amz-date"]
    assert str(r["meta"].calls.last.request.url) == f"{API}/feeds/2021-06-30/documents/{DOC_OUT}"
    assert sleep.waits.count(30) == 3  # feed_poll_interval_s before every look
    assert "x-amz-access-token" not in r["download"].calls.last.request.headers

    by_key = {result.idempotency_key: result for result in results}
    ref = f"feed:{FEED_ID}"
    assert by_key == {
        "key-1": PushResult("key-1", PushStatus.ACCEPTED, marketplace_ref=ref),
        "key-2": PushResult(
            "key-2",
            PushStatus.REJECTED,
            "4000003",
            "The Amazon product type specified is invalid or not supported.",
            ref,
        ),
        "key-3": PushResult("key-3", PushStatus.ACCEPTED, marketplace_ref=ref),
    }


async def test_fatal_feed_leaves_every_update_to_retry(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        routes(router, ["IN_PROGRESS", "FATAL"], None)
        results = await channel(http, clock, sleep, patch_max_batch=0).push_stock(
            [StockUpdate("SKU-1", 1, "s-1"), StockUpdate("SKU-2", 0, "s-2")]
        )
    assert {(r.idempotency_key, r.status, r.code) for r in results} == {
        ("s-1", PushStatus.RETRY, "FATAL"),
        ("s-2", PushStatus.RETRY, "FATAL"),
    }


async def test_feed_still_running_at_timeout_is_accepted_for_reconcile(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        r = routes(router, ["IN_PROGRESS"] * 20 + ["DONE"], None)
        start = clock.monotonic()
        results = await channel(http, clock, sleep, patch_max_batch=0).push_prices(prices(2))
    # feed_timeout_s=300 at a 30 s interval: ten looks, then give up waiting (not the feed).
    assert r["poll"].call_count == 10
    assert clock.monotonic() - start <= 300 + 1
    assert {r.status for r in results} == {PushStatus.ACCEPTED}
    assert all(r.marketplace_ref == f"feed:{FEED_ID}" for r in results)


async def test_feed_that_could_not_be_created_is_retried_later(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.post(f"{API}/feeds/2021-06-30/documents").mock(return_value=httpx.Response(503))
        results = await channel(http, clock, sleep, patch_max_batch=0).push_prices(prices(2))
    assert {r.status for r in results} == {PushStatus.RETRY}


async def test_uncompressed_report_is_read_too(clock: ManualClock, sleep: FakeSleep) -> None:
    plain = json.dumps(report([], accepted=1, invalid=0)).encode()
    async with respx.mock() as router, httpx.AsyncClient() as http:
        r = routes(router, ["DONE"], plain)
        r["meta"].mock(
            return_value=httpx.Response(200, json={"feedDocumentId": DOC_OUT, "url": REPORT})
        )
        (result,) = await channel(http, clock, sleep, patch_max_batch=0).push_prices(prices(1))
    assert result.status is PushStatus.ACCEPTED
    assert r["download"].call_count == 1


async def test_expired_upload_url_leaves_the_updates_open(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        r = routes(router, ["DONE"], None)
        r["upload"].mock(return_value=httpx.Response(403, text="<Error>AccessDenied</Error>"))
        results = await channel(http, clock, sleep, patch_max_batch=0).push_prices(prices(2))
    assert r["upload"].call_count == 1  # the same URL would fail again: not retried
    assert r["create"].call_count == 0
    assert {(r.status, r.code) for r in results} == {(PushStatus.RETRY, "HTTP403")}


async def test_polls_keep_to_a_grid_when_getfeed_answers_slowly(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """A getFeed answer that takes 4 s does not push the next looks back: 30, 26, 26 s waits."""
    statuses = iter(["IN_QUEUE", "IN_PROGRESS", "FATAL"])

    def slow(_request: httpx.Request) -> httpx.Response:
        clock.advance(4.0)
        return feed(next(statuses))

    async with respx.mock() as router, httpx.AsyncClient() as http:
        r = routes(router, ["FATAL"], None)
        r["poll"].mock(side_effect=slow)
        start = clock.monotonic()
        await channel(http, clock, sleep, patch_max_batch=0).push_prices(prices(1))
    assert [w for w in sleep.waits if w >= 1] == [30, 26, 26]
    assert clock.monotonic() - start == pytest.approx(3 * 30 + 4)


class OrderedJournal(MemoryFeedJournal):
    """A memory journal that logs its calls into ``events``, beside the test's HTTP calls."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    async def record(
        self, feed_id: str, document_id: str | None, kind: str, entries: Sequence[FeedEntry]
    ) -> None:
        self.events.append(f"record {feed_id} {document_id} {kind} {len(entries)}")
        await super().record(feed_id, document_id, kind, entries)

    async def finish(self, feed_id: str, status: str, unapplied: Collection[str] = ()) -> None:
        self.events.append(f"finish {feed_id} {status} {sorted(unapplied)}")
        await super().finish(feed_id, status, unapplied)


def entries(*numbers: int) -> list[FeedEntry]:
    return [FeedEntry(f"key-{n}", f"SKU-{n}") for n in numbers]


REFUSED_2 = [
    {"messageId": 2, "sku": "SKU-2", "code": "4000003", "severity": "ERROR",
     "message": "The Amazon product type specified is invalid or not supported."},
]  # fmt: skip


async def test_the_feed_is_journaled_before_it_is_polled(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    events: list[str] = []
    journal = OrderedJournal(events)
    gz = gzip.compress(json.dumps(report([], accepted=2, invalid=0)).encode())
    async with respx.mock() as router, httpx.AsyncClient() as http:
        r = routes(router, ["IN_PROGRESS", "DONE"], gz)
        r["create"].side_effect = lambda _req: (
            events.append("createFeed") or httpx.Response(202, json={"feedId": FEED_ID})
        )
        r["poll"].side_effect = [
            lambda _req, s=s: events.append("getFeed") or feed(s, resultFeedDocumentId=DOC_OUT)
            for s in ("IN_PROGRESS", "DONE")
        ]
        await channel(http, clock, sleep, journal, patch_max_batch=0).push_prices(prices(2))
    assert events == [
        "createFeed",
        f"record {FEED_ID} {DOC_IN} price 2",
        "getFeed",
        "getFeed",
        f"finish {FEED_ID} DONE []",
    ]
    (journaled,) = await journal.carrying(["key-1"])
    assert journaled.entries == tuple(entries(1, 2))
    assert journaled.status == "DONE"


async def test_a_journaled_feed_still_processing_is_polled_not_created_again(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """The re-drive after a crash: the feed's report answers its updates, by their position in
    the feed (not in this push), even for a batch small enough for single PATCHes."""
    journal = MemoryFeedJournal()
    await journal.record(FEED_ID, DOC_IN, "price", entries(1, 2, 3))
    gz = gzip.compress(json.dumps(report(REFUSED_2, accepted=2, invalid=1)).encode())
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        r = routes(router, ["IN_PROGRESS", "DONE"], gz)
        # No PATCH route: a PATCH would fail the test (respx refuses unmatched requests).
        amazon = channel(http, clock, sleep, journal)
        # key-1 was superseded meanwhile: only key-3 and key-2 are pushed, in this order.
        results = await amazon.push_prices(list(reversed(prices(3)[1:])))
    for name in ("document", "upload", "create"):
        assert r[name].call_count == 0, name
    assert r["poll"].call_count == 2
    assert [w for w in sleep.waits if w >= 1] == [30]  # the first look is at once
    ref = f"feed:{FEED_ID}"
    assert sorted(results, key=lambda x: x.idempotency_key) == [
        PushResult("key-2", PushStatus.REJECTED, "4000003", REFUSED_2[0]["message"], ref),
        PushResult("key-3", PushStatus.ACCEPTED, marketplace_ref=ref),
    ]
    (journaled,) = await journal.carrying(["key-2"])
    assert journaled.status == "DONE"


async def test_a_journaled_done_feed_maps_its_report_at_once(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    journal = MemoryFeedJournal()
    await journal.record(FEED_ID, DOC_IN, "price", entries(1, 2))
    await journal.finish(FEED_ID, "DONE")
    gz = gzip.compress(json.dumps(report(REFUSED_2, accepted=1, invalid=1)).encode())
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        r = routes(router, ["DONE"], gz)
        results = await channel(http, clock, sleep, journal).push_prices(prices(2))
    assert r["create"].call_count == 0
    assert r["poll"].call_count == 1
    assert r["download"].call_count == 1
    assert not [w for w in sleep.waits if w >= 1]
    assert {(x.idempotency_key, x.status) for x in results} == {
        ("key-1", PushStatus.ACCEPTED),
        ("key-2", PushStatus.REJECTED),
    }


@pytest.mark.parametrize("ended", ["FATAL", "CANCELLED"])
async def test_a_journaled_feed_that_applied_nothing_is_sent_as_a_new_feed(
    clock: ManualClock, sleep: FakeSleep, ended: str
) -> None:
    journal = MemoryFeedJournal()
    await journal.record("50001019000", DOC_IN, "price", entries(1, 2))
    await journal.finish("50001019000", ended, ["key-1", "key-2"])
    gz = gzip.compress(json.dumps(report([], accepted=2, invalid=0)).encode())
    async with respx.mock() as router, httpx.AsyncClient() as http:
        # Only the new feed's routes: a getFeed of the old one would fail the test.
        r = routes(router, ["DONE"], gz)
        results = await channel(http, clock, sleep, journal, patch_max_batch=0).push_prices(
            prices(2)
        )
    assert r["create"].call_count == 1
    assert {(x.idempotency_key, x.status, x.marketplace_ref) for x in results} == {
        ("key-1", PushStatus.ACCEPTED, f"feed:{FEED_ID}"),
        ("key-2", PushStatus.ACCEPTED, f"feed:{FEED_ID}"),
    }
    newest, older = await journal.carrying(["key-1"])
    assert (newest.feed_id, newest.status, older.status) == (FEED_ID, "DONE", ended)


async def test_a_journaled_feed_found_cancelled_on_resume_is_sent_again_at_once(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """The crash came before the feed ended; it ended CANCELLED: resumed, then re-sent."""
    old = "50001019000"
    journal = MemoryFeedJournal()
    await journal.record(old, DOC_IN, "stock", entries(1, 2))
    gz = gzip.compress(json.dumps(report([], accepted=2, invalid=0)).encode())
    async with respx.mock() as router, httpx.AsyncClient() as http:
        r = routes(router, ["IN_PROGRESS", "DONE"], gz)
        resumed = router.get(f"{API}/feeds/2021-06-30/feeds/{old}").mock(
            return_value=httpx.Response(
                200,
                json={
                    "feedId": old,
                    "feedType": "JSON_LISTINGS_FEED",
                    "createdTime": "2026-03-02T12:00:00Z",
                    "processingStatus": "CANCELLED",
                },
            )
        )
        results = await channel(http, clock, sleep, journal, patch_max_batch=0).push_stock(
            [StockUpdate("SKU-1", 4, "key-1"), StockUpdate("SKU-2", 0, "key-2")]
        )
    assert resumed.call_count == 1
    assert r["create"].call_count == 1
    assert [m["sku"] for m in body(r["upload"].calls.last.request)["messages"]] == [
        "SKU-1",
        "SKU-2",
    ]
    assert {(x.idempotency_key, x.status, x.marketplace_ref) for x in results} == {
        ("key-1", PushStatus.ACCEPTED, f"feed:{FEED_ID}"),
        ("key-2", PushStatus.ACCEPTED, f"feed:{FEED_ID}"),
    }
    newest, cancelled = await journal.carrying(["key-1", "key-2"])
    assert (cancelled.feed_id, cancelled.status) == (old, "CANCELLED")
    assert cancelled.unapplied == {"key-1", "key-2"}
    assert newest.feed_id == FEED_ID
