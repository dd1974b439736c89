"""The competition on a listing: offers (ours and competitors') and the reference prices seen
with them. Money is ``Decimal``; times are aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

__all__ = ["CompetitorOffer", "OfferObservation"]


@dataclass(frozen=True, slots=True)
class CompetitorOffer:
    """One offer on the same product, ours or a competitor's."""

    seller_id: str
    price: Decimal
    shipping: Decimal = Decimal("0")
    fulfillment: str = "fbm"  # fba | fbm | retail (the marketplace itself)
    rating_pct: int | None = None
    rating_count: int | None = None
    is_buy_box_winner: bool = False
    is_own: bool = False

    @property
    def landed_price(self) -> Decimal:
        """Price plus shipping: what the shopper pays and what Buy Boxes compare."""
        return self.price + self.shipping


@dataclass(frozen=True, slots=True)
class OfferObservation:
    """Competitor offers and marketplace reference prices for one listing at one time."""

    sku: str
    observed_at: datetime
    offers: tuple[CompetitorOffer, ...]
    source: str = "poll"
    buy_box_price: Decimal | None = None
    buy_box_seller: str | None = None
    reference_price: Decimal | None = None
