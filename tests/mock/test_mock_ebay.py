"""The mock eBay server speaks eBay's wire protocol and refuses what eBay refuses."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.mock.ebay import EbayMockState, start
from connectors.mock.ebay.const import (
    API_SCOPE,
    BROWSE_API,
    INVENTORY_API,
    INVENTORY_READONLY_SCOPE,
    INVENTORY_SCOPE,
)
from connectors.mock.ebay.fulfillment import run_buyers
from connectors.mock.ebay.gateway import inventory_validator
from connectors.mock.ebay.state import EbayItem
from connectors.mock.market import MockListing, MockMarket, make_competitors
from connectors.ratelimit import RateLimit
from domain.clock import ManualClock

BULK = "/sell/inventory/v1/bulk_update_price_quantity"
OFFER = "/sell/inventory/v1/offer"
ITEMS = "/sell/inventory/v1/inventory_item"
SEARCH = "/buy/browse/v1/item_summary/search"
TOKEN = "/identity/v1/oauth2/token"
KEY = "/commerce/notification/v1/public_key"


def _state(clock: ManualClock, sleep: Any, count: int = 30) -> EbayMockState:
    rng = random.Random(3)
    market = MockMarket()
    items = {}
    for index in range(count):
        sku = f"MUG-{index:03d}"
        price = Decimal("20.00") + index
        market.listings[sku] = MockListing(sku, f"{90000000000 + index}", price, "USD", 10)
        market.competitors[sku] = make_competitors(sku, price, 3, rng)
        items[sku] = EbayItem(sku, f"Ceramic mug #{index}", 10, gtin=f"0994824326{index:02d}")
    return EbayMockState(market=market, items=items, clock=clock, sleep=sleep, rng=rng)


@dataclass
class Mock:
    """A running mock, an httpx client on it, its clock and what its fake sleep was asked."""

    state: EbayMockState
    http: httpx.AsyncClient
    clock: ManualClock
    slept: list[float] = field(default_factory=list)
    user: str = ""
    app: str = ""

    @property
    def basic(self) -> httpx.BasicAuth:
        """The application's client credentials."""
        return httpx.BasicAuth(self.state.client_id, self.state.client_secret.get_secret_value())

    async def grant(self, **form: str) -> httpx.Response:
        """POST the token endpoint with Basic client auth."""
        return await self.http.post(TOKEN, data=form, auth=self.basic)

    async def user_token(self, scope: str | None = None) -> str:
        """A user access token by refresh_token grant."""
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.state.refresh_token.get_secret_value(),
        }
        if scope is not None:
            form["scope"] = scope
        response = await self.grant(**form)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def app_token(self) -> str:
        """An application access token by client_credentials grant."""
        response = await self.grant(grant_type="client_credentials", scope=API_SCOPE)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def bearer(self, token: str | None = None) -> dict[str, str]:
        """``Authorization: Bearer`` (the user token by default)."""
        return {
            "Authorization": f"Bearer {token or self.user}",
            "X-EBAY-C-MARKETPLACE-ID": "EBAY_US",
        }

    async def bulk(
        self, requests: list[dict[str, Any]], token: str | None = None
    ) -> httpx.Response:
        """bulkUpdatePriceQuantity with the user token."""
        return await self.http.post(BULK, json={"requests": requests}, headers=self.bearer(token))

    async def search(self, **params: Any) -> httpx.Response:
        """Browse search with the application token."""
        return await self.http.get(SEARCH, params=params, headers=self.bearer(self.app))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))


@pytest.fixture
async def mock(clock: ManualClock) -> AsyncIterator[Mock]:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    state = _state(clock, fake_sleep)
    runner, base_url = await start(state)
    async with httpx.AsyncClient(base_url=base_url) as http:
        harness = Mock(state, http, clock, slept)
        harness.user = await harness.user_token()
        harness.app = await harness.app_token()
        yield harness
    await runner.cleanup()


def offer_id(mock: Mock, sku: str) -> str:
    return mock.state.offers_of(sku)[0].offer_id


def price_update(mock: Mock, sku: str, value: Any, quantity: int | None = None) -> dict[str, Any]:
    offer: dict[str, Any] = {
        "offerId": offer_id(mock, sku),
        "price": {"value": value, "currency": "USD"},
    }
    if quantity is not None:
        offer["availableQuantity"] = quantity
    return {"sku": sku, "offers": [offer]}


