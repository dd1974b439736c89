"""Config model of an eBay channel (``kind: ebay``) and the wire shapes we read back.

eBay writes money as ``{"value": "24.99", "currency": "USD"}`` with a *string* value (§3.7):
``money_str`` writes it, ``to_money`` reads it. The wire models never leave the package.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.alias_generators import to_camel

from connectors.ebay.const import (
    API_ENDPOINT,
    DAILY_CALL_QUOTAS,
    DAILY_REVISION_LIMIT,
    PUBLIC_KEY_TTL_S,
    RATE_LIMITS,
    SCOPE_INVENTORY,
    SCOPE_PUBLIC,
    TOKEN_ENDPOINT,
)
from connectors.ratelimit import RateLimit

URL = r"^https?://[^\s/]+(/[^\s]*)?$"


class EbaySettings(BaseModel):
    """``kind: ebay``: one seller account on one eBay marketplace (Sell Inventory API)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ebay"]
    endpoint: str = Field(default=API_ENDPOINT, pattern=URL, description="REST API base URL")
    auth_endpoint: str = Field(default=TOKEN_ENDPOINT, pattern=URL)
    marketplace_id: str = Field(default="EBAY_US", pattern=r"^EBAY_[A-Z_]+$")
    client_id: str = Field(min_length=1, description="the app's client id (App ID)")
    client_secret: SecretStr = Field(description="the app's client secret (Cert ID)")
    refresh_token: SecretStr = Field(description="the seller's user refresh token")
    scopes: tuple[str, ...] = Field(
        default=(SCOPE_INVENTORY,), min_length=1, description="scopes of the user token"
    )
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    own_seller_id: str | None = Field(
        default=None, description="our eBay username: Browse offers carrying it are ours"
    )
    verification_token: SecretStr | None = Field(
        default=None, description="the destination's verificationToken (challenge hash)"
    )
    webhook_endpoint_url: str | None = Field(
        default=None,
        pattern=URL,
        description="the public URL eBay calls, exactly as registered on the destination",
    )
    daily_revision_limit: int = Field(default=DAILY_REVISION_LIMIT, ge=1)
    low_budget_ratio: float = Field(
        default=0.10, ge=0, le=1, description="below this share of revisions left, coalesce"
    )
    coalesce_min_change: Decimal = Field(
        default=Decimal("0.02"), ge=0, description="smallest relative price move sent when low"
    )
    stock_reserve: int = Field(
        default=5, ge=0, description="last revisions of a listing kept for stock updates"
    )
    daily_call_quotas: dict[str, int] = Field(
        default_factory=lambda: dict(DAILY_CALL_QUOTAS),
        description="calls per day per API family (reset at midnight Pacific)",
    )
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=lambda: dict(RATE_LIMITS),
        description="calls per second and burst per API family (eBay publishes none)",
    )
    browse_enabled: bool = Field(default=False, description="read competitors via Browse")
    browse_query: Literal["gtin", "title"] = "gtin"
    browse_limit: int = Field(default=50, ge=1, le=200)
    browse_filter: str | None = Field(
        default="buyingOptions:{FIXED_PRICE},conditionIds:{1000}",
        description="Browse ``filter`` (priceCurrency is always added)",
    )
    request_timeout_s: float = Field(default=30.0, gt=0, le=300)
    public_key_ttl_s: float = Field(default=PUBLIC_KEY_TTL_S, gt=0)

    @field_validator("daily_call_quotas")
    @classmethod
    def _complete_quotas(cls, value: dict[str, int]) -> dict[str, int]:
        if any(limit < 0 for limit in value.values()):
            raise ValueError("a daily quota cannot be negative")
        return {**DAILY_CALL_QUOTAS, **value}

    @field_validator("rate_limits")
    @classmethod
    def _complete_rate_limits(cls, value: dict[str, RateLimit]) -> dict[str, RateLimit]:
        return {**RATE_LIMITS, **value}

    @property
    def api_base(self) -> str:
        """The endpoint without a trailing slash."""
        return self.endpoint.rstrip("/")

    @property
    def public_scope(self) -> str:
        """Scope of the application token (Browse, Notification public keys)."""
        return SCOPE_PUBLIC


class Wire(BaseModel):
    """Base of the response shapes: camelCase as on the wire, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore"
    )


class Amount(Wire):
    """``Amount``: a string value and its currency."""

    value: str
    currency: str | None = None


class ErrorDetail(Wire):
    """``Error``: eBay's errorId, category and message."""

    error_id: int | None = None
    domain: str | None = None
    category: str | None = None
    message: str | None = None
    long_message: str | None = None


class PriceQuantityResponse(Wire):
    """One entry of a ``bulkUpdatePriceQuantity`` answer."""

    status_code: int | None = None
    sku: str | None = None
    offer_id: str | None = None
    errors: list[ErrorDetail] = Field(default_factory=list)
    warnings: list[ErrorDetail] = Field(default_factory=list)


class BulkPriceQuantityResponse(Wire):
    """``BulkPriceQuantityResponse``."""

    responses: list[PriceQuantityResponse] = Field(default_factory=list)


class ShipToLocation(Wire):
    """``ShipToLocationAvailabilityWithAll`` (only the total quantity)."""

    quantity: int | None = None


class Availability(Wire):
    """``AvailabilityWithAll``."""

    ship_to_location_availability: ShipToLocation | None = None


class Product(Wire):
    """The catalogue part of an inventory item (title, GTINs)."""

    title: str | None = None
    upc: list[str] = Field(default_factory=list)
    ean: list[str] = Field(default_factory=list)
    isbn: list[str] = Field(default_factory=list)

    def gtin(self) -> str | None:
        """The first GTIN eBay knows for the product (UPC, EAN, then ISBN)."""
        for code in (*self.upc, *self.ean, *self.isbn):
            if code and code.isdigit():
                return code
        return None


class InventoryItem(Wire):
    """``InventoryItemWithSkuLocaleGroupid``: one SKU of the seller."""

    sku: str
    availability: Availability | None = None
    product: Product | None = None


class InventoryItemsPage(Wire):
    """``InventoryItems``: one page of ``getInventoryItems``."""

    inventory_items: list[InventoryItem] = Field(default_factory=list)
    total: int | None = None
    limit: int | None = None
    next: str | None = None


class PricingSummary(Wire):
    """``PricingSummary`` (the fixed price only)."""

    price: Amount | None = None


class ListingDetails(Wire):
    """``ListingDetails``: the live listing of a published offer."""

    listing_id: str | None = None
    listing_status: str | None = None
    sold_quantity: int | None = None


class Offer(Wire):
    """``EbayOfferDetailsWithAll`` (what a listing needs)."""

    offer_id: str
    sku: str | None = None
    marketplace_id: str | None = None
    format: str | None = None
    available_quantity: int | None = None
    pricing_summary: PricingSummary | None = None
    listing: ListingDetails | None = None
    status: str | None = None


class OffersPage(Wire):
    """``Offers``: one page of ``getOffers``."""

    offers: list[Offer] = Field(default_factory=list)
    total: int | None = None
    next: str | None = None


def money_str(amount: Decimal) -> str:
    """A price as eBay's string ``value`` (two decimals, never an exponent)."""
    return format(amount.quantize(Decimal("0.01")), "f")


def to_money(value: object) -> Decimal | None:
    """A wire amount string → Decimal quantized to cents (None if it is not a finite amount)."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        result = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return result.quantize(Decimal("0.01")) if result.is_finite() else None
