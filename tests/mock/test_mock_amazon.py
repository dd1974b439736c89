"""The mock SP-API server speaks Amazon's wire protocol and refuses what Amazon refuses."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from connectors.mock.amazon import AmazonMockState, start
from connectors.mock.amazon.app import tick
from connectors.mock.amazon.wire import json_schema_validator, openapi_validator
from connectors.mock.faults import Faults
from connectors.mock.market import MockListing, MockMarket, make_competitors
from domain.clock import ManualClock
from domain.listings import Fulfillment

SELLER = "A3DEMOSELLER"
US = "ATVPDKIKX0DER"
LISTINGS = f"/listings/2021-08-01/items/{SELLER}"
ROOT = Path(__file__).resolve().parents[2]


def _market(count: int = 3) -> MockMarket:
    rng = random.Random(7)
    market = MockMarket()
    for index in range(count):
        sku = f"MUG-{index:03d}"
        price = Decimal("20.00") + index
        market.listings[sku] = MockListing(sku, f"B0{index:08d}", price, "USD", quantity=5)
        market.competitors[sku] = make_competitors(sku, price, 3, rng)
    market.listings["FBA-001"] = MockListing(
        "FBA-001", "B0FBA00001", Decimal("30.00"), "USD", 7, Fulfillment.MARKETPLACE
    )
    market.competitors["FBA-001"] = make_competitors("FBA-001", Decimal("30.00"), 2, rng)
    return market


@dataclass
class Mock:
    """A running mock, an httpx client on it, and what its fake sleep was asked to wait."""

    state: AmazonMockState
    http: httpx.AsyncClient
    clock: ManualClock
    slept: list[float] = field(default_factory=list)
    token: str = ""

    async def grant(self) -> str:
        """Obtain an LWA access token the way a connector does."""
        response = await self.http.post(
            "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": self.state.refresh_token,
                "client_id": self.state.client_id,
                "client_secret": self.state.client_secret,
            },
        )
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        return self.token

    @property
    def auth(self) -> dict[str, str]:
        """The SP-API auth header."""
        return {"x-amz-access-token": self.token}


@pytest.fixture
async def mock(clock: ManualClock) -> AsyncIterator[Mock]:
    """A mock on loopback over a small market, rate limits on, the test's manual clock."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    # No background ticker: the tests drive ``tick`` on the manual clock themselves.
    state = AmazonMockState(
        market=_market(), clock=clock, sleep=fake_sleep, feed_processing_s=2, ticker_s=None
    )
    runner, base_url = await start(state)
    async with httpx.AsyncClient(base_url=base_url) as http:
        harness = Mock(state, http, clock, slept)
        await harness.grant()
        yield harness
    await runner.cleanup()


def _offer(price: Any, low: Any = None, high: Any = None) -> dict[str, Any]:
    def scheduled(value: Any) -> list[dict[str, Any]]:
        return [{"schedule": [{"value_with_tax": value}]}]

    entry: dict[str, Any] = {
        "marketplace_id": US,
        "currency": "USD",
        "audience": "ALL",
        "our_price": scheduled(price),
    }
    if low is not None:
        entry["minimum_seller_allowed_price"] = scheduled(low)
    if high is not None:
        entry["maximum_seller_allowed_price"] = scheduled(high)
    return {"op": "replace", "path": "/attributes/purchasable_offer", "value": [entry]}


def _quantity(quantity: Any, code: str = "DEFAULT") -> dict[str, Any]:
    value = [{"fulfillment_channel_code": code, "quantity": quantity}]
    return {"op": "replace", "path": "/attributes/fulfillment_availability", "value": value}


async def _patch(mock: Mock, sku: str, *patches: dict[str, Any], **params: str) -> httpx.Response:
    body = {"productType": "PRODUCT", "patches": list(patches)}
    query = {"marketplaceIds": US, **params}
    return await mock.http.patch(f"{LISTINGS}/{sku}", params=query, json=body, headers=mock.auth)


def _assert_valid(validator: Any, instance: Any) -> None:
    errors = [error.message for error in validator.iter_errors(instance)]
    assert errors == []


# --- Login with Amazon -------------------------------------------------------------------------


