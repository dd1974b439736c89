"""Order polling: ``orders(query: "updated_at:>=...", sortKey: UPDATED_AT)`` → ``OrderEvent``s.

The fallback for order webhooks that never arrived. Each order becomes one event shaped exactly
like its webhook's (``connectors.shopify.events``): the numeric REST id (``legacyResourceId``, the
``id`` of an orders/create body) so that a poll and a webhook of the same order dedupe against each
other in the ledger; one line per SKU (lines of one SKU added up, lines without a SKU skipped);
``updatedAt`` as the event time; CANCELLED when ``cancelledAt`` is set, else PLACED.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from pydantic import Field

from connectors.shopify import queries
from connectors.shopify.client import ShopifyClient, parse
from connectors.shopify.const import ORDER_LINES_FIRST, ORDER_LINES_PAGE, ORDER_PAGE_SIZE
from connectors.shopify.models import PageInfo, Wire
from domain.errors import TransientChannelError
from domain.events import OrderEvent, OrderLine, OrderStatus

log = structlog.get_logger(__name__)


class LineItem(Wire):
    """A line item as the order poll reads it."""

    sku: str | None = None
    quantity: int


class LineItemPage(Wire):
    """One page of an order's ``lineItems``."""

    nodes: list[LineItem]
    page_info: PageInfo


class OrderNode(Wire):
    """An order as the poll reads it."""

    id: str
    legacy_resource_id: str = Field(pattern=r"^[0-9]+$")  # UnsignedInt64: a digit string
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None = None
    line_items: LineItemPage


class OrderPage(Wire):
    """One page of ``orders``."""

    nodes: list[OrderNode]
    page_info: PageInfo


class OrderLinesNode(Wire):
    """``node(id:)`` of an order, with only its line items."""

    line_items: LineItemPage


async def fetch_orders(client: ShopifyClient, since: datetime) -> list[OrderEvent]:
    """Every order updated at or after ``since``, oldest update first."""
    events: list[OrderEvent] = []
    after: str | None = None
    cursors: set[str] = set()
    search = queries.updated_since(since)
    while True:
        data = await client.execute(
            "orders_page",
            queries.ORDERS_PAGE,
            {"first": ORDER_PAGE_SIZE, "after": after, "query": search, "lines": ORDER_LINES_FIRST},
        )
        page = parse("orders_page", data.get("orders"), OrderPage)
        for order in page.nodes:
            lines = list(order.line_items.nodes)
            if order.line_items.page_info.has_next_page:
                lines += await _more_lines(client, order)
            events.append(_event(order, lines))
        cursor = page.page_info.end_cursor
        if not page.page_info.has_next_page or not cursor:
            break
        if cursor in cursors:  # a cursor that comes back would loop for ever
            raise TransientChannelError(f"shopify orders: cursor {cursor!r} repeated")
        cursors.add(cursor)
        after = cursor
    # Pages come sorted by updatedAt; a stable sort keeps that order and fixes any overlap of
    # an order updated while we paged (it then shows up twice: the ledger applies it once).
    events.sort(key=lambda event: event.updated_at)
    return events


async def _more_lines(client: ShopifyClient, order: OrderNode) -> list[LineItem]:
    """The line items after the first page of ``order``'s."""
    lines: list[LineItem] = []
    after = order.line_items.page_info.end_cursor
    while after:
        data = await client.execute(
            "order_lines",
            queries.ORDER_LINES,
            {"id": order.id, "first": ORDER_LINES_PAGE, "after": after},
        )
        node = data.get("node")
        if not isinstance(node, dict):
            # Deleted between the two calls: what we read of it is all there is.
            log.warning("shopify_order_lines_missing", order=order.legacy_resource_id)
            break
        page = parse("order_lines", node, OrderLinesNode).line_items
        lines.extend(page.nodes)
        nxt = page.page_info.end_cursor if page.page_info.has_next_page else None
        if nxt == after:
            raise TransientChannelError(f"shopify order lines: cursor {after!r} repeated")
        after = nxt
    return lines


def _event(order: OrderNode, lines: list[LineItem]) -> OrderEvent:
    units: dict[str, int] = {}
    for line in lines:
        sku = (line.sku or "").strip()
        if not sku:
            continue  # custom item, gift card, tip: nothing we list
        if line.quantity < 0:
            raise TransientChannelError(
                f"shopify orders: order {order.legacy_resource_id} has a negative quantity",
                code="BAD_RESPONSE",
            )
        if line.quantity:
            units[sku] = units.get(sku, 0) + line.quantity
    cancelled = order.cancelled_at is not None
    return OrderEvent(
        order_id=order.legacy_resource_id,
        status=OrderStatus.CANCELLED if cancelled else OrderStatus.PLACED,
        lines=tuple(OrderLine(sku, quantity) for sku, quantity in units.items()),
        updated_at=_utc(order.updated_at),
    )


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise TransientChannelError(
            "shopify orders: a DateTime without offset", code="BAD_RESPONSE"
        )
    return moment.astimezone(UTC)
