"""Sell Inventory ``bulkUpdatePriceQuantity``: up to 25 items, per-item results (207 if mixed).

Every body is validated against the Sell Inventory OAS (``BulkPriceQuantity``, Draft 4 types);
a body that fails is a 400 ``25709`` naming the field, as eBay refuses a value it cannot
deserialize. Each listing accepts ``revisions_per_day`` revisions per (Pacific) day; past that an
entry is refused with ``25019`` and nothing of it is applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from connectors.mock.ebay.auth import ebay_api
from connectors.mock.ebay.const import (
    ERR_CANNOT_REVISE,
    ERR_CONCURRENT,
    ERR_INVALID_VALUE,
    ERR_MISSING_FIELD,
    ERR_OFFER_NOT_AVAILABLE,
    ERR_PRICE,
    ERR_QUANTITY,
    ERR_SKU_NOT_AVAILABLE,
    ERR_TOO_MANY_ITEMS,
    ERR_USER,
    INVENTORY_API,
    INVENTORY_SCOPE,
    MAX_BULK_REQUESTS,
)
from connectors.mock.ebay.state import USER, EbayItem, EbayMockState, EbayOffer
from connectors.mock.ebay.wire import (
    answer,
    inventory_bad_request,
    inventory_error,
    json_body,
    schema_violation,
)

WRITE = frozenset({INVENTORY_SCOPE})
MAX_QUANTITY = 2**31 - 1
PRICE_TEXT = re.compile(r"\d{1,9}(\.\d{1,2})?")


# -- bulkUpdatePriceQuantity ------------------------------------------------------------------


@dataclass
class _Part:
    """One line of ``responses[]`` in the making (an offer, or the SKU alone)."""

    sku: str | None
    offer_id: str | None
    status: int = 200
    errors: list[dict[str, Any]] = field(default_factory=list)
    offer: EbayOffer | None = None
    price: Decimal | None = None
    quantity: int | None = None

    def fail(self, status: int, entry: dict[str, Any]) -> None:
        if self.status == 200:
            self.status = status
        self.errors.append(entry)

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {"statusCode": self.status}
        if self.sku is not None:
            out["sku"] = self.sku
        if self.offer_id is not None:
            out["offerId"] = self.offer_id
        if self.errors:
            out["errors"] = self.errors
        return out


def _price(state: EbayMockState, part: _Part, raw: dict[str, Any], currency: str) -> None:
    value, given_currency = raw.get("value"), raw.get("currency")
    if value is None or given_currency is None:
        part.fail(
            400,
            inventory_error(
                ERR_MISSING_FIELD, "Missing field price.value or price.currency.", fieldName="price"
            ),
        )
        return
    if given_currency != currency:
        part.fail(
            400,
            inventory_error(
                ERR_PRICE,
                f"Invalid price. Currency {given_currency} is not valid for this marketplace.",
                text1=given_currency,
            ),
        )
        return
    # A plain decimal string with at most two places ("24.99", "25"): no exponent, no sign.
    amount = Decimal(value) if PRICE_TEXT.fullmatch(str(value)) else Decimal(0)
    if amount <= 0:
        part.fail(
            400,
            inventory_error(
                ERR_PRICE,
                f"Invalid price. The price {value} is not a valid amount.",
                text1=str(value),
            ),
        )
        return
    part.price = amount


def _quantity_ok(state: EbayMockState, part: _Part, quantity: int, name: str) -> bool:
    if (
        quantity < 0
        or quantity > MAX_QUANTITY
        or (quantity == 0 and not state.out_of_stock_control)
    ):
        part.fail(
            400,
            inventory_error(
                ERR_QUANTITY,
                f"Invalid quantity. The value of {name} ({quantity}) is not valid.",
                fieldName=name,
            ),
        )
        return False
    return True


def _offer_part(state: EbayMockState, sku: str | None, raw: dict[str, Any]) -> _Part:
    offer_id = raw.get("offerId")
    part = _Part(sku, offer_id)
    if not offer_id:
        part.fail(
            400, inventory_error(ERR_MISSING_FIELD, "Missing field offerId.", fieldName="offerId")
        )
        return part
    offer = state.offers.get(offer_id)
    if offer is None or offer.status != "PUBLISHED":
        part.fail(
            400,
            inventory_error(
                ERR_OFFER_NOT_AVAILABLE,
                f"This Offer is not available : {offer_id}.",
                offerId=offer_id,
            ),
        )
        return part
    part.sku, part.offer = offer.sku, offer
    if sku is not None and offer.sku != sku:
        part.fail(
            400,
            inventory_error(
                ERR_USER,
                f"A user error has occurred. Offer {offer_id} does not belong to SKU {sku}.",
                offerId=offer_id,
            ),
        )
        return part
    if "price" not in raw and "availableQuantity" not in raw:
        part.fail(
            400,
            inventory_error(
                ERR_MISSING_FIELD,
                "Missing field availableQuantity or price.",
                fieldName="availableQuantity",
            ),
        )
        return part
    listing = state.listing(offer.sku)
    if "price" in raw and listing is not None:
        _price(state, part, raw["price"], listing.currency)
    if "availableQuantity" in raw and _quantity_ok(
        state, part, raw["availableQuantity"], "availableQuantity"
    ):
        part.quantity = raw["availableQuantity"]
    return part


def _ship_quantity(raw: dict[str, Any]) -> int | None:
    if "quantity" in raw:
        return int(raw["quantity"])
    spread = raw.get("availabilityDistributions")
    if spread:
        return sum(int(d.get("quantity", 0)) for d in spread)
    return None


def _apply_request(state: EbayMockState, entry: dict[str, Any]) -> list[_Part]:
    sku: str | None = entry.get("sku")
    ship = entry.get("shipToLocationAvailability")
    parts = [_offer_part(state, sku, raw) for raw in entry.get("offers") or []]
    item_part = _Part(sku, None)
    whole = parts or [item_part]  # a SKU-only update answers one line with the SKU alone

    def fail_all(status: int, entry_error: dict[str, Any]) -> list[_Part]:
        for part in whole:
            part.fail(status, entry_error)
        return whole

    if ship is None and not parts:
        return fail_all(
            400,
            inventory_error(
                ERR_MISSING_FIELD,
                "Missing field offers or shipToLocationAvailability.",
                fieldName="offers",
            ),
        )
    item: EbayItem | None = None
    if sku is not None:
        item = state.items.get(sku)
        if item is None:
            return fail_all(
                400,
                inventory_error(
                    ERR_SKU_NOT_AVAILABLE, f"SKU {sku} is not available in the system", sku=sku
                ),
            )
    ship_quantity: int | None = None
    if ship is not None:
        if sku is None:
            return fail_all(
                400, inventory_error(ERR_MISSING_FIELD, "Missing field sku.", fieldName="sku")
            )
        ship_quantity = _ship_quantity(ship)
        if ship_quantity is None:
            return fail_all(
                400,
                inventory_error(
                    ERR_MISSING_FIELD,
                    "Missing field shipToLocationAvailability.quantity.",
                    fieldName="quantity",
                ),
            )
        probe = _Part(sku, None)
        if not _quantity_ok(state, probe, ship_quantity, "shipToLocationAvailability.quantity"):
            return fail_all(400, probe.errors[0])
    good = [p for p in parts if p.status == 200]
    if not good and ship_quantity is None:
        return whole
    # Every listing this entry changes is revised once; one at its daily cap blocks the entry.
    listings = {p.offer.listing_id for p in good if p.offer is not None}
    if ship_quantity is not None and sku is not None:
        listings |= {o.listing_id for o in state.offers_of(sku) if o.status == "PUBLISHED"}
    capped = sorted(
        lid for lid in listings if state.revisions_today(lid) >= state.revisions_per_day
    )
    if capped:
        refusal = inventory_error(
            ERR_CANNOT_REVISE,
            f"Cannot revise listing. Listing {capped[0]} has reached the maximum of "
            f"{state.revisions_per_day} revisions allowed per day.",
            listingId=capped[0],
        )
        for part in good or whole:
            part.fail(400, refusal)
        return whole
    if state.faults.item_refused():
        concurrent = inventory_error(
            ERR_CONCURRENT,
            "Concurrent access of Inventory or InventoryItemGroup. Please try again later",
            category="APPLICATION",
        )
        for part in good or whole:
            part.fail(500, concurrent)
        return whole
    touched = {p.sku for p in good if p.sku} | ({sku} if ship_quantity is not None else set())
    if state.faults.write_dropped():
        for name in touched:
            state.dropped[str(name)] += 1
        return whole
    for part in good:
        assert part.offer is not None
        listing = state.listing(part.offer.sku)
        if part.price is not None and listing is not None:
            listing.price = part.price
        if part.quantity is not None:
            part.offer.available_quantity = part.quantity
    if ship_quantity is not None and item is not None:
        item.ship_to_quantity = ship_quantity
    for listing_id in listings:
        state.revise(listing_id)
    for name in touched:
        state.applied[str(name)] += 1
        state.sync_quantity(str(name))
    return whole


@ebay_api(INVENTORY_API, USER, WRITE)
async def bulk_update_price_quantity(request: web.Request, state: EbayMockState) -> web.Response:
    """``POST /sell/inventory/v1/bulk_update_price_quantity``."""
    try:
        body = await json_body(request)
    except ValueError as exc:
        raise inventory_bad_request(
            ERR_INVALID_VALUE,
            "Invalid request. Invalid value for field request body.",
            fieldName="request",
        ) from exc
    if not isinstance(body, dict):
        raise inventory_bad_request(
            ERR_INVALID_VALUE,
            "Invalid request. Invalid value for field request body.",
            fieldName="request",
        )
    violation = schema_violation("BulkPriceQuantity", body)
    if violation is not None:
        path, _reason = violation
        raise inventory_bad_request(
            ERR_INVALID_VALUE, f"Invalid request. Invalid value for field {path}", fieldName=path
        )
    requests = body.get("requests")
    if not requests:
        raise inventory_bad_request(
            ERR_INVALID_VALUE,
            "Invalid request. Invalid value for field requests",
            fieldName="requests",
        )
    if len(requests) > MAX_BULK_REQUESTS:
        raise inventory_bad_request(
            ERR_TOO_MANY_ITEMS,
            f"The number of InventoryItems in the request cannot exceed {MAX_BULK_REQUESTS}.",
            text1=str(MAX_BULK_REQUESTS),
        )
    parts = [part for entry in requests for part in _apply_request(state, entry)]
    status = 200 if all(p.status == 200 for p in parts) else 207
    return answer({"responses": [p.view() for p in parts]}, status)
