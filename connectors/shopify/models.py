"""Config model of a Shopify channel (``kind: shopify``) and the wire shapes we read back.

The wire models are parsed here and never leave the package: the channel turns them into the
domain types of ``connectors.base``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.alias_generators import to_camel

from connectors.shopify.const import GRAPHQL_PATH, TOKEN_PATH

SHOP_DOMAIN = r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$"
LOCATION_GID = r"^gid://shopify/Location/[0-9]+$"


class ShopifySettings(BaseModel):
    """``kind: shopify``: one shop, written through the Admin GraphQL API.

    Auth is exactly one of ``access_token`` (the static ``shpat_`` token of a legacy custom app,
    sent as is) or ``client_id`` + ``client_secret`` (a Dev Dashboard app installed on the shop:
    ~24 h tokens from the client-credentials grant, fetched and renewed by the connector).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["shopify"]
    shop: str = Field(pattern=SHOP_DOMAIN, description="the shop's myshopify.com domain")
    endpoint: str = Field(
        default="",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="API base URL (default https://{shop}); point it at a mock or a proxy",
    )
    access_token: SecretStr | None = Field(
        default=None, description="static Admin API access token of a legacy custom app (shpat_)"
    )
    client_id: str | None = Field(
        default=None, min_length=1, description="Dev Dashboard app's client ID"
    )
    client_secret: SecretStr | None = Field(
        default=None, description="Dev Dashboard app's client secret (client-credentials grant)"
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key of X-Shopify-Hmac-Sha256 (the app's client secret; default:"
        " client_secret)",
    )
    location_id: str | None = Field(
        default=None,
        pattern=LOCATION_GID,
        description="location whose quantities we manage (default: the shop's primary location)",
    )
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="the shop's currency")
    request_timeout_s: float = Field(default=30.0, gt=0, le=300)
    webhook_max_age_s: float = Field(
        default=900.0,
        gt=0,
        description="a delivery triggered longer ago than this is stale (Shopify retries for 4 h)",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_endpoint(cls, data: Any) -> Any:
        shop = data.get("shop") if isinstance(data, dict) else None
        if isinstance(data, dict) and not data.get("endpoint") and isinstance(shop, str):
            return {**data, "endpoint": f"https://{data['shop']}"}
        return data

    @model_validator(mode="after")
    def _one_auth(self) -> ShopifySettings:
        static = self.access_token is not None
        granted = self.client_id is not None or self.client_secret is not None
        if static and granted:
            raise ValueError(
                "give either access_token or client_id + client_secret, not both"
                " (a Dev Dashboard app has no static token)"
            )
        if not static and not granted:
            raise ValueError(
                "no Shopify credentials: give client_id + client_secret (a Dev Dashboard app)"
                " or access_token (a legacy custom app's shpat_ token)"
            )
        if granted and (self.client_id is None or self.client_secret is None):
            raise ValueError("client_id and client_secret go together")
        return self

    @property
    def webhook_key(self) -> SecretStr | None:
        """The HMAC key of webhooks: ``webhook_secret``, else a Dev Dashboard app's secret."""
        # Shopify signs an app's webhooks with the app's client secret ("About client
        # credentials"), so a client-credentials channel needs no second copy of it.
        return self.webhook_secret if self.webhook_secret is not None else self.client_secret

    @property
    def token_url(self) -> str:
        """The shop's OAuth token endpoint (client-credentials grant)."""
        return self.endpoint.rstrip("/") + TOKEN_PATH

    @property
    def graphql_url(self) -> str:
        """The pinned-version GraphQL endpoint of this shop."""
        return self.endpoint.rstrip("/") + GRAPHQL_PATH


class Wire(BaseModel):
    """Base of the response shapes: camelCase on the wire, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class ThrottleStatus(Wire):
    """``extensions.cost.throttleStatus``: the shop's cost bucket as Shopify sees it."""

    maximum_available: float
    currently_available: float
    restore_rate: float


class QueryCost(Wire):
    """``extensions.cost`` of one response."""

    requested_query_cost: float | None = None
    actual_query_cost: float | None = None
    throttle_status: ThrottleStatus | None = None


class UserError(Wire):
    """One ``userErrors`` entry: a business refusal inside a 200 answer."""

    field: list[str] | None = None
    message: str
    code: str | None = None

    def index_after(self, name: str) -> int | None:
        """The list index following ``name`` in the field path (``["variants", "0", ...]``)."""
        path = self.field or []
        for pos, part in enumerate(path[:-1]):
            if part == name and path[pos + 1].isdigit():
                return int(path[pos + 1])
        return None


class Node(Wire):
    """Any object we only need the GID of."""

    id: str


class ProductRef(Wire):
    """The product a variant belongs to (ACTIVE, DRAFT or ARCHIVED)."""

    id: str
    status: str | None = None


class Quantity(Wire):
    """One named inventory quantity (``available``, ``on_hand``...)."""

    name: str
    quantity: int


class InventoryLevel(Wire):
    """An inventory item's quantities at one location."""

    quantities: list[Quantity]

    def named(self, name: str) -> int | None:
        """The quantity called ``name``, if Shopify returned it."""
        return next((q.quantity for q in self.quantities if q.name == name), None)


class InventoryItem(Wire):
    """The stock-keeping side of a variant; ``inventory_level`` is null when not stocked here."""

    id: str
    inventory_level: InventoryLevel | None = None


class Variant(Wire):
    """A product variant: our listing (its SKU, price and stock at our location)."""

    id: str
    sku: str | None = None
    price: Decimal
    product: ProductRef
    inventory_item: InventoryItem | None = None


class PageInfo(Wire):
    """Cursor pagination state of a connection."""

    has_next_page: bool
    end_cursor: str | None = None


class VariantPage(Wire):
    """One page of ``productVariants``."""

    nodes: list[Variant]
    page_info: PageInfo


class PricedVariant(Wire):
    """A variant as ``productVariantsBulkUpdate`` returns it."""

    id: str
    price: Decimal


class VariantsBulkUpdatePayload(Wire):
    """``productVariantsBulkUpdate`` result."""

    product_variants: list[PricedVariant] | None = None
    user_errors: list[UserError] = Field(default_factory=list)


class InventoryAdjustmentGroup(Wire):
    """The adjustment group of an applied ``inventorySetQuantities``."""

    reason: str | None = None
    reference_document_uri: str | None = None


class SetQuantitiesPayload(Wire):
    """``inventorySetQuantities`` result: a group when applied, userErrors when not."""

    inventory_adjustment_group: InventoryAdjustmentGroup | None = None
    user_errors: list[UserError] = Field(default_factory=list)


class LevelNode(Wire):
    """An InventoryItem as ``nodes(ids:)`` returns it when we re-read live quantities."""

    id: str
    inventory_level: InventoryLevel | None = None


class Location(Wire):
    """A stock location."""

    id: str
    name: str | None = None
    is_active: bool = True
