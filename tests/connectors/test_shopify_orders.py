"""Shopify order poll: the exact ``orders`` request, cursor paging, long orders, the webhook id."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from connectors.base import PollsOrders
from connectors.shopify import ShopifyChannel, queries
from connectors.shopify.events import to_events
from domain.clock import ManualClock
from domain.errors import TransientChannelError
from domain.events import OrderEvent, OrderLine, OrderStatus
from tests.connectors.shopify_fixtures import (
    HEADERS,
    URL,
    FakeSleep,
    answer,
    gql,
    make_channel,
    sent,
)

SINCE = datetime(2026, 3, 2, 11, 50, 7, 900000, tzinfo=UTC)
SEARCH = "updated_at:>='2026-03-02T11:50:07Z'"


@pytest.fixture
async def channel(clock: ManualClock) -> AsyncIterator[ShopifyChannel]:
    async with httpx.AsyncClient() as http:
        yield make_channel(http, clock, FakeSleep(clock))


def orders_body(after: str | None) -> dict[str, Any]:
    return gql(queries.ORDERS_PAGE, {"first": 50, "after": after, "query": SEARCH, "lines": 10})


def lines(items: list[tuple[str | None, int]], cursor: str | None = None) -> dict[str, Any]:
    return {
        "nodes": [{"sku": sku, "quantity": quantity} for sku, quantity in items],
        "pageInfo": {"hasNextPage": cursor is not None, "endCursor": cursor or "lc-end"},
    }


def order(number: int, updated: str, items: dict[str, Any], cancelled: str | None = None) -> dict:
    return {
        "id": f"gid://shopify/Order/{number}",
        "legacyResourceId": str(number),
        "createdAt": "2026-03-02T11:40:00Z",
        "updatedAt": updated,
        "cancelledAt": cancelled,
        "lineItems": items,
    }


def page(nodes: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
    return {
        "orders": {
            "nodes": nodes,
            "pageInfo": {"hasNextPage": cursor is not None, "endCursor": cursor or "end"},
        }
    }


async def test_orders_are_paged_by_cursor_and_mapped_like_their_webhooks(
    channel: ShopifyChannel,
) -> None:
    assert isinstance(channel, PollsOrders)
    first = page(
        [
            order(820982911946154508, "2026-03-02T11:55:00Z", lines([("MUG-1", 2), ("MUG-1", 1)])),
            order(
                820982911946154509,
                "2026-03-02T11:57:30-05:00",
                lines([("TEE-1", 1), (None, 1), ("", 2)]),
                cancelled="2026-03-02T16:57:30Z",
            ),
        ],
        "c1",
    )
    second = page([order(820982911946154510, "2026-03-02T11:58:00Z", lines([("CAP-1", 0)]))], None)
    with respx.mock(assert_all_called=True) as mock:
        one = mock.post(URL, headers=HEADERS, json=orders_body(None)).mock(
            return_value=answer(first, requested=652, actual=20)
        )
        two = mock.post(URL, headers=HEADERS, json=orders_body("c1")).mock(
            return_value=answer(second, requested=652, actual=8)
        )
        events = await channel.fetch_orders(SINCE)
    assert (one.call_count, two.call_count) == (1, 1)
    body = sent(one.calls.last.request)
    assert body["variables"]["query"] == SEARCH  # whole seconds, rounded down, UTC
    assert "sortKey: UPDATED_AT" in body["query"]
    assert events == [
        OrderEvent(
            "820982911946154508",
            OrderStatus.PLACED,
            (OrderLine("MUG-1", 3),),
            datetime(2026, 3, 2, 11, 55, tzinfo=UTC),
        ),
        OrderEvent(
            "820982911946154510",
            OrderStatus.PLACED,
            (),
            datetime(2026, 3, 2, 11, 58, tzinfo=UTC),
        ),
        OrderEvent(
            "820982911946154509",
            OrderStatus.CANCELLED,
            (OrderLine("TEE-1", 1),),
            datetime(2026, 3, 2, 16, 57, 30, tzinfo=UTC),
        ),
    ]
    assert channel.client.estimates["orders_page"] == 652


async def test_the_poll_yields_the_id_the_orders_create_webhook_yields(
    channel: ShopifyChannel,
) -> None:
    """Webhook and poll of one order must dedupe in the ledger: same order id, same lines."""
    rest = {
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "updated_at": "2026-03-02T06:55:00-05:00",
        "line_items": [{"id": 1, "sku": "MUG-1", "quantity": 2}],
    }
    [from_webhook] = to_events(
        "orders/create", rest, triggered_at=None, location_id=None, sku_of_item=lambda _: None
    )
    data = page([order(820982911946154508, "2026-03-02T11:55:00Z", lines([("MUG-1", 2)]))], None)
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=answer(data, requested=652))
        [from_poll] = await channel.fetch_orders(SINCE)
    assert from_poll == from_webhook


async def test_an_order_with_more_lines_reads_the_rest_by_node(channel: ShopifyChannel) -> None:
    data = page(
        [order(7, "2026-03-02T11:55:00Z", lines([("A", 1)] * 10, cursor="l10"))],
        None,
    )
    more = [
        {"node": {"lineItems": lines([("B", 2)] * 250, cursor="l260")}},
        {"node": {"lineItems": lines([("A", 1), ("C", 5)])}},
    ]
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=orders_body(None)).mock(return_value=answer(data, requested=652))
        rest = [
            mock.post(
                URL,
                json=gql(
                    queries.ORDER_LINES, {"id": "gid://shopify/Order/7", "first": 250, "after": a}
                ),
            ).mock(return_value=answer(m, requested=253))
            for a, m in (("l10", more[0]), ("l260", more[1]))
        ]
        [event] = await channel.fetch_orders(SINCE)
    assert [r.call_count for r in rest] == [1, 1]
    assert event.lines == (OrderLine("A", 11), OrderLine("B", 500), OrderLine("C", 5))


async def test_a_repeated_cursor_stops_with_a_transient_error(channel: ShopifyChannel) -> None:
    looping = page([], "same")
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=answer(looping, requested=652))
        with pytest.raises(TransientChannelError):
            await channel.fetch_orders(SINCE)


async def test_an_unexpected_order_shape_is_a_bad_response(channel: ShopifyChannel) -> None:
    bad = page([{"id": "gid://shopify/Order/1", "legacyResourceId": 1}], None)
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=answer(bad, requested=652))
        with pytest.raises(TransientChannelError) as caught:
            await channel.fetch_orders(SINCE)
    assert caught.value.code == "BAD_RESPONSE"
