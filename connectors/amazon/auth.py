"""Login with Amazon (LWA): the refresh-token grant, cached until shortly before expiry."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import structlog

from connectors.amazon.const import LWA_CONTENT_TYPE, LWA_GRANT, TOKEN_REFRESH_RATIO, USER_AGENT
from connectors.amazon.models import AmazonSettings
from connectors.base import ChannelDeps
from connectors.http import GRANT_ERRORS
from connectors.retry import RetryPolicy, transport_errors
from connectors.tokens import GrantedToken, Token
from connectors.wire import loads_exact
from domain.errors import ChannelAuthError, RateLimitedError, TransientChannelError

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
        started = self._deps.clock.monotonic()
        with transport_errors(LWA_GRANT):
            response = await self._deps.http.post(
                self._settings.auth_endpoint,
                content=form.encode("ascii"),
                headers={"content-type": LWA_CONTENT_TYPE, "user-agent": USER_AGENT},
                timeout=self._settings.request_timeout_s,
            )
        if response.status_code == 200:
            body = _json(response)
            value, expires_in = body.get("access_token"), body.get("expires_in")
            if not isinstance(value, str) or not value or not isinstance(expires_in, int):
                raise TransientChannelError("LWA: token response without access_token/expires_in")
            self.refreshes += 1
            log.info("amazon.lwa.token", expires_in=expires_in)
            return Token(value, started + expires_in * TOKEN_REFRESH_RATIO)
        # OAuth-style errors: only the error code is kept; descriptions can echo grant values.
        error = str(_json(response).get("error") or response.status_code)
        status = response.status_code
        kind = GRANT_ERRORS.classify(status)
        if kind is RateLimitedError:
            raise RateLimitedError("LWA: throttled", status=status)
        if kind is TransientChannelError:
            raise TransientChannelError(f"LWA: HTTP {status}", status=status)
        raise ChannelAuthError(
            f"LWA refused the refresh-token grant: {error}", code=error, status=status
        )


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        body = loads_exact(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
