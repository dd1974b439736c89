"""State of one mock eBay seller account and application over the simulated market."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from connectors.mock.ebay.const import DAILY_QUOTAS, RATE_LIMITS, USER_SCOPES
from connectors.mock.kit.backend import MockBackend
from connectors.ratelimit import RateLimit

USER = "user"
APPLICATION = "application"
# The demo's credentials (SecretStr is immutable: one default serves every state).
CLIENT_SECRET = SecretStr("PRD-mock-client-secret")
REFRESH_TOKEN = SecretStr("v^1.1#i^1#p^3#r^1#I^3#f^0#t^Ul4xMF8mock-refresh")
VERIFICATION_TOKEN = SecretStr("mock_verification_token_0123456789abcdef")


def stable_digits(count: int, *parts: str) -> str:
    """A deterministic decimal id of ``count`` digits (no leading zero) derived from ``parts``."""
    digest = int(hashlib.sha256(":".join(parts).encode()).hexdigest(), 16)
    low = 10 ** (count - 1)
    return str(low + digest % (9 * low))


@dataclass
class EbayOffer:
    """A published offer (one listing) of one inventory item on one marketplace."""

    offer_id: str
    sku: str
    listing_id: str
    marketplace_id: str = "EBAY_US"
    available_quantity: int = 0
    status: str = "PUBLISHED"  # PUBLISHED or UNPUBLISHED
    sold_quantity: int = 0


@dataclass
class EbayItem:
    """An inventory item record (the SKU); its price lives in the market listing."""

    sku: str
    title: str
    ship_to_quantity: int = 0
    gtin: str | None = None


@dataclass
class SentNotification:
    """One notification pushed to the target (for tests and ``/_mock/state``)."""

    topic: str
    notification_id: str
    body: bytes
    signature: str
    status: int | None = None  # what the target answered, None when delivery failed
    error: str | None = None

    def view(self) -> dict[str, Any]:
        """How control routes show it."""
        return {
            "topic": self.topic,
            "notificationId": self.notification_id,
            "status": self.status,
            "error": self.error,
        }


@dataclass
class SoldOrder:
    """One checked-out order as getOrders lists it (``document``) and its change times."""

    document: dict[str, Any]
    created: datetime
    modified: datetime


@dataclass
class EbayMockState(MockBackend):
    """Everything one mock eBay server knows; the aiohttp app only reads and mutates this.

    Seeded from a catalogue (``from_catalog``), ``id:<channel>`` is the offerId.
    """

    default_channel: ClassVar[str] = "ebay-demo"

    client_id: str = "MockSell-repricer-PRD-1a2b3c4d5-6e7f8a9b"
    client_secret: SecretStr = CLIENT_SECRET
    refresh_token: SecretStr = REFRESH_TOKEN
    refresh_scopes: frozenset[str] = USER_SCOPES
    seller_username: str = "repricerd_demo"
    seller_feedback_pct: str = "99.6"
    seller_feedback_score: int = 1843
    marketplace_id: str = "EBAY_US"
    token_ttl_s: int = 7200
    revisions_per_day: int = 250  # per listing per calendar day
    # eBay's out-of-stock control: with it a listing at quantity 0 stays (hidden); without it
    # quantity 0 is refused with 25004 (one 3p report; guide §3.2 marks it unconfirmed).
    out_of_stock_control: bool = True
    daily_quotas: dict[str, int] = field(default_factory=lambda: dict(DAILY_QUOTAS))
    # Quotas reset at Pacific midnight; eBay says "calendar day" for revisions without a zone,
    # so they count on the same day (the connector's assumption: ``connectors.ebay.budget``).
    time_zone: str = "America/Los_Angeles"
    rate_limits: dict[str, RateLimit] = field(default_factory=lambda: dict(RATE_LIMITS))
    notify_url: str | None = None  # the registered destination endpoint
    order_interval_s: float | None = None  # background buyers: one sale per interval (demo)
    verification_token: SecretStr = VERIFICATION_TOKEN
    items: dict[str, EbayItem] = field(default_factory=dict)
    offers: dict[str, EbayOffer] = field(default_factory=dict)  # offerId -> offer
    grants: dict[str, tuple[str, frozenset[str]]] = field(default_factory=dict)  # -> kind, scopes
    notifications: list[SentNotification] = field(default_factory=list)
    orders: int = 0
    sold: dict[str, SoldOrder] = field(default_factory=dict)  # orderId -> order (getOrders)
    _daily: dict[str, tuple[date, int]] = field(default_factory=dict, repr=False)
    _by_sku: dict[str, list[EbayOffer]] = field(default_factory=dict, repr=False)
    _indexed: int = field(default=-1, repr=False)

    def __post_init__(self) -> None:
        self.signing_key = ec.generate_private_key(ec.SECP256R1())
        self.public_key_id = secrets.token_hex(16)
        offered = {o.sku for o in self.offers.values()}
        for sku, listing in self.market.listings.items():
            row = self.market.rows.get(sku, {})
            gtin = (row.get("gtin") or "").strip() or None
            self.items.setdefault(
                sku, EbayItem(sku, row.get("title") or sku, listing.quantity, gtin)
            )
            if sku not in offered:
                digits = listing.external_id.isdigit()
                offer_id = listing.external_id if digits else stable_digits(11, "offer", sku)
                listing_id = stable_digits(12, "listing", sku)
                self.offers[offer_id] = EbayOffer(
                    offer_id, sku, listing_id, self.marketplace_id, listing.quantity
                )
        for sku in self.market.listings:
            self.sync_quantity(sku)

    def offers_of(self, sku: str) -> list[EbayOffer]:
        """The offers of ``sku``, by offerId."""
        if len(self.offers) != self._indexed:
            # Offers are only ever added (never re-keyed): re-index when the count moves, so a
            # 10,000-listing account does not scan every offer per bulk entry.
            index: dict[str, list[EbayOffer]] = {}
            for offer in self.offers.values():
                index.setdefault(offer.sku, []).append(offer)
            self._by_sku = {k: sorted(v, key=lambda o: o.offer_id) for k, v in index.items()}
            self._indexed = len(self.offers)
        return list(self._by_sku.get(sku, ()))

    def published(self, sku: str) -> list[EbayOffer]:
        """The live offers (listings) of ``sku``."""
        return [o for o in self.offers_of(sku) if o.status == "PUBLISHED"]

    def sync_quantity(self, sku: str) -> None:
        """Listing quantity = min(offer availableQuantity, ship-to-home quantity) (guide §3.2)."""
        listing, item = self.listing(sku), self.items.get(sku)
        if listing is not None and item is not None:
            offered = max((o.available_quantity for o in self.published(sku)), default=0)
            listing.quantity = max(0, min(offered, item.ship_to_quantity))

    def today(self, key: str, add: int = 0) -> int:
        """Add ``add`` to today's (Pacific day) count of ``key`` (``revisions:<listingId>``,
        ``quota:<api>``); return the count."""
        day = self.clock.now().astimezone(ZoneInfo(self.time_zone)).date()
        counted, count = self._daily.get(key, (day, 0))
        self._daily[key] = (day, (count if counted == day else 0) + add)
        return self._daily[key][1]

    def revisions_today(self, listing_id: str) -> int:
        """Revisions already applied to ``listing_id`` this (Pacific) day."""
        return self.today(f"revisions:{listing_id}")

    def revise(self, listing_id: str) -> None:
        """Count one revision of ``listing_id`` today."""
        self.today(f"revisions:{listing_id}", 1)

    def issue_token(self, kind: str, scopes: frozenset[str]) -> str:
        """Mint an access token valid for ``token_ttl_s`` on the state's clock."""
        now = self.clock.monotonic()
        for stale in [t for t, expiry in self.tokens.items() if expiry <= now]:
            del self.tokens[stale], self.grants[stale]  # it would answer like an unknown one
        flag = "p^3#r^0" if kind == USER else "p^1#r^0"
        token = self.mint(f"v^1.1#i^1#{flag}#I^3#f^0#t^" + secrets.token_urlsafe(48))
        self.grants[token] = (kind, scopes)
        return token
