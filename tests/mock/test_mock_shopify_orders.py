"""The mock's ``orders`` query: search by updated_at, sort by UPDATED_AT, cursors, cost; and the
connector's poll against it (the id is the one the orders/create webhook carries)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import ChannelDeps
from connectors.mock.shopify import ShopifyMockState
from connectors.mock.shopify.app import cancel_order, place_order
from connectors.mock.shopify.webhooks import order_payload
from connectors.shopify import ShopifyChannel, ShopifySettings
from connectors.shopify.events import to_events
from domain.clock import ManualClock
from domain.events import OrderLine, OrderStatus
from tests.mock.shopify_fixtures import serve, store
from tests.mock.test_mock_shopify import API, TOKEN

ORDERS = """query Orders($first: Int!, $after: String, $query: String, $sort: OrderSortKeys) {
  orders(first: $first, after: $after, query: $query, sortKey: $sort) {
    edges { cursor node { id legacyResourceId name updatedAt cancelledAt
      lineItems(first: 5) { nodes { id sku quantity currentQuantity } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.fixture
def state(tmp_path: Path, clock: ManualClock) -> ShopifyMockState:
    return store(tmp_path, clock)


@pytest.fixture
async def shop(state: ShopifyMockState) -> AsyncIterator[httpx.AsyncClient]:
    async for client in serve(state):
        yield client


async def _orders(shop: httpx.AsyncClient, **variables: Any) -> dict[str, Any]:
    answer = await shop.post(API, json={"query": ORDERS, "variables": variables})
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def _three_orders(state: ShopifyMockState, clock: ManualClock) -> list[int]:
    """Orders 1, 2 and 3, a minute apart; then order 1 is cancelled (its update is newest)."""
    ids = []
    for sku in ("MUG-001", "TEE-S", "MUG-002"):
        order, _events = place_order(state, sku, 1)
        ids.append(order.order_id)
        clock.advance(60)
    cancel_order(state, ids[0])
    return ids


async def test_orders_sorted_by_updated_at_and_searched_by_it(
    state: ShopifyMockState, shop: httpx.AsyncClient, clock: ManualClock
) -> None:
    start = clock.now()
    ids = _three_orders(state, clock)
    body = await _orders(shop, first=10, sort="UPDATED_AT")
    nodes = [edge["node"] for edge in body["data"]["orders"]["edges"]]
    assert [int(n["legacyResourceId"]) for n in nodes] == [ids[1], ids[2], ids[0]]
    assert nodes[2]["cancelledAt"] is not None
    assert nodes[0]["cancelledAt"] is None
    assert nodes[0]["id"] == f"gid://shopify/Order/{ids[1]}"
    assert nodes[0]["lineItems"]["nodes"][0]["sku"] == "TEE-S"
    assert nodes[2]["lineItems"]["nodes"][0]["currentQuantity"] == 0  # cancelled
    # updated_at:>= bound, quoted, with a time: the first order's own minute is excluded.
    since = (start + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = await _orders(shop, first=10, sort="UPDATED_AT", query=f"updated_at:>='{since}'")
    found = [int(e["node"]["legacyResourceId"]) for e in body["data"]["orders"]["edges"]]
    assert found == [ids[1], ids[2], ids[0]]  # order 1 was updated (cancelled) since
    late = (start + timedelta(seconds=150)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = await _orders(shop, first=10, query=f"updated_at:>{late} -id:{ids[0]}")
    assert [e["node"]["legacyResourceId"] for e in body["data"]["orders"]["edges"]] == []
    body = await _orders(shop, first=10, query=f"created_at:<='{since}'")
    assert [int(e["node"]["legacyResourceId"]) for e in body["data"]["orders"]["edges"]] == [ids[0]]
    # Default sort is by id.
    body = await _orders(shop, first=10)
    assert [int(e["node"]["legacyResourceId"]) for e in body["data"]["orders"]["edges"]] == ids


async def test_orders_cursor_pages_keep_the_sort(
    state: ShopifyMockState, shop: httpx.AsyncClient, clock: ManualClock
) -> None:
    ids = _three_orders(state, clock)
    seen, after = [], None
    for _ in range(3):
        body = await _orders(shop, first=1, after=after, sort="UPDATED_AT")
        connection = body["data"]["orders"]
        seen += [int(e["node"]["legacyResourceId"]) for e in connection["edges"]]
        after = connection["pageInfo"]["endCursor"]
        if not connection["pageInfo"]["hasNextPage"]:
            break
    assert seen == [ids[1], ids[2], ids[0]]
    bad = await _orders(shop, first=1, after="garbage", sort="UPDATED_AT")
    assert bad["errors"]
    assert bad["data"] is None


async def test_orders_are_strict_and_charged(
    state: ShopifyMockState, shop: httpx.AsyncClient, clock: ManualClock
) -> None:
    _three_orders(state, clock)
    bad_date = await _orders(shop, first=10, query="updated_at:>='last week'")
    assert "Invalid date" in bad_date["errors"][0]["message"]
    too_many = await _orders(shop, first=251)
    assert too_many["errors"]
    unknown = await shop.post(API, json={"query": "{ orders(first: 1) { nodes { nope } } }"})
    assert unknown.json()["errors"]
    assert "data" not in unknown.json()
    body = await _orders(shop, first=10, sort="ID")
    cost = body["extensions"]["cost"]
    # orders(first: 10): 2 + 10 x (1 + lineItems(first: 5) = 2 + 5 x 1), edges counted.
    assert cost["requestedQueryCost"] == 2 + 10 * (1 + 2 + 5)
    assert cost["actualQueryCost"] == 2 + 3 * (1 + 2 + 1)


async def test_the_connector_polls_the_mock_and_matches_the_webhook(
    state: ShopifyMockState, shop: httpx.AsyncClient, clock: ManualClock
) -> None:
    ids = _three_orders(state, clock)
    base = str(shop.base_url).rstrip("/")
    settings = ShopifySettings.model_validate(
        {"kind": "shopify", "shop": state.shop_domain, "endpoint": base, "access_token": TOKEN}
    )
    async with httpx.AsyncClient() as http:
        channel = ShopifyChannel("shop", settings, ChannelDeps(http=http, clock=clock))
        events = await channel.fetch_orders(clock.now() - timedelta(hours=1))
    assert [e.order_id for e in events] == [str(ids[1]), str(ids[2]), str(ids[0])]
    assert [e.status for e in events] == [
        OrderStatus.PLACED,
        OrderStatus.PLACED,
        OrderStatus.CANCELLED,
    ]
    assert events[0].lines == (OrderLine("TEE-S", 1),)
    # The orders/cancelled webhook of order 1 yields the very same event.
    webhook = to_events(
        "orders/cancelled",
        order_payload(state, state.orders[ids[0]]),
        triggered_at=None,
        location_id=None,
        sku_of_item=lambda _item: None,
    )
    assert webhook == [events[2]]
    assert state.counters.max_cost_exceeded == 0
    assert state.counters.throttled == 0


@pytest.mark.parametrize("term", ["updated_at:>=2026-03-02", "updated_at:>='2026-03-02T12:00:00Z'"])
async def test_date_only_and_quoted_times_parse(
    state: ShopifyMockState, shop: httpx.AsyncClient, clock: ManualClock, term: str
) -> None:
    _three_orders(state, clock)
    body = await _orders(shop, first=10, query=term)
    assert "errors" not in body
    assert len(body["data"]["orders"]["edges"]) == 3
