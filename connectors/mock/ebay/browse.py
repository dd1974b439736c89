"""Browse API ``item_summary/search``: competitors' offers (which react to our price on every
search, as ``connectors/mock/market.py`` models them) plus our own listing."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from connectors.mock.ebay.const import API_SCOPE, BROWSE_API
from connectors.mock.ebay.gateway import amount, answer, ebay_api, page, refuse
from connectors.mock.ebay.state import APPLICATION, EbayMockState, stable_digits
from connectors.mock.market import react

ROUTES = web.RouteTableDef()
MAX_BROWSE_LIMIT = 200
MAX_BROWSE_RESULTS = 10_000
_FILTER_SPLIT = re.compile(r",(?![^\[{]*[\]}])")  # commas outside [..] and {..}


def _bad(message: str, error_id: int = 12002) -> Exception:
    # The 12xxx ids are **unconfirmed** (12001 seen in 3p fixtures).
    return refuse(BROWSE_API, error_id, message)


def parse_filter(raw: str) -> dict[str, str]:
    """``price:[10..50],priceCurrency:USD`` → ``{"price": "[10..50]", ...}``."""
    out: dict[str, str] = {}
    for part in _FILTER_SPLIT.split(raw):
        name, sep, value = part.strip().partition(":")
        if not sep or not name:
            raise _bad(f"The filter '{part}' is invalid.")
        out[name] = value
    return out


def _set(value: str) -> set[str]:
    return {v for v in value.strip("{}").split("|") if v}


def _price_range(value: str) -> tuple[Decimal | None, Decimal | None]:
    inner = value.strip()
    low, sep, high = inner[1:-1].partition("..")
    try:
        if inner.startswith("[") and inner.endswith("]"):
            return Decimal(low) if low else None, Decimal(high) if sep and high else None
    except InvalidOperation:
        pass
    raise _bad("The price filter value is invalid.")


def _results(state: EbayMockState, q: str | None, gtin: str | None) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for sku, listing in sorted(state.market.listings.items()):
        item = state.items.get(sku)
        words = f"{item.title if item else ''} {sku}".lower()  # q: every word in title or SKU
        if gtin is not None and (item is None or item.gtin != gtin):
            continue
        if not all(word in words for word in (q or "").lower().split()):
            continue
        competitors = state.market.competitors.get(sku, [])
        if competitors:  # every search lets the competition move against our current price
            competitors = state.market.competitors[sku] = react(
                competitors, listing.price, state.rng
            )
        # (legacy item id, seller name, feedback %, feedback score, price, shipping)
        offers = [
            (
                stable_digits(12, "competitor", sku, c.seller_id),
                c.seller_id.lower(),
                f"{c.rating_pct if c.rating_pct is not None else 100:.1f}",
                c.rating_count or 0,
                c.price,
                c.shipping,
            )
            for c in competitors
        ]
        live = state.published(sku)
        if live and listing.quantity > 0:  # an out-of-stock listing is not found by buyers
            seller = (state.seller_username, state.seller_feedback_pct, state.seller_feedback_score)
            offers.append((live[0].listing_id, *seller, listing.price, Decimal(0)))
        found += [
            {
                "itemId": f"v1|{legacy_id}|0",
                "legacyItemId": legacy_id,
                "title": item.title if item else sku,
                "price": amount(price, listing.currency),
                "seller": {"username": name, "feedbackPercentage": pct, "feedbackScore": score},
                "shippingOptions": [
                    {"shippingCostType": "FIXED", "shippingCost": amount(ship, listing.currency)}
                ],
                "condition": "New",
                "conditionId": "1000",
                "buyingOptions": ["FIXED_PRICE"],
                "itemWebUrl": f"https://www.ebay.com/itm/{legacy_id}",
            }
            for legacy_id, name, pct, score, price, ship in offers
        ]
    return found


def _total(summary: dict[str, Any]) -> Decimal:
    shipping = summary["shippingOptions"][0]["shippingCost"]["value"]
    return Decimal(summary["price"]["value"]) + Decimal(shipping)


def _filtered(found: list[dict[str, Any]], filters: dict[str, str]) -> list[dict[str, Any]]:
    if "price" in filters:
        if "priceCurrency" not in filters:
            raise _bad("The price filter needs a priceCurrency filter.")
        low, high = _price_range(filters["price"])
        found = [
            s
            for s in found
            if s["price"]["currency"] == filters["priceCurrency"]
            and (low is None or Decimal(s["price"]["value"]) >= low)
            and (high is None or Decimal(s["price"]["value"]) <= high)
        ]
    if "conditionIds" in filters:
        found = [s for s in found if s["conditionId"] in _set(filters["conditionIds"])]
    if "buyingOptions" in filters:
        wanted = _set(filters["buyingOptions"])
        found = [s for s in found if wanted & set(s["buyingOptions"])]
    return found


def _int_param(request: web.Request, name: str, default: int) -> int:
    try:
        return int(request.query.get(name, str(default)))
    except ValueError as exc:
        raise _bad(f"The '{name}' value is invalid.") from exc


@ROUTES.get("/buy/browse/v1/item_summary/search")
@ebay_api(BROWSE_API, APPLICATION, frozenset({API_SCOPE}))
async def search(request: web.Request, state: EbayMockState) -> web.Response:
    """``GET /buy/browse/v1/item_summary/search?q=|gtin=[&filter=][&sort=][&limit=][&offset=]``."""
    query = request.query
    q, gtin = query.get("q"), query.get("gtin")
    if not any(query.get(k) for k in ("q", "gtin", "epid", "category_ids", "charity_ids")):
        raise _bad(
            "The call must have a valid 'q', 'category_ids', 'charity_ids', 'epid' or 'gtin' "
            "query parameter.",
            12001,
        )
    limit, offset = _int_param(request, "limit", 50), _int_param(request, "offset", 0)
    if not 1 <= limit <= MAX_BROWSE_LIMIT:
        raise _bad(f"The 'limit' value must be 1 to {MAX_BROWSE_LIMIT}.")
    if not 0 <= offset < MAX_BROWSE_RESULTS or offset % limit:
        raise _bad("The 'offset' value must be 0 to 9999 and a multiple of 'limit'.")
    filters = parse_filter(query["filter"]) if query.get("filter") else {}
    # The mock has no catalog product ids: an epid or category search alone finds nothing.
    found = _filtered(_results(state, q, gtin), filters) if q or gtin else []
    if query.get("sort") in ("price", "-price"):
        found.sort(key=_total, reverse=query["sort"] == "-price")
    # "total" may be larger than what can be paged: only the first 10,000 results are.
    body = page(request, limit, offset, min(len(found), MAX_BROWSE_RESULTS))
    body.update(total=len(found), limit=limit, offset=offset)
    if chunk := found[:MAX_BROWSE_RESULTS][offset : offset + limit]:
        body["itemSummaries"] = chunk
    return answer(body)
