"""The mock Walmart Marketplace server speaks Walmart's wire protocol and refuses what Walmart
refuses: token, headers, money types, feeds, rate limits, pricing rule, webhooks, faults."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from jsonschema import Draft7Validator

from connectors.mock.market import MockListing, MockMarket, make_competitors
from connectors.mock.walmart import WalmartMockState, make_app, start
from connectors.mock.walmart.app import tick
from connectors.mock.walmart.events import EVENT_SCHEMAS
from connectors.mock.walmart.state import RUNTIME_KEY
from connectors.mock.walmart.wire import spec_validator
from connectors.ratelimit import RateLimit
from domain.clock import ManualClock
from domain.listings import Fulfillment

CLIENT = ("wm-client", "wm-secret")
HOOK_SECRET = "hook-secret"


def _market() -> MockMarket:
    rng = random.Random(5)
    market = MockMarket()
    for index in range(4):
        sku = f"MUG-{index:03d}"
        price = Decimal("20.00") + index
        market.listings[sku] = MockListing(sku, f"77108759{index}", price, "USD", quantity=5)
        market.competitors[sku] = make_competitors(sku, price, 3, rng)
    market.listings["WFS-001"] = MockListing(
        "WFS-001", "771999001", Decimal("30.00"), "USD", 9, Fulfillment.MARKETPLACE
    )
    market.competitors["WFS-001"] = make_competitors("WFS-001", Decimal("30.00"), 2, rng)
    return market


@dataclass
class Hook:
    """A webhook target on loopback that records what it receives."""

    url: str = ""
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give, then 200

    async def handle(self, request: web.Request) -> web.Response:
        """Record the delivery; answer the next planned status."""
        body = await request.read()
        self.received.append((request.path_qs, dict(request.headers), body))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

    async def oauth(self, request: web.Request) -> web.Response:
        """A client-credentials token endpoint for OAUTH subscriptions."""
        form = await request.post()
        assert form["grant_type"] == "client_credentials"
        assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"cid:csec").decode()
        return web.json_response({"access_token": "hook-token", "expires_in": 3600})


@dataclass
class Mock:
    """A running mock, an httpx client on it, the test's clock and fake sleep record."""

    state: WalmartMockState
    http: httpx.AsyncClient
    clock: ManualClock
    hook: Hook
    slept: list[float] = field(default_factory=list)
    token: str = ""

    def headers(self, **extra: str) -> dict[str, str]:
        """The headers every Walmart call carries."""
        return {
            "WM_SEC.ACCESS_TOKEN": self.token,
            "WM_SVC.NAME": "Walmart Marketplace",
            "WM_QOS.CORRELATION_ID": str(uuid.uuid4()),
            "Accept": "application/json",
            **extra,
        }

    async def grant(self) -> httpx.Response:
        """Obtain a token the way a connector does."""
        response = await self.http.post(
            "/v3/token",
            data={"grant_type": "client_credentials"},
            auth=CLIENT,
            headers={"WM_SVC.NAME": "Walmart Marketplace", "WM_QOS.CORRELATION_ID": "c1"},
        )
        if response.status_code == 200:
            self.token = response.json()["access_token"]
        return response

    async def put_price(self, sku: str, amount: Any) -> httpx.Response:
        """``PUT /v3/price`` with one BASE price."""
        body = {
            "sku": sku,
            "pricing": [
                {"currentPriceType": "BASE", "currentPrice": {"currency": "USD", "amount": amount}}
            ],
        }
        return await self.http.put("/v3/price", content=json.dumps(body), headers=self.json())

    def json(self) -> dict[str, str]:
        """Headers of a JSON body call."""
        return self.headers(**{"Content-Type": "application/json"})

    async def feed(self, feed_type: str, document: Any) -> httpx.Response:
        """``POST /v3/feeds`` with the JSON file in multipart part ``file``."""
        files = {"file": ("feed.json", json.dumps(document).encode(), "application/json")}
        return await self.http.post(
            "/v3/feeds", params={"feedType": feed_type}, files=files, headers=self.headers()
        )

    async def settle(self) -> None:
        """Wait for pending webhook deliveries."""
        assert (await self.http.post("/_mock/settle")).status_code == 200


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    """The webhook target."""
    target = Hook()
    app = web.Application()
    app.router.add_post("/hooks/walmart", target.handle)
    app.router.add_post("/oauth/token", target.oauth)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    target.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hooks/walmart"
    yield target
    await runner.cleanup()


