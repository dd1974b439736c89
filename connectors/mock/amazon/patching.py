"""Listings patch semantics shared by ``patchListingsItem`` and ``JSON_LISTINGS_FEED`` messages.

Only top-level attributes can be patched (``/attributes/<name>``); values are arrays of objects.
``purchasable_offer`` and ``fulfillment_availability`` are checked against the attribute rules
Amazon's product-type schemas enforce (money is a JSON number, quantity an integer ≥ 0) and
against the listing (seller min/max price, merchant quantity on an FBA listing). A submission
with any ERROR issue is INVALID and changes nothing; an accepted one applies at once.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any, Final

from jsonschema import Draft7Validator

from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.amazon.wire import (
    ISSUE_ABOVE_MAXIMUM,
    ISSUE_BELOW_MINIMUM,
    ISSUE_INVALID_ATTRIBUTES,
    ISSUE_INVALID_VALUE,
    invalid_input,
)
from connectors.mock.market import CENT, MockListing
from domain.listings import Fulfillment

_PATH = re.compile(r"^/attributes/([a-z][a-z0-9_]*)$")
FBA_CHANNEL_CODE: Final = "AMAZON_NA"
MERCHANT_CHANNEL_CODE: Final = "DEFAULT"


def _entries(required: str, **properties: Any) -> dict[str, Any]:
    """An attribute value: a non-empty array of objects with ``properties`` only."""
    item = {"type": "object", "required": [required], "additionalProperties": False}
    return {"type": "array", "minItems": 1, "items": item | {"properties": properties}}


_MONEY = {"type": "number", "exclusiveMinimum": 0}
_SCHEDULED = _entries(
    "schedule",
    schedule=_entries(
        "value_with_tax",
        value_with_tax=_MONEY,
        start_at={"type": "string"},
        end_at={"type": "string"},
    ),
)
_COUNT = {"type": "integer", "minimum": 0}
# Stand-ins for the product-type definition rules of the two attributes a repricer writes.
ATTRIBUTE_SCHEMAS: dict[str, dict[str, Any]] = {
    "purchasable_offer": _entries(
        "currency",
        marketplace_id={"type": "string"},
        currency={"type": "string", "pattern": "^[A-Z]{3}$"},
        audience={"type": "string", "enum": ["ALL", "B2B"]},
        our_price=_SCHEDULED,
        discounted_price=_SCHEDULED,
        minimum_seller_allowed_price=_SCHEDULED,
        maximum_seller_allowed_price=_SCHEDULED,
        map_price=_SCHEDULED,
        start_at={"type": "object"},
        end_at={"type": "object"},
        quantity_discount_plan={"type": "array"},
    ),
    "fulfillment_availability": _entries(
        "fulfillment_channel_code",
        fulfillment_channel_code={"type": "string", "minLength": 1},
        quantity=_COUNT,
        lead_time_to_ship_max_days=_COUNT,
        restock_date={"type": "string"},
        is_inventory_available={"type": "boolean"},
        marketplace_id={"type": "string"},
    ),
}
_PRICES = ("our_price", "minimum_seller_allowed_price", "maximum_seller_allowed_price")
_LABELS = {"purchasable_offer": "Offer", "fulfillment_availability": "Fulfillment Availability"}


@cache
def _attribute_validator(name: str) -> Draft7Validator:
    return Draft7Validator(ATTRIBUTE_SCHEMAS[name])


@dataclass
class Outcome:
    """Result of one submission: ACCEPTED, VALID (preview) or INVALID with its issues."""

    status: str
    issues: list[dict[str, Any]] = field(default_factory=list)


def issue(
    code: str,
    message: str,
    attribute: str | None,
    category: str = "INVALID_ATTRIBUTE",
    *,
    suppressed: bool = False,
) -> dict[str, Any]:
    """An ERROR ``Issue`` as the Listings API reports it."""
    body: dict[str, Any] = {"code": code, "message": message, "severity": "ERROR"}
    if attribute:
        body["attributeNames"] = [attribute]
    body["categories"] = [category]
    if suppressed:
        body["enforcements"] = {
            "actions": [{"action": "LISTING_SUPPRESSED"}],
            "exemption": {"status": "NOT_EXEMPT"},
        }
    return body


def check_patches(patches: list[dict[str, Any]]) -> None:
    """Refuse (400) what Amazon cannot parse: nested paths, a missing or empty value."""
    for index, patch in enumerate(patches):
        if not _PATH.match(patch.get("path", "")):
            raise invalid_input(f"Invalid path provided in patch at index of {index}.")
        if patch["op"] != "delete" and not patch.get("value"):
            raise invalid_input(f"Missing value in patch at index of {index}.")


def _merge_key(name: str, entry: dict[str, Any], marketplace: str) -> tuple[Any, ...]:
    if name == "purchasable_offer":
        return (entry.get("marketplace_id", marketplace), entry.get("audience", "ALL"))
    if name == "fulfillment_availability":
        return (entry.get("fulfillment_channel_code"),)
    return (entry.get("marketplace_id"), entry.get("language_tag"))


def _merged(
    name: str, old: list[dict[str, Any]], new: list[dict[str, Any]], marketplace: str
) -> list[Any]:
    out = [copy.deepcopy(entry) for entry in old]
    for entry in new:
        key = _merge_key(name, entry, marketplace)
        target = next((e for e in out if _merge_key(name, e, marketplace) == key), None)
        if target is None:
            out.append(copy.deepcopy(entry))
        else:
            target.update(copy.deepcopy(entry))
    return out


def scheduled(amount: Decimal) -> list[dict[str, Any]]:
    """``[{"schedule": [{"value_with_tax": <number>}]}]``."""
    return [{"schedule": [{"value_with_tax": float(amount)}]}]


def implied(state: AmazonMockState, listing: MockListing, name: str) -> list[dict[str, Any]]:
    """The value a never-written attribute has on Amazon (the seeded offer and stock)."""
    meta = state.meta_of(listing.sku)
    if name == "purchasable_offer" and not meta.offer_deleted:
        offer: dict[str, Any] = {
            "marketplace_id": state.marketplace_id,
            "currency": listing.currency,
            "audience": "ALL",
            "our_price": scheduled(listing.price),
        }
        if meta.min_price is not None:
            offer["minimum_seller_allowed_price"] = scheduled(meta.min_price)
        if meta.max_price is not None:
            offer["maximum_seller_allowed_price"] = scheduled(meta.max_price)
        return [offer]
    if name == "fulfillment_availability":
        return [
            {"fulfillment_channel_code": fulfillment_code(listing), "quantity": listing.quantity}
        ]
    return []


def _value(entry: dict[str, Any], name: str) -> Decimal | None:
    first = entry[name][0]["schedule"][0]["value_with_tax"] if entry.get(name) else None
    return None if first is None else Decimal(str(first)).quantize(CENT)


def bound_issues(
    price: Decimal | None, low: Decimal | None, high: Decimal | None
) -> list[dict[str, Any]]:
    """The suppressing issues of a price below the seller's minimum or above their maximum."""
    return [
        issue(
            code,
            f"The '{bound} price' is {than} than the selling price (excluding shipping) for the"
            f" listing. Review and update your price and/or {bound} price.",
            "purchasable_offer",
            "INVALID_PRICE",
            suppressed=True,
        )
        for code, bound, than, broken in (
            (ISSUE_BELOW_MINIMUM, "minimum", "greater", low is not None and low > (price or low)),
            (ISSUE_ABOVE_MAXIMUM, "maximum", "lower", high is not None and high < (price or high)),
        )
        if broken
    ]


