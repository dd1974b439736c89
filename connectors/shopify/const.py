"""Wire constants of the Shopify Admin GraphQL API (guide §4): version, headers, limits, costs."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from connectors.ratelimit import RateLimit

# Pinned quarterly version: 2026-04 makes changeFromQuantity and @idempotent mandatory on
# inventorySetQuantities, which is exactly the compare-and-set + replay-safety we rely on.
API_VERSION: Final = "2026-04"
GRAPHQL_PATH: Final = f"/admin/api/{API_VERSION}/graphql.json"

ACCESS_TOKEN_HEADER: Final = "X-Shopify-Access-Token"  # noqa: S105 (a header name)

# Client-credentials grant (Dev Dashboard apps on stores of the app's own organization): a form
# POST on the shop's domain answering {"access_token", "scope", "expires_in"} (docs
# "About client credentials"). Tokens live ~24 h (expires_in 86399 in third-party reports).
TOKEN_PATH: Final = "/admin/oauth/access_token"  # noqa: S105 (a path)
TOKEN_GRANT: Final = "client_credentials"  # noqa: S105 (a grant type)
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
# Assumed when an answer lacks expires_in (documented as present; not seen missing).
DEFAULT_TOKEN_TTL_S: Final = 86399
# A token is replaced once 80% of its life has passed (as the Amazon/Walmart/eBay connectors).
TOKEN_REFRESH_RATIO: Final = 0.8

# Cost bucket of a Standard plan (100 points/s restore, 20 x restore held). Only a starting
# point: every response's throttleStatus replaces it (Advanced/Plus shops restore faster).
COST_LIMIT: Final = RateLimit(rate=100.0, burst=2000.0)
# A single query may not request more than this (MAX_COST_EXCEEDED).
MAX_QUERY_COST: Final = 1000

# Requested-cost estimates before an operation's first response teaches us the real figure
# (connection = 2 + first x per-node cost; objects 1, scalars 0; mutations ~10).
DEFAULT_COSTS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "open": 4.0,
        "listings_page": 502.0,
        "variants_lookup": 502.0,
        "set_prices": 10.0,
        "set_stock": 10.0,
        "read_levels": 252.0,
        "orders_page": 652.0,
        "order_lines": 253.0,
    }
)
FALLBACK_COST: Final = 50.0

# Variants per listing page: each node costs ~5 points (variant, product, inventoryItem,
# inventoryLevel, quantities), so 250 would request ~1,252 > MAX_QUERY_COST; 100 asks ~502.
LISTING_PAGE_SIZE: Final = 100
# Variant GIDs per ``nodes(ids:)`` look-up: each id is charged its node's cost (~5 points with the
# listing fragment), so 250 ids would request ~1,250 > MAX_QUERY_COST (MAX_COST_EXCEEDED).
VARIANT_LOOKUP_IDS: Final = 100
# Orders per page and line items read with each: 2 + 50 x (1 + 2 + 10) = 652 points requested;
# an order with more lines reads the rest with ``ORDER_LINES`` (250 at a time, ~253 points).
ORDER_PAGE_SIZE: Final = 50
ORDER_LINES_FIRST: Final = 10
ORDER_LINES_PAGE: Final = 250
# Input arrays of every Shopify mutation hold at most 250 items.
MAX_INPUT_ITEMS: Final = 250

# The inventory quantity name we manage (what shoppers can buy) and why we set it.
QUANTITY_NAME: Final = "available"
SET_REASON: Final = "correction"
REFERENCE_URI_PREFIX: Final = "gid://repricerd/StockPush/"

# userErrors codes with a meaning for us (InventorySetQuantitiesUserErrorCode, 2026-04).
CAS_STALE_CODES: Final = frozenset({"CHANGE_FROM_QUANTITY_STALE", "COMPARE_QUANTITY_STALE"})
# Not a refusal of the item: the same request is still running or must be re-sent.
RETRYABLE_STOCK_CODES: Final = frozenset(
    {"IDEMPOTENCY_CONCURRENT_REQUEST", "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"}
)

# Top-level GraphQL error codes (errors[].extensions.code).
THROTTLED: Final = "THROTTLED"
ACCESS_DENIED: Final = "ACCESS_DENIED"
INTERNAL_SERVER_ERROR: Final = "INTERNAL_SERVER_ERROR"

# Our own codes for per-item results the marketplace never saw.
UNKNOWN_SKU: Final = "UNKNOWN_SKU"
NOT_STOCKED: Final = "ITEM_NOT_STOCKED_AT_LOCATION"

# Webhook headers (HTTP/2 lowercases them; lookups are case-insensitive).
HMAC_HEADER: Final = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER: Final = "X-Shopify-Topic"
WEBHOOK_ID_HEADER: Final = "X-Shopify-Webhook-Id"
TRIGGERED_AT_HEADER: Final = "X-Shopify-Triggered-At"
SHOP_DOMAIN_HEADER: Final = "X-Shopify-Shop-Domain"
API_VERSION_HEADER: Final = "X-Shopify-API-Version"
EVENT_ID_HEADER: Final = "X-Shopify-Event-Id"

TOPIC_ORDERS_CREATE: Final = "orders/create"
TOPIC_ORDERS_CANCELLED: Final = "orders/cancelled"
TOPIC_INVENTORY_LEVELS_UPDATE: Final = "inventory_levels/update"
TOPIC_PRODUCTS_UPDATE: Final = "products/update"
