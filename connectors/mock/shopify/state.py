"""State of one mock Shopify store: products and variants over the simulated market, inventory
levels per location, orders, idempotency records, tokens, the cost bucket, faults and counters."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import re
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from pydantic import SecretStr

from connectors.mock.faults import Faults
from connectors.mock.kit.backend import MockBackend, expire
from connectors.mock.market import CENT, MockListing, MockMarket
from connectors.mock.shopify.cost import STANDARD_PLAN, CostBucket
from domain.clock import Clock, SystemClock

API_VERSION = "2026-04"
GID_PREFIX = "gid://shopify/"
DEFAULT_LOCATION_GID = "gid://shopify/Location/124656943"


def gid(kind: str, number: int) -> str:
    """``gid://shopify/<kind>/<number>``."""
    return f"{GID_PREFIX}{kind}/{number}"


def gid_number(value: str, kind: str) -> int | None:
    """The numeric id of a GID of ``kind`` (None for anything else)."""
    prefix = f"{GID_PREFIX}{kind}/"
    if not value.startswith(prefix) or not value[len(prefix) :].isdigit():
        return None
    return int(value[len(prefix) :])


def level_gid(item_gid: str, location_gid: str) -> str:
    """An inventory level's GID: the location's number with the item's as a query string."""
    item, location = gid_number(item_gid, "InventoryItem"), gid_number(location_gid, "Location")
    return f"{GID_PREFIX}InventoryLevel/{location}?inventory_item_id={item}"


def _stable_number(*parts: str) -> int:
    # Shopify ids are 64-bit integers; 13 digits keep them realistic and exact in JSON doubles.
    digest = hashlib.sha256(":".join(parts).encode()).hexdigest()
    return 10**12 + int(digest[:15], 16) % (9 * 10**12)


@dataclass
class MockLocation:
    """A Shopify location (warehouse, shop) holding inventory levels."""

    typename: ClassVar[str] = "Location"
    gid: str
    name: str
    active: bool = True


@dataclass
class MockProduct:
    """A product grouping several variants."""

    typename: ClassVar[str] = "Product"
    gid: str
    title: str
    handle: str
    variant_gids: list[str]
    created_at: datetime
    updated_at: datetime


@dataclass
class MockVariant:
    """A product variant; its price and primary-location quantity live in the market listing."""

    typename: ClassVar[str] = "ProductVariant"
    gid: str
    sku: str
    title: str
    product_gid: str
    item_gid: str
    created_at: datetime
    updated_at: datetime
    compare_at_price: Decimal | None = None
    reported_price: Decimal | None = None  # set on the copy a dropped write answers with


@dataclass
class OrderLine:
    """One line of a simulated order."""

    typename: ClassVar[str] = "LineItem"
    line_id: int
    variant_gid: str
    sku: str
    quantity: int
    price: Decimal
    current_quantity: int = field(init=False)  # 0 once the order is cancelled

    def __post_init__(self) -> None:
        self.current_quantity = self.quantity

    @property
    def gid(self) -> str:
        """The line's GID."""
        return gid("LineItem", self.line_id)


@dataclass
class MockOrder:
    """A simulated shopper order (``POST /_mock/orders`` or the background shopper)."""

    typename: ClassVar[str] = "Order"
    order_id: int
    number: int
    lines: list[OrderLine]
    location_gid: str
    created_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None = None

    @property
    def gid(self) -> str:
        """The order's GID."""
        return gid("Order", self.order_id)


@dataclass
class Counters:
    """What the mock saw (``GET /_mock/state`` lists them all); effects are ``market.effects``."""

    calls: int = 0
    throttled: int = 0
    http_429: int = 0
    max_cost_exceeded: int = 0
    errors_injected: int = 0
    timeouts_injected: int = 0
    dropped_writes: int = 0
    token_grants: int = 0  # client-credentials tokens issued
    token_refusals: int = 0  # grants refused for wrong client credentials
    unauthorized: int = 0  # Admin API calls answered 401 (missing, unknown or expired token)
    operations: Counter[str] = field(default_factory=Counter)
    # Query-cost points requested up front and charged (actual cost) over every executed call.
    points_requested: int = 0
    points_actual: int = 0


