"""Listings Items API 2021-08-01 (get, search, patch), the ``Item`` view, and patch semantics.

Patches (and feed messages) change top-level attributes; the two a repricer writes are checked
against stand-ins of the product-type rules and against the listing (seller min/max price, no
quantity on FBA). A submission with an ERROR issue is INVALID and changes nothing.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from typing import Any

from jsonschema import Draft7Validator

from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.amazon.wire import (
    ISSUE_ABOVE_MAXIMUM,
    ISSUE_BELOW_MINIMUM,
    ISSUE_INVALID_ATTRIBUTES,
    ISSUE_INVALID_VALUE,
    Call,
    WireError,
    cents,
    from_page_token,
    invalid_input,
    operations,
    page_token,
    sp_api,
    time_param,
)
from connectors.mock.kit.wire import iso
from connectors.mock.market import CENT, MockListing
from domain.listings import Fulfillment

INCLUDED_DATA = frozenset(operations()["getListingsItem"].params["includedData"]["items"]["enum"])
MAX_SEARCH_RESULTS = 1000  # searchListingsItems pages through at most 1000 SKUs
_DATE_FILTERS = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
_PATH = re.compile(r"^/attributes/([a-z][a-z0-9_]*)$")
_PRICES = ("our_price", "minimum_seller_allowed_price", "maximum_seller_allowed_price")
_LABELS = {"purchasable_offer": "Offer", "fulfillment_availability": "Fulfillment Availability"}
_SUPPRESSED = {"actions": [{"action": "LISTING_SUPPRESSED"}], "exemption": {"status": "NOT_EXEMPT"}}


def _entries(required: str, **properties: Any) -> dict[str, Any]:
    """An attribute value's schema: a non-empty array of objects with ``properties`` only."""
    item = {"type": "object", "required": [required], "additionalProperties": False}
    return {"type": "array", "minItems": 1, "items": item | {"properties": properties}}


_STR, _COUNT = {"type": "string"}, {"type": "integer", "minimum": 0}
_MONEY = {"type": "number", "exclusiveMinimum": 0}
_SCHEDULED = _entries(
    "schedule",
    schedule=_entries("value_with_tax", value_with_tax=_MONEY, start_at=_STR, end_at=_STR),
)
# Stand-ins for the product-type definition rules of the two attributes a repricer writes.
ATTRIBUTE_SCHEMAS: dict[str, dict[str, Any]] = {
    "purchasable_offer": _entries(
        "currency",
        marketplace_id=_STR,
        currency={"type": "string", "pattern": "^[A-Z]{3}$"},
        audience={"type": "string", "enum": ["ALL", "B2B"]},
        start_at={"type": "object"},
        end_at={"type": "object"},
        quantity_discount_plan={"type": "array"},
        **dict.fromkeys((*_PRICES, "discounted_price", "map_price"), _SCHEDULED),
    ),
    "fulfillment_availability": _entries(
        "fulfillment_channel_code",
        fulfillment_channel_code={"type": "string", "minLength": 1},
        quantity=_COUNT,
        lead_time_to_ship_max_days=_COUNT,
        restock_date=_STR,
        is_inventory_available={"type": "boolean"},
        marketplace_id=_STR,
    ),
}


@cache
def _attribute_validator(name: str) -> Draft7Validator:
    return Draft7Validator(ATTRIBUTE_SCHEMAS[name])


def issue(
    code: str, message: str, attribute: str | None, category: str = "INVALID_ATTRIBUTE"
) -> dict[str, Any]:
    """An ERROR ``Issue`` as the Listings API reports it."""
    body: dict[str, Any] = {"code": code, "message": message, "severity": "ERROR"}
    return (
        body | ({"attributeNames": [attribute]} if attribute else {}) | {"categories": [category]}
    )


def bound_issues(price: Decimal, low: Decimal | None, high: Decimal | None) -> list[dict[str, Any]]:
    """The suppressing issues of a price below the seller's minimum or above their maximum."""
    return [
        issue(
            code,
            f"The '{bound} price' is {than} than the selling price (excluding shipping) for the"
            f" listing. Review and update your price and/or {bound} price.",
            "purchasable_offer",
            "INVALID_PRICE",
        )
        | {"enforcements": _SUPPRESSED}
        for code, bound, than, broken in (
            (ISSUE_BELOW_MINIMUM, "minimum", "greater", low is not None and low > price),
            (ISSUE_ABOVE_MAXIMUM, "maximum", "lower", high is not None and high < price),
        )
        if broken
    ]


def scheduled(amount: Decimal) -> list[dict[str, Any]]:
    """``[{"schedule": [{"value_with_tax": <number>}]}]``."""
    return [{"schedule": [{"value_with_tax": float(amount)}]}]


