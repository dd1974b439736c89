"""Fault injection shared by the mock marketplace servers.

Tests (or ``POST /_mock/faults`` on a running mock) set these; every mock endpoint calls ``draw``
before doing its work and answers the marketplace's own throttle / 5xx / hang for that fault.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Fault(StrEnum):
    """What the next call suffers."""

    NONE = "none"
    THROTTLE = "throttle"  # the marketplace's rate-limit answer (429 / THROTTLED)
    ERROR = "error"  # a 500 (or 503) with the marketplace's error body
    TIMEOUT = "timeout"  # hang for ``hang_s`` before answering (past the client's timeout)


@dataclass
class Faults:
    """Fault plan of one mock marketplace; all rates are shares of calls in [0, 1]."""

    throttle_next: int = 0  # the next N calls are throttled (a 429 storm)
    throttle_rate: float = 0.0
    error_next: int = 0  # the next N calls answer 500
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    hang_s: float = 30.0
    partial_rate: float = 0.0  # share of items in a batch refused one by one (partial success)
    drop_rate: float = 0.0  # share of accepted writes silently not applied (reconcile finds them)
    # Bulk feeds (Amazon, Walmart) stay queued, unprocessed, while set: a test can kill the
    # daemon while its feed is in flight, then release the feed for the restarted daemon.
    hold_feeds: bool = False
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def draw(self) -> Fault:
        """Decide the fault of one call (counts down the ``*_next`` storms first)."""
        if self.throttle_next > 0:
            self.throttle_next -= 1
            return Fault.THROTTLE
        if self.error_next > 0:
            self.error_next -= 1
            return Fault.ERROR
        roll = self.rng.random()
        for fault, rate in (
            (Fault.THROTTLE, self.throttle_rate),
            (Fault.ERROR, self.error_rate),
            (Fault.TIMEOUT, self.timeout_rate),
        ):
            if roll < rate:
                return fault
            roll -= rate
        return Fault.NONE

    def item_refused(self) -> bool:
        """Whether one item of a batch is refused (partial success)."""
        return bool(self.partial_rate) and self.rng.random() < self.partial_rate

    def write_dropped(self) -> bool:
        """Whether one accepted write is silently lost."""
        return bool(self.drop_rate) and self.rng.random() < self.drop_rate

    def update(self, values: dict[str, Any]) -> None:
        """Apply ``POST /_mock/faults`` JSON (unknown keys are an error)."""
        for key, value in values.items():
            if key == "rng" or not hasattr(self, key):
                raise KeyError(key)
            setattr(self, key, type(getattr(self, key))(value))
