"""Query resolvers: views over the mock state, which graphql-core's default resolver reads (an
attribute per field; a callable one is called with the field's arguments)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace as View
from typing import Any, TypeAlias

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


def _view(typename: str, gid_: str, **fields: Any) -> View:
    """A view of a ``Node``: ``legacyResourceId`` is its numeric id (and pagination order)."""
    number = fields.pop("number", None) or gid_number(gid_, typename) or 0
    return View(typename=typename, id=gid_, legacyResourceId=number, **fields)


def product_view(state: ShopifyMockState, product_gid: str) -> View:
    """``Product``."""
    product = state.products[product_gid]

    def variants() -> list[View]:
        return [variant_view(state, state.variants[g]) for g in product.variant_gids]

    return _view(
        "Product",
        product_gid,
        title=product.title,
        handle=product.handle,
        status="ACTIVE",
        createdAt=product.created_at,
        updatedAt=product.updated_at,
        totalInventory=lambda _info: sum(v.inventoryQuantity for v in variants()),
        variants=lambda _info, **page: paginate(variants(), **page),
    )


def variant_view(
    state: ShopifyMockState, variant: MockVariant, reported: dict[str, Any] | None = None
) -> View:
    """``ProductVariant``; ``reported`` overrides what a dropped write pretends to have set."""
    reported = reported or {}
    return _view(
        "ProductVariant",
        variant.gid,
        variant=variant,
        sku=variant.sku,
        title=variant.title,
        createdAt=variant.created_at,
        updatedAt=variant.updated_at,
        displayName=f"{state.products[variant.product_gid].title} - {variant.title}",
        price=reported.get("price", state.listing(variant).price),
        compareAtPrice=reported.get("compareAtPrice", variant.compare_at_price),
        inventoryQuantity=state.inventory_quantity(variant),
        product=lambda _info: product_view(state, variant.product_gid),
        inventoryItem=lambda _info: item_view(state, variant),
    )


def item_view(state: ShopifyMockState, variant: MockVariant) -> View:
    """``InventoryItem``; ``inventoryLevel`` is null for an unknown location."""

    def level(_info: Info, locationId: str) -> View | None:
        location = state.location(locationId)
        return None if location is None else level_view(state, variant, location)

    return _view(
        "InventoryItem",
        variant.item_gid,
        sku=variant.sku,
        tracked=True,
        variant=lambda _info: variant_view(state, variant),
        inventoryLevel=level,
        inventoryLevels=lambda _info, **page: paginate(
            [level_view(state, variant, loc) for loc in state.locations], **page
        ),
    )


def level_view(state: ShopifyMockState, variant: MockVariant, location: MockLocation) -> View:
    """``InventoryLevel`` of one item at one location (paged by the location's id)."""

    def quantities(_info: Info, names: list[str]) -> list[dict[str, Any]]:
        unknown = [n for n in names if n not in KNOWN_QUANTITY_NAMES]
        if unknown:
            raise GraphQLError(f"Invalid quantity names: {', '.join(unknown)}")
        values = {
            "available": state.available(variant, location.gid),
            "committed": state.committed_at(variant, location.gid),
            "on_hand": state.on_hand(variant, location.gid),
        }
        at = variant.updated_at
        return [{"name": n, "quantity": values.get(n, 0), "updatedAt": at} for n in names]

    return _view(
        "InventoryLevel",
        level_gid(variant.item_gid, location.gid),
        number=gid_number(location.gid, "Location"),
        updatedAt=variant.updated_at,
        location=lambda _info: location_view(state, location),
        item=lambda _info: item_view(state, variant),
        quantities=quantities,
    )


def location_view(state: ShopifyMockState, location: MockLocation) -> View:
    """``Location``; ``inventoryLevel`` is null for an unknown item."""

    def level(_info: Info, inventoryItemId: str) -> View | None:
        variant = state.variant_by_item(inventoryItemId)
        return None if variant is None else level_view(state, variant, location)

    return _view(
        "Location", location.gid, name=location.name, isActive=location.active, inventoryLevel=level
    )


def order_view(state: ShopifyMockState, order: MockOrder) -> View:
    """``Order`` and its ``LineItem``s (a line's variant is null once deleted)."""

    def line_view(line: OrderLine) -> View:
        variant = state.variants.get(line.variant_gid)
        return _view(
            "LineItem",
            gid("LineItem", line.line_id),
            sku=line.sku,
            quantity=line.quantity,
            currentQuantity=0 if order.cancelled_at else line.quantity,
            name=line.sku if variant is None else variant.title,
            variant=lambda _info: None if variant is None else variant_view(state, variant),
        )

    return _view(
        "Order",
        gid("Order", order.order_id),
        name=f"#{order.number}",
        createdAt=order.created_at,
        processedAt=order.created_at,
        updatedAt=order.updated_at,
        cancelledAt=order.cancelled_at,
        cancelReason="CUSTOMER" if order.cancelled_at else None,
        lineItems=lambda _info, **page: paginate([line_view(li) for li in order.lines], **page),
    )


def node(state: ShopifyMockState, value: str) -> View | None:
    """Any object by GID (None when unknown)."""
    variant = state.variants.get(value)
    if variant is not None:
        return variant_view(state, variant)
    if value in state.products:
        return product_view(state, value)
    variant = state.variant_by_item(value)
    if variant is not None:
        return item_view(state, variant)
    location = state.location(value)
    if location is not None:
        return location_view(state, location)
    order = state.orders.get(gid_number(value, "Order") or 0)
    if order is not None:
        return order_view(state, order)
    # gid://shopify/InventoryLevel/<location>?inventory_item_id=<item>
    head, _, item = value.partition("?inventory_item_id=")
    location = state.location(gid("Location", gid_number(head, "InventoryLevel") or 0))
    variant = state.variant_by_item(gid("InventoryItem", int(item))) if item.isdigit() else None
    return None if location is None or variant is None else level_view(state, variant, location)


def query_root(state: ShopifyMockState) -> View:
    """The root value of queries: ``Query``'s fields over ``state``."""

    def by_id(typename: str) -> Any:
        """A field answering the object of one type by GID (null when unknown or another type)."""

        def resolve(_info: Info, id: str) -> View | None:
            found = node(state, id)
            return found if found is not None and found.typename == typename else None

        return resolve

    def nodes(_info: Info, ids: list[str]) -> list[View | None]:
        if len(ids) > MAX_PAGE_SIZE:
            raise too_many(ids)
        return [node(state, value) for value in ids]

    def variants(_info: Info, query: str | None = None, **page: Any) -> dict[str, Any]:
        keep = search_filter(query)
        views = [variant_view(state, variant) for variant in state.variants.values()]
        return paginate([view for view in views if keep(view)], **page)

    def products(_info: Info, query: str | None = None, **page: Any) -> dict[str, Any]:
        needle = (query or "").strip().lower()  # bare words matched against the title
        views = [product_view(state, product_gid) for product_gid in state.products]
        return paginate([view for view in views if needle in view.title.lower()], **page)

    def locations(_info: Info, includeInactive: bool, **page: Any) -> dict[str, Any]:
        active = [loc for loc in state.locations if loc.active or includeInactive]
        return paginate([location_view(state, loc) for loc in active], **page)

    def location(_info: Info, id: str | None = None) -> View | None:
        found = state.primary_location if id is None else state.location(id)
        return None if found is None else location_view(state, found)

    def orders(_info: Info, sortKey: str, query: str | None = None, **page: Any) -> dict[str, Any]:
        keep = order_filter(query)
        views = [order_view(state, order) for order in state.orders.values()]
        return paginate([v for v in views if keep(v)], sort=SORT_TIMES.get(sortKey), **page)

    shop = {
        "id": "gid://shopify/Shop/1",
        "name": state.shop_domain.split(".", 1)[0],
        "myshopifyDomain": state.shop_domain,
        "currencyCode": state.currency,
    }
    return View(
        node=lambda _info, id: node(state, id),
        nodes=nodes,
        productVariants=variants,
        productVariant=by_id("ProductVariant"),
        products=products,
        product=by_id("Product"),
        inventoryItem=by_id("InventoryItem"),
        locations=locations,
        location=location,
        orders=orders,
        order=by_id("Order"),
        shop=shop,
    )


def too_many(items: list[Any], **extensions: str) -> GraphQLError:
    """Shopify's refusal of an input array over 250 items."""
    return GraphQLError(
        f"The input array size of {len(items)} is greater than the maximum allowed of "
        f"{MAX_PAGE_SIZE}.",
        extensions={"code": "MAX_INPUT_SIZE_EXCEEDED", **extensions},
    )