def assert_valid(schema: str, instance: Any) -> None:
    assert [e.message for e in inventory_validator(schema).iter_errors(instance)] == []


# --- OAuth -----------------------------------------------------------------------------------


async def test_user_and_application_tokens_have_ebays_shape(mock: Mock) -> None:
    user = await mock.grant(
        grant_type="refresh_token",
        refresh_token=mock.state.refresh_token.get_secret_value(),
        scope=INVENTORY_SCOPE,
    )
    app = await mock.grant(grant_type="client_credentials", scope=API_SCOPE)
    assert user.status_code == app.status_code == 200
    assert user.json()["token_type"] == "User Access Token"
    assert app.json()["token_type"] == "Application Access Token"
    assert user.json()["expires_in"] == app.json()["expires_in"] == 7200
    assert "refresh_token" not in user.json()  # a refresh grant issues no new refresh token
    assert user.json()["access_token"].startswith("v^1.1#")


@pytest.mark.parametrize(
    ("form", "status", "code"),
    [
        ({"grant_type": "refresh_token", "refresh_token": "v^1.1#stolen"}, 400, "invalid_grant"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": INVENTORY_SCOPE}, 400, "invalid_scope"),
        ({"grant_type": "client_credentials"}, 400, "invalid_scope"),
        (
            {"grant_type": "authorization_code", "code": "x", "redirect_uri": "ru"},
            400,
            "invalid_grant",
        ),
        ({}, 400, "invalid_request"),
    ],
)
async def test_bad_grants_get_oauth_errors(
    mock: Mock, form: dict[str, str], status: int, code: str
) -> None:
    response = await mock.grant(**form)
    assert response.status_code == status
    assert response.json()["error"] == code
    assert response.json()["error_description"]


async def test_refresh_cannot_widen_the_consented_scopes(mock: Mock) -> None:
    mock.state.refresh_scopes = frozenset({INVENTORY_SCOPE})
    response = await mock.grant(
        grant_type="refresh_token",
        refresh_token=mock.state.refresh_token.get_secret_value(),
        scope=f"{INVENTORY_SCOPE} https://api.ebay.com/oauth/api_scope/sell.account",
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")


async def test_client_authentication_is_basic_auth(mock: Mock) -> None:
    form = {"grant_type": "client_credentials", "scope": API_SCOPE}
    wrong = await mock.http.post(TOKEN, data=form, auth=(mock.state.client_id, "nope"))
    missing = await mock.http.post(TOKEN, data=form)
    in_form = await mock.http.post(
        TOKEN,
        data={
            **form,
            "client_id": mock.state.client_id,
            "client_secret": mock.state.client_secret.get_secret_value(),
        },
    )
    for response in (wrong, missing, in_form):
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_client",
            "error_description": "client authentication failed",
        }
    as_json = await mock.http.post(TOKEN, json=form, auth=mock.basic)
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")


async def test_missing_unknown_and_expired_tokens_are_401(mock: Mock) -> None:
    params = {"sku": "MUG-001"}
    missing = await mock.http.get(OFFER, params=params)
    unknown = await mock.http.get(OFFER, params=params, headers=mock.bearer("v^1.1#forged"))
    mock.clock.advance(7200)
    expired = await mock.http.get(OFFER, params=params, headers=mock.bearer())
    assert missing.status_code == unknown.status_code == expired.status_code == 401
    assert missing.json()["errors"][0]["errorId"] == 1002
    for response in (unknown, expired):
        error = response.json()["errors"][0]
        assert (error["errorId"], error["domain"], error["message"]) == (
            1001,
            "OAuth",
            "Invalid access token",
        )
    mock.user = await mock.user_token()
    assert (await mock.http.get(OFFER, params=params, headers=mock.bearer())).status_code == 200


async def test_token_types_and_scopes_are_enforced(mock: Mock) -> None:
    app_on_inventory = await mock.bulk([price_update(mock, "MUG-001", "9.99")], token=mock.app)
    user_on_browse = await mock.http.get(SEARCH, params={"q": "mug"}, headers=mock.bearer())
    user_on_key = await mock.http.get(f"{KEY}/{mock.state.public_key_id}", headers=mock.bearer())
    readonly = await mock.user_token(INVENTORY_READONLY_SCOPE)
    readonly_write = await mock.bulk([price_update(mock, "MUG-001", "9.99")], token=readonly)
    for response in (app_on_inventory, user_on_browse, user_on_key, readonly_write):
        assert response.status_code == 403
        error = response.json()["errors"][0]
        assert (error["errorId"], error["message"]) == (1100, "Access denied")
    readonly_read = await mock.http.get(
        OFFER, params={"sku": "MUG-001"}, headers=mock.bearer(readonly)
    )
    assert readonly_read.status_code == 200
    assert mock.state.listing("MUG-001").price == Decimal("21.00")


# --- bulkUpdatePriceQuantity -----------------------------------------------------------------


async def test_bulk_of_25_is_200_and_26_is_refused_whole(mock: Mock) -> None:
    skus = [f"MUG-{i:03d}" for i in range(26)]
    ok = await mock.bulk([price_update(mock, sku, "15.50", 4) for sku in skus[:25]])
    assert ok.status_code == 200
    body = ok.json()
    assert_valid("BulkPriceQuantityResponse", body)
    assert [r["statusCode"] for r in body["responses"]] == [200] * 25
    assert body["responses"][0] == {
        "statusCode": 200,
        "sku": "MUG-000",
        "offerId": offer_id(mock, "MUG-000"),
    }
    assert mock.state.listing("MUG-024").price == Decimal("15.50")
    assert mock.state.listing("MUG-024").quantity == 4
    too_many = await mock.bulk([price_update(mock, sku, "1.00") for sku in skus])
    assert too_many.status_code == 400
    error = too_many.json()["errors"][0]
    assert (error["errorId"], error["domain"], error["category"]) == (
        25727,
        "API_INVENTORY",
        "REQUEST",
    )
    assert mock.state.listing("MUG-000").price == Decimal("15.50")  # nothing of it applied


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (24.99, "requests[0].offers[0].price.value"),
        (25, "requests[0].offers[0].price.value"),
    ],
)
async def test_price_value_must_be_a_string(mock: Mock, value: Any, field: str) -> None:
    response = await mock.bulk([price_update(mock, "MUG-001", value)])
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["errorId"] == 25709
    assert field in error["message"]
    assert {"name": "fieldName", "value": field} in error["parameters"]
    assert mock.state.listing("MUG-001").price == Decimal("21.00")
    fine = await mock.bulk([price_update(mock, "MUG-001", "24.99")])
    assert fine.status_code == 200
    assert mock.state.listing("MUG-001").price == Decimal("24.99")


