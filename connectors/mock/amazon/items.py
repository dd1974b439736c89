"""Render a listing as the Listings Items API 2021-08-01 ``Item`` (mixed casing, string money)."""

from __future__ import annotations

from typing import Any

from connectors.mock.amazon.const import ISSUE_ABOVE_MAXIMUM, ISSUE_BELOW_MINIMUM
from connectors.mock.amazon.patching import fulfillment_code, implied, issue, scheduled
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.amazon.wire import cents
from connectors.mock.kit.wire import iso
from connectors.mock.market import MockListing
from domain.listings import Fulfillment

INCLUDED_DATA = frozenset(
    {
        "summaries",
        "attributes",
        "issues",
        "offers",
        "fulfillmentAvailability",
        "procurement",
        "relationships",
        "productTypes",
    }
)


def listing_issues(state: AmazonMockState, listing: MockListing) -> list[dict[str, Any]]:
    """Standing issues of a listing (a price outside the seller's own min/max suppresses it)."""
    meta = state.meta_of(listing.sku)
    found = []
    if meta.min_price is not None and listing.price < meta.min_price:
        found.append(
            issue(
                ISSUE_BELOW_MINIMUM,
                "The 'minimum price' is greater than the selling price (excluding shipping).",
                "purchasable_offer",
                "INVALID_PRICE",
                suppressed=True,
            )
        )
    if meta.max_price is not None and listing.price > meta.max_price:
        found.append(
            issue(
                ISSUE_ABOVE_MAXIMUM,
                "The 'maximum price' is lower than the selling price (excluding shipping).",
                "purchasable_offer",
                "INVALID_PRICE",
                suppressed=True,
            )
        )
    for entry in found:
        entry["marketplaceIds"] = [state.marketplace_id]
    return found


def statuses(state: AmazonMockState, listing: MockListing) -> list[str]:
    """``BUYABLE`` needs a live offer, stock and no suppression; ``DISCOVERABLE`` always."""
    meta = state.meta_of(listing.sku)
    buyable = not meta.offer_deleted and listing.quantity > 0
    buyable = buyable and not listing_issues(state, listing)
    return ["BUYABLE", "DISCOVERABLE"] if buyable else ["DISCOVERABLE"]


def attributes(state: AmazonMockState, listing: MockListing) -> dict[str, Any]:
    """Snake_case attributes: what was written, or what the seed implies."""
    meta = state.meta_of(listing.sku)
    out: dict[str, Any] = {key: value for key, value in meta.attributes.items()}
    if "purchasable_offer" not in out and not meta.offer_deleted:
        out["purchasable_offer"] = implied(state, listing, "purchasable_offer")
    elif "purchasable_offer" in out:
        # The stored value carries the last written price; the live one may have moved since.
        for entry in out["purchasable_offer"]:
            if entry.get("audience", "ALL") == "ALL" and "our_price" in entry:
                entry["our_price"] = scheduled(listing.price)
    out["fulfillment_availability"] = implied(state, listing, "fulfillment_availability")
    return out


def render_item(
    state: AmazonMockState, listing: MockListing, included: frozenset[str] | set[str]
) -> dict[str, Any]:
    """One ``Item`` with the requested ``includedData`` sections."""
    meta = state.meta_of(listing.sku)
    item: dict[str, Any] = {"sku": listing.sku}
    if "summaries" in included:
        summary: dict[str, Any] = {
            "marketplaceId": state.marketplace_id,
            "asin": listing.external_id,
            "productType": meta.product_type,
            "conditionType": "new_new",
            "status": statuses(state, listing),
            "itemName": meta.item_name or listing.sku,
            "createdDate": iso(meta.created or state.clock.now()),
            "lastUpdatedDate": iso(meta.updated or state.clock.now()),
        }
        if listing.fulfillment is Fulfillment.MARKETPLACE:
            summary["fnSku"] = "X00" + listing.external_id[-7:]
        item["summaries"] = [summary]
    if "attributes" in included:
        item["attributes"] = attributes(state, listing)
    if "issues" in included:
        item["issues"] = listing_issues(state, listing)
    if "offers" in included:
        item["offers"] = (
            []
            if meta.offer_deleted
            else [
                {
                    "marketplaceId": state.marketplace_id,
                    "offerType": "B2C",
                    "price": {"currencyCode": listing.currency, "amount": cents(listing.price)},
                    "audience": {"value": "ALL", "displayName": "Sell on Amazon"},
                }
            ]
        )
    if "fulfillmentAvailability" in included:
        item["fulfillmentAvailability"] = [
            {"fulfillmentChannelCode": fulfillment_code(listing), "quantity": listing.quantity}
        ]
    if "productTypes" in included:
        item["productTypes"] = [
            {"marketplaceId": state.marketplace_id, "productType": meta.product_type}
        ]
    if "relationships" in included:
        item["relationships"] = [{"marketplaceId": state.marketplace_id, "relationships": []}]
    if "procurement" in included:
        item["procurement"] = []
    return item
