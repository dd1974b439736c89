"""Shopify webhooks: base64 HMAC over the raw body, dedupe on the webhook id, staleness kept."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.base import WebhookDelivery
from connectors.shopify import ShopifyChannel
from connectors.shopify.webhooks import envelope_of, is_stale, sign, triggered_at
from daemon.clock import ManualClock
from daemon.errors import WebhookAuthError
from tests.connectors.shopify_fixtures import (
    SECRET,
    SHOP,
    FakeSleep,
    make_channel,
    make_clock,
)

ORDER = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "currency": "USD",
    "total_price": "49.98",
    "line_items": [{"variant_id": 1070325197, "sku": "MUG-1", "quantity": 2, "price": "24.99"}],
}


@pytest.fixture
def clock() -> ManualClock:
    return make_clock()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def channel(http: httpx.AsyncClient, clock: ManualClock) -> ShopifyChannel:
    return make_channel(http, clock, FakeSleep(clock))


def headers(
    body: bytes, *, topic: str = "orders/create", triggered: datetime | None = None
) -> dict[str, str]:
    moment = triggered or datetime(2026, 3, 2, 11, 59, 58, tzinfo=UTC)
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": sign(SECRET, body),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": moment.isoformat().replace("+00:00", "Z"),
    }


def test_a_good_signature_yields_a_delivery(channel: ShopifyChannel) -> None:
    body = json.dumps(ORDER).encode()
    delivery = channel.verify_webhook(headers(body), body)
    assert delivery.dedupe_key == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    assert delivery.topic == "orders/create"
    envelope = envelope_of(delivery)
    assert envelope["body"] == body.decode()  # the raw body, byte for byte
    assert envelope["shop_domain"] == SHOP
    assert envelope["event_id"] == "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert triggered_at(delivery) == datetime(2026, 3, 2, 11, 59, 58, tzinfo=UTC)
    assert is_stale(delivery) is False
    assert channel.parse_webhook(delivery) == []  # order events arrive with stock sync


def test_header_names_are_case_insensitive(channel: ShopifyChannel) -> None:
    body = json.dumps(ORDER).encode()
    lower = {k.lower(): v for k, v in headers(body).items()}  # HTTP/2 lowercases them
    assert channel.verify_webhook(lower, body).topic == "orders/create"


def test_the_signature_matches_the_published_recipe() -> None:
    import base64
    import hashlib
    import hmac

    body = b'{"id":1}'
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert sign(SECRET, body) == digest


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "missing", "garbage", "other-secret"],
)
def test_a_bad_or_missing_signature_is_refused(channel: ShopifyChannel, tamper: str) -> None:
    body = json.dumps(ORDER).encode()
    sent = headers(body)
    if tamper == "body":
        body = body.replace(b"49.98", b"0.01")
    elif tamper == "signature":
        sent["X-Shopify-Hmac-Sha256"] = sign(SECRET, b"something else")
    elif tamper == "missing":
        del sent["X-Shopify-Hmac-Sha256"]
    elif tamper == "garbage":
        sent["X-Shopify-Hmac-Sha256"] = "not base64 at all ✗"
    else:
        sent["X-Shopify-Hmac-Sha256"] = sign("another-apps-secret", body)
    with pytest.raises(WebhookAuthError):
        channel.verify_webhook(sent, body)


def test_without_a_configured_secret_nothing_is_accepted(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    channel = make_channel(http, clock, FakeSleep(clock), webhook_secret=None)
    body = json.dumps(ORDER).encode()
    with pytest.raises(WebhookAuthError, match="missing signature"):
        channel.verify_webhook(headers(body), body)


def test_the_signature_is_checked_before_the_body_is_parsed(channel: ShopifyChannel) -> None:
    body = b"{not json"
    with pytest.raises(WebhookAuthError):
        channel.verify_webhook({**headers(body), "X-Shopify-Hmac-Sha256": sign("x", body)}, body)
    delivery = channel.verify_webhook(headers(body), body)  # signed: stored as received
    with pytest.raises(ValueError, match="not JSON"):
        channel.parse_webhook(delivery)


def test_an_old_delivery_is_kept_but_marked_stale(
    channel: ShopifyChannel, clock: ManualClock
) -> None:
    body = json.dumps(ORDER).encode()
    old = clock.now() - timedelta(seconds=channel.settings.webhook_max_age_s + 1)
    delivery = channel.verify_webhook(headers(body, triggered=old), body)
    assert is_stale(delivery) is True
    assert triggered_at(delivery) == old
    assert channel.parse_webhook(delivery) == []


def test_a_delivery_without_triggered_at_is_not_stale(channel: ShopifyChannel) -> None:
    body = json.dumps(ORDER).encode()
    sent = headers(body)
    del sent["X-Shopify-Triggered-At"]
    delivery = channel.verify_webhook(sent, body)
    assert triggered_at(delivery) is None
    assert is_stale(delivery) is False


@pytest.mark.parametrize(
    ("topic", "body", "error"),
    [
        ("products/update", {"id": 1, "title": "no variants"}, "lacks variants"),
        ("inventory_levels/update", {"inventory_item_id": 2, "location_id": 3}, "lacks available"),
        ("orders/cancelled", {"id": 4}, "lacks line_items"),
        ("orders/create", [1, 2], "not a JSON object"),
    ],
)
def test_malformed_bodies_are_value_errors(
    channel: ShopifyChannel, topic: str, body: object, error: str
) -> None:
    raw = json.dumps(body).encode()
    delivery = channel.verify_webhook(headers(raw, topic=topic), raw)
    with pytest.raises(ValueError, match=error):
        channel.parse_webhook(delivery)


def test_well_formed_topics_yield_no_events_yet(channel: ShopifyChannel) -> None:
    bodies = {
        "products/update": {
            "id": 20995642,
            "variants": [{"id": 1070325197, "sku": "MUG-1", "price": "29.99"}],
        },
        "inventory_levels/update": {
            "inventory_item_id": 271878346596884015,
            "location_id": 24826418,
            "available": 10,
        },
        "orders/cancelled": ORDER,
        "app/uninstalled": {"id": 1},
    }
    for topic, body in bodies.items():
        raw = json.dumps(body).encode()
        assert channel.parse_webhook(channel.verify_webhook(headers(raw, topic=topic), raw)) == []


def test_a_delivery_for_another_shop_does_not_parse(channel: ShopifyChannel) -> None:
    body = json.dumps(ORDER).encode()
    sent = {**headers(body), "X-Shopify-Shop-Domain": "other.myshopify.com"}
    with pytest.raises(ValueError, match=r"other\.myshopify\.com"):
        channel.parse_webhook(channel.verify_webhook(sent, body))


def test_a_stored_payload_that_is_not_an_envelope_does_not_parse(
    channel: ShopifyChannel,
) -> None:
    with pytest.raises(ValueError, match="not JSON"):
        channel.parse_webhook(WebhookDelivery("id", "orders/create", "{]"))
    with pytest.raises(ValueError, match="not a Shopify delivery envelope"):
        channel.parse_webhook(WebhookDelivery("id", "orders/create", json.dumps(ORDER)))
