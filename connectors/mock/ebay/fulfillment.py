"""Orders: simulated buyers, Fulfillment ``getOrders`` / ``getOrder`` (filters, errorIds and
paging as the OAS documents them; see README.md) and completed cancels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from connectors.mock.ebay.const import FULFILLMENT_API, FULFILLMENT_READ
from connectors.mock.ebay.gateway import amount, answer, ebay_api, page, refuse
from connectors.mock.ebay.notify import deliver, order_confirmation
from connectors.mock.ebay.state import USER, EbayMockState, SoldOrder
from connectors.mock.kit.control import Refused
from connectors.mock.kit.wire import iso

log = structlog.get_logger(__name__)

ROUTES = web.RouteTableDef()
STATUS_SETS = ({"NOT_STARTED", "IN_PROGRESS"}, {"FULFILLED", "IN_PROGRESS"})
WINDOW = timedelta(days=90)
MAX_ORDERS_PAGE = 200  # newer reference pages; OAS v1.19.2 says 1000 (**unconfirmed**)


def record(
    state: EbayMockState, sku: str, quantity: int, order_id: str, line_item_id: str
) -> dict[str, Any]:
    """Keep one checked-out line item as an order getOrders lists; return its document."""
    now, listing, [offer, *_] = state.clock.now(), state.listing(sku), state.offers_of(sku)
    assert listing is not None
    cost = amount(listing.price * Decimal(quantity), listing.currency)
    document: dict[str, Any] = {
        "orderId": order_id,
        "legacyOrderId": f"{offer.listing_id}-{line_item_id}",
        "creationDate": iso(now),
        "lastModifiedDate": iso(now),
        "orderFulfillmentStatus": "NOT_STARTED",
        "orderPaymentStatus": "PAID",
        "sellerId": state.seller_username,
        "buyer": {"username": "mock_buyer"},
        "pricingSummary": {"total": dict(cost)},
        "cancelStatus": {"cancelState": "NONE_REQUESTED", "cancelRequests": []},
        "lineItems": [
            {
                "lineItemId": line_item_id,
                "legacyItemId": offer.listing_id,
                "sku": sku,
                "title": state.items[sku].title,
                "quantity": quantity,
                "lineItemCost": cost,
                "soldFormat": "FIXED_PRICE",
                "listingMarketplaceId": offer.marketplace_id,
                "purchaseMarketplaceId": offer.marketplace_id,
                "lineItemFulfillmentStatus": "NOT_STARTED",
            }
        ],
    }
    state.sold[order_id] = SoldOrder(document, now, now)
    return document


def cancel(state: EbayMockState, order_id: str) -> SoldOrder | None:
    """Complete a cancellation: CANCELED, modified now, its units back (None: no such order)."""
    order = state.sold.get(order_id)
    if order is None or order.document["cancelStatus"]["cancelState"] == "CANCELED":
        return None
    order.modified = now = state.clock.now()
    order.document["lastModifiedDate"] = iso(now)
    order.document["cancelStatus"] = {
        "cancelState": "CANCELED",
        "cancelledDate": iso(now),
        "cancelRequests": [],
    }
    for item in order.document["lineItems"]:
        sku, live = item["sku"], state.published(item["sku"])
        if live and sku in state.items:
            live[0].available_quantity += item["quantity"]
            state.items[sku].ship_to_quantity += item["quantity"]
            state.sync_quantity(sku)
    return order


async def sell(
    state: EbayMockState, session: aiohttp.ClientSession, sku: str, quantity: int
) -> dict[str, Any]:
    """A buyer checks out ``quantity`` units of ``sku``'s listing; the ``/_mock/orders`` answer."""
    listing, live = state.listing(sku), state.published(sku)
    if listing is None or not live:
        raise Refused(404, "no such listing")
    if quantity < 1:
        raise Refused(400, "quantity must be a positive integer")
    if listing.quantity < quantity:
        raise Refused(409, "not enough quantity on the listing")
    live[0].available_quantity -= quantity
    live[0].sold_quantity += quantity
    state.items[sku].ship_to_quantity -= quantity
    state.sync_quantity(sku)
    state.orders += 1
    rng = state.rng
    order_id = f"{state.orders:02d}-{rng.randrange(10**5):05d}-{rng.randrange(10**5):05d}"
    line_item_id = f"{10**13 + rng.randrange(10**13)}"
    record(state, sku, quantity, order_id, line_item_id)
    sent = await deliver(state, session, order_confirmation(state, order_id))
    return {
        "orderId": order_id,
        "lineItemId": line_item_id,
        "sku": sku,
        "quantity": listing.quantity,
        "notification": sent.view(),
    }


