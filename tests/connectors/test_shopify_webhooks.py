"""Shopify webhooks: base64 HMAC over the raw body, dedupe on the webhook id, staleness kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.base import ResolvesEvents
from connectors.shopify import ShopifyChannel
from connectors.shopify.catalog import VariantIds
from connectors.shopify.webhooks import envelope_of, sign
from domain.clock import ManualClock
from domain.errors import WebhookAuthError
from domain.events import OrderEvent, OrderLine, OrderStatus, QuantityObserved, WebhookDelivery
from tests.connectors.shopify_fixtures import (
    LOCATION,
    SECRET,
    SHOP,
    FakeSleep,
    make_channel,
)

ORDER = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "currency": "USD",
    "total_price": "49.98",
    "line_items": [{"variant_id": 1070325197, "sku": "MUG-1", "quantity": 2, "price": "24.99"}],
}


@pytest.fixture
def channel(http: httpx.AsyncClient, clock: ManualClock) -> ShopifyChannel:
    return make_channel(http, clock, FakeSleep(clock))


def triggered_at(delivery: WebhookDelivery) -> datetime | None:
    """When Shopify triggered the delivery, as the stored envelope keeps it."""
    at = envelope_of(delivery)["triggered_at"]
    return None if at is None else datetime.fromisoformat(at)


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
    assert envelope["stale"] is False
    [event] = channel.parse_webhook(delivery)
    assert event == OrderEvent(
        "820982911946154508",
        OrderStatus.PLACED,
        (OrderLine("MUG-1", 2),),
        datetime(2026, 3, 2, 11, 59, 58, tzinfo=UTC),  # no time in the body: triggered-at
    )


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


def test_a_dev_dashboard_app_verifies_with_its_client_secret_by_default(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    """Shopify signs an app's webhooks with its client secret: no second copy is configured."""
    channel = make_channel(
        http,
        clock,
        FakeSleep(clock),
        access_token=None,
        webhook_secret=None,
        client_id="dev-dashboard-app",
        client_secret=SECRET,
    )
    body = json.dumps(ORDER).encode()
    assert channel.verify_webhook(headers(body), body).topic == "orders/create"


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
    assert envelope_of(delivery)["stale"] is True
    assert triggered_at(delivery) == old
    # Still a sale: the daemon applies each order and SKU once, however late it hears of it.
    [event] = channel.parse_webhook(delivery)
    assert isinstance(event, OrderEvent)
    assert event.status is OrderStatus.PLACED


def test_a_delivery_without_triggered_at_is_not_stale(channel: ShopifyChannel) -> None:
    body = json.dumps(ORDER).encode()
    sent = headers(body)
    del sent["X-Shopify-Triggered-At"]
    delivery = channel.verify_webhook(sent, body)
    assert triggered_at(delivery) is None
    assert envelope_of(delivery)["stale"] is False


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


