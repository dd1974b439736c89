"""The Walmart Marketplace (US) channel: the ``Channel`` protocol over the v3 REST API.

Writes: a small batch goes as single ``PUT /v3/price`` / ``PUT /v3/inventory`` calls; a larger
one as one price or inventory feed per 10,000 items. Feeds are scarce (10 per hour per feed type,
guide §2.6), so the budget is *planned*: each feed type has a ``TokenBucket`` (10/h, burst 10)
that is looked at before a feed is chosen. When it is empty, the first ``single_max_batch``
updates still go as single PUTs (paced by their own bucket) and the rest come back ``DEFERRED``
(``FEED_BUDGET_EXHAUSTED``): the intents stay open and a later push, after the bucket refills,
sends them. No 429 is needed to learn that the hour's feeds are spent. The buckets are in
memory, so ``open`` replays the feeds ``GET /v3/feeds`` lists for the last hour into them: a
restarted daemon (or ``run --once`` from cron) does not believe the hour's budget unspent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import structlog

from connectors.base import ChannelCapabilities, ChannelDeps
from connectors.feedresume import resume_carried
from connectors.journal import FeedEntry
from connectors.refusals import other_currency, rejected, split_refused
from connectors.retry import RetryPolicy
from connectors.walmart import events, orders, webhooks
from connectors.walmart.client import WalmartClient
from connectors.walmart.const import (
    DUPLICATE_SKU,
    FEED_BUDGET,
    FEED_ITEMS_MAX,
    GET_ITEMS,
    INVENTORY_FEED,
    INVENTORY_PATH,
    ITEMS_PATH,
    LISTING_QUALITY,
    LISTING_QUALITY_PATH,
    PRICE_FEED,
    PRICE_PATH,
    READ_ONLY,
    SINGLE_CONCURRENCY,
    UPDATE_INVENTORY,
    UPDATE_PRICE,
)
from connectors.walmart.feeds import (
    FeedRunner,
    inventory_body,
    inventory_feed,
    price_body,
    price_feed,
    replay_feed_window,
)
from connectors.walmart.listings import (
    insights_observation,
    read_items,
    read_quantities,
    read_wfs,
    to_listing,
)
from connectors.walmart.models import WalmartSettings, error_details
from connectors.wire import dumps_exact
from domain.errors import ChannelAuthError, ChannelError, RejectedUpdateError
from domain.events import ChannelEvent, MarketplaceSale, OrderEvent, WebhookDelivery
from domain.listings import ChannelListing
from domain.offers import OfferObservation
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate

log = structlog.get_logger(__name__)

Update = TypeVar("Update", PriceUpdate, StockUpdate)
OWN = "own"  # our seller id in observations when settings.seller_id is not configured


class WalmartChannel:
    """One seller account on Walmart Marketplace US."""

    def __init__(
        self,
        name: str,
        settings: WalmartSettings,
        deps: ChannelDeps,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.deps = deps
        self.client = WalmartClient(settings, deps, policy)
        self.feeds = FeedRunner(self.client)
        self.capabilities = ChannelCapabilities(
            max_price_batch=FEED_ITEMS_MAX,
            max_stock_batch=FEED_ITEMS_MAX,
            stock_is_marketplace_held=False,  # per listing: WFS items are refused one by one
            compare_and_set_stock=False,
            sends_floor_and_ceiling=False,  # PUT /v3/price has no seller min/max (§2.2)
            own_seller_id=settings.seller_id,
        )
        self._wfs: set[str] = set()  # learned from fetch_listings: Walmart-held stock

    @property
    def _seller(self) -> str:
        return self.settings.seller_id or OWN

    async def open(self) -> None:
        """Get a token, read one item (a 401/403 here means the keys lack access), and spend
        in the feed budgets the feeds Walmart lists as submitted within the last hour."""
        await self.client.call(
            GET_ITEMS, "GET", ITEMS_PATH, params={"nextCursor": "*", "limit": "1"}
        )
        kinds = {
            self.settings.price_feed_type: PRICE_FEED,
            "inventory": INVENTORY_FEED,
            "MP_INVENTORY": INVENTORY_FEED,
        }
        try:
            await replay_feed_window(self.client, kinds)
        except RejectedUpdateError as err:
            # Without the list the budgets start full; Walmart's 429 headers still correct them.
            log.warning("walmart.feed.window_unread", code=err.code, status=err.status)

    async def close(self) -> None:
        """The HTTP client belongs to the daemon; nothing else is held."""

    # -- listings ---------------------------------------------------------------------------

    async def fetch_listings(self) -> list[ChannelListing]:
        """Every item (GET /v3/items) with its quantity (/v3/inventories) and WFS membership."""
        items = await read_items(self.client)
        quantities = await read_quantities(self.client)
        wfs = await read_wfs(self.client) if self.settings.wfs else {}
        self._wfs = set(wfs)
        currency = self.settings.currency
        return [
            to_listing(item, quantities.get(item.sku), item.sku in wfs, wfs.get(item.sku), currency)
            for item in items.values()
        ]

    # -- orders (PollsOrders) ---------------------------------------------------------------

    async def fetch_orders(self, since: datetime) -> list[OrderEvent]:
        """Seller-fulfilled order lines modified since ``since`` (GET /v3/orders), shaped as
        their PO_CREATED / PO_LINE_AUTOCANCELLED webhooks' events."""
        return await orders.fetch_orders(
            self.client, since, now=self.deps.clock.now(), is_wfs=lambda sku: sku in self._wfs
        )

    async def fetch_marketplace_sales(
        self, start: datetime, end: datetime
    ) -> list[MarketplaceSale]:
        """WFS-fulfilled order lines created in ``[start, end)`` (GET /v3/orders
        ``shipNodeType=WFSFulfilled``): Walmart's stock, for the inventory pass only."""
        return await orders.fetch_wfs_sales(self.client, start, end, now=self.deps.clock.now())

    # -- competitor offers ------------------------------------------------------------------

    async def fetch_competitor_offers(self, skus: Sequence[str]) -> list[OfferObservation]:
        """Listing-quality insights per SKU: our price and Walmart's competitor price.

        Walmart has no offers listing for sellers; Buy Box competition arrives by the
        ``BUY_BOX_CHANGED`` webhook. A SKU the insights API refuses is skipped. One call per
        SKU at the insights rate: with ``competitor_insights: false`` nothing is polled and
        competition comes from the webhooks alone.
        """
        if not self.settings.competitor_insights:
            return []
        found: list[OfferObservation] = []
        for sku in dict.fromkeys(skus):
            try:
                page = await self.client.call(
                    LISTING_QUALITY,
                    "POST",
                    LISTING_QUALITY_PATH,
                    params={"limit": "1"},
                    body={"query": {"field": "sku", "value": sku}},
                )
            except RejectedUpdateError as err:
                log.warning("walmart.insights.item_failed", sku=sku, code=err.code)
                continue
            entries = page.get("payload") if isinstance(page, Mapping) else None
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, Mapping) and entry.get("sku", sku) == sku:
                    observed = insights_observation(
                        sku,
                        entry,
                        seller_id=self._seller,
                        currency=self.settings.currency,
                        now=self.deps.clock.now(),
                    )
                    if observed is not None:
                        found.append(observed)
                    break
        return found

    # -- writes -----------------------------------------------------------------------------

    async def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """BASE prices: single PUT /v3/price for a few, a price feed for many."""
        results, ready = split_refused(updates, other_currency(self.settings.currency))
        return results + await self._push(
            ready, self._put_price, PRICE_FEED, self.settings.price_feed_type, price_feed, "price"
        )

    async def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Seller-fulfilled quantities; a WFS item's stock is Walmart's (READ_ONLY)."""
        results, ready = split_refused(
            updates,
            lambda u: (
                (READ_ONLY, "WFS quantity is Walmart's to count") if u.sku in self._wfs else None
            ),
        )
        return results + await self._push(
            ready,
            self._put_inventory,
            INVENTORY_FEED,
            self.settings.inventory_feed_type,
            lambda chunk: inventory_feed(chunk, self.settings),
            "stock",
        )

    async def _push(
        self,
        updates: Sequence[Update],
        single: Callable[[Update], Awaitable[PushResult]],
        feed_op: str,
        feed_type: str,
        document: Callable[[Sequence[Update]], dict[str, Any]],
        kind: str,
    ) -> list[PushResult]:
        # One feed must not name a SKU twice (Walmart picks an arbitrary winner): the newest
        # update of a SKU is sent, earlier ones are left open for the outbox to supersede.
        last = {u.sku: n for n, u in enumerate(updates)}
        results = [
            PushResult(
                u.idempotency_key, PushStatus.DEFERRED, DUPLICATE_SKU, "a newer update follows"
            )
            for n, u in enumerate(updates)
            if last[u.sku] != n
        ]
        unique = [u for n, u in enumerate(updates) if last[u.sku] == n]
        # Updates a feed already carries (a crash cut its polling): that feed's ingestion is
        # their answer, not a second feed. What it did not apply goes out again below.
        answered, unique = await resume_carried(self.deps.feed_journal, self.feeds, unique, ())
        results.extend(answered)
        if len(unique) <= self.settings.single_max_batch:
            return results + await self._singles(unique, single)
        budget = self.client.buckets[feed_op]
        leftover: list[Update] = []
        for start in range(0, len(unique), FEED_ITEMS_MAX):
            chunk = unique[start : start + FEED_ITEMS_MAX]
            if budget.available < 1:
                leftover.extend(chunk)
                continue
            entries = [FeedEntry(u.idempotency_key, u.sku) for u in chunk]
            outcome = await self.feeds.submit(feed_op, feed_type, document(chunk), entries, kind)
            results.extend(await self.feeds.settle(outcome, [e.idempotency_key for e in entries]))
        if leftover:
            wait = budget.wait_time()
            log.warning(
                "walmart.feed.budget",
                feed_type=feed_type,
                deferred=len(leftover),
                wait_s=round(wait),
            )
            now = leftover[: self.settings.single_max_batch]
            message = f"{feed_type} feeds spent for this hour; next in {wait:.0f} s"
            results.extend(await self._singles(now, single))
            results.extend(
                PushResult(u.idempotency_key, PushStatus.DEFERRED, FEED_BUDGET, message)
                for u in leftover[len(now) :]
            )
        return results

    async def _singles(
        self, updates: Sequence[Update], single: Callable[[Update], Awaitable[PushResult]]
    ) -> list[PushResult]:
        if not updates:
            return []
        gate = asyncio.Semaphore(SINGLE_CONCURRENCY)

        async def one(update: Update) -> PushResult:
            async with gate:
                try:
                    return await single(update)
                except ChannelAuthError:
                    raise
                except RejectedUpdateError as err:
                    return rejected(update.idempotency_key, err.code or "REJECTED", str(err))
                except ChannelError as err:
                    return PushResult(update.idempotency_key, PushStatus.RETRY, err.code, str(err))

        tasks = [asyncio.ensure_future(one(u)) for u in updates]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            # Credentials refused (or a bug): stop the other calls, leave no task behind.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _put_price(self, update: PriceUpdate) -> PushResult:
        response = await self.client.call(UPDATE_PRICE, "PUT", PRICE_PATH, body=price_body(update))
        wrapped = (
            response.get("ItemPriceResponse", response) if isinstance(response, Mapping) else {}
        )
        errors = wrapped.get("errors") if isinstance(wrapped, Mapping) else None
        if errors:
            code, text = error_details(dumps_exact({"errors": errors}), 200)
            return rejected(update.idempotency_key, code, text)
        note = wrapped.get("message") if isinstance(wrapped, Mapping) else None
        # "Please allow up to five minutes for this change to be reflected": queued, not live.
        return PushResult(
            update.idempotency_key, PushStatus.ACCEPTED, None, str(note) if note else None
        )

    async def _put_inventory(self, update: StockUpdate) -> PushResult:
        params = {"sku": update.sku}
        if self.settings.ship_node:
            params["shipNode"] = self.settings.ship_node
        response = await self.client.call(
            UPDATE_INVENTORY, "PUT", INVENTORY_PATH, params=params, body=inventory_body(update)
        )
        quantity = response.get("quantity") if isinstance(response, Mapping) else None
        amount = quantity.get("amount") if isinstance(quantity, Mapping) else None
        if amount is not None and amount != update.quantity:
            message = f"Walmart echoed quantity {amount}, not {update.quantity}"
            return PushResult(update.idempotency_key, PushStatus.ACCEPTED, None, message)
        return PushResult(update.idempotency_key, PushStatus.CONFIRMED)

    # -- webhooks ---------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """HMAC (WM_SEC.SIGNATURE with a timestamp window, or the body HMAC) or Basic auth."""
        path = self.settings.webhook_path or f"/webhooks/{self.name}"
        return webhooks.verify(self.settings, headers, body, path=path, clock=self.deps.clock)

    def parse_webhook(self, delivery: WebhookDelivery) -> list[ChannelEvent]:
        """BUY_BOX_CHANGED / OFFER_UNPUBLISHED → OfferChanged; PO events → OrderEvent."""
        return events.parse(
            delivery,
            seller_id=self._seller,
            currency=self.settings.currency,
            now=self.deps.clock.now(),
            is_wfs=lambda sku: sku in self._wfs,
        )
