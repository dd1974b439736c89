"""Listing discovery and refresh: bring ``listing`` rows in line with what a channel reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from connectors.base import ChannelListing
from daemon.clock import Clock
from daemon.db.engine import Database
from daemon.db.models import Listing

LISTINGS = Listing.__table__  # type: ignore[attr-defined]
CHUNK = 2000


@dataclass
class Drift:
    """One listing whose live value differed from what we last knew."""

    sku: str
    field: str
    known: object
    live: object


@dataclass
class RefreshReport:
    """What a refresh found."""

    seen: int = 0
    new: int = 0
    drift: list[Drift] = field(default_factory=list)


async def refresh_listings(
    db: Database, clock: Clock, channel: str, live: Sequence[ChannelListing]
) -> RefreshReport:
    """Upsert the channel's live listings; report new ones and values that drifted."""
    report = RefreshReport(seen=len(live))
    now = clock.now()
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    LISTINGS.c.sku,
                    LISTINGS.c.price,
                    LISTINGS.c.quantity,
                    LISTINGS.c.price_changed_at,
                ).where(LISTINGS.c.channel == channel)
            )
        ).all()
    known = {row.sku: row for row in rows}
    values = []
    for item in live:
        before = known.get(item.sku)
        if before is None:
            report.new += 1
        else:
            if before.price is not None and item.price is not None and before.price != item.price:
                report.drift.append(Drift(item.sku, "price", before.price, item.price))
            if (
                before.quantity is not None
                and item.quantity is not None
                and before.quantity != item.quantity
            ):
                report.drift.append(Drift(item.sku, "quantity", before.quantity, item.quantity))
        values.append(
            {
                "channel": channel,
                "sku": item.sku,
                "external_id": item.external_id,
                "external_ids": dict(item.external_ids),
                "fulfillment": item.fulfillment.value,
                "currency": item.currency,
                "price": item.price,
                "quantity": item.quantity,
                "status": item.status,
                "discovered_at": now,
                "updated_at": now,
                "price_changed_at": _price_changed_at(before, item, now),
            }
        )
    async with db.write() as conn:
        for start in range(0, len(values), CHUNK):
            stmt = db.insert(LISTINGS)
            stmt = stmt.on_conflict_do_update(
                index_elements=["channel", "sku"],
                set_={
                    name: stmt.excluded[name]
                    for name in (
                        "external_id",
                        "external_ids",
                        "fulfillment",
                        "currency",
                        "price",
                        "quantity",
                        "status",
                        "updated_at",
                        "price_changed_at",
                    )
                },
            )
            await conn.execute(stmt, values[start : start + CHUNK])
    return report


def _price_changed_at(before: Any, item: ChannelListing, now: datetime) -> datetime | None:
    """Now if the live price differs from what we knew (or is new), else the stored time."""
    if before is None or before.price != item.price:
        return now if item.price is not None else None
    return before.price_changed_at  # type: ignore[no-any-return]
