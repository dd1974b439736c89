"""State of one mock SP-API seller account: the simulated market and what Amazon keeps around it."""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from connectors.mock.amazon.fba import FbaHistory
from connectors.mock.amazon.wire import operations
from connectors.mock.kit.backend import MockBackend
from connectors.mock.market import MockListing
from connectors.ratelimit import RateLimit
from domain.listings import Fulfillment


@dataclass
class ListingMeta:
    """What Amazon holds for a listing beyond price and quantity (attributes, bounds, dates)."""

    created: datetime | None = None
    updated: datetime | None = None
    # The last accepted attribute values, as sent (snake_case attribute JSON).
    attributes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    offer_deleted: bool = False


@dataclass
class FeedDocument:
    """A feed input or result document held in the mock's "S3"."""

    document_id: str
    content_type: str
    data: bytes | None = None
    compression: str | None = None  # "GZIP" for compressed result documents


@dataclass
class Feed:
    """A submitted feed and its processing timeline (on the state's clock)."""

    feed_id: str
    spec: dict[str, Any]  # the createFeed body: feedType, marketplaceIds, inputFeedDocumentId
    created: datetime
    created_mono: float
    status: str = "IN_QUEUE"
    started: datetime | None = None
    ended: datetime | None = None
    outcome: str | None = None  # DONE | FATAL, decided while IN_PROGRESS
    report_document_id: str | None = None


@dataclass
class SentNotification:
    """One notification pushed to the webhook target (for tests and ``/_mock/state``)."""

    notification_type: str
    notification_id: str
    sku: str
    status: int | None  # HTTP status the target answered, None if delivery failed
    body: dict[str, Any]


@dataclass
class MockOrder:
    """A shopper's order (``POST /_mock/orders``): one item, as Orders v0 serves it."""

    order_id: str
    item_id: str
    item: MockListing  # the listing as bought: SKU, ASIN, price, fulfillment
    quantity: int
    purchased: datetime
    updated: datetime
    status: str = "Unshipped"

    @property
    def fulfillment(self) -> str:
        """``AFN`` (fulfilled by Amazon) or ``MFN``."""
        return fulfillment_channel(self.item)


def fulfillment_channel(listing: MockListing) -> str:
    """``AFN`` for an FBA listing, else ``MFN``."""
    return "AFN" if listing.fulfillment is Fulfillment.MARKETPLACE else "MFN"


@dataclass
class AmazonMockState(MockBackend):
    """Everything one mock SP-API server knows: credentials, market, feeds, counters, faults.

    Amazon has no idempotency keys: ``applied`` counts writes per "sku|attribute|value".
    """

    default_channel: ClassVar[str] = "amazon"
    catalog_stock: ClassVar[bool] = False  # quantities start at 0 (the daemon's ledger sets them)

    seller_id: str = "A3DEMOSELLER"
    marketplace_id: str = "ATVPDKIKX0DER"
    client_id: str = "amzn1.application-oa2-client.mock"
    client_secret: str = "mock-client-secret"  # noqa: S105 - a mock's well-known test secret
    refresh_token: str = "Atzr|mock-refresh-token"  # noqa: S105
    application_id: str = "amzn1.sellerapps.app.mock-repricerd"
    token_ttl_s: int = 3600
    feed_processing_s: float = 2.0
    # Only these operations draw from the fault plan (None: every SP-API operation does).
    fault_operations: set[str] | None = None
    rate_limits: dict[str, RateLimit] = field(
        default_factory=lambda: {name: op.rate for name, op in operations().items()}
    )
    webhook_url: str | None = None
    # Base of presigned document URLs if clients reach the mock elsewhere (a published port).
    public_url: str | None = None
    webhook_secret: str = "mock-webhook-secret"  # noqa: S105
    notify_interval_s: float | None = None  # push ANY_OFFER_CHANGED periodically when set
    # Real-time period of the ticker (feeds, periodic pushes); None: tests call ``app.tick``.
    ticker_s: float | None = 0.25
    gzip_reports: bool = False  # serve processing reports GZIP-compressed
    # Amazon accepts a PATCH for a SKU it has no listing for (an offer without an item; see
    # amzn/selling-partner-api-docs#3748); "not_found" answers 404 instead, for stricter tests.
    unknown_sku_patch: str = "accept"
    # SKUs Amazon refuses to change (a restricted brand or category, say): every patch or feed
    # message for one is INVALID with code 90000900, so tests get one bad item in a batch.
    refused_skus: set[str] = field(default_factory=set)
    expired_token_code: str = "Unauthorized"  # noqa: S105 - guide §5: code unconfirmed
    own_rating_pct: int = 97
    own_rating_count: int = 1200
    meta: dict[str, ListingMeta] = field(default_factory=dict)
    documents: dict[str, FeedDocument] = field(default_factory=dict)
    feeds: dict[str, Feed] = field(default_factory=dict)
    failed: Counter[str] = field(default_factory=Counter)  # 500s sent (ERROR faults), per operation
    orphan_patches: Counter[str] = field(default_factory=Counter)  # accepted for unknown SKUs
    notifications: list[SentNotification] = field(default_factory=list)
    orders: dict[str, MockOrder] = field(default_factory=dict)  # by AmazonOrderId
    fba: FbaHistory = field(default_factory=FbaHistory)  # Reports API (reports.py)
    url_secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def __post_init__(self) -> None:
        # Seeded listings get distinct createdDates (a second apart, in catalogue order, ending
        # now), so createdDate windows page through them as they would on Amazon.
        now = self.clock.now()
        count = len(self.market.listings)
        for index, sku in enumerate(self.market.listings):
            created = now - timedelta(seconds=count - 1 - index)
            self.meta.setdefault(sku, ListingMeta(created=created, updated=created))

    @property
    def rate_limited_total(self) -> int:
        """All 429 answers sent (rate limit and THROTTLE faults)."""
        return sum(self.throttled.values())

    def listing_by_asin(self, asin: str) -> MockListing | None:
        """Our listing on ``asin`` (the market's external id), if any."""
        return next((x for x in self.market.listings.values() if x.external_id == asin), None)

    def meta_of(self, sku: str) -> ListingMeta:
        """Amazon-side details of ``sku`` (created on first use)."""
        if sku not in self.meta:
            self.meta[sku] = ListingMeta(created=self.clock.now(), updated=self.clock.now())
        return self.meta[sku]

    def touch(self, sku: str) -> None:
        """Record that ``sku`` changed now."""
        self.meta_of(sku).updated = self.clock.now()

    def issue_token(self, *, grantless: bool = False) -> str:
        """Mint an LWA access token valid for ``token_ttl_s``; a grantless one opens no route."""
        token = "Atza|" + secrets.token_urlsafe(48)
        return token if grantless else self.mint(token)

    def sign_url(self, kind: str, document_id: str, stamp: str) -> str:
        """The presigned-URL signature of one document URL (upload or download) issued at stamp."""
        message = f"{kind}:{document_id}:{stamp}".encode()
        return hashlib.sha256(self.url_secret + message).hexdigest()
