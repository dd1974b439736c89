"""One cached OAuth access token per account: fetched on demand, refreshed before it expires,
one fetch in flight, forgotten when the marketplace refuses it (every marketplace's grant)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from connectors.base import ChannelDeps
from connectors.ratelimit import TokenBucket
from connectors.retry import RetryPolicy, retrying
from domain.clock import Clock


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and the monotonic reading after which a new one is fetched."""

    value: str
    refresh_at: float


class TokenCache:
    """Holds one ``Token``; ``fetch`` (a grant, retried by the caller's policy) makes a new one."""

    def __init__(self, fetch: Callable[[], Awaitable[Token]], clock: Clock) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: Token | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> str | None:
        current = self._token
        if current is not None and self._clock.monotonic() < current.refresh_at:
            return current.value
        return None

    async def get(self) -> str:
        """A valid access token, fetching a new one when the cached one is due."""
        if (value := self._fresh()) is not None:
            return value
        async with self._lock:
            # Whoever waited on the lock finds the token the first caller fetched.
            if (value := self._fresh()) is not None:
                return value
            self._token = await self._fetch()
            return self._token.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (refused by the marketplace); a newer token fetched meanwhile stays."""
        if self._token is not None and self._token.value == value:
            self._token = None


class GrantedToken:
    """A marketplace's cached access token: ``_grant`` (the marketplace's token request, retried
    by the policy under ``grant_bucket``) fills a ``TokenCache``. Refreshable by definition."""

    refreshable = True

    def __init__(
        self,
        deps: ChannelDeps,
        policy: RetryPolicy | None = None,
        grant_bucket: TokenBucket | None = None,
    ) -> None:
        self._deps = deps
        self._policy = policy or RetryPolicy()
        self._cache = TokenCache(
            lambda: retrying(
                self._grant,
                clock=deps.clock,
                bucket=grant_bucket,
                policy=self._policy,
                sleep=deps.sleep,
            ),
            deps.clock,
        )

    async def token(self) -> str:
        """A valid access token, fetching a new one when the cached one is due."""
        return await self._cache.get()

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (the marketplace refused it); a newer token fetched meanwhile stays."""
        self._cache.invalidate(value)

    async def _grant(self) -> Token:
        raise NotImplementedError
