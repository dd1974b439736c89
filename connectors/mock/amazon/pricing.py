"""Product Pricing API v0 over the offer book of an ASIN: the competitors (who react to our price
on every read), our offer, and reference prices derived from them (no external price feed)."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import unquote

from connectors.mock.amazon.listings import statuses
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.amazon.wire import INTERNAL_MESSAGE, Call, WireError, invalid_input, sp_api
from connectors.mock.market import CENT, MockListing, react
from domain.listings import Fulfillment

MAX_OFFERS = 20  # Amazon returns (and notifies) the top 20 offers by landed price
AMAZON_RETAIL_SELLER_ID = "ATVPDKIKX0DER"  # Amazon's own retail offer: the US marketplace id
_PRICE_KEYS = ("LandedPrice", "ListingPrice", "Shipping")
_URI = re.compile(r"^/products/pricing/v0/(listings|items)/([^/]+)/offers$")


@dataclass(frozen=True)
class BookOffer:
    """One live offer on the ASIN."""

    seller_id: str
    price: Decimal
    shipping: Decimal
    fba: bool
    rating_pct: int
    rating_count: int
    mine: bool = False
    buy_box: bool = False

    @property
    def landed(self) -> Decimal:
        """Listing price plus shipping (no points outside JP)."""
        return self.price + self.shipping


@dataclass(frozen=True)
class Book:
    """All live offers, best landed price first (the first wins the Buy Box), reference prices."""

    currency: str
    offers: list[BookOffer]
    list_price: Decimal
    competitive_threshold: Decimal
    sales_rank: int

    @property
    def buy_box(self) -> list[BookOffer]:
        """The Buy Box winner, if any offer wins it."""
        return [offer for offer in self.offers if offer.buy_box]

    def money(self, amount: Decimal, lower: bool = False) -> dict[str, Any]:
        """``{"Amount", "CurrencyCode"}`` (``lower``: ``{"amount", "currencyCode"}``)."""
        keys = ("amount", "currencyCode") if lower else ("Amount", "CurrencyCode")
        return dict(zip(keys, (float(amount.quantize(CENT)), self.currency), strict=True))

    def prices(self, price: Decimal, shipping: Decimal, lower: bool = False) -> dict[str, Any]:
        """Landed price, listing price and shipping (``lower``: lowerCamel keys)."""
        keys = ("landedPrice", "listingPrice", "shipping") if lower else _PRICE_KEYS
        amounts = (price + shipping, price, shipping)
        return {key: self.money(amount, lower) for key, amount in zip(keys, amounts, strict=True)}

    def summary(self, pascal: bool) -> dict[str, Any]:
        """NumberOfOffers, LowestPrices and BuyBoxPrices (``pascal``: notification casing)."""
        condition, channel = (
            ("Condition", "FulfillmentChannel") if pascal else ("condition", "fulfillmentChannel")
        )
        counts, lowest = [], []
        for fba, name in ((True, "Amazon"), (False, "Merchant")):
            cheapest = next((offer for offer in self.offers if offer.fba is fba), None)
            if cheapest is not None:
                where = {condition: "new", channel: name}
                counts.append(where | {"OfferCount": sum(o.fba is fba for o in self.offers)})
                lowest.append(where | self.prices(cheapest.price, cheapest.shipping))
        winners = [{condition: "new"} | self.prices(o.price, o.shipping) for o in self.buy_box]
        return {"NumberOfOffers": counts, "LowestPrices": lowest, "BuyBoxPrices": winners}

    def offer(self, offer: BookOffer) -> dict[str, Any]:
        """What the Pricing API and ANY_OFFER_CHANGED say alike of an offer."""
        return {
            "SellerId": offer.seller_id,
            "SubCondition": "new",
            "ListingPrice": self.money(offer.price),
            "Shipping": self.money(offer.shipping),
            "IsFulfilledByAmazon": offer.fba,
            "IsBuyBoxWinner": offer.buy_box,
            "IsFeaturedMerchant": offer.rating_pct >= 90,
        }


def read_book(state: AmazonMockState, listing: MockListing) -> Book:
    """The current book of ``listing``'s ASIN, after the competitors reacted to our price."""
    competitors = state.market.competitors.get(listing.sku, [])
    if competitors:
        competitors = react(competitors, listing.price, state.rng)
        state.market.competitors[listing.sku] = competitors
    offers = [
        BookOffer(
            seller_id=AMAZON_RETAIL_SELLER_ID if offer.fulfillment == "retail" else offer.seller_id,
            price=offer.price,
            shipping=offer.shipping,
            fba=offer.fulfillment in ("fba", "retail"),
            rating_pct=offer.rating_pct or 0,
            rating_count=offer.rating_count or 0,
        )
        for offer in competitors
    ]
    if "BUYABLE" in statuses(state, listing):  # our offer shows only while buyable
        mine = BookOffer(
            seller_id=state.seller_id,
            price=listing.price,
            shipping=Decimal("0"),
            fba=listing.fulfillment is Fulfillment.MARKETPLACE,
            rating_pct=state.own_rating_pct,
            rating_count=state.own_rating_count,
            mine=True,
        )
        offers.append(mine)
    # Cheapest landed price first; at equal price FBA (Prime) wins, then the better-rated seller.
    offers.sort(key=lambda o: (o.landed, not o.fba, -o.rating_pct, o.seller_id))
    offers[:1] = [replace(offer, buy_box=True) for offer in offers[:1]]
    highest = max((offer.landed for offer in offers), default=listing.price)
    threshold = min((offer.landed for offer in offers if not offer.mine), default=listing.price)
    digest = hashlib.sha256(listing.external_id.encode()).digest()
    return Book(
        currency=listing.currency,
        offers=offers,
        list_price=(highest * Decimal("1.25")).quantize(CENT),
        competitive_threshold=threshold.quantize(CENT),
        sales_rank=1 + int.from_bytes(digest[:3], "big") % 200_000,
    )


