"""Every body the Amazon connector builds validates against Amazon's official schemas."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest
import respx

from connectors.amazon.feeds import FeedMessage, feed_document
from connectors.amazon.listings import price_patches, stock_patches
from connectors.specs import load_spec
from connectors.wire import dumps_exact
from domain.clock import ManualClock
from domain.writes import PriceUpdate, StockUpdate
from tests.connectors.amazon_fixtures import API, SELLER, FakeSleep, channel, settings, token_route

UPDATES = [
    PriceUpdate("MUG-1", Decimal("19.99"), "USD", "p1", Decimal("18.5"), Decimal("39.99")),
    PriceUpdate("MUG-2", Decimal("0.5"), "USD", "p2"),
    PriceUpdate("MUG-3", Decimal("1234567.891"), "USD", "p3", floor=Decimal("1")),
]
STOCK = [StockUpdate("MUG-1", 0, "s1"), StockUpdate("MUG/2 x", 12_000, "s2")]


def swagger_validator(spec: str, definition: str) -> jsonschema.Validator:
    """A validator for one Swagger 2.0 definition with the file's definitions resolvable."""
    document = load_spec("amazon", spec)
    schema = {"$ref": f"#/definitions/{definition}", "definitions": document["definitions"]}
    return jsonschema.Draft4Validator(schema)


def wire(value: Any) -> Any:
    """What a server parses from our bytes."""
    return json.loads(dumps_exact(value))


async def test_patch_requests_sent_validate_against_listings_model(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    validator = swagger_validator("listingsItems_2021-08-01.json", "ListingsItemPatchRequest")
    accepted = {"sku": "x", "status": "ACCEPTED", "submissionId": "s"}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.patch(url__startswith=f"{API}/listings/2021-08-01/items/{SELLER}/").mock(
            return_value=httpx.Response(200, json=accepted)
        )
        amazon = channel(http, clock, sleep)
        await amazon.push_prices(UPDATES)
        await amazon.push_stock(STOCK)
    assert route.call_count == len(UPDATES) + len(STOCK)
    for call in route.calls:
        validator.validate(json.loads(call.request.content))
    # A schema that cannot fail proves nothing: a body without patches must be refused.
    assert not validator.is_valid({"productType": "PRODUCT", "patches": []})
    assert not validator.is_valid({"patches": [{"op": "replace", "path": "/attributes/x"}]})


def test_feed_documents_validate_against_listings_feed_schema() -> None:
    cfg = settings()
    schema = load_spec("amazon", "listings-feed-schema-v2.json")
    messages = [FeedMessage(u.sku, "PRODUCT", price_patches(u, cfg)) for u in UPDATES] + [
        FeedMessage(u.sku, "KITCHEN", stock_patches(u)) for u in STOCK
    ]
    document = wire(feed_document(cfg.seller_id, messages))
    jsonschema.Draft7Validator(schema).validate(document)
    broken = {**document, "header": {**document["header"], "version": "1.0"}}
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)
    message = load_spec("amazon", "listings-feed-message-schema-v2.json")
    for item in document["messages"]:
        jsonschema.Draft7Validator(message).validate(item)


async def test_feed_and_pricing_requests_validate_against_their_models(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    doc_spec = swagger_validator("feeds_2021-06-30.json", "CreateFeedDocumentSpecification")
    feed_spec = swagger_validator("feeds_2021-06-30.json", "CreateFeedSpecification")
    offers_spec = swagger_validator("productPricingV0.json", "GetListingOffersBatchRequest")
    upload = "https://tortuga-prod-na.s3-external-1.amazonaws.com/in"
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        doc = router.post(f"{API}/feeds/2021-06-30/documents").mock(
            return_value=httpx.Response(201, json={"feedDocumentId": "d1", "url": upload})
        )
        router.put(upload).mock(return_value=httpx.Response(200))
        feed = router.post(f"{API}/feeds/2021-06-30/feeds").mock(
            return_value=httpx.Response(202, json={"feedId": "f1"})
        )
        router.get(f"{API}/feeds/2021-06-30/feeds/f1").mock(
            return_value=httpx.Response(
                200,
                json={"feedId": "f1", "feedType": "JSON_LISTINGS_FEED",
                      "createdTime": "2026-03-02T12:00:00Z", "processingStatus": "CANCELLED"},
            )
        )  # fmt: skip
        offers = router.post(f"{API}/batches/products/pricing/v0/listingOffers").mock(
            return_value=httpx.Response(200, json={"responses": []})
        )
        amazon = channel(http, clock, sleep, patch_max_batch=0)
        await amazon.push_prices(UPDATES)
        await amazon.fetch_competitor_offers([f"SKU-{i}" for i in range(20)])
    doc_spec.validate(json.loads(doc.calls.last.request.content))
    feed_spec.validate(json.loads(feed.calls.last.request.content))
    offers_spec.validate(json.loads(offers.calls.last.request.content))
    assert not offers_spec.is_valid(
        {"requests": json.loads(offers.calls.last.request.content)["requests"] * 2}
    )  # 40 > maxItems 20


def test_money_is_an_exact_json_number() -> None:
    assert dumps_exact({"v": Decimal("19.99")}) == b'{"v":19.99}'
    assert dumps_exact([Decimal("0.10"), Decimal("1E+2"), 3, None, True, "é"]) == (
        '[0.10,100,3,null,true,"é"]'.encode()
    )
    assert json.loads(dumps_exact(Decimal("19.99")), parse_float=Decimal) == Decimal("19.99")
    with pytest.raises(TypeError):
        dumps_exact({"v": 19.99})
    with pytest.raises(ValueError, match="non-finite"):
        dumps_exact(Decimal("NaN"))