@pytest.fixture
async def mock(clock: ManualClock, hook: Hook) -> AsyncIterator[Mock]:
    """A mock with rate limits on, 10 s feeds, HMAC webhooks to ``hook``, the manual clock."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    state = WalmartMockState(
        market=_market(),
        client_id=CLIENT[0],
        client_secret=CLIENT[1],
        clock=clock,
        sleep=fake_sleep,
        feed_processing_s=10,
        webhook_url=hook.url,
        webhook_secret=HOOK_SECRET,
        buy_box_on_writes=False,
        ticker_s=None,
    )
    runner, base_url = await start(state)
    async with httpx.AsyncClient(base_url=base_url) as http:
        harness = Mock(state, http, clock, hook, slept)
        assert (await harness.grant()).status_code == 200
        yield harness
    await runner.cleanup()


def _valid(validator: Any, instance: Any) -> None:
    assert [error.message for error in validator.iter_errors(instance)] == []


def _error(response: httpx.Response) -> dict[str, Any]:
    errors: list[dict[str, Any]] = response.json()["errors"]
    _valid(spec_validator("price.json", "GatewayError"), errors[0])
    return errors[0]


def _verify_hmac(path: str, headers: dict[str, str], body: bytes) -> None:
    stamp = headers["WM_SEC.TIMESTAMP"]
    message = f"POST\n{path}\n{stamp}\n{hashlib.sha256(body).hexdigest()}".encode()
    expected = hmac.new(HOOK_SECRET.encode(), message, hashlib.sha256).digest()
    assert headers["WM_SEC.SIGNATURE"] == base64.b64encode(expected).decode()


def _events(mock: Mock, kind: str) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    found = []
    for path, headers, raw in mock.hook.received:
        document = json.loads(raw)
        if document["source"]["eventType"] == kind:
            found.append((path, headers, document))
    return found


# --- token and gateway ---------------------------------------------------------------------------


async def test_token_answers_a_900_s_bearer_token(mock: Mock) -> None:
    response = await mock.grant()
    body = response.json()
    _valid(spec_validator("auth.json", "OAuthToken"), body)
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert response.headers["X-Current-Token-Count"].isdigit()
    detail = await mock.http.get("/v3/token/detail", headers=mock.headers())
    assert detail.status_code == 200
    _valid(spec_validator("auth.json", "TokenDetailResponse"), detail.json())


async def test_token_refuses_bad_client_grant_and_headers(mock: Mock) -> None:
    base = {"WM_SVC.NAME": "x", "WM_QOS.CORRELATION_ID": "y"}
    form = {"grant_type": "client_credentials"}
    wrong = await mock.http.post("/v3/token", data=form, auth=("wm-client", "nope"), headers=base)
    assert wrong.status_code == 401
    assert _error(wrong)["code"] == "UNAUTHORIZED.GMP_GATEWAY_API"
    unsigned = await mock.http.post("/v3/token", data=form, headers=base)
    assert unsigned.status_code == 401
    no_svc = await mock.http.post(
        "/v3/token", data=form, auth=CLIENT, headers={"WM_QOS.CORRELATION_ID": "y"}
    )
    assert no_svc.status_code == 400
    assert _error(no_svc)["field"] == "WM_SVC.NAME"
    grant = await mock.http.post(
        "/v3/token", data={"grant_type": "refresh_token"}, auth=CLIENT, headers=base
    )
    assert grant.status_code == 400


@pytest.mark.parametrize("missing", ["WM_SVC.NAME", "WM_QOS.CORRELATION_ID"])
async def test_missing_wm_headers_are_400(mock: Mock, missing: str) -> None:
    headers = mock.headers()
    del headers[missing]
    response = await mock.http.get("/v3/inventory", params={"sku": "MUG-000"}, headers=headers)
    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "INVALID_REQUEST_HEADER.GMP_GATEWAY_API"
    assert error["field"] == missing


async def test_bearer_instead_of_wm_sec_token_is_401(mock: Mock) -> None:
    headers = mock.headers()
    del headers["WM_SEC.ACCESS_TOKEN"]
    headers["Authorization"] = f"Bearer {mock.token}"
    response = await mock.http.get("/v3/inventory", params={"sku": "MUG-000"}, headers=headers)
    assert response.status_code == 401
    assert _error(response)["code"] == "UNAUTHORIZED.GMP_GATEWAY_API"


async def test_expired_token_is_401_until_a_new_one(mock: Mock) -> None:
    mock.clock.advance(899)
    ok = await mock.http.get("/v3/inventory", params={"sku": "MUG-000"}, headers=mock.headers())
    assert ok.status_code == 200
    mock.clock.advance(2)
    expired = await mock.http.get(
        "/v3/inventory", params={"sku": "MUG-000"}, headers=mock.headers()
    )
    assert expired.status_code == 401
    assert _error(expired)["code"] == "UNAUTHORIZED.GMP_GATEWAY_API"
    await mock.grant()
    again = await mock.http.get("/v3/inventory", params={"sku": "MUG-000"}, headers=mock.headers())
    assert again.status_code == 200


@pytest.mark.parametrize("envelope", ["errors.error", "error"])
async def test_error_envelope_is_configurable(mock: Mock, envelope: str) -> None:
    mock.state.error_envelope = envelope
    mock.token = "bogus"
    response = await mock.http.get("/v3/inventory", params={"sku": "X"}, headers=mock.headers())
    body = response.json()
    entries = body["errors"]["error"] if envelope == "errors.error" else body["error"]
    assert entries[0]["code"] == "UNAUTHORIZED.GMP_GATEWAY_API"


# --- price and inventory -------------------------------------------------------------------------


async def test_price_amount_must_be_a_json_number(mock: Mock) -> None:
    as_string = await mock.put_price("MUG-001", "24.99")
    assert as_string.status_code == 400
    assert "amount" in _error(as_string)["description"]
    assert mock.state.market.listings["MUG-001"].price == Decimal("21.00")
    ok = await mock.put_price("MUG-001", 24.99)
    assert ok.status_code == 200
    body = ok.json()
    _valid(spec_validator("price.json", "ItemPriceResponse"), body["ItemPriceResponse"])
    assert body["ItemPriceResponse"]["sku"] == "MUG-001"
    assert mock.state.market.listings["MUG-001"].price == Decimal("24.99")


@pytest.mark.parametrize("amount", [24.999, -1, 0, True])
async def test_price_refuses_bad_amounts(mock: Mock, amount: Any) -> None:
    assert (await mock.put_price("MUG-001", amount)).status_code == 400


async def test_price_for_unknown_sku_and_non_json_body(mock: Mock) -> None:
    assert (await mock.put_price("NOPE", 10)).status_code == 404
    form = await mock.http.put("/v3/price", data={"sku": "MUG-001"}, headers=mock.headers())
    assert form.status_code == 415


async def test_inventory_put_get_and_refusals(mock: Mock) -> None:
    def body(sku: str, amount: Any, unit: str = "EACH") -> str:
        return json.dumps({"sku": sku, "quantity": {"unit": unit, "amount": amount}})

    put = await mock.http.put(
        "/v3/inventory", params={"sku": "MUG-002"}, content=body("MUG-002", 12), headers=mock.json()
    )
    assert put.status_code == 200
    _valid(spec_validator("inventory.json", "Inventory"), put.json())
    got = await mock.http.get("/v3/inventory", params={"sku": "MUG-002"}, headers=mock.headers())
    assert got.json() == {"sku": "MUG-002", "quantity": {"unit": "EACH", "amount": 12}}
    for sku, content in (
        ("MUG-002", body("MUG-002", 1.5)),
        ("MUG-002", body("MUG-002", -1)),
        ("MUG-002", body("MUG-002", 3, "CASE")),
        ("MUG-002", body("MUG-003", 3)),
        ("WFS-001", body("WFS-001", 3)),
    ):
        refused = await mock.http.put(
            "/v3/inventory", params={"sku": sku}, content=content, headers=mock.json()
        )
        assert refused.status_code == 400, content
    assert mock.state.market.listings["WFS-001"].quantity == 9
    missing = await mock.http.get("/v3/inventory", params={"sku": "NOPE"}, headers=mock.headers())
    assert missing.status_code == 404
    assert _error(missing)["code"] == "CONTENT_NOT_FOUND.GMP_INVENTORY_API"
    wfs = await mock.http.get("/v3/fulfillment/inventory", headers=mock.headers())
    assert wfs.json()["payload"]["inventory"][0]["shipNodes"][0]["availToSellQty"] == 9


# --- feeds ---------------------------------------------------------------------------------------


def _price_item(sku: str, amount: Any) -> dict[str, Any]:
    price = {"currency": "USD", "amount": amount}
    return {"sku": sku, "pricing": [{"currentPriceType": "BASE", "currentPrice": price}]}


async def test_price_feed_lifecycle_with_a_data_error_item(mock: Mock) -> None:
    document = {
        "PriceHeader": {"version": "1.7"},
        "Price": [
            _price_item("MUG-000", 19.49),
            _price_item("MUG-001", "x"),
            _price_item("NOPE", 5),
        ],
    }
    submitted = await mock.feed("price", document)
    assert submitted.status_code == 200, submitted.text
    feed_id = submitted.json()["feedId"]
    assert "@" in feed_id
    path = f"/v3/feeds/{feed_id.replace('@', '%40')}"
    params = {"includeDetails": "true"}
    first = (await mock.http.get(path, params=params, headers=mock.headers())).json()
    assert first["feedStatus"] == "RECEIVED"
    assert first["itemsProcessing"] == 3
    mock.clock.advance(5)
    second = (await mock.http.get(path, params=params, headers=mock.headers())).json()
    assert second["feedStatus"] == "INPROGRESS"
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")
    mock.clock.advance(5)
    done = (await mock.http.get(path, params=params, headers=mock.headers())).json()
    _valid(spec_validator("feeds.json", "PartnerFeedResponse"), done)
    assert done["feedStatus"] == "PROCESSED"
    assert (done["itemsReceived"], done["itemsSucceeded"], done["itemsFailed"]) == (3, 1, 2)
    statuses = done["itemDetails"]["itemIngestionStatus"]
    assert [entry["ingestionStatus"] for entry in statuses] == [
        "SUCCESS",
        "DATA_ERROR",
        "DATA_ERROR",
    ]
    assert statuses[1]["ingestionErrors"]["ingestionError"][0]["type"] == "DATA_ERROR"
    assert mock.state.market.listings["MUG-000"].price == Decimal("19.49")
    listed = (await mock.http.get("/v3/feeds", headers=mock.headers())).json()
    _valid(spec_validator("feeds.json", "FeedRecordResponse"), listed)
    assert listed["results"]["feed"][0]["itemDataErrorCount"] == 2


async def test_inventory_feeds_refuse_wfs_items(mock: Mock) -> None:
    node = mock.state.ship_node
    document = {
        "inventoryHeader": {"version": "1.5"},
        "inventory": [
            {
                "sku": "MUG-003",
                "shipNodes": [{"shipNode": node, "quantity": {"unit": "EACH", "amount": 4}}],
            },
            {
                "sku": "WFS-001",
                "shipNodes": [{"shipNode": node, "quantity": {"unit": "EACH", "amount": 4}}],
            },
        ],
    }
    feed_id = (await mock.feed("MP_INVENTORY", document)).json()["feedId"]
    mock.clock.advance(10)
    done = await mock.http.get(
        f"/v3/feeds/{feed_id}", params={"includeDetails": "true"}, headers=mock.headers()
    )
    statuses = done.json()["itemDetails"]["itemIngestionStatus"]
    assert [entry["ingestionStatus"] for entry in statuses] == ["SUCCESS", "DATA_ERROR"]
    assert mock.state.market.listings["MUG-003"].quantity == 4
    assert mock.state.market.listings["WFS-001"].quantity == 9


async def test_feed_envelope_size_and_upload_form_are_checked(mock: Mock) -> None:
    bad = await mock.feed("price", {"Price": [_price_item("MUG-000", 10)]})
    assert bad.status_code == 400
    huge = {"PriceHeader": {"version": "1.7"}, "Price": [_price_item("MUG-000", 10)] * 10_001}
    assert (await mock.feed("price", huge)).status_code == 400
    raw = await mock.http.post(
        "/v3/feeds", params={"feedType": "price"}, json={"PriceHeader": {}}, headers=mock.headers()
    )
    assert raw.status_code == 415
    unknown = await mock.feed("promo", {"PriceHeader": {"version": "1.7"}, "Price": []})
    assert unknown.status_code == 400
    assert mock.state.feeds == {}


async def test_eleventh_feed_of_a_type_in_an_hour_is_429(mock: Mock) -> None:
    document = {"PriceHeader": {"version": "1.7"}, "Price": [_price_item("MUG-000", 20)]}
    counts = []
    for _ in range(10):
        response = await mock.feed("price", document)
        assert response.status_code == 200
        counts.append(int(response.headers["X-Current-Token-Count"]))
    assert counts == list(range(9, -1, -1))
    eleventh = await mock.feed("price", document)
    assert eleventh.status_code == 429
    assert _error(eleventh)["code"] == "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"
    inventory = {
        "InventoryHeader": {"version": "1.4"},
        "Inventory": [{"sku": "MUG-000", "quantity": {"unit": "EACH", "amount": 1}}],
    }
    assert (await mock.feed("inventory", inventory)).status_code == 200
    mock.clock.advance(360)  # an hourly limit of 10 gives one feed back every 6 minutes
    assert (await mock.feed("price", document)).status_code == 200
    assert mock.state.throttled["feed:price"] == 1


# --- rate limits ---------------------------------------------------------------------------------


async def test_rate_limit_headers_and_429_on_the_state_clock(mock: Mock) -> None:
    mock.state.rate_limits["getInventory"] = RateLimit(1 / 60, 2)
    params = {"sku": "MUG-000"}
    first = await mock.http.get("/v3/inventory", params=params, headers=mock.headers())
    second = await mock.http.get("/v3/inventory", params=params, headers=mock.headers())
    third = await mock.http.get("/v3/inventory", params=params, headers=mock.headers())
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert [r.headers["X-Current-Token-Count"] for r in (first, second, third)] == ["1", "0", "0"]
    now_ms = int(mock.clock.now().timestamp() * 1000)
    assert int(third.headers["X-Next-Replenishment-Time"]) == now_ms + 60_000
    assert _error(third)["code"] == "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API"
    mock.clock.advance(60)
    assert (
        await mock.http.get("/v3/inventory", params=params, headers=mock.headers())
    ).status_code == 200


# --- pricing rule, items, insights --------------------------------------------------------------


async def test_unreasonable_price_unpublishes_with_reference_price(mock: Mock) -> None:
    response = await mock.put_price("MUG-002", 80.00)  # reference 22.00, band x0.5 .. x2
    assert response.status_code == 200  # Walmart takes the price, then unpublishes the offer
    items = (
        await mock.http.get("/v3/items", params={"sku": "MUG-002"}, headers=mock.headers())
    ).json()
    item = items["ItemResponse"][0]
    assert item["publishedStatus"] == "UNPUBLISHED"
    assert item["unpublishedReasons"] == {"reason": ["REASONABLE_PRICE_NOT_SATISFIED"]}
    await mock.settle()
    [(path, headers, document)] = _events(mock, "OFFER_UNPUBLISHED")
    _valid(Draft7Validator(EVENT_SCHEMAS["OFFER_UNPUBLISHED"]), document)
    assert document["payload"]["referencePrice"] == 22.0
    assert document["payload"]["sellerOfferPrice"] == 80.0
    _verify_hmac(path, headers, mock.hook.received[0][2])
    unpublished = await mock.http.get(
        "/v3/insights/items/unpublished/items",
        params={"fromDate": "2020-01-01"},
        headers=mock.headers(),
    )
    _valid(spec_validator("insights.json", "GetUnpublishedItem"), unpublished.json())
    assert unpublished.json()["payload"][0]["unpublishReasons"] == "REASONABLE_PRICE_NOT_SATISFIED"
    assert (await mock.put_price("MUG-002", 23.00)).status_code == 200
    await mock.settle()
    assert len(_events(mock, "OFFER_PUBLISHED")) == 1
    assert mock.state.items["MUG-002"].published_status == "PUBLISHED"


async def test_items_page_with_next_cursor(mock: Mock) -> None:
    seen: list[str] = []
    params = {"limit": "2"}
    while True:
        page = await mock.http.get("/v3/items", params=params, headers=mock.headers())
        body = page.json()
        assert body["totalItems"] == 5
        for item in body["ItemResponse"]:
            assert {"sku", "wpid", "itemId", "price", "publishedStatus", "lifecycleStatus"} <= set(
                item
            )
            assert isinstance(item["price"]["amount"], float)
        seen.extend(item["sku"] for item in body["ItemResponse"])
        if "nextCursor" not in body:
            break
        params = {"limit": "2", "nextCursor": body["nextCursor"]}
    assert seen == sorted(mock.state.market.listings)
    too_many = await mock.http.get("/v3/items", params={"limit": "201"}, headers=mock.headers())
    assert too_many.status_code == 400


async def test_listing_quality_exposes_the_lowest_competitor_price(mock: Mock) -> None:
    response = await mock.http.post(
        "/v3/insights/items/listingQuality/items",
        content=json.dumps({"query": {"field": "sku", "value": "MUG-000"}}),
        headers=mock.json(),
    )
    assert response.status_code == 200
    [item] = response.json()["payload"]
    price = item["scoreDetails"]["offer"]["price"]
    cheapest = min(mock.state.market.competitors["MUG-000"], key=lambda c: c.price + c.shipping)
    assert price["competitorPrice"]["amount"] == float(cheapest.price)
    bad = await mock.http.post(
        "/v3/insights/items/listingQuality/items",
        content=json.dumps({"query": {"field": "color", "value": "x"}}),
        headers=mock.json(),
    )
    assert bad.status_code == 400


# --- webhooks ------------------------------------------------------------------------------------


async def test_buy_box_changed_is_signed_and_matches_the_payload_schema(mock: Mock) -> None:
    mock.state.buy_box_on_writes = True
    fired = await mock.http.post("/_mock/notify", json={"sku": "MUG-001"})
    assert fired.json() == {"sent": True}
    [(path, headers, document)] = _events(mock, "BUY_BOX_CHANGED")
    _valid(Draft7Validator(EVENT_SCHEMAS["BUY_BOX_CHANGED"]), document)
    _verify_hmac(path, headers, mock.hook.received[0][2])
    offer = document["payload"]["offer"]
    winner = offer["winningOffer"]
    assert offer["priceDifference"] == round(
        21.0 - winner["sellerOfferPrice"] - winner["sellerShippingPrice"], 2
    )
    assert [o["sellerOfferPrice"] + o["sellerShippingPrice"] for o in offer["offers"]] == sorted(
        o["sellerOfferPrice"] + o["sellerShippingPrice"] for o in offer["offers"]
    )


async def test_subscription_api_basic_auth_and_order_events(mock: Mock) -> None:
    mock.state.subscriptions.clear()
    invalid = await mock.http.post(
        "/v3/webhooks/subscriptions",
        content=json.dumps({"events": [{"eventType": "PO_CREATED", "eventUrl": mock.hook.url}]}),
        headers=mock.json(),
    )
    assert invalid.status_code == 400  # notifications.json requires version, resource, status
    request = {
        "events": [
            {
                "eventType": "PO_CREATED",
                "eventVersion": "V1",
                "resourceName": "ORDER",
                "eventUrl": mock.hook.url,
                "status": "ACTIVE",
                "authDetails": {
                    "authMethod": "BASIC_AUTH",
                    "userName": "u",
                    "password": "p",
                    "authHeaderName": "Authorization",
                },
                "headers": {"content-type": "application/json"},
            }
        ]
    }
    _valid(spec_validator("notifications.json", "CreateSubscriptionRequest"), request)
    created = await mock.http.post(
        "/v3/webhooks/subscriptions", content=json.dumps(request), headers=mock.json()
    )
    assert created.status_code == 200
    [record] = created.json()["events"]
    _valid(spec_validator("notifications.json", "SubscriptionResponseDTORecord"), record)
    ordered = await mock.http.post("/_mock/orders", json={"sku": "MUG-000", "quantity": 2})
    assert ordered.json()["quantity"] == 3
    [(_, headers, document)] = _events(mock, "PO_CREATED")
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    _valid(Draft7Validator(EVENT_SCHEMAS["PO_CREATED"]), document)
    # Walmart's PO_CREATED event page: orderLines is a list; the quantity is a string.
    [line] = document["payload"]["orderLines"]
    assert line["sku"] == "MUG-000"
    assert line["quantity"] == {"unitOfMeasure": "EACH", "measurementValue": "2"}
    assert line["shipNodeType"] == "SellerFulfilled"
    listed = await mock.http.get(
        "/v3/webhooks/subscriptions", params={"eventType": "PO_CREATED"}, headers=mock.headers()
    )
    assert [e["subscriptionId"] for e in listed.json()["events"]] == [record["subscriptionId"]]
    deleted = await mock.http.delete(
        f"/v3/webhooks/subscriptions/{record['subscriptionId']}", headers=mock.headers()
    )
    assert deleted.json()["message"] == "Successfully deleted subscription"
    oversell = await mock.http.post("/_mock/orders", json={"sku": "MUG-000", "quantity": 9})
    assert oversell.status_code == 409


async def test_oauth_subscription_and_test_endpoint(mock: Mock) -> None:
    base = mock.hook.url.rsplit("/hooks/", 1)[0]
    request = {
        "eventType": "OFFER_UNPUBLISHED",
        "eventVersion": "V1",
        "resourceName": "ITEM",
        "eventUrl": mock.hook.url,
        "authDetails": {
            "authMethod": "OAUTH",
            "authUrl": f"{base}/oauth/token",
            "clientId": "cid",
            "clientSecret": "csec",
            "authHeaderName": "Authorization",
        },
    }
    response = await mock.http.post(
        "/v3/webhooks/test", content=json.dumps(request), headers=mock.json()
    )
    assert response.json() == {"message": "Eventurl successfully validated"}
    assert mock.hook.received[-1][1]["Authorization"] == "Bearer hook-token"


async def test_failed_deliveries_are_retried_three_times(mock: Mock) -> None:
    mock.hook.statuses = [500, 503, 500]
    await mock.http.post("/_mock/notify", json={"sku": "MUG-003"})
    [sent] = [event for event in mock.state.events if event.event_type == "BUY_BOX_CHANGED"]
    assert (sent.attempts, sent.status) == (3, 500)
    assert mock.slept == [5.0, 5.0]
    assert len({json.loads(body)["source"]["eventId"] for _, _, body in mock.hook.received}) == 1


# --- faults --------------------------------------------------------------------------------------


async def test_faults_throttle_error_and_timeout(mock: Mock) -> None:
    params = {"sku": "MUG-000"}
    mock.state.faults.throttle_next = 1
    mock.state.faults.error_next = 1
    throttled = await mock.http.get("/v3/inventory", params=params, headers=mock.headers())
    failed = await mock.http.get("/v3/inventory", params=params, headers=mock.headers())
    assert (throttled.status_code, failed.status_code) == (429, 500)
    assert _error(failed)["code"] == "SYSTEM_ERROR.GMP_GATEWAY_API"
    await mock.http.post("/_mock/faults", json={"timeout_rate": 1.0, "hang_s": 31})
    slow = await mock.http.get("/v3/inventory", params=params, headers=mock.headers())
    assert slow.status_code == 200
    assert mock.slept == [31]
    assert (await mock.http.post("/_mock/faults", json={"nope": 1})).status_code == 400


async def test_faults_partial_feed_items_and_dropped_writes(mock: Mock) -> None:
    mock.state.faults.partial_rate = 1.0
    document = {"PriceHeader": {"version": "1.7"}, "Price": [_price_item("MUG-000", 21.5)]}
    feed_id = (await mock.feed("price", document)).json()["feedId"]
    mock.clock.advance(10)
    done = await mock.http.get(
        f"/v3/feeds/{feed_id}", params={"includeDetails": "true"}, headers=mock.headers()
    )
    [entry] = done.json()["itemDetails"]["itemIngestionStatus"]
    assert entry["ingestionStatus"] == "SYSTEM_ERROR"
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")
    mock.state.faults.partial_rate = 0.0
    mock.state.faults.drop_rate = 1.0
    assert (await mock.put_price("MUG-000", 21.75)).status_code == 200
    assert mock.state.market.listings["MUG-000"].price == Decimal("20.00")
    assert mock.state.dropped["MUG-000|price|21.75"] == 1


async def test_price_sequence_older_feed_does_not_override_newer_single_update(mock: Mock) -> None:
    document = {"PriceHeader": {"version": "1.7"}, "Price": [_price_item("MUG-000", 21.00)]}
    await mock.feed("price", document)
    mock.clock.advance(1)
    assert (await mock.put_price("MUG-000", 22.00)).status_code == 200
    mock.clock.advance(10)
    await mock.http.get("/v3/feeds", headers=mock.headers())  # feeds advance on any call
    assert mock.state.market.listings["MUG-000"].price == Decimal("22.00")


def test_from_catalog_seeds_items_stock_and_wfs(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "sku,title,currency,stock,id:walmart,price:walmart,fulfillment:walmart\n"
        "A-1,Blue mug,USD,7,771087594,24.99,\n"
        "B-1,Red mug,USD,3,WM-B1,19.49,WFS\n"
        "C-1,Not on Walmart,USD,3,,,\n",
        encoding="utf-8",
    )
    state = WalmartMockState.from_catalog(catalog, competitors=2)
    assert set(state.market.listings) == {"A-1", "B-1"}
    assert state.items["A-1"].item_id == "771087594"
    assert state.items["B-1"].item_id.isdigit()
    assert state.items["A-1"].reference_price == Decimal("24.99")
    assert state.items["A-1"].product_name == "Blue mug"
    assert state.market.listings["A-1"].quantity == 7
    assert state.market.listings["B-1"].fulfillment is Fulfillment.MARKETPLACE


async def test_multi_node_inventory_reports_each_node(mock: Mock) -> None:
    node = mock.state.ship_node
    body = {
        "inventories": {
            "nodes": [
                {"shipNode": node, "inputQty": {"unit": "EACH", "amount": 8}},
                {"shipNode": "999", "inputQty": {"unit": "EACH", "amount": 1}},
            ]
        }
    }
    put = await mock.http.put(
        "/v3/inventories/MUG-001", content=json.dumps(body), headers=mock.json()
    )
    assert put.status_code == 200
    _valid(spec_validator("inventory.json", "MultiNodeInventoryUpdateResponseDTO"), put.json())
    assert [n["status"] for n in put.json()["nodes"]] == ["Success", "Failure"]
    got = await mock.http.get("/v3/inventories/MUG-001", headers=mock.headers())
    _valid(spec_validator("inventory.json", "InventoriesDTO"), got.json())
    assert got.json()["nodes"][0]["inputQty"] == {"unit": "EACH", "amount": 8}
    wfs = await mock.http.put(
        "/v3/inventories/WFS-001", content=json.dumps(body), headers=mock.json()
    )
    assert wfs.status_code == 400


async def test_price_write_moves_competitors_and_pushes_buy_box_changed(mock: Mock) -> None:
    mock.state.buy_box_on_writes = True
    assert (await mock.put_price("MUG-003", 12.00)).status_code == 200  # reference 23.00
    await mock.settle()
    [(_, _, document)] = _events(mock, "BUY_BOX_CHANGED")
    _valid(Draft7Validator(EVENT_SCHEMAS["BUY_BOX_CHANGED"]), document)
    offer = document["payload"]["offer"]
    assert offer["currentOffer"]["sellerOfferPrice"] == 12.0
    landed = (
        offer["winningOffer"]["sellerOfferPrice"] + offer["winningOffer"]["sellerShippingPrice"]
    )
    assert landed <= 12.0


async def test_unreadable_feed_file_can_end_in_error_status(mock: Mock) -> None:
    mock.state.bad_feed_file_as_error_status = True
    submitted = await mock.feed("price", {"Prices": []})
    assert submitted.status_code == 200
    feed_id = submitted.json()["feedId"]
    mock.clock.advance(10)
    done = await mock.http.get(f"/v3/feeds/{feed_id}", headers=mock.headers())
    body = done.json()
    _valid(spec_validator("feeds.json", "PartnerFeedResponse"), body)
    assert body["feedStatus"] == "ERROR"
    assert body["itemsReceived"] == 0
    assert body["ingestionErrors"]["ingestionError"][0]["type"] == "DATA_ERROR"


async def test_ticker_moves_competitors_and_pushes_on_the_interval(
    clock: ManualClock, hook: Hook
) -> None:
    state = WalmartMockState(
        market=_market(), clock=clock, webhook_url=hook.url, notify_interval_s=30, ticker_s=None
    )
    app = make_app(state)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        start_at = clock.monotonic()
        assert await tick(app, start_at) == start_at  # not due yet
        clock.advance(30)
        assert await tick(app, start_at) == clock.monotonic()
        await app[RUNTIME_KEY].settle()
        [sent] = state.events
        assert sent.event_type == "BUY_BOX_CHANGED"
        assert sent.status == 200
        _valid(Draft7Validator(EVENT_SCHEMAS["BUY_BOX_CHANGED"]), json.loads(sent.body))
    finally:
        await runner.cleanup()
