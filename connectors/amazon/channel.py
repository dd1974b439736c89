"""The Amazon SP-API channel: the ``Channel`` protocol over Listings, Feeds and Pricing v0."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import structlog

from connectors.amazon import notifications
from connectors.amazon.client import SpApiClient
from connectors.amazon.const import (
    FEED_MESSAGES_MAX,
    ISSUE_LOCALE,
    LISTING_OFFERS_BATCH,
    LISTING_OFFERS_BATCH_PATH,
    LISTING_OFFERS_URI,
    LISTING_PATH,
    LISTINGS_INCLUDED_DATA,
    LISTINGS_PATH,
    MAX_PUSH_BATCH,
    PATCH_CONCURRENCY,
    PATCH_LISTING,
    PRICING_BATCH_MAX,
    READ_ONLY,
    SEARCH_LISTINGS,
    SEARCH_PAGE_SIZE,
    SEARCH_WINDOW_MAX,
)
from connectors.amazon.feeds import RESEND, FeedMessage, FeedSubmitter
from connectors.amazon.listings import (
    ParsedItem,
    parse_item,
    price_patches,
    stock_patches,
    submission_result,
)
from connectors.amazon.models import AmazonSettings
from connectors.amazon.offers import observation
from connectors.amazon.orders import OrderPoller
from connectors.base import ChannelCapabilities, ChannelDeps
from connectors.feedresume import resume_carried
from connectors.refusals import other_currency, rejected, split_refused
from connectors.retry import RetryPolicy
from domain.errors import ChannelAuthError, ChannelError, RejectedUpdateError
from domain.events import ChannelEvent, OrderEvent, OrderNotice, WebhookDelivery
from domain.listings import ChannelListing, Fulfillment
from domain.offers import OfferObservation
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate

log = structlog.get_logger(__name__)

Update = TypeVar("Update", PriceUpdate, StockUpdate)


class AmazonChannel:
    """One seller account on one Amazon marketplace."""

    def __init__(
        self,
        name: str,
        settings: AmazonSettings,
        deps: ChannelDeps,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.deps = deps
        self.client = SpApiClient(settings, deps, policy)
        self.feeds = FeedSubmitter(self.client)
        self.orders = OrderPoller(
            self.client, marketplace_id=settings.marketplace_id, clock=deps.clock
        )
        self.capabilities = ChannelCapabilities(
            max_price_batch=MAX_PUSH_BATCH,
            max_stock_batch=MAX_PUSH_BATCH,
            stock_is_marketplace_held=False,  # per listing: AFN listings are refused one by one
            compare_and_set_stock=False,
            sends_floor_and_ceiling=True,
            own_seller_id=settings.seller_id,
        )
        # Learned from fetch_listings: notifications name ASINs, patches want the productType,
        # and FBA (AFN) quantities are Amazon's to count, never ours to write.
        self._skus_by_asin: dict[str, list[str]] = {}
        self._product_types: dict[str, str] = {}
        self._afn: set[str] = set()

    async def open(self) -> None:
        """Get an LWA token and make one search call (a 403 here means no seller access)."""
        await self.client.auth.token()
        await self._search_page({"pageSize": "1"})

    async def close(self) -> None:
        """The HTTP client belongs to the daemon; nothing else is held."""

    # -- listings ---------------------------------------------------------------------------

    async def fetch_listings(self) -> list[ChannelListing]:
        """Every listing of the seller on this marketplace (searchListingsItems, paged)."""
        parsed: dict[str, ParsedItem] = {}
        created_after: str | None = None
        while True:
            window, last_created = await self._search_window(created_after, parsed)
            # A query pages through at most 1000 items: continue from the newest createdDate
            # seen (items are sorted by it, so nothing is skipped; repeats are deduped).
            if window < SEARCH_WINDOW_MAX or last_created is None:
                break
            if last_created == created_after:
                # More than 1000 listings share one createdDate: the API offers no finer cursor
                # (createdAfter is inclusive), so the rest of them cannot be reached this way.
                log.error("amazon.listings.window_stuck", created=created_after, seen=len(parsed))
                break
            created_after = last_created
        self._learn(parsed.values())
        return [item.listing for item in parsed.values()]

    async def _search_window(
        self, created_after: str | None, parsed: dict[str, ParsedItem]
    ) -> tuple[int, str | None]:
        params = {
            "includedData": LISTINGS_INCLUDED_DATA,
            "pageSize": str(SEARCH_PAGE_SIZE),
            "sortBy": "createdDate",
            "sortOrder": "ASC",
        }
        if created_after:
            params["createdAfter"] = created_after
        count, last_created = 0, created_after
        token: str | None = None
        while True:
            page = await self._search_page({**params, **({"pageToken": token} if token else {})})
            for raw in page.get("items") or []:
                item = parse_item(raw, self.settings) if isinstance(raw, Mapping) else None
                if item is None:
                    continue
                count += 1
                parsed[item.listing.sku] = item
                last_created = item.created or last_created
            pagination = page.get("pagination")
            token = pagination.get("nextToken") if isinstance(pagination, Mapping) else None
            if not isinstance(token, str) or not token:
                return count, last_created

    async def _search_page(self, extra: Mapping[str, str]) -> Mapping[str, Any]:
        params = {"marketplaceIds": self.settings.marketplace_id, **extra}
        page = await self.client.call(
            SEARCH_LISTINGS,
            "GET",
            LISTINGS_PATH.format(seller_id=quote(self.settings.seller_id, safe="")),
            params=params,
        )
        if not isinstance(page, Mapping):
            raise ChannelError("searchListingsItems: response is not an object")
        return page

    def _learn(self, items: Any) -> None:
        by_asin: dict[str, list[str]] = {}
        for item in items:
            sku = item.listing.sku
            if item.asin:
                by_asin.setdefault(item.asin, []).append(sku)
            if item.product_type:
                self._product_types[sku] = item.product_type
            if item.listing.fulfillment is Fulfillment.MARKETPLACE:
                self._afn.add(sku)
            else:
                self._afn.discard(sku)
        self._skus_by_asin = by_asin

    # -- competitor offers ------------------------------------------------------------------

    async def fetch_competitor_offers(self, skus: Sequence[str]) -> list[OfferObservation]:
        """Pricing v0 getListingOffersBatch, 20 SKUs a call; failed items are skipped."""
        observations: list[OfferObservation] = []
        unique = list(dict.fromkeys(skus))
        for start in range(0, len(unique), PRICING_BATCH_MAX):
            chunk = unique[start : start + PRICING_BATCH_MAX]
            body = {
                "requests": [
                    {
                        "uri": LISTING_OFFERS_URI.format(sku=quote(sku, safe="")),
                        "method": "GET",
                        "MarketplaceId": self.settings.marketplace_id,
                        "ItemCondition": "New",
                        "CustomerType": "Consumer",
                    }
                    for sku in chunk
                ]
            }
            response = await self.client.call(
                LISTING_OFFERS_BATCH, "POST", LISTING_OFFERS_BATCH_PATH, body=body
            )
            observations.extend(self._observations(chunk, response))
        return observations

    def _observations(self, chunk: list[str], response: Any) -> list[OfferObservation]:
        items = response.get("responses") if isinstance(response, Mapping) else None
        now = self.deps.clock.now()
        found = []
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, Mapping):
                continue
            sku = _response_sku(item) or (chunk[index] if index < len(chunk) else None)
            status = item.get("status")
            code = status.get("statusCode") if isinstance(status, Mapping) else None
            body = item.get("body")
            payload = body.get("payload") if isinstance(body, Mapping) else None
            if sku not in chunk or (isinstance(code, int) and code >= 400) or payload is None:
                errors = body.get("errors") if isinstance(body, Mapping) else None
                log.warning("amazon.offers.item_failed", sku=sku, status=code, errors=errors)
                continue
            found.append(
                observation(
                    sku,
                    payload,
                    seller_id=self.settings.seller_id,
                    currency=self.settings.currency,
                    observed_at=now,
                    source="poll",
                )
            )
        return found

    # -- writes -----------------------------------------------------------------------------

    async def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Price + floor/ceiling per SKU (patchListingsItem, or one feed for a large batch)."""
        results, ready = split_refused(updates, other_currency(self.settings.currency))
        return results + await self._push(ready, lambda u: price_patches(u, self.settings), "price")

    async def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Merchant-fulfilled quantities; an FBA (AFN) listing's stock is refused (READ_ONLY)."""
        results, ready = split_refused(
            updates,
            lambda u: (READ_ONLY, "FBA quantity is Amazon's") if u.sku in self._afn else None,
        )
        return results + await self._push(ready, stock_patches, "stock")

    async def _push(
        self,
        updates: Sequence[Update],
        patches: Callable[[Update], list[dict[str, Any]]],
        kind: str,
    ) -> list[PushResult]:
        if not updates:
            return []
        # Updates a feed already carries (a crash cut its polling): that feed's report is their
        # answer, not a second feed. What it did not apply goes out again below.
        answered, updates = await resume_carried(
            self.deps.feed_journal, self.feeds, updates, RESEND
        )
        if not updates:
            return answered
        if len(updates) <= self.settings.patch_max_batch:
            gate = asyncio.Semaphore(PATCH_CONCURRENCY)

            async def one(update: Update) -> PushResult:
                async with gate:
                    return await self._patch(update, patches(update))

            tasks = [asyncio.ensure_future(one(u)) for u in updates]
            try:
                return answered + list(await asyncio.gather(*tasks))
            except BaseException:
                # Credentials refused (or a bug): stop the other patches, leave no task behind.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        results = answered
        for start in range(0, len(updates), FEED_MESSAGES_MAX):
            chunk = updates[start : start + FEED_MESSAGES_MAX]
            messages = [FeedMessage(u.sku, self._product_type(u.sku), patches(u)) for u in chunk]
            keys = [u.idempotency_key for u in chunk]
            outcome = await self.feeds.submit(messages, keys, kind)
            results.extend(await self.feeds.settle(outcome, keys))
        return results

    async def _patch(self, update: PriceUpdate | StockUpdate, patches: Any) -> PushResult:
        key = update.idempotency_key
        path = LISTING_PATH.format(
            seller_id=quote(self.settings.seller_id, safe=""), sku=quote(update.sku, safe="")
        )
        body = {"productType": self._product_type(update.sku), "patches": patches}
        params = {"marketplaceIds": self.settings.marketplace_id, "issueLocale": ISSUE_LOCALE}
        try:
            response = await self.client.call(
                PATCH_LISTING, "PATCH", path, params=params, body=body
            )
        except ChannelAuthError:
            raise
        except RejectedUpdateError as err:
            return rejected(key, err.code or "REJECTED", str(err))
        except ChannelError as err:
            return PushResult(key, PushStatus.RETRY, err.code, str(err))
        return submission_result(key, response)

    def _product_type(self, sku: str) -> str:
        return self._product_types.get(sku, self.settings.product_type)

    # -- orders -----------------------------------------------------------------------------

    async def fetch_orders(self, since: datetime) -> list[OrderEvent]:
        """Merchant-fulfilled orders changed since ``since`` (getOrders + getOrderItems): the
        poll behind ORDER_CHANGE notifications that never arrived."""
        return await self.orders.fetch(since)

    async def resolve_events(self, events: Sequence[ChannelEvent]) -> list[ChannelEvent]:
        """ORDER_CHANGE notices (a notification without its items) completed with
        getOrderItems; other events unchanged."""
        return [
            await self.orders.resolve(event) if isinstance(event, OrderNotice) else event
            for event in events
        ]

    # -- webhooks ---------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Check ``X-Repricerd-Signature`` (hex HMAC-SHA256 of the raw body)."""
        return notifications.verify(self.settings.webhook_secret, headers, body)

    def parse_webhook(self, delivery: WebhookDelivery) -> list[ChannelEvent]:
        """ANY_OFFER_CHANGED and PRICING_HEALTH → ``OfferChanged`` per SKU of the ASIN;
        ORDER_CHANGE (merchant-fulfilled) → ``OrderEvent``."""
        return notifications.parse(
            delivery,
            seller_id=self.settings.seller_id,
            marketplace_id=self.settings.marketplace_id,
            currency=self.settings.currency,
            skus_for=lambda asin: list(self._skus_by_asin.get(asin, ())),
            now=self.deps.clock.now(),
        )


def _response_sku(item: Mapping[str, Any]) -> str | None:
    request = item.get("request")
    if isinstance(request, Mapping) and isinstance(request.get("SellerSKU"), str):
        return str(request["SellerSKU"])
    body = item.get("body")
    payload = body.get("payload") if isinstance(body, Mapping) else None
    if isinstance(payload, Mapping):
        identifier = payload.get("Identifier")
        if isinstance(identifier, Mapping) and isinstance(identifier.get("SellerSKU"), str):
            return str(identifier["SellerSKU"])
        if isinstance(payload.get("SKU"), str):
            return str(payload["SKU"])
    return None
