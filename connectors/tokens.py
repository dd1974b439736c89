"""One cached OAuth access token per account: fetched on demand, refreshed before it expires,
one fetch in flight, forgotten when the marketplace refuses it (every marketplace's grant)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import httpx
import structlog

from connectors.base import ChannelDeps
from connectors.http import GRANT_ERRORS
from connectors.ratelimit import TokenBucket
from connectors.retry import RetryPolicy, retrying, transport_errors
from connectors.wire import loads_exact
from domain.clock import Clock
from domain.errors import ChannelAuthError, ChannelError, RateLimitedError, TransientChannelError

log = structlog.get_logger(__name__)


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

    async def _post_grant(
        self, what: str, url: str, form: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> GrantAnswer:
        """POST a token request (a form); timeouts and dropped connections are transient."""
        started = self._deps.clock.monotonic()
        with transport_errors(what):
            response = await self._deps.http.post(
                url, content=form, headers=dict(headers), timeout=timeout_s
            )
        return GrantAnswer(response, started, grant_body(response))


@dataclass(frozen=True, slots=True)
class GrantAnswer:
    """A token endpoint's answer: the response, its JSON object, when the request started."""

    response: httpx.Response
    started: float  # monotonic reading before the request: the token's life counts from here
    body: Mapping[str, object] = field(repr=False)  # holds the token: never in a repr

    @property
    def status(self) -> int:
        """The HTTP status."""
        return self.response.status_code


def grant_body(response: httpx.Response) -> dict[str, object]:
    """A token endpoint's JSON object; ``{}`` for anything else (an HTML error page)."""
    try:
        body = loads_exact(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def issued_token(
    answer: GrantAnswer, what: str, refresh_ratio: float, default_ttl_s: int | None = None
) -> tuple[Token, int]:
    """The token of a 200 grant and its life in seconds, refreshed at ``refresh_ratio`` of it.

    A grant without a positive ``expires_in`` lives ``default_ttl_s`` if given; without one,
    or without an ``access_token``, the answer is transient (the grant is retried).
    """
    value, expires_in = answer.body.get("access_token"), answer.body.get("expires_in")
    if not isinstance(value, str) or not value:
        raise TransientChannelError(f"{what}: answer without access_token")
    if not isinstance(expires_in, int) or isinstance(expires_in, bool) or expires_in <= 0:
        if default_ttl_s is None:
            raise TransientChannelError(f"{what}: answer without expires_in")
        log.warning("token_without_expiry", grant=what, assumed_s=default_ttl_s)
        expires_in = default_ttl_s
    return Token(value, answer.started + expires_in * refresh_ratio), expires_in


def grant_refused(what: str, status: int, code: str | None, refusal: str) -> ChannelError:
    """The error for a refused grant: a throttle or a server error is retried, anything else
    is about the credentials (``refusal`` says which, without any secret)."""
    kind = GRANT_ERRORS.classify(status)
    detail = f" ({code})" if code else ""
    if kind is RateLimitedError:
        return RateLimitedError(f"{what}: throttled{detail}", code=code, status=status)
    if kind is TransientChannelError:
        return TransientChannelError(f"{what}: HTTP {status}{detail}", code=code, status=status)
    return ChannelAuthError(refusal, code=code, status=status)
