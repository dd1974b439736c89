"""Wire constants of the mock eBay APIs: scopes, quotas, rate limits, error ids and texts.

Facts follow /work/shared/guides/marketplace-apis.md §3 and §5 and the Sell Inventory OAS in
connectors/specs/ebay. Values the guide marks **unconfirmed** are constants (or state fields) so
tests and the demo can change them.
"""

from typing import Final

from connectors.ratelimit import RateLimit

API_SCOPE: Final = "https://api.ebay.com/oauth/api_scope"
INVENTORY_SCOPE: Final = "https://api.ebay.com/oauth/api_scope/sell.inventory"
INVENTORY_READONLY_SCOPE: Final = "https://api.ebay.com/oauth/api_scope/sell.inventory.readonly"
FULFILLMENT_SCOPE: Final = "https://api.ebay.com/oauth/api_scope/sell.fulfillment"
FULFILLMENT_READONLY_SCOPE: Final = "https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly"
# What the seller consented to (the refresh token's scopes).
USER_SCOPES: Final = frozenset(
    {
        API_SCOPE,
        INVENTORY_SCOPE,
        INVENTORY_READONLY_SCOPE,
        FULFILLMENT_SCOPE,
        FULFILLMENT_READONLY_SCOPE,
    }
)
# What a client_credentials grant may ask for (public data only).
APPLICATION_SCOPES: Final = frozenset({API_SCOPE})

TOKEN_TTL_S: Final = 7200
REFRESH_TOKEN_TTL_S: Final = 47_304_000

# The three API families the mock serves; quotas, buckets and counters are keyed by these.
INVENTORY_API: Final = "sell.inventory"
FULFILLMENT_API: Final = "sell.fulfillment"
BROWSE_API: Final = "buy.browse"
NOTIFICATION_API: Final = "commerce.notification"

# Per-application daily call quotas, reset at midnight Pacific (guide §3.6). Browse and
# Notification are documented; the Inventory figure is eBay's published call-limits table as
# remembered, **unconfirmed** in the guide.
DAILY_QUOTAS: Final[dict[str, int]] = {
    INVENTORY_API: 2_000_000,
    FULFILLMENT_API: 100_000,  # not in the guide: **unconfirmed**
    BROWSE_API: 5_000,
    NOTIFICATION_API: 10_000,
}
QUOTA_TIME_ZONE: Final = "America/Los_Angeles"

# Short-term limits: eBay publishes none for these REST APIs (guide §3.6); these buckets are the
# mock's own assumption so that bursts are refused somewhere. Configurable per state.
RATE_LIMITS: Final[dict[str, RateLimit]] = {
    INVENTORY_API: RateLimit(25, 50),
    FULFILLMENT_API: RateLimit(5, 10),
    BROWSE_API: RateLimit(5, 10),
    NOTIFICATION_API: RateLimit(5, 10),
}

MAX_BULK_REQUESTS: Final = 25
REVISIONS_PER_DAY: Final = 250
MAX_INVENTORY_PAGE: Final = 100  # getInventoryItems: limit 1..100 (OAS)
MAX_OFFERS_PAGE: Final = 100
MAX_BROWSE_LIMIT: Final = 200
MAX_BROWSE_RESULTS: Final = 10_000
DEFAULT_BROWSE_LIMIT: Final = 50

# -- error bodies ----------------------------------------------------------------------------
OAUTH_DOMAIN: Final = "OAuth"
ACCESS_DOMAIN: Final = "ACCESS"
INVENTORY_DOMAIN: Final = "API_INVENTORY"
FULFILLMENT_DOMAIN: Final = "API_FULFILLMENT"
BROWSE_DOMAIN: Final = "API_BROWSE"
NOTIFICATION_DOMAIN: Final = "API_NOTIFICATION"

