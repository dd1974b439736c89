"""Retries live here and nowhere else: one loop for every marketplace call.

A client wraps one HTTP exchange in a coroutine that raises the domain errors of
``domain.errors`` (the client knows its marketplace's error shapes); ``retrying`` then decides:
``RateLimitedError`` drains the operation's bucket and waits for its refill (or the marketplace's
``Retry-After``); any other ``TransientChannelError`` waits a jittered exponential backoff; both
stop at an attempt cap or a deadline, whichever comes first, and re-raise the last error so the
write path keeps the intent open. Everything else (auth, a rejected item) is raised at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_random_exponential

from connectors.ratelimit import Sleep, TokenBucket
from domain.clock import Clock
from domain.errors import RateLimitedError, TransientChannelError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one call is retried: attempts, a wall deadline, and the backoff curve."""

    attempts: int = 6
    deadline_s: float = 120.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0


@contextmanager
def transport_errors(operation: str) -> Iterator[None]:
    """Map httpx timeouts and connection failures to ``TransientChannelError``."""
    try:
        yield
    except httpx.TimeoutException as err:
        raise TransientChannelError(f"{operation}: timeout ({type(err).__name__})") from err
    except httpx.TransportError as err:
        raise TransientChannelError(f"{operation}: {type(err).__name__}: {err}") from err


class _PastDeadline(stop_base):
    """Stop retrying once the injected clock passes the call's deadline."""

    def __init__(self, clock: Clock, deadline: float) -> None:
        self._clock = clock
        self._deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._clock.monotonic() >= self._deadline


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    clock: Clock,
    bucket: TokenBucket | None = None,
    cost: float = 1.0,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run ``call`` under the operation's bucket, retrying transient failures (see module doc)."""
    started = clock.monotonic()
    backoff = wait_random_exponential(multiplier=policy.backoff_base_s, max=policy.backoff_max_s)

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimitedError):
            if bucket is not None:
                bucket.drain(error.retry_after_s)
                return 0.0  # the bucket's acquire does the waiting, at the marketplace's pace
            return error.retry_after_s if error.retry_after_s is not None else backoff(state)
        return float(backoff(state))

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(TransientChannelError),
        stop=stop_any(
            stop_after_attempt(policy.attempts), _PastDeadline(clock, started + policy.deadline_s)
        ),
        wait=wait,
        sleep=sleep,
        reraise=True,
    ):
        with attempt:
            if bucket is not None:
                await bucket.acquire(cost)
            return await call()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
