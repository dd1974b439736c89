"""Relay pagination and the part of Shopify's search syntax the mock understands."""

from __future__ import annotations

import base64
import binascii
import fnmatch
import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from graphql import GraphQLError

from connectors.mock.shopify.state import gid_number

if TYPE_CHECKING:
    from connectors.mock.shopify.resolvers import VariantView

T = TypeVar("T")
MAX_PAGE_SIZE = 250  # Shopify's maximum `first` (and input array size)


# -- pagination -----------------------------------------------------------------------------


def _cursor(number: int) -> str:
    raw = json.dumps({"last_id": number, "last_value": str(number)}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _after_id(cursor: str) -> int:
    try:
        decoded = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return int(decoded["last_id"])
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor}") from err


def paginate(
    items: Sequence[T],
    number: Callable[[T], int],
    first: int | None,
    after: str | None,
    reverse: bool = False,
) -> dict[str, Any]:
    """A Relay connection page over ``items`` sorted by their numeric id."""
    if first is None:
        raise GraphQLError("you must provide one of first or last")
    if first < 0 or first > MAX_PAGE_SIZE:
        raise GraphQLError(f"The page size must be between 0 and {MAX_PAGE_SIZE}, got {first}.")
    ordered = sorted(items, key=number, reverse=reverse)
    if after is not None:
        last = _after_id(after)
        ordered = [i for i in ordered if (number(i) < last if reverse else number(i) > last)]
    page = ordered[:first]
    edges = [{"cursor": _cursor(number(item)), "node": item} for item in page]
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


# -- search syntax --------------------------------------------------------------------------

# A value is a name or a quoted string (single or double quotes); a backslash escapes the next
# character inside quotes and out (Shopify's search syntax: special characters ``: \\ ( )`` and
# quotes are escaped with ``\\``).
_TERM = re.compile(
    r'(-?)(\w+):("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|(?:[^\s\\]|\\.)+)|((?:[^\s\\]|\\.)+)'
)
_ESCAPED = re.compile(r"\\(.)")


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    return _ESCAPED.sub(r"\1", raw)


def search_filter(query: str | None) -> Callable[[VariantView], bool]:
    """Shopify search syntax, the part a connector uses: ``sku:``, ``product_id:``, ``id:``,
    ``inventory_item_id:`` terms (``*`` wildcards), quoted values with backslash escapes,
    implicit AND, ``OR`` between groups, ``-`` negation, bare words matched against SKU and
    title. Unknown fields are ignored, as Shopify
    ignores them (with a search warning we do not emit)."""
    if not query or not query.strip():
        return lambda _view: True
    groups: list[list[Callable[[VariantView], bool]]] = [[]]
    for match in _TERM.finditer(query):
        negate, name, raw, bare = match.groups()
        if bare in ("OR", "or"):
            groups.append([])
            continue
        if bare in ("AND", "and"):
            continue
        predicate = _predicate(name.lower() if name else None, _unquote(raw or bare))
        if predicate is None:
            continue
        groups[-1].append(_negated(predicate) if negate else predicate)
    return lambda view: any(all(p(view) for p in group) for group in groups)


def _negated(predicate: Callable[[VariantView], bool]) -> Callable[[VariantView], bool]:
    return lambda view: not predicate(view)


def _predicate(name: str | None, value: str) -> Callable[[VariantView], bool] | None:
    def glob(actual: str | None) -> bool:
        return actual is not None and fnmatch.fnmatchcase(actual.lower(), value.lower())

    numeric = value.rsplit("/", 1)[-1]
    if name == "sku":
        return lambda view: glob(view.variant.sku)
    if name == "product_id":
        return lambda view: str(gid_number(view.variant.product_gid, "Product")) == numeric
    if name == "id":
        return lambda view: str(gid_number(view.variant.gid, "ProductVariant")) == numeric
    if name == "inventory_item_id":
        return lambda view: str(gid_number(view.variant.item_gid, "InventoryItem")) == numeric
    if name is None:
        needle = value.lower()
        return lambda view: needle in view.variant.sku.lower() or needle in view.title.lower()
    return None
