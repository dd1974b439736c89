"""Sell Inventory API reads and writes: listing discovery and ``bulkUpdatePriceQuantity``.

Discovery pages ``GET /inventory_item`` (``limit``/``offset``) and asks ``GET /offer?sku=`` for
each SKU's offer on our marketplace. The ``next`` link's ``offset`` is followed as given, so a
record offset and the OAS's page index ("the first page … 0, the second page … 1") both work;
without ``next`` the OAS says there is nothing more.

Writes go in ``bulkUpdatePriceQuantity`` calls of at most 25 requests. A price is
``offers[].price {value: "29.99", currency}`` (no ``sku``: the OAS wants it only with a
ship-to-home quantity); a quantity is written twice, as the item's
``shipToLocationAvailability.quantity`` and the offer's ``availableQuantity``, because the
listing shows the smaller of the two (guide §3.2). The answer (200, or 207 Multi-Status) has one
entry per offer and one per inventory item; an update is CONFIRMED when all its entries are,
RETRY when an entry carries a system/concurrency error or a 5xx status, DEFERRED
(``REVISION_BUDGET_EXHAUSTED``) when eBay refuses it for the listing's daily revisions
(``is_revision_limit``: errorId 25019 "Cannot revise listing", or any id whose message says the
revision limit is reached), REJECTED otherwise with eBay's own errorId and message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import structlog
from pydantic import BaseModel, ValidationError

from connectors.ebay.client import Answer, EbayClient
from connectors.ebay.const import (
    INVENTORY_ITEMS_PATH,
    INVENTORY_PAGE_SIZE,
    NO_RESULT,
    OFFERS_PATH,
    QUOTA_INVENTORY,
    RETRYABLE_ERROR_IDS,
    REVISION_BUDGET_EXHAUSTED,
    REVISION_LIMIT_ERROR_IDS,
    REVISION_LIMIT_MESSAGE,
)
from connectors.ebay.models import (
    BulkPriceQuantityResponse,
    InventoryItem,
    InventoryItemsPage,
    Offer,
    OffersPage,
    PriceQuantityResponse,
    to_money,
)
from domain.errors import RejectedUpdateError, TransientChannelError
from domain.listings import ChannelListing
from domain.writes import PushResult, PushStatus

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)

# listingStatus values of a listing we keep managing (OUT_OF_STOCK stays live at quantity 0).
_LIVE = frozenset({"ACTIVE", "OUT_OF_STOCK"})


@dataclass(slots=True)
class OfferRef:
    """What a write needs about one SKU, and the last values we know it has on eBay."""

    sku: str
    offer_id: str
    listing_id: str | None
    price: Decimal | None
    quantity: int | None
    gtin: str | None = None
    title: str | None = None

    @property
    def budget_key(self) -> str:
        """The listing whose revision budget this SKU spends (its SKU until eBay names one)."""
        return self.listing_id or f"sku:{self.sku}"


async def inventory_items(client: EbayClient) -> list[InventoryItem]:
    """Every inventory item of the seller (``getInventoryItems``, 100 a page)."""
    items: dict[str, InventoryItem] = {}
    offset = 0
    seen: set[int] = set()
    while True:
        answer = await client.call(
            "getInventoryItems",
            "GET",
            INVENTORY_ITEMS_PATH,
            family=QUOTA_INVENTORY,
            params={"limit": str(INVENTORY_PAGE_SIZE), "offset": str(offset)},
        )
        page = _parse("getInventoryItems", answer.body, InventoryItemsPage)
        for item in page.inventory_items:
            items.setdefault(item.sku, item)
        seen.add(offset)
        if not page.inventory_items:
            break
        following = _next_offset(page.next)
        if following is None:
            # The OAS returns ``next`` "only if there are additional inventory items"; a page
            # without one is the last unless it is full and ``total`` says more exist (a server
            # that sends no links): then the next page index, as the OAS defines ``offset``.
            more = len(page.inventory_items) >= INVENTORY_PAGE_SIZE and (
                page.total is not None and len(items) < page.total
            )
            if page.next is not None or not more:
                break
            following = offset + 1
        if following in seen:  # an offset that comes back would loop for ever
            raise TransientChannelError(f"getInventoryItems: offset {following} repeated")
        offset = following
    return list(items.values())


async def offer_for(client: EbayClient, sku: str) -> Offer | None:
    """The SKU's offer on our marketplace (``getOffers?sku=``), the published one first."""
    try:
        answer = await client.call(
            "getOffers",
            "GET",
            OFFERS_PATH,
            family=QUOTA_INVENTORY,
            params={"sku": sku, "marketplace_id": client.settings.marketplace_id},
        )
    except RejectedUpdateError as err:
        if err.status == 404:  # eBay answers 404 for a SKU that has no offer yet
            return None
        raise
    page = _parse("getOffers", answer.body, OffersPage)
    ours = [
        offer
        for offer in page.offers
        if offer.marketplace_id in (None, client.settings.marketplace_id)
        and (offer.sku in (None, sku))
    ]
    # A SKU may have an auction and a fixed-price offer: reprice the fixed-price one.
    ours.sort(key=lambda o: (o.status != "PUBLISHED", o.format not in (None, "FIXED_PRICE")))
    return ours[0] if ours else None


