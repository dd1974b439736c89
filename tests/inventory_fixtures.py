"""A small inventory history written straight into the tables: products, ledger events and
marketplace-held listings, at chosen days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from daemon.db.engine import Database
from daemon.db.models import Listing, Product, StockEvent

PRODUCTS = Product.__table__  # type: ignore[attr-defined]
EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(day: date, hour: int = 12) -> datetime:
    """Noon (or ``hour``) UTC of ``day``."""
    return datetime.combine(day, time(hour), tzinfo=UTC)


async def product(db: Database, sku: str, **terms: Any) -> None:
    """One catalogue product with optional supply terms."""
    row = {
        "sku": sku,
        "currency": "USD",
        "cost": Decimal("4.00"),
        "tags": [],
        "kit_components": {},
        "created_at": T0,
        "updated_at": T0,
        **terms,
    }
    async with db.write() as conn:
        await conn.execute(sa.insert(PRODUCTS), [row])


class Ledger:
    """Writes ledger events with unique references."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.n = 0

    async def add(self, sku: str, kind: str, delta: int, when: datetime, **extra: Any) -> None:
        """One event."""
        self.n += 1
        row = {
            "sku": sku,
            "kind": kind,
            "delta": delta,
            "external_ref": f"test:{self.n}",
            "occurred_at": when,
            "recorded_at": when,
            **extra,
        }
        async with self.db.write() as conn:
            await conn.execute(sa.insert(EVENTS), [row])

    async def daily_sales(self, sku: str, start: date, days: int, units: int) -> None:
        """``units`` sold on each of ``days`` days from ``start``, in one transaction."""
        rows = []
        for offset in range(days):
            self.n += 1
            when = at(start + timedelta(days=offset))
            rows.append(
                {
                    "sku": sku,
                    "kind": "order",
                    "delta": -units,
                    "external_ref": f"test:{self.n}",
                    "occurred_at": when,
                    "recorded_at": when,
                }
            )
        async with self.db.write() as conn:
            await conn.execute(sa.insert(EVENTS), rows)


async def held(db: Database, channel: str, sku: str, quantity: int, status: str = "active") -> None:
    """A marketplace-fulfilled listing holding ``quantity`` units (insert or update)."""
    async with db.write() as conn:
        updated = await conn.execute(
            sa.update(LISTINGS)
            .where(LISTINGS.c.channel == channel, LISTINGS.c.sku == sku)
            .values(quantity=quantity, status=status)
        )
        if updated.rowcount == 0:
            await conn.execute(
                sa.insert(LISTINGS),
                [
                    {
                        "channel": channel,
                        "sku": sku,
                        "external_ids": {},
                        "fulfillment": "marketplace",
                        "currency": "USD",
                        "price": Decimal("20.00"),
                        "quantity": quantity,
                        "status": status,
                        "discovered_at": T0,
                        "updated_at": T0,
                    }
                ],
            )
