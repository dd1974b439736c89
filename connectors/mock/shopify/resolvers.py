"""Query resolvers: views over the mock state (the default resolver reads their attributes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeAlias

from graphql import GraphQLError, GraphQLResolveInfo

from connectors.mock.shopify.orders import OrderView, list_orders, order_by_gid
from connectors.mock.shopify.paging import MAX_PAGE_SIZE, paginate, search_filter
from connectors.mock.shopify.state import (
    MockLocation,
    MockProduct,
    MockVariant,
    ShopifyMockState,
    gid_number,
)

KNOWN_QUANTITY_NAMES = (
    "available",
    "committed",
    "damaged",
    "incoming",
    "on_hand",
    "quality_control",
    "reserved",
    "safety_stock",
)


@dataclass
class RequestContext:
    """Per-request context: the store, and the webhooks the request's writes trigger."""

    state: ShopifyMockState
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


# Resolvers get the request context in ``info.context``.
Info: TypeAlias = "GraphQLResolveInfo[RequestContext]"


def state_of(info: Info) -> ShopifyMockState:
    """The store behind a resolver call."""
    return info.context.state


# -- views ----------------------------------------------------------------------------------


class ProductView:
    """``Product``."""

    typename = "Product"

    def __init__(self, state: ShopifyMockState, product: MockProduct) -> None:
        self.state, self.product = state, product
        self.id = product.gid
        self.legacyResourceId = gid_number(product.gid, "Product")
        self.title, self.handle = product.title, product.handle
        self.status = "ACTIVE"
        self.createdAt, self.updatedAt = product.created_at, product.updated_at

    @property
    def totalInventory(self) -> int:
        """Available units over every variant."""
        return sum(
            self.state.inventory_quantity(self.state.variants[g]) for g in self.product.variant_gids
        )

    def variants(
        self,
        _info: Info,
        first: int | None = None,
        after: str | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]:
        """``Product.variants`` connection."""
        views = [VariantView(self.state, self.state.variants[g]) for g in self.product.variant_gids]
        return paginate(views, VariantView.number, first, after, reverse)


class VariantView:
    """``ProductVariant``; ``reported`` overrides what a dropped write pretends to have set."""

    typename = "ProductVariant"

    def __init__(
        self, state: ShopifyMockState, variant: MockVariant, reported: dict[str, Any] | None = None
    ) -> None:
        self.state, self.variant = state, variant
        self.id, self.sku, self.title = variant.gid, variant.sku, variant.title
        self.legacyResourceId = VariantView.number(self)
        self.createdAt, self.updatedAt = variant.created_at, variant.updated_at
        self._reported = reported or {}

    def number(self) -> int:
        """Numeric id (pagination order)."""
        return gid_number(self.variant.gid, "ProductVariant") or 0

    @property
    def displayName(self) -> str:
        """Product title and variant title."""
        return f"{self.state.products[self.variant.product_gid].title} - {self.title}"

    @property
    def price(self) -> Decimal:
        """The variant price (Money)."""
        price: Decimal = self._reported.get("price", self.state.listing(self.variant).price)
        return price

    @property
    def compareAtPrice(self) -> Decimal | None:
        """The compare-at price (Money) or null."""
        value: Decimal | None = self._reported.get("compareAtPrice", self.variant.compare_at_price)
        return value

    @property
    def inventoryQuantity(self) -> int:
        """Available units over active locations."""
        return self.state.inventory_quantity(self.variant)

    @property
    def product(self) -> ProductView:
        """The parent product."""
        return ProductView(self.state, self.state.products[self.variant.product_gid])

    @property
    def inventoryItem(self) -> ItemView:
        """The variant's inventory item."""
        return ItemView(self.state, self.variant)


class ItemView:
    """``InventoryItem``."""

    typename = "InventoryItem"

    def __init__(self, state: ShopifyMockState, variant: MockVariant) -> None:
        self.state, self._variant = state, variant
        self.id, self.sku, self.tracked = variant.item_gid, variant.sku, True
        self.legacyResourceId = gid_number(variant.item_gid, "InventoryItem")

    @property
    def variant(self) -> VariantView:
        """The variant this item stocks."""
        return VariantView(self.state, self._variant)

    def inventoryLevel(self, _info: Info, locationId: str) -> LevelView | None:
        """The level at one location (null for an unknown location)."""
        location = self.state.location(locationId)
        return None if location is None else LevelView(self.state, self._variant, location)

    def inventoryLevels(
        self,
        _info: Info,
        first: int | None = None,
        after: str | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]:
        """Levels at every location."""
        levels = [LevelView(self.state, self._variant, loc) for loc in self.state.locations]
        return paginate(levels, LevelView.number, first, after, reverse)


class LevelView:
    """``InventoryLevel`` of one item at one location."""

    typename = "InventoryLevel"

    def __init__(
        self, state: ShopifyMockState, variant: MockVariant, location: MockLocation
    ) -> None:
        self.state, self.variant, self._location = state, variant, location
        item = gid_number(variant.item_gid, "InventoryItem")
        loc = gid_number(location.gid, "Location")
        self.id = f"gid://shopify/InventoryLevel/{loc}?inventory_item_id={item}"
        self.updatedAt = variant.updated_at

    def number(self) -> int:
        """Numeric id of the location (pagination order)."""
        return gid_number(self._location.gid, "Location") or 0

    @property
    def location(self) -> LocationView:
        """Where the units are."""
        return LocationView(self.state, self._location)

    @property
    def item(self) -> ItemView:
        """What the units are."""
        return ItemView(self.state, self.variant)

    def quantities(self, _info: Info, names: list[str]) -> list[dict[str, Any]]:
        """Named quantities; names outside Shopify's list are an error."""
        unknown = [n for n in names if n not in KNOWN_QUANTITY_NAMES]
        if unknown:
            raise GraphQLError(f"Invalid quantity names: {', '.join(unknown)}")
        values = {
            "available": self.state.available(self.variant, self._location.gid),
            "committed": self.state.committed_at(self.variant, self._location.gid),
            "on_hand": self.state.on_hand(self.variant, self._location.gid),
        }
        return [
            {"name": n, "quantity": values.get(n, 0), "updatedAt": self.updatedAt} for n in names
        ]


