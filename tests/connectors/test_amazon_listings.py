"""Listings Items API: discovery (searchListingsItems) and price/stock PATCHes on the wire."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from connectors import CHANNELS
from connectors.amazon import AmazonChannel, AmazonSettings
from daemon.config import load_config
from daemon.settings import Settings
from domain.clock import ManualClock
from domain.listings import ChannelListing, Fulfillment
from domain.writes import PriceUpdate, PushStatus, StockUpdate
from tests.connectors.amazon_fixtures import (
    API,
    MARKET,
    SELLER,
    TOKEN,
    FakeSleep,
    body,
    channel,
    settings,
    token_route,
)

SEARCH = f"{API}/listings/2021-08-01/items/{SELLER}"
LISTING = SEARCH + "/{sku}"


def item(
    sku: str,
    asin: str,
    *,
    attr_price: float | None = None,
    offer_price: str | None = None,
    availability: list[dict[str, Any]] | None = None,
    product_type: str = "KITCHEN",
    created: str = "2024-02-01T00:00:00Z",
) -> dict[str, Any]:
    """A searchListingsItems item shaped like the model's sandbox example."""
    result: dict[str, Any] = {
        "sku": sku,
        "summaries": [
            {
                "marketplaceId": MARKET,
                "asin": asin,
                "productType": product_type,
                "conditionType": "new_new",
                "status": ["BUYABLE", "DISCOVERABLE"],
                "itemName": sku,
                "createdDate": created,
                "lastUpdatedDate": "2025-03-01T00:00:00Z",
            }
        ],
        "attributes": {},
        "offers": [],
        "fulfillmentAvailability": availability
        if availability is not None
        else [{"fulfillmentChannelCode": "DEFAULT", "quantity": 12}],
    }
    if attr_price is not None:
        value = [{"schedule": [{"value_with_tax": attr_price}]}]
        result["attributes"]["purchasable_offer"] = [
            {"marketplace_id": MARKET, "currency": "USD", "audience": "ALL", "our_price": value}
        ]
    if offer_price is not None:
        result["offers"] = [
            {
                "marketplaceId": MARKET,
                "offerType": "B2C",
                "price": {"currencyCode": "USD", "amount": offer_price},
                "audience": {"value": "ALL", "displayName": "Sell on Amazon"},
            }
        ]
    return result


