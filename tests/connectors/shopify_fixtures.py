"""Shared helpers of the Shopify connector tests: a channel over respx, answers with a cost."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.retry import RetryPolicy
from connectors.shopify import ShopifyChannel, ShopifySettings
from domain.clock import ManualClock
from tests.connectors.fakes import FakeSleep as FakeSleep
from tests.connectors.fakes import channel_deps

SHOP = "example.myshopify.com"
URL = f"https://{SHOP}/admin/api/2026-04/graphql.json"
TOKEN = "shpat_test_token_0123456789"
SECRET = "whsec-app-client-secret-xyz"
LOCATION = "gid://shopify/Location/124656943"
HEADERS = {"X-Shopify-Access-Token": TOKEN, "Content-Type": "application/json"}


def make_clock() -> ManualClock:
    """The tests' start time."""
    return ManualClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))


def make_channel(
    http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep, **overrides: Any
) -> ShopifyChannel:
    """A channel on ``SHOP`` managing ``LOCATION`` (no discovery call) unless overridden."""
    values: dict[str, Any] = {
        "kind": "shopify",
        "shop": SHOP,
        "access_token": TOKEN,
        "webhook_secret": SECRET,
        "location_id": LOCATION,
    }
    values.update(overrides)
    settings = ShopifySettings.model_validate(values)
    deps = channel_deps(http, clock, sleep)
    return ShopifyChannel("shop", settings, deps, RetryPolicy(attempts=4, deadline_s=600))


def answer(
    data: Any,
    *,
    requested: float = 10,
    actual: float | None = None,
    available: float = 1990,
    maximum: float = 2000,
    restore: float = 100,
    errors: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> httpx.Response:
    """A GraphQL answer with Shopify's ``extensions.cost`` block."""
    body: dict[str, Any] = {
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": requested if actual is None else actual,
                "throttleStatus": {
                    "maximumAvailable": maximum,
                    "currentlyAvailable": available,
                    "restoreRate": restore,
                },
            }
        }
    }
    if data is not None:
        body["data"] = data
    if errors is not None:
        body["errors"] = errors
    return httpx.Response(status, json=body)


def gql(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The exact JSON body the connector must post for ``query`` with ``variables``."""
    return {"query": query, "variables": variables}


def sent(request: httpx.Request) -> dict[str, Any]:
    """The JSON body of a recorded request."""
    body: dict[str, Any] = json.loads(request.content)
    return body


def variant(
    number: int,
    sku: str | None,
    price: str,
    *,
    product: int = 1,
    available: int | None = 5,
    status: str = "ACTIVE",
) -> dict[str, Any]:
    """A productVariants node as the listing fragment reads it."""
    level = (
        None
        if available is None
        else {"quantities": [{"name": "available", "quantity": available}]}
    )
    return {
        "id": f"gid://shopify/ProductVariant/{number}",
        "sku": sku,
        "price": price,
        "product": {"id": f"gid://shopify/Product/{product}", "status": status},
        "inventoryItem": {"id": f"gid://shopify/InventoryItem/{number}", "inventoryLevel": level},
    }


def page(nodes: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
    """A productVariants connection page."""
    return {
        "productVariants": {
            "nodes": nodes,
            "pageInfo": {"hasNextPage": cursor is not None, "endCursor": cursor},
        }
    }
