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


class Coalescer:
    """Run ``action`` on the notified SKUs, one run at a time: SKUs notified while a run is in
    progress are merged and run as soon as it ends (no window to wait out, no two runs at once).

    Orders arrive faster than a stock round takes; concurrent rounds split the CPU and each
    publish a single order, where one run after another publishes every order that came in
    meanwhile."""

    def __init__(self, action: Callable[[frozenset[str]], Awaitable[Any]]) -> None:
        self._action = action
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    def notify(self, skus: Iterable[str]) -> None:
        """Queue ``skus`` for the next run (started now if none is running)."""
        if self._closed:
            return
        self._pending.update(skus)
        if self._pending and self._task is None:
            self._task = asyncio.create_task(self._run(), name="coalesced-stock")

    def pending(self) -> frozenset[str]:
        """SKUs waiting for the next run."""
        return frozenset(self._pending)

    async def _run(self) -> None:
        try:
            while self._pending and not self._closed:
                skus = frozenset(self._pending)
                self._pending.clear()
                try:
                    await self._action(skus)
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # a failed run must not stop the next one
                    log.exception("coalesced_action_failed", error=str(err))
        finally:
            self._task = None

    async def close(self) -> None:
        """Start no further run (shutdown); queued SKUs are dropped, the next pass covers them.
        A run in progress is left to finish (the caller waits for or cancels its pass)."""
        self._closed = True
        self._pending.clear()