@dataclass
class ShopifyMockState:
    """Everything one mock Shopify store knows; the aiohttp app only reads and mutates this."""

    market: MockMarket = field(default_factory=MockMarket)
    shop_domain: str = "mock-shop.myshopify.com"
    access_token: SecretStr = field(default_factory=lambda: SecretStr("shpat_mock_token"))
    webhook_secret: SecretStr = field(default_factory=lambda: SecretStr("mock_webhook_secret"))
    # A Dev Dashboard app installed on the shop: its credentials get ~24 h tokens (app.py).
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_ttl_s: int = 86399
    scopes: str = (
        "read_products,write_products,read_inventory,write_inventory,read_orders,read_locations"
    )
    webhook_url: str | None = None
    api_version: str = API_VERSION
    currency: str = "USD"
    locations: list[MockLocation] = field(
        default_factory=lambda: [MockLocation(DEFAULT_LOCATION_GID, "Main warehouse")]
    )
    # Cost bucket (guide §4.5): Standard plan restores 100 points/s; bucket size unconfirmed.
    maximum_available: float = STANDARD_PLAN.maximum_available
    restore_rate: float = STANDARD_PLAN.restore_rate
    max_query_cost: int = 1000
    # Opt-in fault: every Nth throttled answer (bucket or injected) is HTTP 429 + Retry-After with
    # the REST limiter's body instead of Shopify's documented 200 THROTTLED. 0 (default): never.
    throttle_429_every: int = 0
    faults: Faults = field(default_factory=Faults)
    clock: Clock = field(default_factory=SystemClock)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # Background shopper: orders per minute (0 disables it).
    shopper_orders_per_min: float = 0.0
    # Writes through the API fire products/update and inventory_levels/update webhooks.
    webhooks_on_writes: bool = True
    # Keep every executed call's root fields and variables in ``requests`` (tests read them).
    keep_requests: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    counters: Counters = field(default_factory=Counters)

    products: dict[str, MockProduct] = field(init=False, default_factory=dict)
    variants: dict[str, MockVariant] = field(init=False, default_factory=dict)
    bucket: CostBucket = field(init=False)
    # Available quantities at non-primary locations ((item gid, location gid) -> units).
    levels: dict[tuple[str, str], int] = field(init=False, default_factory=dict)
    committed: Counter[str] = field(init=False, default_factory=Counter)
    orders: dict[int, MockOrder] = field(init=False, default_factory=dict)
    adjustment_groups: int = field(init=False, default=0)
    # idempotency key -> (fingerprint of the request, payload answered the first time)
    idempotent: dict[str, tuple[str, dict[str, Any]]] = field(init=False, default_factory=dict)
    # issued client-credentials token -> monotonic expiry on ``clock``
    tokens: dict[str, float] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if not self.locations:
            raise ValueError("a shop needs at least one location")
        self.bucket = CostBucket(self.maximum_available, self.restore_rate, self.clock)
        now = self.clock.now()
        for sku in sorted(self.market.listings):
            self._add_variant(self.market.listings[sku], now)
        self._by_sku = {v.sku: v for v in self.variants.values()}
        self._by_item = {v.item_gid: v for v in self.variants.values()}

    def _add_variant(self, listing: MockListing, now: datetime) -> None:
        # SKUs sharing the part before their last '-' are variants of one product.
        stem = listing.sku.rsplit("-", 1)[0]
        product_gid = gid("Product", _stable_number("product", stem))
        title = (self.market.rows.get(listing.sku, {}).get("title") or "").strip() or listing.sku
        product = self.products.get(product_gid)
        if product is None:
            product_title = re.sub(r"\s*#\d+$", "", title) or stem
            handle = re.sub(r"[^a-z0-9]+", "-", product_title.lower()).strip("-")
            product = MockProduct(product_gid, product_title, handle, [], now, now)
            self.products[product_gid] = product
        external = listing.external_id.strip()
        if gid_number(external, "ProductVariant") is not None:
            variant_gid = external
        elif external.isdigit():
            variant_gid = gid("ProductVariant", int(external))
        else:
            variant_gid = gid("ProductVariant", _stable_number("variant", listing.sku))
        item_gid = gid("InventoryItem", _stable_number("item", variant_gid))
        self.variants[variant_gid] = MockVariant(
            variant_gid, listing.sku, title, product_gid, item_gid, now, now
        )
        product.variant_gids.append(variant_gid)

    @classmethod
    def from_catalog(
        cls,
        catalog: Path,
        *,
        channel: str = "shop-demo",
        currency: str = "USD",
        seed: int = 0,
        **options: Any,
    ) -> ShopifyMockState:
        """Seed a store from the catalog rows with an ``id:<channel>`` (prices as ``seed_market``,
        quantities from ``stock``)."""
        market, _ = MockBackend.seeded(catalog, channel, currency, competitors=0, seed=seed)
        options.setdefault("rng", random.Random(seed))
        return cls(market=market, currency=currency, **options)

    def variant_by_sku(self, sku: str) -> MockVariant | None:
        """The variant with this SKU."""
        return self._by_sku.get(sku)

    def variant_by_item(self, item_gid: str) -> MockVariant | None:
        """The variant whose inventory item this is."""
        return self._by_item.get(item_gid)

    def location(self, location_gid: str) -> MockLocation | None:
        """The location with this GID."""
        return next((loc for loc in self.locations if loc.gid == location_gid), None)

    def listing(self, variant: MockVariant) -> MockListing:
        """The market listing behind a variant (price and primary-location quantity)."""
        return self.market.listings[variant.sku]

    @property
    def primary_location(self) -> MockLocation:
        """The location whose available quantity is the market listing's quantity."""
        return self.locations[0]

    def available(self, variant: MockVariant, location_gid: str, name: str = "available") -> int:
        """Units ``available`` for sale at a location, ``committed`` to open orders (fulfilled
        from the primary location) or ``on_hand`` (both); 0 for other quantity names."""
        primary = location_gid == self.primary_location.gid
        if primary:
            available = self.listing(variant).quantity
        else:
            available = self.levels.get((variant.item_gid, location_gid), 0)
        committed = self.committed[variant.item_gid] if primary else 0
        quantities = {"available": available, "committed": committed}
        return {**quantities, "on_hand": available + committed}.get(name, 0)

    def set_available(self, variant: MockVariant, location_gid: str, quantity: int) -> None:
        """Set the available units at a location."""
        if location_gid == self.primary_location.gid:
            self.listing(variant).quantity = quantity
        else:
            self.levels[(variant.item_gid, location_gid)] = quantity

    def inventory_quantity(self, variant: MockVariant) -> int:
        """``ProductVariant.inventoryQuantity``: available units over the active locations."""
        return sum(self.available(variant, loc.gid) for loc in self.locations if loc.active)

    def issue_token(self) -> str:
        """Mint a ``shpat_`` token valid for ``token_ttl_s`` on the state's clock."""
        now = self.clock.monotonic()
        for stale in [t for t, expiry in self.tokens.items() if expiry <= now]:
            del self.tokens[stale]  # an expired token answers like an unknown one anyway
        token = "shpat_" + secrets.token_hex(16)
        self.tokens[token] = now + self.token_ttl_s
        self.counters.token_grants += 1
        return token

    def authorized(self, given: str) -> bool:
        """Whether ``given`` is the static token or a live issued one."""
        static = self.access_token.get_secret_value().encode()
        if hmac.compare_digest(given.encode("utf-8", "replace"), static):
            return True
        expiry = self.tokens.get(given)
        return expiry is not None and self.clock.monotonic() < expiry

    def expire_tokens(self) -> int:
        """Make every issued token expired (tests of the refresh path); return how many."""
        return expire(self.tokens, self.clock)

    def snapshot(self) -> dict[str, Any]:
        """``GET /_mock/state``: variants with price and quantity, counters and bucket."""
        variants = [
            {
                "id": variant.gid,
                "sku": variant.sku,
                "product_id": variant.product_gid,
                "inventory_item_id": variant.item_gid,
                "price": str(self.listing(variant).price.quantize(CENT)),
                "compare_at_price": money(variant.compare_at_price),
                "available": {loc.gid: self.available(variant, loc.gid) for loc in self.locations},
                "committed": self.committed[variant.item_gid],
                "inventory_quantity": self.inventory_quantity(variant),
            }
            for variant in sorted(self.variants.values(), key=lambda v: v.sku)
        ]
        counters = {
            **vars(self.counters),
            "operations": dict(self.counters.operations),
            "deliveries": dict(self.market.deliveries),
            "effects": dict(self.market.effects),
        }
        return {
            "shop": self.shop_domain,
            "api_version": self.api_version,
            "locations": [{"id": loc.gid, "name": loc.name} for loc in self.locations],
            "variants": variants,
            "orders": len(self.orders),
            "counters": counters,
            "throttle_status": self.bucket.status(),
        }


def money(value: Decimal | None) -> str | None:
    """A REST money string (``None`` stays ``None``)."""
    return None if value is None else str(value)
