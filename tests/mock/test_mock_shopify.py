"""The mock Shopify Admin GraphQL server: strict like the real API, over loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from connectors.mock.shopify import ShopifyMockState, start
from connectors.mock.shopify.state import DEFAULT_LOCATION_GID
from domain.clock import ManualClock
from tests.mock.shopify_fixtures import CATALOG, SECRET, TOKEN, store

API = "/admin/api/2026-04/graphql.json"

VARIANTS = """query Variants($first: Int!, $after: String) {
  productVariants(first: $first, after: $after) {
    edges { cursor node { id sku price inventoryQuantity product { id title }
      inventoryItem { id inventoryLevel(locationId: "LOCATION") {
        id quantities(names: ["available", "on_hand", "committed"]) { name quantity } } } } }
    pageInfo { hasNextPage endCursor }
  }
}""".replace("LOCATION", DEFAULT_LOCATION_GID)

SET_PRICES = """mutation SetPrices($productId: ID!, $variants: [ProductVariantsBulkInput!]!,
    $partial: Boolean) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants,
      allowPartialUpdates: $partial) {
    productVariants { id price }
    userErrors { field message code }
  }
}"""

SET_STOCK = """mutation SetStock($input: InventorySetQuantitiesInput!, $key: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $key) {
    inventoryAdjustmentGroup { reason changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}"""


class FakeSleep:
    """Records the hangs the mock would do, without waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
def state(tmp_path: Path, clock: ManualClock, sleep: FakeSleep) -> ShopifyMockState:
    return store(tmp_path, clock, sleep)


@pytest.fixture
async def shop(state: ShopifyMockState) -> AsyncIterator[httpx.AsyncClient]:
    runner, base_url = await start(state)
    async with httpx.AsyncClient(
        base_url=base_url, headers={"X-Shopify-Access-Token": TOKEN}
    ) as client:
        yield client
    await runner.cleanup()


class Receiver:
    """A tiny webhook endpoint that keeps what it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[dict[str, str], bytes]] = asyncio.Queue()

    async def handle(self, request: web.Request) -> web.Response:
        await self.received.put((dict(request.headers), await request.read()))
        return web.Response(status=200)

    async def next(self, topic: str) -> tuple[dict[str, str], bytes]:
        while True:
            headers, body = await asyncio.wait_for(self.received.get(), timeout=5)
            if headers["X-Shopify-Topic"] == topic:
                return headers, body


@pytest.fixture
async def receiver(state: ShopifyMockState) -> AsyncIterator[Receiver]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/shopify", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/shopify"
    yield target
    await runner.cleanup()


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await client.post(API, json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def product_of(state: ShopifyMockState, sku: str) -> str:
    variant = state.variant_by_sku(sku)
    assert variant is not None
    return variant.product_gid


def stock_input(
    state: ShopifyMockState, sku: str, quantity: int, expected: int | None
) -> dict[str, Any]:
    variant = state.variant_by_sku(sku)
    assert variant is not None
    return {
        "name": "available",
        "reason": "correction",
        "referenceDocumentUri": "gid://repricerd/SyncRun/1",
        "quantities": [
            {
                "inventoryItemId": variant.item_gid,
                "locationId": DEFAULT_LOCATION_GID,
                "quantity": quantity,
                "changeFromQuantity": expected,
            }
        ],
    }


# -- transport ---------------------------------------------------------------------------------


async def test_missing_or_wrong_token_is_401_with_shopify_body(shop: httpx.AsyncClient) -> None:
    for headers in ({"X-Shopify-Access-Token": ""}, {"X-Shopify-Access-Token": "shpat_wrong"}):
        response = await shop.post(API, json={"query": "{ shop { id } }"}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
        }


async def test_only_api_version_2026_04_is_served(shop: httpx.AsyncClient) -> None:
    response = await shop.post("/admin/api/2025-10/graphql.json", json={"query": "{ shop { id } }"})
    assert response.status_code == 404
    ok = await shop.post(API, json={"query": "{ shop { myshopifyDomain } }"})
    assert ok.headers["X-Shopify-API-Version"] == "2026-04"


async def test_syntax_and_validation_errors_are_200_with_errors(shop: httpx.AsyncClient) -> None:
    body = await gql(shop, "{ productVariants(first: 1) { edges { node { id } }")
    assert body["errors"][0]["message"].startswith("Syntax Error")
    assert "data" not in body
    body = await gql(shop, "{ productVariants(first: 1) { edges { node { id colour } } } }")
    assert "colour" in body["errors"][0]["message"]
    missing = await shop.post(API, content=b"not json")
    assert missing.status_code == 400


# -- reads -------------------------------------------------------------------------------------


async def test_pagination_walks_every_variant_with_string_prices(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    seen: dict[str, dict[str, Any]] = {}
    after, pages = None, 0
    while True:
        body = await gql(shop, VARIANTS, {"first": 2, "after": after})
        connection = body["data"]["productVariants"]
        pages += 1
        for edge in connection["edges"]:
            seen[edge["node"]["sku"]] = edge["node"]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]
    assert pages == 3
    assert sorted(seen) == ["BOOK-1", "MUG-001", "MUG-002", "MUG-003", "TEE-M", "TEE-S"]
    mug = seen["MUG-001"]
    assert mug["id"] == "gid://shopify/ProductVariant/1001"
    assert mug["price"] == "24.99"
    assert mug["inventoryQuantity"] == 15
    assert (
        mug["product"]["id"] == seen["MUG-002"]["product"]["id"] != seen["TEE-S"]["product"]["id"]
    )
    quantities = {
        q["name"]: q["quantity"] for q in mug["inventoryItem"]["inventoryLevel"]["quantities"]
    }
    assert quantities == {"available": 15, "on_hand": 15, "committed": 0}
    assert body["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 2000.0


async def test_search_query_filters_by_sku(shop: httpx.AsyncClient) -> None:
    search = "sku:MUG-00* -sku:MUG-003 OR sku:BOOK-1"
    query = '{ productVariants(first: 10, query: "%s") { nodes { sku } } }'.replace("%s", search)
    body = await gql(shop, query)
    assert sorted(n["sku"] for n in body["data"]["productVariants"]["nodes"]) == [
        "BOOK-1",
        "MUG-001",
        "MUG-002",
    ]


def test_search_values_may_be_quoted_with_backslash_escapes() -> None:
    """Shopify's search syntax escapes quotes, backslashes and ``: ( )`` with a backslash."""
    from types import SimpleNamespace

    from connectors.mock.shopify.resolvers import search_filter

    skus = ['ODD"Q-1', "BACK\\SLASH-1", "A:B-1", "SP ACE-1", "PLAIN-1"]
    views = [SimpleNamespace(sku=sku, title=sku) for sku in skus]
    query = 'sku:"ODD\\"Q-1" OR sku:"BACK\\\\SLASH-1" OR sku:A\\:B-1 OR sku:\'SP ACE-1\''
    keep = search_filter(query)
    assert [v.sku for v in views if keep(v)] == skus[:4]
    # What the connector sends for an exact SKU look-up finds exactly those SKUs.
    from connectors.shopify.queries import sku_search

    keep = search_filter(sku_search(skus[:3]))
    assert [v.sku for v in views if keep(v)] == skus[:3]


async def test_connection_without_first_or_over_250_is_an_error(shop: httpx.AsyncClient) -> None:
    body = await gql(shop, "{ productVariants { nodes { id } } }")
    assert body["errors"]
    assert body["data"] is None
    body = await gql(shop, "{ productVariants(first: 251) { nodes { id } } }")
    assert body["errors"]
    assert body["data"] is None


# -- price writes ------------------------------------------------------------------------------


async def test_price_update_as_string_is_applied(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    body = await gql(
        shop,
        SET_PRICES,
        {
            "productId": product_of(state, "MUG-001"),
            "variants": [
                {"id": "gid://shopify/ProductVariant/1001", "price": "26.50"},
                {"id": "gid://shopify/ProductVariant/1002", "price": "18.9"},
            ],
        },
    )
    payload = body["data"]["productVariantsBulkUpdate"]
    assert payload["userErrors"] == []
    assert payload["productVariants"] == [
        {"id": "gid://shopify/ProductVariant/1001", "price": "26.50"},
        {"id": "gid://shopify/ProductVariant/1002", "price": "18.90"},
    ]
    assert str(state.market.listings["MUG-001"].price) == "26.50"
    assert body["extensions"]["cost"]["requestedQueryCost"] == 10


async def test_price_as_json_number_is_refused_before_execution(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    body = await gql(
        shop,
        SET_PRICES,
        {
            "productId": product_of(state, "MUG-001"),
            "variants": [{"id": "gid://shopify/ProductVariant/1001", "price": 26.5}],
        },
    )
    assert "data" not in body
    assert "Money" in body["errors"][0]["message"]
    literal = (
        'mutation { productVariantsBulkUpdate(productId: "PRODUCT", variants: [{id: '
        '"gid://shopify/ProductVariant/1001", price: 26.5}]) { userErrors { code } } }'
    ).replace("PRODUCT", product_of(state, "MUG-001"))
    assert (await gql(shop, literal))["errors"]
    assert str(state.market.listings["MUG-001"].price) == "24.99"


async def test_variant_of_another_product_is_a_user_error_and_nothing_applies(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    variants = [
        {"id": "gid://shopify/ProductVariant/1001", "price": "30.00"},
        {"id": "gid://shopify/ProductVariant/2001", "price": "13.00"},
    ]
    body = await gql(
        shop, SET_PRICES, {"productId": product_of(state, "MUG-001"), "variants": variants}
    )
    payload = body["data"]["productVariantsBulkUpdate"]
    assert payload["productVariants"] is None
    assert payload["userErrors"] == [
        {
            "field": ["variants", "1", "id"],
            "message": "Product variant does not exist",
            "code": "PRODUCT_VARIANT_DOES_NOT_EXIST",
        }
    ]
    assert str(state.market.listings["MUG-001"].price) == "24.99"
    partial = await gql(
        shop,
        SET_PRICES,
        {"productId": product_of(state, "MUG-001"), "variants": variants, "partial": True},
    )
    assert partial["data"]["productVariantsBulkUpdate"]["productVariants"] == [
        {"id": "gid://shopify/ProductVariant/1001", "price": "30.00"}
    ]
    assert str(state.market.listings["MUG-001"].price) == "30.00"
    assert str(state.market.listings["TEE-S"].price) == "12.00"


async def test_negative_price_and_oversized_batch_are_refused(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    product = product_of(state, "MUG-001")
    body = await gql(
        shop,
        SET_PRICES,
        {
            "productId": product,
            "variants": [{"id": "gid://shopify/ProductVariant/1001", "price": "-1.00"}],
        },
    )
    (error,) = body["data"]["productVariantsBulkUpdate"]["userErrors"]
    assert error["code"] == "GREATER_THAN_OR_EQUAL_TO"
    assert error["field"] == ["variants", "0", "price"]
    too_many = [{"id": "gid://shopify/ProductVariant/1001", "price": "1.00"}] * 251
    body = await gql(shop, SET_PRICES, {"productId": product, "variants": too_many})
    assert body["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
    assert body["data"]["productVariantsBulkUpdate"] is None
    unknown = await gql(shop, SET_PRICES, {"productId": "gid://shopify/Product/1", "variants": []})
    assert (
        unknown["data"]["productVariantsBulkUpdate"]["userErrors"][0]["code"]
        == "PRODUCT_DOES_NOT_EXIST"
    )


# -- stock writes ------------------------------------------------------------------------------


async def test_inventory_set_applies_with_matching_change_from_quantity(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    body = await gql(
        shop, SET_STOCK, {"input": stock_input(state, "MUG-001", 12, 15), "key": "k-1"}
    )
    payload = body["data"]["inventorySetQuantities"]
    assert payload["userErrors"] == []
    assert payload["inventoryAdjustmentGroup"]["changes"] == [
        {"name": "available", "delta": -3, "quantityAfterChange": 12},
        {"name": "on_hand", "delta": -3, "quantityAfterChange": 12},
    ]
    assert state.market.listings["MUG-001"].quantity == 12


async def test_stale_change_from_quantity_is_a_user_error_and_changes_nothing(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    body = await gql(
        shop, SET_STOCK, {"input": stock_input(state, "MUG-001", 12, 14), "key": "k-2"}
    )
    payload = body["data"]["inventorySetQuantities"]
    assert payload["inventoryAdjustmentGroup"] is None
    assert payload["userErrors"] == [
        {
            "code": "CHANGE_FROM_QUANTITY_STALE",
            "field": ["input", "quantities", "0", "changeFromQuantity"],
            "message": "The changeFromQuantity value does not match persisted value.",
        }
    ]
    assert state.market.listings["MUG-001"].quantity == 15
    assert state.market.effects["k-2"] == 0


async def test_idempotent_replay_returns_the_original_result_and_applies_once(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    variables = {"input": stock_input(state, "MUG-001", 12, 15), "key": "k-3"}
    first = await gql(shop, SET_STOCK, variables)
    state.market.listings["MUG-001"].quantity = 11  # a sale happened in between
    replay = await gql(shop, SET_STOCK, variables)
    assert replay["data"] == first["data"]
    assert state.market.listings["MUG-001"].quantity == 11
    assert state.market.effects["k-3"] == 1
    assert state.market.deliveries["k-3"] == 2
    other = {"input": stock_input(state, "MUG-001", 10, 11), "key": "k-3"}
    mismatch = await gql(shop, SET_STOCK, other)
    assert mismatch["data"]["inventorySetQuantities"]["userErrors"][0]["code"] == (
        "IDEMPOTENCY_KEY_PARAMETER_MISMATCH"
    )
    assert state.market.listings["MUG-001"].quantity == 11


async def test_2026_04_requires_idempotency_key_and_change_from_quantity(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    no_key = SET_STOCK.replace(", $key: String!", "").replace(" @idempotent(key: $key)", "")
    body = await gql(shop, no_key, {"input": stock_input(state, "MUG-001", 12, 15)})
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert body["data"]["inventorySetQuantities"] is None
    rows = stock_input(state, "MUG-001", 12, 15)
    del rows["quantities"][0]["changeFromQuantity"]
    body = await gql(shop, SET_STOCK, {"input": rows, "key": "k-4"})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_FIELD_ARGUMENTS"
    opt_out = await gql(
        shop, SET_STOCK, {"input": stock_input(state, "MUG-001", 3, None), "key": "k-5"}
    )
    assert opt_out["data"]["inventorySetQuantities"]["userErrors"] == []
    assert state.market.listings["MUG-001"].quantity == 3
    removed = SET_STOCK.replace(
        "inventorySetQuantities(input: $input)",
        'inventorySetQuantities(input: {name: "available", reason: "correction", '
        "ignoreCompareQuantity: true, quantities: []})",
    )
    assert (await gql(shop, removed, {"input": rows, "key": "k-6"}))["errors"]


# -- cost bucket -------------------------------------------------------------------------------


async def test_cost_bucket_throttles_then_recovers_as_time_passes(
    tmp_path: Path, clock: ManualClock, sleep: FakeSleep
) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    from pydantic import SecretStr

    state = ShopifyMockState.from_catalog(
        catalog,
        channel="shop",
        access_token=SecretStr(TOKEN),
        clock=clock,
        sleep=sleep,
        maximum_available=25,
        restore_rate=10,
    )
    runner, base_url = await start(state)
    try:
        async with httpx.AsyncClient(
            base_url=base_url, headers={"X-Shopify-Access-Token": TOKEN}
        ) as client:
            variables = {
                "productId": product_of(state, "MUG-001"),
                "variants": [{"id": "gid://shopify/ProductVariant/1001", "price": "20.00"}],
            }
            first = await gql(client, SET_PRICES, variables)
            assert first["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] == 15
            await gql(client, SET_PRICES, variables)
            throttled = await gql(client, SET_PRICES, variables)
            assert throttled["errors"] == [
                {
                    "message": "Throttled",
                    "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits",
                    },
                }
            ]
            cost = throttled["extensions"]["cost"]
            assert cost["requestedQueryCost"] == 10
            assert cost["actualQueryCost"] is None
            assert cost["throttleStatus"] == {
                "maximumAvailable": 25.0,
                "currentlyAvailable": 5,
                "restoreRate": 10.0,
            }
            clock.advance(0.4)  # 5 + 4 points: still short of 10
            assert "errors" in await gql(client, SET_PRICES, variables)
            clock.advance(0.1)
            assert (await gql(client, SET_PRICES, variables))["data"]["productVariantsBulkUpdate"]
            assert state.counters.throttled == 2
    finally:
        await runner.cleanup()


async def test_actual_cost_is_refunded_and_huge_queries_are_refused(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    body = await gql(shop, "{ productVariants(first: 100) { nodes { id sku } } }")
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 100
    assert cost["actualQueryCost"] == 2 + 6
    assert cost["throttleStatus"]["currentlyAvailable"] == 2000 - 8
    huge = (
        "{ productVariants(first: 250) { edges { node { id inventoryItem {"
        " inventoryLevels(first: 10) { nodes { id } } } } } } }"
    )
    body = await gql(shop, huge)
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert "data" not in body


# -- webhooks and orders -----------------------------------------------------------------------


def verify(headers: dict[str, str], body: bytes) -> bool:
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(digest, headers["X-Shopify-Hmac-Sha256"])


async def test_order_takes_stock_and_delivers_signed_orders_create(
    shop: httpx.AsyncClient, state: ShopifyMockState, receiver: Receiver
) -> None:
    response = await shop.post("/_mock/orders", json={"sku": "MUG-002", "quantity": 3})
    assert response.status_code == 200
    headers, body = await receiver.next("orders/create")
    assert verify(headers, body)
    assert not verify(headers, body + b" ")
    for name in (
        "X-Shopify-Shop-Domain",
        "X-Shopify-Webhook-Id",
        "X-Shopify-Triggered-At",
        "X-Shopify-Event-Id",
    ):
        assert headers[name]
    assert headers["X-Shopify-API-Version"] == "2026-04"
    order = json.loads(body)
    assert order["admin_graphql_api_id"] == f"gid://shopify/Order/{order['id']}"
    (line,) = order["line_items"]
    assert (line["sku"], line["quantity"], line["variant_id"], line["price"]) == (
        "MUG-002",
        3,
        1002,
        "19.49",
    )
    level_headers, level_body = await receiver.next("inventory_levels/update")
    assert level_headers["X-Shopify-Event-Id"] == headers["X-Shopify-Event-Id"]
    level = json.loads(level_body)
    assert level["available"] == 1
    assert level["location_id"] == 124656943
    quantities = await gql(
        shop,
        '{ productVariant(id: "gid://shopify/ProductVariant/1002") { inventoryQuantity '
        'inventoryItem { inventoryLevel(locationId: "LOCATION") { quantities(names: ["available", '
        '"committed", "on_hand"]) { name quantity } } } } }'.replace(
            "LOCATION", DEFAULT_LOCATION_GID
        ),
    )
    variant = quantities["data"]["productVariant"]
    assert variant["inventoryQuantity"] == 1
    assert {
        q["name"]: q["quantity"] for q in variant["inventoryItem"]["inventoryLevel"]["quantities"]
    } == {
        "available": 1,
        "committed": 3,
        "on_hand": 4,
    }
    oversold = await shop.post("/_mock/orders", json={"sku": "MUG-002", "quantity": 2})
    assert oversold.status_code == 409
    cancelled = await shop.post(f"/_mock/orders/{response.json()['order_id']}/cancel")
    assert cancelled.status_code == 200
    headers, body = await receiver.next("orders/cancelled")
    assert json.loads(body)["cancelled_at"] is not None
    assert state.market.listings["MUG-002"].quantity == 4


async def test_redelivery_reuses_the_webhook_id(
    shop: httpx.AsyncClient, state: ShopifyMockState, receiver: Receiver
) -> None:
    await shop.post("/_mock/orders", json={"sku": "TEE-S", "quantity": 1})
    headers, body = await receiver.next("orders/create")
    again = await shop.post(
        "/_mock/redeliver", json={"webhook_id": headers["X-Shopify-Webhook-Id"]}
    )
    assert again.json()["status"] == 200
    headers2, body2 = await receiver.next("orders/create")
    assert headers2["X-Shopify-Webhook-Id"] == headers["X-Shopify-Webhook-Id"]
    assert body2 == body
    assert verify(headers2, body2)
    missing = await shop.post("/_mock/redeliver", json={"webhook_id": "nope"})
    assert missing.status_code == 404


async def test_writes_fire_inventory_and_product_webhooks(
    shop: httpx.AsyncClient, state: ShopifyMockState, receiver: Receiver
) -> None:
    await gql(shop, SET_STOCK, {"input": stock_input(state, "TEE-M", 4, 9), "key": "k-7"})
    _headers, body = await receiver.next("inventory_levels/update")
    level = json.loads(body)
    assert level["available"] == 4
    variant = state.variant_by_sku("TEE-M")
    assert variant is not None
    assert f"gid://shopify/InventoryItem/{level['inventory_item_id']}" == variant.item_gid
    await gql(
        shop,
        SET_PRICES,
        {
            "productId": product_of(state, "TEE-M"),
            "variants": [{"id": "gid://shopify/ProductVariant/2002", "price": "14.00"}],
        },
    )
    _headers, body = await receiver.next("products/update")
    product = json.loads(body)
    assert {v["sku"]: v["price"] for v in product["variants"]} == {
        "TEE-S": "12.00",
        "TEE-M": "14.00",
    }


# -- faults ------------------------------------------------------------------------------------


async def test_injected_throttle_error_timeout(
    shop: httpx.AsyncClient, state: ShopifyMockState, sleep: FakeSleep
) -> None:
    query = {"query": "{ shop { myshopifyDomain } }"}
    response = await shop.post("/_mock/faults", json={"throttle_next": 1, "error_next": 2})
    assert response.status_code == 200
    throttled = (await shop.post(API, json=query)).json()
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert (await shop.post(API, json=query)).status_code == 500
    assert (await shop.post(API, json=query)).status_code == 503
    state.faults.update({"timeout_rate": 1.0, "hang_s": 42})
    assert (await shop.post(API, json=query)).status_code == 200
    assert sleep.waits == [42.0]
    state.faults.update({"timeout_rate": 0.0})
    state.throttle_429_every = 1
    state.faults.update({"throttle_next": 1})
    limited = await shop.post(API, json=query)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2.0"
    assert (await shop.post("/_mock/faults", json={"bogus": 1})).status_code == 400


async def test_partial_and_dropped_writes(shop: httpx.AsyncClient, state: ShopifyMockState) -> None:
    state.faults.update({"partial_rate": 1.0})
    variables = {
        "productId": product_of(state, "BOOK-1"),
        "variants": [{"id": "gid://shopify/ProductVariant/3001", "price": "8.00"}],
        "partial": True,
    }
    body = await gql(shop, SET_PRICES, variables)
    assert body["data"]["productVariantsBulkUpdate"]["userErrors"][0]["code"] == "INVALID_INPUT"
    state.faults.update({"partial_rate": 0.0, "drop_rate": 1.0})
    body = await gql(shop, SET_PRICES, variables)
    payload = body["data"]["productVariantsBulkUpdate"]
    assert payload["userErrors"] == []
    assert payload["productVariants"] == [
        {"id": "gid://shopify/ProductVariant/3001", "price": "8.00"}
    ]
    assert str(state.market.listings["BOOK-1"].price) == "9.99"
    snapshot = (await shop.get("/_mock/state")).json()
    assert snapshot["counters"]["dropped_writes"] == 1
    assert {v["sku"]: v["price"] for v in snapshot["variants"]}["BOOK-1"] == "9.99"


async def test_on_hand_counts_committed_units(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    await shop.post("/_mock/orders", json={"sku": "MUG-002", "quantity": 3})  # 1 left, 3 committed
    rows = stock_input(state, "MUG-002", 10, 4)
    rows["name"] = "on_hand"
    body = await gql(shop, SET_STOCK, {"input": rows, "key": "k-8"})
    changes = body["data"]["inventorySetQuantities"]["inventoryAdjustmentGroup"]["changes"]
    assert changes == [
        {"name": "on_hand", "delta": 6, "quantityAfterChange": 10},
        {"name": "available", "delta": 6, "quantityAfterChange": 7},
    ]
    assert state.market.listings["MUG-002"].quantity == 7
    rows["name"] = "incoming"
    body = await gql(shop, SET_STOCK, {"input": rows, "key": "k-9"})
    codes = [e["code"] for e in body["data"]["inventorySetQuantities"]["userErrors"]]
    assert codes == ["INVALID_NAME"]


async def test_unknown_item_location_and_reason_are_user_errors(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    rows = stock_input(state, "MUG-001", 5, 15)
    rows["reason"] = "because"
    rows["quantities"].append({**rows["quantities"][0], "locationId": "gid://shopify/Location/9"})
    rows["quantities"].append(
        {**rows["quantities"][0], "inventoryItemId": "gid://shopify/InventoryItem/9"}
    )
    rows["quantities"].append(dict(rows["quantities"][0]))
    body = await gql(shop, SET_STOCK, {"input": rows, "key": "k-10"})
    errors = body["data"]["inventorySetQuantities"]["userErrors"]
    assert [(e["code"], e["field"]) for e in errors] == [
        ("INVALID_REASON", ["input", "reason"]),
        ("INVALID_LOCATION", ["input", "quantities", "1", "locationId"]),
        ("INVALID_INVENTORY_ITEM", ["input", "quantities", "2", "inventoryItemId"]),
        ("NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", ["input", "quantities", "3"]),
    ]
    assert state.market.listings["MUG-001"].quantity == 15


async def test_background_shopper_places_orders(state: ShopifyMockState) -> None:
    from connectors.mock.shopify.app import run_shopper

    state.shopper_orders_per_min = 30
    gaps: list[float] = []
    dispatched: list[list[tuple[str, dict[str, Any]]]] = []

    async def sleep(seconds: float) -> None:
        gaps.append(seconds)
        if len(gaps) > 3:
            raise asyncio.CancelledError

    state.sleep = sleep
    before = sum(listing.quantity for listing in state.market.listings.values())
    with pytest.raises(asyncio.CancelledError):
        await run_shopper(state, dispatched.append)
    assert len(state.orders) == 3
    assert [events[0][0] for events in dispatched] == ["orders/create"] * 3
    sold = sum(line.quantity for order in state.orders.values() for line in order.lines)
    assert sum(listing.quantity for listing in state.market.listings.values()) == before - sold
    assert all(gap > 0 for gap in gaps)


async def test_mock_state_route_reports_variants_and_counters(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    await gql(shop, SET_STOCK, {"input": stock_input(state, "MUG-001", 12, 15), "key": "k-11"})
    snapshot = (await shop.get("/_mock/state")).json()
    mug = next(v for v in snapshot["variants"] if v["sku"] == "MUG-001")
    assert mug["price"] == "24.99"
    assert mug["inventory_quantity"] == 12
    assert snapshot["counters"]["calls"] == 1
    assert snapshot["counters"]["effects"] == {"k-11": 1}
    assert snapshot["counters"]["operations"] == {"inventorySetQuantities": 1}


async def test_nodes_by_gid_resolve_types_and_cost_per_id(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    query = """query Lookup($ids: [ID!]!) {
      nodes(ids: $ids) {
        __typename
        ... on ProductVariant { id sku product { id } }
        ... on Location { name }
      }
    }"""
    ids = [
        "gid://shopify/ProductVariant/2002",
        DEFAULT_LOCATION_GID,
        "gid://shopify/ProductVariant/9",
    ]
    body = await gql(shop, query, {"ids": ids})
    assert body["data"]["nodes"] == [
        {
            "__typename": "ProductVariant",
            "id": "gid://shopify/ProductVariant/2002",
            "sku": "TEE-M",
            "product": {"id": product_of(state, "TEE-M")},
        },
        {"__typename": "Location", "name": "Main warehouse"},
        None,
    ]
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 3 * (1 + 1)
    assert cost["actualQueryCost"] == (1 + 1) + 1
    too_many = await gql(shop, query, {"ids": ids * 84})
    assert too_many["errors"][0]["extensions"]["code"] == "MAX_INPUT_SIZE_EXCEEDED"
