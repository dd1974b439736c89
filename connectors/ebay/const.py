"""Wire constants of eBay's REST APIs (guide §3): hosts, paths, scopes, limits and quotas as data.

Facts from /work/shared/guides/marketplace-apis.md §3, connectors/specs/ebay/
sell_inventory_v1_oas3.json (Inventory API v1.13.0) and, for getOrders and getOrder, eBay's
Fulfillment API OAS (sell_fulfillment_v1_oas3.json v1.19.2 and v1.20.7, developer.ebay.com
api-docs/sell/fulfillment).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from connectors.ratelimit import RateLimit

API_ENDPOINT: Final = "https://api.ebay.com"
TOKEN_ENDPOINT: Final = "https://api.ebay.com/identity/v1/oauth2/token"  # noqa: S105 (a URL)
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE: Final = "application/json"
LANGUAGE: Final = "en-US"
MARKETPLACE_HEADER: Final = "X-EBAY-C-MARKETPLACE-ID"

# OAuth scopes (§3.1): the user token writes inventory; the application token reads Browse and
# the Notification API's public keys.
SCOPE_PUBLIC: Final = "https://api.ebay.com/oauth/api_scope"
SCOPE_INVENTORY: Final = "https://api.ebay.com/oauth/api_scope/sell.inventory"
# getOrders accepts either (Fulfillment OAS ``security``); the poll needs one of them.
SCOPE_FULFILLMENT: Final = "https://api.ebay.com/oauth/api_scope/sell.fulfillment"
SCOPE_FULFILLMENT_READONLY: Final = "https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly"
# eBay tokens live 7200 s; refresh at 80% so no call carries an expiring token.
TOKEN_REFRESH_RATIO: Final = 0.8

# Sell Inventory API v1 paths.
BULK_UPDATE_PATH: Final = "/sell/inventory/v1/bulk_update_price_quantity"
INVENTORY_ITEMS_PATH: Final = "/sell/inventory/v1/inventory_item"
OFFERS_PATH: Final = "/sell/inventory/v1/offer"
BROWSE_SEARCH_PATH: Final = "/buy/browse/v1/item_summary/search"
PUBLIC_KEY_PATH: Final = "/commerce/notification/v1/public_key/{public_key_id}"
ORDERS_PATH: Final = "/sell/fulfillment/v1/order"  # Fulfillment API getOrders
ORDER_PATH: Final = "/sell/fulfillment/v1/order/{order_id}"  # getOrder (same scopes)

# Batch ceilings: bulkUpdatePriceQuantity takes at most 25 requests (§3.2); getInventoryItems
# pages hold 1..100 items (OAS); Browse limit 1..200 (§3.4).
MAX_BULK_REQUESTS: Final = 25
INVENTORY_PAGE_SIZE: Final = 100
OFFERS_PAGE_SIZE: Final = 25  # "Max Occurs: 25" offers per getOffers page (OAS Offers)
BROWSE_MAX_LIMIT: Final = 200
# getOrders: ``limit`` "Maximum: 1000, Default: 50" in Fulfillment OAS v1.19.2, 200 in newer
# reference pages: 200 is within both. Its ``filter`` reads only the last 90 days (30830 "Start
# date must be within 90 days"), and dates cannot be in the future (30850).
ORDERS_PAGE_SIZE: Final = 200
ORDERS_MAX_AGE_DAYS: Final = 90

# eBay caps revisions of one listing at 250 per calendar day (§3.2).
DAILY_REVISION_LIMIT: Final = 250

# Quota families: the key every call is counted under (one counter per app, reset at midnight
# Pacific, §3.6).
QUOTA_INVENTORY: Final = "sell.inventory"
QUOTA_FULFILLMENT: Final = "sell.fulfillment"
QUOTA_BROWSE: Final = "buy.browse"
QUOTA_NOTIFICATION: Final = "commerce.notification"
QUOTA_OAUTH_REFRESH: Final = "oauth.refresh_token"
QUOTA_OAUTH_APPLICATION: Final = "oauth.client_credentials"

# Documented daily defaults (§3.1, §3.6). The Inventory API default is unconfirmed in the guide;
# the figure here is a placeholder the operator overrides with what Application Growth Check
# granted (``daily_call_quotas`` in the settings).
DAILY_CALL_QUOTAS: Final[Mapping[str, int]] = MappingProxyType(
    {
        QUOTA_INVENTORY: 2_000_000,
        # The Fulfillment API's default is not in the guide (unconfirmed): a placeholder.
        QUOTA_FULFILLMENT: 100_000,
        QUOTA_BROWSE: 5_000,
        QUOTA_NOTIFICATION: 10_000,
        QUOTA_OAUTH_REFRESH: 50_000,
        QUOTA_OAUTH_APPLICATION: 1_000,
    }
)

# Short-term pacing per API family. eBay publishes daily quotas only (§3.6) and answers a burst
# with 429 errorId 2001 and no Retry-After, so the client paces itself instead of learning from
# refusals: 25 calls/s spends the Inventory API's 2,000,000-call day in a day (the mock enforces
# 25/s with bursts of 50, Browse and Notification 5/s with bursts of 10). Our bursts are 10 and
# 2 below those: calls leave at the server's rate, and a later call that overtakes an earlier
# one's latency lands on a server bucket that still holds a token, not on an empty one (with
# equal buckets about one call in 400 was refused). These are assumptions: the operator sets
# ``rate_limits`` to what eBay granted the application.
RATE_LIMITS: Final[Mapping[str, RateLimit]] = MappingProxyType(
    {
        QUOTA_INVENTORY: RateLimit(rate=25, burst=40),
        QUOTA_FULFILLMENT: RateLimit(rate=5, burst=8),
        QUOTA_BROWSE: RateLimit(rate=5, burst=8),
        QUOTA_NOTIFICATION: RateLimit(rate=5, burst=8),
    }
)

# Order states (Fulfillment API CancelStateEnum): only CANCELED gives the units back; an
# IN_PROGRESS cancel request may still be refused by the seller.
CANCEL_STATE_CANCELED: Final = "CANCELED"

# errorIds with a meaning for us (OAS x-response-codes, §3.6, §3.7).
THROTTLED_ERROR_ID: Final = 2001
SYSTEM_ERROR_ID: Final = 25001
CONCURRENT_ACCESS_ERROR_ID: Final = 25025
# "Cannot revise listing. {additionalInfo}" (Inventory OAS, bulkUpdatePriceQuantity and the
# offer/item writes): the documented id of a listing eBay will not revise, the 250-a-day limit
# among the reasons. eBay documents no id of its own for that limit (its Trading API reports
# listing errors with 219xxxxx codes, which the Inventory API may pass on, or wraps in 25002
# "Any User error. {additionalInfo}"), so the refusal is also recognised by its message.
CANNOT_REVISE_ERROR_ID: Final = 25019
REVISION_LIMIT_ERROR_IDS: Final = frozenset({CANNOT_REVISE_ERROR_ID})
# "revisions … limit/maximum/per day", "maximum … revisions", "revised … times": the limit
# itself, not a revise refused for a price or quantity over some maximum.
REVISION_LIMIT_MESSAGE: Final = re.compile(
    r"\brevisions?\b.{0,60}\b(limit|maximum|max|threshold|exceeded|per day|calendar day)\b"
    r"|\b(limit|maximum|threshold)\b.{0,40}\brevisions?\b"
    r"|\brevised\b.{0,60}\btimes\b",
    re.IGNORECASE | re.DOTALL,
)
# Per-item errors worth another attempt: eBay's own failure, or the item locked by another write.
RETRYABLE_ERROR_IDS: Final = frozenset({SYSTEM_ERROR_ID, CONCURRENT_ACCESS_ERROR_ID})

# Our own codes for results eBay never saw.
REVISION_BUDGET: Final = "REVISION_BUDGET"
REVISION_BUDGET_EXHAUSTED: Final = "REVISION_BUDGET_EXHAUSTED"
QUOTA_EXHAUSTED: Final = "DAILY_QUOTA_EXHAUSTED"
UNKNOWN_SKU: Final = "UNKNOWN_SKU"
OUT_OF_BOUNDS: Final = "PRICE_OUT_OF_BOUNDS"
NO_FULFILLMENT_SCOPE: Final = "NO_FULFILLMENT_SCOPE"
NO_RESULT: Final = "NO_RESULT"

# Notification API (§3.5).
SIGNATURE_HEADER: Final = "X-EBAY-SIGNATURE"
PUBLIC_KEY_TTL_S: Final = 3600.0
# Lookups of key ids we have not seen (eBay rotates keys rarely): 20 at once, then 20 an hour.
NEW_KEY_LOOKUPS: Final = RateLimit(rate=20 / 3600, burst=20)
# A checkout completed: the notification names the order only (``data.orderId``).
TOPIC_ORDER_CONFIRMATION: Final = "ORDER_CONFIRMATION"
TOPIC_ACCOUNT_DELETION: Final = "MARKETPLACE_ACCOUNT_DELETION"
