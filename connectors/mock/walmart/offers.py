"""Offer rules: writes, the reasonable price, the Buy Box, orders; each returns its events."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from connectors.mock.kit.wire import iso
from connectors.mock.market import MockListing, react
from connectors.mock.walmart.const import PUBLISHED, REASONABLE_PRICE, UNPUBLISHED
from connectors.mock.walmart.events import Event
from connectors.mock.walmart.state import PurchaseOrder, WalmartMockState
from connectors.mock.walmart.wire import epoch_ms, number
from connectors.specs import load_spec
from domain.listings import Fulfillment
from domain.offers import CompetitorOffer

WFS = Fulfillment.MARKETPLACE

REASON_TEXT = {
    REASONABLE_PRICE: "Your item is unpublished because its price is not reasonable compared "
    "to the reference price.",
}


@dataclass(frozen=True)
class BookOffer:
    """One offer on the item page."""

    partner_id: str
    seller_name: str
    price: Decimal
    shipping: Decimal
    wfs: bool
    ours: bool

    @property
    def landed(self) -> Decimal:
        """Price plus shipping (Walmart ranks offers by landed price)."""
        return self.price + self.shipping

    def wire(self) -> dict[str, Any]:
        """The offer as the BUY_BOX_CHANGED payload shows it."""
        return {
            "partnerId": self.partner_id,
            "sellerName": self.seller_name,
            "sellerOfferPrice": number(self.price),
            "sellerShippingSpeed": "2-day" if self.wfs else "3-day",
            "sellerShippingPrice": number(self.shipping),
            "proSellerBadge": self.wfs,
            "isWFS": self.wfs,
        }


def _rival(offer: CompetitorOffer) -> BookOffer:
    # Stable 11-digit partner ids (Python's str hash is salted per process); the market's "fba"
    # stands for marketplace-fulfilled.
    digits = int(hashlib.sha256(offer.seller_id.encode()).hexdigest()[:12], 16) % 10**7
    wfs = offer.fulfillment == "fba"
    return BookOffer(f"1000{digits:07d}", offer.seller_id, offer.price, offer.shipping, wfs, False)


def is_live(state: WalmartMockState, listing: MockListing) -> bool:
    """Our offer competes only while published and (seller-fulfilled) in stock."""
    in_stock = listing.quantity > 0 or listing.fulfillment is WFS
    return state.meta_of(listing).published_status == PUBLISHED and in_stock


def _own_offer(state: WalmartMockState, listing: MockListing) -> BookOffer:
    wfs = listing.fulfillment is WFS
    return BookOffer(
        state.partner_id, state.seller_name, listing.price, state.own_shipping, wfs, True
    )


def book(state: WalmartMockState, listing: MockListing) -> list[BookOffer]:
    """All offers by landed price (ours only while live); ties go to the competitor."""
    offers = [_rival(offer) for offer in state.market.competitors.get(listing.sku, [])]
    offers += [_own_offer(state, listing)] if is_live(state, listing) else []
    return sorted(offers, key=lambda offer: (offer.landed, offer.ours))


def buy_box_changed(state: WalmartMockState, listing: MockListing) -> list[Event]:
    """The BUY_BOX_CHANGED event for the item's current book (none without any offer)."""
    offers = book(state, listing)
    if not offers:
        return []
    meta = state.meta_of(listing)
    current, winner = _own_offer(state, listing), offers[0]
    payload = {
        "partnerId": state.partner_id,
        "itemInfo": {
            "itemId": meta.item_id,
            "itemName": meta.product_name,
            "category": "Home",
            "productType": meta.product_type,
            "brand": "Mock",
            "sku": listing.sku,
            "itemCondition": "New",
            "totalNumberOfOffers": len(offers),
        },
        "offer": {
            "currentOffer": current.wire(),
            "winningOffer": winner.wire(),
            "offers": [offer.wire() for offer in offers[:5]],
            "priceDifference": number(current.landed - winner.landed),
        },
    }
    return [Event("BUY_BOX_CHANGED", listing.sku, payload)]


