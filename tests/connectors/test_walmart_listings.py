"""Listings (items + quantities + WFS) and insights competitor prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import respx

from domain.clock import ManualClock
from domain.listings import Fulfillment
from domain.offers import CompetitorOffer
from domain.writes import PushStatus, StockUpdate
from tests.connectors.walmart_fixtures import (
    API,
    SELLER,
    FakeSleep,
    assert_wm_headers,
    body,
    channel,
    token_route,
    walmart_error,
)

CURSOR = "AoE/GjBSWFpNSFlPRjNZTjBTRUxMRVI=="


def wm_item(sku: str, amount: Any, published: str = "PUBLISHED", **extra: Any) -> dict[str, Any]:
    return {
        "mart": "WALMART_US",
        "sku": sku,
        "wpid": f"WP{sku}",
        "upc": "886859944807",
        "gtin": "00886859944807",
        "productName": "Mug",
        "shelf": '["Home Page"]',
        "productType": "Mugs",
        "price": {"currency": "USD", "amount": amount},
        "publishedStatus": published,
        "lifecycleStatus": "ACTIVE",
        **extra,
    }


def mock_catalog(router: respx.MockRouter, wfs: httpx.Response | None = None) -> dict[str, Any]:
    items = router.get(url__startswith=f"{API}/v3/items").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "ItemResponse": [
                        wm_item("MUG-1", 24.99),
                        wm_item("MUG-2", 19.5, "UNPUBLISHED"),
                    ],
                    "totalItems": 3,
                    "nextCursor": CURSOR,
                },
            ),
            # The cursor repeats (the spec says it may): the count ends the paging.
            httpx.Response(
                200,
                json={
                    "ItemResponse": [wm_item("WFS-1", 10)],
                    "totalItems": 3,
                    "nextCursor": CURSOR,
                },
            ),
        ]
    )
    nodes = router.get(url__startswith=f"{API}/v3/inventories").mock(
        side_effect=[
            httpx.Response(
                200,
                json={
                    "meta": {"totalCount": 2, "nextCursor": "NTVm"},
                    "elements": {
                        "inventories": [
                            {
                                "sku": "MUG-1",
                                "nodes": [
                                    {
                                        "shipNode": "100009",
                                        "inputQty": {"unit": "EACH", "amount": 12},
                                        "availToSellQty": {"unit": "EACH", "amount": 10},
                                        "reservedQty": {"unit": "EACH", "amount": 2},
                                    }
                                ],
                            }
                        ]
                    },
                },
            ),
            httpx.Response(
                200,
                json={
                    "meta": {"totalCount": 2},
                    "elements": {
                        "inventories": [
                            {
                                "sku": "MUG-2",
                                "nodes": [
                                    {
                                        "shipNode": "100009",
                                        "inputQty": {"unit": "EACH", "amount": 0},
                                    }
                                ],
                            }
                        ]
                    },
                },
            ),
        ]
    )
    wfs_route = router.get(url__startswith=f"{API}/v3/fulfillment/inventory").mock(
        return_value=wfs
        or httpx.Response(
            200,
            json={
                "headers": {"totalCount": 1, "limit": 300, "offset": 0},
                "payload": {
                    "inventory": [
                        {
                            "sku": "WFS-1",
                            "shipNodes": [
                                {
                                    "modifiedDate": "2026-03-01",
                                    "availToSellQty": 40,
                                    "onHandQty": 44,
                                    "shipNodeType": "WFSFulfilled",
                                }
                            ],
                        }
                    ]
                },
            },
        )
    )
    return {"items": items, "nodes": nodes, "wfs": wfs_route}


async def test_fetch_listings_joins_items_quantities_and_wfs(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        routes = mock_catalog(router)
        walmart = channel(http, clock, sleep)
        listings = {item.sku: item for item in await walmart.fetch_listings()}
        # WFS stock is Walmart's: refused locally, no call made.
        results = await walmart.push_stock([StockUpdate("WFS-1", 5, "k")])
    assert [str(c.request.url) for c in routes["items"].calls] == [
        f"{API}/v3/items?nextCursor=%2A&limit=50",
        f"{API}/v3/items?nextCursor=AoE%2FGjBSWFpNSFlPRjNZTjBTRUxMRVI%3D%3D&limit=50",
    ]
    assert [str(c.request.url) for c in routes["nodes"].calls] == [
        f"{API}/v3/inventories?limit=50",
        f"{API}/v3/inventories?limit=50&nextCursor=NTVm",
    ]
    assert str(routes["wfs"].calls.last.request.url) == (
        f"{API}/v3/fulfillment/inventory?offset=0&limit=300"
    )
    for route in routes.values():
        assert_wm_headers(route.calls.last.request)
    mug = listings["MUG-1"]
    assert (mug.price, mug.quantity, mug.status) == (Decimal("24.99"), 12, "active")
    assert mug.external_id == "WPMUG-1"
    assert mug.external_ids["gtin"] == "00886859944807"
    assert mug.fulfillment is Fulfillment.MERCHANT
    assert (listings["MUG-2"].price, listings["MUG-2"].status) == (Decimal("19.50"), "unpublished")
    assert listings["MUG-2"].quantity == 0
    wfs = listings["WFS-1"]
    assert (wfs.fulfillment, wfs.quantity) == (Fulfillment.MARKETPLACE, 40)
    assert results[0].status is PushStatus.REJECTED
    assert results[0].code == "READ_ONLY"


async def test_a_seller_without_wfs_has_only_merchant_items(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        mock_catalog(router, wfs=walmart_error(404, "CONTENT_NOT_FOUND.GMP_WFS_API", "no WFS"))
        listings = await channel(http, clock, sleep).fetch_listings()
    assert {item.fulfillment for item in listings} == {Fulfillment.MERCHANT}


async def test_ship_node_selects_that_nodes_quantity(clock: ManualClock, sleep: FakeSleep) -> None:
    page = {
        "meta": {"totalCount": 1},
        "elements": {
            "inventories": [
                {
                    "sku": "A",
                    "nodes": [
                        {"shipNode": "1", "inputQty": {"unit": "EACH", "amount": 93}},
                        {"shipNode": "2", "inputQty": {"unit": "EACH", "amount": 436}},
                    ],
                }
            ]
        },
    }
    items = {"ItemResponse": [wm_item("A", 5)], "totalItems": 1}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router, "tok-a", "tok-b")  # two channels, two accounts' tokens
        router.get(url__startswith=f"{API}/v3/items").mock(
            return_value=httpx.Response(200, json=items)
        )
        router.get(url__startswith=f"{API}/v3/inventories").mock(
            return_value=httpx.Response(200, json=page)
        )
        both = await channel(http, clock, sleep, wfs=False).fetch_listings()
        one = await channel(http, clock, sleep, wfs=False, ship_node="2").fetch_listings()
    assert both[0].quantity == 529
    assert one[0].quantity == 436


async def test_competitor_offers_come_from_listing_quality_insights(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    entry = {
        "productId": "3F82A2A8W0DJ",
        "sku": "MUG-1",
        "itemId": "771087594",
        "scoreDetails": {
            "offer": {
                "price": {
                    "score": None,
                    "walmartShipping": 0,
                    "competitorShipping": 1.5,
                    "competitorPrice": {"amount": 34.95, "currency": "USD"},
                    "price": {"amount": 36.29, "currency": "USD"},
                    "issueTitle": "Price Not Competitive",
                    "asin": "B00PDHPL5Y",
                }
            }
        },
    }
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.post(url__startswith=f"{API}/v3/insights/items/listingQuality/items").mock(
            side_effect=[
                httpx.Response(200, json={"totalItems": 1, "payload": [entry]}),
                walmart_error(400, "INVALID_REQUEST", "unknown sku"),
            ]
        )
        observations = await channel(http, clock, sleep).fetch_competitor_offers(
            ["MUG-1", "GONE", "MUG-1"]
        )
    assert route.call_count == 2  # each SKU once; a refused one is skipped
    request = route.calls[0].request
    assert str(request.url) == f"{API}/v3/insights/items/listingQuality/items?limit=1"
    assert_wm_headers(request)
    assert body(request) == {"query": {"field": "sku", "value": "MUG-1"}}
    [observation] = observations
    assert observation.sku == "MUG-1"
    assert observation.source == "insights"
    assert observation.offers == (
        CompetitorOffer(SELLER, Decimal("36.29"), Decimal("0.00"), "fbm", is_own=True),
        CompetitorOffer("external:B00PDHPL5Y", Decimal("34.95"), Decimal("1.50"), "fbm"),
    )
    assert observation.buy_box_price is None
