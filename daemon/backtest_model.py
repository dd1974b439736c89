"""The backtest's market model: who holds the Buy Box, and how many units a price path sells.

Pure (no I/O, no clock). A backtest replays what we *decide*; what the market would have done
with a different price is not recorded anywhere, so it is estimated here, with assumptions that
are deliberately simple and stated in full (README, *Backtest*):

**Buy Box.** At each decision the qualifying offers of the recorded snapshot are ranked by landed
price (price + shipping), ours at the replayed price with our recorded shipping. Qualifying: a
finite positive price and, when a seller rating is known, at least ``MIN_RATING_PCT`` %. Ties on
landed price go, in order, to the offer that held the Buy Box in the recording (the incumbent
keeps it), then to marketplace-fulfilled offers (``fba``, ``retail``) over merchant-fulfilled,
then to the higher rating; a tie left after that is lost by us (the conservative reading).
With no qualifying competitor we hold it. Competitors do not react to our replayed price: their
recorded prices are taken as they were (``--simulate`` lets the mock market's bots react).

**Units.** Only recorded sales are scaled, never invented: the units the SKU actually sold on
the channel between two decisions, at the recorded price and the recorded Buy Box state, become
``units × (price / recorded price) ** elasticity`` (``--elasticity``, default −1.5: a 10 %
higher price sells about 13 % fewer units), times the Buy Box factor: without the Buy Box a
listing sells ``NO_BUY_BOX_SHARE`` of what it sells with it. A period with no recorded sale
sells nothing in either config.

**Money.** Revenue is units × price; margin is units × (price − cost − fees), with today's
product cost and fees (costs are not versioned).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from domain.offers import CompetitorOffer, OfferObservation

DEFAULT_ELASTICITY = Decimal("-1.5")
# Share of a listing's units it still sells without the Buy Box (~80 % of sales go through it).
NO_BUY_BOX_SHARE = Decimal("0.2")
MIN_RATING_PCT = 80
MARKETPLACE_FULFILLED = frozenset({"fba", "retail"})
ZERO = Decimal("0")
ONE = Decimal("1")


class Rival(NamedTuple):
    """The best qualifying competitor of one snapshot, as the Buy Box ranking sees it."""

    landed: Decimal
    incumbent: bool
    fulfilled: bool
    rating: int


class Competition(NamedTuple):
    """What the model needs from one recorded snapshot, computed once per snapshot."""

    best: Rival | None
    # Our recorded shipping, fulfillment and rating (from our own offer in the snapshot).
    shipping: Decimal
    fulfilled: bool
    rating: int
    we_were_incumbent: bool


def competition(observation: OfferObservation | None, own_ids: frozenset[str]) -> Competition:
    """Summarise a snapshot: the best rival by the ranking rules, and our own offer's terms."""
    if observation is None:
        return Competition(None, ZERO, False, 100, False)
    best: Rival | None = None
    shipping, fulfilled, rating = ZERO, False, 100
    incumbent_seller = observation.buy_box_seller
    we_were_incumbent = False
    for offer in observation.offers:
        if offer.is_own or offer.seller_id in own_ids:
            shipping = offer.shipping
            fulfilled = offer.fulfillment in MARKETPLACE_FULFILLED
            rating = 100 if offer.rating_pct is None else offer.rating_pct
            we_were_incumbent = we_were_incumbent or _is_incumbent(offer, incumbent_seller)
            continue
        if not _qualifies(offer):
            continue
        rival = Rival(
            offer.landed_price,
            _is_incumbent(offer, incumbent_seller),
            offer.fulfillment in MARKETPLACE_FULFILLED,
            100 if offer.rating_pct is None else offer.rating_pct,
        )
        if best is None or _rank(rival) < _rank(best):
            best = rival
    if incumbent_seller is not None and incumbent_seller in own_ids:
        we_were_incumbent = True
    return Competition(best, shipping, fulfilled, rating, we_were_incumbent)


def _is_incumbent(offer: CompetitorOffer, seller: str | None) -> bool:
    return offer.is_buy_box_winner or (seller is not None and offer.seller_id == seller)


def _qualifies(offer: CompetitorOffer) -> bool:
    price = offer.price
    if not (price.is_finite() and price > 0):
        return False
    return offer.rating_pct is None or offer.rating_pct >= MIN_RATING_PCT


def _rank(rival: Rival) -> tuple[Decimal, bool, bool, int]:
    """Lower wins: landed price, then the incumbent, then marketplace-fulfilled, then rating."""
    return (rival.landed, not rival.incumbent, not rival.fulfilled, -rival.rating)


def holds_buy_box(market: Competition, price: Decimal | None) -> bool:
    """Whether our offer at ``price`` wins the Buy Box against the snapshot's best rival."""
    if price is None or not price.is_finite() or price <= 0:
        return False
    best = market.best
    if best is None:
        return True
    ours = Rival(price + market.shipping, market.we_were_incumbent, market.fulfilled, market.rating)
    # A full tie is lost: strictly better only.
    return _rank(ours) < _rank(best)


def lowest_rival(market: Competition) -> Decimal | None:
    """The best qualifying competitor's landed price, if any."""
    return None if market.best is None else market.best.landed


def buy_box_factor(holds: bool) -> Decimal:
    """Units sold relative to holding the Buy Box."""
    return ONE if holds else NO_BUY_BOX_SHARE


def estimated_units(
    recorded_units: int,
    recorded_price: Decimal | None,
    recorded_holds: bool,
    price: Decimal | None,
    holds: bool,
    elasticity: Decimal = DEFAULT_ELASTICITY,
) -> Decimal:
    """The recorded units scaled to another price and Buy Box state (see the module doc)."""
    if recorded_units <= 0 or price is None or recorded_price is None or recorded_price <= 0:
        return ZERO
    units = Decimal(recorded_units)
    if price != recorded_price:
        units *= (price / recorded_price) ** elasticity
    if holds != recorded_holds:
        units = units * buy_box_factor(holds) / buy_box_factor(recorded_holds)
    return units
