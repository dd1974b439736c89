"""Simulated shoppers: orders take available units (they become committed) and fire webhooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from connectors.mock.shopify.state import MockOrder, OrderLine, ShopifyMockState
from connectors.mock.shopify.webhooks import inventory_level_payload, order_payload

log = structlog.get_logger(__name__)

Events = list[tuple[str, dict[str, Any]]]
# Realistic-looking 64-bit REST ids for orders and line items.
ORDER_ID_BASE = 5_000_000_000_000
LINE_ID_BASE = 13_000_000_000_000


class OrderRefused(ValueError):
    """The order cannot be placed (unknown SKU, bad quantity, not enough stock)."""


def place_order(state: ShopifyMockState, sku: str, quantity: int) -> tuple[MockOrder, Events]:
    """Place an order at the primary location (refused beyond what is available: inventory
    policy ``deny``); return it and the webhooks it triggers."""
    variant = state.variant_by_sku(sku)
    if variant is None:
        raise OrderRefused(f"unknown sku {sku!r}")
    if quantity < 1:
        raise OrderRefused("quantity must be at least 1")
    location = state.primary_location
    available = state.available(variant, location.gid)
    if available < quantity:
        raise OrderRefused(f"only {available} available")
    now = state.clock.now()
    number = 1001 + len(state.orders)
    line = OrderLine(
        LINE_ID_BASE + number, variant.gid, sku, quantity, state.listing(variant).price
    )
    order = MockOrder(ORDER_ID_BASE + number, number, [line], location.gid, now, now)
    state.orders[order.order_id] = order
    state.set_available(variant, location.gid, available - quantity)
    state.committed[variant.item_gid] += quantity
    events: Events = [
        ("orders/create", order_payload(state, order)),
        ("inventory_levels/update", inventory_level_payload(state, variant, location, now)),
    ]
    return order, events


def cancel_order(state: ShopifyMockState, order_id: int) -> tuple[MockOrder, Events]:
    """Cancel an open order: its units return to available."""
    order = state.orders.get(order_id)
    if order is None:
        raise OrderRefused(f"unknown order {order_id}")
    if order.cancelled_at is not None:
        raise OrderRefused("order already cancelled")
    now = state.clock.now()
    order.cancelled_at = order.updated_at = now
    location = state.location(order.location_gid) or state.primary_location
    events: Events = [("orders/cancelled", order_payload(state, order))]
    for line in order.lines:
        variant = state.variants[line.variant_gid]
        state.committed[variant.item_gid] -= line.quantity
        state.set_available(
            variant, location.gid, state.available(variant, location.gid) + line.quantity
        )
        events.append(
            ("inventory_levels/update", inventory_level_payload(state, variant, location, now))
        )
    return order, events


async def run_shopper(state: ShopifyMockState, dispatch: Callable[[Events], object]) -> None:
    """Buy 1–2 units of a random in-stock variant at ``shopper_orders_per_min`` (exponential
    gaps) until cancelled."""
    rate, primary = state.shopper_orders_per_min, state.primary_location.gid
    while rate > 0:
        await state.sleep(state.rng.expovariate(rate / 60.0))
        in_stock = sorted(
            (v for v in state.variants.values() if state.available(v, primary)),
            key=lambda v: v.sku,
        )
        if not in_stock:
            continue
        variant = state.rng.choice(in_stock)
        quantity = min(state.available(variant, primary), state.rng.choice((1, 1, 1, 2)))
        order, events = place_order(state, variant.sku, quantity)
        log.info("mock_shopify.order", order=order.number, sku=variant.sku)
        dispatch(events)