@pytest.mark.parametrize("quantity", ["3", 3.0, True])
async def test_quantities_must_be_json_integers(mock: Mock, quantity: Any) -> None:
    entry = {"sku": "MUG-001", "shipToLocationAvailability": {"quantity": quantity}}
    response = await mock.bulk([entry])
    assert response.status_code == 400
    assert response.json()["errors"][0]["errorId"] == 25709


@pytest.mark.parametrize("value", ["12.345", "1e2", "-3.00", "0", "0.00", "abc", " 9.99", ""])
async def test_price_strings_must_be_plain_positive_amounts(mock: Mock, value: str) -> None:
    response = await mock.bulk([price_update(mock, "MUG-004", value)])
    assert response.status_code == 207
    assert response.json()["responses"][0]["errors"][0]["errorId"] == 25003
    assert mock.state.listing("MUG-004").price == Decimal("24.00")


async def test_mixed_results_are_207_and_only_good_items_apply(mock: Mock) -> None:
    good = price_update(mock, "MUG-002", "30.00", 7)
    unknown_offer = {"sku": "MUG-003", "offers": [{"offerId": "123", "availableQuantity": 1}]}
    bad_price = price_update(mock, "MUG-004", "12.345")
    euro = {
        "sku": "MUG-005",
        "offers": [
            {"offerId": offer_id(mock, "MUG-005"), "price": {"value": "9.99", "currency": "EUR"}}
        ],
    }
    unknown_sku = {"sku": "NOPE", "shipToLocationAvailability": {"quantity": 3}}
    negative = {
        "sku": "MUG-006",
        "offers": [{"offerId": offer_id(mock, "MUG-006"), "availableQuantity": -1}],
    }
    response = await mock.bulk([good, unknown_offer, bad_price, euro, unknown_sku, negative])
    assert response.status_code == 207
    body = response.json()
    assert_valid("BulkPriceQuantityResponse", body)
    lines = body["responses"]
    assert [r["statusCode"] for r in lines] == [200, 400, 400, 400, 400, 400]
    assert [r.get("errors", [{}])[0].get("errorId") for r in lines] == [
        None,
        25713,
        25003,
        25003,
        25702,
        25004,
    ]
    assert lines[4] == {**lines[4], "sku": "NOPE"}
    assert "offerId" not in lines[4]
    assert mock.state.listing("MUG-002").price == Decimal("30.00")
    assert mock.state.listing("MUG-002").quantity == 7
    assert mock.state.listing("MUG-004").price == Decimal("24.00")
    assert mock.state.applied == {"MUG-002": 1}


