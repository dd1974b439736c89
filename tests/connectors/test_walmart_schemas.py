"""Every body the Walmart connector sends validates against Walmart's OpenAPI files.

The files are OpenAPI 3.0: each ``components/schemas`` entry is checked with a Draft 4 validator
whose ``$ref``s resolve inside the same document. Bodies are checked as the server parses them
(``json.loads`` of our bytes), so a price sent as a string would fail ``type: number``. Feed files
have no schema of their own in the specs (the request body is ``multipart/form-data`` with a
binary ``file``): each feed item is checked against the single-item schema, and the document's
shape against the spec's own JSON example. Our test fixtures for responses are checked too, so
they cannot drift from what Walmart returns.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import jsonschema
import pytest
import respx

from connectors.specs import load_spec
from connectors.walmart.feeds import inventory_feed
from domain.clock import ManualClock
from domain.writes import PriceUpdate, StockUpdate
from tests.connectors.test_walmart_feeds import FEED_ID, FEED_URL, item, status_page
from tests.connectors.walmart_fixtures import (
    API,
    FakeSleep,
    channel,
    feed_file,
    settings,
    token_route,
)

PRICES = [
    PriceUpdate("MUG-1", Decimal("19.99"), "USD", "p1"),
    PriceUpdate("MUG/2 x", Decimal("0.5"), "USD", "p2"),
    PriceUpdate("MUG-3", Decimal("1234567.89"), "USD", "p3"),
]
STOCK = [StockUpdate("MUG-1", 0, "s1"), StockUpdate("MUG/2 x", 12_000, "s2")]


def validator(spec: str, name: str) -> jsonschema.Validator:
    """A validator for ``components/schemas/<name>`` of ``walmart/<spec>``, refs resolvable."""
    document = load_spec("walmart", spec)
    schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema.Draft4Validator(schema)


def wire(content: bytes) -> Any:
    """What the server parses from our bytes (plain json: numbers become int/float)."""
    return json.loads(content)


def shape(value: Any) -> Any:
    """The structure of a JSON value: keys and nesting, leaves replaced by their JSON type."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return (
        "number"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else type(value).__name__
    )


async def test_single_writes_validate(clock: ManualClock, sleep: FakeSleep) -> None:
    price_ok = {"ItemPriceResponse": {"mart": "WALMART_US", "sku": "x", "message": "ok"}}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        prices = router.put(f"{API}/v3/price").mock(return_value=httpx.Response(200, json=price_ok))
        stock = router.put(url__startswith=f"{API}/v3/inventory").mock(
            side_effect=lambda request: httpx.Response(200, content=request.content)
        )
        walmart = channel(http, clock, sleep)
        await walmart.push_prices(PRICES)
        await walmart.push_stock(STOCK)
    assert prices.call_count == 3
    assert stock.call_count == 2
    price_schema = validator("price.json", "Price")
    for call in prices.calls:
        body = wire(call.request.content)
        price_schema.validate(body)
        assert isinstance(body["pricing"][0]["currentPrice"]["amount"], int | float)
    inventory_schema = validator("inventory.json", "Inventory")
    for call in stock.calls:
        inventory_schema.validate(wire(call.request.content))
    validator("price.json", "ItemPriceResponse").validate(price_ok)


async def test_feed_files_validate(clock: ManualClock, sleep: FakeSleep) -> None:
    updates = [PriceUpdate(f"S{n}", Decimal("1.25") * (n + 1), "USD", f"k{n}") for n in range(12)]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        submit = router.post(f"{API}/v3/feeds").mock(
            return_value=httpx.Response(200, json={"feedId": FEED_ID})
        )
        router.get(url__startswith=FEED_URL).mock(
            return_value=httpx.Response(200, json=status_page([item(u.sku) for u in updates]))
        )
        await channel(http, clock, sleep).push_prices(updates)
    name, _, _ = feed_file(submit.calls.last.request)
    assert name == "file"  # the multipart part the spec requires
    content = submit.calls.last.request.content
    document = wire(content[content.index(b"{") : content.rindex(b"}") + 1])
    operation = load_spec("walmart", "price.json")["paths"]["/v3/feeds"]["post"]
    example = operation["requestBody"]["content"]["multipart/form-data"]["examples"]["json1"]
    assert set(document) == set(example["value"])
    assert document["PriceHeader"] == {"version": "1.7"}
    price_schema = validator("price.json", "Price")
    for entry in document["Price"]:
        price_schema.validate(entry)
    validator("price.json", "FeedId").validate({"feedId": FEED_ID})


def test_inventory_feeds_match_the_spec_examples() -> None:
    operation = load_spec("walmart", "inventory.json")["paths"]["/v3/feeds"]["post"]
    examples = operation["requestBody"]["content"]["multipart/form-data"]["examples"]
    single = wire(json.dumps(inventory_feed(STOCK, settings())).encode())
    assert shape(single) == shape(examples["json1"]["value"])
    inventory_schema = validator("inventory.json", "Inventory")
    for entry in single["Inventory"]:
        inventory_schema.validate(entry)
    multi = inventory_feed(
        STOCK, settings(ship_node="10000003527", inventory_feed_type="MP_INVENTORY")
    )
    expected = examples["MultiNode_Bulk_Inventory_Update_Request"]["value"]
    assert shape(wire(json.dumps(multi).encode())) == shape(expected)
    quantity = validator("inventory.json", "InputQty")
    for entry in multi["inventory"]:
        quantity.validate(entry["shipNodes"][0]["quantity"])


async def test_token_and_insights_requests_validate(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        grants = token_route(router)
        insights = router.post(url__startswith=f"{API}/v3/insights/").mock(
            return_value=httpx.Response(200, json={"payload": []})
        )
        await channel(http, clock, sleep).fetch_competitor_offers(["MUG-1"])
    form = {k: v[0] for k, v in parse_qs(grants.calls.last.request.content.decode()).items()}
    validator("auth.json", "IAMTokenDTO").validate(form)
    validator("auth.json", "OAuthToken").validate(
        {"access_token": "t", "token_type": "Bearer", "expires_in": 900}
    )
    validator("insights.json", "ItemDetailsLQRequestPayload").validate(
        wire(insights.calls.last.request.content)
    )


def test_response_fixtures_match_the_specs() -> None:
    page = status_page(
        [
            item("A", index=0),
            item("B", "DATA_ERROR", 1, code="ERR_EXT_DATA_0101", description="bad"),
        ]
    )
    validator("feeds.json", "PartnerFeedResponse").validate(page)
    row = {
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
    validator("inventory.json", "GetAllInventoriesDTO").validate(row)
    wfs = {
        "headers": {"totalCount": 1, "limit": 300, "offset": 0},
        "payload": {
            "inventory": [
                {
                    "sku": "WFS-1",
                    "shipNodes": [
                        {"availToSellQty": 40, "onHandQty": 44, "shipNodeType": "WFSFulfilled"}
                    ],
                }
            ]
        },
    }
    validator("inventory.json", "WfsInventoryDTO").validate(wfs)


def test_a_string_amount_would_fail_the_schema() -> None:
    bad = {"sku": "A", "pricing": [{"currentPriceType": "BASE", "currentPrice": {"amount": "1"}}]}
    with pytest.raises(jsonschema.ValidationError):
        validator("price.json", "Price").validate(bad)
