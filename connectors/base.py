"""The ``Channel`` protocol and the domain types that cross the connector boundary.

No marketplace JSON leaves a connector: the daemon and the strategies see only these types.
Money is ``Decimal`` quantized to the currency's minor unit; times are aware UTC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol, runtime_checkable

import httpx

from connectors.journal import FeedJournal, MemoryFeedJournal


class Clock(Protocol):
    """Source of wall time (aware UTC) and monotonic time (seconds); injected, never global."""

    def now(self) -> datetime:
        """Return the current aware UTC time."""
        ...

    def monotonic(self) -> float:
        """Return a monotonic reading in seconds, for durations and rate limiting."""
        ...


class Fulfillment(StrEnum):
    """Who ships the order: the seller (merchant) or the marketplace (FBA, WFS)."""

    MERCHANT = "merchant"
    MARKETPLACE = "marketplace"


@dataclass(frozen=True, slots=True)
class ChannelListing:
    """A listing as the marketplace reports it."""

    sku: str
    external_id: str | None
    price: Decimal | None
    currency: str
    quantity: int | None
    fulfillment: Fulfillment = Fulfillment.MERCHANT
    status: str = "active"
    external_ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompetitorOffer:
    """One offer on the same product, ours or a competitor's."""

    seller_id: str
    price: Decimal
    shipping: Decimal = Decimal("0")
    fulfillment: str = "fbm"  # fba | fbm | retail (the marketplace itself)
    rating_pct: int | None = None
    rating_count: int | None = None
    is_buy_box_winner: bool = False
    is_own: bool = False

    @property
    def landed_price(self) -> Decimal:
        """Price plus shipping: what the shopper pays and what Buy Boxes compare."""
        return self.price + self.shipping


@dataclass(frozen=True, slots=True)
class OfferObservation:
    """Competitor offers and marketplace reference prices for one listing at one time."""

    sku: str
    observed_at: datetime
    offers: tuple[CompetitorOffer, ...]
    source: str = "poll"
    buy_box_price: Decimal | None = None
    buy_box_seller: str | None = None
    reference_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class PriceUpdate:
    """Set a listing's price (with the floor and ceiling the marketplace should enforce too)."""

    sku: str
    price: Decimal
    currency: str
    idempotency_key: str
    floor: Decimal | None = None
    ceiling: Decimal | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class StockUpdate:
    """Set a listing's absolute quantity; ``expected`` is the compare-and-set prior value."""

    sku: str
    quantity: int
    idempotency_key: str
    expected: int | None = None
    external_id: str | None = None


class PushStatus(StrEnum):
    """What became of one pushed update."""

    CONFIRMED = "confirmed"  # applied (or accepted by an API whose acceptance is the effect)
    ACCEPTED = "accepted"  # queued by the marketplace; reconcile verifies it later
    REJECTED = "rejected"  # refused for this item; never retried
    RETRY = "retry"  # not applied for a transient reason; the intent stays open
    # Not sent, by the connector's choice (a revision budget, a daily quota, a feed budget, a
    # newer update for the same listing in the same push): the intent stays open and the round
    # does not count as an attempt.
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class PushResult:
    """Outcome of one update, keyed by its idempotency key."""

    idempotency_key: str
    status: PushStatus
    code: str | None = None
    message: str | None = None
    marketplace_ref: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelCapabilities:
    """What a channel can do, as data the planner reads."""

    max_price_batch: int
    max_stock_batch: int
    stock_is_marketplace_held: bool = False
    compare_and_set_stock: bool = False
    sends_floor_and_ceiling: bool = False
    # Our seller id on this marketplace: offers carrying it are ours, never competitors.
    own_seller_id: str | None = None
    # How long a write the marketplace accepted (queued) may take to show in the live listing;
    # reconcile calls it not applied only after this. Amazon publishes no figure; Walmart asks
    # to "allow up to five minutes" for a single price and gives bulk feeds an SLA of ~15 min.
    accepted_apply_s: int = 900


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """A verified webhook, ready to be stored in the inbox."""

    dedupe_key: str
    topic: str
    payload: str


@dataclass(frozen=True, slots=True)
class OfferChanged:
    """The marketplace says the competition on a listing changed (ANY_OFFER_CHANGED,
    BUY_BOX_CHANGED...); ``observation`` carries the new offers when the notification has them."""

    sku: str
    observation: OfferObservation | None = None


class OrderStatus(StrEnum):
    """What happened to an order, as far as stock is concerned."""

    PLACED = "placed"  # units leave available stock
    CANCELLED = "cancelled"  # the whole order is void: its units come back


@dataclass(frozen=True, slots=True)
class OrderLine:
    """Units of one seller SKU in an order."""

    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """An order placed or cancelled on a channel (orders/create, ORDER_CHANGE, ...)."""

    order_id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class QuantityObserved:
    """The channel reports a listing's live quantity (inventory_levels/update, ...), which may
    be the echo of our own write or a change made outside repricerd."""

    sku: str
    quantity: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OrderNotice:
    """A notification that names an order without the lines stock needs (eBay's
    ORDER_CONFIRMATION carries only the order id): the channel's ``resolve_events`` reads the
    order and replaces the notice with its ``OrderEvent``. ``status`` is what the notification
    says (None: the order read decides)."""

    order_id: str
    updated_at: datetime
    status: OrderStatus | None = None


# Everything a webhook can tell the daemon.
ChannelEvent = OfferChanged | OrderEvent | QuantityObserved | OrderNotice


@dataclass(frozen=True, slots=True)
class Spend:
    """Add ``n`` to one daily counter, refused if the count would pass ``cap`` (None: no cap)."""

    key: str
    n: int = 1
    cap: int | None = None