def test_topics_without_stock_meaning_yield_no_events(channel: ShopifyChannel) -> None:
    bodies = {
        "products/update": {
            "id": 20995642,
            "variants": [{"id": 1070325197, "sku": "MUG-1", "price": "29.99"}],
        },
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


# -- domain events (REST webhook shapes, guide §4.6) -------------------------------------------

ITEM = 271878346596884015
ITEM_GID = f"gid://shopify/InventoryItem/{ITEM}"
LOCATION_NUMBER = int(LOCATION.rsplit("/", 1)[1])

FULL_ORDER = {
    "id": 820982911946154508,
    "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
    "name": "#1001",
    "created_at": "2026-03-02T06:59:00-05:00",
    "updated_at": "2026-03-02T06:59:30-05:00",
    "cancelled_at": None,
    "currency": "USD",
    "total_price": "84.96",
    "financial_status": "paid",
    "line_items": [
        {"id": 1, "variant_id": 1070325197, "sku": "MUG-1", "quantity": 2, "price": "24.99"},
        {"id": 2, "variant_id": None, "sku": None, "quantity": 1, "price": "5.00"},  # custom
        {"id": 3, "variant_id": 1070325198, "sku": "", "quantity": 1, "price": "9.99"},
        {"id": 4, "variant_id": 1070325199, "sku": " TEE-1 ", "quantity": 1, "price": "12.99"},
        {"id": 5, "variant_id": 1070325197, "sku": "MUG-1", "quantity": 1, "price": "24.99"},
    ],
}


def delivered(channel: ShopifyChannel, topic: str, body: object) -> list[object]:
    raw = json.dumps(body).encode()
    return list(channel.parse_webhook(channel.verify_webhook(headers(raw, topic=topic), raw)))


def know_item(channel: ShopifyChannel, sku: str = "MUG-1", item: str = ITEM_GID) -> None:
    channel.catalog.ids[sku] = VariantIds(
        "gid://shopify/Product/1", "gid://shopify/ProductVariant/1070325197", item
    )


def test_orders_create_is_a_placed_order_per_sku(channel: ShopifyChannel) -> None:
    # The webhook body is the whole REST order (line_items with sku and quantity): nothing to
    # read back, so the channel has no resolve_events.
    assert not isinstance(channel, ResolvesEvents)
    [event] = delivered(channel, "orders/create", FULL_ORDER)
    assert event == OrderEvent(
        order_id="820982911946154508",
        status=OrderStatus.PLACED,
        # Lines without a SKU are skipped; two lines of one SKU are added up.
        lines=(OrderLine("MUG-1", 3), OrderLine("TEE-1", 1)),
        updated_at=datetime(2026, 3, 2, 11, 59, 30, tzinfo=UTC),  # -05:00 made UTC
    )


def test_orders_cancelled_is_a_cancel_of_the_same_order(channel: ShopifyChannel) -> None:
    body = {
        **FULL_ORDER,
        "cancelled_at": "2026-03-02T07:10:00-05:00",
        "updated_at": "2026-03-02T07:10:01-05:00",
        "financial_status": "refunded",
    }
    [event] = delivered(channel, "orders/cancelled", body)
    assert isinstance(event, OrderEvent)
    assert event.order_id == "820982911946154508"
    assert event.status is OrderStatus.CANCELLED
    assert event.lines == (OrderLine("MUG-1", 3), OrderLine("TEE-1", 1))
    assert event.updated_at == datetime(2026, 3, 2, 12, 10, 1, tzinfo=UTC)


def test_an_order_with_only_custom_lines_has_no_lines(channel: ShopifyChannel) -> None:
    body = {**FULL_ORDER, "line_items": [{"id": 9, "sku": None, "quantity": 1}]}
    [event] = delivered(channel, "orders/create", body)
    assert isinstance(event, OrderEvent)
    assert event.lines == ()


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"id": "abc"}, "id is not a numeric id"),
        ({"line_items": {"sku": "MUG-1"}}, "line_items is not a list"),
        ({"line_items": [{"sku": "MUG-1", "quantity": "2"}]}, "quantity"),
        ({"line_items": [{"sku": "MUG-1", "quantity": -1}]}, "quantity"),
        ({"updated_at": "yesterday"}, "ISO-8601"),
        ({"updated_at": "2026-03-02T06:59:30"}, "no UTC offset"),
    ],
)
def test_a_malformed_order_is_a_value_error(
    channel: ShopifyChannel, change: dict[str, object], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        delivered(channel, "orders/create", {**FULL_ORDER, **change})


def level(**change: object) -> dict[str, object]:
    body: dict[str, object] = {
        "inventory_item_id": ITEM,
        "location_id": LOCATION_NUMBER,
        "available": 10,
        "updated_at": "2026-03-02T06:59:45-05:00",
        "admin_graphql_api_id": f"gid://shopify/InventoryLevel/{LOCATION_NUMBER}"
        f"?inventory_item_id={ITEM}",
    }
    body.update(change)
    return body


def test_a_level_update_at_our_location_is_a_quantity_report(channel: ShopifyChannel) -> None:
    know_item(channel)
    assert delivered(channel, "inventory_levels/update", level()) == [
        QuantityObserved("MUG-1", 10, datetime(2026, 3, 2, 11, 59, 45, tzinfo=UTC))
    ]


def test_the_item_is_found_after_the_catalog_was_replaced(channel: ShopifyChannel) -> None:
    know_item(channel, "MUG-1")
    assert [e.sku for e in delivered(channel, "inventory_levels/update", level())] == ["MUG-1"]  # type: ignore[attr-defined]
    # A new listing read gives the item to another SKU: the reverse index follows.
    channel.catalog.ids.clear()
    know_item(channel, "MUG-1-NEW")
    assert [e.sku for e in delivered(channel, "inventory_levels/update", level())] == [  # type: ignore[attr-defined]
        "MUG-1-NEW"
    ]


def test_a_level_update_elsewhere_or_unknown_yields_nothing(channel: ShopifyChannel) -> None:
    assert delivered(channel, "inventory_levels/update", level()) == []  # item never read
    know_item(channel)
    assert delivered(channel, "inventory_levels/update", level(location_id=24826418)) == []
    assert delivered(channel, "inventory_levels/update", level(available=None)) == []  # untracked


def test_a_level_update_before_the_location_is_known_yields_nothing(
    http: httpx.AsyncClient, clock: ManualClock
) -> None:
    channel = make_channel(http, clock, FakeSleep(clock), location_id=None)
    know_item(channel)
    assert delivered(channel, "inventory_levels/update", level()) == []


def test_a_stale_level_update_still_reports_with_its_own_time(
    channel: ShopifyChannel, clock: ManualClock
) -> None:
    """The daemon orders quantity reports by updated_at, so a late retry cannot roll back."""
    know_item(channel)
    raw = json.dumps(level(updated_at="2026-03-02T09:00:00Z")).encode()
    old = clock.now() - timedelta(hours=3)
    delivery = channel.verify_webhook(
        headers(raw, topic="inventory_levels/update", triggered=old), raw
    )
    assert envelope_of(delivery)["stale"] is True
    assert channel.parse_webhook(delivery) == [
        QuantityObserved("MUG-1", 10, datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"available": "10"}, "available is not an integer"),
        ({"inventory_item_id": None}, "inventory_item_id is not a numeric id"),
        ({"location_id": 1.5}, "location_id is not a numeric id"),
        ({"updated_at": None}, "none of updated_at"),
    ],
)
def test_a_malformed_level_update_is_a_value_error(
    channel: ShopifyChannel, change: dict[str, object], error: str
) -> None:
    know_item(channel)
    with pytest.raises(ValueError, match=error):
        delivered(channel, "inventory_levels/update", level(**change))