async def test_fetch_listings_pages_and_maps_every_field(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    pages = [
        {
            "numberOfResults": 3,
            "pagination": {"nextToken": "tok-2"},
            "items": [
                item("MUG-BLUE", "B07N4M94X4", attr_price=24.99),
                item("MUG-RED", "B07N4M94X5", offer_price="19.99"),
            ],
        },
        {
            "numberOfResults": 3,
            "items": [
                item(
                    "MUG-FBA",
                    "B07N4M94X6",
                    offer_price="30.00",
                    availability=[{"fulfillmentChannelCode": "AMAZON_NA", "quantity": 40}],
                )
            ],
        },
    ]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        search = router.get(SEARCH).mock(side_effect=[httpx.Response(200, json=p) for p in pages])
        listings = await channel(http, clock, sleep).fetch_listings()

    first, second = (c.request for c in search.calls)
    assert first.method == "GET"
    assert str(first.url) == (
        f"{SEARCH}?marketplaceIds={MARKET}"
        "&includedData=summaries%2Cattributes%2Coffers%2CfulfillmentAvailability"
        "&pageSize=20&sortBy=createdDate&sortOrder=ASC"
    )
    assert second.url.params["pageToken"] == "tok-2"
    assert first.headers["x-amz-access-token"] == second.headers["x-amz-access-token"] == TOKEN
    assert "content-type" not in first.headers  # a GET carries no body
    assert listings == [
        ChannelListing(
            "MUG-BLUE", "B07N4M94X4", Decimal("24.99"), "USD", 12,
            external_ids={"asin": "B07N4M94X4"},
        ),
        ChannelListing(
            "MUG-RED", "B07N4M94X5", Decimal("19.99"), "USD", 12,
            external_ids={"asin": "B07N4M94X5"},
        ),
        ChannelListing(
            "MUG-FBA", "B07N4M94X6", Decimal("30.00"), "USD", 40,
            fulfillment=Fulfillment.MARKETPLACE, external_ids={"asin": "B07N4M94X6"},
        ),
    ]  # fmt: skip


async def test_a_catalogue_over_1000_items_is_read_in_created_date_windows(
    clock: ManualClock, sleep: FakeSleep, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.amazon.channel.SEARCH_WINDOW_MAX", 2)
    windows = [
        {"numberOfResults": 3, "items": [
            item("A", "B000000001", offer_price="1.00", created="2024-01-01T00:00:00Z"),
            item("B", "B000000002", offer_price="1.00", created="2024-01-02T00:00:00Z"),
        ]},
        {"numberOfResults": 2, "items": [
            item("B", "B000000002", offer_price="1.00", created="2024-01-02T00:00:00Z"),
            item("C", "B000000003", offer_price="1.00", created="2024-01-03T00:00:00Z"),
        ]},
        {"numberOfResults": 1, "items": [
            item("C", "B000000003", offer_price="1.00", created="2024-01-03T00:00:00Z"),
        ]},
    ]  # fmt: skip
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        search = router.get(SEARCH).mock(side_effect=[httpx.Response(200, json=w) for w in windows])
        listings = await channel(http, clock, sleep).fetch_listings()
    assert [listing.sku for listing in listings] == ["A", "B", "C"]
    assert [c.request.url.params.get("createdAfter") for c in search.calls] == [
        None,
        "2024-01-02T00:00:00Z",
        "2024-01-03T00:00:00Z",
    ]


async def test_price_patch_is_exact_on_the_wire(clock: ManualClock, sleep: FakeSleep) -> None:
    update = PriceUpdate(
        "MUG/BLUE 12",
        Decimal("19.99"),
        "USD",
        idempotency_key="p-1",
        floor=Decimal("18.5"),
        ceiling=Decimal("39.99"),
    )
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        patch = router.patch(LISTING.format(sku="MUG%2FBLUE%2012")).mock(
            return_value=httpx.Response(
                200,
                json={
                    "sku": "MUG/BLUE 12",
                    "status": "ACCEPTED",
                    "submissionId": "f1dc",
                    "issues": [],
                },
            )
        )
        (result,) = await channel(http, clock, sleep).push_prices([update])
    request = patch.calls.last.request
    assert request.method == "PATCH"
    assert request.url.raw_path.decode() == (
        f"/listings/2021-08-01/items/{SELLER}/MUG%2FBLUE%2012"
        f"?marketplaceIds={MARKET}&issueLocale=en_US"
    )
    # The literal text: money is a JSON number with exactly the cents, never a float artefact.
    assert request.content == (
        b'{"productType":"PRODUCT","patches":[{"op":"replace","path":"/attributes/purchasable_offer",'
        b'"value":[{"marketplace_id":"ATVPDKIKX0DER","currency":"USD","audience":"ALL",'
        b'"our_price":[{"schedule":[{"value_with_tax":19.99}]}],'
        b'"minimum_seller_allowed_price":[{"schedule":[{"value_with_tax":18.50}]}],'
        b'"maximum_seller_allowed_price":[{"schedule":[{"value_with_tax":39.99}]}]}]}]}'
    )
    assert body(request)["patches"][0]["value"][0]["our_price"][0]["schedule"][0][
        "value_with_tax"
    ] == Decimal("19.99")
    assert result.status is PushStatus.ACCEPTED
    assert result.marketplace_ref == "f1dc"


async def test_stock_patch_uses_the_listings_product_type(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    page = {"numberOfResults": 1, "items": [item("MUG-1", "B07N4M94X4", offer_price="5.00")]}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(SEARCH).mock(return_value=httpx.Response(200, json=page))
        patch = router.patch(LISTING.format(sku="MUG-1")).mock(
            return_value=httpx.Response(
                200, json={"sku": "MUG-1", "status": "ACCEPTED", "submissionId": "s"}
            )
        )
        amazon = channel(http, clock, sleep)
        await amazon.fetch_listings()
        (result,) = await amazon.push_stock([StockUpdate("MUG-1", 7, "s-1")])
    assert body(patch.calls.last.request) == {
        "productType": "KITCHEN",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 7}],
            }
        ],
    }
    assert result.status is PushStatus.ACCEPTED


