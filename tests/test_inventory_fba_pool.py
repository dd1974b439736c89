"""The FBA pool of the daily history read from the stored Inventory Ledger: exact sales and
receipts on the days the ledger covers, the held-quantity inference on the others, inbound
from the inventory snapshot, and a FATAL report that leaves the pass running on inference."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.amazon.reports import ReportOutcome
from daemon import inventory_pass
from daemon.db.engine import Database
from daemon.db.models import InventoryDay, InventoryRun, RestockRow
from daemon.fba_audit import fetch_reports, store
from daemon.inventory_pass import aggregate, ledger_pool_rows, run_inventory
from daemon.settings import InventorySettings
from domain.clock import ManualClock
from domain.fba import INVENTORY_COLUMNS, INVENTORY_REPORT, LEDGER_COLUMNS, LEDGER_REPORT
from tests.inventory_fixtures import held, product

DAYS = InventoryDay.__table__  # type: ignore[attr-defined]
RESTOCK = RestockRow.__table__  # type: ignore[attr-defined]
RUN = InventoryRun.__table__  # type: ignore[attr-defined]
START = date(2026, 3, 2)
POOL = "amazon"


def _now(day: date, hour: int = 1) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _event(
    day: date, kind: str, ref: str, units: int, disposition: str = "SELLABLE", sku: str = "A"
) -> list[str]:
    return [
        f"{day:%m/%d/%Y}", f"X00{sku}", "B000000001", sku, "Mug", kind, ref, str(units),
        "PHX7", disposition, "", "US", "", "", f"{day.isoformat()}T10:00:00Z",
    ]  # fmt: skip


def _tsv(columns: tuple[str, ...], *rows: list[str]) -> str:
    return "\n".join(["\t".join(columns), *("\t".join(r) for r in rows)]) + "\n"


def _stock(sku: str, fulfillable: int, working: int, shipped: int, receiving: int) -> list[str]:
    return [
        sku, f"X00{sku}", "B000000001", "Mug", "New", "20.00", "No", "", "Yes",
        str(fulfillable), str(fulfillable), "0", "0", str(fulfillable), "0.1",
        str(working), str(shipped), str(receiving), "0", "0", "0",
    ]  # fmt: skip


async def _pool(db: Database, pool: str = POOL) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(DAYS.c.day, DAYS.c.sold, DAYS.c.received, DAYS.c.on_hand, DAYS.c.inbound)
            .where(DAYS.c.pool == pool)
            .order_by(DAYS.c.product_id, DAYS.c.day)
        )
        return [((r[0] - START).days, r[1], r[2], r[3], r[4]) for r in rows]


def _day(n: int) -> date:
    return START + timedelta(days=n)


async def test_ledger_days_are_read_and_other_days_inferred(db: Database) -> None:
    """Receipts and sellable returns are received, Shipments sold, other sellable changes
    (a disposition move, a warehouse transfer) only move on hand; today, not yet in the
    report, is inferred from the held quantity."""
    await product(db, "A")
    await held(db, POOL, "A", 17)
    ledger = _tsv(
        LEDGER_COLUMNS,
        _event(_day(0), "Receipts", "FBA1", 20),
        _event(_day(0), "Receipts", "FBA1", 2, "CARRIER_DAMAGED"),  # never sellable
        _event(_day(1), "Shipments", "113-1", -3),
        _event(_day(1), "Shipments", "113-2", -1),
        _event(_day(2), "CustomerReturns", "113-1", 1),  # restocked: back on the shelf
        _event(_day(2), "CustomerReturns", "113-2", 1, "CUSTOMER_DAMAGED"),
        _event(_day(2), "Adjustments", "7001", -1),  # moved to warehouse-damaged
        _event(_day(2), "WhseTransfers", "T1", -5),  # between Amazon's warehouses
    )
    assert await store(db, POOL, LEDGER_REPORT, ledger, _now(_day(3), 0)) == (8, 8)
    stock = _tsv(INVENTORY_COLUMNS, _stock("A", 17, 0, 0, 0))
    await store(db, POOL, INVENTORY_REPORT, stock, _now(_day(3), 0))
    await aggregate(db, _now(_day(3)))
    # The report starts after Amazon got the first unit: the level is anchored so that the
    # ledger's changes end at the 17 units Amazon's inventory report says it holds.
    expected = [(0, 0, 20, 21, None), (1, 4, 0, 17, None), (2, 0, 1, 17, None)]
    assert await _pool(db) == expected
    # A re-run changes nothing; a unit shipped today (not in the report yet) is inferred.
    await aggregate(db, _now(_day(3)))
    assert await _pool(db) == expected
    await held(db, POOL, "A", 16)
    await aggregate(db, _now(_day(3), 2))
    assert await _pool(db) == [*expected, (3, 1, 0, 16, 0)]


async def test_a_reading_is_replaced_when_the_ledger_covers_its_day(db: Database) -> None:
    """Days without report rows keep the inference; once the audit stores the ledger of such
    a day, the next pass reads it and the readings after it are inferred from the new level
    (no sale is counted twice)."""
    await product(db, "A")
    for day, units in ((0, 30), (2, 26), (3, 25)):
        await held(db, POOL, "A", units)
        await run_inventory(db, ManualClock(_now(_day(day))), InventorySettings())
    # No report yet: every row inferred from the held quantity.
    assert await _pool(db) == [(0, 0, 30, 30, None), (2, 4, 0, 26, None), (3, 1, 0, 25, None)]
    # The audit reads day 1 (3 shipped) and day 2 (1 shipped, 2 received); day 3 not yet.
    ledger = _tsv(
        LEDGER_COLUMNS,
        _event(_day(1), "Shipments", "113-1", -3),
        _event(_day(2), "Shipments", "113-2", -1),
        _event(_day(2), "Receipts", "FBA2", 2),
    )
    await store(db, POOL, LEDGER_REPORT, ledger, _now(_day(3), 12))
    await held(db, POOL, "A", 27)
    await run_inventory(db, ManualClock(_now(_day(4))), InventorySettings())
    assert await _pool(db) == [
        (0, 0, 30, 30, None),  # before the report: kept
        (1, 3, 0, 27, None),  # read
        (2, 1, 2, 28, None),  # read: the inferred "4 sold" is gone
        (3, 3, 0, 25, None),  # not covered: inferred from the day before's level
        (4, 0, 2, 27, None),
    ]
    # Nothing new read: nothing rebuilt; the same report read again: the same rows.
    rows = await _pool(db)
    await run_inventory(db, ManualClock(_now(_day(5))), InventorySettings())
    assert await _pool(db) == rows
    await store(db, POOL, LEDGER_REPORT, ledger, _now(_day(5), 12))
    await run_inventory(db, ManualClock(_now(_day(6))), InventorySettings())
    assert await _pool(db) == rows
    async with db.read() as conn:
        mark = (await conn.execute(sa.select(RUN.c.ledger_read_at))).scalar_one()
    assert mark == _now(_day(5), 12)


def test_a_ledger_that_starts_late_opens_at_the_held_level() -> None:
    """The report's first day follows units Amazon already held: the level before it is what
    makes the ledger end at the quantity held now, at least the least level that never goes
    negative; a held reading on a day the ledger does not cover is re-inferred."""
    rows = ledger_pool_rows(
        POOL,
        {_day(1), _day(2)},
        {1: {_day(1): (2, 0, -2), _day(2): (1, 0, -1)}, 2: {_day(1): (3, 0, -3)}},
        {1: [(_day(3), 10, None)]},
        {},
        {1: 10, 2: 1},
    )
    assert [(r["product_id"], (r["day"] - START).days, r["sold"], r["on_hand"]) for r in rows] == [
        (1, 1, 2, 11),
        (1, 2, 1, 10),
        (1, 3, 0, 10),
        (2, 1, 3, 1),
    ]


async def test_inbound_from_the_inventory_report(db: Database) -> None:
    """Units working, shipped and being received on their way to Amazon are the pool's
    inbound in the history and count in the restock position."""
    await product(db, "A")
    await held(db, POOL, "A", 5)
    document = _tsv(INVENTORY_COLUMNS, _stock("A", 5, 4, 10, 6))
    await store(db, POOL, INVENTORY_REPORT, document, _now(_day(0), 0))
    await run_inventory(db, ManualClock(_now(_day(0))), InventorySettings())
    assert await _pool(db) == [(0, 0, 5, 5, 20)]
    async with db.read() as conn:
        plan = (await conn.execute(sa.select(RESTOCK).where(RESTOCK.c.sku == "A"))).one()
    assert (plan.on_hand, plan.inbound) == (5, 20)
    # Inbound alone moving is a change worth a row.
    later = _tsv(INVENTORY_COLUMNS, _stock("A", 5, 0, 0, 6))
    await store(db, POOL, INVENTORY_REPORT, later, _now(_day(1), 0))
    await aggregate(db, _now(_day(1)))
    assert (await _pool(db))[-1] == (1, 0, 0, 5, 6)


class _Fatal:
    """A Reports API whose every report ends FATAL."""

    def __init__(self) -> None:
        self.calls = 0

    async def fetch(self, report_type: str, start: datetime, end: datetime) -> ReportOutcome:
        """Every report ends FATAL."""
        self.calls += 1
        return ReportOutcome(report_type, f"r{self.calls}", "FATAL")


async def test_a_fatal_report_leaves_the_pass_on_inference(db: Database) -> None:
    """A FATAL report stores nothing: the pass runs, and the FBA pool is inferred."""
    await product(db, "A")
    await held(db, POOL, "A", 12)

    async def sleep(_: float) -> None:
        return None

    fatal = _Fatal()
    fetched = await fetch_reports(
        db,
        POOL,
        fatal,  # type: ignore[arg-type]
        start=_now(_day(-30)),
        end=_now(_day(0)),
        now=_now(_day(0)),
        sleep=sleep,
    )
    assert {f.status for f in fetched} == {"FATAL"}
    summary = await run_inventory(db, ManualClock(_now(_day(0))), InventorySettings())
    assert summary["skus"] == 1
    assert await _pool(db) == [(0, 0, 12, 12, None)]


async def test_products_are_rebuilt_chunk_by_chunk(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One product per transaction reads the same as all at once; a product with no FBA row
    at all writes nothing."""
    monkeypatch.setattr(inventory_pass, "CHUNK_SKUS", 1)
    for sku in ("A", "B", "C"):
        await product(db, sku)
    ledger = _tsv(
        LEDGER_COLUMNS,
        _event(_day(0), "Receipts", "FBA1", 5, sku="A"),
        _event(_day(1), "Shipments", "113-1", -2, sku="A"),
        _event(_day(1), "Receipts", "FBA2", 3, sku="C"),
    )
    await store(db, POOL, LEDGER_REPORT, ledger, _now(_day(2), 0))
    summary = await aggregate(db, _now(_day(2)))
    assert summary["rows"] == 3
    assert await _pool(db) == [(0, 0, 5, 5, None), (1, 2, 0, 3, None), (1, 0, 3, 3, None)]
