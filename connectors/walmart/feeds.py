"""Bulk price and inventory feeds: submit, poll, and map per-item ingestion back to updates.

``POST /v3/feeds?feedType=price|inventory|MP_INVENTORY`` (multipart/form-data, part ``file``,
the JSON feed document) → ``{"feedId"}``; then ``GET /v3/feeds/{feedId}?includeDetails=true``
(feedId URL-escaped: ``@`` → ``%40``) until ``feedStatus`` is PROCESSED or ERROR, paging the
``itemDetails.itemIngestionStatus`` 50 at a time. Each item's ``index`` (0-based position in the
feed) or ``sku`` leads back to the update that produced it.

The feedId is written to the channel's ``FeedJournal`` with the updates it carries as soon as
Walmart returns it; a later push of those updates (the start-up re-drive after a crash) resumes
that feed (its status and per-item ingestion) instead of submitting it again. Items it did not
apply (SYSTEM_ERROR, TIMEOUT_ERROR, a failed feed) leave the journal and are sent again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import structlog

from connectors.journal import FeedEntry, JournaledFeed, record_feed
from connectors.walmart.client import WalmartClient
from connectors.walmart.const import (
    FEED_DETAIL_LIMIT,
    FEED_LIST_PAGES,
    FEED_PATH,
    FEED_STATUS,
    FEED_TERMINAL,
    FEED_WINDOW_S,
    FEEDS_PATH,
    INVENTORY_FEED_VERSION,
    LIST_FEEDS,
    MP_INVENTORY_FEED_VERSION,
    PAGE_CONCURRENCY,
    PRICE_FEED_VERSION,
    PRICE_TYPE_BASE,
    UNIT_EACH,
)
from connectors.walmart.models import WalmartSettings
from connectors.wire import dumps_exact
from domain.errors import ChannelAuthError, ChannelError, RejectedUpdateError
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate

log = structlog.get_logger(__name__)


def price_body(update: PriceUpdate) -> dict[str, Any]:
    """One ``Price`` (price.json): the BASE price as an exact JSON number."""
    return {
        "sku": update.sku,
        "pricing": [
            {
                "currentPriceType": PRICE_TYPE_BASE,
                "currentPrice": {"currency": update.currency, "amount": update.price},
            }
        ],
    }


def inventory_body(update: StockUpdate) -> dict[str, Any]:
    """One ``Inventory`` (inventory.json): an absolute quantity in EACH."""
    return {"sku": update.sku, "quantity": {"unit": UNIT_EACH, "amount": update.quantity}}


def price_feed(updates: Sequence[PriceUpdate]) -> dict[str, Any]:
    """The JSON price feed (PriceHeader 1.7)."""
    return {
        "PriceHeader": {"version": PRICE_FEED_VERSION},
        "Price": [price_body(u) for u in updates],
    }


def inventory_feed(updates: Sequence[StockUpdate], settings: WalmartSettings) -> dict[str, Any]:
    """The inventory feed: ``inventory`` v1.4, or multi-node ``MP_INVENTORY`` v1.5."""
    if settings.inventory_feed_type == "MP_INVENTORY":
        return {
            "inventoryHeader": {"version": MP_INVENTORY_FEED_VERSION},
            "inventory": [
                {
                    "sku": u.sku,
                    "shipNodes": [
                        {
                            "shipNode": settings.ship_node,
                            "quantity": {"unit": UNIT_EACH, "amount": u.quantity},
                        }
                    ],
                }
                for u in updates
            ],
        }
    return {
        "InventoryHeader": {"version": INVENTORY_FEED_VERSION},
        "Inventory": [inventory_body(u) for u in updates],
    }


@dataclass(frozen=True, slots=True)
class ItemStatus:
    """One item's ingestion: SUCCESS, DATA_ERROR, SYSTEM_ERROR, TIMEOUT_ERROR or INPROGRESS."""

    status: str
    code: str | None = None
    message: str | None = None


