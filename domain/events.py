"""What a marketplace tells the daemon unasked: a verified webhook delivery, and the domain
events parsed from it (offer changes, orders, observed quantities). Times are aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.offers import OfferObservation

__all__ = [
    "ChannelEvent",
    "MarketplaceSale",
    "OfferChanged",
    "OrderEvent",
    "OrderLine",
    "OrderNotice",
    "OrderStatus",
    "QuantityObserved",
    "WebhookDelivery",
]


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """A verified webhook, ready to be stored in the inbox."""

    dedupe_key: str
    topic: str
    payload: str


@dataclass(frozen=True, slots=True)
class OfferChanged:
    """The marketplace says the competition on a listing changed (ANY_OFFER_CHANGED,
    BUY_BOX_CHANGED...); ``observation`` carries the new offers when the notification has them."""

    sku: str
    observation: OfferObservation | None = None


class OrderStatus(StrEnum):
    """What happened to an order, as far as stock is concerned."""

    PLACED = "placed"  # units leave available stock
    CANCELLED = "cancelled"  # the whole order is void: its units come back


@dataclass(frozen=True, slots=True)
class OrderLine:
    """Units of one seller SKU in an order."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class MarketplaceSale:
    """One order line shipped from the marketplace's own stock (Walmart WFS): never ours to
    take off the merchant ledger, only a sale of the marketplace pool on ``ordered_at``'s day."""

    sku: str
    quantity: int
    ordered_at: datetime
    cancelled: bool


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An order placed or cancelled on a channel (orders/create, ORDER_CHANGE, ...)."""

    order_id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class QuantityObserved:
    """The channel reports a listing's live quantity (inventory_levels/update, ...), which may
    be the echo of our own write or a change made outside repricerd."""

    sku: str
    quantity: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderNotice:
    """A notification that names an order without the lines stock needs (eBay's
    ORDER_CONFIRMATION carries only the order id): the channel's ``resolve_events`` reads the
    order and replaces the notice with its ``OrderEvent``. ``status`` is what the notification
    says (None: the order read decides)."""

    order_id: str
    updated_at: datetime
    status: OrderStatus | None = None


# Everything a webhook can tell the daemon.
ChannelEvent = OfferChanged | OrderEvent | QuantityObserved | OrderNotice
