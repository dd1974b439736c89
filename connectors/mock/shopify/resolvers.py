"""The GraphQL graph over the state objects themselves: one field resolver reads a field from a
table (``FIELDS``, by parent type and field name) or else as the object's attribute (``createdAt``
as ``created_at``), pages every ``*Connection`` field alike, and finds any ``Node`` by its GID.
Relay paging and Shopify's search syntax live here too.

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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeAlias

from graphql import GraphQLError, GraphQLResolveInfo, default_field_resolver, get_named_type

from connectors.mock.kit.wire import b64_json, from_b64_json
from connectors.mock.shopify.state import (
    GID_PREFIX,
    MockLocation,
    MockVariant,
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
    items: Iterable[Any],
    first: int | None = None,
    after: str | None = None,
    reverse: bool = False,
    sort: str | None = None,
) -> dict[str, Any]:
    """A Relay connection page over objects, by numeric id or by (``sort`` time, numeric id)."""
    if first is None:
        raise GraphQLError("you must provide one of first or last")
    if not 0 <= first <= MAX_PAGE_SIZE:
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}, got {first}.")

    def position(item: Any) -> tuple[Any, ...]:
        number = legacy_id(item)
        return (seconds(getattr(item, sort)), number) if sort else (number,)

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
# order search field or OrderSortKeys value -> the MockOrder time it compares
_TIMES = {"created_at": "created_at", "updated_at": "updated_at", "processed_at": "created_at"}
SORT_TIMES = {key.upper(): attribute for key, attribute in _TIMES.items()}
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
        return lambda _item: True
    groups: list[list[tuple[bool, Predicate]]] = [[]]  # (negated, term) ANDed, groups ORed
    for match in _TERM.finditer(query):
        negate, name, raw, bare = match.groups()
        if bare in ("OR", "or"):
            groups.append([])
            continue
        predicate = None if bare in ("AND", "and") else term(name and name.lower(), raw or bare)
        if predicate is not None:
            groups[-1].append((bool(negate), predicate))
    return lambda item: any(all(p(item) != neg for neg, p in group) for group in groups)


def search_filter(query: str | None) -> Predicate:
    """Which variants ``productVariants(query:)`` keeps (see the module docstring)."""
    return _search(query, _variant_term)


def _variant_term(name: str | None, raw: str) -> Predicate | None:
    value = _unquote(raw)
    if name == "sku":
        return lambda variant: fnmatch.fnmatchcase(variant.sku.lower(), value.lower())
    if name in _VARIANT_IDS:
        attribute, kind = _VARIANT_IDS[name]
        numeric = value.rsplit("/", 1)[-1]
        return lambda variant: str(gid_number(getattr(variant, attribute), kind)) == numeric
    if name is None:
        needle = value.lower()
        return lambda variant: needle in variant.sku.lower() or needle in variant.title.lower()
    return None


def _order_term(name: str | None, raw: str) -> Predicate | None:
    # Bare words match names and emails on Shopify: not modelled.
    if name in _TIMES:
        match = _COMPARISON.match(raw)
        assert match is not None  # the pattern matches any string
        compare = _COMPARE.get(match.group(1) or "", operator.eq)
        bound, attribute = _parse_time(_unquote(match.group(2)), name), _TIMES[name]
        return lambda order: bool(compare(seconds(getattr(order, attribute)), bound))
    value = _unquote(raw)
    if name == "id":
        return lambda order: str(order.order_id) == value.rsplit("/", 1)[-1]
    if name == "name":
        return lambda order: str(order.number) == value.lstrip("#")
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


@dataclass
class RequestContext:
    """Per-request context: the store, and the webhooks the request's writes trigger."""

    state: ShopifyMockState
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


# Resolvers get the request context in ``info.context``.
Info: TypeAlias = "GraphQLResolveInfo[RequestContext]"


@dataclass(frozen=True)
class Item:
    """``InventoryItem``: the stock side of a variant."""

    typename: ClassVar[str] = "InventoryItem"
    variant: MockVariant

    @property
    def gid(self) -> str:
        """The inventory item's GID."""
        return self.variant.item_gid


