"""Shopify stock writes: inventorySetQuantities with compare-and-set and a replay-safe key."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from connectors.shopify import ShopifyChannel, queries
from connectors.shopify.inventory import StockRow, mutation_key
from domain.clock import ManualClock
from domain.writes import PushStatus, StockUpdate
from tests.connectors.shopify_fixtures import (
    HEADERS,
    LOCATION,
    URL,
    FakeSleep,
    answer,
    gql,
    make_channel,
    page,
    sent,
    variant,
)


@pytest.fixture
async def channel(http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep) -> ShopifyChannel:
    channel = make_channel(http, clock, sleep)
    nodes = [variant(1, "MUG-1", "9.99", available=15), variant(2, "MUG-2", "9.99", available=3)]
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=answer(page(nodes, None)))
        await channel.fetch_listings()
    return channel


def item(number: int) -> str:
    return f"gid://shopify/InventoryItem/{number}"


def stock(sku: str, quantity: int, expected: int | None = None, key: str = "") -> StockUpdate:
    return StockUpdate(sku, quantity, key or f"s-{sku}-{quantity}", expected=expected)


def set_body(rows: list[tuple[StockUpdate, int, int]]) -> dict[str, Any]:
    """The exact inventorySetQuantities request for (update, item number, changeFrom) rows."""
    key = mutation_key([StockRow(u, item(n), prior) for u, n, prior in rows], LOCATION)
    return gql(
        queries.SET_STOCK,
        {
            "input": {
                "name": "available",
                "reason": "correction",
                "referenceDocumentUri": f"gid://repricerd/StockPush/{key}",
                "quantities": [
                    {
                        "inventoryItemId": item(n),
                        "locationId": LOCATION,
                        "quantity": u.quantity,
                        "changeFromQuantity": prior,
                    }
                    for u, n, prior in rows
                ],
            },
            "idempotencyKey": key,
        },
    )


def applied(user_errors: list[dict[str, Any]] | None = None) -> httpx.Response:
    group = None if user_errors else {"reason": "correction", "changes": []}
    return answer(
        {
            "inventorySetQuantities": {
                "inventoryAdjustmentGroup": group,
                "userErrors": user_errors or [],
            }
        }
    )


def levels(quantities: dict[int, int | None]) -> httpx.Response:
    nodes = [
        {
            "id": item(n),
            "inventoryLevel": None
            if q is None
            else {"quantities": [{"name": "available", "quantity": q}]},
        }
        for n, q in quantities.items()
    ]
    return answer({"nodes": nodes})


def read_body(numbers: list[int]) -> dict[str, Any]:
    return gql(queries.READ_LEVELS, {"ids": [item(n) for n in numbers], "locationId": LOCATION})


async def test_stock_is_set_with_the_expected_prior_and_a_derived_key(
    channel: ShopifyChannel,
) -> None:
    one, two = stock("MUG-1", 12, expected=15), stock("MUG-2", 0)
    body = set_body([(one, 1, 15), (two, 2, 3)])  # MUG-2: the last quantity we read
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(URL, headers=HEADERS, json=body).mock(return_value=applied())
        results = await channel.push_stock([one, two])
    assert route.call_count == 1
    assert {r.idempotency_key: r.status for r in results} == {
        one.idempotency_key: PushStatus.CONFIRMED,
        two.idempotency_key: PushStatus.CONFIRMED,
    }
    assert channel.catalog.quantities == {"MUG-1": 12, "MUG-2": 0}
    key = body["variables"]["idempotencyKey"]
    assert body["variables"]["input"]["referenceDocumentUri"].endswith(key)


async def test_the_idempotency_key_is_identical_across_a_retry(
    channel: ShopifyChannel, sleep: FakeSleep
) -> None:
    update = stock("MUG-1", 12, expected=15)
    with respx.mock() as mock:
        route = mock.post(URL).mock(
            side_effect=[httpx.ReadTimeout("lost answer"), httpx.Response(503), applied()]
        )
        [result] = await channel.push_stock([update])
    assert result.status is PushStatus.CONFIRMED
    bodies = [sent(call.request) for call in route.calls]
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]  # same key, same document: a replay
    assert bodies[0] == set_body([(update, 1, 15)])
    # A re-drive of the same intent by the daemon derives the same key again.
    assert mutation_key([StockRow(update, item(1), 15)], LOCATION) == mutation_key(
        [StockRow(stock("MUG-1", 12, expected=15), item(1), 15)], LOCATION
    )


async def test_a_stale_prior_is_re_read_and_retried_never_overwritten(
    channel: ShopifyChannel,
) -> None:
    first, moved = stock("MUG-1", 12, expected=15), stock("MUG-2", 1)
    stale = {
        "code": "CHANGE_FROM_QUANTITY_STALE",
        "field": ["input", "quantities", "1", "changeFromQuantity"],
        "message": "The changeFromQuantity value does not match persisted value.",
    }
    with respx.mock(assert_all_called=True) as mock:
        both = mock.post(URL, json=set_body([(first, 1, 15), (moved, 2, 3)]))
        both.mock(return_value=applied([stale]))
        reread = mock.post(URL, json=read_body([2])).mock(return_value=levels({2: 2}))
        # The mutation is atomic: the row refused only because of its sibling goes again alone.
        alone = mock.post(URL, json=set_body([(first, 1, 15)])).mock(return_value=applied())
        results = await channel.push_stock([first, moved])
    assert (both.call_count, reread.call_count, alone.call_count) == (1, 1, 1)
    by_key = {r.idempotency_key: r for r in results}
    assert by_key[first.idempotency_key].status is PushStatus.CONFIRMED
    retry = by_key[moved.idempotency_key]
    assert retry.status is PushStatus.RETRY
    assert retry.code == "CHANGE_FROM_QUANTITY_STALE"
    assert "expected 3" in (retry.message or "")
    assert "live available is 2" in (retry.message or "")
    assert channel.catalog.quantities["MUG-2"] == 2

    # The re-driven intent (same idempotency key) now compares against the live value, so it
    # is a new request with a new key; reusing the old key would only replay the old failure.
    new_body = set_body([(moved, 2, 2)])
    assert (
        new_body["variables"]["idempotencyKey"]
        != sent(both.calls[0].request)["variables"]["idempotencyKey"]
    )
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=new_body).mock(return_value=applied())
        [result] = await channel.push_stock([moved])
    assert result.status is PushStatus.CONFIRMED


# Shopify's userError for a compare-and-set whose changeFromQuantity is no longer the quantity.
STALE = {
    "code": "CHANGE_FROM_QUANTITY_STALE",
    "field": ["input", "quantities", "0", "changeFromQuantity"],
    "message": "stale",
}


async def test_a_stale_expected_value_from_the_daemon_stays_a_retry(
    channel: ShopifyChannel,
) -> None:
    update = stock("MUG-1", 4, expected=9)
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=set_body([(update, 1, 9)])).mock(return_value=applied([STALE]))
        mock.post(URL, json=read_body([1])).mock(return_value=levels({1: 15}))
        [result] = await channel.push_stock([update])
    assert result.status is PushStatus.RETRY
    assert channel.catalog.quantities["MUG-1"] == 15


async def test_a_stale_prior_that_already_shows_the_target_is_confirmed(
    channel: ShopifyChannel,
) -> None:
    """Shopify took a sale off ``available`` itself: our write of the same number is done."""
    update = stock("MUG-1", 8, expected=11)
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=set_body([(update, 1, 11)])).mock(return_value=applied([STALE]))
        mock.post(URL, json=read_body([1])).mock(return_value=levels({1: 8}))
        [result] = await channel.push_stock([update])
    assert result.status is PushStatus.CONFIRMED
    assert result.code == "CHANGE_FROM_QUANTITY_STALE"
    assert channel.catalog.quantities["MUG-1"] == 8


async def test_an_unread_prior_is_read_before_writing(
    http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep
) -> None:
    channel = make_channel(http, clock, sleep)
    channel.catalog.ids.clear()
    update = stock("MUG-1", 7)
    lookup = gql(
        queries.VARIANTS_BY_SKU, {"first": 100, "query": 'sku:"MUG-1"', "locationId": LOCATION}
    )
    with respx.mock(assert_all_called=True) as mock:
        # Known by neither id nor quantity: look the variant up (which reads its level too,
        # so no second read: it is not stocked here and nothing is written).
        mock.post(URL, json=lookup).mock(
            return_value=answer(page([variant(1, "MUG-1", "9.99", available=None)], None))
        )
        results = await channel.push_stock([update])
    [result] = results
    assert result.status is PushStatus.REJECTED
    assert result.code == "ITEM_NOT_STOCKED_AT_LOCATION"

    channel.catalog.quantities.pop("MUG-1", None)
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=read_body([1])).mock(return_value=levels({1: 6}))
        mock.post(URL, json=set_body([(update, 1, 6)])).mock(return_value=applied())
        [result] = await channel.push_stock([update])
    assert result.status is PushStatus.CONFIRMED


async def test_other_user_errors_reject_only_their_row(channel: ShopifyChannel) -> None:
    bad, good = stock("MUG-1", -1, expected=15), stock("MUG-2", 5, expected=3)
    negative = {
        "code": "INVALID_QUANTITY_NEGATIVE",
        "field": ["input", "quantities", "0", "quantity"],
        "message": "The quantity can't be negative.",
    }
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=set_body([(bad, 1, 15), (good, 2, 3)])).mock(
            return_value=applied([negative])
        )
        mock.post(URL, json=set_body([(good, 2, 3)])).mock(return_value=applied())
        results = await channel.push_stock([bad, good])
    by_key = {r.idempotency_key: r for r in results}
    assert by_key[bad.idempotency_key].status is PushStatus.REJECTED
    assert by_key[bad.idempotency_key].code == "INVALID_QUANTITY_NEGATIVE"
    assert by_key[bad.idempotency_key].message == "The quantity can't be negative."
    assert by_key[good.idempotency_key].status is PushStatus.CONFIRMED


async def test_unknown_skus_are_rejected_without_a_write(channel: ShopifyChannel) -> None:
    lookup = gql(
        queries.VARIANTS_BY_SKU, {"first": 100, "query": 'sku:"NOPE"', "locationId": LOCATION}
    )
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=lookup).mock(return_value=answer(page([], None)))
        [result] = await channel.push_stock([stock("NOPE", 1)])
    assert result.status is PushStatus.REJECTED
    assert result.code == "UNKNOWN_SKU"


async def test_a_failed_stock_call_is_a_retry_for_its_rows(channel: ShopifyChannel) -> None:
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=httpx.Response(500))
        [result] = await channel.push_stock([stock("MUG-1", 1, expected=15)])
    assert result.status is PushStatus.RETRY


async def test_a_failed_prior_read_is_a_retry_and_writes_nothing(
    channel: ShopifyChannel,
) -> None:
    channel.catalog.quantities.clear()
    with respx.mock() as mock:
        route = mock.post(URL, json=read_body([1])).mock(return_value=httpx.Response(503))
        [result] = await channel.push_stock([stock("MUG-1", 1)])
        assert len(mock.calls) == 4  # only the reads: no write was sent
    assert result.status is PushStatus.RETRY
    assert route.call_count == 4  # retried by the one loop, then given up
