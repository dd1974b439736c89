"""Listing discovery: getInventoryItems pages, getOffers per SKU, the domain listing."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx

from domain.clock import ManualClock
from domain.errors import TransientChannelError
from domain.listings import ChannelListing
from tests.connectors.ebay_fixtures import (
    ITEMS,
    OFFERS,
    FakeSleep,
    assert_request,
    channel,
    ebay_error,
    item,
    offer,
    token_route,
    user_headers,
)


def offers_answer(*offers: dict[str, object]) -> httpx.Response:
    return httpx.Response(
        200, json={"total": len(offers), "size": len(offers), "offers": list(offers)}
    )


async def test_listings_join_items_and_offers(clock: ManualClock, sleep: FakeSleep) -> None:
    page = {
        "total": 3,
        "size": 1,
        "limit": 100,
        "inventoryItems": [
            item("MUG-BLUE-12", 12, upc="099482432621"),
            item("MUG-RED-12", 5),
            item("DRAFT-1", 7),
        ],
    }
    async with respx.mock(assert_all_called=True) as router, httpx.AsyncClient() as http:
        token_route(router)
        items = router.get(ITEMS).mock(return_value=httpx.Response(200, json=page))
        offers = router.get(OFFERS).mock(
            side_effect=[
                offers_answer(offer("MUG-BLUE-12", "9876543210", "24.99", 14)),
                offers_answer(
                    offer(
                        "MUG-RED-12",
                        "9876543211",
                        "19.5",
                        5,
                        listing_id="110012345679",
                        listing_status="OUT_OF_STOCK",
                    ),
                ),
                offers_answer(
                    offer("DRAFT-1", "9876543212", "9.99", 0, listing_id=None, status="UNPUBLISHED")
                ),
            ]
        )
        ebay = channel(http, clock, sleep)
        listings = await ebay.fetch_listings()
    assert_request(
        items.calls[0].request, "GET", ITEMS, {"limit": "100", "offset": "0"}, user_headers()
    )
    assert [c.request.url.params["sku"] for c in offers.calls] == [
        "MUG-BLUE-12",
        "MUG-RED-12",
        "DRAFT-1",
    ]
    assert_request(
        offers.calls[0].request,
        "GET",
        OFFERS,
        {"sku": "MUG-BLUE-12", "marketplace_id": "EBAY_US"},
        user_headers(),
    )
    assert listings == [
        ChannelListing(
            sku="MUG-BLUE-12",
            external_id="9876543210",
            price=Decimal("24.99"),
            currency="USD",
            quantity=12,  # min(offer 14, ship-to-home 12): what the listing shows
            status="active",
            external_ids={"offer_id": "9876543210", "listing_id": "110012345678"},
        ),
        ChannelListing(
            sku="MUG-RED-12",
            external_id="9876543211",
            price=Decimal("19.50"),
            currency="USD",
            quantity=5,
            status="active",  # out of stock but live: still ours to restock
            external_ids={"offer_id": "9876543211", "listing_id": "110012345679"},
        ),
        ChannelListing(
            sku="DRAFT-1",
            external_id="9876543212",
            price=Decimal("9.99"),
            currency="USD",
            quantity=0,
            status="unpublished",
            external_ids={"offer_id": "9876543212"},
        ),
    ]
    assert ebay.refs["MUG-BLUE-12"].gtin == "099482432621"
    assert ebay.refs["MUG-BLUE-12"].budget_key == "110012345678"


async def test_pages_without_links_step_the_page_index_until_total(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    """No ``next`` but a full page and a larger ``total``: the next page is offset 1, the
    OAS's page index (it was a record offset, 100, before the mock showed the OAS reading)."""
    first = [item(f"S{n:03}", 1) for n in range(100)]
    second = [item(f"S{n:03}", 1) for n in range(100, 130)]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        items = router.get(ITEMS).mock(
            side_effect=[
                httpx.Response(200, json={"total": 130, "inventoryItems": first}),
                httpx.Response(200, json={"total": 130, "inventoryItems": second}),
            ]
        )
        router.get(OFFERS).mock(return_value=offers_answer())
        listings = await channel(http, clock, sleep).fetch_listings()
    assert [c.request.url.params["offset"] for c in items.calls] == ["0", "1"]
    assert len(listings) == 130
    assert all(listing.status == "unpublished" for listing in listings)


async def test_next_link_offset_is_followed(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        items = router.get(ITEMS).mock(
            side_effect=[
                httpx.Response(
                    200,
                    json={
                        "inventoryItems": [item("A", 1)],
                        "next": "https://api.ebay.com/sell/inventory/v1/inventory_item?limit=100&offset=1",
                    },
                ),
                httpx.Response(200, json={"inventoryItems": [item("B", 1)]}),
            ]
        )
        router.get(OFFERS).mock(return_value=offers_answer())
        listings = await channel(http, clock, sleep).fetch_listings()
    assert [c.request.url.params["offset"] for c in items.calls] == ["0", "1"]
    assert [listing.sku for listing in listings] == ["A", "B"]


async def test_a_page_without_next_is_the_last(clock: ManualClock, sleep: FakeSleep) -> None:
    """The OAS sends ``next`` only when more items exist: a full last page ends discovery."""
    full = [item(f"S{n:03}", 1) for n in range(100)]
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        items = router.get(ITEMS).mock(
            return_value=httpx.Response(200, json={"total": 100, "inventoryItems": full})
        )
        router.get(OFFERS).mock(return_value=offers_answer())
        listings = await channel(http, clock, sleep).fetch_listings()
    assert items.call_count == 1
    assert len(listings) == 100


async def test_a_repeated_offset_is_refused(clock: ManualClock, sleep: FakeSleep) -> None:
    looping = {
        "inventoryItems": [item("A", 1)],
        "next": "https://api.ebay.com/sell/inventory/v1/inventory_item?limit=100&offset=0",
    }
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(ITEMS).mock(return_value=httpx.Response(200, json=looping))
        with pytest.raises(TransientChannelError):
            await channel(http, clock, sleep).fetch_listings()


async def test_fixed_price_published_offer_wins(clock: ManualClock, sleep: FakeSleep) -> None:
    auction = {**offer("A", "1", "1.00", 1), "format": "AUCTION"}
    other_market = {**offer("A", "2", "5.00", 1), "marketplaceId": "EBAY_GB"}
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(ITEMS).mock(
            return_value=httpx.Response(200, json={"inventoryItems": [item("A", 3)]})
        )
        router.get(OFFERS).mock(
            return_value=offers_answer(auction, other_market, offer("A", "3", "7.00", 3))
        )
        [listing] = await channel(http, clock, sleep).fetch_listings()
    assert listing.external_id == "3"
    assert listing.price == Decimal("7.00")


async def test_a_sku_without_offer_is_unpublished(clock: ManualClock, sleep: FakeSleep) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        token_route(router)
        router.get(ITEMS).mock(
            return_value=httpx.Response(200, json={"inventoryItems": [item("NEW", 4)]})
        )
        router.get(OFFERS).mock(return_value=ebay_error(404, 25713, "This Offer is not available."))
        [listing] = await channel(http, clock, sleep).fetch_listings()
    assert (listing.status, listing.external_id, listing.quantity) == ("unpublished", None, 4)
