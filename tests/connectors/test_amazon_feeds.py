"""JSON_LISTINGS_FEED end to end: document, upload, createFeed, polling, report mapping."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from connectors.base import PriceUpdate, PushResult, PushStatus, StockUpdate
from daemon.clock import ManualClock
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


@pytest.fixture
def sleep(clock: ManualClock) -> FakeSleep:
    return FakeSleep(clock)


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
