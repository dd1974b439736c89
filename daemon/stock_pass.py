"""The stock pass: publish ledger-derived quantities to channels through the write path.

One read serves every channel of a pass (listings, kits, available units, queued intents), so
an event-driven round that republishes a few SKUs on every channel reads the ledger once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, NamedTuple

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.base import Channel
from daemon.allocation import allocate
from daemon.db.models import Action, ActionKind, ActionStatus, Listing
from daemon.intents import PlannedWrite, new_idempotency_key
from daemon.reports import Skipped, StockReport
from daemon.runtime import Runtime
from daemon.settings import InventorySettings
from daemon.snapshots import SkuSelection, sku_clause
from daemon.stock import Kits, available_units, load_kits, marketplace_held

LISTINGS = Listing.__table__  # type: ignore[attr-defined]
ACTIONS = Action.__table__  # type: ignore[attr-defined]
HELD_BY_MARKETPLACE: Final = "stock is held by the marketplace"
log = structlog.get_logger("repricerd.stock_pass")


class StockListing(NamedTuple):
    """An active listing whose quantity a stock pass may publish."""

    channel: str
    sku: str
    quantity: int | None
    fulfillment: str


@dataclass
class StockView:
    """What a stock pass reads once for all its channels."""

    listings: dict[str, list[StockListing]] = field(default_factory=dict)  # by channel
    kits: Kits = field(default_factory=Kits)
    stock: dict[str, int] = field(default_factory=dict)  # sku -> available units
    held: dict[str, int] = field(default_factory=dict)  # sku -> units marketplaces hold
    waiting: dict[str, dict[str, int]] = field(default_factory=dict)  # queued stock intents


def publishes_stock(channel: Channel) -> bool:
    """False for a channel whose stock the marketplace holds (FBA/WFS-only accounts)."""
    return not channel.capabilities.stock_is_marketplace_held


async def load_stock_view(
    rt: Runtime, channels: Sequence[Channel], selection: SkuSelection
) -> StockView:
    """Read the active listings of ``channels`` in ``selection`` and the stock behind them."""
    names = [ch.name for ch in channels if publishes_stock(ch)]
    view = StockView(listings={name: [] for name in names})
    if not names:
        return view
    query = sa.select(
        LISTINGS.c.channel, LISTINGS.c.sku, LISTINGS.c.quantity, LISTINGS.c.fulfillment
    ).where(
        LISTINGS.c.channel.in_(names),
        LISTINGS.c.status == "active",
        sku_clause(LISTINGS.c.sku, selection),
    )
    inventory = rt.settings.inventory.channels
    async with rt.db.read() as conn:
        for row in (await conn.execute(query)).all():
            view.listings[row.channel].append(StockListing(*row))
        view.kits = await load_kits(conn)
        only = (
            None
            if selection is None
            else sorted({row.sku for rows in view.listings.values() for row in rows})
        )
        view.stock = await available_units(conn, view.kits, only)
        view.waiting = await _open_stock_targets(conn, names)
        if any(
            inventory.get(n) is not None and inventory[n].include_marketplace_held for n in names
        ):
            view.held = await marketplace_held(conn, only)
    return view


async def stock_channel(
    rt: Runtime, channel: Channel, pass_id: str, selection: SkuSelection
) -> StockReport | Skipped:
    """Publish ledger-derived quantities to one channel through the write path."""
    if not publishes_stock(channel):
        return Skipped(HELD_BY_MARKETPLACE)
    return await publish_stock(
        rt, channel, pass_id, await load_stock_view(rt, [channel], selection)
    )


@dataclass(frozen=True, slots=True)
class StockPlan:
    """One channel's stock intents, and what the plan left alone."""

    intents: list[PlannedWrite]
    never_counted: int  # listings whose SKU the ledger never counted: nothing published
    outdated: list[str]  # SKUs whose queued intent would now write a wrong number