def offers_result(
    state: AmazonMockState, key: str, by_sku: bool, request: dict[str, Any]
) -> dict[str, Any]:
    """A ``GetOffersResult`` for one listing (the book moves on every read)."""
    marketplace, condition = request["MarketplaceId"], request["ItemCondition"]
    if marketplace != state.marketplace_id:
        raise invalid_input(f"Invalid MarketplaceId: {marketplace}.")
    listing = state.listing(key) if by_sku else state.listing_by_asin(key)
    if listing is None:
        raise invalid_input(f"Invalid {'SellerSKU' if by_sku else 'ASIN'}: {key}.")
    book = read_book(state, listing)
    kind, value = ("SKU", listing.sku) if by_sku else ("ASIN", listing.external_id)
    result: dict[str, Any] = {"marketplaceId": marketplace, "ItemCondition": condition, kind: value}
    identifier = {"MarketplaceId": marketplace, "ItemCondition": condition}
    identifier["SellerSKU" if by_sku else "ASIN"] = value
    result.update(status="Success", Identifier=identifier)
    if condition != "New" or request.get("CustomerType", "Consumer") != "Consumer":
        # The simulated market holds new-condition consumer offers only.
        return result | {"Summary": {"TotalOfferCount": 0}, "Offers": []}
    money = book.money
    summary = book.summary(pascal=False) | {
        "TotalOfferCount": len(book.offers),
        "ListPrice": money(book.list_price),
        "CompetitivePriceThreshold": money(book.competitive_threshold),
        "SalesRankings": [
            {"ProductCategoryId": "home_display_on_website", "Rank": book.sales_rank}
        ],
    }
    summary["BuyBoxEligibleOffers"] = summary["NumberOfOffers"]
    offers = [
        book.offer(offer)
        | {
            "MyOffer": offer.mine,
            "SellerFeedbackRating": {
                "SellerPositiveFeedbackRating": float(offer.rating_pct),
                "FeedbackCount": offer.rating_count,
            },
            "ShippingTime": {
                "minimumHours": 0 if offer.fba else 24,
                "maximumHours": 0 if offer.fba else 48,
                "availabilityType": "NOW",
            },
            "ShipsFrom": {"Country": "US"},
            "PrimeInformation": {"IsPrime": offer.fba, "IsNationalPrime": offer.fba},
        }
        for offer in book.offers[:MAX_OFFERS]
    ]
    return result | {"Summary": summary, "Offers": offers}


@sp_api("getItemOffers")
@sp_api("getListingOffers")
def get_offers(call: Call) -> Any:
    """``GET /products/pricing/v0/listings/{SellerSKU}/offers`` and ``.../items/{Asin}/offers``."""
    by_sku = "SellerSKU" in call.request.match_info
    key = call.path("SellerSKU" if by_sku else "Asin")
    return {"payload": offers_result(call.state, key, by_sku, call.query)}


def _inner(state: AmazonMockState, item: dict[str, Any], by_sku: bool) -> dict[str, Any]:
    """One response of a batch: its own status, headers, body and the request it answers."""
    match = _URI.match(item["uri"])
    key = unquote(match.group(2)) if match else ""
    request = {
        "MarketplaceId": item["MarketplaceId"],
        "ItemCondition": item["ItemCondition"],
        "CustomerType": item.get("CustomerType", "Consumer"),
        ("SellerSKU" if by_sku else "Asin"): key,
    }
    status, reason = 200, "OK"
    try:
        if match is None or (match.group(1) == "listings") != by_sku or item["method"] != "GET":
            raise invalid_input(f"Invalid uri or method: {item['uri']}")
        if state.faults.item_refused():
            raise WireError(500, "InternalFailure", INTERNAL_MESSAGE, INTERNAL_MESSAGE)
        body: dict[str, Any] = {"payload": offers_result(state, key, by_sku, request)}
    except WireError as exc:
        status, reason = exc.status, "Bad Request" if exc.status == 400 else "Internal Server Error"
        body = {"errors": [{"code": exc.code, "message": exc.details}]}
    date = format_datetime(state.clock.now(), usegmt=True)
    return {
        "status": {"statusCode": status, "reasonPhrase": reason},
        "headers": {"x-amzn-RequestId": str(uuid.uuid4()), "Date": date},
        "body": body,
        "request": request,
    }


@sp_api("getItemOffersBatch")
@sp_api("getListingOffersBatch")
def get_offers_batch(call: Call) -> Any:
    """``POST /batches/products/pricing/v0/listingOffers`` and ``.../itemOffers`` (1..20)."""
    if "requests" not in call.body:
        raise invalid_input("requests: is a required property")
    by_sku = call.request.path.endswith("/listingOffers")
    return {"responses": [_inner(call.state, item, by_sku) for item in call.body["requests"]]}
