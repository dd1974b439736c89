"""Query resolvers: views over the mock state (the default resolver reads their attributes and
calls their methods with the field's arguments)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, TypeAlias

from graphql import GraphQLError, GraphQLResolveInfo

from connectors.mock.shopify.paging import MAX_PAGE_SIZE, order_filter, paginate, search_filter
from connectors.mock.shopify.state import (
    MockLocation,
    MockOrder,
    MockVariant,
    OrderLine,
    ShopifyMockState,
    gid,
    gid_number,
    level_gid,
)

KNOWN_QUANTITY_NAMES = frozenset(
    {
        "available",
        "committed",
        "damaged",
        "incoming",
        "on_hand",
        "quality_control",
        "reserved",
        "safety_stock",
    }
)
# OrderSortKeys paged by a time (then id); the others page by id.
SORT_TIMES = {"CREATED_AT": "createdAt", "UPDATED_AT": "updatedAt", "PROCESSED_AT": "processedAt"}


@dataclass
class RequestContext:
    """Per-request context: the store, and the webhooks the request's writes trigger."""

    state: ShopifyMockState
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


# Resolvers get the request context in ``info.context``.
Info: TypeAlias = "GraphQLResolveInfo[RequestContext]"


class View:
    """A GraphQL object over the store; ``typename`` names its type (``Node`` resolves by it)."""

    typename: ClassVar[str]
    id: str

    def __init__(self, state: ShopifyMockState) -> None:
        self.state = state

    def number(self) -> int:
        """Numeric id (pagination order)."""
        return gid_number(self.id, self.typename) or 0

    @property
    def legacyResourceId(self) -> int:
        """The numeric id (REST's)."""
        return self.number()


class ProductView(View):
    """``Product``."""

    typename = "Product"

    def __init__(self, state: ShopifyMockState, product_gid: str) -> None:
        super().__init__(state)
        self.product = state.products[product_gid]
        self.id, self.title, self.handle = product_gid, self.product.title, self.product.handle
        self.status = "ACTIVE"
        self.createdAt, self.updatedAt = self.product.created_at, self.product.updated_at

    @property
    def totalInventory(self) -> int:
        """Available units over every variant."""
        return sum(self.state.inventory_quantity(v.variant) for v in self._variants())

    def _variants(self) -> list[VariantView]:
        return [VariantView(self.state, self.state.variants[g]) for g in self.product.variant_gids]

    def variants(self, _info: Info, **page: Any) -> dict[str, Any]:
        """``Product.variants`` connection."""
        return paginate(self._variants(), **page)


class VariantView(View):
    """``ProductVariant``; ``reported`` overrides what a dropped write pretends to have set."""

    typename = "ProductVariant"

    def __init__(
        self, state: ShopifyMockState, variant: MockVariant, reported: dict[str, Any] | None = None
    ) -> None:
        super().__init__(state)
        self.variant, self._reported = variant, reported or {}
        self.id, self.sku, self.title = variant.gid, variant.sku, variant.title
        self.createdAt, self.updatedAt = variant.created_at, variant.updated_at

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
        return ProductView(self.state, self.variant.product_gid)

    @property
    def inventoryItem(self) -> ItemView:
        """The variant's inventory item."""
        return ItemView(self.state, self.variant)


class ItemView(View):
    """``InventoryItem``."""

    typename = "InventoryItem"

    def __init__(self, state: ShopifyMockState, variant: MockVariant) -> None:
        super().__init__(state)
        self._variant = variant
        self.id, self.sku, self.tracked = variant.item_gid, variant.sku, True

    @property
    def variant(self) -> VariantView:
        """The variant this item stocks."""
        return VariantView(self.state, self._variant)

    def inventoryLevel(self, _info: Info, locationId: str) -> LevelView | None:
        """The level at one location (null for an unknown location)."""
        location = self.state.location(locationId)
        return None if location is None else LevelView(self.state, self._variant, location)

    def inventoryLevels(self, _info: Info, **page: Any) -> dict[str, Any]:
        """Levels at every location."""
        levels = [LevelView(self.state, self._variant, loc) for loc in self.state.locations]
        return paginate(levels, **page)


class LevelView(View):
    """``InventoryLevel`` of one item at one location."""

    typename = "InventoryLevel"

    def __init__(
        self, state: ShopifyMockState, variant: MockVariant, location: MockLocation
    ) -> None:
        super().__init__(state)
        self.variant, self._location = variant, location
        self.id, self.updatedAt = level_gid(variant.item_gid, location.gid), variant.updated_at

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
        where = self._location.gid
        values = {
            "available": self.state.available(self.variant, where),
            "committed": self.state.committed_at(self.variant, where),
            "on_hand": self.state.on_hand(self.variant, where),
        }
        return [
            {"name": n, "quantity": values.get(n, 0), "updatedAt": self.updatedAt} for n in names
        ]


class LocationView(View):
    """``Location``."""

    typename = "Location"

    def __init__(self, state: ShopifyMockState, location: MockLocation) -> None:
        super().__init__(state)
        self._location = location
        self.id, self.name, self.isActive = location.gid, location.name, location.active

    def inventoryLevel(self, _info: Info, inventoryItemId: str) -> LevelView | None:
        """The level of one item here (null for an unknown item)."""
        variant = self.state.variant_by_item(inventoryItemId)
        return None if variant is None else LevelView(self.state, variant, self._location)


