"""Forwarded SP-API notifications: signature, dedupe key and topic, and both envelopes parsed."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest
import respx

from connectors.amazon import AmazonChannel
from connectors.specs import load_spec
from domain.clock import ManualClock
from domain.errors import WebhookAuthError, WebhookError
from domain.events import OfferChanged, OrderEvent, OrderLine, WebhookDelivery
from domain.offers import CompetitorOffer
from tests.connectors.amazon_fixtures import (
    API,
    MARKET,
    SELLER,
    WEBHOOK_SECRET,
    FakeSleep,
    channel,
    token_route,
)
from tests.connectors.test_amazon_orders import document as order_document
from tests.connectors.test_amazon_orders import items as order_items

ASIN = "B07N4M94X4"


def any_offer_changed(asin: str = ASIN, market: str = MARKET) -> dict[str, Any]:
    """The schema's own example, retargeted at our listing, plus our offer and a winner flag."""
    doc = copy.deepcopy(load_spec("amazon", "AnyOfferChangedNotification.json")["examples"][0])
    body = doc["Payload"]["AnyOfferChangedNotification"]
    body["SellerId"] = SELLER
    body["OfferChangeTrigger"].update(ASIN=asin, MarketplaceId=market)
    competitor = body["Offers"][0]
    competitor.update(SellerId="A2COMPETITOR", IsBuyBoxWinner=True)
    competitor["ListingPrice"]["Amount"] = Decimal("23.49")
    competitor["Shipping"]["Amount"] = Decimal("0.0")
    ours = copy.deepcopy(competitor)
    ours.update(SellerId=SELLER, IsFulfilledByAmazon=False, IsBuyBoxWinner=False)
    ours["ListingPrice"]["Amount"] = Decimal("24.99")
    ours["Shipping"]["Amount"] = Decimal("4.49")
    body["Offers"].append(ours)
    return doc


def pricing_health(asin: str = ASIN) -> dict[str, Any]:
    doc = copy.deepcopy(load_spec("amazon", "PricingHealthNotification.json")["examples"][0])
    doc["payload"]["sellerId"] = SELLER
    doc["payload"]["offerChangeTrigger"]["asin"] = asin
    return doc


def encode(document: dict[str, Any]) -> bytes:
    """JSON with Decimals written as numbers (what the forwarder relays)."""
    return json.dumps(document, default=lambda d: float(d)).encode()


