"""eBay OAuth 2.0 (guide §3.1): the user refresh-token grant and the application token.

Both grants are a form POST to the token endpoint with ``Authorization: Basic
base64(client_id:client_secret)``. The *user* token (``grant_type=refresh_token`` with the
seller's refresh token and scopes) writes inventory; the *application* token
(``grant_type=client_credentials``, public scope) reads Browse and the Notification API's public
keys. Each is cached until 80% of its ``expires_in`` has passed, with one grant in flight; the
grants count against the token endpoint's own daily quotas. A refused grant is a
``ChannelAuthError`` carrying only eBay's OAuth ``error`` code, never a secret.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import urlencode

import structlog

from connectors.base import ChannelDeps
from connectors.ebay.budget import DailyQuotas, QuotaExhaustedError
from connectors.ebay.const import (
    FORM_CONTENT_TYPE,
    JSON_CONTENT_TYPE,
    QUOTA_EXHAUSTED,
    QUOTA_OAUTH_APPLICATION,
    QUOTA_OAUTH_REFRESH,
    TOKEN_REFRESH_RATIO,
)
from connectors.ebay.models import EbaySettings
from connectors.retry import RetryPolicy
from connectors.tokens import GrantedToken, Token, grant_refused, issued_token

log = structlog.get_logger(__name__)


class OAuthToken(GrantedToken):
    """One cached eBay access token (user or application): one grant in flight, 80% refresh."""

    def __init__(
        self,
        kind: str,
        form: Callable[[], dict[str, str]],
        quota: str,
        settings: EbaySettings,
        deps: ChannelDeps,
        quotas: DailyQuotas,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(deps, policy)
        self.kind = kind
        self._form = form
        self._quota = quota
        self._settings = settings
        self._quotas = quotas
        self.grants = 0  # tokens obtained (metrics, tests)

    async def _grant(self) -> Token:
        if not await self._quotas.take(self._quota):
            raise QuotaExhaustedError(
                f"eBay {self.kind} token: daily grant quota used", code=QUOTA_EXHAUSTED
            )
        settings = self._settings
        basic = base64.b64encode(
            f"{settings.client_id}:{settings.client_secret.get_secret_value()}".encode()
        ).decode("ascii")
        what = f"eBay {self.kind} token"
        answer = await self._post_grant(
            what,
            settings.auth_endpoint,
            urlencode(self._form()).encode("ascii"),
            {
                "Content-Type": FORM_CONTENT_TYPE,
                "Accept": JSON_CONTENT_TYPE,
                "Authorization": f"Basic {basic}",
            },
            settings.request_timeout_s,
        )
        if answer.status == 200:
            token, expires_in = issued_token(answer, what, TOKEN_REFRESH_RATIO)
            self.grants += 1
            log.info("ebay.token", kind=self.kind, expires_in=expires_in)
            return token
        # Only the OAuth error code is kept: error_description can echo the grant's values.
        error = answer.body.get("error")
        code = error if isinstance(error, str) and error else f"HTTP_{answer.status}"
        refusal = f"eBay refused the {self.kind} token grant: {code}"
        raise grant_refused(what, answer.status, code, refusal)


class EbayAuth:
    """The two tokens of one seller account: ``user`` (Sell APIs) and ``application``."""

    def __init__(
        self,
        settings: EbaySettings,
        deps: ChannelDeps,
        quotas: DailyQuotas,
        policy: RetryPolicy | None = None,
    ) -> None:
        def user_form() -> dict[str, str]:
            return {
                "grant_type": "refresh_token",
                "refresh_token": settings.refresh_token.get_secret_value(),
                "scope": " ".join(settings.scopes),
            }

        def application_form() -> dict[str, str]:
            return {"grant_type": "client_credentials", "scope": settings.public_scope}

        self.user = OAuthToken(
            "user", user_form, QUOTA_OAUTH_REFRESH, settings, deps, quotas, policy
        )
        self.application = OAuthToken(
            "application", application_form, QUOTA_OAUTH_APPLICATION, settings, deps, quotas, policy
        )

    def __repr__(self) -> str:
        return "EbayAuth(client_secret=**********, refresh_token=**********)"
