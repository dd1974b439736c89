"""Fulfillment API ``getOrders`` (``GET /sell/fulfillment/v1/order``), ``getOrder``
(``GET /sell/fulfillment/v1/order/{orderId}``: what a seller calls on ORDER_CONFIRMATION, whose
notification names the order only) and order cancels.

``record`` keeps each checkout of ``/_mock/orders`` as getOrders shows it (Fulfillment OAS
``Order``: ``orderId``, ``creationDate``, ``lastModifiedDate``, ``orderFulfillmentStatus``,
``cancelStatus.cancelState``, ``lineItems[]`` with ``lineItemId``, ``sku``, ``quantity``).
``cancel`` is a completed cancellation: ``cancelState`` CANCELED, the order modified, the units
back on the listing (eBay sends no ORDER_CONFIRMATION-like notification for it).

The route checks what eBay documents for ``filter`` (``creationdate:[a..b]``,
``lastmodifieddate:[a..]``, ``orderfulfillmentstatus:{NOT_STARTED|IN_PROGRESS}`` or
``{FULFILLED|IN_PROGRESS}``; with both dates only ``creationdate`` counts; no date: orders
created in the last 90 days), ``limit`` and ``offset``, and refuses the rest with the OAS's
errorIds (30700-31100, domain API_FULFILLMENT). Pages: ``href``, ``total``, ``limit``,
``offset``, ``next`` / ``prev`` (absent at the ends), ``orders``. Order of the orders:
newest creation first (eBay does not document one).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from connectors.mock.ebay.auth import ebay_api
from connectors.mock.ebay.const import (
    DEFAULT_ORDERS_PAGE,
    ERR_DATE_FORMAT,
    ERR_DATE_FUTURE,
    ERR_FILTER_NAME,
    ERR_FILTER_VALUE,
    ERR_LIMIT,
    ERR_OFFSET,
    ERR_ORDER_ID,
    ERR_START_AFTER_END,
    ERR_START_MISSING,
    ERR_START_TOO_OLD,
    FULFILLMENT_API,
    FULFILLMENT_DOMAIN,
    FULFILLMENT_READONLY_SCOPE,
    FULFILLMENT_SCOPE,
    MAX_ORDERS_PAGE,
    ORDERS_WINDOW_DAYS,
)
from connectors.mock.ebay.state import USER, EbayMockState, SoldOrder
from connectors.mock.ebay.wire import WireError, answer, error, money
from connectors.mock.kit.wire import iso

PATH = "/sell/fulfillment/v1/order"
READ = frozenset({FULFILLMENT_SCOPE, FULFILLMENT_READONLY_SCOPE})
STATUS_SETS = ({"NOT_STARTED", "IN_PROGRESS"}, {"FULFILLED", "IN_PROGRESS"})


def record(
    state: EbayMockState, sku: str, quantity: int, order_id: str, line_item_id: str
) -> dict[str, Any]:
    """Keep one checked-out line item as an order getOrders lists; return its document."""
    now = state.now()
    listing = state.listing(sku)
    offers = state.offers_of(sku)
    assert listing is not None
    assert offers
    cost = {"value": money(listing.price * Decimal(quantity)), "currency": listing.currency}
    document: dict[str, Any] = {
        "orderId": order_id,
        "legacyOrderId": f"{offers[0].listing_id}-{line_item_id}",
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
                "legacyItemId": offers[0].listing_id,
                "sku": sku,
                "title": state.items[sku].title,
                "quantity": quantity,
                "lineItemCost": cost,
                "soldFormat": "FIXED_PRICE",
                "listingMarketplaceId": offers[0].marketplace_id,
                "purchaseMarketplaceId": offers[0].marketplace_id,
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
    now = state.now()
    order.modified = now
    order.document["lastModifiedDate"] = iso(now)
    order.document["cancelStatus"] = {
        "cancelState": "CANCELED",
        "cancelledDate": iso(now),
        "cancelRequests": [],
    }
    for item in order.document["lineItems"]:
        sku, quantity = item["sku"], item["quantity"]
        live = [o for o in state.offers_of(sku) if o.status == "PUBLISHED"]
        if live and sku in state.items:
            live[0].available_quantity += quantity
            state.items[sku].ship_to_quantity += quantity
            state.sync_quantity(sku)
    return order


def _bad(error_id: int, message: str, **parameters: str) -> WireError:
    return WireError(
        400,
        error(error_id, FULFILLMENT_DOMAIN, "REQUEST", message, parameters=parameters or None),
    )


def _date(raw: str) -> datetime:
    """An ISO 8601 UTC timestamp (``2016-02-21T08:25:43.511Z``)."""
    if not raw.endswith("Z"):
        raise _bad(ERR_DATE_FORMAT, "Invalid date format")
    try:
        return datetime.fromisoformat(raw[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise _bad(ERR_DATE_FORMAT, "Invalid date format") from exc


def _range(name: str, value: str, now: datetime) -> tuple[datetime, datetime | None]:
    if not (value.startswith("[") and value.endswith("]") and ".." in value):
        raise _bad(ERR_FILTER_VALUE, f"Invalid filter value {value} for filter {name}", filter=name)
    start_raw, _, end_raw = value[1:-1].partition("..")
    if not start_raw:
        raise _bad(ERR_START_MISSING, "Start date is missing")
    start = _date(start_raw)
    end = _date(end_raw) if end_raw else None
    if start > now or (end is not None and end > now):
        raise _bad(ERR_DATE_FUTURE, "Start and end dates can't be in the future")
    if end is not None and start > end:
        raise _bad(ERR_START_AFTER_END, "Start date should be before end date")
    if (end or now) - start > timedelta(days=ORDERS_WINDOW_DAYS):
        raise _bad(
            ERR_START_TOO_OLD, "Start date must be within 90 days of end date and current date."
        )
    return start, end


def parse_filter(raw: str | None, now: datetime) -> dict[str, Any]:
    """``filter`` → {"creationdate": (start, end), "lastmodifieddate": ..., "status": set}."""
    criteria: dict[str, Any] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.strip().partition(":")
        if name in ("creationdate", "lastmodifieddate"):
            criteria[name] = _range(name, value, now)
        elif name == "orderfulfillmentstatus":
            wanted = set(value.strip("{}").split("|"))
            if not (value.startswith("{") and value.endswith("}")) or wanted not in STATUS_SETS:
                raise _bad(
                    ERR_FILTER_VALUE, f"Invalid filter value {value} for filter {name}", filter=name
                )
            criteria["status"] = wanted
        else:
            raise _bad(ERR_FILTER_NAME, f"Invalid filter name: {name}", filter=name)
    return criteria


def _count(raw: str, error_id: int, what: str, low: int, high: int | None) -> int:
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        raise _bad(error_id, f"Invalid {what}: {raw}", **{what: raw})
    return int(raw)


def _selected(order: SoldOrder, criteria: dict[str, Any], now: datetime) -> bool:
    # "If creationdate and lastmodifieddate are both included, only creationdate is used."
    if "creationdate" in criteria:
        (start, end), moment = criteria["creationdate"], order.created
    elif "lastmodifieddate" in criteria:
        (start, end), moment = criteria["lastmodifieddate"], order.modified
    else:  # no date filter: orders created within the last 90 days
        start, end, moment = now - timedelta(days=ORDERS_WINDOW_DAYS), None, order.created
    status = order.document["orderFulfillmentStatus"]
    return start <= moment <= (end or moment) and status in criteria.get("status", {status})


@ebay_api(FULFILLMENT_API, USER, READ)
async def get_orders(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /sell/fulfillment/v1/order?filter=&limit=&offset=``: the seller's orders."""
    now = state.now()
    criteria = parse_filter(request.query.get("filter"), now)
    raw_limit = request.query.get("limit", str(DEFAULT_ORDERS_PAGE))
    limit = _count(raw_limit, ERR_LIMIT, "limit", 1, MAX_ORDERS_PAGE)
    offset = _count(request.query.get("offset", "0"), ERR_OFFSET, "offset", 0, None)
    found = sorted(
        (o for o in state.sold.values() if _selected(o, criteria, now)),
        key=lambda o: (o.created, o.document["orderId"]),
        reverse=True,
    )
    base = f"{request.url.origin()}{PATH}?"
    kept = {k: v for k, v in request.query.items() if k not in ("limit", "offset")}

    def page(at: int) -> str:
        return base + urlencode({**kept, "limit": limit, "offset": at})

    body: dict[str, Any] = {"href": page(offset), "total": len(found), "limit": limit}
    if offset + limit < len(found):
        body["next"] = page(offset + limit)
    body["offset"] = offset
    if offset > 0:
        body["prev"] = page(max(0, offset - limit))
    body["orders"] = [o.document for o in found[offset : offset + limit]]
    return answer(body)


@ebay_api(FULFILLMENT_API, USER, READ)
async def get_order(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /sell/fulfillment/v1/order/{orderId}``: one order, as getOrders lists it.

    An order id the seller does not have → 404 errorId 32100 "Invalid order ID" (the OAS gives
    32100 under 400 and a bare 404; which one eBay answers for an unknown id is unconfirmed).
    """
    order_id = request.match_info["orderId"]
    order = state.sold.get(order_id)
    if order is None:
        raise WireError(
            404,
            error(
                ERR_ORDER_ID,
                FULFILLMENT_DOMAIN,
                "REQUEST",
                f"Invalid order ID: {order_id}",
                parameters={"orderId": order_id},
            ),
        )
    return answer(order.document)


def add_routes(app: web.Application) -> None:
    """Register ``GET /sell/fulfillment/v1/order`` and ``GET .../order/{orderId}``."""
    app.router.add_get(PATH, get_orders)
    app.router.add_get(PATH + "/{orderId}", get_order)
