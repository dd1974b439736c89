"""Query resolvers: views over the mock state that graphql-core's default resolver reads (a
callable attribute is called with the field's arguments), Relay paging and Shopify's search syntax.

Variant search: ``sku:`` (``*`` wildcards), ``product_id:``, ``id:``, ``inventory_item_id:``, bare
words (SKU or title). Order search: ``created_at:``, ``updated_at:``, ``processed_at:`` (``>``,
``>=``, ``<``, ``<=`` or equal; a bare date is midnight UTC; an unparsable one is an error, so a
connector bug shows), ``id:``, ``name:``. Both: quoted values, backslash escapes, implicit AND,
``OR``, ``-``; unknown fields are ignored, as Shopify does. Pages go by numeric id or by (a time
at whole seconds, id), the cursor carrying both, as Shopify's do.
"""

from __future__ import annotations

import binascii
import fnmatch
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace as View
from typing import Any, TypeAlias

from graphql import GraphQLError, GraphQLResolveInfo

from connectors.mock.kit.wire import b64_json, from_b64_json
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

MAX_PAGE_SIZE = 250  # Shopify's maximum `first` (and input array size)
Predicate = Callable[[Any], bool]


def seconds(moment: datetime) -> datetime:
    """A time in UTC at whole seconds (what Shopify compares and sorts by)."""
    return moment.astimezone(UTC).replace(microsecond=0)


