"""Order polling: ``GET /v3/orders`` (getAllOrders, orders.json) → ``OrderEvent``s.

The fallback for ``PO_CREATED`` / ``PO_LINE_AUTOCANCELLED`` webhooks that never arrived. Orders
are listed by ``lastModifiedStartDate`` (a cancel modifies the order, so it is listed again),
seller-fulfilled only (``shipNodeType=SellerFulfilled``, the default, sent explicitly: WFS
orders are Walmart's stock), ``limit`` 200 (the spec's ceiling). The answer is
``list.meta {totalCount, limit, nextCursor}`` and ``list.elements.order[]``; ``nextCursor`` is
a ready query string (``?limit=..&hasMoreElements=true&soIndex=..&poIndex=..``) sent back as is.

Each order line becomes the event its webhook yields (``events.line_event``): order id
``<purchaseOrderId>:<lineNumber>``, the line's ``orderLineQuantity``, CANCELLED when every
``orderLineStatus`` of the line is ``Cancelled`` (Walmart cancels lines), PLACED otherwise (a
partly cancelled line keeps its units taken: the ledger cancels whole lines only; an
assumption, Walmart's own tools cancel whole lines). The event time is the line's
``statusDate`` (epoch ms), else the ``orderDate``.

``fetch_wfs_sales`` lists the other side, ``shipNodeType=WFSFulfilled`` by ``createdStartDate``
/ ``createdEndDate`` (same limit, cursor and bucket): the units Walmart shipped from its own
stock, for the inventory pass's WFS pool only (never the merchant ledger).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import structlog

from connectors.walmart.client import WalmartClient
from connectors.walmart.const import (
    GET_ORDERS,
    ORDERS_MAX_AGE_DAYS,
    ORDERS_PAGE_LIMIT,
    ORDERS_PATH,
    SELLER_FULFILLED,
    WFS_SHIP_NODE_TYPE,
)
from connectors.walmart.events import line_event
from connectors.walmart.models import parse_time
from connectors.wire import to_decimal
from domain.errors import TransientChannelError
from domain.events import MarketplaceSale, OrderEvent, OrderStatus

log = structlog.get_logger(__name__)

CANCELLED = "Cancelled"  # OrderLineStatusType.status enum (orders.json)
KNOWN_STATUSES = frozenset({"Created", "Acknowledged", "Shipped", "Delivered", CANCELLED, "Refund"})


def wire_time(moment: datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ssZ`` in UTC (the spec's date-with-timestamp example)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def fetch_orders(
    client: WalmartClient, since: datetime, *, now: datetime, is_wfs: Callable[[str], bool]
) -> list[OrderEvent]:
    """Every seller-fulfilled order line modified at or after ``since``, oldest first."""
    # Walmart keeps 180 days of orders and has no orders in the future: clamp both ends (an
    # earlier start only re-reads lines the ledger applies once anyway).
    since = max(min(since, now), now - timedelta(days=ORDERS_MAX_AGE_DAYS - 1))
    params: dict[str, str] = {
        "lastModifiedStartDate": wire_time(since),
        "limit": str(ORDERS_PAGE_LIMIT),
        "productInfo": "false",
        "shipNodeType": SELLER_FULFILLED,
    }
    events: list[OrderEvent] = []
    for order in await _orders(client, params):
        events.extend(_order_events(order, is_wfs))
    events.sort(key=lambda event: event.updated_at)
    return events


async def fetch_wfs_sales(
    client: WalmartClient, start: datetime, end: datetime, *, now: datetime
) -> list[MarketplaceSale]:
    """Every WFS-fulfilled order line created in ``[start, end)`` (``shipNodeType=WFSFulfilled``),
    by order date; a line is cancelled when every status of it is ``Cancelled``."""
    start = max(min(start, now), now - timedelta(days=ORDERS_MAX_AGE_DAYS - 1))
    params = {
        "createdStartDate": wire_time(start),
        "createdEndDate": wire_time(max(min(end, now), start)),
        "limit": str(ORDERS_PAGE_LIMIT),
        "productInfo": "false",
        "shipNodeType": WFS_SHIP_NODE_TYPE,
    }
    sales: list[MarketplaceSale] = []
    for order in await _orders(client, params):
        po, ordered, rows = _order_parts(order)
        for line in rows:
            status = _status(po, line) if isinstance(line, Mapping) else None
            if status is None:
                continue
            item, quantity = line.get("item"), line.get("orderLineQuantity")
            sku = item.get("sku") if isinstance(item, Mapping) else None
            units = to_decimal(quantity.get("amount")) if isinstance(quantity, Mapping) else None
            if not isinstance(sku, str) or not sku or units is None or units < 0:
                raise TransientChannelError(
                    f"getAllOrders: order {po} has a WFS line without sku or quantity",
                    code="BAD_RESPONSE",
                )
            cancelled = status is OrderStatus.CANCELLED
            sales.append(MarketplaceSale(sku, int(units), ordered, cancelled))
    sales.sort(key=lambda sale: sale.ordered_at)
    return sales


async def _orders(client: WalmartClient, params: dict[str, str]) -> list[Any]:
    """Every order of the listing ``params`` asks for, following ``nextCursor``."""
    found: list[Any] = []
    cursors: set[str] = set()
    while True:
        page = await client.call(GET_ORDERS, "GET", ORDERS_PATH, params=params)
        listing = page.get("list") if isinstance(page, Mapping) else None
        meta = listing.get("meta") if isinstance(listing, Mapping) else None
        elements = listing.get("elements") if isinstance(listing, Mapping) else None
        orders = elements.get("order", []) if isinstance(elements, Mapping) else None
        if not isinstance(meta, Mapping) or not isinstance(orders, list):
            raise TransientChannelError(
                "getAllOrders: answer without list.meta or list.elements", code="BAD_RESPONSE"
            )
        found.extend(orders)
        cursor = meta.get("nextCursor")
        if not isinstance(cursor, str) or not cursor.strip("?") or not orders:
            return found
        if cursor in cursors:  # a cursor that comes back would loop for ever
            raise TransientChannelError(f"getAllOrders: nextCursor {cursor!r} repeated")
        cursors.add(cursor)
        params = dict(parse_qsl(cursor.lstrip("?"), keep_blank_values=True))


def _order_parts(order: Any) -> tuple[str, datetime, list[Any]]:
    """An order's purchaseOrderId, orderDate and order lines (BAD_RESPONSE without them)."""
    if not isinstance(order, Mapping):
        raise TransientChannelError("getAllOrders: an order is not an object", code="BAD_RESPONSE")
    po = order.get("purchaseOrderId")
    lines = order.get("orderLines")
    rows = lines.get("orderLine") if isinstance(lines, Mapping) else None
    ordered = parse_time(order.get("orderDate"))
    if not isinstance(po, str) or not po or not isinstance(rows, list) or ordered is None:
        raise TransientChannelError(
            "getAllOrders: an order without purchaseOrderId, orderDate or orderLines",
            code="BAD_RESPONSE",
        )
    return po, ordered, rows