def _check_offer(
    state: AmazonMockState, listing: MockListing, values: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The issues of our offer (the marketplace's ``ALL`` audience) and that offer, if any."""
    entry = next(
        (
            e
            for e in values
            if e.get("marketplace_id") in (None, state.marketplace_id)
            and e.get("audience", "ALL") == "ALL"
        ),
        None,
    )
    if entry is None:
        return [], None
    issues = []
    if entry["currency"] != listing.currency:
        message = f"The provided value for 'Currency' is invalid: expected {listing.currency}."
        issues.append(issue(ISSUE_INVALID_VALUE, message, "purchasable_offer"))
    for key in _PRICES:
        for scheduled in entry.get(key, []):
            for step in scheduled["schedule"]:
                exponent = Decimal(str(step["value_with_tax"])).as_tuple().exponent
                if isinstance(exponent, int) and exponent < -2:
                    # USD has cents: a third decimal place is not a price Amazon can show.
                    message = f"The provided value for '{key}' has more than 2 decimal places."
                    issues.append(issue(ISSUE_INVALID_VALUE, message, "purchasable_offer"))
    return issues + bound_issues(*(_value(entry, key) for key in _PRICES)), entry


def _check_quantity(listing: MockListing, values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    fba = listing.fulfillment is Fulfillment.MARKETPLACE
    return [
        issue(
            ISSUE_INVALID_VALUE,
            "The provided value for 'Fulfillment Channel Code' is invalid:"
            # FBA stock is counted by Amazon's warehouses; a seller cannot set it.
            f" {code}{' quantity is managed by Amazon' if fba else ''}.",
            "fulfillment_availability",
        )
        for entry in values
        if (code := entry["fulfillment_channel_code"])
        and ("quantity" in entry if fba else code != MERCHANT_CHANNEL_CODE)
    ]


def apply_patches(
    state: AmazonMockState,
    listing: MockListing,
    patches: list[dict[str, Any]],
    *,
    preview: bool = False,
) -> Outcome:
    """Validate ``patches`` against ``listing`` and apply them unless INVALID or a preview."""
    check_patches(patches)
    if listing.sku in state.refused_skus:
        message = "The attributes are invalid: this listing cannot be changed (restricted)."
        return Outcome("INVALID", [issue(ISSUE_INVALID_ATTRIBUTES, message, None)])
    meta = state.meta_of(listing.sku)
    attributes = copy.deepcopy(meta.attributes)
    touched: set[str] = set()
    for patch in patches:
        name = _PATH.match(patch["path"]).group(1)  # type: ignore[union-attr]  # checked above
        touched.add(name)
        if patch["op"] == "delete":
            attributes.pop(name, None)
        elif patch["op"] == "merge":
            current = attributes.get(name) or implied(state, listing, name)
            attributes[name] = _merged(name, current, patch["value"], state.marketplace_id)
        else:
            attributes[name] = copy.deepcopy(patch["value"])
    issues: list[dict[str, Any]] = []
    offer = None
    for name in sorted(touched):
        if name not in attributes or name not in ATTRIBUTE_SCHEMAS:
            continue
        errors = list(_attribute_validator(name).iter_errors(attributes[name]))
        if errors:
            label = _LABELS[name]
            message = f"The provided value for '{label}' is invalid: {errors[0].message}."
            issues.append(issue(ISSUE_INVALID_VALUE, message, name))
        elif name == "purchasable_offer":
            offer_issues, offer = _check_offer(state, listing, attributes[name])
            issues.extend(offer_issues)
        else:
            issues.extend(_check_quantity(listing, attributes[name]))
    if issues:
        return Outcome("INVALID", issues)
    if preview:
        return Outcome("VALID")
    if state.faults.write_dropped():
        state.dropped[listing.sku] += 1
        return Outcome("ACCEPTED")
    _commit(state, listing, attributes, touched, offer)
    return Outcome("ACCEPTED")


def _commit(
    state: AmazonMockState,
    listing: MockListing,
    attributes: dict[str, list[dict[str, Any]]],
    touched: set[str],
    offer: dict[str, Any] | None,
) -> None:
    meta = state.meta_of(listing.sku)
    meta.attributes = attributes
    if "purchasable_offer" in touched:
        meta.offer_deleted = "purchasable_offer" not in attributes
        if offer is not None:
            price = _value(offer, "our_price")
            meta.min_price = _value(offer, "minimum_seller_allowed_price")
            meta.max_price = _value(offer, "maximum_seller_allowed_price")
            if price is not None:
                listing.price = price
                state.applied[f"{listing.sku}|price|{price}"] += 1
    if "fulfillment_availability" in touched:
        entries = attributes.get("fulfillment_availability", [])
        merchant = [e for e in entries if e["fulfillment_channel_code"] == MERCHANT_CHANNEL_CODE]
        if listing.fulfillment is Fulfillment.MERCHANT:
            quantity = int(merchant[0].get("quantity", 0)) if merchant else 0
            listing.quantity = quantity
            state.applied[f"{listing.sku}|quantity|{quantity}"] += 1
    for name in touched - {"purchasable_offer", "fulfillment_availability"}:
        state.applied[f"{listing.sku}|{name}|{json.dumps(attributes.get(name))}"] += 1
    state.touch(listing.sku)


def fulfillment_code(listing: MockListing) -> str:
    """The ``fulfillmentChannelCode`` Amazon reports for a listing."""
    fba = listing.fulfillment is Fulfillment.MARKETPLACE
    return FBA_CHANNEL_CODE if fba else MERCHANT_CHANNEL_CODE
