"""Webhooks: HMAC (timestamped and body), Basic auth, dedupe/topic, and event parsing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from jsonschema import Draft7Validator

from connectors.base import ResolvesEvents
from connectors.mock.walmart.events import EVENT_SCHEMAS
from connectors.walmart import WalmartChannel
from connectors.walmart.webhooks import sign_timestamped
from domain.clock import ManualClock
from domain.errors import WebhookAuthError, WebhookError
from domain.events import OfferChanged, OrderEvent, OrderLine, OrderStatus, WebhookDelivery
from domain.offers import CompetitorOffer
from tests.connectors.walmart_fixtures import (
    BASIC_PASSWORD,
    BASIC_USER,
    SELLER,
    WEBHOOK_SECRET,
    FakeSleep,
    channel,
)

PATH = "/webhooks/walmart-us"
EVENT_ID = "42c2b910-bd37-11ea-89ab-0242ac120002"

BUY_BOX: dict[str, Any] = {
    "source": {
        "eventType": "BUY_BOX_CHANGED",
        "eventTime": "2026-03-02T11:58:42.913Z",
        "eventId": EVENT_ID,
    },
    "payload": {
        "partnerId": SELLER,
        "itemInfo": {
            "itemId": "771087594",
            "itemName": "Blue mug",
            "category": "Kitchen",
            "productType": "Mugs",
            "brand": "Acme",
            "sku": "MUG-BLUE-12",
            "itemCondition": "New",
            "totalNumberOfOffers": 4,
        },
        "offer": {
            "currentOffer": {
                "sellerName": "My Store",
                "sellerOfferPrice": 24.99,
                "sellerShippingSpeed": "3-day",
                "sellerShippingPrice": 0.0,
                "proSellerBadge": False,
                "isWFS": False,
            },
            "winningOffer": {
                "sellerName": "Other Store",
                "sellerOfferPrice": 23.49,
                "sellerShippingSpeed": "2-day",
                "sellerShippingPrice": 1.0,
                "proSellerBadge": True,
                "isWFS": True,
            },
            "offers": [
                {
                    "partnerId": "10009999999",
                    "sellerName": "Other Store",
                    "sellerOfferPrice": 23.49,
                    "sellerShippingSpeed": "2-day",
                    "sellerShippingPrice": 1.0,
                    "isWFS": True,
                },
                {
                    "partnerId": SELLER,
                    "sellerName": "My Store",
                    "sellerOfferPrice": 24.99,
                    "sellerShippingPrice": 0.0,
                },
                {
                    "sellerName": "Walmart.com",
                    "sellerOfferPrice": 26.0,
                    "sellerShippingPrice": 0.0,
                },
            ],
            "priceDifference": 1.50,
        },
    },
}

UNPUBLISHED: dict[str, Any] = {
    "source": {
        "eventType": "OFFER_UNPUBLISHED",
        "eventTime": "2026-03-02T11:00:00.000Z",
        "eventId": "04d34580-61d4-11ea-9e23-cd38810ff7cw",
    },
    "payload": {
        "partnerId": SELLER,
        "sku": "MUG-BLUE-12",
        "publishStatus": "UNPUBLISHED",
        "lifecycleStatus": "ACTIVE",
        "statusChangeReasons": {
            "REASONABLE_PRICE_NOT_SATISFIED": "Price is higher than the reasonable price"
        },
        "itemId": "771087594",
        "itemName": "Blue mug",
        "category": "Kitchen",
        "totalNumberOfOffers": 4,
        "sellerOfferPrice": 89.99,
        "sellerShippingPrice": 5.0,
        "referencePrice": 24.5,
        "referencePriceURL": "https://www.walmart.com/ip/771087594",
    },
}


def po(event: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "source": {
            "eventType": event,
            "eventTime": "2026-03-02T11:30:00.000Z",
            "eventId": f"{event}-evt-1",
        },
        "payload": {
            "partnerId": SELLER,
            "purchaseOrderId": "108828697812345",
            "customerOrderId": "200012345678",
            "orderDate": "2026-03-02T11:29:00.000Z",
            "estimatedDeliveryDate": "2026-03-05T00:00:00.000Z",
            "estimatedShipDate": "2026-03-03T00:00:00.000Z",
            "orderLines": lines,
        },
    }


def line(number: str, sku: str, quantity: str, node: str = "SellerFulfilled") -> dict[str, Any]:
    return {
        "lineNumber": number,
        "sku": sku,
        "productName": "Mug",
        "quantity": {"unitOfMeasure": "EACH", "measurementValue": quantity},
        "status": "CREATED",
        "statusDate": "2026-03-02T11:29:30.000Z",
        "shippingProgramType": "TWO_DAY",
        "shippingMethod": "Value",
        "shipNodeType": node,
    }


@pytest.fixture
def walmart(clock: ManualClock) -> WalmartChannel:
    return channel(httpx.AsyncClient(), clock, FakeSleep(clock))


def raw(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def signed(clock: ManualClock, payload: bytes, age_s: int = 0, path: str = PATH) -> dict[str, str]:
    stamp = str(int(clock.now().timestamp()) - age_s)
    return {
        "WM_SEC.TIMESTAMP": stamp,
        "WM_SEC.SIGNATURE": sign_timestamped(WEBHOOK_SECRET, path, stamp, payload),
        "Content-Type": "application/json",
    }


def test_timestamped_hmac_accepts_a_fresh_delivery(
    walmart: WalmartChannel, clock: ManualClock
) -> None:
    payload = raw(BUY_BOX)
    delivery = walmart.verify_webhook(signed(clock, payload, age_s=299), payload)
    assert delivery == WebhookDelivery(EVENT_ID, "BUY_BOX_CHANGED", payload.decode())


def test_signature_is_the_documented_canonical_string(clock: ManualClock) -> None:
    payload = b'{"a":1}'
    text = f"POST\n{PATH}\n1700000000\n{hashlib.sha256(payload).hexdigest()}"
    digest = hmac.new(WEBHOOK_SECRET.encode(), text.encode(), hashlib.sha256).digest()
    assert sign_timestamped(WEBHOOK_SECRET, PATH, "1700000000", payload) == (
        base64.b64encode(digest).decode()
    )


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, b: ({**h, "WM_SEC.SIGNATURE": "AAAA"}, b), "signature mismatch"),
        (lambda h, b: (h, b.replace(b"24.99", b"2.49")), "signature mismatch"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "WM_SEC.TIMESTAMP"}, b), "missing"),
        (lambda h, b: ({"Content-Type": "application/json"}, b), "missing signature"),
        (lambda h, b: ({**h, "WM_SEC.SIGNATURE": "é"}, b), "signature mismatch"),
    ],
)
def test_bad_or_missing_signatures_are_refused(
    walmart: WalmartChannel, clock: ManualClock, mutate: Any, reason: str
) -> None:
    payload = raw(BUY_BOX)
    headers, body = mutate(signed(clock, payload), payload)
    with pytest.raises(WebhookAuthError, match=reason):
        walmart.verify_webhook(headers, body)


@pytest.mark.parametrize("age_s", [301, -301, 3600])
def test_stale_or_future_timestamps_are_refused(
    walmart: WalmartChannel, clock: ManualClock, age_s: int
) -> None:
    payload = raw(BUY_BOX)
    with pytest.raises(WebhookAuthError, match="stale"):
        walmart.verify_webhook(signed(clock, payload, age_s=age_s), payload)


def test_signed_path_follows_webhook_path(clock: ManualClock) -> None:
    walmart = channel(httpx.AsyncClient(), clock, FakeSleep(clock), webhook_path="/hooks/wm?x=1")
    payload = raw(BUY_BOX)
    assert walmart.verify_webhook(signed(clock, payload, path="/hooks/wm?x=1"), payload)
    with pytest.raises(WebhookAuthError):
        walmart.verify_webhook(signed(clock, payload), payload)


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_subscription_body_hmac(walmart: WalmartChannel, encoding: str) -> None:
    payload = raw(UNPUBLISHED)
    digest = hmac.new(WEBHOOK_SECRET.encode(), payload, hashlib.sha256).digest()
    value = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    delivery = walmart.verify_webhook({"Authorization": value}, payload)
    assert delivery.topic == "OFFER_UNPUBLISHED"
    with pytest.raises(WebhookAuthError):
        walmart.verify_webhook({"Authorization": value}, payload + b" ")


def test_basic_auth(walmart: WalmartChannel, clock: ManualClock) -> None:
    payload = raw(UNPUBLISHED)
    good = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
    bad = base64.b64encode(f"{BASIC_USER}:nope".encode()).decode()
    assert walmart.verify_webhook({"authorization": f"Basic {good}"}, payload).topic
    with pytest.raises(WebhookAuthError, match="basic credentials mismatch"):
        walmart.verify_webhook({"Authorization": f"Basic {bad}"}, payload)
    unconfigured = channel(
        httpx.AsyncClient(),
        clock,
        FakeSleep(clock),
        webhook_basic_user=None,
        webhook_basic_password=None,
    )
    with pytest.raises(WebhookAuthError, match="not configured"):
        unconfigured.verify_webhook({"Authorization": f"Basic {good}"}, payload)


def test_no_event_id_dedupes_on_the_body(walmart: WalmartChannel, clock: ManualClock) -> None:
    document = json.loads(json.dumps(BUY_BOX))
    del document["source"]["eventId"]
    payload = raw(document)
    delivery = walmart.verify_webhook(signed(clock, payload), payload)
    assert delivery.dedupe_key == "sha256:" + hashlib.sha256(payload).hexdigest()


def test_signed_non_json_is_a_webhook_error(walmart: WalmartChannel, clock: ManualClock) -> None:
    with pytest.raises(WebhookError):
        walmart.verify_webhook(signed(clock, b"not json"), b"not json")


def parse(walmart: WalmartChannel, clock: ManualClock, document: dict[str, Any]) -> list[Any]:
    payload = raw(document)
    return walmart.parse_webhook(walmart.verify_webhook(signed(clock, payload), payload))


def test_buy_box_changed_becomes_an_observation(
    walmart: WalmartChannel, clock: ManualClock
) -> None:
    [event] = parse(walmart, clock, BUY_BOX)
    assert isinstance(event, OfferChanged)
    observation = event.observation
    assert observation is not None
    assert event.sku == observation.sku == "MUG-BLUE-12"
    assert observation.observed_at == datetime(2026, 3, 2, 11, 58, 42, 913000, tzinfo=UTC)
    assert observation.source == "notification"
    assert observation.buy_box_price == Decimal("24.49")  # landed: 23.49 + 1.00 shipping
    assert observation.buy_box_seller == "10009999999"
    assert observation.offers == (
        CompetitorOffer(SELLER, Decimal("24.99"), Decimal("0.00"), "fbm", is_own=True),
        CompetitorOffer(
            "10009999999", Decimal("23.49"), Decimal("1.00"), "fba", is_buy_box_winner=True
        ),
        CompetitorOffer("Walmart.com", Decimal("26.00"), Decimal("0.00"), "retail"),
    )


def test_buy_box_we_hold_without_an_offer_list(walmart: WalmartChannel, clock: ManualClock) -> None:
    document = json.loads(json.dumps(BUY_BOX))
    offer = document["payload"]["offer"]
    del offer["offers"]
    offer["winningOffer"] = dict(offer["currentOffer"])
    [event] = parse(walmart, clock, document)
    observation = event.observation
    assert observation.buy_box_seller == SELLER
    assert observation.offers == (
        CompetitorOffer(
            SELLER, Decimal("24.99"), Decimal("0.00"), "fbm", is_buy_box_winner=True, is_own=True
        ),
    )


def test_reasonable_price_unpublish_carries_the_reference_price(
    walmart: WalmartChannel, clock: ManualClock
) -> None:
    [event] = parse(walmart, clock, UNPUBLISHED)
    assert isinstance(event, OfferChanged)
    assert event.sku == "MUG-BLUE-12"
    observation = event.observation
    assert observation.reference_price == Decimal("24.50")
    assert observation.source == "OFFER_UNPUBLISHED"  # how `explain` names the reference
    assert observation.offers == (
        CompetitorOffer(SELLER, Decimal("89.99"), Decimal("5.00"), "fbm", is_own=True),
    )


def test_other_unpublish_reasons_are_ignored(walmart: WalmartChannel, clock: ManualClock) -> None:
    document = json.loads(json.dumps(UNPUBLISHED))
    document["payload"]["statusChangeReasons"] = {"END_DATE": "end date passed"}
    assert parse(walmart, clock, document) == []


def test_po_created_places_each_seller_fulfilled_line(
    walmart: WalmartChannel, clock: ManualClock
) -> None:
    document = po(
        "PO_CREATED",
        [line("1", "MUG-1", "2"), line("2", "MUG-2", "1"), line("3", "WFS-1", "4", "WFSFulfilled")],
    )
    at = datetime(2026, 3, 2, 11, 29, 30, tzinfo=UTC)
    assert parse(walmart, clock, document) == [
        OrderEvent("108828697812345:1", OrderStatus.PLACED, (OrderLine("MUG-1", 2),), at),
        OrderEvent("108828697812345:2", OrderStatus.PLACED, (OrderLine("MUG-2", 1),), at),
    ]


def test_po_events_carry_sku_and_units_as_walmart_documents_them(
    walmart: WalmartChannel, clock: ManualClock
) -> None:
    """Walmart publishes no JSON schema for event payloads (notifications.json is the
    subscription API); the PO events' documented shape (EVENT_SCHEMAS, from the event pages:
    ``orderLines[]`` with ``sku`` and ``quantity.measurementValue``, a numeric string) holds
    everything stock needs, so no order read is made: the connector has no ``resolve_events``."""
    for event in ("PO_CREATED", "PO_LINE_AUTOCANCELLED"):
        document = po(event, [line("1", "MUG-1", "3")])
        # The auto-cancel page lists the same fields as PO_CREATED (plus cancellationReason).
        Draft7Validator(EVENT_SCHEMAS["PO_CREATED"]).validate(document)
        [parsed] = parse(walmart, clock, document)
        assert isinstance(parsed, OrderEvent)
        assert parsed.lines == (OrderLine("MUG-1", 3),)
    assert not isinstance(walmart, ResolvesEvents)


def test_auto_cancelled_line_gives_back_that_line(
    walmart: WalmartChannel, clock: ManualClock
) -> None:
    document = po("PO_LINE_AUTOCANCELLED", [line("2", "MUG-2", "1")])
    [event] = parse(walmart, clock, document)
    assert event.order_id == "108828697812345:2"
    assert event.status is OrderStatus.CANCELLED
    assert event.lines == (OrderLine("MUG-2", 1),)


def test_malformed_and_unknown_payloads(walmart: WalmartChannel, clock: ManualClock) -> None:
    report = {"source": {"eventType": "REPORT_STATUS", "eventId": "r1"}, "payload": {}}
    assert parse(walmart, clock, report) == []
    broken = po("PO_CREATED", [{"lineNumber": "1", "sku": "A"}])
    with pytest.raises(ValueError, match="without sku"):
        parse(walmart, clock, broken)
    with pytest.raises(ValueError, match="not a JSON object"):
        walmart.parse_webhook(WebhookDelivery("x", "BUY_BOX_CHANGED", "[1]"))
