"""What a channel event must look like before the database sees it: one check for every connector.

A delivery can be authentic and still absurd (a SKU with a NUL byte, an order of 2^70 units). On
PostgreSQL such a value fails the statement, and with it every delivery applied in the same
transaction; on either engine it would write nonsense to the ledger. The inbox and the orders
poll run ``event_problem`` on every event and record the delivery as invalid instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from daemon.db.models import SKU_LENGTH
from domain.events import (
    ChannelEvent,
    OfferChanged,
    OrderEvent,
    OrderNotice,
    OrderStatus,
    QuantityObserved,
)

# More units than any one order line or listing holds: a larger number is a corrupt payload.
MAX_UNITS: Final = 1_000_000
# Marketplace order ids are 13-30 characters; the ledger reference must stay within its column.
MAX_ORDER_ID: Final = 100
# C0 and C1 control characters (NUL included) and lone surrogates (not encodable as UTF-8).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_SHOWN = 40  # characters of a bad value quoted in a reason


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an event cannot be applied: ``kind`` is a metric label, ``reason`` the stored text."""

    kind: str  # sku | quantity | order_id | order (refused by the marketplace) | unparsable
    reason: str


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped (safe in any column)."""
    return _UNPRINTABLE.sub(lambda found: ascii(found.group())[1:-1], text)


def _shown(value: str) -> str:
    cut = value[:_SHOWN] + ("…" if len(value) > _SHOWN else "")
    return repr(cut)  # repr escapes every unprintable character


def sku_problem(sku: object) -> str | None:
    """Why ``sku`` is no seller SKU (empty, too long, control characters), or None."""
    if not isinstance(sku, str) or not sku.strip():
        return f"empty sku {_shown(str(sku))}"
    if len(sku) > SKU_LENGTH:
        return f"sku {_shown(sku)} is {len(sku)} characters (at most {SKU_LENGTH})"
    if _UNPRINTABLE.search(sku):
        return f"sku {_shown(sku)} contains a control character"
    return None


def _units_problem(quantity: object, sku: str, *, lowest: int) -> str | None:
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        return f"quantity {quantity!r} of sku {_shown(sku)} is not a whole number"
    if not lowest <= quantity <= MAX_UNITS:
        return f"quantity {quantity} of sku {_shown(sku)} is outside {lowest}..{MAX_UNITS}"
    return None


def event_problem(event: ChannelEvent) -> Problem | None:
    """The first reason ``event`` must not be applied, or None if it may be."""
    if isinstance(event, OrderEvent):
        return _order_problem(event)
    if isinstance(event, OrderNotice):
        return _order_id_problem(event.order_id)
    if isinstance(event, QuantityObserved):
        if problem := sku_problem(event.sku):
            return Problem("sku", problem)
        # A live count may be negative (Shopify lets a shop oversell); its size is still bounded.
        if problem := _units_problem(event.quantity, event.sku, lowest=-MAX_UNITS):
            return Problem("quantity", problem)
        return None
    return _offer_problem(event)


def _offer_problem(event: OfferChanged) -> Problem | None:
    skus = [event.sku] + ([event.observation.sku] if event.observation else [])
    for sku in skus:
        if problem := sku_problem(sku):
            return Problem("sku", problem)
    return None


def _order_id_problem(order_id: str) -> Problem | None:
    if not order_id.strip() or len(order_id) > MAX_ORDER_ID or _UNPRINTABLE.search(order_id):
        return Problem("order_id", f"order id {_shown(order_id)} is not a marketplace order id")
    return None


def _order_problem(event: OrderEvent) -> Problem | None:
    if refused := _order_id_problem(event.order_id):
        return refused
    # A cancel's lines only name what comes back (Amazon reports a cancelled item as 0 units);
    # an order line must take at least one unit.
    lowest = 0 if event.status is OrderStatus.CANCELLED else 1
    for line in event.lines:
        if problem := sku_problem(line.sku):
            return Problem("sku", f"order {event.order_id}: {problem}")
        if problem := _units_problem(line.quantity, line.sku, lowest=lowest):
            return Problem("quantity", f"order {event.order_id}: {problem}")
    return None
