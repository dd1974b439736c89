"""eBay Notification API deliveries (guide §3.5): the GET challenge, ECDSA signatures, parsing.

* Challenge: when a destination is created or updated eBay sends ``GET <endpoint>?challenge_code=``
  and expects ``{"challengeResponse": hex SHA-256(challengeCode + verificationToken + endpoint)}``
  with the endpoint exactly as registered (``answer_challenge``).
* Signature: ``X-EBAY-SIGNATURE`` is base64 of ``{"alg": "ecdsa", "kid", "signature": <base64
  DER>, "digest": "SHA1"}``. The public key of ``kid`` comes from the Notification API
  (``GET /commerce/notification/v1/public_key/{kid}``, application token). ``verify_webhook`` is
  synchronous (the ``Channel`` protocol), so the key must already be cached: the server calls
  the channel's ``async prepare_webhook(headers)`` first, which fetches and caches it (per
  instance, ``public_key_ttl_s``); ``verify`` refuses a delivery whose key is not cached.
  Lookups of key ids never served by eBay are paced (``NEW_KEY_LOOKUPS``) and refusals are
  remembered, so forged headers cannot spend the Notification API's daily quota.
* What is signed: eBay's SDK verifies over ``JSON.stringify(JSON.parse(body))`` - the compact
  re-serialization with the original key order - so that is checked first, then the raw bytes.
* Dedupe key ``notification.notificationId``; topic ``metadata.topic``.
* ORDER_CONFIRMATION names the order (``data.orderId``) and nothing else: ``parse`` gives an
  ``OrderNotice`` that the inbox worker resolves with Fulfillment ``getOrder``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import structlog
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from connectors.ebay.client import EbayClient
from connectors.ebay.const import (
    NEW_KEY_LOOKUPS,
    PUBLIC_KEY_PATH,
    QUOTA_NOTIFICATION,
    SIGNATURE_HEADER,
    TOPIC_ORDER_CONFIRMATION,
)
from connectors.ratelimit import TokenBucket
from domain.errors import RejectedUpdateError, TransientChannelError, WebhookAuthError, WebhookError
from domain.events import ChannelEvent, OrderNotice, OrderStatus, WebhookDelivery

log = structlog.get_logger(__name__)


def challenge_response(challenge_code: str, verification_token: str, endpoint: str) -> str:
    """Hex SHA-256 of challengeCode + verificationToken + endpoint (eBay's validation)."""
    joined = (challenge_code + verification_token + endpoint).encode("utf-8")
    return hashlib.sha256(joined).hexdigest()


@dataclass(frozen=True, slots=True)
class Signature:
    """The decoded ``X-EBAY-SIGNATURE`` header."""

    kid: str
    signature: bytes


def signature_of(headers: Mapping[str, str]) -> Signature:
    """Decode ``X-EBAY-SIGNATURE`` (raises ``WebhookAuthError`` if missing or malformed)."""
    lower = {key.lower(): value for key, value in headers.items()}
    raw = lower.get(SIGNATURE_HEADER.lower(), "").strip()
    if not raw:
        raise WebhookAuthError("missing signature")
    try:
        decoded = json.loads(base64.b64decode(raw, validate=True))
        kid, alg, digest = decoded["kid"], decoded["alg"], decoded["digest"]
        signature = base64.b64decode(decoded["signature"], validate=True)
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        raise WebhookAuthError("malformed signature header") from err
    if not isinstance(kid, str) or not kid:
        raise WebhookAuthError("malformed signature header")
    if str(alg).lower() != "ecdsa" or str(digest).upper() != "SHA1":
        raise WebhookAuthError("unsupported signature algorithm")
    return Signature(kid, signature)


def load_key(pem: str) -> ec.EllipticCurvePublicKey:
    """A Notification API ``key`` as an EC key.

    eBay returns the PEM on one line (``-----BEGIN PUBLIC KEY-----MFkw...-----END PUBLIC
    KEY-----``), which PEM parsers refuse: the base64 body is re-wrapped first.
    """
    body = "".join(
        pem.replace(_PEM_BEGIN, " ").replace(_PEM_END, " ").split()
    )  # whitespace anywhere in the body is insignificant
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    text = "\n".join([_PEM_BEGIN, *lines, _PEM_END]) + "\n"
    try:
        key = load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError) as err:
        raise ValueError("the public key is not a PEM key") from err
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the public key is not an elliptic-curve key")
    return key


_PEM_BEGIN = "-----BEGIN PUBLIC KEY-----"
_PEM_END = "-----END PUBLIC KEY-----"


