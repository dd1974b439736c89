"""The inventory pass: daily aggregates built incrementally and idempotently, stock-outs
censored end to end, restock plans and health stored, restock alerts once per crossing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from structlog.testing import capture_logs

from daemon.alerts import Alerter
from daemon.app import Passes, _inventory_due, _schedule
from daemon.db.engine import Database
from daemon.db.models import AlertRecord, InventoryDay, InventoryHealthRow, RestockRow
from daemon.inventory_pass import aggregate, run_inventory
from daemon.logging import SecretRedactor
from daemon.passes import run_named_pass
from daemon.settings import InventorySettings
from daemon.status import read_status
from domain.clock import ManualClock
from tests.daemon_fixtures import make_runtime, settings
from tests.inventory_fixtures import Ledger, at, held, product

DAYS = InventoryDay.__table__  # type: ignore[attr-defined]
RESTOCK = RestockRow.__table__  # type: ignore[attr-defined]
HEALTH = InventoryHealthRow.__table__  # type: ignore[attr-defined]
ALERTS = AlertRecord.__table__  # type: ignore[attr-defined]
START = date(2026, 1, 1)


def _clock(day: date) -> ManualClock:
    return ManualClock(datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC))


async def _days(db: Database) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(
                DAYS.c.product_id,
                DAYS.c.pool,
                DAYS.c.day,
                DAYS.c.sold,
                DAYS.c.received,
                DAYS.c.on_hand,
            ).order_by(DAYS.c.product_id, DAYS.c.pool, DAYS.c.day)
        )
        return [tuple(r) for r in rows]


async def _restock(db: Database, sku: str) -> Any:
    async with db.read() as conn:
        return (await conn.execute(sa.select(RESTOCK).where(RESTOCK.c.sku == sku))).one()


async def test_aggregation_is_incremental_and_idempotent(db: Database) -> None:
    """Each run adds the days since the last (today so far, provisionally); a re-run, or a
    rebuild, changes nothing; an order recorded late inside the overlap is picked up."""
    await product(db, "A")
    ledger = Ledger(db)
    await ledger.add("A", "count", 50, at(START, 8))
    await ledger.daily_sales("A", START, 3, 2)
    await ledger.add("A", "cancel", 2, at(START + timedelta(days=1), 15))
    await ledger.add("A", "order", -3, at(START + timedelta(days=3), 0))  # today, before 01:00
    first = await aggregate(db, _clock(START + timedelta(days=3)).now())
    assert first["through"] == "2026-01-04"
    rows = await _days(db)
    assert [(r[2], r[3], r[4], r[5]) for r in rows] == [
        (START, 2, 50, 48),
        (START + timedelta(days=1), 0, 0, 48),
        (START + timedelta(days=2), 2, 0, 46),
        (START + timedelta(days=3), 3, 0, 43),  # provisional
    ]
    await aggregate(db, _clock(START + timedelta(days=3)).now())
    assert await _days(db) == rows
    # Two more days; an order of day 3 arrives late (an orders poll) and is rebuilt in.
    await ledger.daily_sales("A", START + timedelta(days=3), 2, 1)
    await ledger.add("A", "order", -5, at(START + timedelta(days=2), 18))
    second = await aggregate(db, _clock(START + timedelta(days=5)).now())
    assert second["through"] == "2026-01-06"
    after = await _days(db)
    assert [(r[2].day, r[3], r[5]) for r in after] == [
        (1, 2, 48),
        (2, 0, 48),
        (3, 7, 41),
        (4, 4, 37),
        (5, 1, 36),
    ]
    # A database aggregated in one go holds the same rows.
    async with db.write() as conn:
        await conn.execute(sa.delete(DAYS))
        await conn.execute(sa.text("DELETE FROM inventory_run"))
    await aggregate(db, _clock(START + timedelta(days=5)).now())
    assert await _days(db) == after


async def test_marketplace_pools_record_changes_only(db: Database) -> None:
    """FBA units are read from the listing: a first reading is a receipt, a fall a sale, an
    unchanged quantity writes no row."""
    await product(db, "A")
    await held(db, "amazon", "A", 30)
    await aggregate(db, _clock(START + timedelta(days=1)).now())
    await aggregate(db, _clock(START + timedelta(days=2)).now())
    await held(db, "amazon", "A", 26)
    await aggregate(db, _clock(START + timedelta(days=3)).now())
    await aggregate(db, _clock(START + timedelta(days=3)).now())
    assert [(r[1], r[2].day, r[3], r[4], r[5]) for r in await _days(db)] == [
        ("amazon", 2, 0, 30, 30),
        ("amazon", 4, 4, 0, 26),
    ]


async def test_a_stock_out_does_not_drag_the_forecast_down(db: Database) -> None:
    """Ten a day for 120 days with a two-week stock-out near the end: the stored forecast stays
    near ten (a trailing mean over the last 30 days says about half that)."""
    await product(db, "A", lead_time_days=10, moq=24, case_pack=12, supplier="Acme")
    ledger = Ledger(db)
    await ledger.add("A", "count", 5000, at(START, 6))
    out_from = START + timedelta(days=100)
    await ledger.daily_sales("A", START, 100, 10)
    await ledger.add("A", "count", -(5000 - 1000), at(out_from, 7))  # to 0 (count delta)
    back = out_from + timedelta(days=14)
    await ledger.add("A", "receipt", 300, at(back, 6))
    await ledger.daily_sales("A", back, 6, 10)
    today = back + timedelta(days=6)
    summary = await run_inventory(db, _clock(today), InventorySettings())
    assert summary["skus"] == 1
    row = await _restock(db, "A")
    assert 9.0 <= row.daily_demand <= 11.0
    assert row.on_hand == 240
    assert row.supplier == "Acme"
    assert row.order_quantity % 12 == 0
    assert row.order_quantity >= 24
    assert row.days_of_supply == (Decimal(240) / Decimal(repr(row.daily_demand))).quantize(
        Decimal("0.1")
    )
    async with db.read() as conn:
        health = (await conn.execute(sa.select(HEALTH))).all()
    assert [(h.pool, h.on_hand, h.age_0_90) for h in health] == [("merchant", 240, 240)]


async def test_restock_alerts_fire_once_per_crossing(db: Database) -> None:
    """Cover falls below 21, then below 14: one alert each; re-running raises nothing new;
    a restock resolves both, and a new fall raises again."""
    await product(db, "A", lead_time_days=7)
    ledger = Ledger(db)
    await ledger.add("A", "count", 800, at(START, 6))
    await ledger.daily_sales("A", START, 60, 10)  # 200 left: 20 days of cover
    config = settings()
    inventory = InventorySettings()
    async with httpx.AsyncClient() as http:

        async def evaluate(day: date) -> tuple[list[str], list[str]]:
            clock = _clock(day)
            await run_inventory(db, clock, inventory)
            alerter = Alerter(db, clock, http, lambda: config, SecretRedactor([]))
            return await alerter.evaluate()

        day = START + timedelta(days=60)
        assert await evaluate(day) == (["restock:21:A"], [])
        assert await evaluate(day) == ([], [])
        await ledger.daily_sales("A", day, 7, 10)  # 130 left: 13 days
        day += timedelta(days=7)
        assert await evaluate(day) == (["restock:14:A"], [])
        await ledger.add("A", "receipt", 1000, at(day, 6))
        await ledger.daily_sales("A", day, 1, 10)
        day += timedelta(days=1)
        assert await evaluate(day) == ([], ["restock:21:A", "restock:14:A"])
    async with db.read() as conn:
        kinds = [r.key for r in await conn.execute(sa.select(ALERTS.c.key).order_by(ALERTS.c.id))]
    assert kinds == ["restock:21:A", "restock:14:A"]


async def test_health_per_pool_with_stranded_and_fees(db: Database) -> None:
    """An FBA pool without an active offer is stranded; its storage fee is forecast."""
    await product(db, "A", unit_volume_cuft=Decimal("0.5"), size_tier="standard")
    await held(db, "amazon", "A", 40, status="inactive")
    await run_inventory(db, _clock(START + timedelta(days=1)), InventorySettings())
    async with db.read() as conn:
        row = (await conn.execute(sa.select(HEALTH))).one()
    assert (row.pool, row.on_hand, row.stranded_units, row.excess_units) == ("amazon", 40, 40, 40)
    # January: 40 × 0.5 cuft × $0.78, three months (Jan, Feb, Mar) with nothing sold.
    assert row.storage_fee_3m == Decimal("46.80")
    assert [m["month"] for m in row.fee_months] == ["2026-01", "2026-02", "2026-03"]


def test_the_inventory_job_follows_the_schedule(clock: ManualClock) -> None:
    """`schedule.inventory` (default 1d) creates, reschedules and removes the job."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    rt: Any = type("Rt", (), {})()
    rt.clock = clock
    rt.settings = settings()
    passes: Any = Passes(rt)
    _schedule(scheduler, passes.run, rt)
    job = scheduler.get_job("inventory")
    assert job is not None
    assert job.args == ("inventory",)
    assert job.trigger.interval == timedelta(days=1)
    rt.settings = settings(schedule={"inventory": None})
    _schedule(scheduler, passes.run, rt)
    assert scheduler.get_job("inventory") is None


