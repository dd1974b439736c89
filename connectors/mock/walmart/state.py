"""State of one mock Walmart seller account: the simulated market and what Walmart keeps on it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from connectors.mock.kit.backend import MockBackend
from connectors.mock.kit.serving import Runtime
from connectors.mock.market import MockListing
from connectors.mock.walmart.const import EVENT_TYPES, PUBLISHED, RATE_LIMITS
from connectors.ratelimit import RateLimit


def _stable_digits(seed: str, digits: int) -> str:
    value = int(hashlib.sha256(seed.encode()).hexdigest()[:15], 16)
    return str(10 ** (digits - 1) + value % (9 * 10 ** (digits - 1)))


@dataclass
class ItemMeta:
    """What Walmart holds for an offer beyond price and quantity."""

    item_id: str
    wpid: str
    gtin: str
    product_name: str
    reference_price: Decimal  # the "reasonable price" anchor of guide §2.8
    product_type: str = "Mugs"
    published_status: str = PUBLISHED
    reasons: list[str] = field(default_factory=list)
    lifecycle_status: str = "ACTIVE"
    unpublished_at: datetime | None = None
    price_stamp: float = float("-inf")  # creation time of the price update in force (monotonic)


@dataclass
class Feed:
    """A submitted feed and its processing timeline (on the state's clock)."""

    feed_id: str
    feed_type: str
    created: datetime
    created_mono: float
    items: list[Any]  # the feed's item array, as parsed (validated one by one at processing)
    ship_node: str | None = None
    status: str = "RECEIVED"
    error: str | None = None  # a file Walmart took but cannot read: the feed ends in ERROR
    modified: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)  # itemIngestionStatus entries


@dataclass
class Subscription:
    """One webhook subscription (notifications.json ``SubscriptionResponseDTORecord``)."""

    subscription_id: str
    event_type: str
    event_version: str
    resource_name: str
    event_url: str
    status: str = "ACTIVE"
    auth: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class SentEvent:
    """One event pushed to a subscription's URL (for tests and ``/_mock/state``)."""

    event_type: str
    event_id: str
    sku: str
    url: str
    status: int | None  # HTTP status of the last attempt; None if it never got an answer
    attempts: int
    body: bytes
    headers: dict[str, str]


@dataclass
class PurchaseOrder:
    """One purchase order as ``GET /v3/orders`` lists it (``document``) and when it changed."""

    document: dict[str, Any]
    created: datetime
    modified: datetime
    ship_node_type: str = "SellerFulfilled"


@dataclass
class WalmartMockState(MockBackend):
    """Everything one mock Walmart server knows: credentials, offers, feeds, webhooks, faults.

    Seeded from a catalogue (``from_catalog``), ``fulfillment:<channel>`` = ``WFS`` marks a
    Walmart-fulfilled item (seller inventory writes refused); the seeded price is each item's
    reference price and ``title`` its product name.
    """

    default_channel: ClassVar[str] = "walmart"

    partner_id: str = "10001234567"
    seller_name: str = "My Store"
    client_id: str = "mock-walmart-client-id"
    client_secret: str = "mock-walmart-client-secret"  # noqa: S105 - a mock's test secret
    token_ttl_s: int = 900  # guide §2.1: 15 minutes
    feed_processing_s: float = 300.0  # RECEIVED -> INPROGRESS at half, PROCESSED at the end
    ship_node: str = "10000003527"  # the seller's one fulfillment node
    rate_limits: dict[str, RateLimit] = field(default_factory=lambda: dict(RATE_LIMITS))
    error_envelope: str = "errors"  # "errors" | "errors.error" | "error" (see wire.error_body)
    # A feed file that is not JSON or lacks the envelope: a 400 at submission (default), or
    # accepted and ending in feedStatus ERROR with feed-level ingestionErrors (True).
    bad_feed_file_as_error_status: bool = False
    # Reasonable-price band around each item's reference price (guide §2.8: formula unpublished).
    reasonable_low: Decimal = Decimal("0.5")
    reasonable_high: Decimal = Decimal("2.0")
    own_shipping: Decimal = Decimal("0.00")
    webhook_url: str | None = None  # when set, every event type is subscribed at start-up (HMAC)
    webhook_secret: str = "mock-walmart-webhook-secret"  # noqa: S105 - their HMAC clientSecret
    webhook_attempts: int = 3  # guide §2.5: "3 attempts total" (supplier docs)
    webhook_retry_s: float = 5.0
    webhook_timeout_s: float = 10.0
    notify_interval_s: float | None = None  # competitors move + BUY_BOX_CHANGED periodically
    # Real-time period of the ticker (feeds, periodic pushes); None: tests call ``app.tick``.
    ticker_s: float | None = 0.25
    buy_box_on_writes: bool = True  # a price change makes competitors react (maybe BUY_BOX_CHANGED)
    items: dict[str, ItemMeta] = field(default_factory=dict)
    feeds: dict[str, Feed] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    events: list[SentEvent] = field(default_factory=list)
    orders: int = 0
    purchase_orders: dict[str, PurchaseOrder] = field(default_factory=dict)  # by purchaseOrderId

    def __post_init__(self) -> None:
        for listing in self.market.listings.values():
            self.meta_of(listing)
        if self.webhook_url:
            self.subscribe_all(self.webhook_url)

    def meta_of(self, listing: MockListing) -> ItemMeta:
        """Walmart-side details of ``listing`` (created on first use, ids stable per SKU)."""
        meta = self.items.get(listing.sku)
        if meta is None:
            given = listing.external_id
            item_id = given if given.isdigit() else _stable_digits(f"item:{listing.sku}", 9)
            meta = self.items[listing.sku] = ItemMeta(
                item_id=item_id,
                wpid=hashlib.sha256(f"wpid:{listing.sku}".encode()).hexdigest()[:12].upper(),
                gtin="00" + _stable_digits(f"gtin:{listing.sku}", 12),
                product_name=self.market.rows.get(listing.sku, {}).get("title") or listing.sku,
                reference_price=listing.price,
            )
        return meta

    def issue_token(self) -> str:
        """Mint an access token valid for ``token_ttl_s`` on the state's clock."""
        return self.mint("eyJraWQiOi" + secrets.token_urlsafe(48))

    def new_feed_id(self) -> str:
        """Feed ids look like Walmart's: 32 hex digits, ``@``, a short base64 tag."""
        return f"{self.new_uuid().hex.upper()}@AVMBAgA"

    def at(self, mono: float) -> datetime:
        """The wall time of a monotonic reading (the state's clock drives both)."""
        return self.clock.now() + timedelta(seconds=mono - self.clock.monotonic())

    def subscribe_all(self, url: str) -> None:
        """Subscribe ``url`` to every event type, HMAC-signed with ``webhook_secret``."""
        auth = {"authMethod": "HMAC", "clientSecret": self.webhook_secret}
        for event_type, (resource, version, _) in EVENT_TYPES.items():
            sub_id = str(self.new_uuid())
            self.subscriptions[sub_id] = Subscription(
                sub_id, event_type, version, resource, url, "ACTIVE", dict(auth)
            )


STATE_KEY = web.AppKey("walmart_mock_state", WalmartMockState)
RUNTIME_KEY = web.AppKey("walmart_mock_runtime", Runtime)
