"""Relay pagination and the part of Shopify's search syntax the mock understands.

Variant search (``search_filter``): ``sku:`` (``*`` wildcards), ``product_id:``, ``id:`` and
``inventory_item_id:`` terms, bare words matched against SKU and title. Order search
(``order_filter``): ``created_at:``, ``updated_at:``, ``processed_at:`` with ``>``, ``>=``, ``<``,
``<=`` or equality (a date or an ISO-8601 date-time, quoted or not; a date alone means midnight
UTC), ``id:`` and ``name:``. A date that does not parse is a GraphQL error (Shopify would warn and
ignore the term; the mock is stricter so a connector bug shows). Both: quoted values with
backslash escapes, implicit AND, ``OR`` between groups, ``-`` negation; unknown fields are
ignored, as Shopify ignores them (with a search warning we do not emit).

Pages are sorted by numeric id, or by (a time at whole seconds, the resolution Shopify serves,
id) with the cursor carrying both, as Shopify's cursors do.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import operator
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError

from connectors.mock.shopify.state import gid_number

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
    raw = json.dumps({"last_id": position[-1], "last_value": value}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _position(cursor: str, sort: str | None) -> tuple[Any, ...]:
    try:
        decoded = json.loads(base64.b64decode(cursor.encode(), validate=True))
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
    groups: list[list[Predicate]] = [[]]
    for match in _TERM.finditer(query):
        negate, name, raw, bare = match.groups()
        if bare in ("OR", "or"):
            groups.append([])
            continue
        predicate = None if bare in ("AND", "and") else term(name and name.lower(), raw or bare)
        if predicate is not None:
            groups[-1].append(_negated(predicate) if negate else predicate)
    return lambda view: any(all(p(view) for p in group) for group in groups)


def _negated(predicate: Predicate) -> Predicate:
    return lambda view: not predicate(view)


def search_filter(query: str | None) -> Predicate:
    """Which variant views ``productVariants(query:)`` keeps (see the module docstring)."""
    return _search(query, _variant_term)


def order_filter(query: str | None) -> Predicate:
    """Which order views ``orders(query:)`` keeps (see the module docstring)."""
    return _search(query, _order_term)


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
