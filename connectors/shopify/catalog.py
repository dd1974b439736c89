"""What the channel remembers about the shop's variants: SKU -> GIDs and the last quantities.

Shopify writes need ids the daemon does not hold (a price write names the product, a stock write
the inventory item and location), so every read fills this cache and a push resolves unknown
SKUs through it before sending anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

import structlog

from connectors.shopify.const import QUANTITY_NAME
from connectors.shopify.models import Variant
from domain.listings import ChannelListing

log = structlog.get_logger(__name__)

CENT = Decimal("0.01")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class VariantIds:
    """The GIDs one SKU's writes need."""

    product_id: str
    variant_id: str
    inventory_item_id: str | None


@dataclass
class Catalog:
    """Per-channel cache of variant ids and the last ``available`` quantity read per SKU.

    A quantity of None means "read: not stocked at our location"; a missing SKU was never read.
    """

    ids: dict[str, VariantIds]
    quantities: dict[str, int | None]
    # inventory item GID -> SKU, rebuilt from ``ids`` when a look-up misses (webhooks name items).
    _items: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def empty(cls) -> Catalog:
        """A catalog that knows nothing yet."""
        return cls(ids={}, quantities={})

    def remember(self, variant: Variant, currency: str) -> ChannelListing | None:
        """Record one variant read from Shopify and return it as a listing (None without SKU)."""
        sku = (variant.sku or "").strip()
        if not sku:
            return None
        item = variant.inventory_item
        self.ids[sku] = VariantIds(variant.product.id, variant.id, item.id if item else None)
        level = item.inventory_level if item else None
        quantity = level.named(QUANTITY_NAME) if level else None
        self.quantities[sku] = quantity
        external_ids = {"product_id": variant.product.id, "variant_id": variant.id}
        if item is not None:
            external_ids["inventory_item_id"] = item.id
        return ChannelListing(
            sku=sku,
            external_id=variant.id,
            price=money(variant.price),
            currency=currency,
            quantity=quantity,
            # Only ACTIVE products sell; draft and archived listings are not repriced.
            status=(variant.product.status or "active").lower(),
            external_ids=external_ids,
        )

    def sku_of_item(self, item_id: str) -> str | None:
        """The SKU whose variant's inventory item is ``item_id`` (None if we never read it)."""
        sku = self._items.get(item_id)
        if sku is not None and _item_of(self.ids.get(sku)) == item_id:
            return sku
        # ``ids`` is replaced whole by every listing read: re-index on a miss rather than
        # keeping a second map in step with every writer of ``ids``.
        self._items = {
            ids.inventory_item_id: known
            for known, ids in self.ids.items()
            if ids.inventory_item_id is not None
        }
        return self._items.get(item_id)

    def forget(self, sku: str) -> None:
        """Drop what we know of ``sku`` (its ids turned out wrong): the next push re-resolves."""
        self.ids.pop(sku, None)
        self.quantities.pop(sku, None)


def _item_of(ids: VariantIds | None) -> str | None:
    return None if ids is None else ids.inventory_item_id


def money(value: Decimal) -> Decimal:
    """Quantize a price to cents."""
    return value.quantize(CENT)


def money_str(value: Decimal) -> str:
    """The ``Money`` scalar: a plain decimal string with two places (``"29.99"``)."""
    return format(money(value), "f")


def chunks(items: Sequence[T], key: Callable[[T], str], size: int) -> Iterator[list[T]]:
    """Split ``items`` into calls of at most ``size``, never naming the same ``key`` twice in one
    call (a later duplicate goes to a later call, so the last write wins)."""
    chunk: list[T] = []
    seen: set[str] = set()
    for item in items:
        name = key(item)
        if len(chunk) >= size or name in seen:
            yield chunk
            chunk, seen = [], set()
        chunk.append(item)
        seen.add(name)
    if chunk:
        yield chunk
