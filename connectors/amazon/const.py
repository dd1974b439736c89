"""Wire constants of Amazon SP-API: hosts, paths, rate limits as data, batch ceilings.

Facts from /work/shared/guides/marketplace-apis.md §1 and the official models in
connectors/specs/amazon/ (the "Usage Plan" tables of each operation).
"""

from __future__ import annotations

import sys
from typing import Final

from connectors.ratelimit import RateLimit

# Production SP-API hosts per region (§1.1); sandbox hosts follow the same pattern.
REGION_ENDPOINTS: Final = {
    "na": "https://sellingpartnerapi-na.amazon.com",
    "eu": "https://sellingpartnerapi-eu.amazon.com",
    "fe": "https://sellingpartnerapi-fe.amazon.com",
}
LWA_ENDPOINT: Final = "https://api.amazon.com/auth/o2/token"
LWA_CONTENT_TYPE: Final = "application/x-www-form-urlencoded;charset=UTF-8"
# Refresh the 3600 s LWA token at 80% of its life, so no call ever carries an expiring token.
TOKEN_REFRESH_RATIO: Final = 0.8
USER_AGENT: Final = (
    f"repricerd/0.1 (Language=Python/{sys.version_info.major}.{sys.version_info.minor})"
)
ISSUE_LOCALE: Final = "en_US"

# Operation names (the bucket keys) and their paths.
SEARCH_LISTINGS: Final = "searchListingsItems"
PATCH_LISTING: Final = "patchListingsItem"
CREATE_FEED_DOCUMENT: Final = "createFeedDocument"
CREATE_FEED: Final = "createFeed"
GET_FEED: Final = "getFeed"
GET_FEED_DOCUMENT: Final = "getFeedDocument"
LISTING_OFFERS_BATCH: Final = "getListingOffersBatch"
LWA_GRANT: Final = "lwaRefreshGrant"
FEED_UPLOAD: Final = "feedDocumentUpload"
FEED_DOWNLOAD: Final = "feedDocumentDownload"
GET_ORDERS: Final = "getOrders"
GET_ORDER_ITEMS: Final = "getOrderItems"
CREATE_REPORT: Final = "createReport"
GET_REPORT: Final = "getReport"
GET_REPORT_DOCUMENT: Final = "getReportDocument"
REPORT_DOWNLOAD: Final = "reportDocumentDownload"

LISTINGS_PATH: Final = "/listings/2021-08-01/items/{seller_id}"
LISTING_PATH: Final = "/listings/2021-08-01/items/{seller_id}/{sku}"
FEED_DOCUMENTS_PATH: Final = "/feeds/2021-06-30/documents"
FEED_DOCUMENT_PATH: Final = "/feeds/2021-06-30/documents/{document_id}"
FEEDS_PATH: Final = "/feeds/2021-06-30/feeds"
FEED_PATH: Final = "/feeds/2021-06-30/feeds/{feed_id}"
LISTING_OFFERS_BATCH_PATH: Final = "/batches/products/pricing/v0/listingOffers"
# The per-item ``uri`` inside a getListingOffersBatch request (path of getListingOffers).
LISTING_OFFERS_URI: Final = "/products/pricing/v0/listings/{sku}/offers"
ORDERS_PATH: Final = "/orders/v0/orders"
ORDER_ITEMS_PATH: Final = "/orders/v0/orders/{order_id}/orderItems"
REPORTS_PATH: Final = "/reports/2021-06-30/reports"
REPORT_PATH: Final = "/reports/2021-06-30/reports/{report_id}"
REPORT_DOCUMENT_PATH: Final = "/reports/2021-06-30/documents/{document_id}"

# Default usage plans (rate tokens/s, burst), per application + seller pair (§1.4).
RATE_LIMITS: Final[dict[str, RateLimit]] = {
    "getListingsItem": RateLimit(5, 10),
    "putListingsItem": RateLimit(5, 10),
    PATCH_LISTING: RateLimit(5, 5),
    "deleteListingsItem": RateLimit(5, 5),
    SEARCH_LISTINGS: RateLimit(5, 5),
    CREATE_FEED_DOCUMENT: RateLimit(0.5, 15),
    CREATE_FEED: RateLimit(0.0083, 15),
    GET_FEED: RateLimit(2, 15),
    "cancelFeed": RateLimit(2, 15),
    "getFeeds": RateLimit(0.0222, 10),
    GET_FEED_DOCUMENT: RateLimit(0.0222, 10),
    "getPricing": RateLimit(0.5, 1),
    "getCompetitivePricing": RateLimit(0.5, 1),
    "getListingOffers": RateLimit(1, 2),
    "getItemOffers": RateLimit(0.5, 1),
    "getItemOffersBatch": RateLimit(0.1, 1),
    LISTING_OFFERS_BATCH: RateLimit(0.5, 1),
    "getCompetitiveSummary": RateLimit(0.033, 1),
    "getFeaturedOfferExpectedPriceBatch": RateLimit(0.033, 1),
    "notifications": RateLimit(1, 5),
    "getInventorySummaries": RateLimit(2, 2),
    # Orders v0 (ordersV0.json usage plans): one getOrders a minute after a burst of 20.
    GET_ORDERS: RateLimit(0.0167, 20),
    GET_ORDER_ITEMS: RateLimit(0.5, 30),
    # Reports 2021-06-30 (reports_2021-06-30.json usage plans): a report a minute after a burst.
    CREATE_REPORT: RateLimit(0.0167, 15),
    GET_REPORT: RateLimit(2, 15),
    GET_REPORT_DOCUMENT: RateLimit(0.0167, 15),
}

