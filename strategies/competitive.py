"""Competitive strategies: ``buy_box`` and ``lowest_price``. Pure, Decimal, never against us.

Comparisons use **landed** prices (item + shipping), as shoppers and Buy Boxes do. The target is
our *item* price: the landed target minus our own shipping, taken from our ``is_own`` offer on the
listing (the lowest if several disagree: never undercut by more than asked), else 0.

Competition is only ever ``snapshot.competitors()``: an offer flagged ``is_own`` or sold by any of
our seller ids never moves us. Competitor offers with a price that is not finite and > 0, or a
shipping that is not finite and >= 0, are garbage: ignored and named in the trace.

The strategy-side floor is max(``min_price``, ``cost + fees``) of what is known (see
``strategy_floor``); the guards remain the authority (they add ``min_margin_pct``, clamp, limit
steps and block), so this floor only chooses the "competition below floor" scenario.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import cached_property
from operator import itemgetter
from typing import Any, Literal, NamedTuple

from pydantic import Field, ValidationInfo, field_validator

from connectors.base import CompetitorOffer
from strategies.base import CENT, ZERO, Decision, Snapshot, StrategyParams, TraceStep, quantize

_REJECTION_MEMO_SIZE = 50_000
FulfillmentKind = Literal["fba", "fbm", "retail"]
ALL_FULFILLMENT: tuple[FulfillmentKind, ...] = ("fba", "fbm", "retail")


def strategy_floor(snapshot: Snapshot) -> Decimal | None:
    """max(min_price, cost + fees) of what is known, rounded up to the cent; None if neither
    is known or the result is not positive (the guards then block the SKU anyway)."""
    candidates = [v for v in (snapshot.min_price,) if v is not None and v.is_finite()]
    if snapshot.cost is not None and snapshot.cost.is_finite():
        candidates.append(snapshot.cost + (snapshot.fees or ZERO))
    if not candidates or max(candidates) <= 0:
        return None
    return quantize(max(candidates), rounding=ROUND_CEILING)


def strategy_ceiling(snapshot: Snapshot) -> Decimal | None:
    """``max_price`` rounded down to the cent, if known and positive."""
    high = snapshot.max_price
    if high is None or not high.is_finite() or high <= 0:
        return None
    return quantize(high, rounding=ROUND_FLOOR)


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

    def rejects(self, offer: CompetitorOffer) -> str | None:
        """Why ``offer`` fails the filters, in words, or None if it qualifies."""
        found = self.rejection(offer)
        return None if found is None else f"{found[0]}: {found[1]}"


class _CompetitiveParams(StrategyParams):
    position: Literal["beat", "match", "above"] = "match"
    by_amount: Decimal | None = Field(default=None, gt=0, le=100_000, decimal_places=4)
    by_pct: Decimal | None = Field(default=None, gt=0, le=90, validate_default=True)
    filters: CompetitorFilters = CompetitorFilters()
    when_no_competition: Literal["hold", "max_price"] = "hold"
    when_below_floor: Literal["hold", "floor", "max_price"] = "floor"

    @field_validator("by_amount")
    @classmethod
    def _amount_fits_position(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if value is not None and info.data.get("position") == "match":
            raise ValueError("position match takes no by_amount (use beat or above)")
        return value

    @field_validator("by_pct")
    @classmethod
    def _one_offset(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        position, amount = info.data.get("position"), info.data.get("by_amount")
        if value is not None and amount is not None:
            raise ValueError("by_amount and by_pct are exclusive: give one of them")
        if value is not None and position == "match":
            raise ValueError("position match takes no by_pct (use beat or above)")
        offset_missing = value is None and amount is None and "by_amount" in info.data
        if offset_missing and position in ("beat", "above"):
            raise ValueError(f"position {position} needs by_amount or by_pct")
        return value

    @cached_property
    def phrase(self) -> str:
        """How the position reads in a reason, e.g. ``beat by 0.01`` or ``stay 2% above``."""
        if self.position == "match":
            return "match"
        by = f"{self.by_pct}%" if self.by_pct is not None else str(self.by_amount)
        return f"beat by {by}" if self.position == "beat" else f"stay {by} above"

    def landed_target(self, landed: Decimal) -> Decimal:
        """Apply the position and offset to a reference landed price."""
        if self.position == "match":
            return landed
        sign = -1 if self.position == "beat" else 1
        if self.by_amount is not None:
            return landed + sign * self.by_amount
        assert self.by_pct is not None
        return landed * (1 + sign * self.by_pct / 100)


class LowestPriceParams(_CompetitiveParams):
    """``lowest_price``: beat / match / stay above the lowest qualifying landed price."""


class BuyBoxParams(_CompetitiveParams):
    """``buy_box``: beat / match / stay above the Buy Box (or the lowest qualifying offer)."""

    target: Literal["buy_box", "lowest_offer"] = "buy_box"
    when_winning: Literal["hold", "probe"] = "probe"
    probe_step_pct: Decimal = Field(default=Decimal("2"), gt=0, le=50)
    probe_gap: Decimal = Field(
        default=CENT, ge=0, le=1000, description="how far under the next offer a probe stops"
    )


def _describe(offer: CompetitorOffer) -> str:
    return f"{offer.seller_id} ({offer.fulfillment}, landed {offer.landed_price})"


def _garbage(offer: CompetitorOffer) -> str | None:
    if not offer.price.is_finite() or offer.price <= 0:
        return f"price {offer.price}"
    if not offer.shipping.is_finite() or offer.shipping < 0:
        return f"shipping {offer.shipping}"
    return None


class _Scan(NamedTuple):
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
_BY_RANK = itemgetter(0, 1, 2)  # flagged winner first, then landed, then seller


def _scan(snapshot: Snapshot, filters: CompetitorFilters) -> _Scan:
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
    lowest = f"; lowest {_describe(kept[0][2])}" if kept else ""
    steps.append(TraceStep("competitors", "qualifying", f"{len(kept)} of {competing}{lowest}"))
    if not ships:
        ship, ship_step = ZERO, _NO_OWN_SHIPPING
    else:
        ship = min(ships)
        detail = "from our offer" if len(ships) == 1 else "several own offers: the lowest"
        ship_step = TraceStep("own_shipping", str(ship), detail)
    return _Scan(
        kept, steps, frozenset(own_flagged), ship, ship_step, tuple(flagged), holder_competes
    )


def qualifying_offers(
    snapshot: Snapshot, filters: CompetitorFilters
) -> tuple[tuple[CompetitorOffer, ...], list[TraceStep]]:
    """Competitor offers that pass the filters, cheapest landed first, and the trace of the
    own, garbage and filtered offers that were left out."""
    scan = _scan(snapshot, filters)
    return tuple(entry[2] for entry in scan.entries), scan.steps


def own_shipping(snapshot: Snapshot) -> tuple[Decimal, TraceStep]:
    """Our shipping on this listing (the lowest of our ``is_own`` offers), else 0."""
    valid = (o.shipping for o in snapshot.offers if o.is_own)
    ships = sorted({s for s in valid if s.is_finite() and s >= 0})
    if not ships:
        return ZERO, _NO_OWN_SHIPPING
    detail = "from our offer" if len(ships) == 1 else "several own offers: the lowest"
    return ships[0], TraceStep("own_shipping", str(ships[0]), detail)


def _context(
    snapshot: Snapshot, filters: CompetitorFilters
) -> tuple[_Scan, list[TraceStep], Decimal, Decimal | None]:
    scan = _scan(snapshot, filters)
    steps = scan.steps
    floor = strategy_floor(snapshot)
    steps.append(scan.own_shipping_step)
    steps.append(
        TraceStep("floor", "unknown" if floor is None else str(floor), "max(min_price, cost+fees)")
    )
    return scan, steps, scan.own_shipping, floor


def _no_competition(
    snapshot: Snapshot, params: _CompetitiveParams, steps: list[TraceStep]
) -> Decision:
    what = "no qualifying competition"
    if params.when_no_competition == "max_price":
        high = strategy_ceiling(snapshot)
        if high is not None:
            steps.append(TraceStep("no_competition", "max_price", str(high)))
            return Decision(high, f"{what} → max_price {high}", tuple(steps))
        steps.append(TraceStep("no_competition", "hold", "max_price wanted but unknown"))
        return Decision.hold(f"{what}; no max_price known → hold", *steps)
    steps.append(TraceStep("no_competition", "hold"))
    return Decision.hold(f"{what} → hold", *steps)


def _priced_against(
    snapshot: Snapshot,
    params: _CompetitiveParams,
    label: str,
    seller: str,
    landed: Decimal,
    context: tuple[list[TraceStep], Decimal, Decimal | None],
) -> Decision:
    steps, ship, floor = context
    direction = ROUND_CEILING if params.position == "above" else ROUND_FLOOR
    aim = params.landed_target(landed)
    target = quantize(aim - ship, rounding=direction)
    who = f"{label} {seller} (landed {landed})"
    steps.append(
        TraceStep("position", params.position, f"{params.phrase} {who}: {aim} − {ship} = {target}")
    )
    if target > 0 and (floor is None or target >= floor):
        return Decision(target, f"{params.phrase} {who} → {target}", tuple(steps))

    if floor is None:
        what = f"{params.phrase} {who} gives {target}, not positive, and no floor is known"
    else:
        what = f"competition below floor: {params.phrase} {who} gives {target} < floor {floor}"
    choice = params.when_below_floor
    if choice == "floor" and floor is not None:
        steps.append(TraceStep("below_floor", "floor", f"{target} → {floor}"))
        return Decision(floor, f"{what} → price at floor {floor}", tuple(steps))
    if choice == "max_price" and (high := strategy_ceiling(snapshot)) is not None:
        steps.append(TraceStep("below_floor", "max_price", f"{target} → {high}"))
        return Decision(high, f"{what} → max_price {high}", tuple(steps))
    steps.append(TraceStep("below_floor", "hold", f"wanted {choice}"))
    return Decision.hold(f"{what} → hold", *steps)


def lowest_price(snapshot: Snapshot, params: LowestPriceParams) -> Decision:
    """Position our landed price against the lowest qualifying competitor's landed price."""
    scan, steps, ship, floor = _context(snapshot, params.filters)
    if not scan.entries:
        return _no_competition(snapshot, params, steps)
    landed, seller, _offer = scan.entries[0]
    return _priced_against(snapshot, params, "lowest offer", seller, landed, (steps, ship, floor))