@dataclass(slots=True)
class FeedOutcome:
    """What became of a feed: its final status and each item's ingestion, by position."""

    status: str  # PROCESSED | ERROR | TIMEOUT | NOT_SUBMITTED
    feed_id: str | None = None
    items: dict[int, ItemStatus] = field(default_factory=dict)
    feed_error: ItemStatus | None = None  # feed-level ingestionErrors
    error: ChannelError | None = None  # why it was not submitted / not fully read


class FeedRunner:
    """Runs one feed end to end for one seller account."""

    def __init__(self, client: WalmartClient) -> None:
        self.client = client
        self.settings = client.settings

    async def submit(
        self,
        op: str,
        feed_type: str,
        document: Mapping[str, Any],
        entries: Sequence[FeedEntry],
        kind: str,
    ) -> FeedOutcome:
        """Upload ``document`` (the updates ``entries``, in order), journal the feed, and wait
        (up to feed_timeout_s) for per-item ingestion."""
        params = {"feedType": feed_type}
        if feed_type == "inventory" and self.settings.ship_node:
            params["shipNode"] = self.settings.ship_node
        try:
            created = await self.client.call(
                op,
                "POST",
                FEEDS_PATH,
                params=params,
                file=(f"{feed_type}.json", dumps_exact(document), "application/json"),
            )
            feed_id = created.get("feedId") if isinstance(created, Mapping) else None
            if not isinstance(feed_id, str) or not feed_id:
                raise ChannelError(f"{op}: response without feedId")
        except ChannelAuthError:
            raise
        except ChannelError as err:
            log.warning("walmart.feed.not_submitted", feed_type=feed_type, error=str(err))
            return FeedOutcome("NOT_SUBMITTED", error=err)
        await record_feed(self.client.deps.feed_journal, feed_id, None, kind, entries)
        log.info("walmart.feed.submitted", feed_type=feed_type, feed_id=feed_id, items=len(entries))
        return await self._follow(feed_id, [e.sku for e in entries], look_first=False)

    async def resume(self, feed: JournaledFeed) -> FeedOutcome:
        """Follow a feed submitted before (by an earlier process): look at it now, then poll
        until it ends or feed_timeout_s passes, and read its items."""
        log.info("walmart.feed.resumed", feed_id=feed.feed_id, status=feed.status)
        return await self._follow(feed.feed_id, [e.sku for e in feed.entries], look_first=True)

    async def settle(self, outcome: FeedOutcome, keys: Sequence[str]) -> list[PushResult]:
        """Map the outcome to a result per key (in feed order); once the feed has ended, mark
        it final in the journal without the keys that were not applied."""
        results = feed_results(keys, outcome)
        if outcome.feed_id is not None and outcome.status in FEED_TERMINAL and not outcome.error:
            unapplied = [r.idempotency_key for r in results if r.status is PushStatus.RETRY]
            await self.client.deps.feed_journal.finish(outcome.feed_id, outcome.status, unapplied)
        return results

    async def _follow(self, feed_id: str, skus: Sequence[str], *, look_first: bool) -> FeedOutcome:
        outcome = FeedOutcome("TIMEOUT", feed_id=feed_id)
        try:
            await self._wait(outcome, skus, look_first=look_first)
        except ChannelAuthError:
            raise
        except ChannelError as err:
            # The feed exists and Walmart will apply it; only our view of the result is missing.
            log.warning("walmart.feed.unread", feed_id=feed_id, error=str(err))
            outcome.error = err
        return outcome

    async def _wait(self, outcome: FeedOutcome, skus: Sequence[str], *, look_first: bool) -> None:
        clock, sleep = self.client.deps.clock, self.client.deps.sleep
        deadline = clock.monotonic() + self.settings.feed_timeout_s
        assert outcome.feed_id is not None
        wait = 0.0 if look_first else self.settings.feed_poll_interval_s
        while True:
            # Walmart never finishes a feed the moment it is created: wait first, then look. A
            # resumed feed may have ended long ago: look at once.
            await sleep(wait)
            wait = self.settings.feed_poll_interval_s
            page = await self._page(outcome.feed_id, 0)
            status = page.get("feedStatus")
            if status in FEED_TERMINAL:
                outcome.status = str(status)
                break
            if clock.monotonic() + self.settings.feed_poll_interval_s > deadline:
                log.warning("walmart.feed.timeout", feed_id=outcome.feed_id, status=status)
                return
        outcome.feed_error = _first_error(page.get("ingestionErrors"), "ERROR")
        received = page.get("itemsReceived")
        total = received if isinstance(received, int) and received >= 0 else len(skus)
        self._read(page, skus, outcome)
        pages = math.ceil(total / FEED_DETAIL_LIMIT)
        # A 10,000-item feed is 200 pages: a few in flight at once (the status bucket paces
        # them), read in any order (each item carries its index).
        gate = asyncio.Semaphore(PAGE_CONCURRENCY)
        feed_id = outcome.feed_id

        async def read(number: int) -> None:
            async with gate:
                self._read(await self._page(feed_id, number * FEED_DETAIL_LIMIT), skus, outcome)

        tasks = [asyncio.ensure_future(read(number)) for number in range(1, pages)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        log.info("walmart.feed.done", feed_id=outcome.feed_id, status=outcome.status)

    async def _page(self, feed_id: str, offset: int) -> Mapping[str, Any]:
        page = await self.client.call(
            FEED_STATUS,
            "GET",
            FEED_PATH.format(feed_id=quote(feed_id, safe="")),
            params={
                "includeDetails": "true",
                "offset": str(offset),
                "limit": str(FEED_DETAIL_LIMIT),
            },
        )
        if not isinstance(page, Mapping):
            raise ChannelError("getFeedItemStatus: response is not an object")
        return page

    @staticmethod
    def _read(page: Mapping[str, Any], skus: Sequence[str], outcome: FeedOutcome) -> None:
        details = page.get("itemDetails")
        items = details.get("itemIngestionStatus") if isinstance(details, Mapping) else None
        position_of = {sku: n for n, sku in enumerate(skus)}
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, Mapping):
                continue
            index, sku = item.get("index"), item.get("sku")
            position: int | None = None
            if (
                isinstance(index, int)
                and 0 <= index < len(skus)
                and (not isinstance(sku, str) or skus[index] == sku)
            ):
                position = index
            elif isinstance(sku, str):
                position = position_of.get(sku)
            if position is None:
                log.warning("walmart.feed.unknown_item", feed_id=outcome.feed_id, sku=sku)
                continue
            status = str(item.get("ingestionStatus") or "INPROGRESS")
            error = _first_error(item.get("ingestionErrors"), status)
            outcome.items[position] = error or ItemStatus(status)


