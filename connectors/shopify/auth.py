"""Shopify Admin API authentication: the token sent as ``X-Shopify-Access-Token`` on every call.

Two modes (``ShopifySettings`` takes exactly one):

* ``StaticTokenAuth``: the non-expiring ``shpat_`` token of a legacy custom app (no longer
  creatable since 2026-01-01), configured once and never refreshed; a refused token surfaces as
  ``ChannelAuthError`` on the first call.
* ``ClientCredentialsAuth``: a Dev Dashboard app installed on a store of its own organization
  exchanges its client ID and secret for a ~24 h token (``POST /admin/oauth/access_token``, form
  body ``grant_type=client_credentials&client_id=..&client_secret=..``, answer
  ``{"access_token", "scope", "expires_in"}``; shopify.dev "About client credentials"). The token
  is cached with one grant in flight, renewed at 80% of its life, and forgotten when the Admin API
  refuses it (the client then re-sends once with a new one).

Refusals of the grant are OAuth-style ``{"error", "error_description"}`` bodies (e.g.
``invalid_client``, ``shop_not_permitted``: "Client credentials cannot be performed on this
shop."; seen in Shopify's Python app library and a third-party report, status codes
**unconfirmed**, 400 assumed). Any 4xx but 408/429 is a ``ChannelAuthError`` carrying Shopify's
error and description (the secret is masked should a description ever echo it).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

import httpx
import structlog
from pydantic import SecretStr

from connectors.base import ChannelDeps
from connectors.http import TokenSource
from connectors.retry import RetryPolicy
from connectors.shopify.const import (
    DEFAULT_TOKEN_TTL_S,
    FORM_CONTENT_TYPE,
    TOKEN_GRANT,
    TOKEN_REFRESH_RATIO,
)
from connectors.shopify.models import ShopifySettings
from connectors.tokens import GrantedToken, Token, grant_refused, issued_token

log = structlog.get_logger(__name__)

MASK = "**********"
MAX_DESCRIPTION = 300  # characters of Shopify's error_description kept in an error


class StaticTokenAuth:
    """A legacy custom app's ``shpat_`` token: sent as configured, never renewed."""

    refreshable = False

    def __init__(self, token: SecretStr) -> None:
        if not token.get_secret_value().strip():
            raise ValueError("the Shopify access token is empty")
        self._token = token

    async def token(self) -> str:
        """The configured token."""
        return self._token.get_secret_value()

    def invalidate(self, value: str) -> None:
        """Nothing to forget: a refused static token stays refused."""

    def __repr__(self) -> str:
        return f"StaticTokenAuth(token={MASK})"


class ClientCredentialsAuth(GrantedToken):
    """Tokens of the client-credentials grant: one grant in flight, renewed at 80% of life."""

    def __init__(
        self, settings: ShopifySettings, deps: ChannelDeps, policy: RetryPolicy | None = None
    ) -> None:
        if settings.client_id is None or settings.client_secret is None:
            raise ValueError("client credentials need client_id and client_secret")
        super().__init__(deps, policy)
        self._client_id = settings.client_id
        self._secret = settings.client_secret
        self._settings = settings
        self.grants = 0  # tokens obtained (metrics, tests)

    async def _grant(self) -> Token:
        form = urlencode(
            {
                "grant_type": TOKEN_GRANT,
                "client_id": self._client_id,
                "client_secret": self._secret.get_secret_value(),
            }
        )
        answer = await self._post_grant(
            "shopify token",
            self._settings.token_url,
            form.encode("ascii"),
            {"Content-Type": FORM_CONTENT_TYPE, "Accept": "application/json"},
            self._settings.request_timeout_s,
        )
        if answer.status == 200:
            token, expires_in = issued_token(
                answer, "shopify token", TOKEN_REFRESH_RATIO, default_ttl_s=DEFAULT_TOKEN_TTL_S
            )
            self.grants += 1
            log.info("shopify.token", expires_in=expires_in, scope=answer.body.get("scope"))
            return token
        # No Retry-After is documented for this endpoint: a throttle backs off in the retry loop.
        code, message = self._refusal(answer.body, answer.response)
        refusal = (
            f"Shopify refused the client credentials grant: HTTP {answer.status} {code}: {message}"
        )
        raise grant_refused("shopify token", answer.status, code, refusal)

    def _refusal(self, body: Mapping[str, object], response: httpx.Response) -> tuple[str, str]:
        """Shopify's OAuth error code and description, the secret masked."""
        error = body.get("error") or body.get("errors")
        code = error if isinstance(error, str) and error else f"HTTP_{response.status_code}"
        description = body.get("error_description")
        message = description if isinstance(description, str) else response.reason_phrase
        secret = self._secret.get_secret_value()
        return code.replace(secret, MASK), message.replace(secret, MASK)[:MAX_DESCRIPTION]

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(client_id={self._client_id!r}, client_secret={MASK})"


def make_auth(
    settings: ShopifySettings, deps: ChannelDeps, policy: RetryPolicy | None = None
) -> TokenSource:
    """The auth mode the settings name (static token or client credentials)."""
    if settings.access_token is not None:
        return StaticTokenAuth(settings.access_token)
    return ClientCredentialsAuth(settings, deps, policy)
