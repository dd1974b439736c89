"""Competitor offers as the competitive strategies see them: filters, and one scan per listing.

Competition is only ever ``snapshot.competitors()``: an offer flagged ``is_own`` or sold by any of
our seller ids never moves us. Competitor offers with a price that is not finite and > 0, or a
shipping that is not finite and >= 0, are garbage: ignored and named in the trace. Offers the
filters leave out are named too, one trace step per reason.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from pydantic import Field, field_validator

from domain.offers import CompetitorOffer
from strategies.base import ZERO, Snapshot, StrategyParams, TraceStep

_REJECTION_MEMO_SIZE = 50_000
FulfillmentKind = Literal["fba", "fbm", "retail"]
ALL_FULFILLMENT: tuple[FulfillmentKind, ...] = ("fba", "fbm", "retail")


class CompetitorFilters(StrategyParams):
    """Which competitor offers count. The marketplace itself (``retail``) has no seller
    feedback, so the rating minimums never exclude it; any other offer with an unknown rating
    fails a minimum that is set."""

    fulfillment: tuple[FulfillmentKind, ...] = Field(default=ALL_FULFILLMENT, min_length=1)
    min_rating_pct: int | None = Field(default=None, ge=0, le=100)
    min_rating_count: int | None = Field(default=None, ge=0)
    exclude_sellers: tuple[str, ...] = Field(default=(), description="seller ids never competed")

    @field_validator("fulfillment", "exclude_sellers", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @cached_property
    def excluded(self) -> frozenset[str]:
        """``exclude_sellers`` as a set."""
        return frozenset(self.exclude_sellers)

    @cached_property
    def kinds(self) -> frozenset[str]:
        """Accepted fulfillment kinds, lower-case, as a set."""
        return frozenset(kind.lower() for kind in self.fulfillment)

    @cached_property
    def unrestricted(self) -> bool:
        """True when only ``exclude_sellers`` can reject an offer."""
        no_minimum = self.min_rating_pct is None and self.min_rating_count is None
        return no_minimum and set(self.fulfillment) == set(ALL_FULFILLMENT)

    @cached_property
    def worded_rejections(self) -> dict[tuple[str, str, int | None, int | None], Any]:
        """Memo of ``rejection`` by (seller, fulfillment, rating %, rating count): the only
        offer fields it reads. Bounded by ``remember_rejection``."""
        return {}

    def remember_rejection(
        self, key: tuple[str, str, int | None, int | None], offer: CompetitorOffer
    ) -> tuple[tuple[str, str], str] | None:
        """``rejection(offer)`` keyed for the trace's grouping, remembered under ``key``."""
        memo = self.worded_rejections
        if len(memo) >= _REJECTION_MEMO_SIZE:
            memo.clear()  # sellers come and go: a bounded memo, not a growing one
        found = self.rejection(offer)
        why = None if found is None else (("filtered", found[0]), found[1])
        memo[key] = why
        return why

    def rejection(self, offer: CompetitorOffer) -> tuple[str, str] | None:
        """Why ``offer`` fails the filters, as (rule, the offer's value), or None if it
        qualifies; the trace groups offers by rule."""
        seller = offer.seller_id
        if seller in self.excluded:
            return "excluded seller", seller
        kind = offer.fulfillment.lower()
        if kind not in self.fulfillment:
            return f"fulfillment not in {'/'.join(self.fulfillment)}", f"{seller} ({kind})"
        if kind == "retail":
            return None
        pct, count = offer.rating_pct, offer.rating_count
        if self.min_rating_pct is not None and (pct is None or pct < self.min_rating_pct):
            return f"rating < {self.min_rating_pct}%", f"{seller} ({pct}%)"
        if self.min_rating_count is not None and (count is None or count < self.min_rating_count):
            return f"rating count < {self.min_rating_count}", f"{seller} ({count})"
        return None


def describe_offer(offer: CompetitorOffer) -> str:
    return f"{offer.seller_id} ({offer.fulfillment}, landed {offer.landed_price})"


def _garbage(offer: CompetitorOffer) -> str | None:
    if not offer.price.is_finite() or offer.price <= 0:
        return f"price {offer.price}"
    if not offer.shipping.is_finite() or offer.shipping < 0:
        return f"shipping {offer.shipping}"
    return None


