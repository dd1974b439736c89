"""Webhook deliveries as Shopify sends them (guide §4.6): REST-shaped snake_case JSON bodies,
``X-Shopify-*`` headers, base64 HMAC-SHA256 of the raw body keyed by the app's secret. Failed
deliveries are recorded, not retried on a schedule; ``redeliver`` (``POST /_mock/redeliver``)
sends one again unchanged (same webhook id, body and headers), as Shopify's retries do.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog

from connectors.mock.kit.serving import Runtime
from connectors.mock.kit.webhooks import hmac_sha256, post
from connectors.mock.market import CENT
from connectors.mock.shopify.state import (
    MockLocation,
    MockOrder,
    MockProduct,
    MockVariant,
    ShopifyMockState,
    gid_number,
    level_gid,
    money,
)

log = structlog.get_logger(__name__)

# Shopify gives a receiver 1 s to accept the connection and 5 s in all to answer 2xx.
DELIVERY_TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=1)


def rest_time(value: datetime) -> str:
    """REST timestamp (``2026-04-01T12:00:00+00:00``; the shop's zone is UTC)."""
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _num(value: str, kind: str) -> int:
    return gid_number(value, kind) or 0


def _resource(node: MockProduct | MockVariant | MockOrder) -> dict[str, Any]:
    """The fields every REST resource starts with: its ids and its times."""
    return {
        "id": _num(node.gid, node.typename),
        "admin_graphql_api_id": node.gid,
        "created_at": rest_time(node.created_at),
        "updated_at": rest_time(node.updated_at),
    }


def product_payload(state: ShopifyMockState, product: MockProduct) -> dict[str, Any]:
    """``products/update`` body."""
    variants = [state.variants[g] for g in product.variant_gids]
    return {
        **_resource(product),
        "title": product.title,
        "handle": product.handle,
        "status": "active",
        "vendor": state.shop_domain.split(".", 1)[0],
        "product_type": "",
        "tags": "",
        "variants": [
            {
                **_resource(variant),
                "product_id": _num(variant.product_gid, "Product"),
                "title": variant.title,
                "sku": variant.sku,
                "price": str(state.listing(variant).price.quantize(CENT)),
                "compare_at_price": money(variant.compare_at_price),
                "position": position,
                "inventory_policy": "deny",
                "inventory_item_id": _num(variant.item_gid, "InventoryItem"),
                "inventory_quantity": state.inventory_quantity(variant),
            }
            for position, variant in enumerate(variants, start=1)
        ],
    }


def inventory_level_payload(
    state: ShopifyMockState, variant: MockVariant, location: MockLocation, at: datetime
) -> dict[str, Any]:
    """``inventory_levels/update`` body (numeric ids; the level GID carries a query string)."""
    return {
        "inventory_item_id": _num(variant.item_gid, "InventoryItem"),
        "location_id": _num(location.gid, "Location"),
        "available": state.available(variant, location.gid),
        "updated_at": rest_time(at),
        "admin_graphql_api_id": level_gid(variant.item_gid, location.gid),
    }


# What every order and line of the mock says alike (no tax, shipping or fulfilment modelled).
ORDER_FIXED = {"total_tax": "0.00", "fulfillment_status": None, "confirmed": True, "test": False}
LINE_FIXED = {"fulfillment_status": None, "requires_shipping": True, "taxable": True}


def order_payload(state: ShopifyMockState, order: MockOrder) -> dict[str, Any]:
    """``orders/create`` and ``orders/cancelled`` body (trimmed REST order; money as strings)."""
    total = str(sum((line.price * line.quantity for line in order.lines), CENT * 0).quantize(CENT))
    variants = [state.variants[line.variant_gid] for line in order.lines]
    line_items = [
        {
            "id": line.line_id,
            "admin_graphql_api_id": line.gid,
            "variant_id": _num(variant.gid, "ProductVariant"),
            "product_id": _num(variant.product_gid, "Product"),
            "sku": line.sku,
            "title": state.products[variant.product_gid].title,
            "variant_title": variant.title,
            "name": variant.title,
            "quantity": line.quantity,
            **dict.fromkeys(("current_quantity", "fulfillable_quantity"), line.current_quantity),
            "price": str(line.price.quantize(CENT)),
            **LINE_FIXED,
            "gift_card": False,
        }
        for line, variant in zip(order.lines, variants, strict=True)
    ]
    return {
        **_resource(order),
        "name": f"#{order.number}",
        "order_number": order.number,
        "email": f"shopper{order.number}@example.com",
        "processed_at": rest_time(order.created_at),
        "cancelled_at": rest_time(order.cancelled_at) if order.cancelled_at else None,
        "cancel_reason": "customer" if order.cancelled_at else None,
        **dict.fromkeys(("currency", "presentment_currency"), state.currency),
        **dict.fromkeys(("subtotal_price", "total_price"), total),
        **ORDER_FIXED,
        "financial_status": "refunded" if order.cancelled_at else "paid",
        "location_id": _num(order.location_gid, "Location"),
        "line_items": line_items,
    }


@dataclass
class Delivery:
    """One webhook delivery (and its redeliveries, which reuse it whole)."""

    webhook_id: str
    topic: str
    body: bytes
    headers: dict[str, str]
    attempts: int = 0
    status: int | None = None
    error: str | None = None

    def outcome(self) -> dict[str, Any]:
        """What the control routes show of it."""
        return {key: getattr(self, key) for key in ("webhook_id", "attempts", "status", "error")}


class WebhookSender:
    """Signs, records and POSTs webhooks to ``state.webhook_url``."""

    def __init__(self, state: ShopifyMockState) -> None:
        self.state = state
        self.deliveries: dict[str, Delivery] = {}
        self.runtime = Runtime()

    def send(self, events: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """Record the webhooks of one action (sharing an ``X-Shopify-Event-Id``) and send them
        in the background (Shopify delivers asynchronously); their webhook ids."""
        event_id, triggered = str(uuid.uuid4()), self.state.clock.now().astimezone(UTC)
        return [self._emit(topic, payload, event_id, triggered) for topic, payload in events]

    def _emit(self, topic: str, payload: dict[str, Any], event_id: str, triggered: datetime) -> str:
        body = json.dumps(payload, separators=(",", ":")).encode()
        webhook_id, secret = str(uuid.uuid4()), self.state.webhook_secret.get_secret_value()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": base64.b64encode(hmac_sha256(secret, body)).decode(),
            "X-Shopify-Shop-Domain": self.state.shop_domain,
            "X-Shopify-API-Version": self.state.api_version,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": event_id,
            "X-Shopify-Triggered-At": triggered.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        delivery = Delivery(webhook_id, topic, body, headers)
        self.deliveries[webhook_id] = delivery
        self.runtime.spawn(self.deliver(delivery))
        return webhook_id

    async def deliver(self, delivery: Delivery) -> Delivery:
        """POST one delivery to the target URL and record the outcome (never raises)."""
        url = self.state.webhook_url
        if not url:
            delivery.error = "no webhook target configured"
            return delivery
        delivery.attempts += 1
        session = self.runtime.session
        if session is None or session.closed:
            session = self.runtime.session = aiohttp.ClientSession(timeout=DELIVERY_TIMEOUT)
        delivery.status, delivery.error = await post(session, url, delivery.body, delivery.headers)
        log.debug("mock_shopify.webhook", topic=delivery.topic, **delivery.outcome())
        return delivery

    async def redeliver(self, webhook_id: str) -> Delivery | None:
        """Send a recorded delivery again, unchanged (same webhook id, body and headers)."""
        delivery = self.deliveries.get(webhook_id)
        return None if delivery is None else await self.deliver(delivery)

    async def drain(self) -> None:
        """Wait for the background deliveries under way."""
        await self.runtime.settle()

    async def close(self) -> None:
        """Finish pending deliveries and close the HTTP session."""
        await self.runtime.settle()
        if self.runtime.session is not None:
            await self.runtime.session.close()
            self.runtime.session = None
