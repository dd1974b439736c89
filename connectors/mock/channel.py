"""The in-memory mock channel: the ``Channel`` protocol over a simulated market, no network."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import ChannelCapabilities, ChannelDeps
from connectors.mock.const import (
    EVENT_ID_HEADER,
    OFFER_CHANGED_TOPIC,
    ORDER_TOPIC,
    OWN_SELLER_ID,
    QUANTITY_TOPIC,
    SIGNATURE_HEADER,
    TOPIC_HEADER,
)
from connectors.mock.market import MockMarket, react, seed_market
from connectors.mock.models import MockSettings
from domain.errors import TransientChannelError, WebhookAuthError, WebhookError
from domain.events import (
    ChannelEvent,
    OfferChanged,
    OrderEvent,
    OrderLine,
    OrderStatus,
    QuantityObserved,
    WebhookDelivery,
)
from domain.listings import ChannelListing
from domain.offers import CompetitorOffer, OfferObservation
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate


class MockChannel:
    """A marketplace account simulated in memory (demo config and daemon tests)."""

    def __init__(
        self, name: str, settings: MockSettings, deps: ChannelDeps, market: MockMarket | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self.deps = deps
        self.capabilities = ChannelCapabilities(
            max_price_batch=settings.max_batch,
            max_stock_batch=settings.max_batch,
            stock_is_marketplace_held=settings.marketplace_held_stock,
            compare_and_set_stock=False,
            sends_floor_and_ceiling=True,
            own_seller_id=OWN_SELLER_ID,
        )
        self._rng = random.Random(f"{settings.seed}:{name}")
        self._answer = PushStatus.ACCEPTED if settings.accept_writes else PushStatus.CONFIRMED
        self.market = market or seed_market(
            channel=name,
            catalog=settings.seed_catalog,
            currency=settings.currency,
            competitors=settings.competitors,
            rng=self._rng,
        )

    async def open(self) -> None:
        """Nothing to authenticate against."""

    async def close(self) -> None:
        """Nothing to release."""

    async def fetch_listings(self) -> list[ChannelListing]:
        """Return every simulated listing with its live price and quantity."""
        self._maybe_fail("fetch_listings")
        return [ChannelListing(**vars(item)) for item in self.market.listings.values()]

    async def fetch_competitor_offers(self, skus: Sequence[str]) -> list[OfferObservation]:
        """Return the competitors (who have drifted since the last look) plus our own offer."""
        self._maybe_fail("fetch_competitor_offers")
        now = self.deps.clock.now()
        observations = []
        for sku in skus:
            item = self.market.listings.get(sku)
            if item is None:
                continue
            offers = react(self.market.competitors.get(sku, []), item.price, self._rng)
            self.market.competitors[sku] = offers
            ours = CompetitorOffer(seller_id=OWN_SELLER_ID, price=item.price, is_own=True)
            everyone = [*offers, ours]
            winner = min(everyone, key=lambda offer: offer.landed_price)
            observations.append(
                OfferObservation(
                    sku=sku,
                    observed_at=now,
                    offers=tuple(everyone),
                    source="poll",
                    buy_box_price=winner.landed_price,
                    buy_box_seller=winner.seller_id,
                )
            )
        return observations

    async def push_prices(self, updates: Sequence[PriceUpdate]) -> list[PushResult]:
        """Apply prices; a repeated idempotency key is acknowledged but not re-applied."""
        self._maybe_fail("push_prices")
        return [
            self._push(u, "price", u.price, u.floor is not None and u.price < u.floor)
            for u in updates
        ]

    async def push_stock(self, updates: Sequence[StockUpdate]) -> list[PushResult]:
        """Apply absolute quantities once per idempotency key."""
        self._maybe_fail("push_stock")
        return [self._push(u, "quantity", u.quantity) for u in updates]

    def _push(
        self,
        update: PriceUpdate | StockUpdate,
        field: str,
        value: object,
        below_floor: bool = False,
    ) -> PushResult:
        """One write of ``field`` (``price`` or ``quantity``): refused, or applied once per key."""
        key, item = update.idempotency_key, self.market.listings.get(update.sku)
        if item is None:
            return _rejected(key, "NOT_FOUND", f"no listing {update.sku}")
        if below_floor:
            return _rejected(key, "BELOW_MINIMUM", "price below floor")
        if field == "quantity" and self.capabilities.stock_is_marketplace_held:
            return _rejected(key, "READ_ONLY", "stock is marketplace-held")
        if self.market.apply_once(key) and not self._dropped():
            setattr(item, field, value)
        return PushResult(key, self._answer)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """Check ``X-Mock-Signature`` (hex HMAC-SHA256 of the raw body)."""
        secret = self.settings.webhook_secret
        given = headers.get(SIGNATURE_HEADER, "")
        if secret is None or not given:
            raise WebhookAuthError("missing signature")
        expected = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
        # Compare bytes: a non-ASCII header must be a mismatch, not a TypeError.
        if not hmac.compare_digest(
            expected.encode(), given.strip().lower().encode("utf-8", "replace")
        ):
            raise WebhookAuthError("signature mismatch")
        try:
            payload = body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise WebhookError("body is not UTF-8") from err
        event_id = headers.get(EVENT_ID_HEADER) or hashlib.sha256(body).hexdigest()
        return WebhookDelivery(
            dedupe_key=event_id, topic=headers.get(TOPIC_HEADER, "unknown"), payload=payload
        )

    def parse_webhook(self, delivery: WebhookDelivery) -> list[ChannelEvent]:
        """``offer_changed``, ``order`` and ``quantity`` (see const.py); other topics: none."""
        if delivery.topic == ORDER_TOPIC:
            return [_order(json.loads(delivery.payload))]
        if delivery.topic == QUANTITY_TOPIC:
            body = json.loads(delivery.payload)
            return [
                QuantityObserved(
                    sku=str(body["sku"]),
                    quantity=int(body["quantity"]),
                    updated_at=_aware(body["updated_at"]),
                )
            ]
        if delivery.topic != OFFER_CHANGED_TOPIC:
            return []
        body = json.loads(delivery.payload)
        skus = body.get("skus") or [body.get("sku")]
        if not isinstance(skus, list) or not all(isinstance(s, str) and s for s in skus):
            raise ValueError("offer_changed needs 'sku' or 'skus' (non-empty strings)")
        return [OfferChanged(sku) for sku in skus]

    def _maybe_fail(self, operation: str) -> None:
        if self.settings.fail_rate and self._rng.random() < self.settings.fail_rate:
            raise TransientChannelError(f"mock {operation}: 503 Service Unavailable", status=503)

    def _dropped(self) -> bool:
        return bool(self.settings.drop_rate) and self._rng.random() < self.settings.drop_rate


def _order(body: dict[str, Any]) -> OrderEvent:
    lines = tuple(OrderLine(str(line["sku"]), int(line["quantity"])) for line in body["lines"])
    return OrderEvent(
        order_id=str(body["order_id"]),
        status=OrderStatus(body.get("status", "placed")),
        lines=lines,
        updated_at=_aware(body["updated_at"]),
    )


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a UTC offset: {text!r}")
    return moment.astimezone(UTC)


def _rejected(key: str, code: str, message: str) -> PushResult:
    return PushResult(key, PushStatus.REJECTED, code=code, message=message)