@dataclass(frozen=True)
class Level:
    """``InventoryLevel``: one item at one location."""

    typename: ClassVar[str] = "InventoryLevel"
    variant: MockVariant
    location: MockLocation

    @property
    def gid(self) -> str:
        """The level's GID (the location's number with the item's as a query string)."""
        return level_gid(self.variant.item_gid, self.location.gid)


def legacy_id(node: Any) -> int:
    """A node's numeric id (``legacyResourceId``, the paging order); a level's is its location's."""
    if isinstance(node, Level):
        return legacy_id(node.location)
    return gid_number(node.gid, node.typename) or 0


def find(state: ShopifyMockState, value: str, typename: str | None = None) -> Any:
    """The object with this GID (of ``typename`` when given); None when unknown."""
    kind = value.removeprefix(GID_PREFIX).split("/", 1)[0]
    if typename not in (None, kind):
        return None
    if kind == "InventoryLevel":  # gid://shopify/InventoryLevel/<location>?inventory_item_id=<n>
        head, _, item = value.partition("?inventory_item_id=")
        location = state.location(gid("Location", gid_number(head, kind) or 0))
        variant = state.variant_by_item(gid("InventoryItem", int(item))) if item.isdigit() else None
        return None if location is None or variant is None else Level(variant, location)
    finders: dict[str, Callable[[str], Any]] = {
        "ProductVariant": state.variants.get,
        "Product": state.products.get,
        "InventoryItem": lambda g: _maybe(Item, state.variant_by_item(g)),
        "Location": state.location,
        "Order": lambda g: state.orders.get(gid_number(g, "Order") or 0),
    }
    return finders[kind](value) if kind in finders else None


def _maybe(make: Callable[..., Any], *parts: Any) -> Any:
    return None if None in parts else make(*parts)


def _quantities(state: ShopifyMockState, level: Level, names: list[str]) -> list[dict[str, Any]]:
    unknown = [n for n in names if n not in KNOWN_QUANTITY_NAMES]
    if unknown:
        raise GraphQLError(f"Invalid quantity names: {', '.join(unknown)}")
    variant, at = level.variant, level.variant.updated_at
    return [
        {"name": n, "quantity": state.available(variant, level.location.gid, n), "updatedAt": at}
        for n in names
    ]


def _by_id(typename: str) -> Callable[..., Any]:
    """A ``Query`` field answering the object of one type by GID (null when unknown)."""
    return lambda state, _root, id: find(state, id, typename)


