"""Walmart webhook deliveries: authentication, dedupe key, topic, and parsing into domain events.

A subscription authenticates its deliveries one of three ways (notifications.json
``createSubscription``, guide §2.5); we accept the two that a receiver can check alone:

* HMAC. Newer deliveries carry ``WM_SEC.TIMESTAMP`` (epoch seconds) and ``WM_SEC.SIGNATURE`` =
  base64(HMAC-SHA256(secret, "POST\\n<path+query>\\n<timestamp>\\n<hex sha256(body)>")); the
  timestamp must be within ``webhook_max_age_s`` of our clock (replays are refused). Older
  subscriptions send ``<authHeaderName>: HMAC-SHA256(clientSecret, body)`` (hex or base64, the
  docs do not say which; both are compared) with no timestamp: replays are caught by the
  ``source.eventId`` dedupe only.
* BASIC_AUTH: ``<authHeaderName>: Basic base64(userName:password)``.

Every comparison is constant-time. Dedupe key = ``source.eventId``; topic = ``source.eventType``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from connectors.walmart.const import SIGNATURE_HEADER, TIMESTAMP_HEADER
from connectors.walmart.models import WalmartSettings
from connectors.wire import loads_exact
from domain.clock import Clock
from domain.errors import WebhookAuthError, WebhookError
from domain.events import WebhookDelivery


def sign_timestamped(secret: str, path: str, timestamp: str, body: bytes) -> str:
    """``WM_SEC.SIGNATURE`` of a POST to ``path`` (what Walmart computes)."""
    digest = hashlib.sha256(body).hexdigest()
    message = f"POST\n{path}\n{timestamp}\n{digest}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify(
    settings: WalmartSettings,
    headers: Mapping[str, str],
    body: bytes,
    *,
    path: str,
    clock: Clock,
) -> WebhookDelivery:
    """Authenticate a delivery (before parsing anything) and build the inbox entry."""
    lower = {key.lower(): value for key, value in headers.items()}
    secret = settings.webhook_secret
    auth = lower.get(settings.webhook_auth_header.lower(), "").strip()
    if SIGNATURE_HEADER.lower() in lower:
        _timestamped(secret, lower, body, path, clock, settings.webhook_max_age_s)
    elif auth.lower().startswith("basic "):
        _basic(settings.webhook_basic_user, settings.webhook_basic_password, auth)
    elif auth and secret is not None:
        _body_hmac(secret, auth, body)
    else:
        raise WebhookAuthError("missing signature")
    try:
        text = body.decode("utf-8")
        document = loads_exact(text)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise WebhookError("body is not a JSON notification") from err
    source = document.get("source") if isinstance(document, Mapping) else None
    if not isinstance(source, Mapping):
        raise WebhookError("notification without a source block")
    event_id, event_type = source.get("eventId"), source.get("eventType")
    return WebhookDelivery(
        # Walmart redelivers with the same eventId; without one, the body is the identity.
        dedupe_key=event_id
        if isinstance(event_id, str) and event_id
        else "sha256:" + hashlib.sha256(body).hexdigest(),
        topic=event_type if isinstance(event_type, str) and event_type else "unknown",
        payload=text,
    )


def _timestamped(
    secret: SecretStr | None,
    lower: Mapping[str, str],
    body: bytes,
    path: str,
    clock: Clock,
    max_age_s: float,
) -> None:
    given = lower.get(SIGNATURE_HEADER.lower(), "").strip()
    stamp = lower.get(TIMESTAMP_HEADER.lower(), "").strip()
    if secret is None or not given or not stamp:
        raise WebhookAuthError("missing signature")
    expected = sign_timestamped(secret.get_secret_value(), path, stamp, body)
    # Compare bytes: a non-ASCII header must be a mismatch, not a TypeError.
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise WebhookAuthError("signature mismatch")
    try:
        sent = int(stamp)
    except ValueError as err:
        raise WebhookAuthError("malformed timestamp") from err
    if abs(clock.now().timestamp() - sent) > max_age_s:
        raise WebhookAuthError("stale timestamp")


def _body_hmac(secret: SecretStr, given: str, body: bytes) -> None:
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).digest()
    given_bytes = given.encode("utf-8", "replace")
    hex_ok = hmac.compare_digest(digest.hex().encode(), given_bytes.lower())
    b64_ok = hmac.compare_digest(base64.b64encode(digest), given_bytes)
    if not (hex_ok or b64_ok):
        raise WebhookAuthError("signature mismatch")


def _basic(user: SecretStr | None, password: SecretStr | None, given: str) -> None:
    if user is None or password is None:
        raise WebhookAuthError("basic auth not configured")
    pair = f"{user.get_secret_value()}:{password.get_secret_value()}".encode()
    expected = base64.b64encode(pair)
    if not hmac.compare_digest(expected, given[6:].strip().encode("utf-8", "replace")):
        raise WebhookAuthError("basic credentials mismatch")


def document_of(delivery: WebhookDelivery) -> Mapping[str, Any]:
    """The stored notification as an object (``ValueError`` if it is not one)."""
    document = loads_exact(delivery.payload)
    if not isinstance(document, Mapping):
        raise ValueError("notification is not a JSON object")
    return document