def listing_of(
    item: InventoryItem | None, sku: str, offer: Offer | None, currency: str
) -> tuple[ChannelListing, OfferRef | None]:
    """The domain listing of one SKU, and the reference writes use (None without an offer)."""
    item_qty = None
    if item and item.availability and item.availability.ship_to_location_availability:
        item_qty = item.availability.ship_to_location_availability.quantity
    product = item.product if item else None
    gtin = product.gtin() if product else None
    title = product.title if product else None
    if offer is None:
        listing = ChannelListing(
            sku=sku,
            external_id=None,
            price=None,
            currency=currency,
            quantity=item_qty,
            status="unpublished",
        )
        return listing, None
    amount = offer.pricing_summary.price if offer.pricing_summary else None
    price = to_money(amount.value) if amount and amount.currency in (None, currency) else None
    quantities = [q for q in (offer.available_quantity, item_qty) if q is not None]
    quantity = min(quantities) if quantities else None  # the listing shows the smaller one
    details = offer.listing
    listing_id = details.listing_id if details else None
    raw_status = details.listing_status if details else None
    if offer.status != "PUBLISHED" or raw_status is None:
        status = "unpublished"
    else:
        status = "active" if raw_status in _LIVE else raw_status.lower()
    external_ids = {"offer_id": offer.offer_id}
    if listing_id:
        external_ids["listing_id"] = listing_id
    listing = ChannelListing(
        sku=sku,
        external_id=offer.offer_id,
        price=price,
        currency=currency,
        quantity=quantity,
        status=status,
        external_ids=external_ids,
    )
    ref = OfferRef(sku, offer.offer_id, listing_id, price, quantity, gtin, title)
    return listing, ref


@dataclass(frozen=True, slots=True)
class Outcome:
    """What eBay said about one request of a bulk call."""

    result: PushResult
    revised: bool  # the listing was revised (counts against its daily budget)
    exhausted: bool = False  # eBay refused to revise the listing again today


def outcomes(answer: Answer, requests: Sequence[tuple[str, str, str | None]]) -> list[Outcome]:
    """Map a bulk answer to one outcome per (idempotency key, offer id, item SKU if sent).

    Offer entries are matched by ``offerId``; an inventory-item entry (no ``offerId``) by the
    ``sku`` of a request that set the item's quantity.
    """
    parsed = _parse("bulkUpdatePriceQuantity", answer.body, BulkPriceQuantityResponse)
    found: list[Outcome] = []
    for key, offer_id, sku in requests:
        mine = [
            entry
            for entry in parsed.responses
            if entry.offer_id == offer_id
            or (sku is not None and entry.offer_id is None and entry.sku == sku)
        ]
        found.append(_outcome(key, offer_id, mine, all_ok=answer.status == 200))
    return found


def _outcome(
    key: str, offer_id: str, entries: list[PriceQuantityResponse], *, all_ok: bool
) -> Outcome:
    if not entries:
        if all_ok:  # 200 means every request succeeded, even if eBay listed none
            return Outcome(PushResult(key, PushStatus.CONFIRMED, marketplace_ref=offer_id), True)
        return Outcome(
            PushResult(key, PushStatus.RETRY, NO_RESULT, "eBay returned no entry for the offer"),
            False,
        )
    revised = any(_ok(entry) for entry in entries)
    failed = [entry for entry in entries if not _ok(entry)]
    if not failed:
        return Outcome(PushResult(key, PushStatus.CONFIRMED, marketplace_ref=offer_id), True)
    entry = failed[0]
    error = entry.errors[0] if entry.errors else None
    code = (
        str(error.error_id) if error and error.error_id is not None else f"HTTP_{entry.status_code}"
    )
    message = (error.message or error.long_message or "") if error else ""
    transient = (error is not None and error.error_id in RETRYABLE_ERROR_IDS) or (
        entry.status_code is not None and entry.status_code >= 500
    )
    if error is not None and is_revision_limit(code, message):
        # Not a verdict on the update: the listing takes no more revisions today.
        text = f"eBay {code}: {message}" if message else f"eBay {code}"
        return Outcome(
            PushResult(key, PushStatus.DEFERRED, REVISION_BUDGET_EXHAUSTED, text), revised, True
        )
    status = PushStatus.RETRY if transient else PushStatus.REJECTED
    return Outcome(
        PushResult(key, status, code, message or f"statusCode {entry.status_code}"), revised
    )


def is_revision_limit(code: str | None, message: str) -> bool:
    """Whether eBay's refusal says the listing is past its daily revisions: a documented id
    (``REVISION_LIMIT_ERROR_IDS``) or, whatever the id (a Trading API code surfacing through the
    Inventory API, a generic 25002 "Any User error" carrying it), a message saying so."""
    if code is not None and code.isdigit() and int(code) in REVISION_LIMIT_ERROR_IDS:
        return True
    return REVISION_LIMIT_MESSAGE.search(message) is not None


def _ok(entry: PriceQuantityResponse) -> bool:
    return not entry.errors and (entry.status_code is None or 200 <= entry.status_code < 300)


def _next_offset(href: str | None) -> int | None:
    if not href:
        return None
    values = parse_qs(urlsplit(href).query).get("offset")
    if not values:
        return None
    try:
        return int(values[0])
    except ValueError:
        return None


def _parse(op: str, body: Any, model: type[M]) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise TransientChannelError(
            f"{op}: unexpected {model.__name__} shape ({err.error_count()} problems)",
            code="BAD_RESPONSE",
        ) from err