async def test_listing_quantity_is_the_smaller_of_offer_and_ship_to_home(mock: Mock) -> None:
    only_item = await mock.bulk([{"sku": "MUG-007", "shipToLocationAvailability": {"quantity": 3}}])
    assert only_item.json()["responses"] == [{"statusCode": 200, "sku": "MUG-007"}]
    assert mock.state.listing("MUG-007").quantity == 3  # offer still says 10
    both = {
        "sku": "MUG-007",
        "shipToLocationAvailability": {"quantity": 12},
        "offers": [{"offerId": offer_id(mock, "MUG-007"), "availableQuantity": 12}],
    }
    assert (await mock.bulk([both])).status_code == 200
    assert mock.state.listing("MUG-007").quantity == 12


async def test_zero_quantity_depends_on_out_of_stock_control(mock: Mock) -> None:
    zero = {
        "sku": "MUG-008",
        "offers": [{"offerId": offer_id(mock, "MUG-008"), "availableQuantity": 0}],
    }
    assert (await mock.bulk([zero])).status_code == 200
    assert mock.state.listing("MUG-008").quantity == 0
    mock.state.out_of_stock_control = False
    refused = await mock.bulk([zero])
    assert refused.json()["responses"][0]["errors"][0]["errorId"] == 25004


async def test_revision_251_is_refused_until_the_next_pacific_day(mock: Mock) -> None:
    sku = "MUG-010"
    listing_id = mock.state.offers_of(sku)[0].listing_id
    for round_ in range(10):  # 10 calls × 25 entries on one listing = 250 revisions
        mock.clock.advance(1)
        entries = [price_update(mock, sku, f"{30 + round_}.{i:02d}") for i in range(25)]
        response = await mock.bulk(entries)
        assert response.status_code == 200, response.text
    assert mock.state.revisions_today(listing_id) == 250
    assert mock.state.listing(sku).price == Decimal("39.24")
    refused = await mock.bulk([price_update(mock, sku, "11.11", 2)])
    assert refused.status_code == 207
    line = refused.json()["responses"][0]
    assert line["statusCode"] == 400
    assert line["errors"][0]["errorId"] == 25019
    assert line["errors"][0]["message"].startswith("Cannot revise listing.")
    assert mock.state.listing(sku).price == Decimal("39.24")  # nothing applied
    assert mock.state.listing(sku).quantity == 10
    ship_only = await mock.bulk([{"sku": sku, "shipToLocationAvailability": {"quantity": 1}}])
    assert ship_only.json()["responses"][0]["errors"][0]["errorId"] == 25019
    assert mock.state.items[sku].ship_to_quantity == 10
    other = await mock.bulk([price_update(mock, "MUG-011", "11.11")])
    assert other.status_code == 200  # the cap is per listing
    state = (await mock.http.get("/_mock/state")).json()
    row = next(r for r in state["listings"] if r["sku"] == sku)
    assert row["revisionsToday"] == 250
    mock.clock.advance(12 * 3600)  # 2026-03-11 00:00:01 UTC: 17:00 PDT, still the same day
    mock.user = await mock.user_token()  # the old token lived 2 h
    still = await mock.bulk([price_update(mock, sku, "11.11", 2)])
    assert still.json()["responses"][0]["errors"][0]["errorId"] == 25019
    mock.clock.advance(7 * 3600)  # 07:00:01 UTC: past midnight PDT, a new calendar day
    mock.user = await mock.user_token()
    again = await mock.bulk([price_update(mock, sku, "11.11", 2)])
    assert again.status_code == 200
    assert mock.state.listing(sku).price == Decimal("11.11")
    assert mock.state.revisions_today(listing_id) == 1