async def replay_feed_window(client: WalmartClient, kinds: Mapping[str, str]) -> dict[str, int]:
    """Spend, in each feed bucket, the feeds Walmart lists as submitted within the last hour.

    The buckets live in memory: a restarted daemon (or ``run --once`` from cron) would believe
    the hour's 10 feeds unspent and find out by a 429. ``GET /v3/feeds`` (getAllFeedStatuses,
    newest first) gives each feed's ``feedType`` and ``feedDate`` (epoch ms); replaying them into
    a full bucket from an hour ago gives the window Walmart holds now. ``kinds`` maps a
    ``feedType`` to its bucket's operation. Returns the feeds counted per operation.
    """
    now = client.deps.clock.now().timestamp()
    since = now - FEED_WINDOW_S
    stamps: dict[str, list[float]] = {op: [] for op in set(kinds.values())}
    offset = 0
    for _ in range(FEED_LIST_PAGES):
        params = {"offset": str(offset), "limit": str(FEED_DETAIL_LIMIT)}
        page = await client.call(LIST_FEEDS, "GET", FEEDS_PATH, params=params)
        results = page.get("results") if isinstance(page, Mapping) else None
        records = results.get("feed") if isinstance(results, Mapping) else None
        records = records if isinstance(records, list) else []
        oldest = now
        for record in records:
            date = record.get("feedDate") if isinstance(record, Mapping) else None
            if not isinstance(date, int) or isinstance(date, bool):
                continue
            oldest = min(oldest, date / 1000)
            op = kinds.get(str(record.get("feedType")))
            if op is not None and date / 1000 >= since:
                stamps[op].append(date / 1000)
        offset += len(records)
        total = page.get("totalResults") if isinstance(page, Mapping) else None
        if not records or oldest < since or not isinstance(total, int) or offset >= total:
            break
    for op, times in stamps.items():
        bucket = client.buckets[op]
        rate, burst = bucket.limit.rate, float(bucket.limit.burst)
        tokens, at = burst, since
        for moment in sorted(times):
            tokens = min(burst, tokens + (moment - at) * rate) - 1
            at = moment
        tokens = min(burst, tokens + (now - at) * rate)
        if tokens < bucket.available:
            bucket.observe(tokens)
        if times:
            log.info("walmart.feed.window", operation=op, feeds=len(times), left=round(tokens, 2))
    return {op: len(times) for op, times in stamps.items()}