async def test_invalid_submission_is_rejected_with_the_issue(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    invalid = {
        "sku": "MUG-1",
        "status": "INVALID",
        "submissionId": "a1c5",
        "issues": [
            {"code": "99022", "message": "Low-severity note", "severity": "WARNING"},
            {
                "code": "18155",
                "message": "The 'minimum price' is greater than the selling price",
                "severity": "ERROR",
                "categories": ["INVALID_PRICE"],
            },
        ],
    }
    update = PriceUpdate("MUG-1", Decimal("10.00"), "USD", "p-2", floor=Decimal("12.00"))
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.patch(LISTING.format(sku="MUG-1")).mock(
            return_value=httpx.Response(200, json=invalid)
        )
        (result,) = await channel(http, clock, sleep).push_prices([update])
    assert result.status is PushStatus.REJECTED
    assert result.code == "18155"
    assert result.message == "The 'minimum price' is greater than the selling price"


async def test_fba_stock_and_foreign_currency_are_refused_without_a_call(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    fba = item(
        "MUG-FBA",
        "B07N4M94X6",
        offer_price="30.00",
        availability=[{"fulfillmentChannelCode": "AMAZON_NA", "quantity": 40}],
    )
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(SEARCH).mock(
            return_value=httpx.Response(200, json={"numberOfResults": 1, "items": [fba]})
        )
        patch = router.patch(url__startswith=SEARCH + "/")
        amazon = channel(http, clock, sleep)
        await amazon.fetch_listings()
        (stock,) = await amazon.push_stock([StockUpdate("MUG-FBA", 3, "s-9")])
        (price,) = await amazon.push_prices([PriceUpdate("MUG-FBA", Decimal("9"), "EUR", "p-9")])
    assert patch.call_count == 0
    assert (stock.status, stock.code) == (PushStatus.REJECTED, "READ_ONLY")
    assert (price.status, price.code) == (PushStatus.REJECTED, "CURRENCY_MISMATCH")


def test_settings_defaults_and_registry() -> None:
    cfg = settings()
    assert cfg.endpoint == "https://sellingpartnerapi-na.amazon.com"
    assert cfg.auth_endpoint == "https://api.amazon.com/auth/o2/token"
    assert cfg.patch_max_batch == 50  # 10 s of patches at 5/s
    assert settings(region="eu").endpoint == "https://sellingpartnerapi-eu.amazon.com"
    assert settings(endpoint="http://127.0.0.1:9001").api_base == "http://127.0.0.1:9001"
    assert "s3cr3t" not in repr(cfg)
    assert CHANNELS["amazon"] is AmazonChannel
    parsed = Settings.model_validate(
        {
            "channels": {"amazon-us": settings().model_dump(mode="python")},
            "pricing": {"rules": [{"strategy": "hold"}]},
        }
    )
    assert isinstance(parsed.channels["amazon-us"], AmazonSettings)
    with pytest.raises(ValueError, match="extra"):
        AmazonSettings.model_validate({**settings().model_dump(), "bogus": 1})


def test_yaml_channel_with_env_credentials_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AMZ_CLIENT_SECRET", "from-env-secret")
    monkeypatch.setenv("AMZ_REFRESH_TOKEN", "Atzr|from-env")
    path = tmp_path / "repricerd.yaml"
    path.write_text(
        "channels:\n"
        "  amazon-us:\n"
        "    kind: amazon\n"
        "    region: eu\n"
        "    marketplace_id: A1PA6795UKMFR9\n"
        "    seller_id: A3EXAMPLE\n"
        "    currency: EUR\n"
        "    credentials: {client_id: amzn1.app, client_secret: '${AMZ_CLIENT_SECRET}',\n"
        "                  refresh_token: '${AMZ_REFRESH_TOKEN}'}\n"
        "pricing:\n"
        "  rules: [{strategy: hold}]\n"
    )
    loaded = load_config(path)
    cfg = loaded.settings.channels["amazon-us"]
    assert isinstance(cfg, AmazonSettings)
    assert cfg.endpoint == "https://sellingpartnerapi-eu.amazon.com"
    assert cfg.credentials.refresh_token.get_secret_value() == "Atzr|from-env"
    # Resolved secrets are known to the log redaction processor.
    assert "Atzr|from-env" in loaded.secrets
