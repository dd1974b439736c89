"""The eBay channel: the ``Channel`` protocol over the Sell Inventory, Browse and Notification
APIs, spending each listing's daily revision budget on the most valuable changes first (see
``connectors.ebay.budget`` for the policy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import structlog

from connectors.base import ChannelCapabilities, ChannelDeps
from connectors.ebay import browse, orders, webhooks
from connectors.ebay.budget import QuotaExhaustedError, RevisionBudget, relative_change, value
from connectors.ebay.client import EbayClient
from connectors.ebay.const import (
    BROWSE_SEARCH_PATH,
    BULK_UPDATE_PATH,
    INVENTORY_ITEMS_PATH,
    MAX_BULK_REQUESTS,
    NO_FULFILLMENT_SCOPE,
    OUT_OF_BOUNDS,
    QUOTA_BROWSE,
    QUOTA_EXHAUSTED,
    QUOTA_INVENTORY,
    REVISION_BUDGET,
    REVISION_BUDGET_EXHAUSTED,
    SCOPE_FULFILLMENT,
    SCOPE_FULFILLMENT_READONLY,
    UNKNOWN_SKU,
)
from connectors.ebay.inventory import (
    OfferRef,
    inventory_items,
    is_revision_limit,
    listing_of,
    offer_for,
    outcomes,
)
from connectors.ebay.models import EbaySettings, money_str
from connectors.refusals import other_currency, split_refused
from connectors.retry import RetryPolicy
from domain.errors import (
    ChannelAuthError,
    ChannelError,
    RejectedUpdateError,
    TransientChannelError,
    WebhookError,
)
from domain.events import ChannelEvent, OrderEvent, OrderNotice, WebhookDelivery
from domain.listings import ChannelListing
from domain.offers import OfferObservation
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate

log = structlog.get_logger(__name__)

# What the planner may hand us in one push: ten bulk calls, ordered by value inside.
MAX_PUSH_BATCH = 10 * MAX_BULK_REQUESTS


@dataclass(frozen=True, slots=True)
class _Write:
    """One update ready to send: its request entry, listing reference and value rank."""

    key: str
    ref: OfferRef
    request: dict[str, Any]
    price: Decimal | None
    quantity: int | None
    rank: tuple[int, Decimal]


class EbayChannel:
    """One seller account on one eBay marketplace."""

    def __init__(
        self,
        name: str,
        settings: EbaySettings,
        deps: ChannelDeps,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.deps = deps
        self.client = EbayClient(settings, deps, policy, name=name)
        self.budget = RevisionBudget(
            deps.ledger,
            name,
            deps.clock,
            limit=settings.daily_revision_limit,
            low_ratio=settings.low_budget_ratio,
            min_change=settings.coalesce_min_change,
            stock_reserve=settings.stock_reserve,
        )
        self.capabilities = ChannelCapabilities(
            max_price_batch=MAX_PUSH_BATCH,
            max_stock_batch=MAX_PUSH_BATCH,
            stock_is_marketplace_held=False,
            compare_and_set_stock=False,
            sends_floor_and_ceiling=False,  # bulkUpdatePriceQuantity has no min/max price
            own_seller_id=settings.own_seller_id,
        )
        self.refs: dict[str, OfferRef] = {}  # sku -> offer, learned from discovery and pushes
        self.keys = webhooks.PublicKeys(self.client)
        self._orders_unscoped = False  # warned once that the token cannot list orders

    async def open(self) -> None:
        """Get a user token and read one inventory page (a 401/403 here means no access)."""
        await self.client.auth.user.token()
        await self.client.call(
            "getInventoryItems",
            "GET",
            INVENTORY_ITEMS_PATH,
            family=QUOTA_INVENTORY,
            params={"limit": "1", "offset": "0"},
        )

    async def close(self) -> None:
        """Forget cached offers and keys (the HTTP client belongs to the daemon)."""
        self.refs.clear()
        self.keys.clear()

    # -- listings ---------------------------------------------------------------------------

    async def fetch_listings(self) -> list[ChannelListing]:
        """Every inventory item with its offer on our marketplace (price, quantity, ids)."""
        listings: list[ChannelListing] = []
        refs: dict[str, OfferRef] = {}
        for item in await inventory_items(self.client):
            offer = await offer_for(self.client, item.sku)
            listing, ref = listing_of(item, item.sku, offer, self.settings.currency)
            listings.append(listing)
            if ref is not None:
                refs[item.sku] = ref
        self.refs = refs
        return listings

    # -- competitor offers ------------------------------------------------------------------

    async def fetch_orders(self, since: datetime) -> list[OrderEvent]:
        """Orders modified since ``since`` (Fulfillment getOrders), mapped as a notified order
        is; [] when the user token has no fulfillment scope (see ``connectors.ebay.orders``)."""
        if not self._reads_orders():
            return []
        return await orders.fetch_orders(self.client, since, now=self.deps.clock.now())

    async def resolve_events(self, events: Sequence[ChannelEvent]) -> list[ChannelEvent]:
        """Each ORDER_CONFIRMATION notice replaced by its order, read by id (Fulfillment
        ``getOrder``, the client's retries on 5xx/429/timeouts); other events unchanged.

        Raises ``RejectedUpdateError`` when the user token has no fulfillment scope (no read
        can ever succeed: the fix is the scope) or eBay refuses the order id.
        """
        resolved: list[ChannelEvent] = []
        for event in events:
            if not isinstance(event, OrderNotice):
                resolved.append(event)
                continue
            if not self._reads_orders():
                raise RejectedUpdateError(
                    f"order {event.order_id}: reading it needs {SCOPE_FULFILLMENT} (or "
                    ".readonly) in the channel's scopes and the seller's consent",
                    code=NO_FULFILLMENT_SCOPE,
                )
            order = await orders.fetch_order(self.client, event.order_id)
            if order is not None:
                resolved.append(order)
        return resolved

    def _reads_orders(self) -> bool:
        """Whether the user token may call the Fulfillment API (warned once if not)."""
        if {SCOPE_FULFILLMENT, SCOPE_FULFILLMENT_READONLY} & set(self.settings.scopes):
            return True
        if not self._orders_unscoped:
            self._orders_unscoped = True
            log.warning("ebay.orders.no_scope", channel=self.name, scope=SCOPE_FULFILLMENT)
        return False

    async def fetch_competitor_offers(self, skus: Sequence[str]) -> list[OfferObservation]:
        """Browse searches by GTIN or title when ``browse_enabled``; [] otherwise."""
        if not self.settings.browse_enabled:
            return []
        own = frozenset(r.listing_id for r in self.refs.values() if r.listing_id)
        found: list[OfferObservation] = []
        for sku in dict.fromkeys(skus):
            ref = self.refs.get(sku)
            params = browse.search_params(self.settings, ref) if ref else None
            if params is None:
                continue
            try:
                answer = await self.client.call(
                    "search",
                    "GET",
                    BROWSE_SEARCH_PATH,
                    family=QUOTA_BROWSE,
                    principal="application",
                    params=params,
                )
            except QuotaExhaustedError:
                log.warning("ebay.browse.quota", channel=self.name, skipped=len(skus) - len(found))
                break
            except ChannelAuthError:
                raise
            except ChannelError as err:
                log.warning("ebay.browse.failed", channel=self.name, sku=sku, error=str(err))
                continue
            found.append(
                browse.observation(
                    sku,
                    answer.body,
                    settings=self.settings,
                    own_listing_ids=own,
                    observed_at=self.deps.clock.now(),
                )
            )
        return found

    # -- writes -----------------------------------------------------------------------------

    async def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """New prices through ``bulkUpdatePriceQuantity`` (offers[].price, a string value)."""
        results, ready = split_refused(updates, other_currency(self.settings.currency))
        writes: list[_Write] = []
        for update in ready:
            price = update.price.quantize(Decimal("0.01"))
            if (update.floor is not None and price < update.floor) or (
                update.ceiling is not None and price > update.ceiling
            ):
                # eBay has no min/max price to enforce them: never send a price outside them.
                results.append(
                    _result(
                        update.idempotency_key,
                        PushStatus.REJECTED,
                        OUT_OF_BOUNDS,
                        f"{price} is outside [{update.floor}, {update.ceiling}]",
                    )
                )
                continue
            ref = await self._ref(update.sku, update.external_id)
            if ref is None:
                results.append(_unknown(update.idempotency_key, update.sku))
                continue
            # No ``sku``: the OAS wants it only with shipToLocationAvailability.
            request = {
                "offers": [
                    {
                        "offerId": ref.offer_id,
                        "price": {"value": money_str(price), "currency": update.currency},
                    }
                ],
            }
            rank = value(ref.price, price, stock=False)
            writes.append(_Write(update.idempotency_key, ref, request, price, None, rank))
        return results + await self._push(writes, stock=False)

    async def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Absolute quantities: the item's ship-to-home quantity and the offer's, both set."""
        results: list[PushResult] = []
        writes: list[_Write] = []
        for update in updates:
            ref = await self._ref(update.sku, update.external_id)
            if ref is None:
                results.append(_unknown(update.idempotency_key, update.sku))
                continue
            quantity = max(0, update.quantity)
            request = {
                "sku": update.sku,
                "shipToLocationAvailability": {"quantity": quantity},
                "offers": [{"offerId": ref.offer_id, "availableQuantity": quantity}],
            }
            rank = value(ref.quantity, quantity, stock=True)
            writes.append(_Write(update.idempotency_key, ref, request, None, quantity, rank))
        return results + await self._push(writes, stock=True)

    async def _ref(self, sku: str, external_id: str | None) -> OfferRef | None:
        """The SKU's offer, from discovery or ``getOffers``. A stored offerId (``external_id``)
        is not enough: the revision budget keys on the listingId, which only eBay knows, and
        a push before discovery (intents redriven at start-up) must spend the same counter
        as the pushes after it."""
        known = self.refs.get(sku)
        if known is not None:
            return known
        offer = await offer_for(self.client, sku)
        _, found = listing_of(None, sku, offer, self.settings.currency)
        if found is None or offer is None or offer.status != "PUBLISHED":
            return None  # only published offers can be revised in bulk
        if external_id and external_id != found.offer_id:
            log.info("ebay.offer_changed", channel=self.name, sku=sku, stored=external_id)
        self.refs[sku] = found
        return found

    async def _push(self, writes: list[_Write], *, stock: bool) -> list[PushResult]:
        day = self.budget.day()  # spends and give-backs of this push stay on one eBay day
        results, ready = await self._plan(writes, stock=stock, day=day)
        # Revisions taken for ``ready`` that eBay has not (yet) been seen to apply: given back
        # at the end, whatever ends the push (a refused call, the quota, an auth error).
        unsettled = {id(w): w for w in ready}
        try:
            for start in range(0, len(ready), MAX_BULK_REQUESTS):
                chunk = ready[start : start + MAX_BULK_REQUESTS]
                sent = await self._bulk(chunk, day, unsettled)
                if sent is None:
                    # Daily quota used: the most valuable updates went first, the rest wait.
                    results += [
                        _result(w.key, PushStatus.DEFERRED, QUOTA_EXHAUSTED, "daily quota used")
                        for w in ready[start:]
                    ]
                    break
                results += sent
        finally:
            await self.budget.give_back(day, [w.ref.budget_key for w in unsettled.values()])
        return results

    async def _bulk(
        self, chunk: list[_Write], day: date, unsettled: dict[int, _Write]
    ) -> list[PushResult] | None:
        """One ``bulkUpdatePriceQuantity`` call; None if the daily quota forbids it. Writes
        whose revision eBay counted leave ``unsettled``."""

        async def unanswered() -> None:
            # eBay has no idempotency keys: an attempt whose answer was lost may have revised
            # every listing of the chunk, and its retry revises them again. Count it, so the
            # budget never undercounts what eBay counts (an undercount ends in refusals).
            await self.budget.record(day, [w.ref.budget_key for w in chunk])

        try:
            answer = await self.client.call(
                "bulkUpdatePriceQuantity",
                "POST",
                BULK_UPDATE_PATH,
                family=QUOTA_INVENTORY,
                body={"requests": [w.request for w in chunk]},
                on_unanswered=unanswered,
            )
        except QuotaExhaustedError:
            return None
        except ChannelAuthError:
            raise
        except RejectedUpdateError as err:
            if len(chunk) == 1 and is_revision_limit(err.code, str(err)):
                # The whole call refused for the revision limit: with one entry, its listing.
                [write] = chunk
                unsettled.pop(id(write))  # the day is spent: nothing to give back
                await self.budget.exhaust(day, write.ref.budget_key)
                deferred = PushStatus.DEFERRED
                return [_result(write.key, deferred, REVISION_BUDGET_EXHAUSTED, str(err))]
            return [_result(w.key, PushStatus.REJECTED, err.code, str(err)) for w in chunk]
        except TransientChannelError as err:
            code = err.code or "TRANSIENT"
            return [_result(w.key, PushStatus.RETRY, code, str(err)) for w in chunk]
        mapped = outcomes(answer, [(w.key, w.ref.offer_id, w.request.get("sku")) for w in chunk])
        results = []
        for write, outcome in zip(chunk, mapped, strict=True):
            if outcome.revised or outcome.exhausted:
                unsettled.pop(id(write))
            if outcome.exhausted:
                # eBay counted revisions we did not (another tool, the site): believe it.
                await self.budget.exhaust(day, write.ref.budget_key)
            if outcome.result.status is PushStatus.CONFIRMED:
                self._remember(write)
            results.append(outcome.result)
        return results

    async def _plan(
        self, writes: list[_Write], *, stock: bool, day: date
    ) -> tuple[list[PushResult], list[_Write]]:
        """Order by value and take what each listing's budget allows (see ``budget``)."""
        results: list[PushResult] = []
        ready: list[_Write] = []
        resets = self.budget.resets_at().isoformat()
        ordered = sorted(writes, key=lambda w: w.rank)
        used = await self.budget.usage(list({w.ref.budget_key for w in ordered}), day)
        candidates: list[_Write] = []
        for write in ordered:
            listing = write.ref.budget_key
            if not stock:
                reason = self._coalesce(write, used[listing])
                if reason is not None:
                    results.append(_result(write.key, PushStatus.DEFERRED, REVISION_BUDGET, reason))
                    continue
            candidates.append(write)
        taken = await self.budget.take(day, [(w.ref.budget_key, stock) for w in candidates])
        for write, ok in zip(candidates, taken, strict=True):
            if ok:
                ready.append(write)
                continue
            listing = write.ref.budget_key
            if stock or self.budget.cap(stock=True) <= used[listing]:
                message = (
                    f"listing {listing} used its {self.budget.limit} revisions today; "
                    f"eBay allows more after {resets}"
                )
                code = REVISION_BUDGET_EXHAUSTED
            else:
                message = self._kept_for_stock(self.budget.limit - used[listing])
                code = REVISION_BUDGET
            results.append(_result(write.key, PushStatus.DEFERRED, code, message))
        return results, ready

    def _kept_for_stock(self, left: int) -> str:
        return f"{left} revisions left today, kept for stock updates"

    def _coalesce(self, write: _Write, used: int) -> str | None:
        """Why a price move is held back on a listing low on budget (None: try to send it)."""
        left = self.budget.limit - used
        if left <= 0:
            return None  # exhausted: ``take`` refuses it with the reset time
        if used >= self.budget.cap(stock=False):
            return self._kept_for_stock(left)
        if not self.budget.is_low(used):
            return None
        assert write.price is not None
        move = relative_change(write.ref.price, write.price)
        if move < self.budget.min_change:
            return (
                f"{left} revisions left today: a {move:.2%} move is below the "
                f"{self.budget.min_change:.0%} threshold"
            )
        return None

    def _remember(self, write: _Write) -> None:
        ref = write.ref
        if write.price is not None:
            ref = replace(ref, price=write.price)
        if write.quantity is not None:
            ref = replace(ref, quantity=write.quantity)
        self.refs[ref.sku] = ref

    # -- webhooks ---------------------------------------------------------------------------

    def answer_challenge(self, challenge_code: str) -> dict[str, str]:
        """The body of the GET challenge answer: ``{"challengeResponse": <hex SHA-256>}``."""
        token, endpoint = self.settings.verification_token, self.settings.webhook_endpoint_url
        if token is None or not endpoint:
            raise WebhookError("eBay endpoint validation is not configured")
        digest = webhooks.challenge_response(challenge_code, token.get_secret_value(), endpoint)
        return {"challengeResponse": digest}

    async def prepare_webhook(self, headers: Mapping[str, str]) -> None:
        """Fetch and cache the key the delivery is signed with; the server awaits this before
        ``verify_webhook`` (which is synchronous and refuses a delivery whose key is not
        cached). Raises ``TransientChannelError`` when the Notification API cannot answer."""
        await self.keys.prepare(headers)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Check ``X-EBAY-SIGNATURE`` (ECDSA/SHA1) with the key ``prepare_webhook`` cached."""
        return webhooks.verify(headers, body, self.keys.fresh())

    def parse_webhook(self, delivery: WebhookDelivery) -> list[ChannelEvent]:
        """ORDER_CONFIRMATION → ``OrderNotice`` (its order id, resolved later); others → []."""
        return webhooks.parse(delivery, now=self.deps.clock.now())


def _result(key: str, status: PushStatus, code: str | None, message: str) -> PushResult:
    return PushResult(key, status, code=code, message=message)


def _unknown(key: str, sku: str) -> PushResult:
    return _result(
        key, PushStatus.REJECTED, UNKNOWN_SKU, f"no published eBay offer for SKU {sku!r}"
    )