async def test_an_entry_with_price_and_quantity_is_one_revision(mock: Mock) -> None:
    sku = "MUG-012"
    listing_id = mock.state.offers_of(sku)[0].listing_id
    before = mock.state.revisions_today(listing_id)
    entry = price_update(mock, sku, "12.34")
    entry["sku"] = sku
    entry["shipToLocationAvailability"] = {"quantity": 4}
    entry["offers"][0]["availableQuantity"] = 4
    response = await mock.bulk([entry])
    assert response.status_code == 200, response.text
    assert mock.state.listing(sku).price == Decimal("12.34")
    assert mock.state.listing(sku).quantity == 4
    assert mock.state.revisions_today(listing_id) == before + 1


# --- reads -----------------------------------------------------------------------------------


async def test_inventory_items_page_by_page_index(mock: Mock) -> None:
    first = await mock.http.get(ITEMS, params={"limit": "12"}, headers=mock.bearer())
    body = first.json()
    assert_valid("InventoryItems", body)
    assert (body["total"], body["size"], body["limit"]) == (30, 3, 12)
    assert [i["sku"] for i in body["inventoryItems"]][:2] == ["MUG-000", "MUG-001"]
    assert body["inventoryItems"][0]["availability"]["shipToLocationAvailability"] == {
        "quantity": 10
    }
    assert body["next"].endswith("/sell/inventory/v1/inventory_item?offset=1&limit=12")
    seen = []
    url: str | None = body["href"]
    while url:
        page = (await mock.http.get(url, headers=mock.bearer())).json()
        seen += [i["sku"] for i in page["inventoryItems"]]
        url = page.get("next")
    assert seen == sorted(mock.state.items)
    for bad in ({"limit": "0"}, {"limit": "101"}, {"offset": "-1"}, {"limit": "x"}):
        refused = await mock.http.get(ITEMS, params=bad, headers=mock.bearer())
        assert (refused.status_code, refused.json()["errors"][0]["errorId"]) == (400, 25706)


async def test_get_offers_by_sku(mock: Mock) -> None:
    response = await mock.http.get(
        OFFER, params={"sku": "MUG-001", "marketplace_id": "EBAY_US"}, headers=mock.bearer()
    )
    body = response.json()
    assert_valid("Offers", body)
    offer = body["offers"][0]
    assert (body["total"], body["size"]) == (1, 1)
    assert offer["offerId"] == "90000000001"
    assert offer["pricingSummary"]["price"] == {"value": "21.00", "currency": "USD"}
    assert offer["availableQuantity"] == 10
    assert offer["status"] == "PUBLISHED"
    assert offer["listing"]["listingId"] == mock.state.offers_of("MUG-001")[0].listing_id
    assert len(offer["listing"]["listingId"]) == 12
    unknown = await mock.http.get(OFFER, params={"sku": "NOPE"}, headers=mock.bearer())
    missing = await mock.http.get(OFFER, headers=mock.bearer())
    other_site = await mock.http.get(
        OFFER, params={"sku": "MUG-001", "marketplace_id": "EBAY_DE"}, headers=mock.bearer()
    )
    assert (unknown.status_code, unknown.json()["errors"][0]["errorId"]) == (400, 25702)
    assert (missing.status_code, missing.json()["errors"][0]["errorId"]) == (400, 25709)
    assert (other_site.status_code, other_site.json()["errors"][0]["errorId"]) == (404, 25725)


# --- quotas and rate limits ------------------------------------------------------------------


