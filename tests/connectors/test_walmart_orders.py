"""GET /v3/orders poll: exact requests, nextCursor paging, per-line mapping equal to the PO
webhooks', cancels, WFS and unknown statuses skipped, 429 paced by Walmart's window."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import respx
from jsonschema import Draft4Validator

from connectors.base import PollsOrders, ReadsMarketplaceSales
from connectors.mock.market import MockListing, MockMarket
from connectors.mock.walmart.events import envelope
from connectors.mock.walmart.offers import place_order
from connectors.mock.walmart.purchases import cancel_line
from connectors.mock.walmart.state import WalmartMockState
from connectors.ratelimit import PACING
from connectors.specs import load_spec
from connectors.walmart.channel import WalmartChannel
from domain.clock import ManualClock
from domain.errors import TransientChannelError
from domain.events import MarketplaceSale, OrderEvent, OrderLine, OrderStatus, WebhookDelivery
from domain.listings import Fulfillment
from tests.connectors.walmart_fixtures import (
    API,
    FakeSleep,
    assert_wm_headers,
    channel,
    token_route,
    walmart_error,
)

ORDERS = f"{API}/v3/orders"
SINCE = datetime(2026, 3, 2, 11, 50, 7, 123456, tzinfo=UTC)
FIRST = {
    "lastModifiedStartDate": "2026-03-02T11:50:07Z",
    "limit": "200",
    "productInfo": "false",
    "shipNodeType": "SellerFulfilled",
}


def validator() -> Draft4Validator:
    """getAllOrders' 200 schema. orders.json points ``GetOrderResponseRecord.orderLines`` at
    RefundLinesType (a slip of the generated spec: its own examples have order lines there), so
    that one $ref is corrected."""
    components = copy.deepcopy(load_spec("walmart", "orders.json")["components"])
    lines = {"$ref": "#/components/schemas/OrderLinesType"}
    components["schemas"]["GetOrderResponseRecord"]["properties"]["orderLines"] = lines
    return Draft4Validator(
        {"$ref": "#/components/schemas/PurchaseOrderTypeV3", "components": components}
    )


def line(number: str, sku: str, amount: str, *statuses: str, at: int = 1772452300000) -> Any:
    units = {"unitOfMeasurement": "EACH", "amount": amount}
    return {
        "lineNumber": number,
        "item": {"productName": f"{sku} mug", "sku": sku},
        "charges": {
            "charge": [
                {
                    "chargeType": "PRODUCT",
                    "chargeName": "ItemPrice",
                    "chargeAmount": {"currency": "USD", "amount": 10},
                }
            ]
        },
        "orderLineQuantity": units,
        "statusDate": at,
        "orderLineStatuses": {
            "orderLineStatus": [{"status": s, "statusQuantity": units} for s in statuses]
        },
    }


def order(po: str, *lines: Any, node: str = "SellerFulfilled") -> dict[str, Any]:
    return {
        "purchaseOrderId": po,
        "customerOrderId": "5281956426648",
        "customerEmailId": "3A31739D@relay.walmart.com",
        "orderDate": 1772452200000,
        "shippingInfo": {
            "phone": "3155598681",
            "estimatedDeliveryDate": 1772800000000,
            "estimatedShipDate": 1772600000000,
            "methodCode": "Value",
            "postalAddress": {
                "name": "Kathryn Cole",
                "address1": "3258B Warners rd",
                "city": "Warners",
                "state": "NY",
                "postalCode": "13164",
                "country": "USA",
            },
        },
        "orderLines": {"orderLine": list(lines)},
        "shipNode": {"type": node},
    }


def page(orders: list[Any], cursor: str | None = None, *, valid: bool = True) -> httpx.Response:
    meta: dict[str, Any] = {"totalCount": 3, "limit": 200}
    if cursor:
        meta["nextCursor"] = cursor
    body = {"list": {"meta": meta, "elements": {"order": orders}}}
    assert (not list(validator().iter_errors(body))) is valid
    return httpx.Response(200, json=body, headers={"X-Current-Token-Count": "9"})


def query(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(str(request.url)).query, keep_blank_values=True))


async def test_orders_are_paged_by_next_cursor_and_mapped_per_line(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    cursor = (
        "?limit=200&hasMoreElements=true&soIndex=3&poIndex=2&partnerId=10001234567&sellerId=8"
        "&lastModifiedStartDate=2026-03-02T11:50:07Z"
    )
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.get(ORDERS).mock(
            side_effect=[
                page(
                    [
                        order(
                            "1796277083022",
                            line("1", "MUG-1", "2", "Created"),
                            line("2", "MUG-2", "1", "Cancelled", at=1772452400000),
                        ),
                        order("1796277083023", line("1", "MUG-1", "3", "Acknowledged")),
                    ],
                    cursor,
                ),
                page([order("1796277083024", line("4", "MUG-3", "1", "Shipped", "Cancelled"))]),
            ]
        )
        wm = channel(http, clock, sleep)
        assert isinstance(wm, PollsOrders)
        events = await wm.fetch_orders(SINCE)
    first, second = (call.request for call in route.calls)
    assert first.method == "GET"
    assert query(first) == FIRST
    assert_wm_headers(first)
    assert urlsplit(str(second.url)).path == "/v3/orders"
    assert query(second) == dict(parse_qsl(cursor[1:]))
    assert "2026-03-02T11%3A50%3A07Z" in str(second.url)  # re-encoded as Walmart wants
    placed = datetime.fromtimestamp(1772452300, tz=UTC)
    assert events == [
        OrderEvent("1796277083022:1", OrderStatus.PLACED, (OrderLine("MUG-1", 2),), placed),
        OrderEvent("1796277083023:1", OrderStatus.PLACED, (OrderLine("MUG-1", 3),), placed),
        # A line cancelled only in part keeps its units taken (the ledger cancels whole lines).
        OrderEvent("1796277083024:4", OrderStatus.PLACED, (OrderLine("MUG-3", 1),), placed),
        OrderEvent(
            "1796277083022:2",
            OrderStatus.CANCELLED,
            (OrderLine("MUG-2", 1),),
            datetime.fromtimestamp(1772452400, tz=UTC),
        ),
    ]


def _delivery(document: dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(
        document["source"]["eventId"], document["source"]["eventType"], json.dumps(document)
    )


async def test_a_poll_and_the_po_webhooks_yield_the_same_lines(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """The mock's own order, read both ways: PO_CREATED and GET /v3/orders name the same
    line with the same units; PO_LINE_AUTOCANCELLED and the polled Cancelled line too."""
    market = MockMarket()
    market.listings["MUG-1"] = MockListing("MUG-1", "771087590", Decimal("20.00"), "USD", 5)
    state = WalmartMockState(market=market, clock=clock, rng=random.Random(1))
    created = place_order(state, market.listings["MUG-1"], 2)
    po = created.payload["purchaseOrderId"]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "t1", "t2")
        wm: WalmartChannel = channel(http, clock, sleep)
        webhook = wm.parse_webhook(_delivery(envelope(state, created)))
        router.get(ORDERS).mock(return_value=page([state.purchase_orders[po].document]))
        polled = await wm.fetch_orders(SINCE)
        clock.advance(60)
        cancelled = cancel_line(state, po, "1")
        unwebhook = wm.parse_webhook(_delivery(envelope(state, cancelled)))
        router.get(ORDERS).mock(return_value=page([state.purchase_orders[po].document]))
        unpolled = await wm.fetch_orders(SINCE)
    assert [(e.order_id, e.status, e.lines) for e in polled] == [
        (e.order_id, e.status, e.lines) for e in webhook if isinstance(e, OrderEvent)
    ]
    assert [(e.order_id, e.status, e.lines) for e in unpolled] == [
        (e.order_id, e.status, e.lines) for e in unwebhook if isinstance(e, OrderEvent)
    ]
    assert unpolled[0].status is OrderStatus.CANCELLED
    assert polled[0].order_id == f"{po}:1"


async def test_wfs_orders_and_unknown_statuses_are_skipped(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(ORDERS).mock(
            return_value=page(
                [
                    order("1", line("1", "MUG-1", "1", "Created"), node="WFSFulfilled"),
                    order("2", line("1", "MUG-1", "1", "OnHold")),
                    order("3", line("1", "MUG-1", "1", "Delivered")),
                ],
                valid=False,  # a status the spec does not list yet
            )
        )
        events = await channel(http, clock, sleep).fetch_orders(SINCE)
    assert [e.order_id for e in events] == ["3:1"]


async def test_a_429_waits_for_walmarts_window_then_reads_the_orders(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    reopens = int((clock.now().timestamp() + 12) * 1000)
    throttled = walmart_error(
        429,
        "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API",
        "Too Many Requests",
        **{"X-Current-Token-Count": "0", "X-Next-Replenishment-Time": str(reopens)},
    )
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.get(ORDERS).mock(
            side_effect=[throttled, page([order("9", line("1", "MUG-1", "1", "Created"))])]
        )
        events = await channel(http, clock, sleep).fetch_orders(SINCE)
    assert route.call_count == 2
    assert [e.order_id for e in events] == ["9:1"]
    assert sum(sleep.waits) == pytest.approx(12 + PACING.jitter_s, abs=0.01)


async def test_a_repeated_cursor_or_a_bad_answer_is_a_transient_error(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    cursor = "?limit=200&hasMoreElements=true&poIndex=1"
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "t1", "t2")
        one = [order("9", line("1", "MUG-1", "1", "Created"))]
        router.get(ORDERS).mock(side_effect=[page(one, cursor), page(one, cursor)])
        with pytest.raises(TransientChannelError, match="repeated"):
            await channel(http, clock, sleep).fetch_orders(SINCE)
        router.get(ORDERS).mock(return_value=httpx.Response(200, json={"list": {}}))
        with pytest.raises(TransientChannelError, match=r"list\.meta"):
            await channel(http, clock, sleep).fetch_orders(SINCE)


async def test_a_start_older_than_180_days_or_ahead_of_now_is_clamped(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.get(ORDERS).mock(return_value=page([]))
        wm = channel(http, clock, sleep)
        await wm.fetch_orders(datetime(2025, 1, 1, tzinfo=UTC))
        await wm.fetch_orders(datetime(2026, 3, 3, tzinfo=UTC))
    starts = [query(call.request)["lastModifiedStartDate"] for call in route.calls]
    assert starts == ["2025-09-04T12:00:00Z", "2026-03-02T12:00:00Z"]


async def test_wfs_sales_are_read_by_creation_window_with_cancels_flagged(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """The WFS listing asks for WFSFulfilled orders created in the window, pages by cursor,
    and returns every line (a wholly cancelled line flagged) by its order date."""
    cursor = "?limit=200&hasMoreElements=true&soIndex=1&poIndex=1&shipNodeType=WFSFulfilled"
    wfs = "WFSFulfilled"
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.get(ORDERS).mock(
            side_effect=[
                page(
                    [
                        order(
                            "7",
                            line("1", "WFS-1", "2", "Shipped"),
                            line("2", "WFS-2", "1", "Cancelled"),
                            node=wfs,
                        )
                    ],
                    cursor,
                ),
                page([order("8", line("1", "WFS-1", "3", "Created", "Cancelled"), node=wfs)]),
            ]
        )
        wm = channel(http, clock, sleep)
        assert isinstance(wm, ReadsMarketplaceSales)
        sales = await wm.fetch_marketplace_sales(
            datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)
        )
    first, second = (call.request for call in route.calls)
    assert first.method == "GET"
    assert query(first) == {
        "createdStartDate": "2026-03-01T00:00:00Z",
        "createdEndDate": "2026-03-02T00:00:00Z",
        "limit": "200",
        "productInfo": "false",
        "shipNodeType": "WFSFulfilled",
    }
    assert_wm_headers(first)
    assert query(second) == dict(parse_qsl(cursor[1:]))
    ordered = datetime.fromtimestamp(1772452200, tz=UTC)
    assert sales == [
        MarketplaceSale("WFS-1", 2, ordered, cancelled=False),
        MarketplaceSale("WFS-2", 1, ordered, cancelled=True),
        MarketplaceSale("WFS-1", 3, ordered, cancelled=False),
    ]


async def test_the_mocks_wfs_order_reads_as_a_wfs_sale_and_never_as_an_order(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    market = MockMarket()
    market.listings["WFS-1"] = MockListing(
        "WFS-1", "771087591", Decimal("20.00"), "USD", 5, Fulfillment.MARKETPLACE
    )
    state = WalmartMockState(market=market, clock=clock, rng=random.Random(1))
    created = place_order(state, market.listings["WFS-1"], 2)
    document = state.purchase_orders[created.payload["purchaseOrderId"]].document
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(ORDERS).mock(return_value=page([document]))
        wm = channel(http, clock, sleep)
        assert await wm.fetch_orders(SINCE) == []
        sales = await wm.fetch_marketplace_sales(SINCE, clock.now())
    assert [(s.sku, s.quantity, s.cancelled) for s in sales] == [("WFS-1", 2, False)]


async def test_a_wfs_window_is_clamped_to_walmarts_180_days_and_now(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.get(ORDERS).mock(return_value=page([]))
        await channel(http, clock, sleep).fetch_marketplace_sales(
            datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)
        )
    sent = query(route.calls[0].request)
    assert (sent["createdStartDate"], sent["createdEndDate"]) == (
        "2025-09-04T12:00:00Z",
        "2026-03-02T12:00:00Z",
    )