class LineItemView(View):
    """``LineItem``."""

    typename = "LineItem"

    def __init__(self, state: ShopifyMockState, order: MockOrder, line: OrderLine) -> None:
        super().__init__(state)
        self.line, self.id = line, gid("LineItem", line.line_id)
        self.sku, self.quantity = line.sku, line.quantity
        self.currentQuantity = 0 if order.cancelled_at else line.quantity
        variant = state.variants.get(line.variant_gid)
        self.name = variant.title if variant is not None else line.sku

    @property
    def variant(self) -> VariantView | None:
        """The variant sold (null once deleted)."""
        variant = self.state.variants.get(self.line.variant_gid)
        return None if variant is None else VariantView(self.state, variant)


class OrderView(View):
    """``Order``."""

    typename = "Order"

    def __init__(self, state: ShopifyMockState, order: MockOrder) -> None:
        super().__init__(state)
        self.order, self.id = order, gid("Order", order.order_id)
        self.name = f"#{order.number}"
        self.createdAt = self.processedAt = order.created_at
        self.updatedAt, self.cancelledAt = order.updated_at, order.cancelled_at
        self.cancelReason = "CUSTOMER" if order.cancelled_at else None

    def lineItems(self, _info: Info, **page: Any) -> dict[str, Any]:
        """``Order.lineItems`` connection."""
        lines = [LineItemView(self.state, self.order, line) for line in self.order.lines]
        return paginate(lines, **page)


def node(state: ShopifyMockState, value: str) -> View | None:
    """Any object by GID (None when unknown)."""
    variant = state.variants.get(value)
    if variant is not None:
        return VariantView(state, variant)
    if value in state.products:
        return ProductView(state, value)
    variant = state.variant_by_item(value)
    if variant is not None:
        return ItemView(state, variant)
    location = state.location(value)
    if location is not None:
        return LocationView(state, location)
    order = state.orders.get(gid_number(value, "Order") or 0)
    if order is not None:
        return OrderView(state, order)
    # gid://shopify/InventoryLevel/<location>?inventory_item_id=<item>
    head, _, item = value.partition("?inventory_item_id=")
    location = state.location(gid("Location", gid_number(head, "InventoryLevel") or 0))
    variant = state.variant_by_item(gid("InventoryItem", int(item))) if item.isdigit() else None
    return None if location is None or variant is None else LevelView(state, variant, location)


def _by_id(kind: type[View]) -> Any:
    """A root field answering the object of one type by GID (null when unknown)."""

    def resolve(_root: Any, info: Info, id: str) -> View | None:
        found = node(info.context.state, id)
        return found if isinstance(found, kind) else None

    return resolve


class QueryRoot:
    """Resolvers of ``Query`` (the root value of queries)."""

    productVariant = _by_id(VariantView)
    product = _by_id(ProductView)
    inventoryItem = _by_id(ItemView)
    order = _by_id(OrderView)

    def node(self, info: Info, id: str) -> View | None:
        """Any object by GID (null when unknown)."""
        return node(info.context.state, id)

    def nodes(self, info: Info, ids: list[str]) -> list[View | None]:
        """Objects by GID, in order, null for the unknown ones."""
        if len(ids) > MAX_PAGE_SIZE:
            raise too_many(ids)
        return [node(info.context.state, gid) for gid in ids]

    def productVariants(self, info: Info, query: str | None = None, **page: Any) -> dict[str, Any]:
        """All variants (optionally filtered), by id."""
        state, keep = info.context.state, search_filter(query)
        views = [VariantView(state, variant) for variant in state.variants.values()]
        return paginate([view for view in views if keep(view)], **page)

    def products(self, info: Info, query: str | None = None, **page: Any) -> dict[str, Any]:
        """All products, by id (``query`` accepts bare words matched against the title)."""
        state, needle = info.context.state, (query or "").strip().lower()
        views = [ProductView(state, product_gid) for product_gid in state.products]
        return paginate([view for view in views if needle in view.title.lower()], **page)

    def locations(self, info: Info, includeInactive: bool, **page: Any) -> dict[str, Any]:
        """Locations of the shop."""
        state = info.context.state
        locations = [loc for loc in state.locations if loc.active or includeInactive]
        return paginate([LocationView(state, loc) for loc in locations], **page)

    def location(self, info: Info, id: str | None = None) -> LocationView | None:
        """One location (the primary one without an id)."""
        state = info.context.state
        location = state.primary_location if id is None else state.location(id)
        return None if location is None else LocationView(state, location)

    def orders(
        self, info: Info, sortKey: str, query: str | None = None, **page: Any
    ) -> dict[str, Any]:
        """Orders of the shop, filtered by ``query``, sorted by ``sortKey``."""
        state, keep = info.context.state, order_filter(query)
        views = [OrderView(state, order) for order in state.orders.values()]
        return paginate([v for v in views if keep(v)], sort=SORT_TIMES.get(sortKey), **page)

    def shop(self, info: Info) -> dict[str, Any]:
        """The shop."""
        state = info.context.state
        return {
            "id": "gid://shopify/Shop/1",
            "name": state.shop_domain.split(".", 1)[0],
            "myshopifyDomain": state.shop_domain,
            "currencyCode": state.currency,
        }


def too_many(items: list[Any], **extensions: str) -> GraphQLError:
    """Shopify's refusal of an input array over 250 items."""
    return GraphQLError(
        f"The input array size of {len(items)} is greater than the maximum allowed of "
        f"{MAX_PAGE_SIZE}.",
        extensions={"code": "MAX_INPUT_SIZE_EXCEEDED", **extensions},
    )
