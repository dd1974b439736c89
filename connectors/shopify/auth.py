"""Shopify Admin API authentication: the offline access token, sent as a header on every call.

Only the non-expiring offline token (custom apps, and public apps installed before expiring
offline tokens became mandatory) is supported: it is configured once and never refreshed. The
expiring (60 min + refresh token) and client-credentials (24 h) grants are not implemented; a
refused token surfaces as ``ChannelAuthError`` on the first call.
"""

from __future__ import annotations

from pydantic import SecretStr

from connectors.shopify.const import ACCESS_TOKEN_HEADER


class OfflineTokenAuth:
    """Adds ``X-Shopify-Access-Token`` to a request; the token never reaches a log or an error."""

    def __init__(self, token: SecretStr) -> None:
        if not token.get_secret_value().strip():
            raise ValueError("the Shopify access token is empty")
        self._token = token

    def headers(self) -> dict[str, str]:
        """The auth headers of one Admin API request."""
        return {ACCESS_TOKEN_HEADER: self._token.get_secret_value()}

    def __repr__(self) -> str:
        return "OfflineTokenAuth(token=**********)"
