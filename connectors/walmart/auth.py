"""Walmart access tokens: the client-credentials grant, cached for its 15-minute life.

``POST /v3/token`` with ``Authorization: Basic base64(client_id:client_secret)``, form body
``grant_type=client_credentials`` and the WM_ headers (auth.json ``tokenAPI``) answers
``{"access_token", "token_type", "expires_in": 900}``. The token is refreshed at 80% of its life
with one grant in flight; a refused grant is a ``ChannelAuthError`` that never names a secret.
"""

from __future__ import annotations

import base64
import uuid

import structlog

from connectors.base import ChannelDeps
from connectors.http import GRANT_ERRORS
from connectors.ratelimit import TokenBucket
from connectors.retry import RetryPolicy, transport_errors
from connectors.tokens import GrantedToken, Token
from connectors.walmart.const import (
    CORRELATION_HEADER,
    FORM_CONTENT_TYPE,
    JSON,
    RATE_LIMITS,
    SERVICE_NAME_HEADER,
    TOKEN,
    TOKEN_REFRESH_RATIO,
)
from connectors.walmart.models import WalmartSettings, error_details
from connectors.wire import loads_exact
from domain.errors import ChannelAuthError, RateLimitedError, TransientChannelError

log = structlog.get_logger(__name__)


class WalmartAuth(GrantedToken):
    """One seller's access token: one grant in flight, refreshed at 80% of its life."""

    def __init__(
        self, settings: WalmartSettings, deps: ChannelDeps, policy: RetryPolicy | None = None
    ) -> None:
        super().__init__(deps, policy, TokenBucket(RATE_LIMITS[TOKEN], deps.clock, deps.sleep))
        self._settings = settings
        self.grants = 0  # how many tokens were fetched (metrics, tests)

    def _basic(self) -> str:
        pair = f"{self._settings.client_id}:{self._settings.client_secret.get_secret_value()}"
        return "Basic " + base64.b64encode(pair.encode()).decode("ascii")

    async def _grant(self) -> Token:
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
            return Token(value, started + expires_in * TOKEN_REFRESH_RATIO)
        # Only Walmart's code and description are kept: neither echoes the credentials.
        code, message = error_details(response.content, status)
        kind = GRANT_ERRORS.classify(status)
        if kind is RateLimitedError:
            raise RateLimitedError(f"token: throttled ({code})", code=code, status=status)
        if kind is TransientChannelError:
            raise TransientChannelError(f"token: HTTP {status} {code}", code=code, status=status)
        raise ChannelAuthError(
            f"Walmart refused the client credentials: HTTP {status} {code}: {message}",
            code=code,
            status=status,
        )