async def test_daily_quota_429_resets_at_pacific_midnight(mock: Mock) -> None:
    mock.state.daily_quotas[BROWSE_API] = 3
    statuses = [(await mock.search(q="mug")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = await mock.search(q="mug")
    assert refused.json()["errors"][0] == {
        "errorId": 2001,
        "domain": "ACCESS",
        "category": "REQUEST",
        "message": "Too many requests",
        "longMessage": "The request limit has been reached for the resource.",
    }
    state = (await mock.http.get("/_mock/state")).json()
    assert state["throttled"][BROWSE_API] == 2
    assert state["quotaUsedToday"][BROWSE_API] == 3
    assert state["calls"][BROWSE_API] == 5
    assert state["throttledTotal"] == 2
    assert (await mock.bulk([price_update(mock, "MUG-001", "9.99")])).status_code == 200
    mock.clock.advance(11 * 3600)  # 23:00 UTC = 16:00 PDT: still the same quota day
    mock.app = await mock.app_token()
    assert (await mock.search(q="mug")).status_code == 429
    mock.clock.advance(8 * 3600 + 60)  # 07:01 UTC = 00:01 PDT: a new quota day
    mock.app = await mock.app_token()
    assert (await mock.search(q="mug")).status_code == 200


async def test_short_term_rate_limit_refills_on_the_clock(mock: Mock) -> None:
    mock.state.rate_limits[INVENTORY_API] = RateLimit(1, 2)
    mock.state._buckets.clear()
    params = {"sku": "MUG-001"}
    statuses = [
        (await mock.http.get(OFFER, params=params, headers=mock.bearer())).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    mock.clock.advance(1)
    assert (await mock.http.get(OFFER, params=params, headers=mock.bearer())).status_code == 200
    assert mock.state.throttled[INVENTORY_API] == 1


# --- Browse ----------------------------------------------------------------------------------


async def test_browse_lists_competitors_and_our_listing(mock: Mock) -> None:
    response = await mock.search(q="ceramic mug #12")
    body = response.json()
    assert response.status_code == 200
    summaries = body["itemSummaries"]
    assert body["total"] == len(summaries) == 4  # 3 competitors + us
    ours = [s for s in summaries if s["seller"]["username"] == "repricerd_demo"]
    assert len(ours) == 1
    listing_id = mock.state.offers_of("MUG-012")[0].listing_id
    assert ours[0]["itemId"] == f"v1|{listing_id}|0"
    assert ours[0]["price"] == {"value": "32.00", "currency": "USD"}
    for summary in summaries:
        assert isinstance(summary["price"]["value"], str)
        assert isinstance(summary["seller"]["feedbackPercentage"], str)
        assert isinstance(summary["seller"]["feedbackScore"], int)
        assert summary["shippingOptions"][0]["shippingCost"]["currency"] == "USD"
        assert summary["buyingOptions"] == ["FIXED_PRICE"]
        assert summary["condition"] == "New"
    by_gtin = (await mock.search(gtin="099482432612")).json()
    assert {s["title"] for s in by_gtin["itemSummaries"]} == {"Ceramic mug #12"}


def _theirs(rows: list[dict[str, Any]]) -> dict[str, str]:
    return {
        s["itemId"]: s["price"]["value"]
        for s in rows
        if s["seller"]["username"] != "repricerd_demo"
    }


async def test_competitors_react_to_our_price(mock: Mock) -> None:
    first = (await mock.search(q="ceramic mug #5")).json()["itemSummaries"]
    await mock.bulk([price_update(mock, "MUG-005", "5.00")])
    second = (await mock.search(q="ceramic mug #5")).json()["itemSummaries"]
    assert _theirs(first).keys() == _theirs(second).keys()
    assert _theirs(first) != _theirs(second)
    ours = [s["price"]["value"] for s in second if s["seller"]["username"] == "repricerd_demo"]
    assert ours == ["5.00"]


async def test_browse_filters_sort_and_pages(mock: Mock) -> None:
    all_mugs = (await mock.search(q="mug", limit=200)).json()
    assert all_mugs["total"] == 120
    cheap = (
        await mock.search(q="mug", filter="price:[..22],priceCurrency:USD", sort="price")
    ).json()
    totals = [
        Decimal(s["price"]["value"]) + Decimal(s["shippingOptions"][0]["shippingCost"]["value"])
        for s in cheap["itemSummaries"]
    ]
    assert totals == sorted(totals)
    assert all(Decimal(s["price"]["value"]) <= 22 for s in cheap["itemSummaries"])
    page = (await mock.search(q="mug", limit=50, offset=50)).json()
    assert (page["limit"], page["offset"], len(page["itemSummaries"])) == (50, 50, 50)
    assert "offset=100" in page["next"]
    assert "offset=0" in page["prev"]
    for params in (
        {"q": "mug", "offset": 7, "limit": 5},
        {"q": "mug", "limit": 201},
        {"q": "mug", "filter": "price:[1..2]"},
    ):
        assert (await mock.search(**params)).status_code == 400
    no_query = await mock.http.get(SEARCH, headers=mock.bearer(mock.app))
    assert (no_query.status_code, no_query.json()["errors"][0]["errorId"]) == (400, 12001)
    nothing = (await mock.search(q="teapot")).json()
    assert nothing["total"] == 0
    assert "itemSummaries" not in nothing


# --- notifications ---------------------------------------------------------------------------


@dataclass
class Receiver:
    """A tiny aiohttp notification endpoint that records what eBay sends."""

    token: str
    url: str = ""
    posts: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    challenges: list[str] = field(default_factory=list)

    async def handle_get(self, request: web.Request) -> web.Response:
        code = request.query["challenge_code"]
        self.challenges.append(code)
        digest = hashlib.sha256((code + self.token + self.url).encode()).hexdigest()
        return web.json_response({"challengeResponse": digest})

    async def handle_post(self, request: web.Request) -> web.Response:
        self.posts.append((await request.read(), dict(request.headers)))
        return web.Response(status=204)


@pytest.fixture
async def receiver(mock: Mock) -> AsyncIterator[Receiver]:
    hook = Receiver(mock.state.verification_token.get_secret_value())
    app = web.Application()
    app.router.add_get("/webhooks/ebay", hook.handle_get)
    app.router.add_post("/webhooks/ebay", hook.handle_post)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook.url = f"http://127.0.0.1:{runner.addresses[0][1]}/webhooks/ebay"
    mock.state.notify_url = hook.url
    yield hook
    await runner.cleanup()


def _pem(key: str) -> bytes:
    # eBay serves the PEM on one line; put the line breaks back as eBay's SDK does.
    body = key.removeprefix("-----BEGIN PUBLIC KEY-----").removesuffix("-----END PUBLIC KEY-----")
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n".encode()


async def test_order_notification_is_signed_with_the_served_key(
    mock: Mock, receiver: Receiver
) -> None:
    placed = await mock.http.post("/_mock/orders", json={"sku": "MUG-003", "quantity": 2})
    assert placed.status_code == 200
    assert placed.json()["notification"]["status"] == 204
    assert placed.json()["quantity"] == 8
    [(raw, headers)] = receiver.posts
    body = json.loads(raw)
    assert body["metadata"] == {
        "topic": "ORDER_CONFIRMATION",
        "schemaVersion": "1.0",
        "deprecated": False,
    }
    note = body["notification"]
    assert set(note) == {
        "notificationId",
        "eventDate",
        "publishDate",
        "publishAttemptCount",
        "data",
    }
    # eBay's contract: the notification identifies the order; its lines come from getOrder.
    assert note["data"] == {"orderId": placed.json()["orderId"]}
    envelope = json.loads(base64.b64decode(headers["X-EBAY-SIGNATURE"]))
    assert (envelope["alg"], envelope["digest"]) == ("ecdsa", "SHA1")
    served = await mock.http.get(f"{KEY}/{envelope['kid']}", headers=mock.bearer(mock.app))
    assert served.status_code == 200
    key_body = served.json()
    assert (key_body["algorithm"], key_body["digest"]) == ("ECDSA", "SHA1")
    public = serialization.load_pem_public_key(_pem(key_body["key"]))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    signature = base64.b64decode(envelope["signature"])
    public.verify(signature, raw, ec.ECDSA(hashes.SHA1()))  # noqa: S303
    # eBay's SDK verifies over the compact re-serialisation: the same bytes.
    assert json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode() == raw
    tampered = raw.replace(b'"publishAttemptCount":1', b'"publishAttemptCount":2')
    with pytest.raises(InvalidSignature):
        public.verify(signature, tampered, ec.ECDSA(hashes.SHA1()))  # noqa: S303
    offers = (await mock.http.get(OFFER, params={"sku": "MUG-003"}, headers=mock.bearer())).json()
    assert offers["offers"][0]["availableQuantity"] == 8
    assert offers["offers"][0]["listing"]["soldQuantity"] == 2
    unknown = await mock.http.get(f"{KEY}/not-a-kid", headers=mock.bearer(mock.app))
    assert unknown.status_code == 404
    oversell = await mock.http.post("/_mock/orders", json={"sku": "MUG-003", "quantity": 9})
    assert oversell.status_code == 409


async def test_redelivery_keeps_the_notification_id(mock: Mock, receiver: Receiver) -> None:
    placed = (await mock.http.post("/_mock/orders", json={"sku": "MUG-004"})).json()
    notification_id = placed["notification"]["notificationId"]
    again = await mock.http.post("/_mock/redeliver", json={"notificationId": notification_id})
    assert again.json()["status"] == 204
    first, second = (json.loads(raw)["notification"] for raw, _ in receiver.posts)
    assert first["notificationId"] == second["notificationId"]
    assert (first["publishAttemptCount"], second["publishAttemptCount"]) == (1, 2)


async def test_challenge_handshake_passes_and_fails(mock: Mock, receiver: Receiver) -> None:
    passed = (await mock.http.post("/_mock/challenge", json={})).json()
    assert passed["passed"] is True
    assert receiver.challenges == [passed["challengeCode"]]
    receiver.token = "someone-elses-verification-token-0123456789"
    failed = (await mock.http.post("/_mock/challenge", json={"endpoint": receiver.url})).json()
    assert (failed["passed"], failed["reason"]) == (False, "challengeResponse mismatch")


# --- faults ----------------------------------------------------------------------------------


async def test_fault_storms_errors_and_timeouts(mock: Mock) -> None:
    set_faults = await mock.http.post("/_mock/faults", json={"throttle_next": 2, "error_next": 1})
    assert set_faults.status_code == 200
    statuses = [(await mock.search(q="mug")).status_code for _ in range(4)]
    assert statuses == [429, 429, 500, 200]
    mock.state.faults.error_next = 1
    failed = await mock.bulk([price_update(mock, "MUG-001", "9.99")])
    assert (failed.status_code, failed.json()["errors"][0]["errorId"]) == (500, 25001)
    mock.state.faults.timeout_rate = 1.0
    mock.state.faults.hang_s = 42
    assert (await mock.search(q="mug")).status_code == 200
    assert mock.slept == [42]
    bad = await mock.http.post("/_mock/faults", json={"no_such_fault": 1})
    assert bad.status_code == 400


async def test_partial_failures_and_dropped_writes(mock: Mock) -> None:
    mock.state.faults.partial_rate = 1.0
    partial = await mock.bulk([price_update(mock, "MUG-001", "9.99")])
    assert partial.status_code == 207
    line = partial.json()["responses"][0]
    assert (line["statusCode"], line["errors"][0]["errorId"]) == (500, 25025)
    assert mock.state.listing("MUG-001").price == Decimal("21.00")
    mock.state.faults.partial_rate = 0.0
    mock.state.faults.drop_rate = 1.0
    dropped = await mock.bulk([price_update(mock, "MUG-001", "9.99")])
    assert dropped.status_code == 200
    assert mock.state.listing("MUG-001").price == Decimal("21.00")
    assert mock.state.dropped["MUG-001"] == 1
    assert mock.state.revisions_today(mock.state.offers_of("MUG-001")[0].listing_id) == 0


def test_from_catalog_seeds_offers_items_and_titles(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "sku,title,currency,stock,gtin,id:ebay-demo,price:ebay-demo\n"
        "MUG-001,Ceramic mug #1,USD,7,099482432621,9876543210,24.99\n"
        "MUG-002,Ceramic mug #2,USD,3,,not-a-number,12.50\n"
        "MUG-003,Ceramic mug #3,USD,5,,,9.00\n",
        encoding="utf-8",
    )
    state = EbayMockState.from_catalog(catalog, competitors=2)
    assert sorted(state.items) == ["MUG-001", "MUG-002"]  # no id:ebay-demo, no listing
    first, second = state.offers_of("MUG-001")[0], state.offers_of("MUG-002")[0]
    assert first.offer_id == "9876543210"
    assert second.offer_id.isdigit()
    assert len(second.offer_id) == 11
    assert (first.available_quantity, state.items["MUG-001"].ship_to_quantity) == (7, 7)
    assert state.listing("MUG-001") == MockListing(
        "MUG-001", "9876543210", Decimal("24.99"), "USD", 7
    )
    assert state.items["MUG-001"].title == "Ceramic mug #1"
    assert state.items["MUG-001"].gtin == "099482432621"
    assert len(state.market.competitors["MUG-002"]) == 2


class _Stop(Exception):
    pass


async def test_background_buyers_sell_and_notify(mock: Mock, receiver: Receiver) -> None:
    waits: list[float] = []

    async def two_sales(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 2:
            raise _Stop

    mock.state.order_interval_s = 30.0
    mock.state.sleep = two_sales
    async with aiohttp.ClientSession() as session:
        with pytest.raises(_Stop):
            await run_buyers(mock.state, session)
    assert waits == [30.0, 30.0, 30.0]
    assert len(receiver.posts) == 2
    sold = sum(o.sold_quantity for o in mock.state.offers.values())
    assert sold == 2
    ids = [json.loads(raw)["notification"]["data"]["orderId"] for raw, _ in receiver.posts]
    skus = [mock.state.sold[i].document["lineItems"][0]["sku"] for i in ids]
    for sku in skus:
        assert mock.state.listing(sku).quantity < 10
