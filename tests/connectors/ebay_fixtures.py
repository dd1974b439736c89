"""Shared pieces of the eBay connector tests: settings, a fake sleep, exact respx routes."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import respx

from connectors.ebay import EbayChannel, EbaySettings
from connectors.retry import RetryPolicy
from domain.clock import ManualClock
from tests.connectors.fakes import FakeSleep as FakeSleep
from tests.connectors.fakes import channel_deps

API = "https://api.ebay.com"
TOKEN_URL = "https://api.ebay.com/identity/v1/oauth2/token"
BULK = f"{API}/sell/inventory/v1/bulk_update_price_quantity"
ITEMS = f"{API}/sell/inventory/v1/inventory_item"
OFFERS = f"{API}/sell/inventory/v1/offer"
SEARCH = f"{API}/buy/browse/v1/item_summary/search"
KEYS = f"{API}/commerce/notification/v1/public_key"
CLIENT_ID = "Repricer-repricer-PRD-1a2b3c4d5-6e7f8a9b"
CLIENT_SECRET = "PRD-0123456789ab-cdef-0123-4567-89ab"
REFRESH = "v^1.1#i^1#r^1#p^3#I^3#f^0#t^Ul4xMF8refresh-secret"
USER_TOKEN = "v^1.1#i^1#p^3#I^3#f^0#r^0#t^H4sIAAAAuser"
APP_TOKEN = "v^1.1#i^1#p^1#I^3#f^0#r^0#t^H4sIAAAAapp"
VERIFICATION = "repricerd_verification_token_0123456789abcdef"
ENDPOINT = "https://hooks.example.com/webhooks/ebay-us"
INVENTORY_SCOPE = "https://api.ebay.com/oauth/api_scope/sell.inventory"
PUBLIC_SCOPE = "https://api.ebay.com/oauth/api_scope"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def bulk_ok(request: httpx.Request) -> httpx.Response:
    """eBay accepting every request of a bulk call."""
    entries = [
        {"statusCode": 200, "offerId": r["offers"][0]["offerId"]} for r in body(request)["requests"]
    ]
    return httpx.Response(200, json={"responses": entries})


def settings(**overrides: Any) -> EbaySettings:
    """An EBAY_US seller account with test credentials."""
    data: dict[str, Any] = {
        "kind": "ebay",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH,
        "own_seller_id": "our_store",
        "verification_token": VERIFICATION,
        "webhook_endpoint_url": ENDPOINT,
    }
    data.update(overrides)
    return EbaySettings.model_validate(data)


def channel(
    http: httpx.AsyncClient, clock: ManualClock, sleep: FakeSleep, **overrides: Any
) -> EbayChannel:
    """An EbayChannel over ``http`` with a fast-failing retry policy."""
    deps = channel_deps(http, clock, sleep)
    return EbayChannel("ebay-us", settings(**overrides), deps, RetryPolicy(attempts=3))


def token_route(
    router: respx.MockRouter,
    *tokens: str,
    expires_in: int = 7200,
    grant: str = "refresh_token",
    scope: str = INVENTORY_SCOPE,
) -> respx.Route:
    """The token endpoint answering each grant of ``grant`` with the next of ``tokens``."""
    user = grant == "refresh_token"
    kind = "User Access Token" if user else "Application Access Token"
    form = (
        {"grant_type": grant, "refresh_token": REFRESH, "scope": scope}
        if user
        else {"grant_type": grant, "scope": PUBLIC_SCOPE}
    )
    return router.post(
        TOKEN_URL,
        data__eq=form,
        headers__contains={
            "Authorization": BASIC,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    ).mock(
        side_effect=[
            httpx.Response(
                200, json={"access_token": t, "expires_in": expires_in, "token_type": kind}
            )
            for t in (tokens or (USER_TOKEN if grant == "refresh_token" else APP_TOKEN,))
        ]
    )


def user_headers(token: str = USER_TOKEN, *, body: bool = False) -> dict[str, str]:
    """The headers every Sell API call carries."""
    headers = {
        "authorization": f"Bearer {token}",
        "accept": "application/json",
        "accept-language": "en-US",
        "x-ebay-c-marketplace-id": "EBAY_US",
    }
    if body:
        headers |= {"content-type": "application/json", "content-language": "en-US"}
    return headers


def assert_request(
    request: httpx.Request,
    method: str,
    url: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """The request went to exactly ``url`` with exactly ``params`` and carries ``headers``."""
    assert request.method == method
    split = urlsplit(str(request.url))
    assert f"{split.scheme}://{split.netloc}{split.path}" == url
    query = {key: values[0] for key, values in parse_qs(split.query).items()}
    assert query == (params or {})
    for name, value in (headers or {}).items():
        assert request.headers.get(name) == value, name


def body(request: httpx.Request) -> Any:
    """The JSON body a request carried."""
    return json.loads(request.content)


def ebay_error(
    status: int, error_id: int, message: str, category: str = "REQUEST"
) -> httpx.Response:
    """An eBay REST error response."""
    return httpx.Response(
        status,
        json={
            "errors": [
                {
                    "errorId": error_id,
                    "domain": "API_INVENTORY",
                    "category": category,
                    "message": message,
                }
            ]
        },
    )


def offer(
    sku: str,
    offer_id: str,
    price: str,
    quantity: int,
    *,
    listing_id: str | None = "110012345678",
    listing_status: str = "ACTIVE",
    status: str = "PUBLISHED",
) -> dict[str, Any]:
    """An ``EbayOfferDetailsWithAll`` as getOffers returns it."""
    data: dict[str, Any] = {
        "offerId": offer_id,
        "sku": sku,
        "marketplaceId": "EBAY_US",
        "format": "FIXED_PRICE",
        "availableQuantity": quantity,
        "pricingSummary": {"price": {"value": price, "currency": "USD"}},
        "status": status,
    }
    if listing_id is not None:
        data["listing"] = {
            "listingId": listing_id,
            "listingStatus": listing_status,
            "soldQuantity": 4,
        }
    return data


def item(
    sku: str, quantity: int, *, upc: str | None = None, title: str = "Blue mug"
) -> dict[str, Any]:
    """An ``InventoryItemWithSkuLocaleGroupid``."""
    product: dict[str, Any] = {"title": title}
    if upc:
        product["upc"] = [upc]
    return {
        "sku": sku,
        "locale": "en_US",
        "condition": "NEW",
        "availability": {"shipToLocationAvailability": {"quantity": quantity}},
        "product": product,
    }
