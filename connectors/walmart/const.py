"""Wire constants of the Walmart Marketplace (US) API: paths, headers, rate limits as data.

Facts from /work/shared/guides/marketplace-apis.md §2 and the OpenAPI files in
connectors/specs/walmart/ (auth, price, inventory, feeds, notifications, insights). GET /v3/items
is not among those files: its parameters follow Walmart's Item Management spec (0.6.3), whose
``ItemResponses`` carry ``ItemResponse[]``, ``totalItems`` and ``nextCursor``. GET /v3/orders
follows orders.json (Order Management 0.6.3, same source as the others).
"""

from __future__ import annotations

from typing import Final

from connectors.ratelimit import RateLimit

DEFAULT_ENDPOINT: Final = "https://marketplace.walmartapis.com"
TOKEN_PATH: Final = "/v3/token"  # noqa: S105 (a name, not a secret)
DEFAULT_SERVICE_NAME: Final = "Walmart Marketplace"
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
JSON: Final = "application/json"
# Refresh the 900 s access token at 80% of its life: no call carries a token about to expire.
TOKEN_REFRESH_RATIO: Final = 0.8

# Request headers (auth.json components.parameters).
ACCESS_TOKEN_HEADER: Final = "WM_SEC.ACCESS_TOKEN"  # noqa: S105 (a name, not a secret)
SERVICE_NAME_HEADER: Final = "WM_SVC.NAME"
CORRELATION_HEADER: Final = "WM_QOS.CORRELATION_ID"
# Response headers of the throttling windows (§2.6; "Replenishment", not "replenish").
TOKEN_COUNT_HEADER: Final = "X-Current-Token-Count"  # noqa: S105 (a name, not a secret)
REPLENISH_HEADER: Final = "X-Next-Replenishment-Time"  # epoch milliseconds

# Operation names (the bucket keys).
TOKEN: Final = "tokenAPI"  # noqa: S105 (a name, not a secret)
UPDATE_PRICE: Final = "updatePrice"
UPDATE_INVENTORY: Final = "updateInventoryForAnItem"
PRICE_FEED: Final = "priceBulkUploads"
INVENTORY_FEED: Final = "updateBulkInventory"
FEED_STATUS: Final = "getFeedItemStatus"
LIST_FEEDS: Final = "getAllFeedStatuses"
GET_ITEMS: Final = "getAllItems"
GET_INVENTORIES: Final = "getMultiNodeInventoryForAllSkuAndAllShipNodes"
GET_WFS_INVENTORY: Final = "getWFSInventory"
LISTING_QUALITY: Final = "itemsDetailsForListing"
GET_ORDERS: Final = "getAllOrders"

PRICE_PATH: Final = "/v3/price"
INVENTORY_PATH: Final = "/v3/inventory"
FEEDS_PATH: Final = "/v3/feeds"
FEED_PATH: Final = "/v3/feeds/{feed_id}"
ITEMS_PATH: Final = "/v3/items"
INVENTORIES_PATH: Final = "/v3/inventories"
WFS_INVENTORY_PATH: Final = "/v3/fulfillment/inventory"
LISTING_QUALITY_PATH: Final = "/v3/insights/items/listingQuality/items"
ORDERS_PATH: Final = "/v3/orders"

_HOUR = 3600.0

