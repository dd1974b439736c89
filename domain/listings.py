"""What a marketplace reports of a listing: its live price and quantity, and who fulfils it.

Money is ``Decimal`` quantized to the currency's minor unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

__all__ = ["ChannelListing", "Fulfillment"]


class Fulfillment(StrEnum):
    """Who ships the order: the seller (merchant) or the marketplace (FBA, WFS)."""

    MERCHANT = "merchant"
    MARKETPLACE = "marketplace"


@dataclass(frozen=True, slots=True)
class ChannelListing:
    """A listing as the marketplace reports it."""

    sku: str
    external_id: str | None
    price: Decimal | None
    currency: str
    quantity: int | None
    fulfillment: Fulfillment = Fulfillment.MERCHANT
    status: str = "active"
    external_ids: Mapping[str, str] = field(default_factory=dict)
