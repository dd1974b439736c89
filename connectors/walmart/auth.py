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
from connectors.ratelimit import TokenBucket
from connectors.retry import RetryPolicy
from connectors.tokens import GrantedToken, Token, grant_refused, issued_token
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
        answer = await self._post_grant(
            TOKEN,
            self._settings.auth_endpoint,
            b"grant_type=client_credentials",
            {
                "Authorization": self._basic(),
                SERVICE_NAME_HEADER: self._settings.service_name,
                CORRELATION_HEADER: str(uuid.uuid4()),
                "Content-Type": FORM_CONTENT_TYPE,
                "Accept": JSON,
            },
            self._settings.request_timeout_s,
        )
        if answer.status == 200:
            token, expires_in = issued_token(answer, "token", TOKEN_REFRESH_RATIO)
            self.grants += 1
            log.info("walmart.token", expires_in=expires_in)
            return token
        # Only Walmart's code and description are kept: neither echoes the credentials.
        status = answer.status
        code, message = error_details(answer.response.content, status)
        refusal = f"Walmart refused the client credentials: HTTP {status} {code}: {message}"
        raise grant_refused("token", status, code, refusal)
