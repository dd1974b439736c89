"""Walmart WFS pools: units sold read from WFS orders (cancelled lines left out), on hand kept
from the held quantity, a failed read falls back to the inference, the merchant ledger is never
touched, and the named pass asks each opened channel that reads them once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from structlog.testing import capture_logs

from daemon.db.engine import Database
from daemon.db.models import InventoryDay, StockEvent
from daemon.inventory_pass import aggregate
from daemon.passes import run_named_pass
from domain.clock import ManualClock
from domain.errors import TransientChannelError
from domain.events import MarketplaceSale
from tests.daemon_fixtures import make_runtime, settings
from tests.inventory_fixtures import at, held, product

DAYS = InventoryDay.__table__  # type: ignore[attr-defined]
EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
START = date(2026, 1, 1)


def _now(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC)


class Orders:
    """A fake WFS order reader: its lines, or an error; records each window asked."""

    def __init__(self, lines: Sequence[MarketplaceSale] = (), error: Exception | None = None):
        self.lines = list(lines)
        self.error = error
        self.calls: list[tuple[datetime, datetime]] = []

    async def __call__(self, start: datetime, end: datetime) -> list[MarketplaceSale]:
        self.calls.append((start, end))
        if self.error is not None:
            raise self.error
        return self.lines


async def _rows(db: Database, pool: str) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        return [
            tuple(r)
            for r in await conn.execute(
                sa.select(DAYS.c.day, DAYS.c.sold, DAYS.c.received, DAYS.c.on_hand)
                .where(DAYS.c.pool == pool)
                .order_by(DAYS.c.day)
            )
        ]


async def _ledger_rows(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(EVENTS))).scalar())


async def _two_days(db: Database, orders: Orders) -> None:
    """A first reading of 30 units on day 2, 26 held on day 3; ``orders`` read on day 3."""
    await product(db, "A")
    await held(db, "walmart", "A", 30)
    await aggregate(db, _now(START + timedelta(days=1)))
    await held(db, "walmart", "A", 26)
    await aggregate(db, _now(START + timedelta(days=2)), {"walmart": orders})


async def test_wfs_sales_are_read_exactly_and_cancelled_lines_left_out(db: Database) -> None:
    day2, day3 = START + timedelta(days=1), START + timedelta(days=2)
    orders = Orders(
        [
            MarketplaceSale("A", 1, at(day2, 23), cancelled=False),  # a day already recorded
            MarketplaceSale("A", 3, at(day3, 0), cancelled=False),
            MarketplaceSale("A", 5, at(day3, 0), cancelled=True),
            MarketplaceSale("UNKNOWN", 2, at(day3, 0), cancelled=False),
        ]
    )
    await _two_days(db, orders)
    assert await _rows(db, "walmart") == [
        (day2, 1, 31, 30),  # a first reading is a receipt: 31 came, 1 sold, 30 left
        (day3, 3, 0, 26),  # exact 3 (inference would say 4); on hand stays the held 26
    ]
    # Read once, over the overlap window up to now.
    assert orders.calls == [(datetime(2025, 12, 31, tzinfo=UTC), _now(day3))]
    # WFS units are Walmart's: nothing in the stock ledger, no merchant pool rows.
    assert await _ledger_rows(db) == 0
    assert await _rows(db, "merchant") == []
    # A re-run reads the same and changes nothing.
    before = await _rows(db, "walmart")
    await aggregate(db, _now(day3), {"walmart": orders})
    assert await _rows(db, "walmart") == before


async def test_a_day_with_wfs_sales_and_an_unchanged_quantity_gets_its_row(db: Database) -> None:
    """Sold and received in the same day (a restock): the held quantity did not move, so the
    inference wrote nothing; the orders still give the day its sales."""
    await product(db, "A")
    await held(db, "walmart", "A", 30)
    await aggregate(db, _now(START))
    day2 = START + timedelta(days=1)
    orders = Orders([MarketplaceSale("A", 4, at(day2, 9), cancelled=False)])
    await aggregate(db, _now(day2), {"walmart": orders})
    assert await _rows(db, "walmart") == [(START, 0, 30, 30), (day2, 4, 4, 30)]


async def test_a_failed_read_falls_back_to_the_inference(db: Database) -> None:
    orders = Orders(error=TransientChannelError("getAllOrders: 503"))
    with capture_logs() as logs:
        await _two_days(db, orders)
    assert len(orders.calls) == 1
    assert await _rows(db, "walmart") == [
        (START + timedelta(days=1), 0, 30, 30),
        (START + timedelta(days=2), 4, 0, 26),  # inferred from the fall
    ]
    inferred = [e for e in logs if e["event"] == "inventory_pools_inferred"]
    assert [e["pools"] for e in inferred] == [["walmart"], ["walmart"], ["walmart"]]
    assert inferred[1]["error"] == "TransientChannelError"
    assert await _ledger_rows(db) == 0


async def test_the_named_pass_reads_each_opened_channel_that_lists_wfs_orders(
    db: Database, clock: ManualClock
) -> None:
    rt = await make_runtime(db, clock, settings())
    orders = Orders([MarketplaceSale("A", 2, clock.now(), cancelled=False)])
    setattr(rt.channels["alpha"], "fetch_marketplace_sales", orders)  # noqa: B010
    await product(db, "A")
    await held(db, "alpha", "A", 7)
    await run_named_pass(rt, "inventory", "p1")
    assert len(orders.calls) == 1
    assert await _rows(db, "alpha") == [(clock.now().date(), 2, 9, 7)]
    assert await _ledger_rows(db) == 0
    await rt.close()