# The usage plan Amazon actually applies to this application + seller, sent on 2xx/400/404
# answers (never on 429/401/403) and adopted per operation in place of the table above when
# present: overrides raise it, and a plan below the default must slow us down before any 429.
# The pacing margin itself is applied by the shared limiter (connectors/ratelimit.py).
RATE_LIMIT_HEADER: Final = "x-amzn-RateLimit-Limit"

# Batch ceilings: searchListingsItems pageSize ≤ 20, and it pages through at most 1000 items
# per query (the model says so), so a larger catalogue is read in createdDate windows.
SEARCH_PAGE_SIZE: Final = 20
SEARCH_WINDOW_MAX: Final = 1000
LISTINGS_INCLUDED_DATA: Final = "summaries,attributes,offers,fulfillmentAvailability"
PRICING_BATCH_MAX: Final = 20  # ListingOffersRequestList maxItems
FEED_MESSAGES_MAX: Final = 25_000  # listings-feed-schema-v2 messages maxItems
# What the planner may hand us in one push: one feed document of this many messages.
MAX_PUSH_BATCH: Final = 10_000
# Past this many updates, individual PATCHes (5/s) take longer than this budget: use a feed.
PATCH_BUDGET_S: Final = 10.0
DEFAULT_PATCH_MAX_BATCH: Final = int(RATE_LIMITS[PATCH_LISTING].rate * PATCH_BUDGET_S)
# Patches in flight at once (the bucket paces them; this bounds open connections).
PATCH_CONCURRENCY: Final = 5

# getOrders MaxResultsPerPage: 1..100 (default 100).
ORDERS_PAGE_SIZE: Final = 100
# Order items remembered per poller, so the overlap of successive polls re-reads none of them.
ORDER_ITEMS_CACHE_MAX: Final = 5_000

FEED_TYPE: Final = "JSON_LISTINGS_FEED"
FEED_CONTENT_TYPE: Final = "application/json; charset=UTF-8"
FEED_VERSION: Final = "2.0"
FEED_TERMINAL: Final = frozenset({"DONE", "FATAL", "CANCELLED"})
REPORT_TERMINAL: Final = FEED_TERMINAL  # a report's processingStatus ends the same way

# Listings attribute values.
DEFAULT_CHANNEL_CODE: Final = "DEFAULT"  # merchant-fulfilled quantity
AUDIENCE_ALL: Final = "ALL"
PURCHASABLE_OFFER_PATH: Final = "/attributes/purchasable_offer"
FULFILLMENT_AVAILABILITY_PATH: Final = "/attributes/fulfillment_availability"

# Our webhook convention for SQS/EventBridge-forwarded notifications (Amazon itself signs
# nothing: the forwarder holds the shared secret and signs the raw body).
SIGNATURE_HEADER: Final = "X-Repricerd-Signature"
ANY_OFFER_CHANGED: Final = "ANY_OFFER_CHANGED"
PRICING_HEALTH: Final = "PRICING_HEALTH"
ORDER_CHANGE: Final = "ORDER_CHANGE"

# Local refusals (no marketplace call was made); Amazon's own codes pass through unchanged.
READ_ONLY: Final = "READ_ONLY"

# Forwarded notification envelopes (notifications.unwrap): EventBridge partner events come from
# aws.partner/sellingpartnerapi.amazon.com/{awsAccountId}/{applicationId}; an SQS message may
# carry an SNS envelope (SNS to SQS without raw delivery): two levels at most are unwrapped.
EVENT_BRIDGE_SOURCE: Final = "aws.partner/sellingpartnerapi.amazon"
MAX_ENVELOPES: Final = 2
UNRECOGNIZED: Final = "unknown"  # the topic of a body that holds no notification
UNRECOGNIZED_FIX: Final = (
    "forward the SQS message body (the notification JSON) or the whole SQS message, SNS "
    "notification or EventBridge event that carries it"
)
