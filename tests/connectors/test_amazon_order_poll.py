"""Orders v0 poll: exact getOrders/getOrderItems requests, paging, mapping, AFN skipped, pacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from jsonschema import Draft4Validator

from connectors.amazon.const import RATE_LIMITS
from connectors.base import PollsOrders
from connectors.specs import load_spec
from domain.clock import ManualClock
from domain.events import OrderEvent, OrderLine, OrderStatus
from tests.connectors.amazon_fixtures import (
    API,
    MARKET,
    TOKEN,
    FakeSleep,
    amazon_error,
    channel,
    token_route,
)

ORDERS = f"{API}/orders/v0/orders"
SINCE = datetime(2026, 3, 2, 11, 50, 7, 123456, tzinfo=UTC)


def validator(definition: str) -> Draft4Validator:
    spec = load_spec("amazon", "ordersV0.json")
    return Draft4Validator(
        {"$ref": f"#/definitions/{definition}", "definitions": spec["definitions"]}
    )


def order(order_id: str, status: str, updated: str, channel: str = "MFN") -> dict[str, Any]:
    return {
        "AmazonOrderId": order_id,
        "PurchaseDate": "2026-03-02T11:40:00Z",
        "LastUpdateDate": updated,
        "OrderStatus": status,
        "FulfillmentChannel": channel,
        "MarketplaceId": MARKET,
        "NumberOfItemsShipped": 0,
        "NumberOfItemsUnshipped": 1,
    }


def item(sku: str | None, quantity: int, item_id: str = "68828574383266") -> dict[str, Any]:
    result: dict[str, Any] = {
        "ASIN": "B000000001",
        "OrderItemId": item_id,
        "QuantityOrdered": quantity,
    }
    if sku is not None:
        result["SellerSKU"] = sku
    return result


def orders_page(
    orders: list[dict[str, Any]], token: str | None = None, *, valid: bool = True
) -> dict[str, Any]:
    payload: dict[str, Any] = {"Orders": orders}
    if token:
        payload["NextToken"] = token
    body = {"payload": payload}
    errors = list(validator("GetOrdersResponse").iter_errors(body))
    assert (not errors) is valid, errors
    return body


def items_page(
    order_id: str, items: list[dict[str, Any]], token: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"AmazonOrderId": order_id, "OrderItems": items}
    if token:
        payload["NextToken"] = token
    body = {"payload": payload}
    assert not list(validator("GetOrderItemsResponse").iter_errors(body))
    return body


FILTERS = {
    "MarketplaceIds": MARKET,
    "LastUpdatedAfter": "2026-03-02T11:50:07Z",
    "FulfillmentChannels": "MFN",
    "MaxResultsPerPage": "100",
}


async def test_get_orders_pages_then_reads_each_orders_items(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    first = orders_page(
        [
            order("113-0000002-0000002", "Canceled", "2026-03-02T11:58:00Z"),
            order("113-0000001-0000001", "Unshipped", "2026-03-02T11:55:00.500Z"),
        ],
        token="page-2",
    )
    second = orders_page([order("113-0000003-0000003", "Pending", "2026-03-02T11:59:00Z")])
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        listing = router.get(ORDERS).mock(
            side_effect=[httpx.Response(200, json=first), httpx.Response(200, json=second)]
        )
        one = router.get(f"{ORDERS}/113-0000001-0000001/orderItems").mock(
            return_value=httpx.Response(
                200,
                json=items_page(
                    "113-0000001-0000001",
                    [item("MUG-1", 2), item("MUG-1", 1, "2"), item(None, 4, "3")],
                ),
            )
        )
        router.get(f"{ORDERS}/113-0000002-0000002/orderItems").mock(
            return_value=httpx.Response(
                200, json=items_page("113-0000002-0000002", [item("BOWL-1", 0)])
            )
        )
        third = router.get(f"{ORDERS}/113-0000003-0000003/orderItems").mock(
            side_effect=[
                httpx.Response(
                    200, json=items_page("113-0000003-0000003", [item("LAMP-1", 1)], "i2")
                ),
                httpx.Response(
                    200, json=items_page("113-0000003-0000003", [item("JUG-1", 3, "9")])
                ),
            ]
        )
        amazon = channel(http, clock, sleep)
        assert isinstance(amazon, PollsOrders)
        events = await amazon.fetch_orders(SINCE)
    # Exact requests: the same filters on every page, NextToken added on the second.
    requests = [call.request for call in listing.calls]
    assert [dict(r.url.params) for r in requests] == [FILTERS, {**FILTERS, "NextToken": "page-2"}]
    assert all(r.method == "GET" and r.headers["x-amz-access-token"] == TOKEN for r in requests)
    assert all(r.headers["accept"] == "application/json" for r in requests)
    assert str(requests[0].url) == (
        f"{ORDERS}?MarketplaceIds={MARKET}&LastUpdatedAfter=2026-03-02T11%3A50%3A07Z"
        "&FulfillmentChannels=MFN&MaxResultsPerPage=100"
    )
    assert one.calls.last.request.url.params == httpx.QueryParams()
    # Oldest update first; a cancel keeps its SKUs at quantity 0; items of one SKU add up.
    assert events == [
        OrderEvent(
            "113-0000001-0000001",
            OrderStatus.PLACED,
            (OrderLine("MUG-1", 3),),
            datetime(2026, 3, 2, 11, 55, 0, 500000, tzinfo=UTC),
        ),
        OrderEvent(
            "113-0000002-0000002",
            OrderStatus.CANCELLED,
            (OrderLine("BOWL-1", 0),),
            datetime(2026, 3, 2, 11, 58, tzinfo=UTC),
        ),
        OrderEvent(
            "113-0000003-0000003",
            OrderStatus.PLACED,
            (OrderLine("LAMP-1", 1), OrderLine("JUG-1", 3)),
            datetime(2026, 3, 2, 11, 59, tzinfo=UTC),
        ),
    ]
    assert [dict(c.request.url.params) for c in third.calls] == [{}, {"NextToken": "i2"}]


async def test_afn_and_unknown_statuses_are_skipped_and_items_are_cached(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    orders = orders_page(
        [
            order("113-0000001-0000001", "Unshipped", "2026-03-02T11:55:00Z"),
            order("113-0000004-0000004", "Shipped", "2026-03-02T11:56:00Z", channel="AFN"),
            order("113-0000005-0000005", "Mystery", "2026-03-02T11:57:00Z"),  # a future status
        ],
        valid=False,
    )
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(ORDERS).mock(return_value=httpx.Response(200, json=orders))
        items = router.get(f"{ORDERS}/113-0000001-0000001/orderItems").mock(
            return_value=httpx.Response(
                200, json=items_page("113-0000001-0000001", [item("MUG-1", 1)])
            )
        )
        amazon = channel(http, clock, sleep)
        first = await amazon.fetch_orders(SINCE)
        again = await amazon.fetch_orders(SINCE)
    assert [e.order_id for e in first] == ["113-0000001-0000001"] == [e.order_id for e in again]
    # The same LastUpdateDate: the second poll re-used the items it read.
    assert items.call_count == 1
    assert not [r for r in router.calls if "113-0000004" in str(r.request.url)]


async def test_an_order_whose_items_are_refused_does_not_stop_the_others(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    orders = orders_page(
        [
            order("113-0000001-0000001", "Unshipped", "2026-03-02T11:55:00Z"),
            order("113-0000002-0000002", "Unshipped", "2026-03-02T11:56:00Z"),
        ]
    )
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(ORDERS).mock(return_value=httpx.Response(200, json=orders))
        router.get(f"{ORDERS}/113-0000001-0000001/orderItems").mock(
            return_value=amazon_error(404, "NotFound", "The resource specified does not exist.")
        )
        router.get(f"{ORDERS}/113-0000002-0000002/orderItems").mock(
            return_value=httpx.Response(
                200, json=items_page("113-0000002-0000002", [item("MUG-2", 1)])
            )
        )
        events = await channel(http, clock, sleep).fetch_orders(SINCE)
    assert [e.order_id for e in events] == ["113-0000002-0000002"]


async def test_get_orders_is_paced_by_its_usage_plan(clock: ManualClock, sleep: FakeSleep) -> None:
    """Burst 20, then one call per 1/0.0167 s: the 21st page waits about a minute."""
    assert (RATE_LIMITS["getOrders"].rate, RATE_LIMITS["getOrders"].burst) == (0.0167, 20)
    assert (RATE_LIMITS["getOrderItems"].rate, RATE_LIMITS["getOrderItems"].burst) == (0.5, 30)
    pages = [
        httpx.Response(200, json=orders_page([], token=f"t{n}" if n < 21 else None))
        for n in range(1, 22)
    ]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.get(ORDERS).mock(side_effect=pages)
        assert await channel(http, clock, sleep).fetch_orders(SINCE) == []
    assert route.call_count == 21
    assert sum(sleep.waits) > 50  # 20 calls from the burst (x1.05 pacing), then the refill


async def test_a_payload_without_orders_is_a_transient_error(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    from domain.errors import TransientChannelError

    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(ORDERS).mock(return_value=httpx.Response(200, json={"payload": {}}))
        with pytest.raises(TransientChannelError):
            await channel(http, clock, sleep).fetch_orders(SINCE)


async def test_a_start_in_the_future_is_pulled_back_two_minutes(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.get(ORDERS).mock(return_value=httpx.Response(200, json=orders_page([])))
        await channel(http, clock, sleep).fetch_orders(clock.now() + timedelta(minutes=5))
    expected = (clock.now() - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert route.calls.last.request.url.params["LastUpdatedAfter"] == expected