WinnerKey = tuple[str, Decimal] | tuple[()]


def _winner_key(state: WalmartMockState, listing: MockListing) -> WinnerKey:
    offers = book(state, listing)
    return (offers[0].seller_name, offers[0].landed) if offers else ()


def competitors_move(
    state: WalmartMockState, listing: MockListing, before: WinnerKey | None = None
) -> list[Event]:
    """Competitors react to our price; BUY_BOX_CHANGED if the winner or winning price moved
    since ``before`` (the Buy Box before our own change; default: as it stands now)."""
    if before is None:
        before = _winner_key(state, listing)
    offers = state.market.competitors.get(listing.sku, [])
    state.market.competitors[listing.sku] = react(offers, listing.price, state.rng)
    return buy_box_changed(state, listing) if _winner_key(state, listing) != before else []


def _status_event(state: WalmartMockState, listing: MockListing) -> Event:
    meta = state.meta_of(listing)
    payload: dict[str, Any] = {
        "partnerId": state.partner_id,
        "sku": listing.sku,
        "itemId": meta.item_id,
        "publishStatus": meta.published_status,
        "lifecycleStatus": meta.lifecycle_status,
        "statusChangeReasons": {reason: REASON_TEXT.get(reason, reason) for reason in meta.reasons},
    }
    if meta.published_status == PUBLISHED:
        return Event("OFFER_PUBLISHED", listing.sku, payload)
    payload.update(
        {
            "itemName": meta.product_name,
            "category": "Home",
            "totalNumberOfOffers": len(state.market.competitors.get(listing.sku, [])) + 1,
            "sellerOfferPrice": number(listing.price),
            "sellerShippingPrice": number(state.own_shipping),
            "referencePrice": number(meta.reference_price),
            "referencePriceURL": f"https://www.walmart.com/ip/{meta.item_id}",
        }
    )
    return Event("OFFER_UNPUBLISHED", listing.sku, payload)


def set_reference(
    state: WalmartMockState, listing: MockListing, reference: Decimal | None = None
) -> list[Event]:
    """Re-judge the offer's price against its (new) reference price: unpublished outside the
    band (OFFER_UNPUBLISHED with ``referencePrice``), republished back inside it."""
    meta = state.meta_of(listing)
    if reference is not None:
        meta.reference_price = reference
    reference = meta.reference_price
    fair = reference * state.reasonable_low <= listing.price <= reference * state.reasonable_high
    if not fair and meta.published_status == PUBLISHED:
        meta.published_status, meta.reasons = UNPUBLISHED, [REASONABLE_PRICE]
        meta.unpublished_at = state.clock.now()
    elif fair and meta.published_status == UNPUBLISHED and meta.reasons == [REASONABLE_PRICE]:
        meta.published_status, meta.reasons, meta.unpublished_at = PUBLISHED, [], None
    else:
        return []
    return [_status_event(state, listing)]


def apply_price(
    state: WalmartMockState, listing: MockListing, price: Decimal, stamp: float
) -> list[Event]:
    """Apply a price created at monotonic ``stamp`` (older than the one in force: ignored)."""
    meta = state.meta_of(listing)
    if stamp < meta.price_stamp:
        return []  # price.json: the update with the latest creation timestamp wins
    if state.faults.write_dropped():
        state.dropped[f"{listing.sku}|price|{price}"] += 1
        return []
    before = _winner_key(state, listing)
    meta.price_stamp = stamp
    listing.price = price
    state.applied[f"{listing.sku}|price|{price}"] += 1
    events = set_reference(state, listing)
    if state.buy_box_on_writes:
        events.extend(competitors_move(state, listing, before))
    return events


def apply_quantity(state: WalmartMockState, listing: MockListing, quantity: int) -> bool:
    """Set seller-node stock; False when the drop fault swallowed the write."""
    if state.faults.write_dropped():
        state.dropped[f"{listing.sku}|quantity|{quantity}"] += 1
        return False
    listing.quantity = quantity
    state.applied[f"{listing.sku}|quantity|{quantity}"] += 1
    return True