class DailyLedger(Protocol):
    """Counters per (channel, key, day) that outlive a process: what a marketplace limits per
    day (eBay's revisions per listing, its calls per API family) must be counted where every
    run and every replica sees it. The daemon keeps them in its database; ``MemoryLedger`` is
    the default for tests and tools."""

    async def counts(self, channel: str, day: date, keys: Sequence[str]) -> dict[str, int]:
        """The count of each key on ``day`` (0 when nothing was spent)."""
        ...

    async def spend(self, channel: str, day: date, spends: Sequence[Spend]) -> list[bool]:
        """Apply ``spends`` in order, each atomically (check and add in one step, so two
        replicas cannot both take the last unit); True for each one applied."""
        ...

    async def raise_to(self, channel: str, day: date, key: str, count: int) -> None:
        """Make the key's count on ``day`` at least ``count`` (the marketplace says it is spent)."""
        ...


class MemoryLedger:
    """A ``DailyLedger`` in this process's memory (tests, tools, a single short run)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, date, str], int] = {}

    async def counts(self, channel: str, day: date, keys: Sequence[str]) -> dict[str, int]:
        """The count of each key on ``day``."""
        return {key: self._counts.get((channel, day, key), 0) for key in keys}

    async def spend(self, channel: str, day: date, spends: Sequence[Spend]) -> list[bool]:
        """Apply each spend unless it passes its cap (no await inside: atomic in asyncio)."""
        done = []
        for item in spends:
            slot = (channel, day, item.key)
            total = self._counts.get(slot, 0) + item.n
            ok = item.cap is None or total <= item.cap
            if ok:
                self._counts[slot] = total
            done.append(ok)
        return done

    async def raise_to(self, channel: str, day: date, key: str, count: int) -> None:
        """Make the key's count at least ``count``."""
        slot = (channel, day, key)
        self._counts[slot] = max(self._counts.get(slot, 0), count)


@dataclass(frozen=True, slots=True)
class ChannelDeps:
    """Resources the daemon owns and injects into every channel."""

    http: httpx.AsyncClient
    clock: Clock
    # How a connector waits (backoff, rate limits); tests inject one that advances a ManualClock.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # Where feed ids are recorded with the updates they carry, so a restart resumes a feed
    # instead of creating it again (the daemon's is a database table).
    feed_journal: FeedJournal = field(default_factory=MemoryFeedJournal)
    # Daily counters shared across runs and replicas (the daemon's database in production).
    ledger: DailyLedger = field(default_factory=MemoryLedger)


class Channel(Protocol):
    """A marketplace account, as the daemon sees it."""

    name: str
    capabilities: ChannelCapabilities

    async def open(self) -> None:
        """Authenticate and check the account answers (raises ``ChannelAuthError``)."""
        ...

    async def close(self) -> None:
        """Release connections and background work."""
        ...

    async def fetch_listings(self) -> list[ChannelListing]:
        """Discover every listing of the account with its live price and quantity."""
        ...

    async def fetch_competitor_offers(self, skus: Sequence[str]) -> list[OfferObservation]:
        """Read competitor offers for these SKUs (batched inside the connector)."""
        ...

    async def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Send price changes; one result per update, in any order."""
        ...

    async def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Send absolute quantities; one result per update, in any order."""
        ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Check the signature over the raw body and extract the dedupe key and topic.

        Raises ``WebhookAuthError`` for a missing or wrong signature.
        """
        ...

    def parse_webhook(self, delivery: WebhookDelivery) -> list[ChannelEvent]:
        """Turn a stored delivery into domain events ([] for topics the daemon ignores).

        Raises ``ValueError`` for a payload that does not parse.
        """
        ...


@runtime_checkable
class AnswersChallenge(Protocol):
    """A channel whose marketplace validates the webhook endpoint with a GET challenge (eBay)."""

    def answer_challenge(self, challenge_code: str) -> dict[str, str]:
        """The JSON body that proves we own the endpoint."""
        ...


@runtime_checkable
class PreparesWebhook(Protocol):
    """A channel that must fetch something before it can verify a delivery (eBay's public key,
    by the key id in the signature header); the server awaits this before ``verify_webhook``."""

    async def prepare_webhook(self, headers: Mapping[str, str]) -> None:
        """Make ``verify_webhook`` possible for a delivery with these headers."""
        ...


@runtime_checkable
class ResolvesEvents(Protocol):
    """A channel whose notifications may name an order without its lines (``OrderNotice``).

    The inbox worker calls ``resolve_events`` after ``parse_webhook`` and before it applies the
    events, never the webhook route (which answers at once). Channels without it pass their
    events on unchanged (and must not emit notices: the inbox marks such a delivery invalid).
    """

    async def resolve_events(self, events: Sequence[ChannelEvent]) -> list[ChannelEvent]:
        """``events`` with every ``OrderNotice`` replaced by what the marketplace says of that
        order (nothing for an order with no line of ours), the other events unchanged.

        Raises ``TransientChannelError`` / ``ChannelAuthError`` (after the connector's retries)
        when the marketplace cannot answer now: the delivery stays unprocessed and is retried;
        ``RejectedUpdateError`` when it never will (an unknown order, a missing scope).
        """
        ...


@runtime_checkable
class PollsOrders(Protocol):
    """A channel that can list its orders: the fallback for order webhooks that never came."""

    async def fetch_orders(self, since: datetime) -> list[OrderEvent]:
        """Orders placed or cancelled since ``since``, oldest first, as the marketplace reports
        them; the daemon applies them idempotently by order id and SKU."""
        ...
