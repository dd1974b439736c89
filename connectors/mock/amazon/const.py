"""Wire constants of the mock SP-API: usage plans, error bodies, issue codes, header names.

Facts follow /work/shared/guides/marketplace-apis.md §1 and the models in connectors/specs/amazon.
Values the guide marks **unconfirmed** are module constants so tests and the demo can change them.
"""

from typing import Final

from connectors.ratelimit import RateLimit

# Default usage plans (rate tokens/s, burst), from the "Usage Plan" tables of the SP-API models.
RATE_LIMITS: Final[dict[str, RateLimit]] = {
    "getListingsItem": RateLimit(5, 10),
    "patchListingsItem": RateLimit(5, 5),
    "searchListingsItems": RateLimit(5, 5),
    "createFeedDocument": RateLimit(0.5, 15),
    "createFeed": RateLimit(0.0083, 15),
    "getFeed": RateLimit(2, 15),
    "cancelFeed": RateLimit(2, 15),
    "getFeedDocument": RateLimit(0.0222, 10),
    "getListingOffers": RateLimit(1, 2),
    "getItemOffers": RateLimit(0.5, 1),
    "getListingOffersBatch": RateLimit(0.5, 1),
    "getItemOffersBatch": RateLimit(0.1, 1),
    "getOrders": RateLimit(0.0167, 20),
    "getOrderItems": RateLimit(0.5, 30),
}

ACCESS_TOKEN_HEADER: Final = "x-amz-access-token"  # noqa: S105 - a header name
REQUEST_ID_HEADER: Final = "x-amzn-RequestId"
RATE_LIMIT_HEADER: Final = "x-amzn-RateLimit-Limit"
ERROR_TYPE_HEADER: Final = "x-amzn-ErrorType"
# Our convention for notifications forwarded from SQS/EventBridge to the daemon's webhook.
SIGNATURE_HEADER: Final = "X-Repricerd-Signature"

DENIED_MESSAGE: Final = "Access to requested resource is denied."
_INVALID = "The access token you provided is revoked, malformed or invalid."
INVALID_TOKEN_DETAILS: Final = _INVALID
EXPIRED_TOKEN_DETAILS: Final = "The access token you provided has expired."  # noqa: S105
QUOTA_MESSAGE: Final = "You exceeded your quota for the requested resource."
INVALID_INPUT_MESSAGE: Final = "Request has missing or invalid parameters and cannot be parsed."
INTERNAL_MESSAGE: Final = "We encountered an internal error. Please try again."

# Listings issue codes. 4000001 ("The provided value for '<attr>' is invalid.") and 90000900 are
# observed in SP-API answers (amzn/selling-partner-api-models#5219, model sandbox examples); 18155
# is the model's minimum-price example. The ceiling code is not published: ours is a stand-in.
ISSUE_INVALID_VALUE: Final = "4000001"
ISSUE_INVALID_ATTRIBUTES: Final = "90000900"
ISSUE_BELOW_MINIMUM: Final = "18155"
ISSUE_ABOVE_MAXIMUM: Final = "18156"  # unconfirmed stand-in

# Amazon's own retail offer carries the US marketplace id as its SellerId.
AMAZON_RETAIL_SELLER_ID: Final = "ATVPDKIKX0DER"
FBA_CHANNEL_CODE: Final = "AMAZON_NA"
MERCHANT_CHANNEL_CODE: Final = "DEFAULT"
LISTINGS_FEED_TYPE: Final = "JSON_LISTINGS_FEED"
MAX_PRICING_BATCH: Final = 20
MAX_SEARCH_PAGE_SIZE: Final = 20
MAX_SEARCH_RESULTS: Final = 1000  # searchListingsItems pages through at most 1000 SKUs
PRESIGNED_URL_TTL_S: Final = 300.0  # feed document upload/download URLs live 5 minutes
MAX_ORDERS_PAGE: Final = 100  # getOrders MaxResultsPerPage: 1..100, default 100
MAX_ORDER_MARKETPLACES: Final = 50  # getOrders MarketplaceIds maxItems
ORDER_ITEMS_PAGE: Final = 100  # order items per getOrderItems page (the model sets none)
# LastUpdatedBefore / CreatedBefore must be at least this long before the current time.
ORDERS_BEFORE_MARGIN_S: Final = 120.0
