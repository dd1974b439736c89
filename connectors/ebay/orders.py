"""Orders from the Fulfillment API: ``getOrder`` for a notification, ``getOrders`` for the poll.

ORDER_CONFIRMATION carries only ``orderId`` (eBay: "the seller looks up the orderId from the
notification" and reads the order): ``fetch_order`` reads it with
``GET /sell/fulfillment/v1/order/{orderId}`` (same scopes and quota family as getOrders) and
maps it as the poll maps each order, so the notification and the poll give one event.

The poll is the fallback for ORDER_CONFIRMATION notifications that never arrived:
``GET /sell/fulfillment/v1/order?filter=lastmodifieddate:[<ISO 8601 UTC, ms>..]&limit=200&
offset=N`` (the filter's brackets are percent-encoded, as the OAS requires). Pages follow
``offset`` while the answer names a ``next`` page. A user token with the ``sell.fulfillment``
or ``sell.fulfillment.readonly`` scope is needed (the OAS ``security``); without one in
``scopes`` the poll is skipped with a warning instead of failing every pass.

Each order yields one event (``order_event``): ``orderId``, one line per SKU of ``lineItems[]``
(``sku``, ``quantity``, read by ``line_items``), ``lastModifiedDate`` as its time; CANCELLED when
``cancelStatus.cancelState`` is ``CANCELED``, PLACED otherwise. getOrders lists only orders
that completed checkout (Fulfillment API overview), as ORDER_CONFIRMATION does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import structlog

from connectors.ebay.const import (
    CANCEL_STATE_CANCELED,
    ORDER_PATH,
    ORDERS_MAX_AGE_DAYS,
    ORDERS_PAGE_SIZE,
    ORDERS_PATH,
    QUOTA_FULFILLMENT,
)
from domain.errors import TransientChannelError
from domain.events import OrderEvent, OrderLine, OrderStatus

if TYPE_CHECKING:
    from connectors.ebay.client import EbayClient

log = structlog.get_logger(__name__)


def line_items(items: list[Any]) -> list[OrderLine]:
    """``[{sku, quantity}, ...]`` → order lines (items without a SKU or a positive count are
    nothing we list)."""
    lines = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        sku, quantity = item.get("sku"), item.get("quantity")
        if isinstance(sku, str) and sku and isinstance(quantity, int) and quantity > 0:
            lines.append(OrderLine(sku, quantity))
    return lines


def wire_time(moment: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ss.sssZ`` (the OAS's timestamp format), UTC, floored to the ms."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def fetch_orders(client: EbayClient, since: datetime, *, now: datetime) -> list[OrderEvent]:
    """Every order modified at or after ``since``, oldest modification first."""
    # 90 days back at most, never in the future (30830 / 30850): an earlier start only re-reads
    # orders the ledger applies once anyway.
    since = max(min(since, now), now - timedelta(days=ORDERS_MAX_AGE_DAYS - 1))
    search = f"lastmodifieddate:[{wire_time(since)}..]"
    events: list[OrderEvent] = []
    offset = 0
    while True:
        params = {"filter": search, "limit": str(ORDERS_PAGE_SIZE), "offset": str(offset)}
        answer = await client.call(
            "getOrders", "GET", ORDERS_PATH, family=QUOTA_FULFILLMENT, params=params
        )
        orders = answer.body.get("orders", [])
        if not isinstance(orders, list):
            raise TransientChannelError("getOrders: orders is not a list", code="BAD_RESPONSE")
        for order in orders:
            event = order_event(order, "getOrders")
            if event is not None:
                events.append(event)
        if not answer.body.get("next") or not orders:
            break
        offset += len(orders)
    # Orders modified while we paged can show up twice: the ledger applies each line once.
    events.sort(key=lambda event: event.updated_at)
    return events


async def fetch_order(client: EbayClient, order_id: str) -> OrderEvent | None:
    """The order an ORDER_CONFIRMATION names, read by id (``getOrder``); None when none of its
    lines carries a SKU. eBay's 4xx (an unknown order) is a ``RejectedUpdateError``; 5xx,
    timeouts and 429 are retried by the client, then raised as ``TransientChannelError``."""
    path = ORDER_PATH.format(order_id=quote(order_id, safe=""))
    answer = await client.call("getOrder", "GET", path, family=QUOTA_FULFILLMENT)
    event = order_event(answer.body, "getOrder")
    if event is not None and event.order_id != order_id:
        raise TransientChannelError(
            f"getOrder {order_id}: answered order {event.order_id}", code="BAD_RESPONSE"
        )
    return event


def order_event(order: Any, op: str) -> OrderEvent | None:
    """One Fulfillment ``Order`` as an ``OrderEvent`` (None when no line carries a SKU)."""
    if not isinstance(order, Mapping):
        raise TransientChannelError(f"{op}: an order is not an object", code="BAD_RESPONSE")
    order_id, items = order.get("orderId"), order.get("lineItems")
    modified = _time(order.get("lastModifiedDate")) or _time(order.get("creationDate"))
    if not isinstance(order_id, str) or not order_id or not isinstance(items, list):
        raise TransientChannelError(
            f"{op}: an order without orderId or lineItems", code="BAD_RESPONSE"
        )
    if modified is None:
        raise TransientChannelError(
            f"{op}: order {order_id} without lastModifiedDate", code="BAD_RESPONSE"
        )
    cancel = order.get("cancelStatus")
    state = cancel.get("cancelState") if isinstance(cancel, Mapping) else None
    cancelled = state == CANCEL_STATE_CANCELED
    lines = line_items(items)
    if not lines:
        log.info("ebay.orders.no_sku", order=order_id)  # legacy listings may carry no SKU
        return None
    status = OrderStatus.CANCELLED if cancelled else OrderStatus.PLACED
    return OrderEvent(order_id, status, tuple(lines), modified)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
