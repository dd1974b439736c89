"""Fulfillment getOrders poll and getOrder for ORDER_CONFIRMATION: the exact requests (filter
syntax and encoding, limit, offset, headers, scope), offset paging by ``next``, one mapping for
the poll and the notification, cancels, 429/5xx/timeouts retried, no request without a
fulfillment scope."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

from connectors.base import PollsOrders, ResolvesEvents
from connectors.ebay.const import SCOPE_FULFILLMENT_READONLY
from connectors.mock.ebay.fulfillment import cancel, record
from connectors.mock.ebay.notify import order_confirmation
from connectors.mock.ebay.state import EbayItem, EbayMockState
from connectors.mock.market import MockListing, MockMarket
from domain.clock import ManualClock
from domain.errors import RejectedUpdateError, TransientChannelError
from domain.events import (
    OfferChanged,
    OrderEvent,
    OrderLine,
    OrderNotice,
    OrderStatus,
    WebhookDelivery,
)
from tests.connectors.ebay_fixtures import (
    API,
    INVENTORY_SCOPE,
    FakeSleep,
    assert_request,
    channel,
    ebay_error,
    token_route,
    user_headers,
)

ORDERS = f"{API}/sell/fulfillment/v1/order"
SINCE = datetime(2026, 3, 2, 11, 50, 7, 123456, tzinfo=UTC)
SCOPES = (INVENTORY_SCOPE, SCOPE_FULFILLMENT_READONLY)
FILTER = "lastmodifieddate:[2026-03-02T11:50:07.123Z..]"


def order(order_id: str, *items: tuple[str | None, int], state: str = "NONE_REQUESTED") -> Any:
    line_items = []
    for n, (sku, quantity) in enumerate(items):
        entry: dict[str, Any] = {"lineItemId": f"1000{n}", "quantity": quantity, "title": "mug"}
        if sku is not None:
            entry["sku"] = sku
        line_items.append(entry)
    return {
        "orderId": order_id,
        "creationDate": "2026-03-02T11:40:00.000Z",
        "lastModifiedDate": "2026-03-02T11:55:00.000Z",
        "orderFulfillmentStatus": "NOT_STARTED",
        "cancelStatus": {"cancelState": state, "cancelRequests": []},
        "lineItems": line_items,
    }


def page(orders: list[Any], offset: int, total: int, more: bool) -> httpx.Response:
    body: dict[str, Any] = {
        "href": f"{ORDERS}?limit=200&offset={offset}",
        "total": total,
        "limit": 200,
        "offset": offset,
        "orders": orders,
    }
    if more:
        body["next"] = f"{ORDERS}?limit=200&offset={offset + len(orders)}"
    return httpx.Response(200, json=body)


async def test_get_orders_filters_by_last_modified_and_pages_by_offset(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    scope = " ".join(SCOPES)
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router, scope=scope)
        route = router.get(ORDERS).mock(
            side_effect=[
                page([order("01-1", ("MUG-1", 2), ("MUG-2", 1))], 0, 2, True),
                page([order("02-2", ("MUG-1", 1), (None, 1), state="CANCELED")], 1, 2, False),
            ]
        )
        ebay = channel(http, clock, sleep, scopes=SCOPES)
        assert isinstance(ebay, PollsOrders)
        events = await ebay.fetch_orders(SINCE)
    first, second = (call.request for call in route.calls)
    params = {"filter": FILTER, "limit": "200", "offset": "0"}
    assert_request(first, "GET", ORDERS, params, user_headers())
    assert_request(second, "GET", ORDERS, params | {"offset": "1"}, user_headers())
    # eBay wants the filter's brackets percent-encoded (OAS: "[ = %5B ... ] = %5D").
    assert "filter=lastmodifieddate%3A%5B2026-03-02T11%3A50%3A07.123Z..%5D" in str(first.url)
    modified = datetime(2026, 3, 2, 11, 55, tzinfo=UTC)
    assert events == [
        OrderEvent(
            "01-1", OrderStatus.PLACED, (OrderLine("MUG-1", 2), OrderLine("MUG-2", 1)), modified
        ),
        OrderEvent("02-2", OrderStatus.CANCELLED, (OrderLine("MUG-1", 1),), modified),
    ]


async def test_a_poll_and_order_confirmation_yield_the_same_order(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """The mock's own sale read both ways: the notification (resolved with getOrder) and
    getOrders name the same order with the same SKU and units; the completed cancel comes back
    as CANCELLED."""
    market = MockMarket()
    market.listings["MUG-1"] = MockListing("MUG-1", "90000000001", Decimal("20.00"), "USD", 5)
    state = EbayMockState(
        market=market,
        items={"MUG-1": EbayItem("MUG-1", "Mug", 5)},
        clock=clock,
        rng=random.Random(2),
    )
    document = record(state, "MUG-1", 2, "07-12345-67890", "10000000000001")
    notification = order_confirmation(state, "07-12345-67890")
    delivery = WebhookDelivery("n1", "ORDER_CONFIRMATION", json.dumps(notification))
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, scope=" ".join(SCOPES))
        ebay = channel(http, clock, sleep, scopes=SCOPES)
        router.get(f"{ORDERS}/07-12345-67890").mock(return_value=httpx.Response(200, json=document))
        pushed = await ebay.resolve_events(ebay.parse_webhook(delivery))
        router.get(ORDERS).mock(return_value=page([document], 0, 1, False))
        polled = await ebay.fetch_orders(SINCE)
        clock.advance(60)
        assert cancel(state, "07-12345-67890") is not None
        router.get(ORDERS).mock(
            return_value=page([state.sold["07-12345-67890"].document], 0, 1, False)
        )
        voided = await ebay.fetch_orders(SINCE)
    assert polled == pushed
    assert [(e.order_id, e.status, e.lines) for e in polled] == [
        ("07-12345-67890", OrderStatus.PLACED, (OrderLine("MUG-1", 2),))
    ]
    assert [(e.order_id, e.status, e.lines) for e in voided] == [
        ("07-12345-67890", OrderStatus.CANCELLED, (OrderLine("MUG-1", 2),))
    ]


async def test_an_order_notice_is_resolved_with_one_exact_get_order(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """``GET /sell/fulfillment/v1/order/{orderId}``: the user token, eBay's headers, no query;
    the notice is replaced in place, other events pass through, a SKU-less order gives none."""
    notice = OrderNotice("04-44444-44444", clock.now(), OrderStatus.PLACED)
    legacy = OrderNotice("05-55555-55555", clock.now(), OrderStatus.PLACED)
    other = OfferChanged("MUG-9")
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router, scope=" ".join(SCOPES))
        route = router.get(f"{ORDERS}/04-44444-44444").mock(
            return_value=httpx.Response(200, json=order("04-44444-44444", ("MUG-1", 3)))
        )
        router.get(f"{ORDERS}/05-55555-55555").mock(
            return_value=httpx.Response(200, json=order("05-55555-55555", (None, 1)))
        )
        ebay = channel(http, clock, sleep, scopes=SCOPES)
        assert isinstance(ebay, ResolvesEvents)
        resolved = await ebay.resolve_events([notice, other, legacy])
    [call] = route.calls
    assert_request(call.request, "GET", f"{ORDERS}/04-44444-44444", None, user_headers())
    assert call.request.content == b""
    modified = datetime(2026, 3, 2, 11, 55, tzinfo=UTC)
    assert resolved == [
        OrderEvent("04-44444-44444", OrderStatus.PLACED, (OrderLine("MUG-1", 3),), modified),
        other,
    ]


async def test_a_slow_ebay_is_retried_and_the_order_still_resolves(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """A 500, a read timeout, then the order: the client's retries (backed off on the injected
    clock) carry the read; eBay that stays down raises TransientChannelError for the inbox."""
    notice = OrderNotice("06-66666-66666", clock.now())
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, scope=" ".join(SCOPES))
        route = router.get(f"{ORDERS}/06-66666-66666").mock(
            side_effect=[
                ebay_error(500, 30500, "System error", category="APPLICATION"),
                httpx.ReadTimeout("slow"),
                httpx.Response(200, json=order("06-66666-66666", ("MUG-2", 1))),
            ]
        )
        ebay = channel(http, clock, sleep, scopes=SCOPES)
        [event] = await ebay.resolve_events([notice])
        assert route.call_count == 3
        assert len(sleep.waits) == 2  # backed off before each retry
        assert isinstance(event, OrderEvent)
        assert event.lines == (OrderLine("MUG-2", 1),)
        route.mock(side_effect=None, return_value=ebay_error(503, 30500, "System error"))
        with pytest.raises(TransientChannelError):
            await ebay.resolve_events([notice])
    assert route.call_count == 3 + 3  # the policy's three attempts, then given up


async def test_an_unknown_order_or_a_missing_scope_is_refused_for_good(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    notice = OrderNotice("07-77777-77777", clock.now())
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        token_route(router, scope=" ".join(SCOPES))
        route = router.get(f"{ORDERS}/07-77777-77777").mock(
            return_value=ebay_error(404, 32100, "Invalid order ID: 07-77777-77777")
        )
        with pytest.raises(RejectedUpdateError, match="Invalid order ID"):
            await channel(http, clock, sleep, scopes=SCOPES).resolve_events([notice])
        assert route.call_count == 1
        unscoped = channel(http, clock, sleep)
        with pytest.raises(RejectedUpdateError, match=r"sell\.fulfillment") as refused:
            await unscoped.resolve_events([notice])
        assert refused.value.code == "NO_FULFILLMENT_SCOPE"
    assert route.call_count == 1  # without the scope nothing is asked


async def test_a_429_is_retried_and_the_poll_completes(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, scope=" ".join(SCOPES))
        route = router.get(ORDERS).mock(
            side_effect=[
                ebay_error(429, 2001, "Too many requests"),
                page([order("03-3", ("MUG-1", 1))], 0, 1, False),
            ]
        )
        events = await channel(http, clock, sleep, scopes=SCOPES).fetch_orders(SINCE)
    assert route.call_count == 2
    assert [e.order_id for e in events] == ["03-3"]
    assert sleep.waits  # backed off before the second call


async def test_without_a_fulfillment_scope_nothing_is_asked(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        route = router.get(ORDERS).mock(return_value=page([], 0, 0, False))
        ebay = channel(http, clock, sleep)
        assert await ebay.fetch_orders(SINCE) == []
        assert await ebay.fetch_orders(SINCE) == []
    assert route.call_count == 0


async def test_a_start_beyond_90_days_or_in_the_future_is_clamped(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, scope=" ".join(SCOPES))
        route = router.get(ORDERS).mock(return_value=page([], 0, 0, False))
        ebay = channel(http, clock, sleep, scopes=SCOPES)
        await ebay.fetch_orders(datetime(2025, 1, 1, tzinfo=UTC))
        await ebay.fetch_orders(datetime(2026, 3, 3, tzinfo=UTC))
    filters = [call.request.url.params["filter"] for call in route.calls]
    assert filters == [
        "lastmodifieddate:[2025-12-03T12:00:00.000Z..]",
        "lastmodifieddate:[2026-03-02T12:00:00.000Z..]",
    ]
