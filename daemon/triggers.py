"""Event-driven repricing: offer changes (webhook or poll) reprice just those SKUs, debounced."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog

log = structlog.get_logger("repricerd.triggers")

Sleep = Callable[[float], Awaitable[Any]]


class Debouncer:
    """Collect SKUs per channel and act on them once the first event is ``delay_s`` old.

    A burst of notifications for one listing (competitors react to each other within seconds)
    becomes one reprice. Events arriving while an action runs wait for the next window.
    """

    def __init__(
        self,
        action: Callable[[str, frozenset[str]], Awaitable[Any]],
        delay_s: float | Callable[[], float],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._action = action
        self._delay_s = delay_s
        self._sleep = sleep
        self._pending: dict[str, set[str]] = defaultdict(set)
        self._timers: dict[str, asyncio.Task[None]] = {}

    def notify(self, channel: str, skus: Iterable[str]) -> None:
        """Queue ``skus`` of ``channel`` for the next debounced action."""
        self._pending[channel].update(skus)
        if self._pending[channel] and channel not in self._timers:
            self._timers[channel] = asyncio.create_task(
                self._fire(channel), name=f"debounce-{channel}"
            )

    def pending(self, channel: str) -> frozenset[str]:
        """SKUs waiting for the next action on ``channel``."""
        return frozenset(self._pending.get(channel, ()))

    async def _fire(self, channel: str) -> None:
        delay = self._delay_s() if callable(self._delay_s) else self._delay_s
        await self._sleep(delay)
        skus = frozenset(self._pending.pop(channel, set()))
        self._timers.pop(channel, None)  # from here on, new events open a new window
        if not skus:
            return
        try:
            await self._action(channel, skus)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # a failed trigger must not kill the loop
            log.exception("debounced_action_failed", channel=channel, error=str(err))

    async def close(self) -> None:
        """Cancel waiting windows (shutdown); queued SKUs are dropped, the next pass covers them."""
        for task in list(self._timers.values()):
            task.cancel()
        for task in list(self._timers.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._timers.clear()
