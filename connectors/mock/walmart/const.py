"""Wire constants of the mock Walmart Marketplace (US) API: limits, headers, codes, event types.

Facts follow /work/shared/guides/marketplace-apis.md §2 and §5 and the OpenAPI files in
connectors/specs/walmart. Values the guide marks **unconfirmed** say so where they are defined.
"""

from typing import Final

from connectors.ratelimit import RateLimit

HOUR: Final = 3600.0
MINUTE: Final = 60.0

# Per-seller limits per API (guide §2.6: production numbers unconfirmed; "feeds 10/hour, single
# price/inventory a few hundred per hour"; getAllOrders' figure is unpublished). Walmart refills
# gradually: N per hour gives one call back every 3600/N s, a token bucket of rate N/3600, burst N.
# Feed submissions count per feed category (sandbox: 30/hour).
_LIMITS: Final = {
    (60, MINUTE): ("getToken", "getTokenDetail", "getWfsInventory", "getAllFeedStatuses"),
    (300, MINUTE): (
        "getInventory",
        "getAllItems",
        "getAnItem",
        "getFeedItemStatus",
        "getAllOrders",
    ),
    (300, HOUR): ("updatePrice", "updateInventory"),
    (10, MINUTE): ("itemsDetailsForListing", "getUnpublishedItems", "webhooks"),
    (10, HOUR): ("feed:price", "feed:inventory"),
}
RATE_LIMITS: Final = {op: RateLimit(n / per, n) for (n, per), ops in _LIMITS.items() for op in ops}

# feedType query value -> rate-limit category. ``inventory`` (spec 1.4) and ``MP_INVENTORY``
# (spec 1.5) are one category, as the sandbox table counts "Inventory" feeds together.
FEED_CATEGORIES: Final[dict[str, str]] = {
    "price": "price",
    "inventory": "inventory",
    "MP_INVENTORY": "inventory",
}
MAX_FEED_ITEMS: Final = 10_000  # price.json priceBulkUploads: "up to 10,000 items"
MAX_FEED_BYTES: Final = 10 * 1024 * 1024  # "keep the Feed sizes below 10 MB" -> 413 above
MAX_FEED_DETAIL_LIMIT: Final = 50  # feeds.json: "It cannot be more than 50 entities"
MAX_ITEMS_PAGE: Final = 200  # items: nextCursor pagination "when more than 200 items"
MAX_ITEMS_OFFSET_PAGE: Final = 50
DEFAULT_ITEMS_PAGE: Final = 20

# Request headers (auth.json components.parameters).
ACCESS_TOKEN_HEADER: Final = "WM_SEC.ACCESS_TOKEN"  # noqa: S105 - a header name
REQUIRED_HEADERS: Final = ("WM_SVC.NAME", "WM_QOS.CORRELATION_ID")
# Response headers (guide §2.6): tokens left, and epoch ms when the next token is added.
TOKEN_COUNT_HEADER: Final = "X-Current-Token-Count"  # noqa: S105 - a header name
REPLENISH_HEADER: Final = "X-Next-Replenishment-Time"

# Webhook HMAC (guide §2.5, the "security-and-authenticity" scheme): base64 HMAC-SHA256 keyed
# with the subscription's clientSecret over "POST\n<path?query>\n<timestamp>\n<hex sha256(body)>".
SIGNATURE_HEADER: Final = "WM_SEC.SIGNATURE"
TIMESTAMP_HEADER: Final = "WM_SEC.TIMESTAMP"
KEY_ID_HEADER: Final = "WM_SEC.KEY_ID"

# Gateway error codes (guide §2.7, §5; 3p clients for the header and throttle codes). Per-API
# codes are "INVALID_REQUEST_CONTENT.GMP_<API>_API" / "CONTENT_NOT_FOUND.GMP_<API>_API"
# (wire.invalid / wire.not_found): Walmart's style, exact codes unpublished (unconfirmed).
UNAUTHORIZED_CODE: Final = "UNAUTHORIZED.GMP_GATEWAY_API"
BAD_HEADER_CODE: Final = "INVALID_REQUEST_HEADER.GMP_GATEWAY_API"
THROTTLED_CODE: Final = "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"
SYSTEM_ERROR_CODE: Final = "SYSTEM_ERROR.GMP_GATEWAY_API"
# Feed item ingestion error codes (stand-ins; Walmart's ERR_* catalogue is not published).
ERR_ITEM_NOT_FOUND: Final = "ERR_EXT_DATA_0801001"
ERR_INVALID_DATA: Final = "ERR_EXT_DATA_0801002"
ERR_WFS_INVENTORY: Final = "ERR_EXT_DATA_0801003"
ERR_UNKNOWN_SHIP_NODE: Final = "ERR_EXT_DATA_0801004"
ERR_SYSTEM: Final = "ERR_INT_SYS_0000001"

# Offer statuses and the pricing-error reason (guide §2.7, §2.8).
PUBLISHED: Final = "PUBLISHED"
UNPUBLISHED: Final = "UNPUBLISHED"
REASONABLE_PRICE: Final = "REASONABLE_PRICE_NOT_SATISFIED"
MART: Final = "WALMART_US"
PRICE_MESSAGE: Final = (
    "Thank you. Your price has been updated. Please allow up to five minutes for this change "
    "to be reflected on the site."
)

# Event types Walmart can push (notifications.json getEventTypes example + guide §2.5).
EVENT_TYPES: Final[dict[str, tuple[str, str, str]]] = {
    # eventType: (resourceName, eventVersion, description)
    "OFFER_UNPUBLISHED": ("ITEM", "V1", "Notification for unpublished offers"),
    "OFFER_PUBLISHED": ("ITEM", "V1", "Notification for published offers"),
    "BUY_BOX_CHANGED": ("PRICE", "V1", "Notification for change in buy box"),
    "PO_CREATED": ("ORDER", "V1", "Notification for new purchase order created"),
    "PO_LINE_AUTOCANCELLED": ("ORDER", "V1", "Notification for purchase order line auto-cancelled"),
    "REPORT_STATUS": ("REPORTS", "V1", "Notification for report status"),
}
# authDetails.authMethod -> the fields it needs (notifications.json AuthDetails).
AUTH_NEEDS: Final[dict[str, tuple[str, ...]]] = {
    "BASIC_AUTH": ("userName", "password"),
    "HMAC": ("clientSecret",),
    "OAUTH": ("authUrl", "clientId", "clientSecret"),
}