def _first_error(errors: Any, status: str) -> ItemStatus | None:
    listed = errors.get("ingestionError") if isinstance(errors, Mapping) else None
    if not isinstance(listed, list) or not listed or not isinstance(listed[0], Mapping):
        return None
    first = listed[0]
    messages = "; ".join(
        str(e.get("description") or e.get("code")) for e in listed if isinstance(e, Mapping)
    )
    kind = str(first.get("type") or status)
    return ItemStatus(kind if status == "ERROR" else status, str(first.get("code")), messages)


def feed_results(keys: Sequence[str], outcome: FeedOutcome) -> list[PushResult]:
    """One result per key from the feed's per-item ingestion (position n = the n-th key)."""
    ref = f"feed:{outcome.feed_id}" if outcome.feed_id else None
    if outcome.status == "NOT_SUBMITTED":
        err = outcome.error
        status = PushStatus.REJECTED if isinstance(err, RejectedUpdateError) else PushStatus.RETRY
        code = (err.code if err else None) or "FEED_NOT_SUBMITTED"
        return [PushResult(key, status, code, str(err)) for key in keys]
    if outcome.status == "TIMEOUT" or outcome.error is not None:
        # Still processing (or its status unreadable): Walmart applies what it ingests, and
        # reconcile compares the live listing with what we sent.
        message = f"feed {outcome.feed_id} not finished when read: result unknown"
        return [PushResult(key, PushStatus.ACCEPTED, None, message, ref) for key in keys]
    results = []
    for position, key in enumerate(keys):
        item = outcome.items.get(position)
        if item is None and outcome.status == "ERROR":
            # The whole feed failed: a data error in the file is final, anything else is not.
            failed = outcome.feed_error or ItemStatus("SYSTEM_ERROR", "FEED_ERROR", "feed failed")
            item = failed
        results.append(_result(key, item, ref))
    return results


def _result(key: str, item: ItemStatus | None, ref: str | None) -> PushResult:
    if item is None:
        return PushResult(key, PushStatus.ACCEPTED, None, "no per-item status in the feed", ref)
    if item.status == "SUCCESS":
        return PushResult(key, PushStatus.CONFIRMED, None, None, ref)
    if item.status == "DATA_ERROR":
        return PushResult(key, PushStatus.REJECTED, item.code or "DATA_ERROR", item.message, ref)
    if item.status in ("SYSTEM_ERROR", "TIMEOUT_ERROR"):
        return PushResult(key, PushStatus.RETRY, item.code or item.status, item.message, ref)
    return PushResult(key, PushStatus.ACCEPTED, None, f"ingestion {item.status}", ref)