class LocationView:
    """``Location``."""

    typename = "Location"

    def __init__(self, state: ShopifyMockState, location: MockLocation) -> None:
        self.state, self._location = state, location
        self.id, self.name, self.isActive = location.gid, location.name, location.active
        self.legacyResourceId = self.number()

    def number(self) -> int:
        """Numeric id (pagination order)."""
        return gid_number(self._location.gid, "Location") or 0

    def inventoryLevel(self, _info: Info, inventoryItemId: str) -> LevelView | None:
        """The level of one item here (null for an unknown item)."""
        variant = self.state.variant_by_item(inventoryItemId)
        return None if variant is None else LevelView(self.state, variant, self._location)


# -- Query root -----------------------------------------------------------------------------


class QueryRoot:
    """Resolvers of ``Query`` (the root value of queries)."""

    def node(self, info: Info, id: str) -> Any:
        """Any object by GID (null when unknown)."""
        return _node(state_of(info), id)

    def nodes(self, info: Info, ids: list[str]) -> list[Any]:
        """Objects by GID, in order, null for the unknown ones."""
        if len(ids) > MAX_PAGE_SIZE:
            raise GraphQLError(
                f"The input array size of {len(ids)} is greater than the maximum allowed of "
                f"{MAX_PAGE_SIZE}.",
                extensions={"code": "MAX_INPUT_SIZE_EXCEEDED"},
            )
        state = state_of(info)
        return [_node(state, gid) for gid in ids]

    def productVariants(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        reverse: bool = False,
        query: str | None = None,
    ) -> dict[str, Any]:
        """All variants (optionally filtered), by id."""
        state = state_of(info)
        keep = search_filter(query)
        views = [v for v in (VariantView(state, x) for x in state.variants.values()) if keep(v)]
        return paginate(views, VariantView.number, first, after, reverse)

    def productVariant(self, info: Info, id: str) -> VariantView | None:
        """One variant by GID."""
        state = state_of(info)
        variant = state.variants.get(id)
        return None if variant is None else VariantView(state, variant)

    def products(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        reverse: bool = False,
        query: str | None = None,
    ) -> dict[str, Any]:
        """All products, by id (``query`` accepts bare words matched against the title)."""
        state = state_of(info)
        views = [ProductView(state, p) for p in state.products.values()]
        if query and query.strip():
            needle = query.strip().lower()
            views = [v for v in views if needle in v.title.lower()]
        return paginate(views, lambda v: v.legacyResourceId or 0, first, after, reverse)

    def product(self, info: Info, id: str) -> ProductView | None:
        """One product by GID."""
        state = state_of(info)
        product = state.products.get(id)
        return None if product is None else ProductView(state, product)

    def inventoryItem(self, info: Info, id: str) -> ItemView | None:
        """One inventory item by GID."""
        state = state_of(info)
        variant = state.variant_by_item(id)
        return None if variant is None else ItemView(state, variant)

    def locations(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        reverse: bool = False,
        includeInactive: bool = False,
    ) -> dict[str, Any]:
        """Locations of the shop."""
        state = state_of(info)
        views = [
            LocationView(state, loc) for loc in state.locations if loc.active or includeInactive
        ]
        return paginate(views, LocationView.number, first, after, reverse)

    def location(self, info: Info, id: str | None = None) -> LocationView | None:
        """One location (the primary one without an id)."""
        state = state_of(info)
        location = state.primary_location if id is None else state.location(id)
        return None if location is None else LocationView(state, location)

    def orders(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        reverse: bool = False,
        query: str | None = None,
        sortKey: str = "ID",
    ) -> dict[str, Any]:
        """Orders of the shop, filtered by ``query``, sorted by ``sortKey``."""
        return list_orders(state_of(info), first, after, reverse, query, sortKey)

    def order(self, info: Info, id: str) -> OrderView | None:
        """One order by GID."""
        return order_by_gid(state_of(info), id)

    def shop(self, info: Info) -> dict[str, Any]:
        """The shop."""
        state = state_of(info)
        return {
            "id": "gid://shopify/Shop/1",
            "name": state.shop_domain.split(".", 1)[0],
            "myshopifyDomain": state.shop_domain,
            "currencyCode": state.currency,
        }


def _node(state: ShopifyMockState, gid: str) -> Any:
    variant = state.variants.get(gid)
    if variant is not None:
        return VariantView(state, variant)
    product = state.products.get(gid)
    if product is not None:
        return ProductView(state, product)
    variant = state.variant_by_item(gid)
    if variant is not None:
        return ItemView(state, variant)
    location = state.location(gid)
    if location is not None:
        return LocationView(state, location)
    order = order_by_gid(state, gid)
    if order is not None:
        return order
    return _level(state, gid)


def _level(state: ShopifyMockState, gid: str) -> LevelView | None:
    # gid://shopify/InventoryLevel/<location>?inventory_item_id=<item>
    head, _, query = gid.partition("?inventory_item_id=")
    location_number = gid_number(head, "InventoryLevel")
    if location_number is None or not query.isdigit():
        return None
    location = state.location(f"gid://shopify/Location/{location_number}")
    variant = state.variant_by_item(f"gid://shopify/InventoryItem/{query}")
    if location is None or variant is None:
        return None
    return LevelView(state, variant, location)