def plan_stock(
    view: StockView,
    *,
    channel: str,
    pass_id: str,
    inventory: InventorySettings,
    now: datetime,
) -> StockPlan:
    """Allocate each listing's available units; a quantity that differs becomes an intent."""
    listings = view.listings.get(channel, [])
    waiting = view.waiting.get(channel, {})
    rule = inventory.channels.get(channel)
    stock = dict(view.stock)
    if rule is not None and rule.include_marketplace_held:
        for sku, held in view.held.items():
            stock[sku] = stock.get(sku, 0) + held
    intents: list[PlannedWrite] = []
    unknown, outdated = 0, []
    for row in listings:
        if row.fulfillment == "marketplace":
            continue  # FBA/WFS units are the marketplace's to count, never ours to write
        if row.sku not in stock:
            unknown += 1  # never counted: publishing 0 would delist stock we know nothing about
            continue
        target = allocate(stock[row.sku], channel, inventory)
        kit = " (kit: its scarcest component)" if row.sku in view.kits.components else ""
        if target is None or target == row.quantity:
            if row.sku in waiting and waiting[row.sku] != target:
                outdated.append(row.sku)  # a queued retry would now write a wrong number
            continue
        if waiting.get(row.sku) == target:
            # An intent for this very quantity is already queued (a retry after a stale
            # compare-and-set keeps the live value the connector re-read; a fresh intent would
            # compare against our stale listing row again and supersede it).
            continue
        detail = f"available={stock[row.sku]} buffer/share/max/last-units → {target}"
        intents.append(
            PlannedWrite(
                pass_id=pass_id,
                kind=ActionKind.STOCK,
                channel=channel,
                sku=row.sku,
                status=ActionStatus.PLANNED,
                idempotency_key=new_idempotency_key(),
                created_at=now,
                old_quantity=row.quantity,
                new_quantity=target,
                reason=f"available {stock[row.sku]}{kit} → publish {target}",
                trace=[{"step": "allocation", "verdict": "target", "detail": detail}],
                guard_verdicts=[],
            )
        )
    return StockPlan(intents, unknown, outdated)


async def publish_stock(
    rt: Runtime, channel: Channel, pass_id: str, view: StockView
) -> StockReport | Skipped:
    """Record and send one channel's quantity changes from a stock view."""
    if not publishes_stock(channel):
        return Skipped(HELD_BY_MARKETPLACE)
    plan = plan_stock(
        view,
        channel=channel.name,
        pass_id=pass_id,
        inventory=rt.settings.inventory,
        now=rt.clock.now(),
    )
    await rt.outbox.supersede_open(
        channel.name, ActionKind.STOCK, plan.outdated, before_pass=pass_id
    )
    intents, held = await _price_before_restock(rt, channel, plan.intents)
    # The intents are recorded in the transaction that marks the first batch sent.
    sent = await rt.outbox.dispatch(channel, ActionKind.STOCK, record=intents)
    return StockReport(
        listings=len(view.listings.get(channel.name, [])),
        intents=len(intents),
        restock_waits_for_price=held,
        never_counted=plan.never_counted,
        dispatch=sent,
    )


async def _price_before_restock(
    rt: Runtime, channel: Channel, intents: list[PlannedWrite]
) -> tuple[list[PlannedWrite], int]:
    """A listing at 0 goes live with its new price, never its old one: send pending prices
    first, and hold the restock of a listing whose price is still unsent (next pass retries).
    Amazon once published a 0→5 restock at the cached old price (the market guide's #4901)."""
    restocks = {i.sku for i in intents if not i.old_quantity and (i.new_quantity or 0) > 0}
    if not restocks:
        return intents, 0
    if await rt.outbox.unsent_skus(channel.name, ActionKind.PRICE, restocks):
        await rt.outbox.dispatch(channel, ActionKind.PRICE)
    waiting = await rt.outbox.unsent_skus(channel.name, ActionKind.PRICE, restocks)
    for sku in sorted(waiting):
        log.info("restock_waits_for_price", channel=channel.name, sku=sku)
    return [i for i in intents if i.sku not in waiting], len(waiting)


async def _open_stock_targets(
    conn: AsyncConnection, channels: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Quantity of each stock intent still queued (planned), newest per channel and SKU."""
    rows = await conn.execute(
        sa.select(ACTIONS.c.channel, ACTIONS.c.sku, ACTIONS.c.new_quantity)
        .where(
            ACTIONS.c.channel.in_(list(channels)),
            ACTIONS.c.kind == ActionKind.STOCK.value,
            ACTIONS.c.status == ActionStatus.PLANNED.value,
        )
        .order_by(ACTIONS.c.id)
    )
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for row in rows:
        found[row.channel][row.sku] = row.new_quantity
    return found
