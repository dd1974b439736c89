"""Login with Amazon (LWA): the refresh-token grant, cached until shortly before expiry."""

from __future__ import annotations

from urllib.parse import urlencode

import structlog

from connectors.amazon.const import LWA_CONTENT_TYPE, LWA_GRANT, TOKEN_REFRESH_RATIO, USER_AGENT
from connectors.amazon.models import AmazonSettings
from connectors.base import ChannelDeps
from connectors.retry import RetryPolicy
from connectors.tokens import GrantedToken, Token, grant_refused, issued_token

log = structlog.get_logger(__name__)


class LwaAuth(GrantedToken):
    """One seller's LWA access token: one refresh in flight, refreshed at 80% of its life."""

    def __init__(
        self, settings: AmazonSettings, deps: ChannelDeps, policy: RetryPolicy | None = None
    ) -> None:
        super().__init__(deps, policy)
        self._settings = settings
        self.refreshes = 0  # how many grants were made (metrics, tests)

    async def _grant(self) -> Token:
        creds = self._settings.credentials
        form = urlencode(
            {
                "grant_type": "refresh_token",
                "refresh_token": creds.refresh_token.get_secret_value(),
                "client_id": creds.client_id,
                "client_secret": creds.client_secret.get_secret_value(),
            }
        )
        answer = await self._post_grant(
            LWA_GRANT,
            self._settings.auth_endpoint,
            form.encode("ascii"),
            {"content-type": LWA_CONTENT_TYPE, "user-agent": USER_AGENT},
            self._settings.request_timeout_s,
        )
        if answer.status == 200:
            token, expires_in = issued_token(answer, "LWA", TOKEN_REFRESH_RATIO)
            self.refreshes += 1
            log.info("amazon.lwa.token", expires_in=expires_in)
            return token
        # OAuth-style errors: only the error code is kept; descriptions can echo grant values.
        error = str(answer.body.get("error") or answer.status)
        refusal = f"LWA refused the refresh-token grant: {error}"
        raise grant_refused("LWA", answer.status, error, refusal)