def signed(body: bytes, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    return {"X-Repricerd-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def test_sample_notifications_validate_against_amazons_schemas() -> None:
    for name, document in (
        ("AnyOfferChangedNotification.json", any_offer_changed()),
        ("PricingHealthNotification.json", pricing_health()),
    ):
        jsonschema.validate(json.loads(encode(document)), load_spec("amazon", name))


async def test_verify_good_signature_gives_dedupe_key_and_topic(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with httpx.AsyncClient() as http:
        amazon = channel(http, clock, sleep)
        offer_body = encode(any_offer_changed())
        health_body = encode(pricing_health())
        aoc = amazon.verify_webhook(signed(offer_body), offer_body)
        # Header names are case-insensitive on the wire.
        health = amazon.verify_webhook(
            {"x-repricerd-signature": signed(health_body)["X-Repricerd-Signature"].upper()},
            health_body,
        )
    assert (aoc.dedupe_key, aoc.topic) == (
        "d0e9e693-c3ad-4373-979f-ed4ec98dd746",
        "ANY_OFFER_CHANGED",
    )
    assert aoc.payload == offer_body.decode()
    assert (health.dedupe_key, health.topic) == (
        "23ae41cd-3537-4676-af46-6ee9abf8802e",
        "PRICING_HEALTH",
    )


@pytest.mark.parametrize(
    ("headers", "secret"),
    [
        ({}, WEBHOOK_SECRET),  # no header
        ({"X-Repricerd-Signature": "00" * 32}, WEBHOOK_SECRET),  # wrong
        ({"X-Repricerd-Signature": "é"}, WEBHOOK_SECRET),  # not even hex
        ({"X-Repricerd-Signature": "whatever"}, None),  # no secret configured
    ],
)
async def test_bad_or_missing_signature_is_refused(
    clock: ManualClock, sleep: FakeSleep, headers: dict[str, str], secret: str | None
) -> None:
    async with httpx.AsyncClient() as http:
        amazon = channel(http, clock, sleep, webhook_secret=secret)
        with pytest.raises(WebhookAuthError):
            amazon.verify_webhook(headers, encode(any_offer_changed()))


async def test_signed_body_that_is_not_json_is_refused(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with httpx.AsyncClient() as http:
        amazon = channel(http, clock, sleep)
        with pytest.raises(WebhookError):
            amazon.verify_webhook(signed(b"not json"), b"not json")


async def listed(http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep) -> AmazonChannel:
    """A channel that has seen two SKUs of ASIN and one other listing."""

    def entry(sku: str, asin: str) -> dict[str, Any]:
        return {
            "sku": sku,
            "summaries": [{"marketplaceId": MARKET, "asin": asin, "productType": "KITCHEN"}],
            "fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": 1}],
        }

    page = {"numberOfResults": 3, "items": [entry("MUG-1", ASIN), entry("MUG-1-B", ASIN),
                                            entry("OTHER", "B000000000")]}  # fmt: skip
    with respx.mock() as router:
        token_route(router)
        router.get(f"{API}/listings/2021-08-01/items/{SELLER}").mock(
            return_value=httpx.Response(200, json=page)
        )
        amazon = channel(http, clock, sleep)
        await amazon.fetch_listings()
    return amazon


async def test_any_offer_changed_becomes_an_observation_per_sku(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with httpx.AsyncClient() as http:
        amazon = await listed(http, clock, sleep)
    events = amazon.parse_webhook(
        WebhookDelivery("n-1", "ANY_OFFER_CHANGED", encode(any_offer_changed()).decode())
    )
    assert [e.sku for e in events] == ["MUG-1", "MUG-1-B"]
    event = events[0]
    assert isinstance(event, OfferChanged)
    assert event.observation is not None
    obs = event.observation
    assert obs.source == "notification"
    assert obs.observed_at == datetime(2020, 7, 13, 19, 42, 4, 284000, tzinfo=UTC)
    assert obs.buy_box_price == Decimal("10.00")  # Summary.BuyBoxPrices, condition new
    assert obs.buy_box_seller == "A2COMPETITOR"
    assert obs.reference_price == Decimal("22.00")  # Summary.CompetitivePriceThreshold
    assert obs.offers == (
        CompetitorOffer("A2COMPETITOR", Decimal("23.49"), Decimal("0.00"), "fba", 10, 9,
                        is_buy_box_winner=True),
        CompetitorOffer(SELLER, Decimal("24.99"), Decimal("4.49"), "fbm", 10, 9, is_own=True),
    )  # fmt: skip


async def test_pricing_health_carries_the_reference_price(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with httpx.AsyncClient() as http:
        amazon = await listed(http, clock, sleep)
    (event,) = [
        e
        for e in amazon.parse_webhook(
            WebhookDelivery("n-2", "PRICING_HEALTH", encode(pricing_health()).decode())
        )
        if e.sku == "MUG-1"
    ]
    obs = event.observation
    assert obs is not None
    assert obs.reference_price == Decimal("8000.00")  # referencePrice.competitivePriceThreshold
    assert obs.buy_box_price == Decimal("8188.72")
    assert obs.offers == (
        CompetitorOffer(SELLER, Decimal("8184.23"), Decimal("4.49"), "fbm", is_own=True),
    )


async def test_unknown_asin_other_marketplace_and_other_topics_yield_nothing(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with httpx.AsyncClient() as http:
        amazon = await listed(http, clock, sleep)

    def parse(topic: str, document: dict[str, Any]) -> list[Any]:
        return amazon.parse_webhook(WebhookDelivery("n", topic, encode(document).decode()))

    assert parse("ANY_OFFER_CHANGED", any_offer_changed(asin="B0UNKNOWN0")) == []
    assert parse("ANY_OFFER_CHANGED", any_offer_changed(market="A1F83G8C2ARO7P")) == []
    topic = "LISTINGS_ITEM_STATUS_CHANGE"
    assert parse(topic, {"NotificationType": topic}) == []
    # ORDER_CHANGE is parsed now (tests/connectors/test_amazon_orders.py): an empty one is bad.
    with pytest.raises(ValueError, match="ORDER_CHANGE without"):
        parse("ORDER_CHANGE", {"NotificationType": "ORDER_CHANGE"})
    with pytest.raises(ValueError, match="Expecting property name"):
        amazon.parse_webhook(WebhookDelivery("n", "ANY_OFFER_CHANGED", "{not json"))
    with pytest.raises(ValueError, match="ANY_OFFER_CHANGED without"):
        parse("ANY_OFFER_CHANGED", {"Payload": {}})


async def test_envelopes_are_unwrapped_to_the_notification_they_carry(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """SQS ``Body``, an ``aws:sqs`` record's ``body``, SNS ``Message`` (also inside SQS) and an
    EventBridge ``detail`` all give the notification's own id, type and JSON; anything else is
    topic ``unknown``, and parsing it raises with the fix (the inbox marks it invalid)."""
    document = pricing_health()
    text = encode(document).decode()
    nid = "23ae41cd-3537-4676-af46-6ee9abf8802e"
    source = "aws.partner/sellingpartnerapi.amazon.com/123456789012/amzn1.sellerapps.app.x"
    bridge = {"version": "0", "id": "e-1", "detail-type": "PRICING_HEALTH", "source": source}
    sns = {"Type": "Notification", "MessageId": "m-1", "Message": text}
    wrapped = [
        {"MessageId": "q-1", "ReceiptHandle": "r", "Body": text},
        {"messageId": "q-2", "eventSource": "aws:sqs", "body": text},
        sns,
        {"MessageId": "q-3", "Body": json.dumps(sns)},
    ]
    async with httpx.AsyncClient() as http:
        amazon = channel(http, clock, sleep)
        for envelope in wrapped:
            raw = json.dumps(envelope).encode()
            delivery = amazon.verify_webhook(signed(raw), raw)
            assert (delivery.dedupe_key, delivery.topic, delivery.payload) == (
                nid,
                "PRICING_HEALTH",
                text,
            )
        raw = json.dumps({**bridge, "detail": json.loads(text)}).encode()
        delivery = amazon.verify_webhook(signed(raw), raw)
        assert (delivery.dedupe_key, delivery.topic) == (nid, "PRICING_HEALTH")
        assert json.loads(delivery.payload) == json.loads(text)
        # An EventBridge-wrapped ORDER_CHANGE parses to what the document itself gives.
        order = order_document(OrderItems=order_items(("MUG-1", 2)))
        raw = json.dumps({**bridge, "detail-type": "ORDER_CHANGE", "detail": order}).encode()
        delivery = amazon.verify_webhook(signed(raw), raw)
        plain = json.dumps(order).encode()
        [event] = amazon.parse_webhook(delivery)
        assert [event] == amazon.parse_webhook(amazon.verify_webhook(signed(plain), plain))
        assert isinstance(event, OrderEvent)
        assert event.lines == (OrderLine("MUG-1", 2),)
        # A detail without its own type is typed by detail-type.
        bare = {k: v for k, v in json.loads(text).items() if k != "notificationType"}
        raw = json.dumps({**bridge, "detail": bare}).encode()
        assert amazon.verify_webhook(signed(raw), raw).topic == "PRICING_HEALTH"
        for other in (
            {**bridge, "source": "aws.events", "detail": json.loads(text)},  # not SP-API's
            {"Type": "SubscriptionConfirmation", "Message": text},
            {"Body": "not json"},
            {"message": text},
            [json.loads(text)],
        ):
            raw = json.dumps(other).encode()
            delivery = amazon.verify_webhook(signed(raw), raw)
            assert delivery.topic == "unknown"
            assert delivery.dedupe_key == "sha256:" + hashlib.sha256(raw).hexdigest()
            with pytest.raises(ValueError, match="forward the SQS message body"):
                amazon.parse_webhook(delivery)
