"""ORDER_CHANGE notifications → ``OrderEvent``; every payload here is checked against the schema
(one that is not is completed with getOrderItems)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest
import respx

from connectors.amazon import AmazonChannel
from connectors.base import ResolvesEvents
from connectors.mock.amazon import AmazonMockState
from connectors.mock.amazon.notify import order_change
from connectors.mock.market import MockListing
from connectors.specs import load_spec
from domain.clock import ManualClock
from domain.events import OrderEvent, OrderLine, OrderNotice, OrderStatus
from tests.connectors.amazon_fixtures import (
    API,
    MARKET,
    SELLER,
    TOKEN,
    WEBHOOK_SECRET,
    FakeSleep,
    channel,
    token_route,
)

SCHEMA = load_spec("amazon", "OrderChangeNotification.json")


def document(**summary: Any) -> dict[str, Any]:
    """The schema's own example, retargeted at our seller and marketplace, merchant-fulfilled."""
    doc = copy.deepcopy(SCHEMA["examples"][0])
    body = doc["Payload"]["OrderChangeNotification"]
    body["SellerId"] = SELLER
    body["OrderChangeType"] = "OrderStatusChange"
    body["Summary"].update({"MarketplaceId": MARKET, "FulfillmentType": "MFN", **summary})
    return doc


def items(*lines: tuple[str, int]) -> list[dict[str, Any]]:
    return [
        {"OrderItemId": f"OI{index}", "SellerSKU": sku, "SupplySourceId": None, "Quantity": qty}
        for index, (sku, qty) in enumerate(lines)
    ]


def events(amazon: AmazonChannel, doc: dict[str, Any]) -> list[Any]:
    """Sign, verify and parse ``doc`` the way the daemon's webhook route and inbox do."""
    jsonschema.Draft7Validator(SCHEMA).validate(doc)
    raw = json.dumps(doc).encode()
    signature = hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    delivery = amazon.verify_webhook({"X-Repricerd-Signature": signature}, raw)
    assert delivery.topic == "ORDER_CHANGE"
    assert delivery.dedupe_key == doc["NotificationMetadata"]["NotificationId"]
    return amazon.parse_webhook(delivery)


@pytest.fixture
async def amazon(clock: ManualClock) -> Any:
    async with httpx.AsyncClient() as http:
        yield channel(http, clock, FakeSleep(clock))


async def test_a_new_order_is_placed_with_its_skus_quantities_and_change_time(
    amazon: AmazonChannel,
) -> None:
    doc = document(OrderItems=items(("MUG-1", 2), ("LAMP-1", 1)))
    assert events(amazon, doc) == [
        OrderEvent(
            order_id="903-8868176-2219830",
            status=OrderStatus.PLACED,
            lines=(OrderLine("MUG-1", 2), OrderLine("LAMP-1", 1)),
            updated_at=datetime(2022, 11, 29, 19, 42, 4, 284000, tzinfo=UTC),
        )
    ]


@pytest.mark.parametrize(
    "status", ["Pending", "Unshipped", "PartiallyShipped", "Shipped", "PendingAvailability"]
)
async def test_every_live_status_holds_the_units(amazon: AmazonChannel, status: str) -> None:
    [event] = events(amazon, document(OrderStatus=status))
    assert event.status is OrderStatus.PLACED
    assert event.lines == (OrderLine("SellerSKUID1", 10),)


async def test_a_cancelled_order_names_its_skus_even_with_zero_quantity(
    amazon: AmazonChannel,
) -> None:
    doc = document(OrderStatus="Canceled", OrderItems=items(("MUG-1", 0), ("LAMP-1", 3)))
    [event] = events(amazon, doc)
    assert event.status is OrderStatus.CANCELLED
    assert event.lines == (OrderLine("MUG-1", 0), OrderLine("LAMP-1", 3))


async def test_items_of_one_sku_are_one_line_and_empty_items_are_dropped(
    amazon: AmazonChannel,
) -> None:
    doc = document(OrderItems=items(("MUG-1", 2), ("MUG-1", 1), ("BOWL-1", 0)))
    [event] = events(amazon, doc)
    assert event.lines == (OrderLine("MUG-1", 3),)


