"""The ``Channel`` protocol: what a marketplace connector offers the daemon and what the daemon
injects into it.

No marketplace JSON leaves a connector: the daemon and the strategies see only the domain types
of ``domain`` (listings, offers, writes, events), which the protocol's methods take and return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol, runtime_checkable

import httpx

from connectors.journal import FeedJournal, MemoryFeedJournal
from domain.clock import Clock
from domain.events import (
    ChannelEvent,
    MarketplaceSale,
    OrderEvent,
    WebhookDelivery,
)
from domain.listings import ChannelListing
from domain.offers import OfferObservation
from domain.writes import PriceUpdate, PushResult, StockUpdate

__all__ = [
    "AnswersChallenge",
    "Channel",
    "ChannelCapabilities",
    "ChannelDeps",
    "ChannelSettings",
    "DailyLedger",
    "MemoryLedger",
    "PollsOrders",
    "PreparesWebhook",
    "ResolvesEvents",
    "Spend",
]


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


class ChannelSettings(Protocol):
    """The YAML block of one channel as the daemon holds it: each kind's own pydantic model,
    told apart by ``kind`` (``connectors.registry`` names the model of every kind)."""

    @property
    def kind(self) -> str:
        """The connector kind, e.g. ``amazon``."""
        ...


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
class ReadsMarketplaceSales(Protocol):
    """A channel that can list the order lines the marketplace ships from its own stock."""

    async def fetch_marketplace_sales(
        self, start: datetime, end: datetime
    ) -> list[MarketplaceSale]:
        """Marketplace-fulfilled order lines created in ``[start, end)``, cancelled ones
        flagged; read only, nothing of it touches the merchant ledger."""
        ...


@runtime_checkable
class PollsOrders(Protocol):
    """A channel that can list its orders: the fallback for order webhooks that never came."""

    async def fetch_orders(self, since: datetime) -> list[OrderEvent]:
        """Orders placed or cancelled since ``since``, oldest first, as the marketplace reports
        them; the daemon applies them idempotently by order id and SKU."""
        ...
