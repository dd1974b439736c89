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
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from strategies.base import CENT, ZERO, Decision, Snapshot, StrategyParams, TraceStep, quantize
from strategies.offers import (
    BY_RANK,
    CompetitorFilters,
    Scan,
    describe_offer,
    scan_offers,
)


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


def _context(
    snapshot: Snapshot, filters: CompetitorFilters
) -> tuple[Scan, list[TraceStep], Decimal, Decimal | None]:
    scan = scan_offers(snapshot, filters)
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


def _buy_box_owner(snapshot: Snapshot, scan: Scan) -> tuple[str, str]:
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
    scan: Scan,
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
            _, landed, name, best = min(holders, key=BY_RANK)
            steps.append(TraceStep("buy_box", "competitor", describe_offer(best)))
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
    scan: Scan,
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
    detail = f"{current} + {params.probe_step_pct}%, at most {describe_offer(nxt)} − {ship} − gap"
    high = strategy_ceiling(snapshot)
    if high is not None and target > high:
        target, detail = high, f"{detail}, capped at max_price {high}"
    if floor is not None and target < floor:
        target, detail = floor, f"{detail}, raised to floor {floor}"
    steps.append(TraceStep("probe", str(target), detail))
    if target <= current:
        return Decision.hold(
            f"Buy Box is ours; next offer {describe_offer(nxt)} leaves no room above {current}"
            " → hold",
            *steps,
        )
    toward = f"probe +{params.probe_step_pct}% toward {describe_offer(nxt)}"
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
