"""Listings Items API 2021-08-01: getListingsItem, searchListingsItems, patchListingsItem."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from connectors.mock.amazon.auth import ok, sp_api
from connectors.mock.amazon.const import MAX_SEARCH_PAGE_SIZE, MAX_SEARCH_RESULTS
from connectors.mock.amazon.items import INCLUDED_DATA, render_item
from connectors.mock.amazon.patching import apply_patches
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.amazon.wire import (
    WireError,
    csv_param,
    invalid_input,
    json_body,
    openapi_validator,
)
from connectors.mock.kit.wire import first_error
from connectors.mock.market import MockListing

SPEC = "listingsItems_2021-08-01.json"
_DATE_FILTERS = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore")
_SEARCH_IDENTIFIER_TYPES = frozenset(
    {"ASIN", "EAN", "FNSKU", "GTIN", "ISBN", "JAN", "MINSAN", "SKU", "UPC"}
)


def _check_seller(state: AmazonMockState, request: web.Request) -> None:
    # The token was issued for one selling partner; another sellerId is not ours to read.
    if request.match_info["sellerId"] != state.seller_id:
        raise WireError(403, "Unauthorized", "Access to requested resource is denied.", "")


def _marketplaces(state: AmazonMockState, request: web.Request, *, single: bool = False) -> None:
    ids = csv_param(request, "marketplaceIds")
    if not ids:
        raise invalid_input("Missing required parameter: marketplaceIds.")
    if single and len(ids) > 1:
        raise invalid_input("Only one marketplaceId is supported.")
    unknown = [mid for mid in ids if mid != state.marketplace_id]
    if unknown:
        raise invalid_input(f"Invalid marketplaceIds: {','.join(unknown)}.")


def _included(request: web.Request, allowed: frozenset[str], default: str) -> set[str]:
    values = csv_param(request, "includedData") or [default]
    bad = [value for value in values if value not in allowed]
    if bad:
        raise invalid_input(f"Invalid includedData: {','.join(bad)}.")
    return set(values)


@sp_api("getListingsItem")
async def get_listings_item(request: web.Request, state: AmazonMockState) -> web.Response:
    """``GET /listings/2021-08-01/items/{sellerId}/{sku}``."""
    _check_seller(state, request)
    _marketplaces(state, request)
    included = _included(request, INCLUDED_DATA, "summaries")
    sku = request.match_info["sku"]
    listing = state.listing(sku)
    if listing is None:
        message = f"SKU '{sku}' not found in marketplace {state.marketplace_id}"
        raise WireError(404, "NOT_FOUND", message)
    return ok(render_item(state, listing, included), state, "getListingsItem")


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset(token: str) -> int:
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid_input("Invalid pageToken.") from exc
    if not isinstance(offset, int) or offset < 0:
        raise invalid_input("Invalid pageToken.")
    return offset


def _date_param(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid_input(f"{name} must be an ISO 8601 date-time.") from exc
    if moment.tzinfo is None:
        raise invalid_input(f"{name} must carry a time zone.")
    return moment


def _in_window(state: AmazonMockState, request: web.Request) -> Callable[[MockListing], bool]:
    """createdAfter/Before and lastUpdatedAfter/Before: inclusive bounds ("at or after")."""
    bounds = {name: _date_param(request, name) for name in _DATE_FILTERS}

    def keep(item: MockListing) -> bool:
        meta = state.meta_of(item.sku)
        created, updated = meta.created, meta.updated
        for name, bound in bounds.items():
            if bound is None:
                continue
            moment = created if name.startswith("created") else updated
            if moment is None:
                return False
            if name.endswith("After") and moment < bound:
                return False
            if name.endswith("Before") and moment > bound:
                return False
        return True

    return keep


def _search_filter(state: AmazonMockState, request: web.Request) -> list[MockListing]:
    keep = _in_window(state, request)
    listings = [item for item in state.market.listings.values() if keep(item)]
    identifiers = csv_param(request, "identifiers")
    kind = request.query.get("identifiersType")
    if identifiers or kind:
        if not identifiers or kind not in _SEARCH_IDENTIFIER_TYPES:
            raise invalid_input("identifiers and a valid identifiersType go together.")
        if len(identifiers) > 20:
            raise invalid_input("At most 20 identifiers are allowed.")
        wanted = set(identifiers)
        if kind == "SKU":
            listings = [item for item in listings if item.sku in wanted]
        elif kind == "ASIN":
            listings = [item for item in listings if item.external_id in wanted]
        else:
            listings = []
    return listings


@sp_api("searchListingsItems")
async def search_listings_items(request: web.Request, state: AmazonMockState) -> web.Response:
    """``GET /listings/2021-08-01/items/{sellerId}``: paged, ≤ 20 per page, ≤ 1000 in all."""
    _check_seller(state, request)
    _marketplaces(state, request)
    included = _included(request, INCLUDED_DATA, "summaries")
    try:
        page_size = int(request.query.get("pageSize", "10"))
    except ValueError as exc:
        raise invalid_input("pageSize must be an integer.") from exc
    if not 1 <= page_size <= MAX_SEARCH_PAGE_SIZE:
        raise invalid_input(f"pageSize must be between 1 and {MAX_SEARCH_PAGE_SIZE}.")
    sort_by = request.query.get("sortBy", "lastUpdatedDate")
    order = request.query.get("sortOrder", "DESC")
    if sort_by not in ("sku", "createdDate", "lastUpdatedDate") or order not in ("ASC", "DESC"):
        raise invalid_input("Invalid sortBy or sortOrder.")
    listings = _search_filter(state, request)

    def key(item: MockListing) -> Any:
        meta = state.meta_of(item.sku)
        if sort_by == "sku":
            return item.sku
        moment = meta.created if sort_by == "createdDate" else meta.updated
        return (moment, item.sku)

    listings.sort(key=key, reverse=order == "DESC")
    offset = _offset(request.query["pageToken"]) if "pageToken" in request.query else 0
    pageable = listings[:MAX_SEARCH_RESULTS]
    page = pageable[offset : offset + page_size]
    body: dict[str, Any] = {
        "numberOfResults": len(listings),
        "items": [render_item(state, item, included) for item in page],
    }
    pagination = {}
    if offset + page_size < len(pageable):
        pagination["nextToken"] = _page_token(offset + page_size)
    if offset > 0:
        pagination["previousToken"] = _page_token(max(0, offset - page_size))
    if pagination:
        body["pagination"] = pagination
    return ok(body, state, "searchListingsItems")


@sp_api("patchListingsItem")
async def patch_listings_item(request: web.Request, state: AmazonMockState) -> web.Response:
    """``PATCH /listings/2021-08-01/items/{sellerId}/{sku}`` (``mode=VALIDATION_PREVIEW`` too)."""
    _check_seller(state, request)
    _marketplaces(state, request)
    included = _included(request, frozenset({"identifiers", "issues"}), "issues")
    mode = request.query.get("mode")
    if mode not in (None, "VALIDATION_PREVIEW"):
        raise invalid_input(f"Invalid mode: {mode}.")
    if "identifiers" in included and mode != "VALIDATION_PREVIEW":
        raise invalid_input("includedData=identifiers needs mode=VALIDATION_PREVIEW.")
    body = await json_body(request)
    problem = first_error(openapi_validator(SPEC, "ListingsItemPatchRequest"), body)
    if problem is not None:
        raise invalid_input(problem)
    sku = request.match_info["sku"]
    listing = state.listing(sku)
    submission = uuid.uuid4().hex
    if listing is None:
        if state.unknown_sku_patch == "not_found":
            message = f"SKU '{sku}' not found in marketplace {state.marketplace_id}"
            raise WireError(404, "NOT_FOUND", message)
        state.orphan_patches[sku] += 1
        answer: dict[str, Any] = {"sku": sku, "status": "ACCEPTED", "submissionId": submission}
        answer["issues"] = []
        return ok(answer, state, "patchListingsItem")
    outcome = apply_patches(state, listing, body["patches"], preview=mode == "VALIDATION_PREVIEW")
    result: dict[str, Any] = {"sku": sku, "status": outcome.status, "submissionId": submission}
    if "issues" in included:
        result["issues"] = outcome.issues
    if "identifiers" in included:
        result["identifiers"] = [
            {"marketplaceId": state.marketplace_id, "asin": listing.external_id}
        ]
    return ok(result, state, "patchListingsItem")


def add_routes(app: web.Application) -> None:
    """Register the Listings Items routes."""
    base = "/listings/2021-08-01/items/{sellerId}"
    app.router.add_get(base, search_listings_items)
    app.router.add_get(base + "/{sku}", get_listings_item)
    app.router.add_patch(base + "/{sku}", patch_listings_item)