async def test_the_publish_time_stands_in_for_a_null_change_time(amazon: AmazonChannel) -> None:
    doc = document()
    doc["Payload"]["OrderChangeNotification"]["OrderChangeTrigger"]["TimeOfOrderChange"] = None
    [event] = events(amazon, doc)
    assert event.updated_at == datetime(2020, 1, 11, 0, 9, 53, 109000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("where", "value"),
    [("FulfillmentType", "AFN"), ("MarketplaceId", "A2EUQ1WTGCTBG2")],
)
async def test_fba_orders_and_other_marketplaces_are_not_our_ledger(
    amazon: AmazonChannel, where: str, value: str
) -> None:
    assert events(amazon, document(**{where: value})) == []


async def test_another_sellers_order_is_ignored(amazon: AmazonChannel) -> None:
    doc = document()
    doc["Payload"]["OrderChangeNotification"]["SellerId"] = "A1OTHERSELLER"
    assert events(amazon, doc) == []


async def test_an_order_change_without_its_items_is_completed_with_get_order_items(
    clock: ManualClock,
) -> None:
    """The schema requires OrderItems with SellerSKU and Quantity; a notification that lacks
    them (an item without SellerSKU, no OrderItems at all) yields a notice, and
    ``resolve_events`` reads the order's items with one exact getOrderItems call."""
    no_sku = document(OrderItems=[{"OrderItemId": "OI1", "SupplySourceId": None, "Quantity": 1}])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(SCHEMA).validate(no_sku)  # not what the schema allows
    no_items = document()
    del no_items["Payload"]["OrderChangeNotification"]["Summary"]["OrderItems"]
    changed = datetime(2022, 11, 29, 19, 42, 4, 284000, tzinfo=UTC)
    order_id = "903-8868176-2219830"
    items_url = f"{API}/orders/v0/orders/{order_id}/orderItems"
    answer = {
        "payload": {
            "AmazonOrderId": order_id,
            "OrderItems": [
                {"ASIN": "B1", "OrderItemId": "OI1", "SellerSKU": "MUG-1", "QuantityOrdered": 2},
                {"ASIN": "B2", "OrderItemId": "OI2", "SellerSKU": "LAMP-1", "QuantityOrdered": 1},
            ],
        }
    }
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.get(items_url).mock(return_value=httpx.Response(200, json=answer))
        amazon = channel(http, clock, FakeSleep(clock))
        for doc in (no_sku, no_items):
            raw = json.dumps(doc).encode()
            signature = hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
            delivery = amazon.verify_webhook({"X-Repricerd-Signature": signature}, raw)
            [notice] = amazon.parse_webhook(delivery)
            assert notice == OrderNotice(order_id, changed, OrderStatus.PLACED)
            assert isinstance(amazon, ResolvesEvents)
            assert await amazon.resolve_events([notice]) == [
                OrderEvent(
                    order_id,
                    OrderStatus.PLACED,
                    (OrderLine("MUG-1", 2), OrderLine("LAMP-1", 1)),
                    changed,
                )
            ]
    request = route.calls[0].request
    assert (request.method, request.url.params) == ("GET", httpx.QueryParams())
    assert request.headers["x-amz-access-token"] == TOKEN
    assert route.call_count == 1  # the second notice of the same change reads the cache


async def test_the_mock_servers_order_change_parses_to_the_order_it_placed(
    amazon: AmazonChannel, clock: ManualClock
) -> None:
    state = AmazonMockState(seller_id=SELLER, marketplace_id=MARKET, clock=clock)
    state.rng = random.Random(3)
    listing = MockListing("MUG-1", "B000000001", price=Decimal("20.00"), currency="USD")
    doc = order_change(state, listing, 2, "113-1234567-0000001")
    [event] = events(amazon, doc)
    assert event == OrderEvent(
        "113-1234567-0000001", OrderStatus.PLACED, (OrderLine("MUG-1", 2),), clock.now()
    )
