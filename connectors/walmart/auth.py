"""Walmart access tokens: the client-credentials grant, cached for its 15-minute life.

``POST /v3/token`` with ``Authorization: Basic base64(client_id:client_secret)``, form body
``grant_type=client_credentials`` and the WM_ headers (auth.json ``tokenAPI``) answers
``{"access_token", "token_type", "expires_in": 900}``. The token is refreshed at 80% of its life
with one grant in flight; a refused grant is a ``ChannelAuthError`` that never names a secret.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass

import structlog

from connectors.base import ChannelDeps
from connectors.ratelimit import TokenBucket
from connectors.retry import RetryPolicy, retrying, transport_errors
from connectors.walmart.const import (
    CORRELATION_HEADER,
    FORM_CONTENT_TYPE,
    JSON,
    RATE_LIMITS,
    SERVICE_NAME_HEADER,
    TOKEN,
    TOKEN_REFRESH_RATIO,
)
from connectors.walmart.models import WalmartSettings, error_details, loads_exact
from daemon.errors import ChannelAuthError, RateLimitedError, TransientChannelError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float  # monotonic reading after which a new token is fetched


class WalmartAuth:
    """One seller's access token: one grant in flight, refreshed at 80% of its life."""

    def __init__(
        self, settings: WalmartSettings, deps: ChannelDeps, policy: RetryPolicy | None = None
    ) -> None:
        self._settings = settings
        self._deps = deps
        self._policy = policy or RetryPolicy()
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        self._bucket = TokenBucket(RATE_LIMITS[TOKEN], deps.clock, deps.sleep)
        self.grants = 0  # how many tokens were fetched (metrics, tests)

    async def token(self) -> str:
        """A valid access token, fetching a new one when the cached one is due."""
        current = self._token
        if current is not None and self._deps.clock.monotonic() < current.refresh_at:
            return current.value
        async with self._lock:
            # Whoever waited on the lock finds the token the first caller fetched.
            current = self._token
            if current is not None and self._deps.clock.monotonic() < current.refresh_at:
                return current.value
            self._token = await retrying(
                self._grant,
                clock=self._deps.clock,
                bucket=self._bucket,
                policy=self._policy,
                sleep=self._deps.sleep,
            )
            return self._token.value

    def invalidate(self, value: str) -> None:
        """Forget ``value`` (Walmart refused it); a newer token fetched meanwhile is kept."""
        if self._token is not None and self._token.value == value:
            self._token = None

    def _basic(self) -> str:
        pair = f"{self._settings.client_id}:{self._settings.client_secret.get_secret_value()}"
        return "Basic " + base64.b64encode(pair.encode()).decode("ascii")

    async def _grant(self) -> _Token:
        started = self._deps.clock.monotonic()
        with transport_errors(TOKEN):
            response = await self._deps.http.post(
                self._settings.auth_endpoint,
                content=b"grant_type=client_credentials",
                headers={
                    "Authorization": self._basic(),
                    SERVICE_NAME_HEADER: self._settings.service_name,
                    CORRELATION_HEADER: str(uuid.uuid4()),
                    "Content-Type": FORM_CONTENT_TYPE,
                    "Accept": JSON,
                },
                timeout=self._settings.request_timeout_s,
            )
        status = response.status_code
        if status == 200:
            try:
                body = loads_exact(response.content)
            except ValueError as err:
                raise TransientChannelError("token: 200 with a non-JSON body") from err
            value = body.get("access_token") if isinstance(body, dict) else None
            expires_in = body.get("expires_in") if isinstance(body, dict) else None
            if not isinstance(value, str) or not value or not isinstance(expires_in, int):
                raise TransientChannelError("token: response without access_token/expires_in")
            self.grants += 1
            log.info("walmart.token", expires_in=expires_in)
            return _Token(value, started + expires_in * TOKEN_REFRESH_RATIO)
        # Only Walmart's code and description are kept: neither echoes the credentials.
        code, message = error_details(response.content, status)
        if status == 429:
            raise RateLimitedError(f"token: throttled ({code})", code=code, status=status)
        if status >= 500 or status == 408:
            raise TransientChannelError(f"token: HTTP {status} {code}", code=code, status=status)
        raise ChannelAuthError(
            f"Walmart refused the client credentials: HTTP {status} {code}: {message}",
            code=code,
            status=status,
        )
