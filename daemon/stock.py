"""Stock from events: orders and cancels into the ledger, kits, and what is available to publish.

The ledger (``stock_event``) is the truth. An order consumes units as soon as it is placed (that
is when the other channels must stop showing them); a cancel gives back exactly what its order
took. Every event carries a unique external reference, so a replayed webhook applies once, and a
cancel that overtakes its order leaves a zero-unit tombstone that makes the late order a no-op.
On hand never goes below zero: an order for units we no longer have (an oversell that already
happened on the marketplace) takes what is left and records the shortfall, loudly. A line for a
SKU not in the catalogue writes nothing and is reported back (``OrderOutcome.unknown``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.db.engine import Database
from daemon.db.models import (
    Action,
    ActionKind,
    ActionStatus,
    Listing,
    Product,
    StockEvent,
    StockEventKind,
)
from daemon.ledger import on_hand
from daemon.settings import ExternalChanges
from domain.events import OrderEvent, OrderStatus, QuantityObserved

EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
PRODUCTS = Product.__table__  # type: ignore[attr-defined]
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
ACTIONS = Action.__table__  # type: ignore[attr-defined]
# A quantity report equal to a value we wrote this recently is the echo of our own write.
ECHO_WINDOW = timedelta(hours=1)
log = structlog.get_logger("repricerd.stock")


@dataclass(frozen=True)
class Kits:
    """Kit (bundle) SKUs and their components: ``{kit: {component: units per kit}}``."""

    components: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def expand(self, sku: str, quantity: int) -> dict[str, int]:
        """Units of each ledger SKU that ``quantity`` of ``sku`` consumes."""
        parts = self.components.get(sku)
        if not parts:
            return {sku: quantity}
        return {component: per_kit * quantity for component, per_kit in parts.items()}

    def affected(self, skus: Collection[str]) -> set[str]:
        """``skus`` plus every kit built from one of them (their availability moved too)."""
        moved = set(skus)
        moved.update(
            kit for kit, parts in self.components.items() if any(part in moved for part in parts)
        )
        return moved

    def ledger_skus(self, skus: Collection[str]) -> set[str]:
        """The SKUs whose ledger decides the availability of ``skus`` (components for kits)."""
        needed: set[str] = set()
        for sku in skus:
            needed.update(self.components.get(sku) or (sku,))
        return needed


async def load_kits(conn: AsyncConnection) -> Kits:
    """Every product with kit components."""
    # Most products are no kit ({}): every event-driven stock round loads the kits, and would
    # otherwise read and decode the whole product table each time.
    query = sa.select(PRODUCTS.c.sku, PRODUCTS.c.kit_components).where(
        sa.cast(PRODUCTS.c.kit_components, sa.Text) != "{}"
    )
    rows = (await conn.execute(query)).all()
    return Kits({row.sku: dict(row.kit_components) for row in rows if row.kit_components})


async def available_units(
    conn: AsyncConnection, kits: Kits, skus: Collection[str] | None = None
) -> dict[str, int]:
    """Units available per SKU; a kit has as many as its scarcest component allows.

    A SKU the ledger has never counted is absent (publishing 0 for it would delist stock we know
    nothing about); a kit is absent unless all its components were counted.
    """
    wanted = None if skus is None else kits.ledger_skus(skus)
    stock = {sku: max(0, units) for sku, units in (await on_hand(conn, wanted)).items()}
    kit_skus = kits.components if skus is None else [s for s in skus if s in kits.components]
    for kit in kit_skus:
        parts = kits.components[kit]
        if all(part in stock for part in parts):
            stock[kit] = min(stock[part] // per_kit for part, per_kit in parts.items())
    if skus is not None:
        stock = {sku: units for sku, units in stock.items() if sku in skus}
    return stock


async def marketplace_held(
    conn: AsyncConnection, skus: Collection[str] | None = None
) -> dict[str, int]:
    """Units the marketplaces hold per SKU (FBA, WFS), as their listings last reported them."""
    query = (
        sa.select(LISTINGS.c.sku, sa.func.sum(LISTINGS.c.quantity))
        .where(LISTINGS.c.fulfillment == "marketplace", LISTINGS.c.quantity > 0)
        .group_by(LISTINGS.c.sku)
    )
    if skus is not None:
        query = query.where(LISTINGS.c.sku.in_(list(skus)))
    return {sku: int(units or 0) for sku, units in (await conn.execute(query)).all()}


@dataclass
class OrderOutcome:
    """What one order event did to the ledger."""

    applied: int = 0  # ledger rows written
    duplicate: int = 0  # lines already applied (a replayed delivery)
    oversold: dict[str, int] = field(default_factory=dict)  # sku -> units sold but not held
    skus: set[str] = field(default_factory=set)  # ledger SKUs whose stock moved
    unknown: set[str] = field(default_factory=set)  # SKUs not in the catalogue (ignored)


def _ref(channel: str, action: str, order_id: str, sku: str) -> str:
    return f"{channel}:{action}:{order_id}:{sku}"


async def apply_order(
    db: Database, kits: Kits, *, channel: str, event: OrderEvent, now: datetime
) -> OrderOutcome:
    """Write an order's (or a cancel's) ledger events once each; see the module docstring."""
    async with db.write() as conn:
        return (await apply_orders(conn, db, kits, channel=channel, events=[event], now=now))[0]


async def apply_orders(
    conn: AsyncConnection,
    db: Database,
    kits: Kits,
    *,
    channel: str,
    events: Sequence[OrderEvent],
    now: datetime,
) -> list[OrderOutcome]:
    """Apply several orders and cancels, in order, inside the caller's write transaction.

    One read of the existing refs and on-hand totals and one insert for the whole batch: the
    inbox applies a batch of deliveries in one transaction instead of one per order line.
    """
    known = await _catalogued(conn, {line.sku for event in events for line in event.lines})
    lines: list[tuple[OrderEvent, str, int]] = []
    outcomes = [OrderOutcome() for _ in events]
    for event, outcome in zip(events, outcomes, strict=True):
        units: Counter[str] = Counter()
        for line in event.lines:
            if line.sku not in known:
                # Not in the catalogue: no stock of ours to take, and a ledger row would only
                # be noise (e.g. a marketplace-only product); the caller records it as ignored.
                outcome.unknown.add(line.sku)
            elif line.quantity > 0:
                units.update(kits.expand(line.sku, line.quantity))
            elif event.status is OrderStatus.CANCELLED:
                # A cancel gives back what its order took, whatever quantity it reports (Amazon
                # can report a cancelled item with Quantity 0): the line only names the SKU.
                units.update(dict.fromkeys(kits.expand(line.sku, 1), 0))
        lines += [(event, sku, quantity) for sku, quantity in sorted(units.items())]
    skus = sorted({sku for _, sku, _ in lines})
    for sku in skus:  # in one order everywhere: two batches never wait for each other's locks
        await db.serialize(conn, f"ledger:{sku}")
    refs = [
        _ref(channel, action, event.order_id, sku)
        for event, sku, _ in lines
        for action in ("order", "cancel")
    ]
    taken_by = await _taken(conn, refs)  # existing ref -> its delta
    held = await on_hand(conn, skus)  # kept current through the batch; may be negative
    rows = []
    for event, outcome in zip(events, outcomes, strict=True):
        for sku, quantity in ((s, q) for e, s, q in lines if e is event):
            row = (
                _order_row(channel, event, sku, quantity, held, taken_by, outcome)
                if event.status is OrderStatus.PLACED
                else _cancel_row(channel, event, sku, taken_by)
            )
            if row is None:
                outcome.duplicate += 1
                continue
            rows.append(row | {"recorded_at": now})
            taken_by[row["external_ref"]] = row["delta"]
            held[sku] = held.get(sku, 0) + row["delta"]
            outcome.applied += 1
            outcome.skus.add(sku)
    if rows:
        # The refs were checked under the ledger locks; the conflict clause is a second guard.
        await conn.execute(
            db.insert(EVENTS).on_conflict_do_nothing(index_elements=["external_ref"]), rows
        )
    return outcomes


def _order_row(
    channel: str,
    event: OrderEvent,
    sku: str,
    quantity: int,
    held: dict[str, int],
    taken_by: dict[str, int],
    outcome: OrderOutcome,
) -> dict[str, Any] | None:
    """The ledger row of one order line, or None if replayed or cancelled before it was seen."""
    if {_ref(channel, a, event.order_id, sku) for a in ("order", "cancel")} & taken_by.keys():
        return None
    units = max(0, held.get(sku, 0))
    taken = min(quantity, units)
    note = f"order {event.order_id}: {quantity} sold"
    if taken < quantity:
        outcome.oversold[sku] = quantity - taken
        note += f"; OVERSOLD by {quantity - taken} (only {units} held)"
        log.error(
            "oversold", channel=channel, sku=sku, order=event.order_id, short=quantity - taken
        )
    return _event_row(channel, event, sku, "order", StockEventKind.ORDER, -taken, note)


def _cancel_row(
    channel: str, event: OrderEvent, sku: str, taken_by: dict[str, int]
) -> dict[str, Any] | None:
    """The ledger row of one cancelled line, or None if that cancel was applied already."""
    if _ref(channel, "cancel", event.order_id, sku) in taken_by:
        return None
    taken = taken_by.get(_ref(channel, "order", event.order_id, sku))
    # Give back what the order took (not what it asked for: an oversold unit never came out of
    # our stock); a cancel ahead of its order is a zero tombstone.
    note = f"order {event.order_id} cancelled" + (
        "" if taken is not None else " before it was seen (tombstone)"
    )
    delta = 0 if taken is None else -int(taken)
    return _event_row(channel, event, sku, "cancel", StockEventKind.CANCEL, delta, note)


def _event_row(
    channel: str,
    event: OrderEvent,
    sku: str,
    action: str,
    kind: StockEventKind,
    delta: int,
    note: str,
) -> dict[str, Any]:
    return {
        "sku": sku,
        "kind": kind.value,
        "delta": delta,
        "external_ref": _ref(channel, action, event.order_id, sku),
        "channel": channel,
        "note": note,
        "occurred_at": event.updated_at,
    }


async def _catalogued(conn: AsyncConnection, skus: Collection[str]) -> set[str]:
    """Which of ``skus`` are products (a kit is one too)."""
    found: set[str] = set()
    wanted = sorted(skus)
    for start in range(0, len(wanted), 900):
        query = sa.select(PRODUCTS.c.sku).where(PRODUCTS.c.sku.in_(wanted[start : start + 900]))
        found.update((await conn.execute(query)).scalars())
    return found


async def _taken(conn: AsyncConnection, refs: list[str]) -> dict[str, int]:
    """The delta of each of ``refs`` already in the ledger."""
    found: dict[str, int] = {}
    for start in range(0, len(refs), 900):
        rows = await conn.execute(
            sa.select(EVENTS.c.external_ref, EVENTS.c.delta).where(
                EVENTS.c.external_ref.in_(refs[start : start + 900])
            )
        )
        found.update({ref: int(delta) for ref, delta in rows.all()})
    return found


async def observe_quantity(
    conn: AsyncConnection,
    db: Database,
    *,
    channel: str,
    event: QuantityObserved,
    policy: ExternalChanges,
    now: datetime,
) -> str:
    """Apply a channel's report of a live quantity in the caller's write transaction; return
    the outcome for the inbox row.

    ``stale``: older than the newest report applied. ``echo``: the value we published (or are
    publishing) ourselves. ``unknown``: not a listing we hold. Otherwise the change was made
    outside repricerd: under ``overwrite`` the listing records the live value, and a rise is
    written back at once (``overwrite``) while a drop waits for its order or the next stock pass
    (``lowered``); under ``adopt`` the channel's number becomes a ledger count for the SKU
    (``count`` event) that the other channels then follow (``adopted``). Adopt suits a channel
    that is the stock master; with order webhooks from the same channel a sale can be counted
    twice (once in the adopted count, once by its order).
    """
    await db.serialize(conn, f"ledger:{event.sku}")
    row = (
        await conn.execute(
            sa.select(LISTINGS.c.quantity, LISTINGS.c.quantity_seen_at).where(
                LISTINGS.c.channel == channel, LISTINGS.c.sku == event.sku
            )
        )
    ).one_or_none()
    if row is None:
        return "unknown"
    # Strictly older only: Shopify's updated_at has one-second resolution, so a sale in the
    # same second as the echo of our write must not be dropped as stale.
    if row.quantity_seen_at is not None and event.updated_at < row.quantity_seen_at:
        return "stale"
    echo = row.quantity == event.quantity or await _recently_written(
        conn, channel, event.sku, event.quantity, now
    )
    await conn.execute(
        sa.update(LISTINGS)
        .where(LISTINGS.c.channel == channel, LISTINGS.c.sku == event.sku)
        .values(quantity=event.quantity, quantity_seen_at=event.updated_at, updated_at=now)
    )
    if echo:
        return "echo"
    log.warning(
        "quantity_changed_outside",
        channel=channel,
        sku=event.sku,
        published=row.quantity,
        live=event.quantity,
        policy=policy,
    )
    if policy == "overwrite":
        # A drop is most often a sale whose order webhook is still on its way: writing the
        # old number back now would re-offer a sold unit. The order (or the next scheduled
        # stock pass) settles it; a rise is never a sale, so it is overwritten at once.
        below = row.quantity is not None and event.quantity < row.quantity
        return "lowered" if below else "overwrite"
    current = (await on_hand(conn, [event.sku])).get(event.sku, 0)
    await conn.execute(
        db.insert(EVENTS)
        .values(
            sku=event.sku,
            kind=StockEventKind.COUNT.value,
            delta=event.quantity - current,
            counted=event.quantity,
            external_ref=f"{channel}:count:{event.sku}:{event.updated_at.isoformat()}",
            channel=channel,
            note=f"adopted from {channel} (changed outside repricerd)",
            occurred_at=event.updated_at,
            recorded_at=now,
        )
        .on_conflict_do_nothing(index_elements=["external_ref"])
    )
    return "adopted"


async def _recently_written(
    conn: AsyncConnection, channel: str, sku: str, quantity: int, now: datetime
) -> bool:
    """Whether we sent (or are sending) this very quantity to the listing lately."""
    found = await conn.execute(
        sa.select(ACTIONS.c.id)
        .where(
            ACTIONS.c.channel == channel,
            ACTIONS.c.sku == sku,
            ACTIONS.c.kind == ActionKind.STOCK.value,
            ACTIONS.c.new_quantity == quantity,
            ACTIONS.c.status.in_(
                [ActionStatus.PLANNED.value, ActionStatus.SENT.value, ActionStatus.CONFIRMED.value]
            ),
            ACTIONS.c.created_at >= now - ECHO_WINDOW,
        )
        .limit(1)
    )
    return found.first() is not None