def _buy_box_owner(snapshot: Snapshot, scan: _Scan) -> tuple[str, str]:
    """("ours" | "unsure" | "other", why): whether one of our accounts holds the Buy Box."""
    ship, flagged, ours, own_ids = (
        scan.own_shipping,
        scan.flagged,
        scan.own_flagged,
        snapshot.own_seller_ids,
    )
    seller = snapshot.buy_box_seller
    if seller is not None and (seller in own_ids or seller in ours):
        return "ours", f"Buy Box seller {seller} is one of our seller ids"
    for offer in flagged:
        if offer.is_own or offer.seller_id in own_ids or offer.seller_id in ours:
            return "ours", f"our offer {offer.seller_id} is flagged as the Buy Box winner"
    price, current = snapshot.buy_box_price, snapshot.current_price
    if (
        seller is None
        and not flagged
        and price is not None
        and current is not None
        and price == current + ship
    ):
        return "unsure", f"Buy Box winner unknown and its price {price} equals our landed price"
    return "other", "the Buy Box is not ours"


def _buy_box_reference(
    snapshot: Snapshot,
    params: BuyBoxParams,
    scan: _Scan,
    steps: list[TraceStep],
) -> tuple[str, Decimal] | None:
    """(seller, landed) of the Buy Box to compete with, or None to use the lowest offer."""
    seller = snapshot.buy_box_seller
    if scan.holder_competes:
        holders = [
            (not offer.is_buy_box_winner, landed, name, offer)
            for landed, name, offer in scan.entries
            if offer.is_buy_box_winner or (seller is not None and name == seller)
        ]
        if holders:
            _, landed, name, best = min(holders, key=_BY_RANK)
            steps.append(TraceStep("buy_box", "competitor", _describe(best)))
            return name, landed
        # A competitor holds it, but not a qualifying one.
        detail = "its holder is filtered out or garbage: using the lowest qualifying offer"
        steps.append(TraceStep("buy_box", "not qualifying", detail))
        return None
    price = snapshot.buy_box_price
    if price is None:
        detail = "no Buy Box on the listing (suppressed?): using the lowest qualifying offer"
        steps.append(TraceStep("buy_box", "none", detail))
        return None
    if not price.is_finite() or price <= 0:
        steps.append(TraceStep("buy_box", "garbage", f"Buy Box price {price} ignored"))
        return None
    if seller is not None and seller in params.filters.excluded:
        steps.append(TraceStep("buy_box", "filtered", f"{seller}: excluded seller"))
        return None
    if not params.filters.unrestricted:
        detail = "holder's offer not listed, the filters cannot be checked: using the lowest"
        steps.append(TraceStep("buy_box", "unverifiable", detail))
        return None
    who = seller or "unknown seller"
    steps.append(TraceStep("buy_box", "competitor", f"{who} (landed {price}, from buy_box_price)"))
    return who, price


