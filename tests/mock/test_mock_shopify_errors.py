"""The mock Shopify answers as Shopify's graphql-ruby does: error wording, shape and codes, and
GraphQL cost throttling as HTTP 200 THROTTLED (HTTP 429 only as an opt-in fault)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.mock.shopify.state import ShopifyMockState
from domain.clock import ManualClock
from tests.mock.shopify_fixtures import serve, store
from tests.mock.test_mock_shopify import API, SET_PRICES, product_of


@pytest.fixture
def state(tmp_path: Path, clock: ManualClock) -> ShopifyMockState:
    return store(tmp_path, clock)


@pytest.fixture
async def shop(state: ShopifyMockState) -> AsyncIterator[httpx.AsyncClient]:
    async for client in serve(state):
        yield client


async def _post(shop: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    response = await shop.post(API, json={"query": query, "variables": variables})
    assert response.status_code == 200
    return response.json()


async def test_an_invalid_variable_is_graphql_rubys_invalid_variable(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    variants = [{"id": "gid://shopify/ProductVariant/1001", "price": "abc"}]
    body = await _post(
        shop, SET_PRICES, {"productId": product_of(state, "MUG-001"), "variants": variants}
    )
    assert "data" not in body
    assert body["errors"] == [
        {
            "message": "Variable $variants of type [ProductVariantsBulkInput!]! was provided "
            'invalid value for 0.price (Could not coerce value "abc" to Money)',
            "locations": [{"line": 1, "column": 37}],  # the $variants definition
            "extensions": {
                "code": "INVALID_VARIABLE",
                "value": variants,
                "problems": [
                    {"path": [0, "price"], "explanation": 'Could not coerce value "abc" to Money'}
                ],
            },
        }
    ]
    assert body["extensions"]["cost"]["actualQueryCost"] is None
    assert state.counters.operations["productVariantsBulkUpdate"] == 0  # nothing ran


async def test_missing_and_unknown_input_fields_are_problems_of_their_own(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    body = await _post(shop, SET_PRICES, {"variants": [{"price": "1.00", "colour": "red"}]})
    product, variants = body["errors"]
    assert product["message"] == "Variable $productId of type ID! was provided invalid value"
    assert product["extensions"] == {
        "code": "INVALID_VARIABLE",
        "value": None,
        "problems": [{"path": [], "explanation": "Expected value to not be null"}],
    }
    assert variants["extensions"]["problems"] == [
        {"path": [0, "colour"], "explanation": "Field is not defined on ProductVariantsBulkInput"}
    ]


@pytest.mark.parametrize(
    ("query", "column", "path"),
    [
        ("{ shop { noSuchField } }", 10, ["query", "shop", "noSuchField"]),
        ("query Shop { shop { id noSuchField } }", 24, ["query Shop", "shop", "noSuchField"]),
    ],
)
async def test_an_unknown_field_is_graphql_rubys_undefined_field(
    shop: httpx.AsyncClient, query: str, column: int, path: list[str]
) -> None:
    body = await _post(shop, query, {})
    assert "data" not in body
    assert body["errors"] == [
        {
            "message": "Field 'noSuchField' doesn't exist on type 'Shop'",
            "locations": [{"line": 1, "column": column}],
            "path": path,
            "extensions": {
                "code": "undefinedField",
                "typeName": "Shop",
                "fieldName": "noSuchField",
            },
        }
    ]


async def test_throttling_is_http_200_throttled_unless_429_is_opted_into(
    shop: httpx.AsyncClient, state: ShopifyMockState
) -> None:
    query = {"query": "{ shop { myshopifyDomain } }"}
    state.faults.update({"throttle_next": 8})
    answers = [await shop.post(API, json=query) for _ in range(8)]
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["errors"][0]["extensions"]["code"] for a in answers} == {"THROTTLED"}
    assert state.counters.http_429 == 0
    # The opt-in fault: every 2nd throttled answer (the 10th and 12th so far) is the REST
    # limiter's 429.
    state.throttle_429_every = 2
    state.faults.update({"throttle_next": 4})
    limited = [await shop.post(API, json=query) for _ in range(4)]
    assert [a.status_code for a in limited] == [200, 429, 200, 429]
    assert limited[1].headers["Retry-After"] == "2.0"
    assert state.counters.http_429 == 2
