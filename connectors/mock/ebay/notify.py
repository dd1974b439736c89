"""Notification API: the public key route, ECDSA-signed pushes, and the endpoint challenge.

Signing (guide §3.5, eBay/event-notification-nodejs-sdk): the body is compact JSON
(``separators=(",", ":")``, original key order, UTF-8) and the signature is ECDSA P-256 with
SHA-1 over exactly those bytes, so a verifier re-serialising the parsed body (as the SDK does)
and one using the raw body agree. ``X-EBAY-SIGNATURE`` = base64 of
``{"alg":"ecdsa","kid":<public key id>,"signature":<base64 DER>,"digest":"SHA1"}`` (lower-case
``alg`` as in eBay's published fixture; ``getPublicKey`` says ``"algorithm":"ECDSA"``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.mock.ebay.auth import ebay_api
from connectors.mock.ebay.const import (
    API_SCOPE,
    ERR_PUBLIC_KEY_NOT_FOUND,
    NOTIFICATION_API,
    NOTIFICATION_DOMAIN,
    ORDER_CONFIRMATION,
    SCHEMA_VERSION,
    SIGNATURE_HEADER,
)
from connectors.mock.ebay.state import APPLICATION, EbayMockState, SentNotification
from connectors.mock.ebay.wire import WireError, answer, error
from connectors.mock.kit.webhooks import post
from connectors.mock.kit.wire import iso

log = structlog.get_logger(__name__)

PUBLIC_KEY_PATH = "/commerce/notification/v1/public_key/{public_key_id}"


def public_key_text(state: EbayMockState) -> str:
    """The public key as eBay serves it: PEM markers around base64 DER, no line breaks."""
    der = state.signing_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = base64.b64encode(der).decode()
    return f"-----BEGIN PUBLIC KEY-----{body}-----END PUBLIC KEY-----"


@ebay_api(NOTIFICATION_API, APPLICATION, frozenset({API_SCOPE}))
async def get_public_key(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /commerce/notification/v1/public_key/{public_key_id}`` (application token)."""
    if request.match_info["public_key_id"] != state.public_key_id:
        raise WireError(
            404,
            error(
                ERR_PUBLIC_KEY_NOT_FOUND,
                NOTIFICATION_DOMAIN,
                "REQUEST",
                "The specified public key ID was not found.",
            ),
        )
    return answer({"key": public_key_text(state), "algorithm": "ECDSA", "digest": "SHA1"})


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signature_header(state: EbayMockState, body: bytes) -> str:
    """``X-EBAY-SIGNATURE`` for ``body``."""
    der = state.signing_key.sign(body, ec.ECDSA(hashes.SHA1()))  # noqa: S303 - eBay's digest
    envelope = {
        "alg": "ecdsa",
        "kid": state.public_key_id,
        "signature": base64.b64encode(der).decode(),
        "digest": "SHA1",
    }
    return base64.b64encode(json.dumps(envelope, separators=(",", ":")).encode()).decode()


def envelope(state: EbayMockState, topic: str, data: dict[str, Any]) -> dict[str, Any]:
    """``{metadata, notification}`` as eBay pushes it."""
    now = iso(state.now())
    return {
        "metadata": {"topic": topic, "schemaVersion": SCHEMA_VERSION, "deprecated": False},
        "notification": {
            "notificationId": str(uuid.uuid4()),
            "eventDate": now,
            "publishDate": now,
            "publishAttemptCount": 1,
            "data": data,
        },
    }


def order_confirmation(state: EbayMockState, order_id: str) -> dict[str, Any]:
    """An ORDER_CONFIRMATION notification for one line item (one per line item, as eBay's).

    ``data`` holds ``orderId`` and nothing else: eBay's contract (AsyncAPI
    order_confirmation.yaml) identifies the order, and the seller reads its line items with the
    Fulfillment API (``GET /sell/fulfillment/v1/order/{orderId}``, served by ``fulfillment``).
    """
    return envelope(state, ORDER_CONFIRMATION, {"orderId": order_id})


async def deliver(
    state: EbayMockState, session: aiohttp.ClientSession, payload: dict[str, Any]
) -> SentNotification:
    """POST one signed notification to ``state.notify_url`` and record the outcome."""
    body = encode(payload)
    header = signature_header(state, body)
    topic = payload["metadata"]["topic"]
    sent = SentNotification(
        topic, payload["notification"]["notificationId"], None, None, body, header
    )
    state.notifications.append(sent)
    if not state.notify_url:
        sent.error = "no notification endpoint configured"
        return sent
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: header}
    sent.status, sent.error = await post(session, state.notify_url, body, headers)
    log.debug("ebay_mock.notification", topic=topic, status=sent.status, error=sent.error)
    return sent


async def redeliver(
    state: EbayMockState, session: aiohttp.ClientSession, notification_id: str
) -> SentNotification | None:
    """Send a recorded notification again with ``publishAttemptCount`` + 1 (eBay retries)."""
    for sent in reversed(state.notifications):
        if sent.notification_id == notification_id:
            payload = json.loads(sent.body)
            payload["notification"]["publishAttemptCount"] += 1
            payload["notification"]["publishDate"] = iso(state.now())
            return await deliver(state, session, payload)
    return None


def challenge_response(challenge_code: str, verification_token: str, endpoint: str) -> str:
    """hex SHA-256 of challengeCode + verificationToken + endpoint (guide §3.5)."""
    digest = hashlib.sha256()
    for part in (challenge_code, verification_token, endpoint):
        digest.update(part.encode())
    return digest.hexdigest()


async def run_challenge(
    state: EbayMockState, session: aiohttp.ClientSession, endpoint: str | None = None
) -> dict[str, Any]:
    """Validate an endpoint as eBay does when a destination is created or updated."""
    target = endpoint or state.notify_url
    if not target:
        return {"passed": False, "reason": "no endpoint"}
    code = secrets.token_hex(32)
    expected = challenge_response(code, state.verification_token.get_secret_value(), target)
    url = f"{target}{'&' if '?' in target else '?'}challenge_code={code}"
    outcome: dict[str, Any] = {"endpoint": target, "challengeCode": code, "passed": False}
    try:
        async with session.get(url) as response:
            outcome["status"] = response.status
            text = await response.text()
            content_type = response.content_type
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcome["reason"] = type(exc).__name__
        return outcome
    try:
        given = json.loads(text).get("challengeResponse")
    except (ValueError, AttributeError):
        given = None
    if response.status != 200:
        outcome["reason"] = f"HTTP {response.status}"
    elif content_type != "application/json":
        outcome["reason"] = f"Content-Type {content_type}"
    elif given != expected:
        outcome["reason"] = "challengeResponse mismatch"
    else:
        outcome["passed"] = True
    return outcome


def add_routes(app: web.Application) -> None:
    """Register the Notification API route."""
    app.router.add_get(PUBLIC_KEY_PATH, get_public_key)
