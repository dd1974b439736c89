"""Shopify webhook deliveries: HMAC check over the raw body, dedupe key, topic and staleness.

Staleness: Shopify retries a failed delivery for up to 4 hours with the *original* payload, so
``verify`` cannot refuse an old delivery (a refusal means more retries). Instead the stored payload
is an envelope that keeps the delivery's ``X-Shopify-Triggered-At`` and whether it was already
older than ``webhook_max_age_s`` on arrival::

    {"triggered_at": "2026-01-01T00:00:00+00:00" | null, "stale": false,
     "webhook_id": "...", "event_id": "...", "shop_domain": "...", "api_version": "...",
     "body": "<the raw JSON body, as received>"}

``envelope_of(delivery)`` reads it back; the topic
stays the bare Shopify topic (``orders/create``...). ``parse`` turns a stored delivery into domain
events (``connectors.shopify.events``, which also says why stale deliveries still count).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

import structlog
from pydantic import SecretStr

from connectors.shopify.const import (
    API_VERSION_HEADER,
    EVENT_ID_HEADER,
    HMAC_HEADER,
    SHOP_DOMAIN_HEADER,
    TOPIC_HEADER,
    TOPIC_INVENTORY_LEVELS_UPDATE,
    TOPIC_ORDERS_CANCELLED,
    TOPIC_ORDERS_CREATE,
    TOPIC_PRODUCTS_UPDATE,
    TRIGGERED_AT_HEADER,
    WEBHOOK_ID_HEADER,
)
from connectors.shopify.events import to_events
from domain.clock import Clock
from domain.errors import WebhookAuthError, WebhookError
from domain.events import ChannelEvent, WebhookDelivery

log = structlog.get_logger(__name__)


def sign(secret: str, body: bytes) -> str:
    """``X-Shopify-Hmac-Sha256`` of ``body``: base64 of its HMAC-SHA256 under ``secret``."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: SecretStr | None,
    clock: Clock,
    max_age_s: float,
) -> WebhookDelivery:
    """Check the HMAC (constant time, before anything is parsed) and build the inbox envelope."""
    lower = {key.lower(): value for key, value in headers.items()}
    given = lower.get(HMAC_HEADER.lower(), "").strip()
    if secret is None or not given:
        raise WebhookAuthError("missing signature")
    try:
        given_digest = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError) as err:
        raise WebhookAuthError("signature mismatch") from err
    expected = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given_digest):
        raise WebhookAuthError("signature mismatch")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise WebhookError("body is not UTF-8") from err
    triggered = _parse_time(lower.get(TRIGGERED_AT_HEADER.lower()))
    stale = triggered is not None and (clock.now() - triggered).total_seconds() > max_age_s
    webhook_id = lower.get(WEBHOOK_ID_HEADER.lower()) or hashlib.sha256(body).hexdigest()
    topic = lower.get(TOPIC_HEADER.lower()) or "unknown"
    if stale:
        log.info("shopify_webhook_stale", topic=topic, webhook_id=webhook_id)
    envelope = {
        "triggered_at": triggered.isoformat() if triggered else None,
        "stale": stale,
        "webhook_id": webhook_id,
        "event_id": lower.get(EVENT_ID_HEADER.lower()),
        "shop_domain": lower.get(SHOP_DOMAIN_HEADER.lower()),
        "api_version": lower.get(API_VERSION_HEADER.lower()),
        "body": text,
    }
    return WebhookDelivery(dedupe_key=webhook_id, topic=topic, payload=json.dumps(envelope))


def envelope_of(delivery: WebhookDelivery) -> dict[str, Any]:
    """The stored envelope (raises ``ValueError`` if it is not one)."""
    try:
        envelope = json.loads(delivery.payload)
    except json.JSONDecodeError as err:
        raise ValueError(f"payload is not JSON: {err.msg}") from err
    if not isinstance(envelope, dict) or not isinstance(envelope.get("body"), str):
        raise ValueError("payload is not a Shopify delivery envelope")
    return envelope


def parse(
    delivery: WebhookDelivery,
    *,
    shop: str,
    location_id: str | None,
    sku_of_item: Callable[[str], str | None],
) -> list[ChannelEvent]:
    """Validate a stored delivery and turn it into domain events (see ``events``).

    ``location_id`` is the managed location's GID; ``sku_of_item`` maps an inventory item GID to
    the SKU the channel knows it by.
    """
    envelope = envelope_of(delivery)
    domain = envelope.get("shop_domain")
    if domain and domain != shop:
        raise ValueError(f"delivery for shop {domain!r}, not {shop!r}")
    try:
        body = json.loads(envelope["body"])
    except json.JSONDecodeError as err:
        raise ValueError(f"body is not JSON: {err.msg}") from err
    if not isinstance(body, dict):
        raise ValueError("body is not a JSON object")
    required = _REQUIRED.get(delivery.topic, ())
    missing = [key for key in required if key not in body]
    if missing:
        raise ValueError(f"{delivery.topic} body lacks {', '.join(missing)}")
    return to_events(
        delivery.topic,
        body,
        triggered_at=_parse_time(envelope.get("triggered_at")),
        location_id=location_id,
        sku_of_item=sku_of_item,
    )


# Keys each handled topic's REST-shaped body must carry to be usable later.
_REQUIRED: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        TOPIC_ORDERS_CREATE: ("id", "line_items"),
        TOPIC_ORDERS_CANCELLED: ("id", "line_items"),
        TOPIC_INVENTORY_LEVELS_UPDATE: ("inventory_item_id", "location_id", "available"),
        TOPIC_PRODUCTS_UPDATE: ("id", "variants"),
    }
)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # Shopify sends UTC ("...Z"); be lenient
    return parsed.astimezone(UTC)