def _order_events(order: Any, is_wfs: Callable[[str], bool]) -> list[OrderEvent]:
    po, ordered, rows = _order_parts(order)
    node = order.get("shipNode")
    wfs_order = isinstance(node, Mapping) and node.get("type") == WFS_SHIP_NODE_TYPE
    events: list[OrderEvent] = []
    for line in rows:
        if not isinstance(line, Mapping):
            continue
        status = _status(po, line)
        if status is None:
            continue
        item = line.get("item")
        sku = item.get("sku") if isinstance(item, Mapping) else None
        quantity = line.get("orderLineQuantity")
        try:
            event = line_event(
                po,
                line.get("lineNumber"),
                sku,
                quantity.get("amount") if isinstance(quantity, Mapping) else None,
                status,
                parse_time(line.get("statusDate")) or ordered,
                wfs=wfs_order or (isinstance(sku, str) and is_wfs(sku)),
            )
        except ValueError as err:
            raise TransientChannelError(f"getAllOrders: {err}", code="BAD_RESPONSE") from err
        if event is not None:
            events.append(event)
    return events


def _status(po: str, line: Mapping[str, Any]) -> OrderStatus | None:
    holder = line.get("orderLineStatuses")
    statuses = holder.get("orderLineStatus") if isinstance(holder, Mapping) else None
    names = [s.get("status") for s in statuses or [] if isinstance(s, Mapping)]
    if not names or any(name not in KNOWN_STATUSES for name in names):
        # Not an error of the whole poll: this line waits for a status we understand.
        log.warning("walmart.orders.unknown_status", order=po, statuses=names)
        return None
    return OrderStatus.CANCELLED if all(n == CANCELLED for n in names) else OrderStatus.PLACED
