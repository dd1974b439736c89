"""Notification API: the public key route, ECDSA-signed pushes (compact JSON signed as sent, so
the raw body and eBay's SDK's re-serialisation both verify), and the endpoint challenge."""

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

from connectors.mock.ebay.const import API_SCOPE, NOTIFICATION_API
from connectors.mock.ebay.gateway import answer, ebay_api, refuse
from connectors.mock.ebay.state import APPLICATION, EbayMockState, SentNotification
from connectors.mock.kit.webhooks import post
from connectors.mock.kit.wire import iso

log = structlog.get_logger(__name__)

ROUTES = web.RouteTableDef()


def _compact(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@ROUTES.get("/commerce/notification/v1/public_key/{public_key_id}")
@ebay_api(NOTIFICATION_API, APPLICATION, frozenset({API_SCOPE}))
async def get_public_key(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /commerce/notification/v1/public_key/{public_key_id}`` (application token)."""
    if request.match_info["public_key_id"] != state.public_key_id:
        # 195001: the id for an unknown key is unconfirmed.
        raise refuse(NOTIFICATION_API, 195001, "The specified public key ID was not found.", 404)
    der = state.signing_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # eBay serves PEM markers around base64 DER, with no line breaks.
    key = f"-----BEGIN PUBLIC KEY-----{base64.b64encode(der).decode()}-----END PUBLIC KEY-----"
    return answer({"key": key, "algorithm": "ECDSA", "digest": "SHA1"})


def order_confirmation(state: EbayMockState, order_id: str) -> dict[str, Any]:
    """An ORDER_CONFIRMATION as eBay pushes it: ``data`` names the order only (AsyncAPI
    order_confirmation.yaml); the seller reads its line items with ``getOrder``."""
    now = iso(state.clock.now())
    return {
        "metadata": {"topic": "ORDER_CONFIRMATION", "schemaVersion": "1.0", "deprecated": False},
        "notification": {
            "notificationId": str(uuid.uuid4()),
            "eventDate": now,
            "publishDate": now,
            "publishAttemptCount": 1,
            "data": {"orderId": order_id},
        },
    }


async def deliver(
    state: EbayMockState, session: aiohttp.ClientSession, payload: dict[str, Any]
) -> SentNotification:
    """POST one signed notification to ``state.notify_url`` and record the outcome."""
    body = _compact(payload)
    der = state.signing_key.sign(body, ec.ECDSA(hashes.SHA1()))  # noqa: S303 - eBay's digest
    signed = {  # lower-case ``alg`` as in eBay's published fixture
        "alg": "ecdsa",
        "kid": state.public_key_id,
        "signature": base64.b64encode(der).decode(),
        "digest": "SHA1",
    }
    header = base64.b64encode(_compact(signed)).decode()
    topic = payload["metadata"]["topic"]
    sent = SentNotification(topic, payload["notification"]["notificationId"], body, header)
    state.notifications.append(sent)
    if not state.notify_url:
        sent.error = "no notification endpoint configured"
        return sent
    headers = {"Content-Type": "application/json", "X-EBAY-SIGNATURE": header}
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
            payload["notification"]["publishDate"] = iso(state.clock.now())
            return await deliver(state, session, payload)
    return None


async def run_challenge(state: EbayMockState, session: aiohttp.ClientSession) -> dict[str, Any]:
    """Validate the endpoint as eBay does when a destination is created or updated: GET it with
    ``challenge_code``; it must answer hex SHA-256(code + verification token + endpoint)."""
    target = state.notify_url
    if not target:
        return {"passed": False, "reason": "no endpoint"}
    code = secrets.token_hex(32)
    secret = state.verification_token.get_secret_value()
    expected = hashlib.sha256(f"{code}{secret}{target}".encode()).hexdigest()
    url = f"{target}{'&' if '?' in target else '?'}challenge_code={code}"
    outcome: dict[str, Any] = {"endpoint": target, "challengeCode": code, "passed": False}
    try:
        async with session.get(url) as response:
            outcome["status"] = response.status
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcome["reason"] = type(exc).__name__
        return outcome
    try:
        given = json.loads(text).get("challengeResponse")
    except (ValueError, AttributeError):
        given = None
    if response.status != 200:
        outcome["reason"] = f"HTTP {response.status}"
    elif response.content_type != "application/json":
        outcome["reason"] = f"Content-Type {response.content_type}"
    elif given != expected:
        outcome["reason"] = "challengeResponse mismatch"
    else:
        outcome["passed"] = True
    return outcome
