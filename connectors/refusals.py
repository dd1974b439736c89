"""Updates a channel refuses before sending them: every marketplace splits a batch the same way.

A refused update gets a ``REJECTED`` result with the channel's code and reason; the rest are sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate

CURRENCY_MISMATCH: Final = "CURRENCY_MISMATCH"

Update = TypeVar("Update", PriceUpdate, StockUpdate)
# An update's refusal as (code, message), or None when it may be sent.
Refusal = tuple[str, str] | None


def rejected(key: str, code: str, message: str) -> PushResult:
    """The ``REJECTED`` result of the update keyed ``key``."""
    return PushResult(key, PushStatus.REJECTED, code=code, message=message)


def split_refused(
    updates: Sequence[Update], refuse: Callable[[Update], Refusal]
) -> tuple[list[PushResult], list[Update]]:
    """The results of the updates ``refuse`` refuses, and the others (in order) to send."""
    results: list[PushResult] = []
    ready: list[Update] = []
    for update in updates:
        refusal = refuse(update)
        if refusal is None:
            ready.append(update)
        else:
            results.append(rejected(update.idempotency_key, *refusal))
    return results, ready


def other_currency(currency: str) -> Callable[[PriceUpdate], Refusal]:
    """Refuses a price in another currency than the marketplace's ``currency``."""

    def refuse(update: PriceUpdate) -> Refusal:
        if update.currency == currency:
            return None
        message = f"{update.currency} price for a {currency} marketplace"
        return CURRENCY_MISMATCH, message

    return refuse
