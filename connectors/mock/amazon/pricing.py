"""Product Pricing API v0: getListingOffers, getItemOffers and their batch forms (≤ 20 requests).

PascalCase bodies, money as ``{"CurrencyCode", "Amount"}`` with a JSON-number amount. Every
inner request of a batch has its own status; a refused item does not fail the batch.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from connectors.mock.amazon.auth import ok, sp_api
from connectors.mock.amazon.book import Book, read_book
from connectors.mock.amazon.const import INTERNAL_MESSAGE
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.amazon.wire import (
    WireError,
    invalid_input,
    json_body,
    number,
    openapi_validator,
)
from connectors.mock.kit.wire import first_error
from connectors.mock.market import MockListing

SPEC = "productPricingV0.json"
_CONDITIONS = ("New", "Used", "Collectible", "Refurbished", "Club")
_LISTING_URI = re.compile(r"^/products/pricing/v0/listings/([^/]+)/offers$")
_ITEM_URI = re.compile(r"^/products/pricing/v0/items/([^/]+)/offers$")


def money(amount: Decimal, currency: str) -> dict[str, Any]:
    """v0 ``MoneyType``."""
    return {"CurrencyCode": currency, "Amount": number(amount)}


def _summary(book: Book, condition: str) -> dict[str, Any]:
    cur = book.currency
    counts, lowest = [], []
    for fba, channel in ((True, "Amazon"), (False, "Merchant")):
        count = sum(1 for offer in book.offers if offer.fba is fba)
        cheapest = book.lowest(fba)
        if cheapest is None:
            continue
        counts.append({"condition": condition, "fulfillmentChannel": channel, "OfferCount": count})
        lowest.append(
            {
                "condition": condition,
                "fulfillmentChannel": channel,
                "LandedPrice": money(cheapest.landed, cur),
                "ListingPrice": money(cheapest.price, cur),
                "Shipping": money(cheapest.shipping, cur),
            }
        )
    summary: dict[str, Any] = {
        "TotalOfferCount": len(book.offers),
        "NumberOfOffers": counts,
        "LowestPrices": lowest,
        "BuyBoxEligibleOffers": counts,
        "ListPrice": money(book.list_price, cur),
        "CompetitivePriceThreshold": money(book.competitive_threshold, cur),
        "SalesRankings": [
            {"ProductCategoryId": "home_display_on_website", "Rank": book.sales_rank}
        ],
    }
    winner = book.winner
    if winner is not None:
        summary["BuyBoxPrices"] = [
            {
                "condition": condition,
                "LandedPrice": money(winner.landed, cur),
                "ListingPrice": money(winner.price, cur),
                "Shipping": money(winner.shipping, cur),
            }
        ]
    return summary


def _offers(book: Book, condition: str) -> list[dict[str, Any]]:
    cur = book.currency
    return [
        {
            "MyOffer": offer.mine,
            "SellerId": offer.seller_id,
            "SubCondition": condition,
            "SellerFeedbackRating": {
                "SellerPositiveFeedbackRating": float(offer.rating_pct),
                "FeedbackCount": offer.rating_count,
            },
            "ShippingTime": {
                "minimumHours": 0 if offer.fba else 24,
                "maximumHours": 0 if offer.fba else 48,
                "availabilityType": "NOW",
            },
            "ListingPrice": money(offer.price, cur),
            "Shipping": money(offer.shipping, cur),
            "ShipsFrom": {"Country": "US"},
            "IsFulfilledByAmazon": offer.fba,
            "PrimeInformation": {"IsPrime": offer.fba, "IsNationalPrime": offer.fba},
            "IsBuyBoxWinner": offer.buy_box,
            "IsFeaturedMerchant": offer.rating_pct >= 90,
        }
        for offer in book.top
    ]


def offers_result(
    state: AmazonMockState, listing: MockListing, condition: str, customer: str, by_sku: bool
) -> dict[str, Any]:
    """A ``GetOffersResult`` for one listing (the book moves on every read)."""
    book = read_book(state, listing)
    identifier: dict[str, Any] = {"MarketplaceId": state.marketplace_id, "ItemCondition": condition}
    result: dict[str, Any] = {"marketplaceId": state.marketplace_id, "ItemCondition": condition}
    if by_sku:
        identifier["SellerSKU"] = listing.sku
        result["SKU"] = listing.sku
    else:
        identifier["ASIN"] = listing.external_id
        result["ASIN"] = listing.external_id
    result.update(status="Success", Identifier=identifier)
    if condition != "New" or customer != "Consumer":
        # The simulated market holds new-condition consumer offers only.
        result.update(Summary={"TotalOfferCount": 0}, Offers=[])
        return result
    result.update(Summary=_summary(book, "new"), Offers=_offers(book, "new"))
    return result


def _lookup(
    state: AmazonMockState, key: str, by_sku: bool, marketplace: str, condition: str
) -> MockListing:
    if marketplace != state.marketplace_id:
        raise invalid_input(f"Invalid MarketplaceId: {marketplace}.")
    if condition not in _CONDITIONS:
        raise invalid_input(f"Invalid ItemCondition: {condition}.")
    listing = state.listing(key) if by_sku else state.listing_by_asin(key)
    if listing is None:
        raise invalid_input(f"Invalid {'SellerSKU' if by_sku else 'ASIN'}: {key}.")
    return listing


async def _single(request: web.Request, state: AmazonMockState, by_sku: bool) -> web.Response:
    key = request.match_info["key"]
    marketplace = request.query.get("MarketplaceId", "")
    condition = request.query.get("ItemCondition", "")
    customer = request.query.get("CustomerType", "Consumer")
    listing = _lookup(state, key, by_sku, marketplace, condition)
    payload = offers_result(state, listing, condition, customer, by_sku)
    return ok({"payload": payload}, state, "getListingOffers" if by_sku else "getItemOffers")


@sp_api("getListingOffers")
async def get_listing_offers(request: web.Request, state: AmazonMockState) -> web.Response:
    """``GET /products/pricing/v0/listings/{SellerSKU}/offers``."""
    return await _single(request, state, by_sku=True)


@sp_api("getItemOffers")
async def get_item_offers(request: web.Request, state: AmazonMockState) -> web.Response:
    """``GET /products/pricing/v0/items/{Asin}/offers``."""
    return await _single(request, state, by_sku=False)


def _inner(state: AmazonMockState, item: dict[str, Any], by_sku: bool) -> dict[str, Any]:
    pattern = _LISTING_URI if by_sku else _ITEM_URI
    match = pattern.match(item["uri"])
    key = unquote(match.group(1)) if match else ""
    request: dict[str, Any] = {
        "MarketplaceId": item["MarketplaceId"],
        "ItemCondition": item["ItemCondition"],
        "CustomerType": item.get("CustomerType", "Consumer"),
        ("SellerSKU" if by_sku else "Asin"): key,
    }
    headers = {
        "x-amzn-RequestId": str(uuid.uuid4()),
        "Date": format_datetime(state.clock.now(), usegmt=True),
    }

    def failed(status: int, reason: str, code: str, message: str) -> dict[str, Any]:
        return {
            "status": {"statusCode": status, "reasonPhrase": reason},
            "headers": headers,
            "body": {"errors": [{"code": code, "message": message}]},
            "request": request,
        }

    if match is None or item["method"] != "GET":
        return failed(400, "Bad Request", "InvalidInput", f"Invalid uri or method: {item['uri']}")
    if state.faults.item_refused():
        return failed(500, "Internal Server Error", "InternalFailure", INTERNAL_MESSAGE)
    try:
        listing = _lookup(state, key, by_sku, item["MarketplaceId"], item["ItemCondition"])
    except WireError as exc:
        return failed(400, "Bad Request", exc.code, exc.details)
    payload = offers_result(state, listing, item["ItemCondition"], request["CustomerType"], by_sku)
    return {
        "status": {"statusCode": 200, "reasonPhrase": "OK"},
        "headers": headers,
        "body": {"payload": payload},
        "request": request,
    }


async def _batch(request: web.Request, state: AmazonMockState, by_sku: bool) -> web.Response:
    definition = "GetListingOffersBatchRequest" if by_sku else "GetItemOffersBatchRequest"
    body = await json_body(request)
    problem = first_error(openapi_validator(SPEC, definition), body)
    if problem is None and "requests" not in body:
        problem = "requests: is a required property"
    if problem is not None:
        raise WireError(400, "InvalidInput", "Invalid Input", problem)
    responses = [_inner(state, item, by_sku) for item in body["requests"]]
    operation = "getListingOffersBatch" if by_sku else "getItemOffersBatch"
    return ok({"responses": responses}, state, operation)


@sp_api("getListingOffersBatch")
async def get_listing_offers_batch(request: web.Request, state: AmazonMockState) -> web.Response:
    """``POST /batches/products/pricing/v0/listingOffers`` (1..20 requests)."""
    return await _batch(request, state, by_sku=True)


@sp_api("getItemOffersBatch")
async def get_item_offers_batch(request: web.Request, state: AmazonMockState) -> web.Response:
    """``POST /batches/products/pricing/v0/itemOffers`` (1..20 requests)."""
    return await _batch(request, state, by_sku=False)


def add_routes(app: web.Application) -> None:
    """Register the Product Pricing v0 routes."""
    app.router.add_get("/products/pricing/v0/listings/{key}/offers", get_listing_offers)
    app.router.add_get("/products/pricing/v0/items/{key}/offers", get_item_offers)
    app.router.add_post("/batches/products/pricing/v0/listingOffers", get_listing_offers_batch)
    app.router.add_post("/batches/products/pricing/v0/itemOffers", get_item_offers_batch)
