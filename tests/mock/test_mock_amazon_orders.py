"""The mock's Orders v0 routes: getOrders and getOrderItems over the orders /_mock/orders places."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from connectors.amazon.orders import order_change as parse_order_change
from connectors.mock.amazon import AmazonMockState, start
from connectors.mock.amazon.notify import order_change
from connectors.mock.amazon.wire import json_schema_validator, openapi_validator
from domain.clock import ManualClock
from domain.events import OrderLine, OrderStatus
from tests.mock.test_mock_amazon import SELLER, US, Mock, _market

ORDERS = "/orders/v0/orders"


@pytest.fixture
async def mock(clock: ManualClock) -> AsyncIterator[Mock]:
    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds)

    state = AmazonMockState(market=_market(), clock=clock, sleep=fake_sleep)
    runner, base_url = await start(state)
    async with httpx.AsyncClient(base_url=base_url) as http:
        harness = Mock(state, http, clock)
        await harness.grant()
        yield harness
    await runner.cleanup()


def _valid(definition: str, body: Any) -> None:
    errors = list(openapi_validator("ordersV0.json", definition).iter_errors(body))
    assert not errors, errors


async def _place(mock: Mock, sku: str, quantity: int = 1) -> str:
    placed = await mock.http.post("/_mock/orders", json={"sku": sku, "quantity": quantity})
    assert placed.status_code == 200, placed.text
    order_id: str = placed.json()["amazonOrderId"]
    return order_id


def _since(mock: Mock, minutes: int = 5) -> str:
    return (mock.clock.now() - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_get_orders_lists_placed_and_cancelled_orders_oldest_update_first(
    mock: Mock,
) -> None:
    first = await _place(mock, "MUG-000", 2)
    mock.clock.advance(30)
    second = await _place(mock, "FBA-001", 1)
    mock.clock.advance(30)
    cancelled = await mock.http.post(f"/_mock/orders/{first}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["quantity"] == 5  # the units came back
    assert (await mock.http.post(f"/_mock/orders/{first}/cancel")).status_code == 409
    params = {"MarketplaceIds": US, "LastUpdatedAfter": _since(mock)}
    answer = await mock.http.get(ORDERS, params=params, headers=mock.auth)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-amzn-RateLimit-Limit"] == "0.0167"
    body = answer.json()
    _valid("GetOrdersResponse", body)
    orders = body["payload"]["Orders"]
    assert [(o["AmazonOrderId"], o["OrderStatus"], o["FulfillmentChannel"]) for o in orders] == [
        (second, "Unshipped", "AFN"),
        (first, "Canceled", "MFN"),
    ]
    assert "NextToken" not in body["payload"]
    # MFN only, as the connector asks.
    merchant = await mock.http.get(
        ORDERS, params={**params, "FulfillmentChannels": "MFN"}, headers=mock.auth
    )
    assert [o["AmazonOrderId"] for o in merchant.json()["payload"]["Orders"]] == [first]
    # Not updated since: nothing.
    mock.clock.advance(1)
    later = {"MarketplaceIds": US, "LastUpdatedAfter": _since(mock, 0)}
    assert (await mock.http.get(ORDERS, params=later, headers=mock.auth)).json()["payload"][
        "Orders"
    ] == []

    items = await mock.http.get(f"{ORDERS}/{first}/orderItems", headers=mock.auth)
    assert items.status_code == 200
    assert items.headers["x-amzn-RateLimit-Limit"] == "0.5"
    _valid("GetOrderItemsResponse", items.json())
    [item] = items.json()["payload"]["OrderItems"]
    # A cancelled item reports quantity 0, as Amazon can.
    assert (item["SellerSKU"], item["QuantityOrdered"]) == ("MUG-000", 0)
    live = await mock.http.get(f"{ORDERS}/{second}/orderItems", headers=mock.auth)
    [item] = live.json()["payload"]["OrderItems"]
    assert (item["SellerSKU"], item["QuantityOrdered"], item["ASIN"]) == (
        "FBA-001",
        1,
        "B0FBA00001",
    )
    assert item["ItemPrice"] == {"CurrencyCode": "USD", "Amount": "30.00"}


async def test_next_token_pages_with_the_same_filters(mock: Mock) -> None:
    placed = []
    for _ in range(3):
        placed.append(await _place(mock, "MUG-001"))
        mock.clock.advance(1)
    params = {"MarketplaceIds": US, "LastUpdatedAfter": _since(mock), "MaxResultsPerPage": "2"}
    first = (await mock.http.get(ORDERS, params=params, headers=mock.auth)).json()
    _valid("GetOrdersResponse", first)
    token = first["payload"]["NextToken"]
    second = await mock.http.get(ORDERS, params={**params, "NextToken": token}, headers=mock.auth)
    _valid("GetOrdersResponse", second.json())
    got = [o["AmazonOrderId"] for o in first["payload"]["Orders"]]
    got += [o["AmazonOrderId"] for o in second.json()["payload"]["Orders"]]
    assert got == placed
    assert "NextToken" not in second.json()["payload"]
    bad = await mock.http.get(ORDERS, params={**params, "NextToken": "nope"}, headers=mock.auth)
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "params",
    [
        {"LastUpdatedAfter": "2026-01-01T00:00:00Z"},  # MarketplaceIds is required
        {"MarketplaceIds": US},  # CreatedAfter or LastUpdatedAfter is required
        {"MarketplaceIds": US, "LastUpdatedAfter": "yesterday"},
        {
            "MarketplaceIds": US,
            "CreatedAfter": "2026-01-01T00:00:00Z",
            "LastUpdatedAfter": "2026-01-01T00:00:00Z",
        },
        {
            "MarketplaceIds": US,
            "LastUpdatedAfter": "2026-01-01T00:00:00Z",
            "MaxResultsPerPage": "101",
        },
        {
            "MarketplaceIds": US,
            "LastUpdatedAfter": "2026-01-01T00:00:00Z",
            "MaxResultsPerPage": "0",
        },
        {
            "MarketplaceIds": US,
            "LastUpdatedAfter": "2026-01-01T00:00:00Z",
            "FulfillmentChannels": "XFN",
        },
        {"MarketplaceIds": ",".join(f"M{n}" for n in range(51)), "LastUpdatedAfter": "2026-01-01"},
    ],
)
async def test_get_orders_refuses_what_the_model_forbids(
    mock: Mock, params: dict[str, str]
) -> None:
    answer = await mock.http.get(ORDERS, params=params, headers=mock.auth)
    assert answer.status_code == 400
    _valid("GetOrdersResponse", answer.json())
    assert answer.json()["errors"][0]["code"] == "InvalidInput"


async def test_last_updated_before_must_be_two_minutes_old(mock: Mock) -> None:
    now = mock.clock.now()
    params = {
        "MarketplaceIds": US,
        "LastUpdatedAfter": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "LastUpdatedBefore": (now - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert (await mock.http.get(ORDERS, params=params, headers=mock.auth)).status_code == 400
    params["LastUpdatedBefore"] = (now - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (await mock.http.get(ORDERS, params=params, headers=mock.auth)).status_code == 200


async def test_orders_routes_need_a_token_and_obey_the_usage_plan(mock: Mock) -> None:
    params = {"MarketplaceIds": US, "LastUpdatedAfter": _since(mock)}
    assert (await mock.http.get(ORDERS, params=params)).status_code == 403
    unknown = await mock.http.get(f"{ORDERS}/113-0000000-0000000/orderItems", headers=mock.auth)
    assert unknown.status_code == 404
    statuses = [
        (await mock.http.get(ORDERS, params=params, headers=mock.auth)).status_code
        for _ in range(21)
    ]
    assert statuses[:20] == [200] * 20  # burst 20
    assert statuses[20] == 429  # then 0.0167/s
    assert mock.state.throttled["getOrders"] == 1
    mock.clock.advance(60)
    assert (await mock.http.get(ORDERS, params=params, headers=mock.auth)).status_code == 200


async def test_a_cancel_order_change_follows_the_notification_schema(mock: Mock) -> None:
    order_id = await _place(mock, "MUG-000", 2)
    listing = mock.state.listing("MUG-000")
    assert listing is not None
    document = order_change(mock.state, listing, 2, order_id, status="Canceled", item_id="1")
    errors = list(json_schema_validator("OrderChangeNotification.json").iter_errors(document))
    assert not errors, errors
    summary = document["Payload"]["OrderChangeNotification"]["Summary"]
    assert summary["OrderStatus"] == "Canceled"
    assert [(i["SellerSKU"], i["Quantity"]) for i in summary["OrderItems"]] == [("MUG-000", 0)]
    # The connector reads it as the cancel of that order, as the poll does.
    [event] = parse_order_change(
        document, seller_id=SELLER, marketplace_id=US, now=mock.clock.now()
    )
    assert (event.order_id, event.status, event.lines) == (
        order_id,
        OrderStatus.CANCELLED,
        (OrderLine("MUG-000", 0),),
    )