async def run_buyers(state: EbayMockState, session: aiohttp.ClientSession) -> None:
    """Every ``order_interval_s`` (``state.sleep``) one unit of a random in-stock listing sells."""
    interval = state.order_interval_s
    while interval:
        await state.sleep(interval)
        in_stock = sorted(sku for sku, row in state.market.listings.items() if row.quantity > 0)
        if in_stock:
            sale = await sell(state, session, state.rng.choice(in_stock), 1)
            log.info(
                "ebay_mock.sale", sku=sale["sku"], order_id=sale["orderId"], left=sale["quantity"]
            )


def _bad(error_id: int, message: str, **parameters: str) -> Exception:
    return refuse(FULFILLMENT_API, error_id, message, 400, **parameters)


def _date(raw: str) -> datetime:
    """An ISO 8601 UTC timestamp (``2016-02-21T08:25:43.511Z``)."""
    try:
        if raw.endswith("Z"):
            return datetime.fromisoformat(raw[:-1]).replace(tzinfo=UTC)
    except ValueError:
        pass
    raise _bad(30810, "Invalid date format")


def _range(name: str, value: str, now: datetime) -> tuple[datetime, datetime | None]:
    if not (value.startswith("[") and value.endswith("]") and ".." in value):
        raise _bad(30800, f"Invalid filter value {value} for filter {name}", filter=name)
    start_raw, _, end_raw = value[1:-1].partition("..")
    if not start_raw:
        raise _bad(30820, "Start date is missing")
    start, end = _date(start_raw), _date(end_raw) if end_raw else None
    if start > now or (end is not None and end > now):
        raise _bad(30850, "Start and end dates can't be in the future")
    if end is not None and start > end:
        raise _bad(30840, "Start date should be before end date")
    if (end or now) - start > WINDOW:
        raise _bad(30830, "Start date must be within 90 days of end date and current date.")
    return start, end


def _set(value: str) -> set[str]:
    return set(value.strip("{}").split("|"))


def parse_filter(raw: str | None, now: datetime) -> dict[str, Any]:
    """``filter`` → {"creationdate": (start, end), "lastmodifieddate": ..., "status": set}."""
    criteria: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (raw or "").split(","))):
        name, _, value = part.partition(":")
        if name in ("creationdate", "lastmodifieddate"):
            criteria[name] = _range(name, value, now)
        elif name != "orderfulfillmentstatus":
            raise _bad(30700, f"Invalid filter name: {name}", filter=name)
        elif value.startswith("{") and value.endswith("}") and _set(value) in STATUS_SETS:
            criteria["status"] = _set(value)
        else:
            raise _bad(30800, f"Invalid filter value {value} for filter {name}", filter=name)
    return criteria


def _count(request: web.Request, what: str, error_id: int, low: int, high: int | None) -> int:
    raw = request.query.get(what, "50" if what == "limit" else "0")
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        raise _bad(error_id, f"Invalid {what}: {raw}", **{what: raw})
    return int(raw)


def _selected(order: SoldOrder, criteria: dict[str, Any], now: datetime) -> bool:
    # "If creationdate and lastmodifieddate are both included, only creationdate is used."
    if "creationdate" in criteria:
        (start, end), moment = criteria["creationdate"], order.created
    elif "lastmodifieddate" in criteria:
        (start, end), moment = criteria["lastmodifieddate"], order.modified
    else:
        start, end, moment = now - WINDOW, None, order.created
    status = order.document["orderFulfillmentStatus"]
    return start <= moment <= (end or moment) and status in criteria.get("status", {status})


@ROUTES.get("/sell/fulfillment/v1/order")
@ebay_api(FULFILLMENT_API, USER, FULFILLMENT_READ)
async def get_orders(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /sell/fulfillment/v1/order?filter=&limit=&offset=``: the seller's orders."""
    now = state.clock.now()
    criteria = parse_filter(request.query.get("filter"), now)
    limit = _count(request, "limit", 31100, 1, MAX_ORDERS_PAGE)
    offset = _count(request, "offset", 31000, 0, None)
    found = sorted(
        (o for o in state.sold.values() if _selected(o, criteria, now)),
        key=lambda o: (o.created, o.document["orderId"]),
        reverse=True,
    )
    body = page(request, limit, offset, len(found))
    body.update(total=len(found), limit=limit, offset=offset)
    body["orders"] = [o.document for o in found[offset : offset + limit]]
    return answer(body)


@ROUTES.get("/sell/fulfillment/v1/order/{orderId}")
@ebay_api(FULFILLMENT_API, USER, FULFILLMENT_READ)
async def get_order(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /sell/fulfillment/v1/order/{orderId}``: one order, as getOrders lists it."""
    order_id = request.match_info["orderId"]
    if order_id not in state.sold:  # 404 or 400 with 32100? The OAS lists both (unconfirmed).
        raise refuse(FULFILLMENT_API, 32100, f"Invalid order ID: {order_id}", 404, orderId=order_id)
    return answer(state.sold[order_id].document)
