"""Clock jitter, modelled deterministically: clocks that disagree by a few ms, early wake-ups.

One ``ManualClock`` is the world's time. A ``JitteryClock`` reads it a little off on every
reading (two machines' clocks, or one request's latency against the next's): up to ``skew_s``
either way, so it can even step backwards. An ``EarlySleep`` advances the world as a real
scheduler would: up to ``early_s`` before the deadline it was given (never sooner than half the
wait, so a waiter always makes progress).
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime

from domain.clock import ManualClock

SKEW_S = 0.010  # each side's clock reads up to 10 ms off the world's: 20 ms between two sides
EARLY_S = 0.020  # a sleep returns up to 20 ms early


class JitteryClock:
    """The world's time, read up to ``skew_s`` off (seeded: the same run every time)."""

    def __init__(self, world: ManualClock, seed: int, skew_s: float = SKEW_S) -> None:
        self.world = world
        self.skew_s = skew_s
        self._rng = random.Random(seed)

    def now(self) -> datetime:
        """Wall time (only monotonic readings pace calls, so this one is the world's)."""
        return self.world.now()

    def monotonic(self) -> float:
        """The world's monotonic reading, off by up to ``skew_s`` either way."""
        return self.world.monotonic() + self._rng.uniform(-self.skew_s, self.skew_s)


class EarlySleep:
    """A sleep that advances the world, waking up to ``early_s`` early."""

    def __init__(self, world: ManualClock, seed: int, early_s: float = EARLY_S) -> None:
        self.world = world
        self.early_s = early_s
        self._rng = random.Random(seed)
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        early = self._rng.uniform(0.0, self.early_s)
        self.world.advance(max(seconds - early, seconds / 2))
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is
