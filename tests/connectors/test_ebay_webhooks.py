"""Notification API deliveries: the GET challenge, ECDSA signatures with cached keys, parsing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.ebay import EbayChannel
from domain.clock import ManualClock
from domain.errors import TransientChannelError, WebhookAuthError, WebhookError
from domain.events import OrderNotice, OrderStatus, WebhookDelivery
from tests.connectors.ebay_fixtures import (
    APP_TOKEN,
    KEYS,
    FakeSleep,
    assert_request,
    channel,
    ebay_error,
    token_route,
)

KID = "9936261a-7d7b-4621-a0f1-96ccb428af49"

# eBay's own test vector (github eBay/event-notification-nodejs-sdk, test/test.json, "VALID",
# Apache-2.0): a MARKETPLACE_ACCOUNT_DELETION notification, its X-EBAY-SIGNATURE and the key.
EBAY_SIGNATURE = (
    "eyJhbGciOiJlY2RzYSIsImtpZCI6Ijk5MzYyNjFhLTdkN2ItNDYyMS1hMGYxLTk2Y2NiNDI4YWY0OSIsInNpZ25hdHVy"
    "ZSI6Ik1FWUNJUUNmeGZJV3V4bVdjSUJRSjljNS9YN2lHREpxczJSQ0dzQkVhQWppbnlycmZBSWhBSVY2d0djVGlCdVY1"
    "S0pVaWYyaG9reXJMK1E5c3NIa2FkK214Mm5FRTI1dyIsImRpZ2VzdCI6IlNIQTEifQ=="
)
EBAY_KEY = (
    "-----BEGIN PUBLIC KEY-----MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZhhxXKtR+TOvtDbgTPCkSof02qgBB7"
    "IsYOyf76ilExJ/upAa/vKIKheOoCyOpcLmi4t0b4uepb7LLjmMr90FUg==-----END PUBLIC KEY-----"
)
EBAY_MESSAGE: dict[str, Any] = {
    "metadata": {
        "topic": "MARKETPLACE_ACCOUNT_DELETION",
        "schemaVersion": "1.0",
        "deprecated": False,
    },
    "notification": {
        "notificationId": (
            "49feeaeb-4982-42d9-a377-9645b8479411_33f7e043-fed8-442b-9d44-791923bd9a6d"
        ),
        "eventDate": "2021-03-19T20:43:59.462Z",
        "publishDate": "2021-03-19T20:43:59.679Z",
        "publishAttemptCount": 1,
        "data": {
            "username": "test_user",
            "userId": "ma8vp1jySJC",
            "eiasToken": "nY+sHZ2PrBmdj6wVnY+sEZ2PrA2dj6wJnY+gAZGEpwmdj6x9nY+seQ==",
        },
    },
}


def pem(key: ec.EllipticCurvePrivateKey) -> str:
    """The public half as eBay serves it: PEM on a single line."""
    text = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return "".join(text.splitlines())


def signed(key: ec.EllipticCurvePrivateKey, message: bytes, kid: str = KID) -> dict[str, str]:
    """The X-EBAY-SIGNATURE header eBay would send for ``message``."""
    signature = key.sign(message, ec.ECDSA(hashes.SHA1()))  # noqa: S303 (eBay's digest)
    header = {
        "alg": "ecdsa",
        "kid": kid,
        "signature": base64.b64encode(signature).decode(),
        "digest": "SHA1",
    }
    return {"X-EBAY-SIGNATURE": base64.b64encode(json.dumps(header).encode()).decode()}


def key_answer(key_pem: str) -> httpx.Response:
    return httpx.Response(200, json={"key": key_pem, "algorithm": "ECDSA", "digest": "SHA1"})


def order(data: dict[str, Any], topic: str = "ORDER_CONFIRMATION") -> dict[str, Any]:
    return {
        "metadata": {"topic": topic, "schemaVersion": "1.0", "deprecated": False},
        "notification": {
            "notificationId": "n-1",
            "eventDate": "2026-03-02T11:58:00.000Z",
            "publishDate": "2026-03-02T11:58:01.000Z",
            "publishAttemptCount": 1,
            "data": data,
        },
    }


def compact(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


async def prepared(ebay: EbayChannel, headers: dict[str, str], key_pem: str) -> respx.Route:
    async with respx.mock(assert_all_called=True) as router:
        token_route(router, grant="client_credentials")
        route = router.get(f"{KEYS}/{KID}").mock(return_value=key_answer(key_pem))
        await ebay.prepare_webhook(headers)
    return route


def test_challenge_answer_is_a_known_sha256(clock: ManualClock, sleep: FakeSleep) -> None:
    ebay = channel(httpx.AsyncClient(), clock, sleep)
    # printf '%s' "<code><token><endpoint>" | sha256sum
    assert ebay.answer_challenge("a8628072-3d33-45ee-9004-bee86830a22d") == {
        "challengeResponse": "4049c8af6f2609461a6cc8c7a8a08c8031cd6cda48e5dcfe7fad39b937db56d0"
    }
    unconfigured = channel(httpx.AsyncClient(), clock, sleep, verification_token=None)
    with pytest.raises(WebhookError):
        unconfigured.answer_challenge("abc")


async def test_ebays_own_signed_notification_verifies(clock: ManualClock, sleep: FakeSleep) -> None:
    headers = {"x-ebay-signature": EBAY_SIGNATURE}  # header names arrive in any case
    async with httpx.AsyncClient() as http:
        ebay = channel(http, clock, sleep)
        route = await prepared(ebay, headers, EBAY_KEY)
        # eBay delivers pretty or compact JSON; the signature covers the compact form.
        delivery = ebay.verify_webhook(headers, json.dumps(EBAY_MESSAGE, indent=2).encode())
    assert_request(
        route.calls.last.request,
        "GET",
        f"{KEYS}/{KID}",
        headers={"authorization": f"Bearer {APP_TOKEN}"},
    )
    assert delivery.dedupe_key == EBAY_MESSAGE["notification"]["notificationId"]
    assert delivery.topic == "MARKETPLACE_ACCOUNT_DELETION"
    assert ebay.parse_webhook(delivery) == []
    tampered = json.loads(json.dumps(EBAY_MESSAGE))
    tampered["notification"]["data"]["username"] = "someone_else"
    with pytest.raises(WebhookAuthError, match="mismatch"):
        ebay.verify_webhook(headers, compact(tampered))


async def test_generated_key_good_bad_and_unknown_kid(clock: ManualClock, sleep: FakeSleep) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = compact(order({"orderId": "12-34567-89012"}))
    headers = signed(key, body)
    async with httpx.AsyncClient() as http:
        ebay = channel(http, clock, sleep)
        with pytest.raises(WebhookAuthError, match="not cached"):
            ebay.verify_webhook(headers, body)  # prepare_webhook was not called
        await prepared(ebay, headers, pem(key))
        assert ebay.verify_webhook(headers, body).dedupe_key == "n-1"
        # Raw-body signatures (a sender that does not re-serialize) verify too.
        raw = b'{"metadata": {"topic": "X"}, "notification": {"notificationId": "n-2"}}'
        assert ebay.verify_webhook(signed(key, raw), raw).topic == "X"
        with pytest.raises(WebhookAuthError, match="mismatch"):
            ebay.verify_webhook(signed(ec.generate_private_key(ec.SECP256R1()), body), body)
        with pytest.raises(WebhookAuthError, match="not cached"):
            ebay.verify_webhook(signed(key, body, kid="another-kid"), body)
        with pytest.raises(WebhookAuthError, match="missing"):
            ebay.verify_webhook({}, body)
        with pytest.raises(WebhookAuthError, match="malformed"):
            ebay.verify_webhook({"X-EBAY-SIGNATURE": "not base64!"}, body)


async def test_key_cache_expires_after_its_ttl(clock: ManualClock, sleep: FakeSleep) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = compact(order({"orderId": "1"}))
    headers = signed(key, body)
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, grant="client_credentials")
        route = router.get(f"{KEYS}/{KID}").mock(return_value=key_answer(pem(key)))
        ebay = channel(http, clock, sleep, public_key_ttl_s=600)
        await ebay.prepare_webhook(headers)
        await ebay.prepare_webhook(headers)
        assert route.call_count == 1  # cached
        clock.advance(600)
        with pytest.raises(WebhookAuthError, match="not cached"):
            ebay.verify_webhook(headers, body)
        await ebay.prepare_webhook(headers)
        assert route.call_count == 2
        ebay.verify_webhook(headers, body)


async def test_unknown_kid_is_remembered_and_refused(clock: ManualClock, sleep: FakeSleep) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = compact(order({"orderId": "1"}))
    headers = signed(key, body)
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, grant="client_credentials")
        route = router.get(f"{KEYS}/{KID}").mock(
            return_value=ebay_error(404, 195000, "Resource not found")
        )
        ebay = channel(http, clock, sleep)
        await ebay.prepare_webhook(headers)
        await ebay.prepare_webhook(headers)
        with pytest.raises(WebhookAuthError):
            ebay.verify_webhook(headers, body)
    assert route.call_count == 1  # random kids cannot drain the Notification quota


async def test_key_fetch_outage_raises_for_a_5xx_answer(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, grant="client_credentials")
        router.get(f"{KEYS}/{KID}").mock(return_value=httpx.Response(503))
        ebay = channel(http, clock, sleep)
        with pytest.raises(TransientChannelError):
            await ebay.prepare_webhook(signed(key, b"{}"))


def test_order_confirmation_names_the_order_only(clock: ManualClock, sleep: FakeSleep) -> None:
    """eBay's ORDER_CONFIRMATION identifies the order (data.orderId): parsing gives a notice
    for the inbox worker to resolve with getOrder; whatever else ``data`` holds is not read."""
    ebay = channel(httpx.AsyncClient(), clock, sleep)
    payload = json.dumps(order({"orderId": "12-34567-89012"}))
    delivery = WebhookDelivery("n-1", "ORDER_CONFIRMATION", payload)
    assert ebay.parse_webhook(delivery) == [
        OrderNotice("12-34567-89012", datetime(2026, 3, 2, 11, 58, tzinfo=UTC), OrderStatus.PLACED)
    ]
    # SKUs and quantities in data (no eBay payload has them) do not skip the order read.
    flat = json.dumps(order({"orderId": "9", "sku": "MUG-RED-12", "quantity": 1}))
    [notice] = ebay.parse_webhook(WebhookDelivery("n-2", "ORDER_CONFIRMATION", flat))
    assert isinstance(notice, OrderNotice)
    other = json.dumps(order({"orderId": "9"}, topic="ITEM_MARKED_SHIPPED"))
    assert ebay.parse_webhook(WebhookDelivery("n-3", "ITEM_MARKED_SHIPPED", other)) == []
    with pytest.raises(ValueError, match="orderId"):
        ebay.parse_webhook(WebhookDelivery("n-4", "ORDER_CONFIRMATION", json.dumps(order({}))))
    with pytest.raises(ValueError, match="JSON"):
        ebay.parse_webhook(WebhookDelivery("n-5", "ORDER_CONFIRMATION", "{oops"))


async def test_lookups_of_new_key_ids_are_paced(clock: ManualClock, sleep: FakeSleep) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    body = compact(order({"orderId": "1"}))
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "a1", "a2", grant="client_credentials")
        forged = router.get(url__startswith=f"{KEYS}/forged-").mock(
            return_value=ebay_error(404, 195000, "Resource not found")
        )
        genuine = router.get(f"{KEYS}/{KID}").mock(return_value=key_answer(pem(key)))
        ebay = channel(http, clock, sleep, public_key_ttl_s=600)
        await ebay.prepare_webhook(signed(key, body))  # our real key, learned first
        for n in range(50):  # a flood of deliveries naming random key ids
            await ebay.prepare_webhook(signed(key, body, kid=f"forged-{n}"))
        assert forged.call_count == 19  # the burst (20, one spent on the real key), then none
        clock.advance(600)  # the real key expires: its refresh is not held back by the flood
        await ebay.prepare_webhook(signed(key, body))
        assert genuine.call_count == 2
        assert ebay.verify_webhook(signed(key, body), body).dedupe_key == "n-1"
        clock.advance(180)  # the lookup bucket refills at 20 an hour: new ids are tried again
        await ebay.prepare_webhook(signed(key, body, kid="forged-x"))
    assert forged.call_count == 20
