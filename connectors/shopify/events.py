"""Shopify webhook bodies (REST shapes, guide §4.6) as domain events for the stock ledger.

* ``orders/create`` → ``OrderEvent(PLACED)``; ``orders/cancelled`` → ``OrderEvent(CANCELLED)``.
  One line per SKU (lines of the same SKU are added up); lines without a SKU (custom items, gift
  cards, tips) are skipped: no listing of ours can be behind them.
* ``inventory_levels/update`` → ``QuantityObserved`` for the location we manage only (other
  locations' stock is not what we publish). Its ``inventory_item_id`` is mapped to a SKU through
  the channel's catalog (filled by every listing read and push). ``parse_webhook`` is synchronous,
  so an item we have not read yet cannot be looked up here: the delivery yields nothing, with a
  log line, and the next reconcile pass reads the live quantity anyway. A null ``available``
  (an untracked item) yields nothing either.
* ``products/update`` and every other topic → nothing (price drift is reconcile's business).

Stale deliveries (``X-Shopify-Triggered-At`` older than ``webhook_max_age_s``, i.e. Shopify's
retries of a delivery we failed to acknowledge) are still turned into events: an order is a real
sale however late we hear of it, and the daemon applies each order and SKU once; a quantity report
carries the level's ``updated_at``, and the daemon skips a report older than the newest one it
holds, so a late report cannot roll a listing back. The flag stays in the stored envelope for
operators.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog

from connectors.shopify.const import (
    TOPIC_INVENTORY_LEVELS_UPDATE,
    TOPIC_ORDERS_CANCELLED,
    TOPIC_ORDERS_CREATE,
)
from domain.events import ChannelEvent, OrderEvent, OrderLine, OrderStatus, QuantityObserved

log = structlog.get_logger(__name__)

ITEM_GID = "gid://shopify/InventoryItem/"
LOCATION_GID = "gid://shopify/Location/"


def to_events(
    topic: str,
    body: Mapping[str, Any],
    *,
    triggered_at: datetime | None,
    location_id: str | None,
    sku_of_item: Callable[[str], str | None],
) -> list[ChannelEvent]:
    """The domain events of one delivery's body (``ValueError`` for a body that does not fit)."""
    if topic == TOPIC_ORDERS_CREATE:
        return [_order(body, OrderStatus.PLACED, triggered_at)]
    if topic == TOPIC_ORDERS_CANCELLED:
        return [_order(body, OrderStatus.CANCELLED, triggered_at)]
    if topic == TOPIC_INVENTORY_LEVELS_UPDATE:
        observed = _level(body, location_id, sku_of_item)
        return [] if observed is None else [observed]
    return []


def _order(
    body: Mapping[str, Any], status: OrderStatus, triggered_at: datetime | None
) -> OrderEvent:
    order_id = _rest_id(body.get("id"), "id")
    units: dict[str, int] = {}
    lines = body.get("line_items")
    if not isinstance(lines, list):
        raise ValueError("line_items is not a list")
    for index, line in enumerate(lines):
        if not isinstance(line, dict):
            raise ValueError(f"line_items[{index}] is not an object")
        sku = line.get("sku")
        sku = sku.strip() if isinstance(sku, str) else ""
        if not sku:
            continue  # custom item, gift card, tip: nothing we list
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 0:
            raise ValueError(f"line_items[{index}].quantity is not a whole number of units")
        if quantity:
            units[sku] = units.get(sku, 0) + quantity
    # Both topics carry the order's updated_at; older payloads may only have the event's own time.
    keys: tuple[str, ...] = ("updated_at", "created_at")
    if status is OrderStatus.CANCELLED:
        keys = ("updated_at", "cancelled_at", "created_at")
    return OrderEvent(
        order_id=order_id,
        status=status,
        lines=tuple(OrderLine(sku, quantity) for sku, quantity in units.items()),
        updated_at=_when(body, keys, triggered_at),
    )


def _level(
    body: Mapping[str, Any],
    location_id: str | None,
    sku_of_item: Callable[[str], str | None],
) -> QuantityObserved | None:
    item = ITEM_GID + _rest_id(body.get("inventory_item_id"), "inventory_item_id")
    location = LOCATION_GID + _rest_id(body.get("location_id"), "location_id")
    if location_id is None:
        log.info("shopify_level_ignored", reason="managed location not known yet", item=item)
        return None
    if location != location_id:
        return None  # another location's stock: not what we publish
    available = body.get("available")
    if available is None:
        return None  # untracked inventory item: Shopify keeps no count
    if not isinstance(available, int) or isinstance(available, bool):
        raise ValueError("available is not an integer")
    sku = sku_of_item(item)
    if sku is None:
        # Not read yet (new variant, or no listing read since start-up): reconcile covers it.
        log.info("shopify_level_ignored", reason="inventory item not in the catalog", item=item)
        return None
    return QuantityObserved(sku=sku, quantity=available, updated_at=_when(body, ("updated_at",)))


def _rest_id(value: object, name: str) -> str:
    """A REST numeric id (64-bit: an int in JSON, sometimes a string) as its decimal digits."""
    if isinstance(value, bool):
        raise ValueError(f"{name} is not a numeric id")
    if isinstance(value, int) and value > 0:
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    raise ValueError(f"{name} is not a numeric id")


def _when(
    body: Mapping[str, Any], keys: tuple[str, ...], fallback: datetime | None = None
) -> datetime:
    """The first of ``keys`` that holds a timestamp, as aware UTC."""
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value.strip():
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError as err:
                raise ValueError(f"{key} is not an ISO-8601 time: {value!r}") from err
            if parsed.tzinfo is None:
                raise ValueError(f"{key} has no UTC offset: {value!r}")
            return parsed.astimezone(UTC)
    if fallback is not None:
        return fallback
    raise ValueError(f"body has none of {', '.join(keys)}")