async def test_the_named_pass_records_its_success_on_every_channel(
    db: Database, clock: ManualClock
) -> None:
    """`run_named_pass("inventory")` (POST /sync, the scheduler) runs the pass once for every
    channel and `status` shows its last success on each."""
    rt = await make_runtime(db, clock, settings())
    await product(db, "A")
    result = await run_named_pass(rt, "inventory", "p1")
    assert list(result) == ["*"]
    assert result["*"]["skus"] == 1
    snapshot = await read_status(db, ["alpha", "beta"], clock.now())
    assert {c.channel: c.last_success["inventory"] for c in snapshot.channels} == {
        "alpha": clock.now(),
        "beta": clock.now(),
    }
    await rt.close()


async def test_a_restart_does_not_rerun_a_recent_inventory(
    db: Database, clock: ManualClock
) -> None:
    """The pass takes minutes at 100,000 SKUs: after a restart its first run is one interval
    after the last complete run, not a few seconds after the start; never run → soon."""
    rt = await make_runtime(db, clock, settings())
    assert await _inventory_due(rt) == {}
    await product(db, "A")
    await run_inventory(db, clock, InventorySettings())
    due = await _inventory_due(rt)
    assert due == {"inventory": clock.now() + timedelta(days=1)}
    clock.advance(3600)  # restarted an hour later
    scheduler = AsyncIOScheduler(timezone="UTC")
    passes: Any = Passes(rt)
    _schedule(scheduler, passes.run, rt, due)
    inventory, reprice = scheduler.get_job("inventory"), scheduler.get_job("reprice")
    assert inventory is not None
    assert reprice is not None
    assert inventory.next_run_time == due["inventory"]
    assert reprice.next_run_time < clock.now() + timedelta(minutes=1)


async def test_many_crossings_in_one_run_are_logged_as_one_line(db: Database) -> None:
    """Above `restock_alert_digest_over` crossings, the pass logs one warning counting them
    (a first run on a large catalogue would otherwise log one line per SKU and threshold)."""
    ledger = Ledger(db)
    for sku in ("A", "B"):
        await product(db, sku, lead_time_days=7)
        await ledger.add(sku, "count", 800, at(START, 6))
        await ledger.daily_sales(sku, START, 60, 10)  # 200 left: 20 days of cover
    day = START + timedelta(days=60)
    with capture_logs() as logs:
        summary = await run_inventory(
            db, _clock(day), InventorySettings(restock_alert_digest_over=1)
        )
    assert summary["crossings"] == 2
    events = [e for e in logs if e["event"].startswith("restock_threshold")]
    assert [(e["event"], e["skus"], e["below"]) for e in events] == [
        ("restock_thresholds_crossed", 2, {"21": 2})
    ]
    assert [name.split()[0] for name in events[0]["lowest"]] == ["A", "B"]
