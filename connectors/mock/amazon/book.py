"""The offer book of one ASIN: competitors (who react to our price on every read) plus our offer.

Shared by the Product Pricing API and the notifications, which render it in their own casing.
Reference prices (list price, competitive price threshold, ...) are derived from the book, since
the simulated market has no external price feed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from connectors.mock.amazon.const import AMAZON_RETAIL_SELLER_ID
from connectors.mock.amazon.items import statuses
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.market import CENT, MockListing, react
from domain.listings import Fulfillment

MAX_OFFERS = 20  # Amazon returns (and notifies) the top 20 offers by landed price


@dataclass(frozen=True)
class BookOffer:
    """One live offer on the ASIN."""

    seller_id: str
    price: Decimal
    shipping: Decimal
    fba: bool
    rating_pct: int
    rating_count: int
    mine: bool = False
    buy_box: bool = False

    @property
    def landed(self) -> Decimal:
        """Listing price plus shipping (no points outside JP)."""
        return self.price + self.shipping


@dataclass(frozen=True)
class Book:
    """All live offers, best landed price first, with the derived reference prices."""

    asin: str
    currency: str
    offers: list[BookOffer]
    list_price: Decimal
    competitive_threshold: Decimal
    sales_rank: int

    @property
    def top(self) -> list[BookOffer]:
        """The offers Amazon shows: the best 20."""
        return self.offers[:MAX_OFFERS]

    @property
    def winner(self) -> BookOffer | None:
        """The Buy Box winner, if any offer wins it."""
        return next((offer for offer in self.offers if offer.buy_box), None)

    @property
    def mine(self) -> BookOffer | None:
        """Our own offer, if it is live."""
        return next((offer for offer in self.offers if offer.mine), None)

    def lowest(self, fba: bool) -> BookOffer | None:
        """The cheapest offer of one fulfillment channel."""
        return next((offer for offer in self.offers if offer.fba is fba), None)


def our_offer_live(state: AmazonMockState, listing: MockListing) -> bool:
    """Our offer shows only while BUYABLE (offer present, in stock, not suppressed)."""
    return "BUYABLE" in statuses(state, listing)


def read_book(state: AmazonMockState, listing: MockListing, *, move: bool = True) -> Book:
    """The current book of ``listing``'s ASIN; competitors first react to our price if ``move``."""
    competitors = state.market.competitors.get(listing.sku, [])
    if move and competitors:
        competitors = react(competitors, listing.price, state.rng)
        state.market.competitors[listing.sku] = competitors
    offers = [
        BookOffer(
            seller_id=AMAZON_RETAIL_SELLER_ID if offer.fulfillment == "retail" else offer.seller_id,
            price=offer.price,
            shipping=offer.shipping,
            fba=offer.fulfillment in ("fba", "retail"),
            rating_pct=offer.rating_pct or 0,
            rating_count=offer.rating_count or 0,
        )
        for offer in competitors
    ]
    if our_offer_live(state, listing):
        offers.append(
            BookOffer(
                seller_id=state.seller_id,
                price=listing.price,
                shipping=Decimal("0"),
                fba=listing.fulfillment is Fulfillment.MARKETPLACE,
                rating_pct=state.own_rating_pct,
                rating_count=state.own_rating_count,
                mine=True,
            )
        )
    # Cheapest landed price first; at equal price FBA (Prime) wins, then the better-rated seller.
    offers.sort(key=lambda o: (o.landed, not o.fba, -o.rating_pct, o.seller_id))
    if offers:
        best = offers[0]
        offers[0] = BookOffer(**{**best.__dict__, "buy_box": True})
    highest = max((offer.landed for offer in offers), default=listing.price)
    competitor_landed = [offer.landed for offer in offers if not offer.mine]
    threshold = min(competitor_landed, default=listing.price)
    digest = hashlib.sha256(listing.external_id.encode()).digest()
    return Book(
        asin=listing.external_id,
        currency=listing.currency,
        offers=offers,
        list_price=(highest * Decimal("1.25")).quantize(CENT),
        competitive_threshold=threshold.quantize(CENT),
        sales_rank=1 + int.from_bytes(digest[:3], "big") % 200_000,
    )
