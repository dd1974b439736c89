"""The marketplace HTTP core: one token-refreshing ``httpx.Auth``, one error table, one ``send``.

Each marketplace's ``client.py`` builds its request (endpoint, headers, payload) and reads its
answers; everything every marketplace does alike lives here:

* ``RefreshingAuth`` stamps the cached token on the request; when the marketplace refuses it
  (``MarketplaceProfile.refused``: a status), it drops that token, fetches a new one (one grant in
  flight, ``TokenCache``) and re-sends once per call, retries included.
* ``ErrorTable`` / ``classify`` is the one decision from HTTP status (or transport failure) to the
  error types of ``domain.errors``; marketplace differences are overrides, as data.
* ``send`` runs one call under its rate-limit bucket and the retry policy (``retrying``).
* ``json_request`` builds a request with an encoded JSON body; ``json_body`` reads an answer's;
  ``buckets`` makes one ``TokenBucket`` per operation of a rate-limit table.
* ``AccountClient`` is one account's client made of these: settings, token, policy, buckets.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import httpx
import structlog

from connectors.base import ChannelDeps
from connectors.ratelimit import RateLimit, TokenBucket
from connectors.retry import RetryPolicy, retrying, transport_errors
from connectors.wire import dumps_exact, loads_exact
from domain.errors import (
    ChannelAuthError,
    ChannelError,
    RateLimitedError,
    RejectedUpdateError,
    TransientChannelError,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
ErrorType = type[ChannelError]


@dataclass(frozen=True, slots=True)
class ErrorTable:
    """HTTP status -> error type: the shared defaults, then this marketplace's overrides.

    Shared: 401/403 credentials refused; 408 (request timeout) and 5xx (503 included) transient;
    429 rate limited; any other 4xx (409 included) ``client_error``.
    """

    overrides: Mapping[int, ErrorType] = field(default_factory=dict)
    # Marketplace error codes that decide regardless of the status (eBay's errorId 2001).
    codes: Mapping[str, ErrorType] = field(default_factory=dict)
    client_error: ErrorType = RejectedUpdateError

    def classify(self, status: int, code: str | None = None) -> ErrorType:
        """The error type for a failed answer with ``status`` (and the marketplace's ``code``)."""
        if code is not None and code in self.codes:
            return self.codes[code]
        if status in self.overrides:
            return self.overrides[status]
        if status == 429:
            return RateLimitedError
        if status == 408 or status >= 500:
            return TransientChannelError
        if status in (401, 403):
            return ChannelAuthError
        return self.client_error


# Token grants: every refusal but a timeout, a throttle or a server error is about credentials.
GRANT_ERRORS = ErrorTable(client_error=ChannelAuthError)


def classify(failure: httpx.Response | httpx.TransportError, table: ErrorTable) -> ErrorType:
    """The error type for a failed answer, or for a transport failure (timeouts included:
    transient, as ``retry.transport_errors`` raises them)."""
    if isinstance(failure, httpx.Response):
        return table.classify(failure.status_code)
    return TransientChannelError


def error(
    kind: ErrorType,
    message: str,
    *,
    code: str | None = None,
    status: int | None = None,
    retry_after_s: float | None = None,
) -> ChannelError:
    """An instance of ``kind`` (only a ``RateLimitedError`` carries ``retry_after_s``)."""
    if issubclass(kind, RateLimitedError):
        return kind(message, retry_after_s=retry_after_s, code=code, status=status)
    return kind(message, code=code, status=status)


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (absent, a date or negative: None)."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


@dataclass(frozen=True, slots=True)
class MarketplaceProfile:
    """What differs between marketplaces in the shared plumbing, as data."""

    name: str
    # Statuses that mean "this access token is refused" (expired or revoked): one re-send.
    refused: frozenset[int]
    errors: ErrorTable = ErrorTable()


class TokenSource(Protocol):
    """A cached access token: what ``RefreshingAuth`` needs of a marketplace's auth."""

    @property
    def refreshable(self) -> bool:
        """Whether a refused token can be replaced (a static token cannot)."""
        ...

    async def token(self) -> str:
        """The access token to send now."""
        ...

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (the marketplace refused it)."""
        ...


# Stamps the token (and any per-send header) on the request; may wait (a bucket, a quota).
Prepare = Callable[[httpx.Request, str], Awaitable[None]]


class RefreshingAuth(httpx.Auth):
    """One call's auth: the cached token on each send, one refresh and re-send on a refusal.

    Made per call, so the one re-send holds across that call's retries.
    """

    def __init__(
        self,
        profile: MarketplaceProfile,
        tokens: TokenSource,
        prepare: Prepare,
        *,
        before_resend: Callable[[], Awaitable[None]] | None = None,
        log_fields: Mapping[str, Any] | None = None,
    ) -> None:
        self._profile = profile
        self._tokens = tokens
        self._prepare = prepare
        self._before_resend = before_resend
        self._log_fields = dict(log_fields or {})
        self.resent = False

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Send with the cached token; on a refused one, drop it and re-send once with a new one."""
        token = await self._tokens.token()
        await self._prepare(request, token)
        response = yield request
        if (
            response.status_code not in self._profile.refused
            or self.resent
            or not self._tokens.refreshable
        ):
            return
        self.resent = True
        self._tokens.invalidate(token)
        log.info(f"{self._profile.name}.token.refused", **self._log_fields)
        if self._before_resend is not None:
            await self._before_resend()
        token = await self._tokens.token()
        await self._prepare(request, token)
        yield request


# Failures after the request went out: the server may have acted on it (a connect or pool
# timeout means it never left).
UNANSWERED = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError)