async def test_token_grant_answers_an_lwa_bearer_token(mock: Mock) -> None:
    response = await mock.http.post(
        "/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": mock.state.refresh_token,
            "client_id": mock.state.client_id,
            "client_secret": mock.state.client_secret,
        },
    )
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["access_token"].startswith("Atza|")
    assert body["refresh_token"] == mock.state.refresh_token


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"refresh_token": "Atzr|stolen"}, 400, "invalid_grant"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "amzn1.application-oa2-client.other"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
async def test_token_grant_refuses_bad_credentials(
    mock: Mock, change: dict[str, str], status: int, error: str
) -> None:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": mock.state.refresh_token,
        "client_id": mock.state.client_id,
        "client_secret": mock.state.client_secret,
        **change,
    }
    response = await mock.http.post("/auth/o2/token", data=form)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert "error_description" in response.json()


async def test_token_grant_needs_a_form_body(mock: Mock) -> None:
    response = await mock.http.post("/auth/o2/token", json={"grant_type": "refresh_token"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_missing_unknown_and_expired_tokens_are_403(mock: Mock) -> None:
    url = f"{LISTINGS}/MUG-000"
    params = {"marketplaceIds": US}
    missing = await mock.http.get(url, params=params)
    unknown = await mock.http.get(url, params=params, headers={"x-amz-access-token": "Atza|x"})
    mock.clock.advance(3600)
    expired = await mock.http.get(url, params=params, headers=mock.auth)
    for response in (missing, unknown, expired):
        assert response.status_code == 403
        error = response.json()["errors"][0]
        assert error["code"] == "Unauthorized"
        assert error["message"] == "Access to requested resource is denied."
        assert "x-amzn-RateLimit-Limit" not in response.headers
    assert "expired" in expired.json()["errors"][0]["details"]
    await mock.grant()  # a refreshed token works again
    assert (await mock.http.get(url, params=params, headers=mock.auth)).status_code == 200


async def test_wrong_seller_id_is_denied(mock: Mock) -> None:
    response = await mock.http.get(
        "/listings/2021-08-01/items/AOTHERSELLER/MUG-000",
        params={"marketplaceIds": US},
        headers=mock.auth,
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "Unauthorized"


# --- Listings Items ----------------------------------------------------------------------------


async def test_get_listings_item_matches_the_item_model(mock: Mock) -> None:
    response = await mock.http.get(
        f"{LISTINGS}/MUG-001",
        params={
            "marketplaceIds": US,
            "includedData": "summaries,attributes,issues,offers,fulfillmentAvailability",
        },
        headers=mock.auth,
    )
    item = response.json()
    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert response.headers["x-amzn-RequestId"]
    _assert_valid(openapi_validator("listingsItems_2021-08-01.json", "Item"), item)
    assert item["offers"][0]["price"] == {"currencyCode": "USD", "amount": "21.00"}
    assert item["fulfillmentAvailability"] == [{"fulfillmentChannelCode": "DEFAULT", "quantity": 5}]
    assert item["summaries"][0]["asin"] == "B000000001"
    assert item["summaries"][0]["status"] == ["BUYABLE", "DISCOVERABLE"]
    offer = item["attributes"]["purchasable_offer"][0]
    assert offer["our_price"][0]["schedule"][0]["value_with_tax"] == 21.0


async def test_unknown_sku_is_404_not_found(mock: Mock) -> None:
    response = await mock.http.get(
        f"{LISTINGS}/NOPE", params={"marketplaceIds": US}, headers=mock.auth
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NOT_FOUND"
    assert response.headers["x-amzn-RateLimit-Limit"] == "5.0"


async def test_patch_applies_a_number_price_and_quantity(mock: Mock) -> None:
    response = await _patch(mock, "MUG-000", _offer(24.99, 18.5, 39.99), _quantity(12))
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ACCEPTED"
    assert body["sku"] == "MUG-000"
    assert body["issues"] == []
    assert body["submissionId"]
    _assert_valid(
        openapi_validator("listingsItems_2021-08-01.json", "ListingsItemSubmissionResponse"), body
    )
    listing = mock.state.market.listings["MUG-000"]
    assert listing.price == Decimal("24.99")
    assert listing.quantity == 12
    assert mock.state.meta["MUG-000"].min_price == Decimal("18.50")
    assert mock.state.applied["MUG-000|price|24.99"] == 1
    read = await mock.http.get(
        f"{LISTINGS}/MUG-000",
        params={"marketplaceIds": US, "includedData": "offers"},
        headers=mock.auth,
    )
    assert read.json()["offers"][0]["price"]["amount"] == "24.99"


async def test_patch_refuses_a_string_amount(mock: Mock) -> None:
    response = await _patch(mock, "MUG-000", _offer("24.99"))
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "INVALID"
    assert body["issues"][0]["code"] == "4000001"
    assert body["issues"][0]["attributeNames"] == ["purchasable_offer"]
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")


async def test_merge_sets_bounds_on_the_live_offer(mock: Mock) -> None:
    def merge(low: float) -> dict[str, Any]:
        value = [
            {
                "audience": "ALL",
                "minimum_seller_allowed_price": [{"schedule": [{"value_with_tax": low}]}],
            }
        ]
        return {"op": "merge", "path": "/attributes/purchasable_offer", "value": value}

    accepted = (await _patch(mock, "MUG-000", merge(15.0))).json()
    refused = (await _patch(mock, "MUG-000", merge(25.0))).json()  # above the live 20.00
    assert accepted["status"] == "ACCEPTED"
    assert refused["status"] == "INVALID"
    assert refused["issues"][0]["code"] == "18155"
    assert mock.state.meta["MUG-000"].min_price == Decimal("15.00")
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")


async def test_patch_refuses_fractions_of_a_cent(mock: Mock) -> None:
    body = (await _patch(mock, "MUG-000", _offer(24.999))).json()
    assert body["status"] == "INVALID"
    assert body["issues"][0]["code"] == "4000001"
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")


@pytest.mark.parametrize(
    ("price", "low", "high", "code"),
    [(10.0, 15.0, 40.0, "18155"), (50.0, 15.0, 40.0, "18156")],
)
async def test_patch_refuses_a_price_outside_the_seller_bounds(
    mock: Mock, price: float, low: float, high: float, code: str
) -> None:
    body = (await _patch(mock, "MUG-000", _offer(price, low, high))).json()
    assert body["status"] == "INVALID"
    assert body["issues"][0]["code"] == code
    assert body["issues"][0]["categories"] == ["INVALID_PRICE"]
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")
    assert not mock.state.applied


@pytest.mark.parametrize(
    "body",
    [
        {"patches": [_offer(1.0)]},  # productType missing
        {"productType": "PRODUCT", "patches": []},  # minItems 1
        {"productType": "PRODUCT", "patches": [{"op": "upsert", "path": "/attributes/x"}]},
        {
            "productType": "PRODUCT",
            "patches": [{"op": "replace", "path": "/attributes/x", "value": {"a": 1}}],
        },
        {
            "productType": "PRODUCT",
            "patches": [
                {"op": "replace", "path": "/attributes/purchasable_offer/0", "value": [{}]}
            ],
        },
    ],
)
async def test_patch_refuses_a_schema_invalid_body_with_400(
    mock: Mock, body: dict[str, Any]
) -> None:
    response = await mock.http.patch(
        f"{LISTINGS}/MUG-000", params={"marketplaceIds": US}, json=body, headers=mock.auth
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"
    assert response.headers["x-amzn-RateLimit-Limit"] == "5.0"


async def test_patch_needs_marketplace_ids(mock: Mock) -> None:
    body = {"productType": "PRODUCT", "patches": [_offer(1.0)]}
    response = await mock.http.patch(f"{LISTINGS}/MUG-000", json=body, headers=mock.auth)
    assert response.status_code == 400


async def test_validation_preview_validates_without_applying(mock: Mock) -> None:
    response = await _patch(
        mock, "MUG-000", _offer(22.0), mode="VALIDATION_PREVIEW", includedData="identifiers,issues"
    )
    body = response.json()
    assert body["status"] == "VALID"
    assert body["identifiers"] == [{"marketplaceId": US, "asin": "B000000000"}]
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")


@pytest.mark.parametrize("quantity", [-1, 2.5, "3"])
async def test_patch_refuses_a_bad_quantity(mock: Mock, quantity: Any) -> None:
    body = (await _patch(mock, "MUG-000", _quantity(quantity))).json()
    assert body["status"] == "INVALID"
    assert mock.state.market.listings["MUG-000"].quantity == 5


async def test_patch_accepts_an_integral_float_quantity_as_an_integer(mock: Mock) -> None:
    body = (await _patch(mock, "MUG-000", _quantity(4.0))).json()
    assert body["status"] == "ACCEPTED"
    assert mock.state.market.listings["MUG-000"].quantity == 4
    assert isinstance(mock.state.market.listings["MUG-000"].quantity, int)


async def test_patch_refuses_merchant_quantity_on_an_fba_listing(mock: Mock) -> None:
    body = (await _patch(mock, "FBA-001", _quantity(3))).json()
    assert body["status"] == "INVALID"
    assert body["issues"][0]["attributeNames"] == ["fulfillment_availability"]
    assert mock.state.market.listings["FBA-001"].quantity == 7


async def test_patch_for_an_unknown_sku_is_accepted_without_effect(mock: Mock) -> None:
    body = (await _patch(mock, "GHOST", _offer(9.99))).json()
    assert body["status"] == "ACCEPTED"
    assert mock.state.orphan_patches["GHOST"] == 1
    assert "GHOST" not in mock.state.market.listings
    mock.state.unknown_sku_patch = "not_found"
    assert (await _patch(mock, "GHOST", _offer(9.99))).status_code == 404


async def test_search_pages_through_every_listing(mock: Mock) -> None:
    for index in range(3, 25):
        sku = f"MUG-{index:03d}"
        mock.state.market.listings[sku] = MockListing(sku, f"B0{index:08d}", Decimal("9.99"), "USD")
    mock.state.enforce_rate_limits = False
    seen: list[str] = []
    params = {"marketplaceIds": US, "pageSize": "20", "sortBy": "sku", "sortOrder": "ASC"}
    params["includedData"] = "summaries,offers,fulfillmentAvailability"
    pages = 0
    while True:
        response = await mock.http.get(LISTINGS, params=params, headers=mock.auth)
        body = response.json()
        assert response.status_code == 200
        _assert_valid(openapi_validator("listingsItems_2021-08-01.json", "ItemSearchResults"), body)
        assert body["numberOfResults"] == 26
        seen += [item["sku"] for item in body["items"]]
        pages += 1
        token = body.get("pagination", {}).get("nextToken")
        if token is None:
            break
        params["pageToken"] = token
    assert pages == 2
    assert seen == sorted(mock.state.market.listings)


async def test_search_defaults_to_last_updated_desc_and_filters_by_date(mock: Mock) -> None:
    """Amazon's defaults (lastUpdatedDate, DESC) and the inclusive createdAfter/Before windows."""
    mock.state.enforce_rate_limits = False
    skus = list(mock.state.market.listings)
    created = [mock.state.meta_of(sku).created for sku in skus]
    assert len(set(created)) == len(skus)  # seeded listings were not all created at once
    mock.clock.advance(5)
    mock.state.touch(skus[0])  # the oldest listing is now the most recently updated

    async def search(**extra: str) -> list[str]:
        query = {"marketplaceIds": US, "pageSize": "20", **extra}
        response = await mock.http.get(LISTINGS, params=query, headers=mock.auth)
        assert response.status_code == 200, response.text
        return [item["sku"] for item in response.json()["items"]]

    assert (await search())[0] == skus[0]
    ordered = sorted(skus, key=lambda sku: mock.state.meta_of(sku).created)
    middle = mock.state.meta_of(ordered[1]).created.isoformat()
    assert await search(sortBy="createdDate", sortOrder="ASC", createdAfter=middle) == ordered[1:]
    assert await search(sortBy="createdDate", sortOrder="ASC", createdBefore=middle) == ordered[:2]
    assert await search(lastUpdatedAfter=mock.state.clock.now().isoformat()) == [skus[0]]
    bad = await mock.http.get(
        LISTINGS, params={"marketplaceIds": US, "createdAfter": "yesterday"}, headers=mock.auth
    )
    assert bad.status_code == 400


@pytest.mark.parametrize("params", [{"pageSize": "21"}, {"pageToken": "garbage!"}, {}])
async def test_search_refuses_bad_parameters(mock: Mock, params: dict[str, str]) -> None:
    query = {"marketplaceIds": US, **params} if params else {}
    response = await mock.http.get(LISTINGS, params=query, headers=mock.auth)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"


# --- Feeds -------------------------------------------------------------------------------------


async def _submit_feed(mock: Mock, document: Any, content_type: str = "application/json") -> str:
    created = await mock.http.post(
        "/feeds/2021-06-30/documents", json={"contentType": content_type}, headers=mock.auth
    )
    assert created.status_code == 201
    upload = created.json()
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    put = await mock.http.put(upload["url"], content=raw, headers={"Content-Type": content_type})
    assert put.status_code == 200
    feed = await mock.http.post(
        "/feeds/2021-06-30/feeds",
        json={
            "feedType": "JSON_LISTINGS_FEED",
            "marketplaceIds": [US],
            "inputFeedDocumentId": upload["feedDocumentId"],
        },
        headers=mock.auth,
    )
    assert feed.status_code == 202
    feed_id: str = feed.json()["feedId"]
    return feed_id


async def _get_feed(mock: Mock, feed_id: str) -> dict[str, Any]:
    response = await mock.http.get(f"/feeds/2021-06-30/feeds/{feed_id}", headers=mock.auth)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    _assert_valid(openapi_validator("feeds_2021-06-30.json", "Feed"), body)
    return body


async def _report(mock: Mock, document_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    meta = await mock.http.get(f"/feeds/2021-06-30/documents/{document_id}", headers=mock.auth)
    assert meta.status_code == 200
    described = meta.json()
    raw = (await mock.http.get(described["url"])).content
    if described.get("compressionAlgorithm") == "GZIP":
        raw = gzip.decompress(raw)
    report = json.loads(raw)
    _assert_valid(json_schema_validator("listings-feed-processing-report-schema-v2.json"), report)
    return described, report


def _message(message_id: int, sku: str, patch: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "sku": sku,
        "operationType": "PATCH",
        "productType": "PRODUCT",
        "patches": [patch],
    }


@pytest.mark.parametrize("gzip_reports", [False, True])
async def test_feed_runs_to_done_with_a_report_of_its_invalid_message(
    mock: Mock, gzip_reports: bool
) -> None:
    mock.state.gzip_reports = gzip_reports
    document = {
        "header": {"sellerId": SELLER, "version": "2.0"},
        "messages": [
            _message(1, "MUG-000", _offer(23.49)),
            _message(2, "MUG-001", _offer("23.49")),  # money as a string: refused
            _message(3, "MUG-002", _quantity(0)),
            {"messageId": 4, "sku": "MUG-002", "operationType": "PATCH"},  # no patches
        ],
    }
    _assert_valid(
        json_schema_validator("listings-feed-schema-v2.json"),
        document | {"messages": document["messages"][:3]},
    )
    feed_id = await _submit_feed(mock, document, "application/json; charset=UTF-8")
    assert (await _get_feed(mock, feed_id))["processingStatus"] == "IN_QUEUE"
    mock.clock.advance(1.0)
    feed = await _get_feed(mock, feed_id)
    assert feed["processingStatus"] == "IN_PROGRESS"
    # Amazon applies messages while IN_PROGRESS; the report is only out once the feed is DONE.
    assert "resultFeedDocumentId" not in feed
    assert mock.state.market.listings["MUG-000"].price == Decimal("23.49")
    mock.clock.advance(1.0)
    feed = await _get_feed(mock, feed_id)
    assert feed["processingStatus"] == "DONE"
    assert feed["processingStartTime"] <= feed["processingEndTime"]
    described, report = await _report(mock, feed["resultFeedDocumentId"])
    assert ("compressionAlgorithm" in described) is gzip_reports
    assert report["header"]["feedId"] == feed_id
    assert report["summary"] == {
        "errors": 2,
        "warnings": 0,
        "messagesProcessed": 4,
        "messagesAccepted": 2,
        "messagesInvalid": 2,
    }
    assert sorted(issue["messageId"] for issue in report["issues"]) == [2, 4]
    assert mock.state.market.listings["MUG-000"].price == Decimal("23.49")
    assert mock.state.market.listings["MUG-001"].price == Decimal("21.00")
    assert mock.state.market.listings["MUG-002"].quantity == 0


@pytest.mark.parametrize(
    "document",
    [
        {"messages": [_message(1, "MUG-000", _offer(1.0))]},  # no header
        {"header": {"sellerId": SELLER, "version": "2.0"}, "messages": []},
        {
            "header": {"sellerId": "SOMEONEELSE", "version": "2.0"},
            "messages": [_message(1, "MUG-000", _offer(1.0))],
        },
        b"not json at all",
    ],
)
async def test_an_invalid_feed_document_ends_fatal_with_a_report(mock: Mock, document: Any) -> None:
    feed_id = await _submit_feed(mock, document)
    mock.clock.advance(2.0)
    feed = await _get_feed(mock, feed_id)
    assert feed["processingStatus"] == "FATAL"
    _, report = await _report(mock, feed["resultFeedDocumentId"])
    assert report["summary"]["errors"] == 1
    assert report["issues"][0]["severity"] == "ERROR"
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")


async def test_presigned_upload_checks_signature_content_type_and_expiry(mock: Mock) -> None:
    created = await mock.http.post(
        "/feeds/2021-06-30/documents", json={"contentType": "application/json"}, headers=mock.auth
    )
    url = created.json()["url"]
    wrong_type = await mock.http.put(url, content=b"{}", headers={"Content-Type": "text/plain"})
    forged = await mock.http.put(
        url.replace("X-Amz-Signature=", "X-Amz-Signature=0"),
        content=b"{}",
        headers={"Content-Type": "application/json"},
    )
    mock.clock.advance(301)
    late = await mock.http.put(url, content=b"{}", headers={"Content-Type": "application/json"})
    assert [wrong_type.status_code, forged.status_code, late.status_code] == [403, 403, 403]
    assert b"Request has expired" in late.content


async def test_create_feed_validates_its_body(mock: Mock) -> None:
    bad = [
        {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [US]},
        {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [], "inputFeedDocumentId": "x"},
        {"feedType": "JSON_LISTINGS_FEED", "marketplaceIds": [US], "inputFeedDocumentId": "nope"},
    ]
    for body in bad:
        response = await mock.http.post("/feeds/2021-06-30/feeds", json=body, headers=mock.auth)
        assert response.status_code == 400
        assert response.json()["errors"][0]["code"] == "InvalidInput"
    missing = await mock.http.get("/feeds/2021-06-30/feeds/123", headers=mock.auth)
    assert missing.status_code == 404


# --- Product Pricing v0 ------------------------------------------------------------------------


def _pricing_request(sku: str, marketplace: str = US) -> dict[str, Any]:
    return {
        "uri": f"/products/pricing/v0/listings/{sku}/offers",
        "method": "GET",
        "MarketplaceId": marketplace,
        "ItemCondition": "New",
        "CustomerType": "Consumer",
    }


async def test_listing_offers_batch_follows_the_model(mock: Mock) -> None:
    before = list(mock.state.market.competitors["MUG-000"])
    body = {"requests": [_pricing_request("MUG-000"), _pricing_request("UNKNOWN")]}
    response = await mock.http.post(
        "/batches/products/pricing/v0/listingOffers", json=body, headers=mock.auth
    )
    answer = response.json()
    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.5"
    _assert_valid(
        openapi_validator("productPricingV0.json", "GetListingOffersBatchResponse"), answer
    )
    first, second = answer["responses"]
    assert first["status"] == {"statusCode": 200, "reasonPhrase": "OK"}
    payload = first["body"]["payload"]
    assert payload["SKU"] == "MUG-000"
    assert payload["Identifier"]["SellerSKU"] == "MUG-000"
    mine = [offer for offer in payload["Offers"] if offer["MyOffer"]]
    assert [offer["SellerId"] for offer in mine] == [SELLER]
    assert mine[0]["ListingPrice"] == {"CurrencyCode": "USD", "Amount": 20.0}
    assert isinstance(payload["Summary"]["BuyBoxPrices"][0]["LandedPrice"]["Amount"], float)
    assert sum(offer["IsBuyBoxWinner"] for offer in payload["Offers"]) == 1
    assert payload["Summary"]["TotalOfferCount"] == 4
    assert second["status"]["statusCode"] == 400
    assert second["body"]["errors"][0]["code"] == "InvalidInput"
    # Competitors reacted to the read.
    assert mock.state.market.competitors["MUG-000"] != before


async def test_item_offers_batch_by_asin(mock: Mock) -> None:
    request = _pricing_request("x") | {"uri": "/products/pricing/v0/items/B0FBA00001/offers"}
    response = await mock.http.post(
        "/batches/products/pricing/v0/itemOffers", json={"requests": [request]}, headers=mock.auth
    )
    answer = response.json()
    _assert_valid(openapi_validator("productPricingV0.json", "GetItemOffersBatchResponse"), answer)
    payload = answer["responses"][0]["body"]["payload"]
    assert payload["ASIN"] == "B0FBA00001"
    mine = next(offer for offer in payload["Offers"] if offer["MyOffer"])
    assert mine["IsFulfilledByAmazon"] is True


async def test_a_batch_of_more_than_20_is_400(mock: Mock) -> None:
    body = {"requests": [_pricing_request(f"MUG-{i:03d}") for i in range(21)]}
    response = await mock.http.post(
        "/batches/products/pricing/v0/listingOffers", json=body, headers=mock.auth
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"


async def test_our_offer_is_absent_while_out_of_stock(mock: Mock) -> None:
    mock.state.market.listings["MUG-000"].quantity = 0
    response = await mock.http.get(
        "/products/pricing/v0/listings/MUG-000/offers",
        params={"MarketplaceId": US, "ItemCondition": "New"},
        headers=mock.auth,
    )
    payload = response.json()["payload"]
    _assert_valid(openapi_validator("productPricingV0.json", "GetOffersResult"), payload)
    assert not any(offer["MyOffer"] for offer in payload["Offers"])


# --- Rate limits and faults --------------------------------------------------------------------


async def test_burst_plus_one_rapid_calls_get_one_quota_exceeded(mock: Mock) -> None:
    statuses = [(await _patch(mock, "MUG-000", _quantity(i))).status_code for i in range(6)]
    assert statuses == [200] * 5 + [429]  # patchListingsItem: burst 5
    throttled = await _patch(mock, "MUG-000", _quantity(9))
    assert throttled.status_code == 429
    assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
    assert "Retry-After" not in throttled.headers
    assert "x-amzn-RateLimit-Limit" not in throttled.headers
    mock.clock.advance(0.2)  # rate 5/s: one token back
    assert (await _patch(mock, "MUG-000", _quantity(9))).status_code == 200
    assert mock.state.throttled["patchListingsItem"] == 2
    # Buckets are per operation: reads still have their own burst.
    read = await mock.http.get(
        f"{LISTINGS}/MUG-000", params={"marketplaceIds": US}, headers=mock.auth
    )
    assert read.status_code == 200


async def test_pricing_batch_bucket_of_one(mock: Mock) -> None:
    body = {"requests": [_pricing_request("MUG-000")]}
    url = "/batches/products/pricing/v0/listingOffers"
    first = await mock.http.post(url, json=body, headers=mock.auth)
    second = await mock.http.post(url, json=body, headers=mock.auth)
    mock.clock.advance(2.0)  # 0.5/s
    third = await mock.http.post(url, json=body, headers=mock.auth)
    assert [first.status_code, second.status_code, third.status_code] == [200, 429, 200]


async def test_faults_answer_throttle_error_and_hang(mock: Mock) -> None:
    params = {"marketplaceIds": US}
    mock.state.faults = Faults(throttle_next=1, error_next=1)
    throttled = await mock.http.get(f"{LISTINGS}/MUG-000", params=params, headers=mock.auth)
    failed = await mock.http.get(f"{LISTINGS}/MUG-000", params=params, headers=mock.auth)
    assert throttled.status_code == 429
    assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
    assert failed.status_code == 500
    assert failed.json()["errors"][0]["code"] == "InternalFailure"
    mock.state.faults = Faults(timeout_rate=1.0, hang_s=45.0)
    hung = await mock.http.get(f"{LISTINGS}/MUG-000", params=params, headers=mock.auth)
    assert hung.status_code == 200
    assert mock.slept == [45.0]


async def test_drop_fault_accepts_but_does_not_apply(mock: Mock) -> None:
    mock.state.faults = Faults(drop_rate=1.0)
    body = (await _patch(mock, "MUG-000", _offer(25.0))).json()
    assert body["status"] == "ACCEPTED"
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")
    assert mock.state.dropped["MUG-000"] == 1


async def test_partial_fault_refuses_batch_items_and_feed_messages(mock: Mock) -> None:
    mock.state.faults = Faults(partial_rate=1.0)
    response = await mock.http.post(
        "/batches/products/pricing/v0/listingOffers",
        json={"requests": [_pricing_request("MUG-000"), _pricing_request("MUG-001")]},
        headers=mock.auth,
    )
    assert [r["status"]["statusCode"] for r in response.json()["responses"]] == [500, 500]
    document = {
        "header": {"sellerId": SELLER, "version": "2.0"},
        "messages": [_message(1, "MUG-000", _offer(23.0))],
    }
    feed_id = await _submit_feed(mock, document)
    mock.clock.advance(2.0)
    feed = await _get_feed(mock, feed_id)
    _, report = await _report(mock, feed["resultFeedDocumentId"])
    assert report["summary"]["messagesInvalid"] == 1
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")


# --- Notifications and control routes ----------------------------------------------------------


@pytest.fixture
async def webhook(mock: Mock) -> AsyncIterator[list[tuple[bytes, str]]]:
    """A webhook target on loopback, wired into the mock; yields (raw body, signature) pairs."""
    received: list[tuple[bytes, str]] = []

    async def receive(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers["X-Repricerd-Signature"]))
        return web.Response(status=204)

    target = web.Application()
    target.router.add_post("/hook", receive)
    runner = web.AppRunner(target)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    mock.state.webhook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield received
    await runner.cleanup()


def _verified(mock: Mock, raw: bytes, signature: str) -> dict[str, Any]:
    expected = hmac.new(mock.state.webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
    assert signature == expected
    document: dict[str, Any] = json.loads(raw)
    return document


async def test_notifications_are_schema_valid_and_signed(
    mock: Mock, webhook: list[tuple[bytes, str]]
) -> None:
    for kind in ("ANY_OFFER_CHANGED", "PRICING_HEALTH"):
        response = await mock.http.post("/_mock/notify", json={"sku": "MUG-001", "type": kind})
        assert response.status_code == 200
        assert response.json()["status"] == 204
    assert len(webhook) == 2
    offer_changed, health = (_verified(mock, raw, sig) for raw, sig in webhook)
    _assert_valid(json_schema_validator("AnyOfferChangedNotification.json"), offer_changed)
    _assert_valid(json_schema_validator("PricingHealthNotification.json"), health)
    notification = offer_changed["Payload"]["AnyOfferChangedNotification"]
    assert notification["OfferChangeTrigger"]["ASIN"] == "B000000001"
    assert SELLER in [offer["SellerId"] for offer in notification["Offers"]]
    assert health["payload"]["merchantOffer"]["listingPrice"] == {
        "amount": 21.0,
        "currencyCode": "USD",
    }
    ids = [n.notification_id for n in mock.state.notifications]
    assert len(set(ids)) == 2
    bad = await mock.http.post("/_mock/notify", json={"sku": "MUG-001", "type": "NOPE"})
    assert bad.status_code == 400


async def test_an_order_lowers_stock_and_pushes_order_change(
    mock: Mock, webhook: list[tuple[bytes, str]]
) -> None:
    order = await mock.http.post("/_mock/orders", json={"sku": "MUG-000", "quantity": 2})
    assert order.json()["quantity"] == 3
    assert order.json()["notification"]["status"] == 204
    document = _verified(mock, *webhook[0])
    _assert_valid(json_schema_validator("OrderChangeNotification.json"), document)
    items = document["Payload"]["OrderChangeNotification"]["Summary"]["OrderItems"]
    assert [(item["SellerSKU"], item["Quantity"]) for item in items] == [("MUG-000", 2)]


async def test_periodic_offer_change_notifications(
    mock: Mock, webhook: list[tuple[bytes, str]]
) -> None:
    mock.state.notify_interval_s = 60
    async with aiohttp.ClientSession() as session:
        start_at = mock.clock.monotonic()
        assert await tick(mock.state, session, start_at) == start_at  # not due yet
        mock.clock.advance(60)
        pushed_at = await tick(mock.state, session, start_at)
    assert pushed_at == mock.clock.monotonic()
    assert len(webhook) == 1
    document = _verified(mock, *webhook[0])
    assert document["NotificationType"] == "ANY_OFFER_CHANGED"


async def test_control_routes(mock: Mock) -> None:
    order = await mock.http.post("/_mock/orders", json={"sku": "MUG-000", "quantity": 2})
    assert order.json()["quantity"] == 3
    assert "notification" not in order.json()  # no webhook configured
    too_many = await mock.http.post("/_mock/orders", json={"sku": "MUG-000", "quantity": 9})
    assert too_many.status_code == 409
    assert (await mock.http.post("/_mock/faults", json={"bogus": 1})).status_code == 400
    assert (await mock.http.post("/_mock/faults", json={"error_next": 1})).status_code == 200
    failed = await mock.http.get(
        f"{LISTINGS}/MUG-000", params={"marketplaceIds": US}, headers=mock.auth
    )
    assert failed.status_code == 500
    state = (await mock.http.get("/_mock/state")).json()
    listing = next(item for item in state["listings"] if item["sku"] == "MUG-000")
    assert listing["quantity"] == 3
    assert listing["price"] == "20.00"
    assert state["calls"]["getListingsItem"] == 1
    assert (await mock.http.post("/_mock/tokens/expire")).status_code == 200
    denied = await mock.http.get(
        f"{LISTINGS}/MUG-000", params={"marketplaceIds": US}, headers=mock.auth
    )
    assert denied.status_code == 403


def test_state_seeds_from_the_demo_catalog() -> None:
    state = AmazonMockState.from_catalog(
        ROOT / "config" / "demo-catalog.csv", channel="amazon-demo"
    )
    listing = state.market.listings["MUG-001"]
    assert listing.external_id == "B013356886"
    assert listing.price == Decimal("43.13")
    assert len(state.market.competitors["MUG-001"]) == 4
    assert state.meta["MUG-001"].created is not None
