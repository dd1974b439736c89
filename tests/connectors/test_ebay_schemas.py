"""Every Sell Inventory request the eBay connector builds validates against eBay's OAS 3 spec.

The spec's object schemas allow any extra property; the strict copy used here forbids them, so
a misspelt field (``availableQty``) or a number where eBay wants a string fails the check.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest
import respx

from connectors.ebay.inventory import OfferRef
from connectors.specs import load_spec
from domain.clock import ManualClock
from domain.writes import PriceUpdate, StockUpdate
from tests.connectors.ebay_fixtures import (
    BULK,
    ITEMS,
    OFFERS,
    FakeSleep,
    body,
    channel,
    item,
    offer,
    token_route,
)

SPEC = "sell_inventory_v1_oas3.json"


def strict(node: Any) -> Any:
    """A copy of a schema tree where every object with properties forbids unknown ones."""
    if isinstance(node, dict):
        out = {key: strict(value) for key, value in node.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [strict(value) for value in node]
    return node


def validator(name: str, *, forbid_extra: bool = True) -> jsonschema.Validator:
    """A validator for ``components.schemas[name]`` with every $ref of the file resolvable."""
    components = copy.deepcopy(load_spec("ebay", SPEC)["components"])
    schema = {
        "$ref": f"#/components/schemas/{name}",
        "components": strict(components) if forbid_extra else components,
    }
    return jsonschema.Draft7Validator(schema)


def query_parameters(path: str) -> set[str]:
    """The query parameter names the spec declares for ``GET path``."""
    operation = load_spec("ebay", SPEC)["paths"][path]["get"]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


def test_the_bulk_call_is_declared_with_this_body_schema() -> None:
    operation = load_spec("ebay", SPEC)["paths"]["/bulk_update_price_quantity"]["post"]
    assert operation["operationId"] == "bulkUpdatePriceQuantity"
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["$ref"] == "#/components/schemas/BulkPriceQuantity"


async def test_every_bulk_body_sent_validates(clock: ManualClock, sleep: FakeSleep) -> None:
    check = validator("BulkPriceQuantity")
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        route = router.post(BULK).mock(return_value=httpx.Response(200, json={"responses": []}))
        ebay = channel(http, clock, sleep)
        for n in range(30):
            ebay.refs[f"S{n}"] = OfferRef(f"S{n}", str(1000 + n), str(2000 + n), Decimal("5"), 1)
        await ebay.push_prices(
            [PriceUpdate(f"S{n}", Decimal("1234.5") + n, "USD", f"p{n}") for n in range(30)]
        )
        await ebay.push_stock([StockUpdate(f"S{n}", n, f"s{n}") for n in range(30)])
    sent = [body(call.request) for call in route.calls]
    assert len(sent) == 4
    for document in sent:
        check.validate(document)
        assert len(document["requests"]) <= 25
        for request in document["requests"]:
            for entry in request["offers"]:
                assert "price" in entry or "availableQuantity" in entry  # OfferPriceQuantity
                if "price" in entry:
                    assert isinstance(entry["price"]["value"], str)


def test_the_strict_check_catches_wrong_bodies() -> None:
    check = validator("BulkPriceQuantity")
    wrong_type = {
        "requests": [{"offers": [{"offerId": "1", "price": {"value": 29.99, "currency": "USD"}}]}]
    }
    misspelt = {"requests": [{"offers": [{"offerId": "1", "availableQty": 3}]}]}
    for document in (wrong_type, misspelt):
        with pytest.raises(jsonschema.ValidationError):
            check.validate(document)


async def test_discovery_query_parameters_are_declared(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        items = router.get(ITEMS).mock(
            return_value=httpx.Response(200, json={"inventoryItems": [item("A", 1)]})
        )
        offers = router.get(OFFERS).mock(
            return_value=httpx.Response(200, json={"offers": [offer("A", "1", "2.00", 1)]})
        )
        await channel(http, clock, sleep).fetch_listings()
    assert set(items.calls.last.request.url.params) <= query_parameters("/inventory_item")
    assert set(offers.calls.last.request.url.params) <= query_parameters("/offer")
    assert int(items.calls.last.request.url.params["limit"]) <= 100  # "Min: 1, Max: 100"


def test_test_fixtures_match_the_response_schemas() -> None:
    # The answers the tests feed the connector are shaped like eBay's (lenient: eBay adds fields).
    validator("EbayOfferDetailsWithAll", forbid_extra=False).validate(offer("A", "1", "2.00", 1))
    validator("Offers").validate({"total": 1, "size": 1, "offers": [offer("A", "1", "2.00", 1)]})
    validator("InventoryItemWithSkuLocaleGroupid").validate(item("A", 3, upc="099482432621"))
    validator("BulkPriceQuantityResponse").validate(
        {
            "responses": [
                {
                    "statusCode": 400,
                    "sku": "A",
                    "offerId": "1",
                    "errors": [
                        {
                            "errorId": 25002,
                            "domain": "API_INVENTORY",
                            "category": "REQUEST",
                            "message": "A user error has occurred.",
                        }
                    ],
                }
            ]
        }
    )