# Per seller per API (§2.6). Walmart publishes the production numbers per reference page and the
# guide could not retrieve them (**unconfirmed**), so these are conservative; every response's
# X-Current-Token-Count / X-Next-Replenishment-Time is adopted into the bucket anyway, so the
# marketplace's own window wins over these guesses. Feeds: 10 per hour per feed type (guide).
RATE_LIMITS: Final[dict[str, RateLimit]] = {
    TOKEN: RateLimit(1.0, 5),
    UPDATE_PRICE: RateLimit(600 / _HOUR, 10),
    UPDATE_INVENTORY: RateLimit(600 / _HOUR, 10),
    PRICE_FEED: RateLimit(10 / _HOUR, 10),
    INVENTORY_FEED: RateLimit(10 / _HOUR, 10),
    FEED_STATUS: RateLimit(1.0, 10),
    LIST_FEEDS: RateLimit(1.0, 10),
    GET_ITEMS: RateLimit(1.0, 10),
    GET_INVENTORIES: RateLimit(1.0, 10),
    GET_WFS_INVENTORY: RateLimit(1.0, 10),
    LISTING_QUALITY: RateLimit(1.0, 5),
    GET_ORDERS: RateLimit(1.0, 10),
}
FEED_OPERATIONS: Final = frozenset({PRICE_FEED, INVENTORY_FEED})

# Batch and page ceilings.
FEED_ITEMS_MAX: Final = 10_000  # price.json priceBulkUploads: "up to 10,000 items" per feed
FEED_DETAIL_LIMIT: Final = 50  # feeds.json getFeedItemStatus: limit "cannot be more than 50"
ITEMS_PAGE_LIMIT: Final = 50  # GET /v3/items limit (spec: "cannot be more than 50")
INVENTORIES_PAGE_LIMIT: Final = 50  # GET /v3/inventories: "Cannot be more than 50"
WFS_PAGE_LIMIT: Final = 300  # GET /v3/fulfillment/inventory: "Cannot be larger than 300"
# GET /v3/orders (orders.json 0.6.3, Walmart's Order Management spec as vendored in
# connectors/specs/walmart/orders.json): limit "Cannot be larger than 200"; only the last 180
# days of orders can be read (developer.walmart.com us-marketplace/docs/get-all-orders).
ORDERS_PAGE_LIMIT: Final = 200
ORDERS_MAX_AGE_DAYS: Final = 180
SELLER_FULFILLED: Final = "SellerFulfilled"  # the shipNodeType whose orders take our stock
DEFAULT_SINGLE_MAX_BATCH: Final = 10  # single PUTs before a batch goes as a feed
SINGLE_CONCURRENCY: Final = 4  # single PUTs in flight at once (the bucket paces them)
PAGE_CONCURRENCY: Final = 4  # feed detail pages read at once

PRICE_FEED_VERSION: Final = "1.7"
INVENTORY_FEED_VERSION: Final = "1.4"
MP_INVENTORY_FEED_VERSION: Final = "1.5"
PRICE_TYPE_BASE: Final = "BASE"
UNIT_EACH: Final = "EACH"
FEED_TERMINAL: Final = frozenset({"PROCESSED", "ERROR"})
FEED_WINDOW_S: Final = 3600.0  # the feed limits are per hour
FEED_LIST_PAGES: Final = 5  # GET /v3/feeds pages (50 each) read at open to find the hour's feeds

# Webhooks: event types (notifications.json getEventTypes, guide §2.5) and signature headers.
BUY_BOX_CHANGED: Final = "BUY_BOX_CHANGED"
OFFER_UNPUBLISHED: Final = "OFFER_UNPUBLISHED"
PO_CREATED: Final = "PO_CREATED"
PO_LINE_AUTOCANCELLED: Final = "PO_LINE_AUTOCANCELLED"
REASONABLE_PRICE_NOT_SATISFIED: Final = "REASONABLE_PRICE_NOT_SATISFIED"
SIGNATURE_HEADER: Final = "WM_SEC.SIGNATURE"
TIMESTAMP_HEADER: Final = "WM_SEC.TIMESTAMP"  # Unix epoch seconds
WFS_SHIP_NODE_TYPE: Final = "WFSFulfilled"
WALMART_RETAIL: Final = "Walmart.com"  # the seller name of Walmart's own (1P) offer

# Local refusals (no marketplace call was made); Walmart's own codes pass through unchanged.
READ_ONLY: Final = "READ_ONLY"
FEED_BUDGET: Final = "FEED_BUDGET_EXHAUSTED"
DUPLICATE_SKU: Final = "DUPLICATE_SKU"
