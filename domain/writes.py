"""Writes to a marketplace: the price and stock updates the daemon pushes, and their outcomes.

Each update carries an idempotency key; its ``PushResult`` is keyed by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

__all__ = ["PriceUpdate", "PushResult", "PushStatus", "StockUpdate"]


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """Set a listing's price (with the floor and ceiling the marketplace should enforce too)."""

    sku: str
    price: Decimal
    currency: str
    idempotency_key: str
    floor: Decimal | None = None
    ceiling: Decimal | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class StockUpdate:
    """Set a listing's absolute quantity; ``expected`` is the compare-and-set prior value."""

    sku: str
    quantity: int
    idempotency_key: str
    expected: int | None = None
    external_id: str | None = None


class PushStatus(StrEnum):
    """What became of one pushed update."""

    CONFIRMED = "confirmed"  # applied (or accepted by an API whose acceptance is the effect)
    ACCEPTED = "accepted"  # queued by the marketplace; reconcile verifies it later
    REJECTED = "rejected"  # refused for this item; never retried
    RETRY = "retry"  # not applied for a transient reason; the intent stays open
    # Not sent, by the connector's choice (a revision budget, a daily quota, a feed budget, a
    # newer update for the same listing in the same push): the intent stays open and the round
    # does not count as an attempt.
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class PushResult:
    """Outcome of one update, keyed by its idempotency key."""

    idempotency_key: str
    status: PushStatus
    code: str | None = None
    message: str | None = None
    marketplace_ref: str | None = None
