"""Simulated buyers: a sale lowers the listing's quantities, records the order (getOrder,
getOrders) and pushes ORDER_CONFIRMATION naming it."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import structlog

from connectors.mock.ebay.fulfillment import record
from connectors.mock.ebay.notify import deliver, order_confirmation
from connectors.mock.ebay.state import EbayMockState, SentNotification

log = structlog.get_logger(__name__)


class OrderRefused(Exception):
    """The order cannot be placed (``status`` is the control route's answer)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class Sale:
    """One checked-out line item and the notification it caused."""

    order_id: str
    line_item_id: str
    sku: str
    quantity_left: int
    notification: SentNotification


async def sell(
    state: EbayMockState, session: aiohttp.ClientSession, sku: str, quantity: int
) -> Sale:
    """A buyer checks out ``quantity`` units of ``sku``'s listing."""
    listing = state.listing(sku)
    live = [o for o in state.offers_of(sku) if o.status == "PUBLISHED"]
    if listing is None or not live:
        raise OrderRefused(404, "no such listing")
    if quantity < 1:
        raise OrderRefused(400, "quantity must be a positive integer")
    if listing.quantity < quantity:
        raise OrderRefused(409, "not enough quantity on the listing")
    offer, item = live[0], state.items[sku]
    offer.available_quantity -= quantity
    offer.sold_quantity += quantity
    item.ship_to_quantity -= quantity
    state.sync_quantity(sku)
    state.orders += 1
    rng = state.rng
    order_id = f"{state.orders:02d}-{rng.randrange(10**5):05d}-{rng.randrange(10**5):05d}"
    line_item_id = f"{10**13 + rng.randrange(10**13)}"
    record(state, sku, quantity, order_id, line_item_id)  # what getOrders lists
    payload = order_confirmation(state, order_id)
    sent = await deliver(state, session, payload)
    return Sale(order_id, line_item_id, sku, listing.quantity, sent)


async def run_buyers(state: EbayMockState, session: aiohttp.ClientSession) -> None:
    """Every ``order_interval_s`` (``state.sleep``) one unit of a random in-stock listing sells."""
    interval = state.order_interval_s
    if not interval:
        return
    while True:
        await state.sleep(interval)
        in_stock = sorted(sku for sku, row in state.market.listings.items() if row.quantity > 0)
        if not in_stock:
            continue
        sale = await sell(state, session, state.rng.choice(in_stock), 1)
        log.info("ebay_mock.sale", sku=sale.sku, order_id=sale.order_id, left=sale.quantity_left)
