"""Listing discovery and refresh: bring ``listing`` rows in line with what a channel reports,
and verify the writes a marketplace accepted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from connectors.base import Channel
from daemon import action_status
from daemon.db.engine import Database
from daemon.db.models import Action, ActionStatus, Listing
from domain.clock import Clock
from domain.listings import ChannelListing

LISTINGS = Listing.__table__  # type: ignore[attr-defined]
ACTIONS = Action.__table__  # type: ignore[attr-defined]
CHUNK = 2000


def _with_queued(item: ChannelListing, queued: Mapping[tuple[str, str], Any]) -> ChannelListing:
    changes = {
        name: queued[item.sku, name] for name in ("price", "quantity") if (item.sku, name) in queued
    }
    return replace(item, **changes) if changes else item


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
    db: Database,
    clock: Clock,
    channel: str,
    live: Sequence[ChannelListing],
    queued: Mapping[tuple[str, str], Any] | None = None,
) -> RefreshReport:
    """Upsert the channel's live listings; report new ones and values that drifted.

    ``queued`` maps (sku, "price" | "quantity") to a value the marketplace accepted and may
    still be applying: that value is kept, not overwritten by the old live one nor called drift
    (else reconcile would send the same write a second time).
    """
    report = RefreshReport(seen=len(live))
    if queued:
        live = [_with_queued(item, queued) for item in live]
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


async def verify_accepted(
    db: Database,
    clock: Clock,
    channel: Channel,
    live: Mapping[str, ChannelListing],
    fence: sa.ColumnElement[bool] | None = None,
) -> tuple[dict[str, int], dict[tuple[str, str], Any]]:
    """Confirm writes a marketplace accepted (queued) once the live value shows them; one not
    live within the channel's ``accepted_apply_s`` of sending was not applied. Also returns
    the values still queued, by (sku, kind field). ``fence``: the channel's lease, if any."""
    now = clock.now()
    due = now - timedelta(seconds=channel.capabilities.accepted_apply_s)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    ACTIONS.c.id,
                    ACTIONS.c.sku,
                    ACTIONS.c.kind,
                    ACTIONS.c.new_price,
                    ACTIONS.c.new_quantity,
                    ACTIONS.c.sent_at,
                )
                .where(
                    ACTIONS.c.channel == channel.name,
                    ACTIONS.c.status == ActionStatus.SENT.value,
                    ACTIONS.c.response_code == action_status.ACCEPTED,
                )
                .order_by(ACTIONS.c.id)  # the newest queued value of a listing wins
            )
        ).all()
    confirmed: list[int] = []
    failed: list[int] = []
    queued: dict[tuple[str, str], Any] = {}
    for row in rows:
        item = live.get(row.sku)
        value = None if item is None else (item.price if row.kind == "price" else item.quantity)
        wanted = row.new_price if row.kind == "price" else row.new_quantity
        if value == wanted:
            confirmed.append(row.id)
        elif row.sent_at is not None and row.sent_at > due:
            # Queued at the marketplace, not live yet: look again at the next reconcile.
            queued[row.sku, "price" if row.kind == "price" else "quantity"] = wanted
        else:
            failed.append(row.id)
    if confirmed or failed:
        async with db.write() as conn:
            await action_status.settle_accepted(
                conn, live=confirmed, not_live=failed, now=now, fence=fence
            )
    counts = {"confirmed": len(confirmed), "pending": len(queued), "not_applied": len(failed)}
    return counts, queued
