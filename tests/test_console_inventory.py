"""The console's inventory loaders and charts (on SQLite and PostgreSQL), and its Inventory
routes: the page, the restock CSV, and the CSRF-protected, recorded "run now"."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import sqlalchemy as sa

from daemon.console.charts import cover_chart, demand_chart
from daemon.console.inventory_data import HEALTH_ORDERS, load_inventory_page, load_sku_inventory
from daemon.console.series import DayValue, SkuInventory
from daemon.db.engine import Database
from daemon.db.models import OperatorAction
from daemon.fba_audit import store
from daemon.inventory_pass import run_inventory
from daemon.inventory_report import RESTOCK_FIELDS
from daemon.runtime import Runtime
from daemon.settings import InventorySettings
from domain.clock import ManualClock
from domain.fba import LEDGER_COLUMNS, LEDGER_REPORT
from tests.daemon_fixtures import loaded, settings
from tests.inventory_fixtures import Ledger, at, held, product
from tests.test_console_web import CSRF, _log_in, admin

__all__ = ["admin"]  # the admin listener fixture, shared with the console's web tests
OPERATOR = OperatorAction.__table__  # type: ignore[attr-defined]
START = date(2026, 1, 1)
TODAY = START + timedelta(days=120)
OUT_FROM = START + timedelta(days=100)


async def _seed(db: Database) -> None:
    """A (Acme) sells ten a day with a two-week stock-out and must be reordered; B (Beta)
    has plenty; C sits stranded in an FBA pool with a storage fee; one lost FBA unit."""
    await product(db, "A", lead_time_days=10, moq=24, case_pack=12, supplier="Acme")
    await product(db, "B", supplier="Beta")
    await product(db, "C", unit_volume_cuft=Decimal("0.5"), size_tier="standard")
    ledger = Ledger(db)
    await ledger.add("A", "count", 5000, at(START, 6))
    await ledger.daily_sales("A", START, 100, 10)
    await ledger.add("A", "count", -4000, at(OUT_FROM, 7))
    back = OUT_FROM + timedelta(days=14)
    await ledger.add("A", "receipt", 300, at(back, 6))
    await ledger.daily_sales("A", back, 6, 10)
    await ledger.add("B", "count", 900, at(START, 6))
    await ledger.daily_sales("B", START + timedelta(days=60), 60, 1)
    await held(db, "alpha", "C", 40, status="inactive")
    clock = ManualClock(
        datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)
    )
    await run_inventory(db, clock, InventorySettings())
    day = TODAY - timedelta(days=5)
    row = [
        day.strftime("%m/%d/%Y"), "X0A", "B0A", "A", "Thing A", "Adjustments", "7001", "-1",
        "PHX7", "SELLABLE", "M", "US", "", "1", f"{day.isoformat()}T10:00:00Z",
    ]  # fmt: skip
    document = "\t".join(LEDGER_COLUMNS) + "\n" + "\t".join(row) + "\n"
    await store(db, "alpha", LEDGER_REPORT, document, clock.now())


def _clock() -> ManualClock:
    return ManualClock(
        datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=13)
    )


async def test_the_inventory_page_loader(db: Database) -> None:
    """Restock rows (filtered by supplier), health in the chosen order, the last run, and the
    FBA cases of the stored reports of a configured channel."""
    await _seed(db)
    config = loaded(settings())
    page = await load_inventory_page(db, _clock(), config)
    assert page.last_run is not None
    assert page.last_run["skus"] == 3
    assert [r["sku"] for r in page.restock] == ["A"]
    assert page.restock_total == 1
    assert page.suppliers == ("Acme",)
    assert page.restock[0]["order_quantity"] % 12 == 0
    # The storage fee first: C's FBA pool is the only one with a fee.
    assert (page.health[0]["sku"], page.health[0]["pool"]) == ("C", "alpha")
    assert page.health[0]["stranded_units"] == 40
    excess = await load_inventory_page(db, _clock(), config, sort="excess")
    assert [h["excess_units"] for h in excess.health] == sorted(
        (h["excess_units"] for h in excess.health), reverse=True
    )
    for sort in HEALTH_ORDERS:  # every order runs on both databases
        ordered = await load_inventory_page(db, _clock(), config, sort=sort)
        assert ordered.health_total == len(ordered.health) == 3
    beta = await load_inventory_page(db, _clock(), config, supplier="Beta")
    assert beta.restock == ()
    assert beta.restock_total == 0
    assert page.audit_channels == ("alpha",)
    assert page.audit is not None
    [case] = page.audit.cases
    assert (case.fnsku, case.units, case.value, case.claimable) == ("X0A", 1, Decimal("4.00"), True)


async def test_the_sku_inventory_loader(db: Database) -> None:
    """Cover by day and projected, sales with the stock-out censored, both forecasts."""
    await _seed(db)
    inv = await load_sku_inventory(db, _clock(), "A", history_days=365, thresholds=[14, 21])
    assert inv is not None
    assert inv.thresholds == (21, 14)
    assert inv.on_hand == 240
    assert inv.today == TODAY
    assert inv.daily_demand is not None
    assert Decimal(9) <= inv.daily_demand <= Decimal(11)
    # The day it ran out started with stock; the day it came back was stocked at 06:00.
    assert inv.censored == tuple(OUT_FROM + timedelta(days=d) for d in range(1, 14))
    assert inv.sold[-1] == DayValue(TODAY - timedelta(days=1), Decimal(10))
    assert len(inv.forecast) == 28
    assert inv.forecast[0].day == TODAY
    assert inv.past_origin == TODAY - timedelta(days=28)
    assert inv.forecast_past[0].day == inv.past_origin
    # Projected cover falls a day a day, from today's days of supply.
    projected = [d.value for d in inv.projected_cover if d.value is not None]
    assert projected[0] == inv.days_of_supply
    assert projected == sorted(projected, reverse=True)
    assert await load_sku_inventory(db, _clock(), "nope", history_days=365, thresholds=[]) is None


def _inventory(sku: str) -> SkuInventory:
    today = date(2026, 3, 1)
    days = [today - timedelta(days=d) for d in range(30, 0, -1)]
    return SkuInventory(
        sku=sku,
        start=days[0],
        today=today,
        end=today + timedelta(days=28),
        on_hand=50,
        daily_demand=Decimal("2.00"),
        days_of_supply=Decimal("25.0"),
        thresholds=(21, 14),
        cover=tuple(DayValue(d, Decimal(30 - i)) for i, d in enumerate(days)),
        projected_cover=tuple(
            DayValue(today + timedelta(days=t), Decimal(25 - t)) for t in range(26)
        ),
        sold=tuple(DayValue(d, Decimal(i % 3)) for i, d in enumerate(days)),
        censored=tuple(days[5:9]),
        past_origin=today - timedelta(days=28),
        forecast_past=tuple(
            DayValue(today - timedelta(days=28 - t), Decimal("1.50")) for t in range(28)
        ),
        forecast=tuple(DayValue(today + timedelta(days=t), Decimal("2.00")) for t in range(28)),
    )


def test_the_inventory_charts_draw_every_series_and_escape_text() -> None:
    """Points per series, a line per threshold, a shaded rectangle per censored day; the SKU
    is escaped wherever it is written."""
    inv = _inventory("<script>x</script>")
    cover = cover_chart(inv)
    assert cover.count('class="point" data-series="cover"') == 30
    assert cover.count('class="point" data-series="projected"') == 26
    assert re.findall(r'data-days="(\d+)"', cover) == ["21", "14"]
    demand = demand_chart(inv)
    assert demand.count('class="point bar" data-series="actual"') == 30
    assert demand.count('class="censored"') == 4
    assert demand.count('data-series="forecast-past" cx=') == 28
    assert demand.count('data-series="forecast" cx=') == 28
    for svg in (cover, demand):
        assert "<script>" not in svg
        assert "&lt;script&gt;" in svg
        assert svg.startswith("<svg")
        assert svg.endswith("</svg>")
    # Years of cover are drawn at the top edge, the thresholds stay readable.
    slow = cover_chart(
        SkuInventory(**{**_fields(inv), "cover": (DayValue(date(2026, 2, 1), Decimal(2000)),)})
    )
    assert 'data-days="21"' in slow
    assert "2000" in slow


def _fields(inv: SkuInventory) -> dict[str, object]:
    return {f: getattr(inv, f) for f in SkuInventory.__slots__}


async def test_inventory_routes(
    db: Database, clock: ManualClock, admin: tuple[str, Runtime]
) -> None:
    """The page lists what to order and the audit case; the CSV has the CLI's columns; a bad
    sort is refused; "run now" needs the CSRF token and is recorded."""
    base, _rt = admin
    async with httpx.AsyncClient(follow_redirects=True) as client:
        await _log_in(client, base)
        fresh = await client.get(f"{base}/console/inventory")
        assert "the inventory pass has not run yet" in fresh.text
        await _seed(db)
        clock.advance((_clock().now() - clock.now()).total_seconds())
        await _log_in(client, base)  # the months the clock moved ended the session
        unknown = await client.get(f"{base}/console/sku/NOT-A-SKU")
        assert "No inventory history for this SKU yet" in unknown.text
        page = await client.get(f"{base}/console/inventory")
        assert page.status_code == 200
        assert 'data-sku="A"' in page.text
        assert 'data-fnsku="X0A"' in page.text
        assert (await client.get(f"{base}/console/inventory?sort=nope")).status_code == 400
        export = await client.get(f"{base}/console/inventory/restock.csv?supplier=Acme")
        assert export.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(export.text)))
        assert tuple(rows[0]) == RESTOCK_FIELDS
        assert [r[0] for r in rows[1:]] == ["A"]
        refused = await client.post(f"{base}/console/inventory/run", data={})
        assert refused.status_code == 403
        csrf = CSRF.search(page.text)
        assert csrf is not None
        done = await client.post(
            f"{base}/console/inventory/run", data={"csrf": csrf.group(1)}, follow_redirects=False
        )
        assert done.status_code == 303
        assert done.headers["location"].startswith("/console/inventory?done=run")
        sku = await client.get(f"{base}/console/sku/A")
        assert 'class="chart cover-chart"' in sku.text
        assert 'class="chart demand-chart"' in sku.text
    async with db.read() as conn:
        actions = (await conn.execute(sa.select(OPERATOR.c.action, OPERATOR.c.detail))).all()
    assert ("run", "pass=inventory request=inventory-0-0") in [tuple(a) for a in actions]