class PublicKeys:
    """Notification API public keys by ``kid``, cached per channel for ``public_key_ttl_s``."""

    def __init__(self, client: EbayClient) -> None:
        self._client = client
        # kid -> (key, or None for a kid eBay does not know; monotonic expiry)
        self._keys: dict[str, tuple[ec.EllipticCurvePublicKey | None, float]] = {}
        self._lock = asyncio.Lock()
        # Anyone can post a header naming a new kid: lookups of kids not known to be eBay's
        # are paced so forged deliveries cannot spend the daily Notification API quota.
        self._lookups = TokenBucket(NEW_KEY_LOOKUPS, client.deps.clock, client.deps.sleep)
        self._genuine: set[str] = set()  # kids eBay served a key for: refreshed unpaced

    def fresh(self) -> dict[str, ec.EllipticCurvePublicKey]:
        """The keys cached and not yet expired."""
        now = self._client.deps.clock.monotonic()
        return {kid: key for kid, (key, expires) in self._keys.items() if key and now < expires}

    def clear(self) -> None:
        """Forget every key."""
        self._keys.clear()
        self._genuine.clear()

    async def prepare(self, headers: Mapping[str, str]) -> None:
        """Fetch the key of the delivery's ``kid`` unless cached (see the module doc).

        A missing or malformed header, a key id eBay does not know (remembered as such for the
        TTL) or a new key id while lookups are paced is left for ``verify`` to refuse.
        """
        try:
            kid = signature_of(headers).kid
        except WebhookError:
            return
        async with self._lock:  # concurrent deliveries signed with one new key: one fetch
            now = self._client.deps.clock.monotonic()
            self._keys = {k: v for k, v in self._keys.items() if now < v[1]}  # drop expired
            if kid in self._keys:
                return
            if kid not in self._genuine:
                if self._lookups.wait_time() > 0:
                    log.warning("ebay.public_key.lookups_paced", kid=kid)
                    return
                await self._lookups.acquire()
            key = await self._fetch(kid)
            if key is not None:
                self._genuine.add(kid)
            self._keys[kid] = (key, now + self._client.settings.public_key_ttl_s)

    async def _fetch(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The key eBay publishes for ``kid`` (None if eBay refuses the id)."""
        try:
            answer = await self._client.call(
                "getPublicKey",
                "GET",
                PUBLIC_KEY_PATH.format(public_key_id=quote(kid, safe="")),
                family=QUOTA_NOTIFICATION,
                principal="application",
            )
        except RejectedUpdateError as err:
            log.warning("ebay.public_key.unknown", kid=kid, error=str(err))
            return None
        try:
            return load_key(str(answer.body.get("key") or ""))
        except ValueError as err:
            raise TransientChannelError(f"getPublicKey {kid}: {err}", code="BAD_RESPONSE") from err


def verify(
    headers: Mapping[str, str], body: bytes, keys: Mapping[str, ec.EllipticCurvePublicKey]
) -> WebhookDelivery:
    """Check the ECDSA/SHA1 signature with the cached key of its ``kid``; build the delivery."""
    signature = signature_of(headers)
    key = keys.get(signature.kid)
    if key is None:
        raise WebhookAuthError("signing key not cached (unknown or not prepared)")
    try:
        text = body.decode("utf-8")
        document = json.loads(text, parse_float=_js_number)
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise WebhookAuthError("signature mismatch") from err
    compact = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if not any(_valid(key, signature.signature, message) for message in (compact, body)):
        raise WebhookAuthError("signature mismatch")
    if not isinstance(document, Mapping):
        raise WebhookError("body is not a JSON notification")
    metadata = document.get("metadata")
    notification = document.get("notification")
    notification_id = (
        notification.get("notificationId") if isinstance(notification, Mapping) else None
    )
    topic = metadata.get("topic") if isinstance(metadata, Mapping) else None
    return WebhookDelivery(
        dedupe_key=str(notification_id)
        if isinstance(notification_id, str | int) and str(notification_id)
        else "sha256:" + hashlib.sha256(body).hexdigest(),
        topic=topic if isinstance(topic, str) and topic else "unknown",
        payload=text,
    )


def _valid(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA1()))  # noqa: S303 (eBay's digest)
    except InvalidSignature:
        return False
    return True


def _js_number(literal: str) -> int | float:
    """A JSON float as JavaScript would re-print it (1.0 → 1), so the compact form matches."""
    value = float(literal)
    return int(value) if value.is_integer() and abs(value) < 1e21 else value


def parse(delivery: WebhookDelivery, *, now: datetime) -> list[ChannelEvent]:
    """ORDER_CONFIRMATION → an ``OrderNotice`` of its ``orderId``; other topics → [].

    eBay's ORDER_CONFIRMATION contract (AsyncAPI order_confirmation.yaml) identifies the order
    only, one notification per line item, and says the seller then reads the order: the inbox
    worker does that through ``EbayChannel.resolve_events`` (Fulfillment ``getOrder``), never
    the webhook route. Line items of one order resolve to the same event: applied once.
    """
    try:
        document = json.loads(delivery.payload)
    except json.JSONDecodeError as err:
        raise ValueError(f"payload is not JSON: {err.msg}") from err
    if not isinstance(document, dict) or not isinstance(document.get("notification"), dict):
        raise ValueError("payload is not an eBay notification")
    if delivery.topic != TOPIC_ORDER_CONFIRMATION:
        return []
    notification = document["notification"]
    data = notification.get("data")
    if not isinstance(data, dict):
        raise ValueError(f"{delivery.topic} notification has no data")
    order_id = data.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise ValueError(f"{delivery.topic} notification has no orderId")
    when = _time(notification.get("eventDate")) or _time(notification.get("publishDate")) or now
    return [OrderNotice(order_id, when, OrderStatus.PLACED)]


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