class Scan(NamedTuple):
    """One pass over a listing's offers: everything the competitive strategies need of them."""

    entries: list[tuple[Decimal, str, CompetitorOffer]]  # qualifying, cheapest landed first
    steps: list[TraceStep]
    own_flagged: frozenset[str]  # sellers of our ``is_own`` offers
    own_shipping: Decimal
    own_shipping_step: TraceStep
    flagged: tuple[CompetitorOffer, ...]  # offers flagged as the Buy Box winner, ours included
    holder_competes: bool  # a competitor offer (qualifying or not) holds the Buy Box


_NO_OWN_SHIPPING = TraceStep("own_shipping", "0", "no own offer on the listing: assumed 0")
_BY_LANDED_THEN_SELLER = itemgetter(0, 1)
BY_RANK = itemgetter(0, 1, 2)  # flagged winner first, then landed, then seller


def scan_offers(snapshot: Snapshot, filters: CompetitorFilters) -> Scan:
    """Walk the offers once: own offers, garbage, filters, Buy Box flags (the hot loop: 20
    offers x 100,000 listings a pass, so the common case is inlined and wording is memoised)."""
    own_ids = snapshot.own_seller_ids
    holder = snapshot.buy_box_seller
    excluded, kinds = filters.excluded, filters.kinds
    min_pct, min_count = filters.min_rating_pct, filters.min_rating_count
    worded = filters.worded_rejections
    own: set[str] = set()
    own_flagged: set[str] = set()
    ships: set[Decimal] = set()
    flagged: list[CompetitorOffer] = []
    kept: list[tuple[Decimal, str, CompetitorOffer]] = []
    # One trace step per reason, naming the sellers: twenty offers must not make twenty steps
    # in every action row.
    left_out: dict[tuple[str, str], list[str]] = {}
    competing = 0
    holder_competes = False
    zero = ZERO
    for offer in snapshot.offers:
        seller = offer.seller_id
        if offer.is_own:
            own.add(seller)
            own_flagged.add(seller)
            shipping = offer.shipping
            if shipping.is_finite() and shipping >= zero:
                ships.add(shipping)
            if offer.is_buy_box_winner:
                flagged.append(offer)
            continue
        if offer.is_buy_box_winner:
            flagged.append(offer)
            holder_competes = seller not in own_ids or holder_competes
        elif holder is not None and seller == holder and seller not in own_ids:
            holder_competes = True
        if seller in own_ids:
            own.add(seller)
            continue
        competing += 1
        price, shipping = offer.price, offer.shipping
        if not (price.is_finite() and price > zero and shipping.is_finite() and shipping >= zero):
            left_out.setdefault(("garbage", "ignored"), []).append(
                f"{seller} ({_garbage(offer) or 'invalid'})"
            )
            continue
        kind = offer.fulfillment
        pct, count = offer.rating_pct, offer.rating_count
        if (
            seller not in excluded
            and kind in kinds
            and (
                kind == "retail"
                or (
                    (min_pct is None or (pct is not None and pct >= min_pct))
                    and (min_count is None or (count is not None and count >= min_count))
                )
            )
        ):
            kept.append((price + shipping, seller, offer))
            continue
        # The slow path words the reason (and accepts, say, "FBA" written in capitals); the
        # same seller with the same rating recurs on many listings, so the wording is memoised.
        key = (seller, kind, pct, count)
        try:
            why = worded[key]
        except KeyError:
            why = filters.remember_rejection(key, offer)
        if why is None:
            kept.append((price + shipping, seller, offer))
        else:
            sellers = left_out.get(why[0])
            if sellers is None:
                left_out[why[0]] = [why[1]]
            else:
                sellers.append(why[1])
    steps: list[TraceStep] = []
    if own:
        steps.append(TraceStep("own_offers", "ignored", ", ".join(sorted(own))))
    for (verdict, rule), sellers in left_out.items():
        steps.append(TraceStep("offers", verdict, f"{rule}: {', '.join(sellers)}"))
    kept.sort(key=_BY_LANDED_THEN_SELLER)
    lowest = f"; lowest {describe_offer(kept[0][2])}" if kept else ""
    steps.append(TraceStep("competitors", "qualifying", f"{len(kept)} of {competing}{lowest}"))
    if not ships:
        ship, ship_step = ZERO, _NO_OWN_SHIPPING
    else:
        ship = min(ships)
        detail = "from our offer" if len(ships) == 1 else "several own offers: the lowest"
        ship_step = TraceStep("own_shipping", str(ship), detail)
    return Scan(
        kept, steps, frozenset(own_flagged), ship, ship_step, tuple(flagged), holder_competes
    )