def _probe(
    snapshot: Snapshot,
    params: BuyBoxParams,
    scan: _Scan,
    context: tuple[list[TraceStep], Decimal, Decimal | None],
) -> Decision:
    """Raise by ``probe_step_pct`` toward just under the cheapest qualifying offer above ours
    (never past it, never above max_price; never below the floor, which wins over both)."""
    steps, ship, floor = context
    current = snapshot.current_price
    if current is None or not current.is_finite() or current <= 0:
        return Decision.hold("Buy Box is ours but our current price is unknown → hold", *steps)
    ours = current + ship
    nxt = next((offer for landed, _, offer in scan.entries if landed > ours), None)
    if nxt is None:
        steps.append(TraceStep("probe", "hold", f"no qualifying offer above {current + ship}"))
        return Decision.hold(
            f"Buy Box is ours; no qualifying offer above our landed {current + ship} → hold",
            *steps,
        )
    cap = nxt.landed_price - ship - params.probe_gap
    step = max(current * params.probe_step_pct / 100, CENT)
    target = quantize(min(current + step, cap), rounding=ROUND_FLOOR)
    detail = f"{current} + {params.probe_step_pct}%, at most {_describe(nxt)} − {ship} − gap"
    high = strategy_ceiling(snapshot)
    if high is not None and target > high:
        target, detail = high, f"{detail}, capped at max_price {high}"
    if floor is not None and target < floor:
        target, detail = floor, f"{detail}, raised to floor {floor}"
    steps.append(TraceStep("probe", str(target), detail))
    if target <= current:
        return Decision.hold(
            f"Buy Box is ours; next offer {_describe(nxt)} leaves no room above {current} → hold",
            *steps,
        )
    toward = f"probe +{params.probe_step_pct}% toward {_describe(nxt)}"
    at_floor = " (the floor)" if target == floor else ""
    reason = f"Buy Box is ours: {toward} → {target}{at_floor}"
    return Decision(target, reason, tuple(steps))


def buy_box(snapshot: Snapshot, params: BuyBoxParams) -> Decision:
    """Compete for the Buy Box: position against its holder (or the lowest qualifying offer),
    hold or probe upward while one of our accounts holds it."""
    scan, steps, ship, floor = _context(snapshot, params.filters)
    owner, why = _buy_box_owner(snapshot, scan)
    steps.append(TraceStep("buy_box_owner", owner, why))
    if owner == "unsure":
        return Decision.hold(f"{why}: hold rather than undercut ourselves", *steps)
    if not scan.entries:
        return _no_competition(snapshot, params, steps)
    if owner == "ours":
        if params.when_winning == "hold":
            return Decision.hold(f"Buy Box is ours ({why}) → hold", *steps)
        return _probe(snapshot, params, scan, (steps, ship, floor))
    reference = (
        _buy_box_reference(snapshot, params, scan, steps) if params.target == "buy_box" else None
    )
    if reference is None:
        landed, seller, _offer = scan.entries[0]
        label = "lowest offer"
    else:
        label, (seller, landed) = "Buy Box", reference
    return _priced_against(snapshot, params, label, seller, landed, (steps, ship, floor))