def _value(entry: dict[str, Any], name: str) -> Decimal | None:
    first = entry[name][0]["schedule"][0]["value_with_tax"] if entry.get(name) else None
    return None if first is None else Decimal(str(first)).quantize(CENT)


def fulfillment_code(listing: MockListing) -> str:
    """The ``fulfillmentChannelCode`` Amazon reports for a listing (FBA or the merchant's)."""
    return "AMAZON_NA" if listing.fulfillment is Fulfillment.MARKETPLACE else "DEFAULT"


def implied(state: AmazonMockState, listing: MockListing, name: str) -> list[dict[str, Any]]:
    """The value a never-written attribute has on Amazon (the seeded offer and stock)."""
    meta = state.meta_of(listing.sku)
    if name == "fulfillment_availability":
        return [
            {"fulfillment_channel_code": fulfillment_code(listing), "quantity": listing.quantity}
        ]
    if name != "purchasable_offer" or meta.offer_deleted:
        return []
    offer = {
        "marketplace_id": state.marketplace_id,
        "currency": listing.currency,
        "audience": "ALL",
    }
    prices = zip(_PRICES, (listing.price, meta.min_price, meta.max_price), strict=True)
    return [offer | {key: scheduled(value) for key, value in prices if value is not None}]


def _check(
    state: AmazonMockState, listing: MockListing, name: str, value: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One written attribute's issues, and our offer (marketplace, ``ALL`` audience) if any."""
    errors = list(_attribute_validator(name).iter_errors(value))
    if errors:
        message = f"The provided value for '{_LABELS[name]}' is invalid: {errors[0].message}."
        return [issue(ISSUE_INVALID_VALUE, message, name)], None
    if name == "fulfillment_availability":
        fba = listing.fulfillment is Fulfillment.MARKETPLACE
        return [
            issue(
                ISSUE_INVALID_VALUE,
                "The provided value for 'Fulfillment Channel Code' is invalid:"
                # FBA stock is counted by Amazon's warehouses; a seller cannot set it.
                f" {code}{' quantity is managed by Amazon' if fba else ''}.",
                name,
            )
            for entry in value
            if (code := entry["fulfillment_channel_code"])
            and ("quantity" in entry if fba else code != "DEFAULT")
        ], None
    mine = (state.marketplace_id, "ALL")
    offer = next(
        (e for e in value if (e.get("marketplace_id", mine[0]), e.get("audience", "ALL")) == mine),
        None,
    )
    if offer is None:
        return [], None
    issues = []
    if offer["currency"] != listing.currency:
        message = f"The provided value for 'Currency' is invalid: expected {listing.currency}."
        issues.append(issue(ISSUE_INVALID_VALUE, message, name))
    for key in _PRICES:
        for step in (step for entry in offer.get(key, []) for step in entry["schedule"]):
            exponent = Decimal(str(step["value_with_tax"])).as_tuple().exponent
            if isinstance(exponent, int) and exponent < -2:
                # USD has cents: a third decimal place is not a price Amazon can show.
                message = f"The provided value for '{key}' has more than 2 decimal places."
                issues.append(issue(ISSUE_INVALID_VALUE, message, name))
    price, low, high = (_value(offer, key) for key in _PRICES)
    return issues + (bound_issues(price, low, high) if price is not None else []), offer


def _merged(
    name: str, old: list[dict[str, Any]], new: list[dict[str, Any]], marketplace: str
) -> list[Any]:
    """``merge``: entries with the same key (marketplace and audience, channel, ...) update."""

    def key(entry: dict[str, Any]) -> tuple[Any, ...]:
        if name == "purchasable_offer":
            return (entry.get("marketplace_id", marketplace), entry.get("audience", "ALL"))
        if name == "fulfillment_availability":
            return (entry.get("fulfillment_channel_code"),)
        return (entry.get("marketplace_id"), entry.get("language_tag"))

    out = copy.deepcopy(old)
    for entry in copy.deepcopy(new):
        target = next((e for e in out if key(e) == key(entry)), None)
        if target is None:
            out.append(entry)
        else:
            target.update(entry)
    return out


def apply_patches(
    state: AmazonMockState,
    listing: MockListing,
    patches: list[dict[str, Any]],
    preview: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """Check ``patches`` (400 for what Amazon cannot parse) and apply them unless INVALID or a
    preview: ACCEPTED, VALID (preview) or INVALID, and the issues."""
    meta = state.meta_of(listing.sku)
    attributes = copy.deepcopy(meta.attributes)
    for index, patch in enumerate(patches):
        path = _PATH.match(patch.get("path", ""))
        if path is None:
            raise invalid_input(f"Invalid path provided in patch at index of {index}.")
        if patch["op"] != "delete" and not patch.get("value"):
            raise invalid_input(f"Missing value in patch at index of {index}.")
        name = path.group(1)
        if patch["op"] == "delete":
            attributes.pop(name, None)
        elif patch["op"] == "merge":
            current = attributes.get(name) or implied(state, listing, name)
            attributes[name] = _merged(name, current, patch["value"], state.marketplace_id)
        else:
            attributes[name] = copy.deepcopy(patch["value"])
    if listing.sku in state.refused_skus:
        message = "The attributes are invalid: this listing cannot be changed (restricted)."
        return "INVALID", [issue(ISSUE_INVALID_ATTRIBUTES, message, None)]
    touched = {patch["path"].split("/")[2] for patch in patches}  # /attributes/<name>, checked
    issues: list[dict[str, Any]] = []
    offer = None
    for name in sorted(touched & set(attributes) & set(ATTRIBUTE_SCHEMAS)):
        found, mine = _check(state, listing, name, attributes[name])
        issues, offer = issues + found, mine or offer
    if issues or preview:
        return "INVALID" if issues else "VALID", issues
    if state.faults.write_dropped():
        state.dropped[listing.sku] += 1
        return "ACCEPTED", []
    meta.attributes = attributes
    if "purchasable_offer" in touched:
        meta.offer_deleted = "purchasable_offer" not in attributes
        if offer is not None:
            price, meta.min_price, meta.max_price = (_value(offer, key) for key in _PRICES)
            if price is not None:
                listing.price = price
                state.applied[f"{listing.sku}|price|{price}"] += 1
    if "fulfillment_availability" in touched and listing.fulfillment is Fulfillment.MERCHANT:
        entries = attributes.get("fulfillment_availability", [])
        merchant = [e for e in entries if e["fulfillment_channel_code"] == "DEFAULT"]
        listing.quantity = int(merchant[0].get("quantity", 0)) if merchant else 0
        state.applied[f"{listing.sku}|quantity|{listing.quantity}"] += 1
    for name in touched - {"purchasable_offer", "fulfillment_availability"}:
        state.applied[f"{listing.sku}|{name}|{json.dumps(attributes.get(name))}"] += 1
    state.touch(listing.sku)
    return "ACCEPTED", []


def listing_issues(state: AmazonMockState, listing: MockListing) -> list[dict[str, Any]]:
    """Standing issues of a listing (a price outside the seller's own min/max suppresses it)."""
    meta = state.meta_of(listing.sku)
    found = bound_issues(listing.price, meta.min_price, meta.max_price)
    return [entry | {"marketplaceIds": [state.marketplace_id]} for entry in found]


def statuses(state: AmazonMockState, listing: MockListing) -> list[str]:
    """``BUYABLE`` needs a live offer, stock and no suppression; ``DISCOVERABLE`` always."""
    meta = state.meta_of(listing.sku)
    buyable = not meta.offer_deleted and listing.quantity > 0
    buyable = buyable and not listing_issues(state, listing)
    return ["BUYABLE", "DISCOVERABLE"] if buyable else ["DISCOVERABLE"]


def attributes(state: AmazonMockState, listing: MockListing) -> dict[str, Any]:
    """Snake_case attributes: what was written, or what the seed implies."""
    meta = state.meta_of(listing.sku)
    out: dict[str, Any] = dict(meta.attributes)
    if "purchasable_offer" not in out and not meta.offer_deleted:
        out["purchasable_offer"] = implied(state, listing, "purchasable_offer")
    elif "purchasable_offer" in out:
        # The stored value carries the last written price; the live one may have moved since.
        for entry in out["purchasable_offer"]:
            if entry.get("audience", "ALL") == "ALL" and "our_price" in entry:
                entry["our_price"] = scheduled(listing.price)
    out["fulfillment_availability"] = implied(state, listing, "fulfillment_availability")
    return out


def render_item(state: AmazonMockState, listing: MockListing, included: set[str]) -> dict[str, Any]:
    """One ``Item`` with the requested ``includedData`` sections."""
    meta, market = state.meta_of(listing.sku), state.marketplace_id
    summary: dict[str, Any] = {
        "marketplaceId": market,
        "asin": listing.external_id,
        "productType": "PRODUCT",
        "conditionType": "new_new",
        "status": statuses(state, listing),
        "itemName": listing.sku,
        "createdDate": iso(meta.created or state.clock.now()),
        "lastUpdatedDate": iso(meta.updated or state.clock.now()),
    }
    if listing.fulfillment is Fulfillment.MARKETPLACE:
        summary["fnSku"] = "X00" + listing.external_id[-7:]
    offer = {
        "marketplaceId": market,
        "offerType": "B2C",
        "price": {"currencyCode": listing.currency, "amount": cents(listing.price)},
        "audience": {"value": "ALL", "displayName": "Sell on Amazon"},
    }
    sections: dict[str, Callable[[], Any]] = {
        "summaries": lambda: [summary],
        "attributes": lambda: attributes(state, listing),
        "issues": lambda: listing_issues(state, listing),
        "offers": lambda: [] if meta.offer_deleted else [offer],
        "fulfillmentAvailability": lambda: [
            {"fulfillmentChannelCode": fulfillment_code(listing), "quantity": listing.quantity}
        ],
        "productTypes": lambda: [{"marketplaceId": market, "productType": "PRODUCT"}],
        "relationships": lambda: [{"marketplaceId": market, "relationships": []}],
        "procurement": lambda: [],
    }
    return {"sku": listing.sku} | {
        name: make() for name, make in sections.items() if name in included
    }


def _listing(call: Call) -> MockListing:
    listing = call.state.listing(call.path("sku"))
    if listing is None:
        message = f"SKU '{call.path('sku')}' not found in marketplace {call.state.marketplace_id}"
        raise WireError(404, "NOT_FOUND", message)
    return listing


@sp_api("getListingsItem")
def get_listings_item(call: Call) -> Any:
    """``GET /listings/2021-08-01/items/{sellerId}/{sku}``."""
    return render_item(call.state, _listing(call), set(call.query["includedData"]))


@sp_api("searchListingsItems")
def search_listings_items(call: Call) -> Any:
    """``GET /listings/2021-08-01/items/{sellerId}``: paged, ≤ 20 per page, ≤ 1000 in all."""
    state, query, size = call.state, call.query, call.query["pageSize"]
    bounds = {name: time_param(query, name) for name in _DATE_FILTERS if name in query}
    identifiers, kind = query.get("identifiers", []), query.get("identifiersType")
    if size < 1:
        raise invalid_input("pageSize must be at least 1.")
    if any(bound.tzinfo is None for bound in bounds.values()):
        raise invalid_input("Dates must carry a time zone.")
    if bool(identifiers) != (kind is not None):
        raise invalid_input("identifiers and a valid identifiersType go together.")

    def dated(item: MockListing, name: str) -> Any:
        meta = state.meta_of(item.sku)
        return meta.created if name.startswith("created") else meta.updated

    def keep(item: MockListing) -> bool:
        for name, bound in bounds.items():  # inclusive bounds
            moment = dated(item, name)
            if moment is None or (moment < bound if name.endswith("After") else moment > bound):
                return False
        return kind is None or {"SKU": item.sku, "ASIN": item.external_id}.get(kind) in identifiers

    listings = [item for item in state.market.listings.values() if keep(item)]
    sort_by = query["sortBy"]
    listings.sort(
        key=lambda item: item.sku if sort_by == "sku" else (dated(item, sort_by), item.sku),
        reverse=query["sortOrder"] == "DESC",
    )
    offset = from_page_token(query["pageToken"], "pageToken") if "pageToken" in query else 0
    if not isinstance(offset, int) or offset < 0:
        raise invalid_input("Invalid pageToken.")
    pageable = listings[:MAX_SEARCH_RESULTS]
    items = [
        render_item(state, item, set(query["includedData"]))
        for item in pageable[offset : offset + size]
    ]
    pagination = {}
    if offset + size < len(pageable):
        pagination["nextToken"] = page_token(offset + size)
    if offset > 0:
        pagination["previousToken"] = page_token(max(0, offset - size))
    body = {"numberOfResults": len(listings), "items": items}
    return body | ({"pagination": pagination} if pagination else {})


@sp_api("patchListingsItem")
def patch_listings_item(call: Call) -> Any:
    """``PATCH /listings/2021-08-01/items/{sellerId}/{sku}`` (``mode=VALIDATION_PREVIEW`` too)."""
    state, sku, included = call.state, call.path("sku"), call.query["includedData"]
    preview = call.query.get("mode") == "VALIDATION_PREVIEW"
    if "identifiers" in included and not preview:
        raise invalid_input("includedData=identifiers needs mode=VALIDATION_PREVIEW.")
    answer: dict[str, Any] = {"sku": sku, "status": "ACCEPTED", "submissionId": uuid.uuid4().hex}
    if state.listing(sku) is None and state.unknown_sku_patch != "not_found":
        state.orphan_patches[sku] += 1
        return answer | {"issues": []}
    listing = _listing(call)
    answer["status"], issues = apply_patches(state, listing, call.body["patches"], preview)
    if "issues" in included:
        answer["issues"] = issues
    if "identifiers" in included:
        answer["identifiers"] = [
            {"marketplaceId": state.marketplace_id, "asin": listing.external_id}
        ]
    return answer
