"""``Query.orders`` / ``Query.order``: views over ``state.orders``, search and sort keys.

Search terms understood: ``created_at:``, ``updated_at:``, ``processed_at:`` with ``>``, ``>=``,
``<``, ``<=`` or equality (a date or an ISO-8601 date-time, quoted or not; a date alone means
midnight UTC), ``id:`` and ``name:``; implicit AND, ``OR`` between groups, ``-`` negation. Other
fields are ignored, as Shopify ignores them (with a search warning we do not emit). A date that
does not parse is a GraphQL error (Shopify would warn and ignore the term; the mock is stricter so
a connector bug shows). Timestamps compare at whole seconds, the resolution Shopify serves.

Sort keys ``ID`` and ``ORDER_NUMBER`` page by id; ``CREATED_AT``, ``PROCESSED_AT`` and
``UPDATED_AT`` by (that time, id), with the cursor carrying both, as Shopify's cursors do.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError

from connectors.mock.shopify.paging import _TERM, MAX_PAGE_SIZE, _unquote, paginate
from connectors.mock.shopify.state import MockOrder, OrderLine, ShopifyMockState, gid, gid_number

_COMPARISON = re.compile(r"^(>=|<=|>|<)?(.*)$", re.DOTALL)
_TIME_FIELDS = {"created_at": "createdAt", "updated_at": "updatedAt", "processed_at": "processedAt"}
_SORT_TIME = {"CREATED_AT": "createdAt", "UPDATED_AT": "updatedAt", "PROCESSED_AT": "processedAt"}


class LineItemView:
    """``LineItem``."""

    typename = "LineItem"

    def __init__(self, state: ShopifyMockState, order: MockOrder, line: OrderLine) -> None:
        self.state, self.line = state, line
        self.id = gid("LineItem", line.line_id)
        self.sku, self.quantity = line.sku, line.quantity
        self.currentQuantity = 0 if order.cancelled_at else line.quantity
        variant = state.variants.get(line.variant_gid)
        self.name = variant.title if variant is not None else line.sku

    def number(self) -> int:
        """Numeric id (pagination order)."""
        return self.line.line_id

    @property
    def variant(self) -> Any:
        """The variant sold (null once deleted)."""
        from connectors.mock.shopify.resolvers import VariantView  # views import each other

        variant = self.state.variants.get(self.line.variant_gid)
        return None if variant is None else VariantView(self.state, variant)


class OrderView:
    """``Order``."""

    typename = "Order"

    def __init__(self, state: ShopifyMockState, order: MockOrder) -> None:
        self.state, self.order = state, order
        self.id = gid("Order", order.order_id)
        self.legacyResourceId = order.order_id
        self.name = f"#{order.number}"
        self.createdAt = self.processedAt = order.created_at
        self.updatedAt, self.cancelledAt = order.updated_at, order.cancelled_at
        self.cancelReason = "CUSTOMER" if order.cancelled_at else None

    def number(self) -> int:
        """Numeric id (pagination order)."""
        return self.order.order_id

    def lineItems(
        self,
        _info: Any,
        first: int | None = None,
        after: str | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]:
        """``Order.lineItems`` connection."""
        views = [LineItemView(self.state, self.order, line) for line in self.order.lines]
        return paginate(views, LineItemView.number, first, after, reverse)


def order_by_gid(state: ShopifyMockState, value: str) -> OrderView | None:
    """The order with this GID (None when unknown)."""
    number = gid_number(value, "Order")
    order = None if number is None else state.orders.get(number)
    return None if order is None else OrderView(state, order)


def list_orders(
    state: ShopifyMockState,
    first: int | None,
    after: str | None,
    reverse: bool,
    query: str | None,
    sort_key: str,
) -> dict[str, Any]:
    """The ``orders`` connection: filtered by ``query``, sorted by ``sort_key``."""
    keep = order_filter(query)
    views = [v for v in (OrderView(state, o) for o in state.orders.values()) if keep(v)]
    field = _SORT_TIME.get(sort_key)
    if field is None:
        return paginate(views, OrderView.number, first, after, reverse)
    return _paginate_by_time(views, field, first, after, reverse)


def _seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _cursor(view: OrderView, field: str) -> str:
    value = _seconds(getattr(view, field)).isoformat()
    raw = json.dumps({"last_id": view.number(), "last_value": value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _position(cursor: str) -> tuple[datetime, int]:
    try:
        decoded = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return datetime.fromisoformat(decoded["last_value"]), int(decoded["last_id"])
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor}") from err


def _paginate_by_time(
    views: list[OrderView], field: str, first: int | None, after: str | None, reverse: bool
) -> dict[str, Any]:
    if first is None:
        raise GraphQLError("you must provide one of first or last")
    if first < 0 or first > MAX_PAGE_SIZE:
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}, got {first}.")

    def key(view: OrderView) -> tuple[datetime, int]:
        return _seconds(getattr(view, field)), view.number()

    ordered = sorted(views, key=key, reverse=reverse)
    if after is not None:
        last = _position(after)
        ordered = [v for v in ordered if (key(v) < last if reverse else key(v) > last)]
    page = ordered[:first]
    edges = [{"cursor": _cursor(view, field), "node": view} for view in page]
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


# -- search ---------------------------------------------------------------------------------

Predicate = Callable[[OrderView], bool]


def order_filter(query: str | None) -> Predicate:
    """The predicate of an ``orders(query:)`` search string (see the module docstring)."""
    if not query or not query.strip():
        return lambda _view: True
    groups: list[list[Predicate]] = [[]]
    for match in _TERM.finditer(query):
        negate, name, raw, bare = match.groups()
        if bare in ("OR", "or"):
            groups.append([])
            continue
        if bare in ("AND", "and") or name is None:
            continue  # bare words match names and emails on Shopify: not modelled
        predicate = _predicate(name.lower(), raw)
        if predicate is None:
            continue
        groups[-1].append(_negated(predicate) if negate else predicate)
    return lambda view: any(all(p(view) for p in group) for group in groups)


def _negated(predicate: Predicate) -> Predicate:
    return lambda view: not predicate(view)


def _predicate(name: str, raw: str) -> Predicate | None:
    if name in _TIME_FIELDS:
        operator, value = _split(raw)
        bound = _parse_time(_unquote(value), name)
        field = _TIME_FIELDS[name]
        compare: dict[str, Callable[[datetime], bool]] = {
            ">": lambda t: t > bound,
            ">=": lambda t: t >= bound,
            "<": lambda t: t < bound,
            "<=": lambda t: t <= bound,
            "": lambda t: t == bound,
        }
        check = compare[operator]
        return lambda view: check(_seconds(getattr(view, field)))
    value = _unquote(raw)
    if name == "id":
        numeric = value.rsplit("/", 1)[-1]
        return lambda view: str(view.number()) == numeric
    if name == "name":
        return lambda view: view.name.lstrip("#") == value.lstrip("#")
    return None


def _split(raw: str) -> tuple[str, str]:
    match = _COMPARISON.match(raw)
    assert match is not None  # the pattern matches any string
    return match.group(1) or "", match.group(2)


def _parse_time(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as err:
        raise GraphQLError(f"Invalid date for {name}: {value!r}") from err
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # a bare date or time is the shop's UTC here
    return _seconds(parsed)
