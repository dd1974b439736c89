"""Scopes, API families, quotas, rate limits and error domains of the mock eBay APIs.

Facts: /work/shared/guides/marketplace-apis.md §3 and §5 and the OAS in connectors/specs/ebay;
limits and errorIds of one API sit next to the check that uses them.
"""

from typing import Final

from connectors.ratelimit import RateLimit

API_SCOPE: Final = "https://api.ebay.com/oauth/api_scope"
INVENTORY_SCOPE: Final = "https://api.ebay.com/oauth/api_scope/sell.inventory"
INVENTORY_READONLY_SCOPE: Final = "https://api.ebay.com/oauth/api_scope/sell.inventory.readonly"
FULFILLMENT_SCOPE: Final = "https://api.ebay.com/oauth/api_scope/sell.fulfillment"
FULFILLMENT_READONLY_SCOPE: Final = "https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly"
INVENTORY_READ: Final = frozenset({INVENTORY_SCOPE, INVENTORY_READONLY_SCOPE})
FULFILLMENT_READ: Final = frozenset({FULFILLMENT_SCOPE, FULFILLMENT_READONLY_SCOPE})
# What the seller consented to (the refresh token's scopes).
USER_SCOPES: Final = INVENTORY_READ | FULFILLMENT_READ | {API_SCOPE}

# The API families the mock serves; quotas, buckets, counters and error domains are keyed by these.
INVENTORY_API: Final = "sell.inventory"
FULFILLMENT_API: Final = "sell.fulfillment"
BROWSE_API: Final = "buy.browse"
NOTIFICATION_API: Final = "commerce.notification"

# Per-application daily call quotas, reset at midnight Pacific (guide §3.6). Browse and
# Notification are documented; Inventory is eBay's call-limits table as remembered and
# Fulfillment is not in the guide: both **unconfirmed**.
DAILY_QUOTAS: Final = {
    INVENTORY_API: 2_000_000,
    FULFILLMENT_API: 100_000,
    BROWSE_API: 5_000,
    NOTIFICATION_API: 10_000,
}

# Short-term limits: eBay publishes none for these REST APIs (guide §3.6); these buckets are the
# mock's own assumption so that bursts are refused somewhere. Configurable per state.
RATE_LIMITS: Final = {
    INVENTORY_API: RateLimit(25, 50),
    FULFILLMENT_API: RateLimit(5, 10),
    BROWSE_API: RateLimit(5, 10),
    NOTIFICATION_API: RateLimit(5, 10),
}

# Each API's error domain, subdomain and 500 system error (Fulfillment's 30500 and the Browse
# 12xxx ids are **unconfirmed**; the others are the OAS x-response-codes).
INTERNAL: Final = (
    "There was a problem with an eBay internal system or process. Contact eBay developer support "
    "for assistance."
)
ERROR_DOMAINS: Final[dict[str, tuple[str, str | None, int, str]]] = {
    INVENTORY_API: ("API_INVENTORY", "Inventory", 25001, "A system error has occurred."),
    FULFILLMENT_API: ("API_FULFILLMENT", None, 30500, INTERNAL),
    BROWSE_API: ("API_BROWSE", None, 12000, INTERNAL),
    NOTIFICATION_API: ("API_NOTIFICATION", None, 195000, INTERNAL),
}
