"""Test doubles every marketplace's connector tests use alike."""

from __future__ import annotations

from domain.clock import ManualClock


class FakeSleep:
    """Advances the manual clock instead of sleeping, and remembers every wait."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