async def send(
    deps: ChannelDeps,
    policy: RetryPolicy,
    operation: str,
    request: httpx.Request,
    read: Callable[[httpx.Response], T],
    *,
    auth: httpx.Auth | None = None,
    bucket: TokenBucket | None = None,
    on_unanswered: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """Send ``request`` (paced by ``bucket``, retried by ``policy``) and ``read`` the answer.

    ``read`` raises the classified error for a failed answer; ``on_unanswered`` is awaited for
    each attempt sent but never answered (the marketplace may have applied it).
    """

    async def attempt() -> T:
        try:
            with transport_errors(operation):
                response = await deps.http.send(request, auth=auth)
        except TransientChannelError as err:
            if on_unanswered is not None and isinstance(err.__cause__, UNANSWERED):
                await on_unanswered()
            raise
        return read(response)

    return await retrying(attempt, clock=deps.clock, bucket=bucket, policy=policy, sleep=deps.sleep)


class MarketplaceClient:
    """One account's authenticated sending: its profile, token source, deps and retry policy."""

    def __init__(
        self,
        profile: MarketplaceProfile,
        tokens: TokenSource,
        deps: ChannelDeps,
        policy: RetryPolicy,
    ) -> None:
        self.profile = profile
        self.tokens = tokens
        self.deps = deps
        self.policy = policy

    async def send(
        self,
        op: str,
        request: httpx.Request,
        read: Callable[[httpx.Response], T],
        prepare: Prepare,
        *,
        bucket: TokenBucket | None = None,
        pace_resend: bool = False,
        on_unanswered: Callable[[], Awaitable[None]] | None = None,
        **log_fields: Any,
    ) -> T:
        """``send`` with a ``RefreshingAuth`` of this account (``pace_resend``: the re-send after
        a refused token takes a token of ``bucket`` too, where the marketplace counts it)."""
        auth = RefreshingAuth(
            self.profile,
            self.tokens,
            prepare,
            before_resend=bucket.acquire if pace_resend and bucket is not None else None,
            log_fields={"operation": op, **log_fields},
        )
        return await send(
            self.deps,
            self.policy,
            op,
            request,
            read,
            auth=auth,
            bucket=bucket,
            on_unanswered=on_unanswered,
        )


JSON_BODY: Mapping[str, str] = {"Content-Type": "application/json"}


def json_request(
    deps: ChannelDeps,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    timeout_s: float,
    body: Any = None,
    body_headers: Mapping[str, str] = JSON_BODY,
    encode: Callable[[Any], bytes] = dumps_exact,
    params: Mapping[str, str] | None = None,
    files: Mapping[str, tuple[str, bytes, str]] | None = None,
) -> httpx.Request:
    """A request with ``headers``; a ``body`` is encoded (Decimals exact) and sent with
    ``body_headers``; ``files`` become a multipart form instead."""
    all_headers = dict(headers)
    content = None
    if files is None and body is not None:
        all_headers.update(body_headers)
        content = encode(body)
    return deps.http.build_request(
        method,
        url,
        params=params,
        content=content,
        files=files,
        headers=all_headers,
        timeout=timeout_s,
    )


def buckets(limits: Mapping[str, RateLimit], deps: ChannelDeps) -> dict[str, TokenBucket]:
    """One token bucket per operation (or API family) of ``limits``."""
    return {op: TokenBucket(limit, deps.clock, deps.sleep) for op, limit in limits.items()}


def json_body(op: str, response: httpx.Response) -> Any:
    """A successful answer's JSON body (Decimals exact; no body: ``{}``); not JSON: transient."""
    try:
        return loads_exact(response.content) if response.content else {}
    except ValueError as err:
        status = response.status_code
        raise TransientChannelError(f"{op}: HTTP {status} with a non-JSON body") from err


SettingsT = TypeVar("SettingsT")
TokensT = TypeVar("TokensT", bound=TokenSource)


class AccountClient(Generic[SettingsT, TokensT]):
    """One seller account's client: its settings, token source, sending core and one token
    bucket per operation of ``rate_limits``. A marketplace names its ``profile``, its limits and
    how its token source is made; its subclass adds the endpoints."""

    profile: ClassVar[MarketplaceProfile]
    rate_limits: ClassVar[Mapping[str, RateLimit]]

    def __init__(
        self, settings: SettingsT, deps: ChannelDeps, policy: RetryPolicy | None = None
    ) -> None:
        self.settings = settings
        self.deps = deps
        self.policy = policy or RetryPolicy()
        self.auth = self.make_auth(settings, deps, policy)
        self.core = MarketplaceClient(self.profile, self.auth, deps, self.policy)
        self.buckets = buckets(self.rate_limits, deps)

    def make_auth(
        self, settings: SettingsT, deps: ChannelDeps, policy: RetryPolicy | None
    ) -> TokensT:
        """This marketplace's token source for ``settings``."""
        raise NotImplementedError