ERR_INVALID_TOKEN: Final = 1001  # 401 "Invalid access token"
ERR_MISSING_TOKEN: Final = 1002  # 401 "Missing access token"
ERR_ACCESS_DENIED: Final = 1100  # 403 "Access denied": wrong token type or scope
ERR_TOO_MANY_REQUESTS: Final = 2001  # 429 (guide §3.6, 3p)
INVALID_TOKEN_MESSAGE: Final = "Invalid access token"  # noqa: S105 - a message
INVALID_TOKEN_LONG: Final = (
    "Invalid access token. Check the value of the Authorization HTTP request header."  # noqa: S105
)
MISSING_TOKEN_LONG: Final = "Access token is missing in the Authorization HTTP request header."  # noqa: S105
ACCESS_DENIED_LONG: Final = "Insufficient permissions to fulfill the request."
TOO_MANY_MESSAGE: Final = "Too many requests"
TOO_MANY_LONG: Final = "The request limit has been reached for the resource."

# Sell Inventory errorIds (OAS x-response-codes).
ERR_SYSTEM: Final = 25001  # 500 "A system error has occurred."
ERR_USER: Final = 25002
ERR_PRICE: Final = 25003
ERR_QUANTITY: Final = 25004
ERR_MISSING_FIELD: Final = 25017
# The 250-revisions/day refusal: eBay's "Cannot revise listing." (the OAS code closest to the
# documented rule; the exact id eBay sends for this case is unconfirmed).
ERR_CANNOT_REVISE: Final = 25019
ERR_CONCURRENT: Final = 25025  # 500 per item: "Concurrent access ... try again later"
ERR_SKU_NOT_AVAILABLE: Final = 25702
ERR_PAGINATION: Final = 25706
ERR_INVALID_VALUE: Final = 25709
ERR_OFFER_NOT_AVAILABLE: Final = 25713
ERR_NO_OFFER: Final = 25725
ERR_TOO_MANY_ITEMS: Final = 25727

# Fulfillment getOrders errorIds (Fulfillment OAS v1.19.2 x-response-codes of GET /order).
ERR_FILTER_NAME: Final = 30700  # "Invalid filter name: {fieldname}"
ERR_FILTER_VALUE: Final = 30800  # "Invalid filter value {fieldvalue} for filter {fieldname}"
ERR_DATE_FORMAT: Final = 30810  # "Invalid date format"
ERR_START_MISSING: Final = 30820  # "Start date is missing"
ERR_START_TOO_OLD: Final = 30830  # "Start date must be within 90 days of end date and ..."
ERR_START_AFTER_END: Final = 30840  # "Start date should be before end date"
ERR_DATE_FUTURE: Final = 30850  # "Start and end dates can't be in the future"
ERR_OFFSET: Final = 31000  # "Invalid offset: {offsetvalue}"
ERR_LIMIT: Final = 31100  # "Invalid limit: {limitvalue}"
ERR_ORDER_ID: Final = 32100  # getOrder "Invalid order ID: {orderId}"
ERR_FULFILLMENT_SYSTEM: Final = 30500  # 500 system error (id **unconfirmed**)
MAX_ORDERS_PAGE: Final = 200  # newer reference pages; OAS v1.19.2 says 1000 (**unconfirmed**)
DEFAULT_ORDERS_PAGE: Final = 50
ORDERS_WINDOW_DAYS: Final = 90

# Browse errorIds (12xxx family; exact ids **unconfirmed**, 12001 seen in 3p fixtures).
ERR_BROWSE_NO_QUERY: Final = 12001
ERR_BROWSE_BAD_PARAM: Final = 12002
ERR_BROWSE_SYSTEM: Final = 12000

# Notification API errorIds (notification OAS).
ERR_NOTIFICATION_SYSTEM: Final = 195000
ERR_PUBLIC_KEY_NOT_FOUND: Final = 195001  # unconfirmed id for an unknown public_key_id

# -- notifications -----------------------------------------------------------------------------
SIGNATURE_HEADER: Final = "X-EBAY-SIGNATURE"
ORDER_CONFIRMATION: Final = "ORDER_CONFIRMATION"
SCHEMA_VERSION: Final = "1.0"
