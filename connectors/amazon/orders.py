"""Orders → ``OrderEvent``: ``ORDER_CHANGE`` notifications (OrderChangeNotification.json) and the
Orders v0 poll behind them (``getOrders`` + ``getOrderItems``, ordersV0.json).

The payload carries what stock-sync needs, so no getOrderItems call is made: ``AmazonOrderId``,
``Summary.OrderStatus`` and ``Summary.OrderItems[]`` with ``SellerSKU`` and ``Quantity`` (both
required by the schema). A notification without them (no or an empty ``OrderItems``, an item
without ``SellerSKU`` or ``Quantity``) becomes an ``OrderNotice`` that the inbox worker
resolves with ``getOrderItems`` (``OrderPoller.resolve``). An ``OrderLevel`` notification
lists every item of the order, an ``OrderItemLevel`` one only the item that changed; the
daemon's ledger keys each line by (order, SKU), so either kind, and any redelivery, applies
each line once.

The poll (``OrderPoller``) is the fallback for notifications that never arrived: ``getOrders``
with ``LastUpdatedAfter`` pages through the orders changed since a time (``NextToken``), and
``getOrderItems`` reads each merchant-fulfilled order's ``SellerSKU`` and ``QuantityOrdered``.
It yields the same ``AmazonOrderId`` and the same status mapping as the notification, so a poll
and a notification of one order dedupe against each other in the ledger. Items are remembered
per (order, ``LastUpdateDate``): the overlap of successive polls costs no ``getOrderItems`` call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import structlog

from connectors.amazon.client import SpApiClient
from connectors.amazon.const import (
    GET_ORDER_ITEMS,
    GET_ORDERS,
    ORDER_ITEMS_CACHE_MAX,
    ORDER_ITEMS_PATH,
    ORDERS_PAGE_SIZE,
    ORDERS_PATH,
)
from connectors.amazon.offers import parse_time
from domain.clock import Clock
from domain.errors import RejectedUpdateError, TransientChannelError
from domain.events import ChannelEvent, OrderEvent, OrderLine, OrderNotice, OrderStatus

log = structlog.get_logger(__name__)

# Summary.OrderStatus values (schema enum). Every status but Canceled holds the units: Amazon
# reserves them from the moment the order exists (Pending: payment not yet authorised).
CANCELLED_STATUSES = frozenset({"Canceled"})
PLACED_STATUSES = frozenset(
    {
        "Pending",
        "Unshipped",
        "PartiallyShipped",
        "Shipped",
        "InvoiceUnconfirmed",
        "PendingAvailability",
        "Unfulfillable",
    }
)
MERCHANT_FULFILLED = "MFN"
# getOrders never starts later than this before now (the *Before dates must be 2 minutes old).
LATEST_START = timedelta(minutes=2)


def order_change(
    document: Mapping[str, Any], *, seller_id: str, marketplace_id: str, now: datetime
) -> list[ChannelEvent]:
    """One ``OrderEvent`` for a merchant-fulfilled order of ours ([] for anything else)."""
    try:
        body = document["Payload"]["OrderChangeNotification"]
        summary = body["Summary"]
        order_id = body["AmazonOrderId"]
        status = summary["OrderStatus"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"ORDER_CHANGE without {err}") from err
    items = summary.get("OrderItems")
    if not isinstance(order_id, str) or not order_id or not isinstance(items, list | None):
        raise ValueError("ORDER_CHANGE with a malformed AmazonOrderId or OrderItems")
    if body.get("SellerId") != seller_id or summary.get("MarketplaceId") != marketplace_id:
        return []  # one destination can carry the app's other sellers and marketplaces
    if summary.get("FulfillmentType") != MERCHANT_FULFILLED:
        # FBA (AFN) units are counted in Amazon's warehouses, never in our ledger.
        return []
    if status in CANCELLED_STATUSES:
        state = OrderStatus.CANCELLED
    elif status in PLACED_STATUSES:
        state = OrderStatus.PLACED
    else:
        raise ValueError(f"ORDER_CHANGE with an unknown OrderStatus {status!r}")
    trigger = body.get("OrderChangeTrigger")
    changed = trigger.get("TimeOfOrderChange") if isinstance(trigger, Mapping) else None
    # When the order changed; the publish time when Amazon leaves that null.
    updated_at = parse_time(changed) or parse_time(document.get("EventTime")) or now
    if not items or not all(_complete(item) for item in items):
        # The schema requires OrderItems with SellerSKU and Quantity; a notification without
        # them (a trimmed forward, an empty list) is resolved with getOrderItems instead.
        return [OrderNotice(order_id, updated_at, state)]
    return [
        OrderEvent(
            order_id=order_id,
            status=state,
            # A cancel gives back what its order took, so its lines only name the SKUs: keep
            # them even if Amazon reports a cancelled item's Quantity as 0.
            lines=_lines(items, order_id, keep_zero=state is OrderStatus.CANCELLED),
            updated_at=updated_at,
        )
    ]


def _complete(item: Any) -> bool:
    """Whether an order item names its SKU and units (malformed values are ``_lines``' to
    refuse)."""
    return not isinstance(item, Mapping) or ("SellerSKU" in item and "Quantity" in item)


def _lines(items: list[Any], order_id: str, *, keep_zero: bool) -> tuple[OrderLine, ...]:
    units: dict[str, int] = {}
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError(f"ORDER_CHANGE {order_id}: an order item is not an object")
        sku, quantity = item.get("SellerSKU"), item.get("Quantity")
        if not isinstance(sku, str) or not sku:
            raise ValueError(f"ORDER_CHANGE {order_id}: an order item without SellerSKU")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise ValueError(f"ORDER_CHANGE {order_id}: {sku} has no valid Quantity")
        # Two items of one SKU (e.g. a gift-wrapped and a plain one) are one ledger line.
        units[sku] = units.get(sku, 0) + quantity
    return tuple(
        OrderLine(sku, quantity) for sku, quantity in units.items() if quantity > 0 or keep_zero
    )


class OrderPoller:
    """Reads one seller's orders on one marketplace with Orders v0 (see the module docstring)."""

    def __init__(self, client: SpApiClient, *, marketplace_id: str, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.marketplace_id = marketplace_id
        # AmazonOrderId -> (LastUpdateDate it was read at, its lines), oldest read first.
        self._items: OrderedDict[str, tuple[str, tuple[OrderLine, ...]]] = OrderedDict()

    async def fetch(self, since: datetime) -> list[OrderEvent]:
        """Merchant-fulfilled orders updated at or after ``since``, oldest update first."""
        # A start in the future (an event stamped ahead of our clock) is a 400 at Amazon; an
        # earlier start only re-reads orders the ledger applies once anyway.
        since = min(since, self.clock.now() - LATEST_START)
        params = {
            "MarketplaceIds": self.marketplace_id,
            "LastUpdatedAfter": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            # FBA (AFN) orders are Amazon's stock: not asking for them keeps the pages few.
            "FulfillmentChannels": MERCHANT_FULFILLED,
            "MaxResultsPerPage": str(ORDERS_PAGE_SIZE),
        }
        events: list[OrderEvent] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            # The filters go with every page: NextToken only moves the page (ordersV0.json).
            query = params if token is None else {**params, "NextToken": token}
            body = await self.client.call(GET_ORDERS, "GET", ORDERS_PATH, params=query)
            payload = _payload(body, GET_ORDERS)
            orders = payload.get("Orders")
            if not isinstance(orders, list):
                raise TransientChannelError(
                    "getOrders: payload without Orders", code="BAD_RESPONSE"
                )
            for order in orders:
                event = await self._event(order)
                if event is not None:
                    events.append(event)
            token = payload.get("NextToken")
            if not isinstance(token, str) or not token:
                break
            if token in seen:
                raise TransientChannelError(f"getOrders: NextToken {token!r} repeated")
            seen.add(token)
        events.sort(key=lambda event: event.updated_at)
        return events

    async def _event(self, order: Any) -> OrderEvent | None:
        if not isinstance(order, Mapping):
            raise TransientChannelError("getOrders: an order is not an object", code="BAD_RESPONSE")
        order_id, status = order.get("AmazonOrderId"), order.get("OrderStatus")
        updated = order.get("LastUpdateDate")
        updated_at = parse_time(updated)
        if not isinstance(order_id, str) or not order_id or updated_at is None:
            raise TransientChannelError(
                "getOrders: an order without AmazonOrderId or LastUpdateDate", code="BAD_RESPONSE"
            )
        if order.get("MarketplaceId", self.marketplace_id) != self.marketplace_id:
            return None
        if order.get("FulfillmentChannel") != MERCHANT_FULFILLED:
            return None  # FBA (AFN) units are counted in Amazon's warehouses, never ours
        if status in CANCELLED_STATUSES:
            state = OrderStatus.CANCELLED
        elif status in PLACED_STATUSES:
            state = OrderStatus.PLACED
        else:
            # Not an error of the whole poll: this order waits for a status we understand.
            log.warning("amazon.orders.unknown_status", order=order_id, status=status)
            return None
        try:
            lines = await self.lines(order_id, str(updated))
        except RejectedUpdateError as err:
            # One order Amazon will not show (a 404 or 400) must not stop every other order; it
            # comes back with the next poll inside the overlap.
            log.warning("amazon.orders.items_refused", order=order_id, code=err.code)
            return None
        return OrderEvent(
            order_id=order_id,
            status=state,
            lines=tuple(
                line for line in lines if line.quantity > 0 or state is OrderStatus.CANCELLED
            ),
            updated_at=updated_at.astimezone(UTC),
        )

    async def resolve(self, notice: OrderNotice) -> OrderEvent:
        """An ORDER_CHANGE that came without its items, completed with getOrderItems."""
        if notice.status is None:
            raise ValueError(f"ORDER_CHANGE {notice.order_id} without an OrderStatus")
        lines = await self.lines(notice.order_id, notice.updated_at.isoformat())
        cancelled = notice.status is OrderStatus.CANCELLED
        return OrderEvent(
            order_id=notice.order_id,
            status=notice.status,
            lines=tuple(line for line in lines if line.quantity > 0 or cancelled),
            updated_at=notice.updated_at,
        )

    async def lines(self, order_id: str, updated: str) -> tuple[OrderLine, ...]:
        """The order's SKUs and units (``getOrderItems``, every page), remembered per
        ``updated`` (its LastUpdateDate, or the notification's change time)."""
        cached = self._items.get(order_id)
        if cached is not None and cached[0] == updated:
            return cached[1]
        units: dict[str, int] = {}
        token: str | None = None
        path = ORDER_ITEMS_PATH.format(order_id=quote(order_id, safe=""))
        while True:
            params = None if token is None else {"NextToken": token}
            body = await self.client.call(GET_ORDER_ITEMS, "GET", path, params=params)
            payload = _payload(body, GET_ORDER_ITEMS)
            items = payload.get("OrderItems")
            if not isinstance(items, list):
                raise TransientChannelError(
                    f"getOrderItems {order_id}: payload without OrderItems", code="BAD_RESPONSE"
                )
            for item in items:
                _add_item(units, item, order_id)
            nxt = payload.get("NextToken")
            if not isinstance(nxt, str) or not nxt or nxt == token:
                break
            token = nxt
        lines = tuple(OrderLine(sku, quantity) for sku, quantity in units.items())
        self._items[order_id] = (updated, lines)
        self._items.move_to_end(order_id)
        while len(self._items) > ORDER_ITEMS_CACHE_MAX:
            self._items.popitem(last=False)
        return lines


def _payload(body: Any, op: str) -> Mapping[str, Any]:
    payload = body.get("payload") if isinstance(body, Mapping) else None
    if not isinstance(payload, Mapping):
        raise TransientChannelError(f"{op}: answer without payload", code="BAD_RESPONSE")
    return payload


def _add_item(units: dict[str, int], item: Any, order_id: str) -> None:
    if not isinstance(item, Mapping):
        raise TransientChannelError(
            f"getOrderItems {order_id}: an item is not an object", code="BAD_RESPONSE"
        )
    sku, quantity = item.get("SellerSKU"), item.get("QuantityOrdered")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
        raise TransientChannelError(
            f"getOrderItems {order_id}: an item without a valid QuantityOrdered",
            code="BAD_RESPONSE",
        )
    if not isinstance(sku, str) or not sku:
        # SellerSKU is optional in the model: an item without one is nothing we list.
        log.warning("amazon.orders.item_without_sku", order=order_id)
        return
    # Two items of one SKU (a gift-wrapped and a plain one) are one ledger line.
    units[sku] = units.get(sku, 0) + quantity