# "Type.field" -> resolver(state, parent, **arguments); other fields are read from the
# parent (a dict's key, else the attribute in snake_case). ``*Connection`` fields answer the
# items, which ``resolve_field`` pages.
FIELDS: dict[str, Callable[..., Any]] = {
    "Query.node": lambda s, _, id: find(s, id),
    "Query.nodes": lambda s, _, ids: [find(s, value) for value in at_most(ids)],
    "Query.productVariants": lambda s, _, query=None: filter(
        search_filter(query), s.variants.values()
    ),
    "Query.productVariant": _by_id("ProductVariant"),
    # bare words matched against the title
    "Query.products": lambda s, _, query=None: [
        p for p in s.products.values() if (query or "").strip().lower() in p.title.lower()
    ],
    "Query.product": _by_id("Product"),
    "Query.inventoryItem": _by_id("InventoryItem"),
    "Query.locations": lambda s, _, includeInactive: [
        loc for loc in s.locations if loc.active or includeInactive
    ],
    "Query.location": lambda s, _, id=None: s.primary_location if id is None else s.location(id),
    "Query.orders": lambda s, _, query=None: filter(_search(query, _order_term), s.orders.values()),
    "Query.order": _by_id("Order"),
    "Query.shop": lambda s, _: {
        "id": "gid://shopify/Shop/1",
        "name": s.shop_domain.split(".", 1)[0],
        "myshopifyDomain": s.shop_domain,
        "currencyCode": s.currency,
    },
    "Product.status": lambda s, _: "ACTIVE",
    "Product.variants": lambda s, p: [s.variants[g] for g in p.variant_gids],
    "Product.totalInventory": lambda s, p: sum(
        s.inventory_quantity(s.variants[g]) for g in p.variant_gids
    ),
    "ProductVariant.displayName": lambda s, v: f"{s.products[v.product_gid].title} - {v.title}",
    # a dropped write's answer is a copy with the price it pretends to have set
    "ProductVariant.price": lambda s, v: (
        s.listing(v).price if v.reported_price is None else v.reported_price
    ),
    "ProductVariant.inventoryQuantity": lambda s, v: s.inventory_quantity(v),
    "ProductVariant.product": lambda s, v: s.products[v.product_gid],
    "ProductVariant.inventoryItem": lambda s, v: Item(v),
    "InventoryItem.sku": lambda s, i: i.variant.sku,
    "InventoryItem.tracked": lambda s, i: True,
    "InventoryItem.inventoryLevel": lambda s, i, locationId: _maybe(
        Level, i.variant, s.location(locationId)
    ),
    "InventoryItem.inventoryLevels": lambda s, i: [Level(i.variant, loc) for loc in s.locations],
    "InventoryLevel.item": lambda s, level: Item(level.variant),
    "InventoryLevel.updatedAt": lambda s, level: level.variant.updated_at,
    "InventoryLevel.quantities": _quantities,
    "Location.isActive": lambda s, loc: loc.active,
    "Location.inventoryLevel": lambda s, loc, inventoryItemId: _maybe(
        Level, s.variant_by_item(inventoryItemId), loc
    ),
    "Order.name": lambda s, o: f"#{o.number}",
    "Order.processedAt": lambda s, o: o.created_at,
    "Order.cancelReason": lambda s, o: "CUSTOMER" if o.cancelled_at else None,
    "Order.lineItems": lambda s, o: o.lines,
    # a line's variant is null once deleted
    "LineItem.variant": lambda s, line: s.variants.get(line.variant_gid),
    "LineItem.name": lambda s, line: (
        s.variants[line.variant_gid].title if line.variant_gid in s.variants else line.sku
    ),
}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def resolve_field(parent: Any, info: Info, **args: Any) -> Any:
    """The field resolver of every type (see ``FIELDS``); mutations are ``MutationRoot``'s."""
    name, typename = info.field_name, info.parent_type.name
    resolver = FIELDS.get(f"{typename}.{name}")
    if typename == "Mutation":
        return default_field_resolver(parent, info, **args)
    if resolver is not None:
        page = {
            key: args.pop(key) for key in ("first", "after", "reverse", "sortKey") if key in args
        }
        value = resolver(info.context.state, parent, **args)
    elif isinstance(parent, Mapping):
        return parent.get(name)
    elif name == "id":
        return parent.gid
    elif name == "legacyResourceId":
        return legacy_id(parent)
    else:
        return getattr(parent, _CAMEL.sub("_", name).lower())
    if get_named_type(info.return_type).name.endswith("Connection"):
        return paginate(value, sort=SORT_TIMES.get(page.pop("sortKey", "")), **page)
    return value


def answered(variant: MockVariant, row: dict[str, Any]) -> MockVariant:
    """What a dropped write answers: a copy of ``variant`` with the prices ``row`` sets."""
    compare = row.get("compareAtPrice", variant.compare_at_price)
    return replace(variant, reported_price=row.get("price"), compare_at_price=compare)


def at_most(items: list[Any], **extensions: str) -> list[Any]:
    """``items``, or Shopify's refusal of an input array over 250 items."""
    if len(items) <= MAX_PAGE_SIZE:
        return items
    raise GraphQLError(
        f"The input array size of {len(items)} is greater than the maximum allowed of "
        f"{MAX_PAGE_SIZE}.",
        extensions={"code": "MAX_INPUT_SIZE_EXCEEDED", **extensions},
    )
