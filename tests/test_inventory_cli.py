"""``repricerd inventory restock|health|refresh`` on a small fixture: table, CSV and JSON of the
stored plans; a database the pass never ran on says how to run it."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from daemon.db.engine import Database
from daemon.inventory_pass import run_inventory
from daemon.settings import InventorySettings
from domain.clock import ManualClock
from tests.inventory_fixtures import Ledger, at, held, product
from tests.test_cli import run, workdir

__all__ = ["workdir"]  # the fixture, shared with the CLI tests
START = date(2026, 1, 1)
TODAY = START + timedelta(days=120)


async def _fixture() -> None:
    """Three SKUs: A sells 10 a day (Acme), B 2 a day (Zenith), C sits stranded at FBA."""
    db = Database(os.environ["REPRICERD_DATABASE"])
    try:
        await product(db, "A", lead_time_days=14, moq=24, case_pack=12, supplier="Acme")
        await product(db, "B", lead_time_days=30, supplier="Zenith")
        await product(
            db, "C", supplier="Acme", unit_volume_cuft=Decimal("0.25"), size_tier="standard"
        )
        ledger = Ledger(db)
        await ledger.add("A", "count", 1400, at(START, 6))
        await ledger.daily_sales("A", START, 120, 10)
        await ledger.add("B", "count", 300, at(START, 6))
        await ledger.daily_sales("B", START, 120, 2)
        await held(db, "amazon-demo", "C", 30, status="inactive")
        clock = ManualClock(datetime(TODAY.year, TODAY.month, TODAY.day, 2, tzinfo=UTC))
        await run_inventory(db, clock, InventorySettings())
    finally:
        await db.dispose()


def test_reports_before_and_after_the_pass(workdir: Path) -> None:
    """Never run: exit 1 and how to run it; then table, CSV and JSON of what was stored."""
    assert run("db", "upgrade", "-c", "repricerd.yaml")[0] == 0
    code, out, err = run("inventory", "restock", "-c", "repricerd.yaml")
    assert (code, out) == (1, "")
    assert "has not run yet" in err
    assert "repricerd inventory refresh" in err
    asyncio.run(_fixture())

    code, out, _ = run("inventory", "restock", "-c", "repricerd.yaml", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["sku"] for r in rows] == ["B", "A"]  # soonest first; C sells nothing
    a = rows[1]
    assert (a["supplier"], a["on_hand"], a["inbound"]) == ("Acme", "merchant:200", "0")
    assert Decimal(a["daily_demand"]) == Decimal("10.00")
    assert a["days_of_supply"] == "20.0"
    # Ordered on the order-by day (6 days, 60 sold): 10 a day over 14 days' lead time + 60
    # days' cover, less the 140 held then: 600 (50 cases).
    assert (a["reorder_point"], a["order_quantity"], a["order_value"]) == ("140", "600", "2400.00")
    assert a["order_by"] == "2026-05-07"  # (200 - 140) / 10 = 6 days from today
    assert rows[0]["order_by"] == "2026-05-01"  # B is at its reorder point: today
    code, out, _ = run(
        "inventory", "restock", "-c", "repricerd.yaml", "--supplier", "Zenith", "--format", "json"
    )
    data = json.loads(out)
    assert [(d["sku"], d["supplier"], d["on_hand_pools"]) for d in data] == [
        ("B", "Zenith", {"merchant": 60})
    ]
    code, out, _ = run("inventory", "restock", "-c", "repricerd.yaml")
    assert code == 0
    for heading in ("sku", "supplier", "days of supply", "reorder point", "order qty", "order by"):
        assert heading in out
    assert "merchant:200" in out

    code, out, _ = run("inventory", "health", "-c", "repricerd.yaml", "--format", "csv")
    health = {(r["sku"], r["pool"]): r for r in csv.DictReader(io.StringIO(out))}
    assert sorted(health) == [("A", "merchant"), ("B", "merchant"), ("C", "amazon-demo")]
    assert health[("A", "merchant")]["age_91_180"] == "200"  # received 120 days ago
    assert health[("A", "merchant")]["units_sold_90d"] == "900"
    assert health[("C", "amazon-demo")]["stranded_units"] == "30"
    assert health[("C", "amazon-demo")]["excess_units"] == "30"
    assert health[("C", "amazon-demo")]["storage_fee_3m"] != ""
    code, out, _ = run("inventory", "health", "-c", "repricerd.yaml", "--format", "json")
    assert {d["pool"] for d in json.loads(out)} == {"merchant", "amazon-demo"}
    code, out, _ = run("inventory", "health", "-c", "repricerd.yaml")
    assert code == 0
    assert "stranded" in out
    assert "fees 3 mo" in out