def paginate(
    items: Sequence[Any],
    first: int | None = None,
    after: str | None = None,
    reverse: bool = False,
    sort: str | None = None,
) -> dict[str, Any]:
    """A Relay connection page over views, by numeric id or by (``sort`` time, numeric id)."""
    if first is None:
        raise GraphQLError("you must provide one of first or last")
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}, got {first}.")

    def position(view: Any) -> tuple[Any, ...]:
        number = view.legacyResourceId
        return (seconds(getattr(view, sort)), number) if sort else (number,)

    ordered = sorted(items, key=position, reverse=reverse)
    if after is not None:
        last = _position(after, sort)
        ordered = [i for i in ordered if (position(i) < last if reverse else position(i) > last)]
    page = ordered[:first]
    edges = [{"cursor": _cursor(position(item)), "node": item} for item in page]
    return {
        "edges": edges,
        "nodes": list(page),
        "pageInfo": {
            "hasNextPage": len(ordered) > first,
            "hasPreviousPage": after is not None,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


def _cursor(position: tuple[Any, ...]) -> str:
    value = position[0].isoformat() if isinstance(position[0], datetime) else str(position[0])
    return b64_json({"last_id": position[-1], "last_value": value})


def _position(cursor: str, sort: str | None) -> tuple[Any, ...]:
    try:
        decoded = from_b64_json(cursor)
        last = int(decoded["last_id"])
        return (datetime.fromisoformat(decoded["last_value"]), last) if sort else (last,)
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor}") from err


# A value is a name or a quoted string (single or double quotes); a backslash escapes the next
# character inside quotes and out (Shopify's search syntax: special characters ``: \\ ( )`` and
# quotes are escaped with ``\\``).
_TERM = re.compile(
    r'(-?)(\w+):("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|(?:[^\s\\]|\\.)+)|((?:[^\s\\]|\\.)+)'
)
_ESCAPED = re.compile(r"\\(.)")
_COMPARISON = re.compile(r"(>=|<=|>|<)?(.*)", re.DOTALL)
_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_TIME_FIELDS = {"created_at": "createdAt", "updated_at": "updatedAt", "processed_at": "processedAt"}
# variant search field -> (MockVariant attribute holding the GID, GID kind)
_VARIANT_IDS = {
    "id": ("gid", "ProductVariant"),
    "product_id": ("product_gid", "Product"),
    "inventory_item_id": ("item_gid", "InventoryItem"),
}


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    return _ESCAPED.sub(r"\1", raw)


def _search(query: str | None, term: Callable[[str | None, str], Predicate | None]) -> Predicate:
    """The predicate of a search string, each ``name:value`` (or bare) term built by ``term``."""
    if not query or not query.strip():
        return lambda _view: True
    groups: list[list[tuple[bool, Predicate]]] = [[]]  # (negated, term) ANDed, groups ORed
    for match in _TERM.finditer(query):
        negate, name, raw, bare = match.groups()
        if bare in ("OR", "or"):
            groups.append([])
            continue
        predicate = None if bare in ("AND", "and") else term(name and name.lower(), raw or bare)
        if predicate is not None:
            groups[-1].append((bool(negate), predicate))
    return lambda view: any(all(p(view) != neg for neg, p in group) for group in groups)


def search_filter(query: str | None) -> Predicate:
    """Which variant views ``productVariants(query:)`` keeps (see the module docstring)."""
    return _search(query, _variant_term)


def _variant_term(name: str | None, raw: str) -> Predicate | None:
    value = _unquote(raw)
    if name == "sku":
        return lambda view: fnmatch.fnmatchcase(view.variant.sku.lower(), value.lower())
    if name in _VARIANT_IDS:
        attribute, kind = _VARIANT_IDS[name]
        numeric = value.rsplit("/", 1)[-1]
        return lambda view: str(gid_number(getattr(view.variant, attribute), kind)) == numeric
    if name is None:
        needle = value.lower()
        return lambda view: needle in view.variant.sku.lower() or needle in view.title.lower()
    return None


def _order_term(name: str | None, raw: str) -> Predicate | None:
    # Bare words match names and emails on Shopify: not modelled.
    if name in _TIME_FIELDS:
        match = _COMPARISON.match(raw)
        assert match is not None  # the pattern matches any string
        compare = _COMPARE.get(match.group(1) or "", operator.eq)
        bound, attribute = _parse_time(_unquote(match.group(2)), name), _TIME_FIELDS[name]
        return lambda view: bool(compare(seconds(getattr(view, attribute)), bound))
    value = _unquote(raw)
    if name == "id":
        return lambda view: str(view.legacyResourceId) == value.rsplit("/", 1)[-1]
    if name == "name":
        return lambda view: view.name.lstrip("#") == value.lstrip("#")
    return None


def _parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise GraphQLError(f"Invalid date for {name}: {value!r}") from err
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # a bare date or time is the shop's UTC here
    return seconds(parsed)


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
        at = variant.updated_at
        quantity = state.available
        return [
            {"name": n, "quantity": quantity(variant, location.gid, n), "updatedAt": at}
            for n in names
        ]

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
    finders: list[tuple[Callable[[str], Any], Callable[[ShopifyMockState, Any], View]]] = [
        (state.variants.get, variant_view),
        (lambda g: g if g in state.products else None, product_view),
        (state.variant_by_item, item_view),
        (state.location, location_view),
        (lambda g: state.orders.get(gid_number(g, "Order") or 0), order_view),
    ]
    for find, view in finders:
        found = find(value)
        if found is not None:
            return view(state, found)
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
        keep = _search(query, _order_term)
        views = [order_view(state, order) for order in state.orders.values()]
        return paginate([v for v in views if keep(v)], sort=SORT_TIMES.get(sortKey), **page)

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
        shop={
            "id": "gid://shopify/Shop/1",
            "name": state.shop_domain.split(".", 1)[0],
            "myshopifyDomain": state.shop_domain,
            "currencyCode": state.currency,
        },
    )


def too_many(items: list[Any], **extensions: str) -> GraphQLError:
    """Shopify's refusal of an input array over 250 items."""
    return GraphQLError(
        f"The input array size of {len(items)} is greater than the maximum allowed of "
        f"{MAX_PAGE_SIZE}.",
        extensions={"code": "MAX_INPUT_SIZE_EXCEEDED", **extensions},
    )
