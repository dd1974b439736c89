"""Shopify channel: settings, registry, listing pagination and price writes on the wire."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from connectors import CHANNELS
from connectors.shopify import ShopifyChannel, ShopifySettings, queries
from daemon.config import load_config
from daemon.settings import Settings
from domain.clock import ManualClock
from domain.errors import ConfigError, TransientChannelError
from domain.writes import PriceUpdate, PushStatus
from tests.connectors.shopify_fixtures import (
    HEADERS,
    LOCATION,
    SHOP,
    URL,
    FakeSleep,
    answer,
    gql,
    make_channel,
    page,
    sent,
    variant,
)


@pytest.fixture
def channel(http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep) -> ShopifyChannel:
    return make_channel(http, clock, sleep)


def listings_body(after: str | None) -> dict[str, Any]:
    return gql(queries.LISTINGS_PAGE, {"first": 100, "after": after, "locationId": LOCATION})


def price_body(product: int, variants: list[tuple[int, str]]) -> dict[str, Any]:
    return gql(
        queries.SET_PRICES,
        {
            "productId": f"gid://shopify/Product/{product}",
            "variants": [
                {"id": f"gid://shopify/ProductVariant/{number}", "price": price}
                for number, price in variants
            ],
        },
    )


def bulk_answer(
    variants: list[tuple[int, str]], user_errors: list[dict[str, Any]] | None = None
) -> httpx.Response:
    return answer(
        {
            "productVariantsBulkUpdate": {
                "productVariants": [
                    {"id": f"gid://shopify/ProductVariant/{n}", "price": p} for n, p in variants
                ],
                "userErrors": user_errors or [],
            }
        }
    )


def update(sku: str, price: str, key: str | None = None, **kw: Any) -> PriceUpdate:
    return PriceUpdate(
        sku=sku, price=Decimal(price), currency="USD", idempotency_key=key or f"k-{sku}", **kw
    )


# --- settings and registry ---------------------------------------------------------------------


def test_settings_default_endpoint_and_strictness() -> None:
    settings = ShopifySettings.model_validate(
        {"kind": "shopify", "shop": SHOP, "access_token": "shpat_x"}
    )
    assert settings.endpoint == f"https://{SHOP}"
    assert settings.graphql_url == URL
    assert settings.currency == "USD"
    assert "shpat_x" not in repr(settings)
    mock = ShopifySettings.model_validate(
        {
            "kind": "shopify",
            "shop": SHOP,
            "access_token": "shpat_x",
            "endpoint": "http://127.0.0.1:8421/",
        }
    )
    assert mock.graphql_url == "http://127.0.0.1:8421/admin/api/2026-04/graphql.json"
    for bad in (
        {"shop": "example.com"},
        {"location_id": "124656943"},
        {"unknown": 1},
        {"currency": "usd"},
    ):
        with pytest.raises(ValidationError):
            ShopifySettings.model_validate(
                {"kind": "shopify", "shop": SHOP, "access_token": "shpat_x", **bad}
            )


def test_shopify_is_a_registered_channel_kind() -> None:
    assert CHANNELS["shopify"] is ShopifyChannel
    settings = Settings.model_validate(
        {
            "channels": {
                "shop": {"kind": "shopify", "shop": SHOP, "access_token": "shpat_x"},
                "demo": {"kind": "mock"},
            },
            "pricing": {"rules": [{"strategy": "hold"}]},
        }
    )
    assert isinstance(settings.channels["shop"], ShopifySettings)
    assert settings.channels["shop"].kind == "shopify"


def test_capabilities(channel: ShopifyChannel) -> None:
    caps = channel.capabilities
    assert caps.compare_and_set_stock is True
    assert caps.max_price_batch == caps.max_stock_batch == 250
    assert caps.own_seller_id is None
    assert caps.sends_floor_and_ceiling is False
    assert caps.stock_is_marketplace_held is False


async def test_no_competitor_offers_on_a_storefront(channel: ShopifyChannel) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        assert await channel.fetch_competitor_offers(["MUG-1"]) == []
        assert not mock.calls


# --- listings ----------------------------------------------------------------------------------


async def test_listings_paginate_over_three_pages(channel: ShopifyChannel) -> None:
    pages = [
        page([variant(1, "MUG-1", "29.99"), variant(2, "MUG-2", "5", available=None)], "c1"),
        page([variant(3, None, "1.00"), variant(4, "TEE-1", "12.50", product=2)], "c2"),
        page([variant(5, "OLD-1", "9.90", product=3, available=0, status="DRAFT")], None),
    ]
    with respx.mock(assert_all_called=True) as mock:
        routes = [
            mock.post(URL, headers=HEADERS, json=listings_body(after)).mock(
                return_value=answer(data, requested=502)
            )
            for after, data in zip((None, "c1", "c2"), pages, strict=True)
        ]
        listings = await channel.fetch_listings()
    assert [route.call_count for route in routes] == [1, 1, 1]
    by_sku = {listing.sku: listing for listing in listings}
    assert sorted(by_sku) == ["MUG-1", "MUG-2", "OLD-1", "TEE-1"]  # no SKU, no listing
    mug = by_sku["MUG-1"]
    assert mug.price == Decimal("29.99")
    assert mug.currency == "USD"
    assert mug.quantity == 5
    assert mug.external_id == "gid://shopify/ProductVariant/1"
    assert mug.external_ids == {
        "product_id": "gid://shopify/Product/1",
        "variant_id": "gid://shopify/ProductVariant/1",
        "inventory_item_id": "gid://shopify/InventoryItem/1",
    }
    assert mug.status == "active"
    assert by_sku["MUG-2"].price == Decimal("5.00")
    assert by_sku["MUG-2"].quantity is None  # not stocked at our location
    assert by_sku["OLD-1"].status == "draft"
    assert by_sku["OLD-1"].quantity == 0
    assert channel.catalog.ids["TEE-1"].product_id == "gid://shopify/Product/2"
    assert channel.catalog.quantities == {"MUG-1": 5, "MUG-2": None, "TEE-1": 5, "OLD-1": 0}


async def test_a_duplicate_sku_keeps_its_first_variant(channel: ShopifyChannel) -> None:
    data = page([variant(1, "MUG-1", "29.99"), variant(9, "MUG-1", "1.00", product=7)], None)
    with respx.mock() as mock:
        mock.post(URL, json=listings_body(None)).mock(return_value=answer(data))
        listings = await channel.fetch_listings()
    assert [(x.sku, x.external_id) for x in listings] == [
        ("MUG-1", "gid://shopify/ProductVariant/1")
    ]


async def test_listings_discover_the_location_first(
    http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep
) -> None:
    channel = make_channel(http, clock, sleep, location_id=None)
    opened = {
        "shop": {"name": "Example", "currencyCode": "USD"},
        "location": {"id": LOCATION, "name": "Main", "isActive": True},
        "locations": {"nodes": []},
    }
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=gql(queries.OPEN_PRIMARY, {})).mock(return_value=answer(opened))
        mock.post(URL, json=listings_body(None)).mock(return_value=answer(page([], None)))
        assert await channel.fetch_listings() == []


# --- prices ------------------------------------------------------------------------------------


async def read_catalog(channel: ShopifyChannel, nodes: list[dict[str, Any]]) -> None:
    with respx.mock() as mock:
        mock.post(URL, json=listings_body(None)).mock(return_value=answer(page(nodes, None)))
        await channel.fetch_listings()


async def test_prices_go_one_product_per_call_as_money_strings(channel: ShopifyChannel) -> None:
    await read_catalog(
        channel,
        [
            variant(1, "MUG-1", "29.99"),
            variant(2, "MUG-2", "29.99"),
            variant(3, "TEE-1", "10.00", product=2),
        ],
    )
    with respx.mock(assert_all_called=True) as mock:
        mugs = mock.post(URL, headers=HEADERS, json=price_body(1, [(1, "24.99"), (2, "5.00")]))
        mugs.mock(return_value=bulk_answer([(1, "24.99"), (2, "5.00")]))
        tees = mock.post(URL, headers=HEADERS, json=price_body(2, [(3, "19.49")]))
        tees.mock(return_value=bulk_answer([(3, "19.49")]))
        results = await channel.push_prices(
            [update("MUG-1", "24.99"), update("TEE-1", "19.494"), update("MUG-2", "5")]
        )
    assert {r.idempotency_key: r.status for r in results} == {
        "k-MUG-1": PushStatus.CONFIRMED,
        "k-TEE-1": PushStatus.CONFIRMED,
        "k-MUG-2": PushStatus.CONFIRMED,
    }
    ref = {r.idempotency_key: r.marketplace_ref for r in results}
    assert ref["k-TEE-1"] == "gid://shopify/ProductVariant/3"


async def test_a_user_error_rejects_only_its_variant(channel: ShopifyChannel) -> None:
    await read_catalog(channel, [variant(1, "MUG-1", "29.99"), variant(2, "MUG-2", "29.99")])
    refusal = {
        "field": ["variants", "1", "price"],
        "message": "Price must be greater than or equal to 0",
        "code": "GREATER_THAN_OR_EQUAL_TO",
    }
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=price_body(1, [(1, "24.99"), (2, "-1.00")])).mock(
            return_value=bulk_answer([(1, "24.99")], [refusal])
        )
        results = await channel.push_prices([update("MUG-1", "24.99"), update("MUG-2", "-1")])
    by_key = {r.idempotency_key: r for r in results}
    assert by_key["k-MUG-1"].status is PushStatus.CONFIRMED
    assert by_key["k-MUG-2"].status is PushStatus.REJECTED
    assert by_key["k-MUG-2"].code == "GREATER_THAN_OR_EQUAL_TO"
    assert by_key["k-MUG-2"].message == "Price must be greater than or equal to 0"


async def test_a_variant_that_moved_is_rejected_and_forgotten(channel: ShopifyChannel) -> None:
    await read_catalog(channel, [variant(1, "MUG-1", "29.99")])
    refusal = {
        "field": ["variants", "0", "id"],
        "message": "Product variant does not exist",
        "code": "PRODUCT_VARIANT_DOES_NOT_EXIST",
    }
    with respx.mock() as mock:
        mock.post(URL, json=price_body(1, [(1, "24.99")])).mock(
            return_value=bulk_answer([], [refusal])
        )
        [result] = await channel.push_prices([update("MUG-1", "24.99")])
    assert result.status is PushStatus.REJECTED
    assert "MUG-1" not in channel.catalog.ids  # the next push looks it up again


async def test_more_than_250_variants_of_one_product_take_two_calls(
    channel: ShopifyChannel,
) -> None:
    nodes = [variant(n, f"S-{n}", "1.00") for n in range(1, 252)]
    await read_catalog(channel, nodes)
    with respx.mock() as mock:
        route = mock.post(URL).mock(side_effect=[bulk_answer([]), bulk_answer([])])
        results = await channel.push_prices([update(f"S-{n}", "2.00") for n in range(1, 252)])
    assert [len(sent(c.request)["variables"]["variants"]) for c in route.calls] == [250, 1]
    assert all(r.status is PushStatus.CONFIRMED for r in results)
    assert len(results) == 251


async def test_unknown_skus_are_looked_up_then_rejected_with_a_clear_code(
    channel: ShopifyChannel,
) -> None:
    by_id = gql(
        queries.VARIANTS_BY_ID,
        {"ids": ["gid://shopify/ProductVariant/7"], "locationId": LOCATION},
    )
    by_sku = gql(
        queries.VARIANTS_BY_SKU,
        {"first": 100, "query": 'sku:"GONE-1" OR sku:"ODD\\"SKU"', "locationId": LOCATION},
    )
    with respx.mock(assert_all_called=True) as mock:
        mock.post(URL, json=by_id).mock(
            return_value=answer({"nodes": [variant(7, "NEW-1", "3.00", product=4)]})
        )
        # The search matches loosely: a variant whose SKU only starts alike is not ours.
        mock.post(URL, json=by_sku).mock(
            return_value=answer(page([variant(8, "GONE-10", "1.00")], None))
        )
        mock.post(URL, json=price_body(4, [(7, "4.00")])).mock(
            return_value=bulk_answer([(7, "4.00")])
        )
        results = await channel.push_prices(
            [
                update("NEW-1", "4", external_id="gid://shopify/ProductVariant/7"),
                update("GONE-1", "4"),
                update('ODD"SKU', "4"),
            ]
        )
    by_key = {r.idempotency_key: r for r in results}
    assert by_key["k-NEW-1"].status is PushStatus.CONFIRMED
    assert by_key["k-GONE-1"].status is PushStatus.REJECTED
    assert by_key["k-GONE-1"].code == "UNKNOWN_SKU"
    assert by_key['k-ODD"SKU'].code == "UNKNOWN_SKU"


async def test_a_price_in_another_currency_is_refused_before_any_call(
    channel: ShopifyChannel,
) -> None:
    with respx.mock(assert_all_mocked=True) as mock:
        [result] = await channel.push_prices(
            [PriceUpdate("MUG-1", Decimal("9.99"), "EUR", "k-eur")]
        )
        assert not mock.calls
    assert result.status is PushStatus.REJECTED
    assert result.code == "CURRENCY_MISMATCH"


async def test_one_products_outage_does_not_undo_the_others(channel: ShopifyChannel) -> None:
    await read_catalog(channel, [variant(1, "MUG-1", "29.99"), variant(3, "TEE-1", "1", product=2)])
    with respx.mock() as mock:
        mock.post(URL, json=price_body(1, [(1, "24.99")])).mock(
            return_value=bulk_answer([(1, "24.99")])
        )
        mock.post(URL, json=price_body(2, [(3, "9.00")])).mock(return_value=httpx.Response(503))
        results = await channel.push_prices([update("MUG-1", "24.99"), update("TEE-1", "9")])
    by_key = {r.idempotency_key: r.status for r in results}
    assert by_key == {"k-MUG-1": PushStatus.CONFIRMED, "k-TEE-1": PushStatus.RETRY}


async def test_a_graphql_error_rejects_that_calls_items(channel: ShopifyChannel) -> None:
    await read_catalog(channel, [variant(1, "MUG-1", "29.99")])
    errors = [
        {"message": "Variable $variants is invalid", "extensions": {"code": "INVALID_VARIABLE"}}
    ]
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=answer(None, errors=errors))
        [result] = await channel.push_prices([update("MUG-1", "24.99")])
    assert result.status is PushStatus.REJECTED
    assert result.code == "INVALID_VARIABLE"
    assert "Variable $variants is invalid" in (result.message or "")


async def test_an_answer_of_another_shape_leaves_the_prices_open(channel: ShopifyChannel) -> None:
    await read_catalog(channel, [variant(1, "MUG-1", "29.99")])
    with respx.mock() as mock:
        mock.post(URL).mock(return_value=answer({"productVariantsBulkUpdate": None}))
        [result] = await channel.push_prices([update("MUG-1", "24.99")])
    assert result.status is PushStatus.RETRY
    assert result.code == "BAD_RESPONSE"


async def test_a_repeated_cursor_stops_the_listing_walk(channel: ShopifyChannel) -> None:
    with respx.mock() as mock:
        mock.post(URL, json=listings_body(None)).mock(
            return_value=answer(page([variant(1, "MUG-1", "1.00")], "c1"))
        )
        route = mock.post(URL, json=listings_body("c1")).mock(
            return_value=answer(page([variant(2, "MUG-2", "1.00")], "c1"))
        )
        with pytest.raises(TransientChannelError, match="repeated"):
            await channel.fetch_listings()
    assert route.call_count == 1


def test_a_yaml_channel_loads_with_secrets_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "repricerd.yaml"
    path.write_text(
        "channels:\n"
        "  shop:\n"
        "    kind: shopify\n"
        f"    shop: {SHOP}\n"
        "    access_token: ${SHOPIFY_TOKEN}\n"
        "    webhook_secret: ${SHOPIFY_WEBHOOK_SECRET}\n"
        "pricing:\n"
        "  rules:\n"
        "    - strategy: hold\n",
        encoding="utf-8",
    )
    env = {"SHOPIFY_TOKEN": "shpat_0123456789abcdef", "SHOPIFY_WEBHOOK_SECRET": "s3cret-s3cret"}
    loaded = load_config(path, environ=env)
    shop = loaded.settings.channels["shop"]
    assert isinstance(shop, ShopifySettings)
    assert shop.access_token.get_secret_value() == "shpat_0123456789abcdef"
    assert shop.graphql_url == URL

    path.write_text(
        path.read_text().replace("    kind: shopify\n", "    kind: shopify\n    foo: 1\n")
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env)
    assert [p.key for p in info.value.problems] == ["channels.shop.foo"]
