"""The simulated marketplace behind the in-memory mock channel.

It keeps listings, competitor offers that drift and react to our price, and an effect log keyed by
idempotency key, so tests can prove that a retried write is applied once.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from domain.listings import Fulfillment
from domain.offers import CompetitorOffer

CENT = Decimal("0.01")


@dataclass
class MockListing:
    """One listing held by the simulated marketplace."""

    sku: str
    external_id: str
    price: Decimal
    currency: str
    quantity: int = 0
    fulfillment: Fulfillment = Fulfillment.MERCHANT


@dataclass
class MockMarket:
    """Mutable state of one simulated marketplace account."""

    listings: dict[str, MockListing] = field(default_factory=dict)
    competitors: dict[str, list[CompetitorOffer]] = field(default_factory=dict)
    # idempotency key -> number of times a write with that key reached the marketplace
    deliveries: Counter[str] = field(default_factory=Counter)
    # idempotency key -> number of times its effect was applied (must never exceed 1)
    effects: Counter[str] = field(default_factory=Counter)
    rows: dict[str, dict[str, str]] = field(default_factory=dict)  # catalogue row of each SKU

    def apply_once(self, key: str) -> bool:
        """Count a delivery; return True if this key's effect has not been applied yet."""
        self.deliveries[key] += 1
        if self.effects[key]:
            return False
        self.effects[key] += 1
        return True


def seed_market(
    *,
    channel: str,
    catalog: Path | None,
    currency: str,
    competitors: int,
    rng: random.Random,
    stock: bool = False,
) -> MockMarket:
    """Build a market from the rows of ``catalog`` that carry an ``id:<channel>`` value; with
    ``stock``, quantities come from ``stock`` and ``fulfillment:<channel>`` = ``WFS`` or
    ``MARKETPLACE`` marks a marketplace-fulfilled listing."""
    market = MockMarket()
    if catalog is None:
        return market
    id_col, price_col = f"id:{channel}", f"price:{channel}"
    with catalog.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            sku = (row.get("sku") or "").strip()
            external_id = (row.get(id_col) or "").strip()
            if not sku or not external_id:
                continue
            price = _initial_price(row, price_col)
            listing = MockListing(sku, external_id, price, row.get("currency") or currency)
            market.listings[sku], market.rows[sku] = listing, row
            if stock and (row.get("stock") or "").strip().isdigit():
                listing.quantity = int(row["stock"])
            held = (row.get(f"fulfillment:{channel}") or "").strip().upper()
            if stock and held in ("WFS", "MARKETPLACE"):
                listing.fulfillment = Fulfillment.MARKETPLACE
            market.competitors[sku] = make_competitors(sku, price, competitors, rng)
    return market


def _initial_price(row: dict[str, str], price_col: str) -> Decimal:
    for column in (price_col, "max_price", "min_price"):
        if row.get(column):
            return Decimal(row[column]).quantize(CENT)
    if row.get("cost"):
        return (Decimal(row["cost"]) * Decimal("1.5")).quantize(CENT)
    return Decimal("19.99")


def make_competitors(
    sku: str, around: Decimal, count: int, rng: random.Random
) -> list[CompetitorOffer]:
    """Deterministic competitor offers within ±15 % of ``around``."""
    offers = []
    for index in range(count):
        factor = Decimal(str(round(rng.uniform(0.85, 1.15), 3)))
        offers.append(
            CompetitorOffer(
                seller_id=f"COMP{index + 1:02d}",
                price=(around * factor).quantize(CENT),
                shipping=Decimal("0") if rng.random() < 0.7 else Decimal("3.99"),
                fulfillment=rng.choice(("fba", "fbm", "fbm", "retail")),
                rating_pct=rng.randint(80, 100),
                rating_count=rng.randint(10, 50_000),
            )
        )
    return offers


def react(
    offers: list[CompetitorOffer], our_price: Decimal, rng: random.Random
) -> list[CompetitorOffer]:
    """Let each competitor drift a little and sometimes undercut us, never below a cent."""
    moved = []
    for offer in offers:
        price = offer.price * Decimal(str(round(rng.uniform(0.98, 1.02), 4)))
        if offer.price > our_price and rng.random() < 0.3:
            price = our_price - CENT
        moved.append(replace(offer, price=max(CENT, price.quantize(CENT))))
    return moved
