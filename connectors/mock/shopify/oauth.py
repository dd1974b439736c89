"""The mock shop's client-credentials grant (``POST /admin/oauth/access_token``) and token check.

A Dev Dashboard app installed on the shop (``state.client_id`` / ``client_secret`` set) exchanges
its credentials for a token living ``state.token_ttl_s`` seconds on the state's clock (Shopify:
~24 h, ``expires_in`` 86399 in third-party reports). The form body is what shopify.dev shows;
Shopify's own app libraries post the same fields as JSON, so JSON is accepted too. Refusals are
OAuth ``{"error", "error_description"}`` bodies: ``invalid_client`` and ``shop_not_permitted``
are names Shopify uses (library code, a third-party report); the 400 status and the other codes'
wording are **assumptions**. The Admin API takes the static ``state.access_token`` or a live
issued token; an expired or unknown one gets the usual 401.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl

from connectors.mock.shopify.state import ShopifyMockState

GRANT = "client_credentials"
FORM = "application/x-www-form-urlencoded"
NOT_PERMITTED = "Client credentials cannot be performed on this shop."
BAD_CLIENT = "Client authentication failed: the client_id or client_secret is invalid."
BAD_GRANT = "The grant_type is missing or not supported."
MALFORMED = "The request is missing a required parameter or is malformed."


def _refusal(code: str, description: str) -> tuple[int, dict[str, Any]]:
    return 400, {"error": code, "error_description": description}


def _fields(content_type: str, raw: bytes) -> dict[str, str] | None:
    """The grant's fields from a form or JSON body; None when neither parses."""
    try:
        if content_type == FORM:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        if content_type == "application/json":
            body = json.loads(raw)
            if isinstance(body, dict):
                return {str(k): str(v) for k, v in body.items() if v is not None}
    except (UnicodeDecodeError, ValueError):
        return None
    return None


def grant(state: ShopifyMockState, content_type: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    """Answer one token request: (status, body)."""
    if state.client_id is None or state.client_secret is None:
        # No Dev Dashboard app of this organization is installed on the shop.
        return _refusal("shop_not_permitted", NOT_PERMITTED)
    fields = _fields(content_type, raw)
    if fields is None:
        return _refusal("invalid_request", MALFORMED)
    if fields.get("grant_type") != GRANT:
        return _refusal("unsupported_grant_type", BAD_GRANT)
    client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
    if not (
        hmac.compare_digest(client_id.encode(), state.client_id.encode())
        & hmac.compare_digest(secret.encode(), state.client_secret.get_secret_value().encode())
    ):
        state.counters.token_refusals += 1
        return _refusal("invalid_client", BAD_CLIENT)
    return 200, {
        "access_token": issue_token(state),
        "scope": state.scopes,
        "expires_in": state.token_ttl_s,
    }


def issue_token(state: ShopifyMockState) -> str:
    """Mint a ``shpat_`` token valid for ``token_ttl_s`` on the state's clock."""
    now = state.clock.monotonic()
    for stale in [t for t, expiry in state.tokens.items() if expiry <= now]:
        del state.tokens[stale]  # an expired token answers like an unknown one anyway
    token = "shpat_" + secrets.token_hex(16)
    state.tokens[token] = now + state.token_ttl_s
    state.counters.token_grants += 1
    return token


def expire_tokens(state: ShopifyMockState) -> int:
    """Make every issued token expired (tests of the refresh path); return how many."""
    return state.expire_tokens()


def authorized(state: ShopifyMockState, given: str) -> bool:
    """Whether ``given`` is the static token or a live issued one."""
    static = state.access_token.get_secret_value().encode()
    if hmac.compare_digest(given.encode("utf-8", "replace"), static):
        return True
    expiry = state.tokens.get(given)
    return expiry is not None and state.clock.monotonic() < expiry
