"""Helpers shared by the strategy tests: a snapshot builder and the decision check."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from strategies.base import Decision, Snapshot

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def listing_snapshot(defaults: dict[str, Any], **fields: Any) -> Snapshot:
    """Listing MUG-1 on amazon at 10.00 (USD, NOW), with ``defaults`` then ``fields`` applied."""
    base: dict[str, Any] = {
        "channel": "amazon",
        "sku": "MUG-1",
        "currency": "USD",
        "now": NOW,
        "current_price": Decimal("10.00"),
        **defaults,
    }
    base.update(fields)
    return Snapshot(**base)


def check(decision: Decision, target: str | None, reason: str) -> None:
    """Assert the exact target, a reason fragment, and a trace on every branch."""
    assert decision.target == (None if target is None else Decimal(target)), decision
    if decision.target is not None:
        assert str(decision.target) == target
    assert reason in decision.reason, decision.reason
    assert decision.trace