def order_event(
    state: WalmartMockState, kind: str, order: PurchaseOrder, row: Any, status: str, **line: Any
) -> Event:
    """The PO_CREATED / PO_LINE_AUTOCANCELLED event of the order line ``row``: per Walmart's event
    pages ``orderLines`` is a list, quantities are strings, dates ISO-8601 (format not shown)."""
    doc, now = order.document, state.clock.now()
    amount, sku = row["orderLineQuantity"]["amount"], row["item"]["sku"]
    line.update(lineNumber=row["lineNumber"], sku=sku, status=status, statusDate=iso(now))
    line["quantity"] = {"unitOfMeasure": "EACH", "measurementValue": amount}
    line["shipNodeType"] = order.ship_node_type
    payload = {"partnerId": state.partner_id, "purchaseOrderId": doc["purchaseOrderId"]}
    payload.update(customerOrderId=doc["customerOrderId"], orderDate=iso(order.created))
    return Event(kind, sku, {**payload, "orderLines": [line]})


# The REGULAR order of orders.json's getAllOrders example is every mock order's template (the
# shopper's phone and address, the line's charge, tax and fulfillment); the rest is its own.
_ORDERS = load_spec("walmart", "orders.json")["paths"]["/v3/orders"]["get"]["responses"]["200"]
_TEMPLATE = _ORDERS["content"]["application/json"]["example"]["list"]["elements"]["order"][1]


def place_order(state: WalmartMockState, listing: MockListing, quantity: int) -> Event:
    """A shopper buys ``quantity`` units: stock goes down, the purchase order is kept (what
    ``GET /v3/orders`` lists, orders.json ``Order``); the PO_CREATED event."""
    listing.quantity -= quantity
    state.orders += 1
    wfs = listing.fulfillment is WFS
    po, customer = f"{1800000000000 + state.orders}", str(state.new_uuid().int)[:13]
    now = state.clock.now()
    ms = epoch_ms(now.timestamp())
    units = {"unitOfMeasurement": "EACH", "amount": str(quantity)}
    name = state.meta_of(listing).product_name
    node_type = "WFSFulfilled" if wfs else "SellerFulfilled"
    document: dict[str, Any] = copy.deepcopy(_TEMPLATE)
    document.update(purchaseOrderId=po, customerOrderId=customer, orderDate=ms)
    document.update(customerEmailId=f"{po}@relay.walmart.com", shipNode={"type": node_type})
    shipping, [line] = document["shippingInfo"], document["orderLines"]["orderLine"]
    shipping["estimatedDeliveryDate"] = epoch_ms((now + timedelta(days=3)).timestamp())
    shipping["estimatedShipDate"] = epoch_ms((now + timedelta(days=1)).timestamp())
    line.update(lineNumber="1", item={"productName": name, "sku": listing.sku}, statusDate=ms)
    line.update(orderLineQuantity=dict(units))
    created = {"status": "Created", "statusQuantity": dict(units)}
    line["orderLineStatuses"]["orderLineStatus"] = [created]
    total = number(listing.price * Decimal(quantity))
    line["charges"]["charge"][0]["chargeAmount"] = {"currency": listing.currency, "amount": total}
    del line["fulfillment"]["pickUpDateTime"]  # the example's; a ship-to-home order has none
    order = state.purchase_orders[po] = PurchaseOrder(document, now, now, node_type)
    program = "TWO_DAY" if wfs else "THREE_DAY"
    extra = {"shippingProgramType": program, "shippingMethod": "Value"}
    event = order_event(state, "PO_CREATED", order, line, "CREATED", productName=name, **extra)
    event.payload["estimatedDeliveryDate"] = iso(now + timedelta(days=3))
    event.payload["estimatedShipDate"] = iso(now + timedelta(days=1))
    return event
