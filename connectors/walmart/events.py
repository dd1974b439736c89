"""Stored webhook notifications → domain events.

* ``BUY_BOX_CHANGED`` (PRICE): ``payload.itemInfo.sku`` and ``payload.offer`` with our
  ``currentOffer``, the ``winningOffer`` and (since 2026-03) the top-5 ``offers[]`` by landed price
  → ``OfferChanged`` with an observation (bare doubles, read as exact decimals).
* ``OFFER_UNPUBLISHED`` (ITEM) with reason ``REASONABLE_PRICE_NOT_SATISFIED`` → ``OfferChanged``
  whose observation carries Walmart's ``referencePrice`` (the reference-band guard uses it).
* ``PO_CREATED`` / ``PO_LINE_AUTOCANCELLED`` (ORDER) → one ``OrderEvent`` per seller-fulfilled
  order line, PLACED / CANCELLED. Walmart cancels *lines*, not orders, so the order id of each
  event is ``<purchaseOrderId>:<lineNumber>``: a line's cancel gives back exactly that line.
  Lines shipped by WFS (``shipNodeType`` WFSFulfilled) are skipped: Walmart's stock, not ours.

Event payload shapes are not in notifications.json (it has only the subscription API); they
follow Walmart's event docs as summarised in guide §2.4-§2.5.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from connectors.walmart.const import (
    BUY_BOX_CHANGED,
    OFFER_UNPUBLISHED,
    PO_CREATED,
    PO_LINE_AUTOCANCELLED,
    REASONABLE_PRICE_NOT_SATISFIED,
    WALMART_RETAIL,
    WFS_SHIP_NODE_TYPE,
)
from connectors.walmart.models import money, parse_time
from connectors.walmart.webhooks import document_of
from connectors.wire import to_decimal
from domain.events import (
    ChannelEvent,
    OfferChanged,
    OrderEvent,
    OrderLine,
    OrderStatus,
    WebhookDelivery,
)
from domain.offers import CompetitorOffer, OfferObservation

log = structlog.get_logger(__name__)

IsWfs = Callable[[str], bool]


def parse(
    delivery: WebhookDelivery, *, seller_id: str, currency: str, now: datetime, is_wfs: IsWfs
) -> list[ChannelEvent]:
    """Domain events of one stored delivery ([] for event types the daemon does not use)."""
    document = document_of(delivery)  # ValueError on bad JSON
    source = document.get("source")
    payload = document.get("payload")
    if not isinstance(payload, Mapping):
        raise ValueError(f"{delivery.topic} without a payload object")
    at = (parse_time(source.get("eventTime")) if isinstance(source, Mapping) else None) or now
    if delivery.topic == BUY_BOX_CHANGED:
        return _buy_box(payload, seller_id, currency, at)
    if delivery.topic == OFFER_UNPUBLISHED:
        return _unpublished(payload, seller_id, currency, at)
    if delivery.topic in (PO_CREATED, PO_LINE_AUTOCANCELLED):
        status = OrderStatus.PLACED if delivery.topic == PO_CREATED else OrderStatus.CANCELLED
        return _order(payload, status, at, is_wfs)
    return []


def _buy_box(
    payload: Mapping[str, Any], seller_id: str, currency: str, at: datetime
) -> list[ChannelEvent]:
    info, offer = payload.get("itemInfo"), payload.get("offer")
    sku = info.get("sku") if isinstance(info, Mapping) else None
    if not isinstance(sku, str) or not sku or not isinstance(offer, Mapping):
        raise ValueError("BUY_BOX_CHANGED without itemInfo.sku or offer")
    current, winning = offer.get("currentOffer"), offer.get("winningOffer")
    own_name = current.get("sellerName") if isinstance(current, Mapping) else None
    # (seller name, offer): Walmart names the winner by sellerName only.
    named: list[tuple[Any, CompetitorOffer]] = []
    own = _offer(current, seller_id, currency, own=True)
    if own is not None:
        named.append((own_name, own))
    listed = offer.get("offers")
    for raw in listed if isinstance(listed, list) else []:
        if not isinstance(raw, Mapping) or (own_name and raw.get("sellerName") == own_name):
            continue  # our own offer is already there, as ours
        parsed = _offer(raw, seller_id, currency, own=raw.get("partnerId") == seller_id)
        if parsed is not None:
            named.append((raw.get("sellerName"), parsed))
    winner_id: str | None = None
    box_price: Decimal | None = None
    if isinstance(winning, Mapping):
        name = winning.get("sellerName")
        mine = bool(own_name) and name == own_name
        box = _offer(winning, seller_id, currency, own=mine)
        if box is not None:
            box_price = box.landed_price
            at_index = next((n for n, (who, _) in enumerate(named) if name and who == name), None)
            if at_index is None:
                named.append((name, _flag(box)))
                winner_id = box.seller_id
            else:
                flagged = _flag(named[at_index][1])
                named[at_index] = (name, flagged)
                winner_id = flagged.seller_id
    offers = [o for _, o in named]
    observation = OfferObservation(
        sku=sku,
        observed_at=at,
        offers=tuple(offers),
        source="notification",
        buy_box_price=box_price,
        buy_box_seller=winner_id,
    )
    return [OfferChanged(sku, observation)]


def _offer(raw: Any, seller_id: str, currency: str, *, own: bool) -> CompetitorOffer | None:
    if not isinstance(raw, Mapping):
        return None
    price = money(raw.get("sellerOfferPrice"), currency)
    if price is None:
        return None
    name = raw.get("sellerName")
    partner = raw.get("partnerId")
    who = seller_id if own else (partner or name or "unknown")
    kind = "retail" if name == WALMART_RETAIL else ("fba" if raw.get("isWFS") is True else "fbm")
    return CompetitorOffer(
        seller_id=str(who),
        price=price,
        shipping=money(raw.get("sellerShippingPrice"), currency) or Decimal("0.00"),
        fulfillment=kind,
        is_own=own,
    )


def _flag(offer: CompetitorOffer) -> CompetitorOffer:
    return CompetitorOffer(
        offer.seller_id,
        offer.price,
        offer.shipping,
        offer.fulfillment,
        offer.rating_pct,
        offer.rating_count,
        is_buy_box_winner=True,
        is_own=offer.is_own,
    )


def _unpublished(
    payload: Mapping[str, Any], seller_id: str, currency: str, at: datetime
) -> list[ChannelEvent]:
    sku = payload.get("sku")
    if not isinstance(sku, str) or not sku:
        raise ValueError("OFFER_UNPUBLISHED without sku")
    reasons = payload.get("statusChangeReasons")
    named = (
        {str(k) for k in reasons} | {str(v) for v in reasons.values()}
        if isinstance(reasons, Mapping)
        else {str(r) for r in reasons}
        if isinstance(reasons, list)
        else set()
    )
    if REASONABLE_PRICE_NOT_SATISFIED not in named:
        log.info("walmart.offer_unpublished", sku=sku, reasons=sorted(named))
        return []  # not a pricing reason: nothing for the repricer to learn
    reference = money(payload.get("referencePrice"), currency)
    own = _offer(payload, seller_id, currency, own=True)
    observation = OfferObservation(
        sku=sku,
        observed_at=at,
        offers=(own,) if own else (),
        # Named after the event: the daemon keeps this reference after later polls (Walmart
        # reports its reasonable price nowhere else) and `explain` names where it came from.
        source=OFFER_UNPUBLISHED,
        reference_price=reference,
    )
    return [OfferChanged(sku, observation)]


def _order(
    payload: Mapping[str, Any], status: OrderStatus, at: datetime, is_wfs: IsWfs
) -> list[ChannelEvent]:
    po = payload.get("purchaseOrderId")
    lines = payload.get("orderLines")
    if not isinstance(po, str) or not po or not isinstance(lines, list):
        raise ValueError("order event without purchaseOrderId or orderLines")
    events: list[ChannelEvent] = []
    for line in lines:
        if not isinstance(line, Mapping):
            continue
        quantity, sku = line.get("quantity"), line.get("sku")
        amount = quantity.get("measurementValue") if isinstance(quantity, Mapping) else None
        event = line_event(
            po,
            line.get("lineNumber"),
            sku,
            amount,
            status,
            parse_time(line.get("statusDate")) or at,
            wfs=line.get("shipNodeType") == WFS_SHIP_NODE_TYPE
            or (isinstance(sku, str) and is_wfs(sku)),
        )
        if event is not None:
            events.append(event)
    return events


def line_event(
    po: str,
    number: Any,
    sku: Any,
    amount: Any,
    status: OrderStatus,
    updated: datetime,
    *,
    wfs: bool,
) -> OrderEvent | None:
    """One purchase-order line as an ``OrderEvent`` (None for a WFS line: Walmart's stock).

    Shared by the PO webhooks and the ``GET /v3/orders`` poll, so both name a line alike:
    order id ``<purchaseOrderId>:<lineNumber>`` (Walmart cancels lines, not orders) and the
    line's ordered units. Raises ``ValueError`` for a line without sku, number or a count.
    """
    units = to_decimal(amount)
    if not isinstance(sku, str) or not sku or number is None or units is None:
        raise ValueError(f"order {po}: a line without sku, lineNumber or quantity")
    if wfs:
        return None  # Walmart ships WFS lines from its own stock
    if units != units.to_integral_value() or units < 0:
        raise ValueError(f"order {po}: line {number} quantity {units} is not a count")
    return OrderEvent(
        order_id=f"{po}:{number}",
        status=status,
        lines=(OrderLine(sku, int(units)),),
        updated_at=updated,
    )
