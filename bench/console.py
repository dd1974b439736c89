"""The console's overview, SKU and Inventory pages at 100,000 listings and 30 days of history.

Issue 14's target: each page ≤ 200 ms server time. The history is generated with bulk inserts
(4 channels × 25,000 SKUs; offer snapshots on the three marketplaces, price and stock actions,
the ledger), then each page's server work is timed N times and the median reported: the overview
is ``load_overview`` plus its sparklines, the SKU page ``load_sku_page`` plus both charts for every
channel (``load_problems`` too, without a target). The overview's first load (the Buy Box
tracker counting the 30 days of snapshots once) is reported apart; later loads read only the
snapshots stored since, and a few are stored between runs so the figure includes that catch-up,
as does the first load after midnight. Both pages are timed through the console's aiohttp app as
well. The Inventory page and the SKU page's inventory section are timed over stored inventory
plans of 100,000 SKUs (restock, health, a year of daily aggregates for the bench's products, a
stored FBA ledger): ``load_inventory_page``, and ``load_sku_inventory`` plus its two charts (the
SKU's forecast is recomputed for its charts). SQLite always; PostgreSQL too when
``REPRICERD_TEST_POSTGRES_URL`` is set (a fresh database, vacuumed and analysed after the load,
dropped afterwards).
"""

from __future__ import annotations

import gc
import os
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bench.reprice_pass import bench_database
from daemon.config import LoadedConfig
from daemon.console.charts import cover_chart, demand_chart, price_chart, sparkline, stock_chart
from daemon.console.data import (
    BuyBoxTracker,
    day_ends,
    load_overview,
    load_problems,
    load_sku_page,
)
from daemon.console.inventory_data import load_inventory_page, load_sku_inventory
from daemon.console.web import ConsoleContext, add_console
from daemon.db.engine import Database
from daemon.db.models import (
    Action,
    FbaLedgerEvent,
    InventoryDay,
    InventoryHealthRow,
    InventoryRun,
    Listing,
    OfferSnapshot,
    Product,
    RestockRow,
    StockEvent,
)
from daemon.settings import ScheduleSettings, Settings
from domain.clock import ManualClock

CHANNELS = ("amazon-us", "walmart-us", "ebay-us", "shopify")
MARKETS = CHANNELS[:3]  # the storefront has no competing offers
OWN = "SELF"
DAYS = 30
SNAPSHOTS_PER_LISTING = 8  # competition changes seen over the 30 days (stored on change only)
PRICE_ACTIONS = 5  # per listing: 3 confirmed, a held and a blocked decision
STOCK_ACTIONS = 3  # per listing, confirmed
ORDERS_PER_SKU = 8
RUNS = 15
INVENTORY_SKUS = 100_000  # restock and health rows (the inventory pass's scale)
INVENTORY_DAYS = 365
DAY_ROW_EVERY = 6  # days between a bench product's inventory_day rows (activity days only)
LEDGER_EVENTS = 2_000  # stored FBA ledger adjustments over the audit's 90 days
CHUNK = 20_000
POSTGRES_ENV = "REPRICERD_TEST_POSTGRES_URL"
PASSWORD = "bench-console-password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
CENT = Decimal("0.01")


def _tables() -> dict[str, sa.Table]:
    return {
        str(model.__tablename__): model.__table__  # type: ignore[union-attr]
        for model in (Product, Listing, OfferSnapshot, Action, StockEvent)
    }


async def _insert(db: Database, table: sa.Table, rows: list[dict[str, Any]]) -> int:
    async with db.write() as conn:
        for start in range(0, len(rows), CHUNK):
            await db.insert_many(conn, table, rows[start : start + CHUNK])
    return len(rows)


def _offers(rng: random.Random, base: Decimal, ours: Decimal) -> tuple[list[dict[str, Any]], Any]:
    """Our offer and three rivals around ``base``; the cheapest landed holds the Buy Box."""
    offers = [
        {
            "seller_id": OWN,
            "price": str(ours),
            "shipping": "0",
            "fulfillment": "fbm",
            "rating_pct": 99,
            "rating_count": 500,
            "buy_box": False,
            "own": True,
        }
    ]
    for n in range(3):
        offers.append(
            {
                "seller_id": f"R{rng.randint(1, 400)}",
                "price": str((base * Decimal(rng.randint(90, 115)) / 100).quantize(CENT)),
                "shipping": "0" if n else "1.99",
                "fulfillment": ("fba", "fbm", "fbm")[n],
                "rating_pct": rng.randint(80, 100),
                "rating_count": rng.randint(10, 5000),
                "buy_box": False,
                "own": False,
            }
        )
    winner = min(offers, key=lambda o: Decimal(str(o["price"])) + Decimal(str(o["shipping"])))
    winner["buy_box"] = True
    return offers, winner


async def generate(db: Database, listings: int, now: datetime) -> dict[str, Any]:
    """Insert the catalogue and 30 days of history; return the row counts."""
    rng = random.Random(14)
    tables = _tables()
    skus = [f"SKU-{i:06d}" for i in range(listings // len(CHANNELS))]
    start = now - timedelta(days=DAYS)
    span = DAYS * 86400
    counts: dict[str, int] = {}
    products, rows = [], []
    for i, sku in enumerate(skus):
        cost = Decimal(500 + i % 5000) / 100
        products.append(
            {
                "sku": sku,
                "title": f"Bench item {i}",
                "currency": "USD",
                "cost": cost,
                "fees": Decimal("1.25"),
                # One SKU in 200 lacks its ceiling: the problems page has something to show.
                "min_price": cost,
                "max_price": None if i % 200 == 0 else cost * 4,
                "tags": [],
                "kit_components": {},
                "created_at": start,
                "updated_at": start,
            }
        )
        for channel in CHANNELS:
            rows.append(
                {
                    "channel": channel,
                    "sku": sku,
                    "external_ids": {},
                    "fulfillment": "merchant",
                    "currency": "USD",
                    "price": cost * 2,
                    "quantity": 5,
                    "status": "active",
                    "discovered_at": start,
                    "updated_at": start,
                }
            )
    counts["product"] = await _insert(db, tables["product"], products)
    counts["listing"] = await _insert(db, tables["listing"], rows)
    del products, rows

    snapshots: list[dict[str, Any]] = []
    counts["offer_snapshot"] = 0
    for channel in MARKETS:
        for i, sku in enumerate(skus):
            base = Decimal(500 + i % 5000) / 50
            for at in sorted(rng.randrange(span) for _ in range(SNAPSHOTS_PER_LISTING)):
                offers, winner = _offers(rng, base, base)
                snapshots.append(
                    {
                        "channel": channel,
                        "sku": sku,
                        "source": "poll",
                        "buy_box_price": Decimal(winner["price"]) + Decimal(winner["shipping"]),
                        "buy_box_seller": winner["seller_id"],
                        "reference_price": None,
                        "offers": offers,
                        "fingerprint": None,
                        "observed_at": start + timedelta(seconds=at),
                    }
                )
            if len(snapshots) >= 5 * CHUNK:
                counts["offer_snapshot"] += await _insert(db, tables["offer_snapshot"], snapshots)
                snapshots = []
    counts["offer_snapshot"] += await _insert(db, tables["offer_snapshot"], snapshots)
    del snapshots

    counts["action"] = 0
    actions: list[dict[str, Any]] = []
    verdicts = [{"step": "guard:bounds", "verdict": "ok", "detail": "[5.00, 20.00]"}]
    key = 0
    for channel in CHANNELS:
        for i, sku in enumerate(skus):
            price = Decimal(500 + i % 5000) / 50
            moments = sorted(rng.randrange(span) for _ in range(PRICE_ACTIONS + STOCK_ACTIONS))
            for n, at in enumerate(moments):
                key += 1
                created = start + timedelta(seconds=at)
                stock = n >= PRICE_ACTIONS
                status = ("confirmed", "confirmed", "held", "blocked", "confirmed")[n % 5]
                status = "confirmed" if stock else status
                new = None if stock or status != "confirmed" else price + n
                actions.append(
                    {
                        "pass_id": f"p{at // 300}",
                        "kind": "stock" if stock else "price",
                        "channel": channel,
                        "sku": sku,
                        "status": status,
                        "old_price": None if stock else price,
                        "new_price": new,
                        "currency": None if stock else "USD",
                        "floor": None if stock else price / 2,
                        "ceiling": None if stock else price * 2,
                        "old_quantity": 5 if stock else None,
                        "new_quantity": 4 if stock else None,
                        "reason": "bench",
                        "trace": [],
                        "guard_verdicts": [] if stock else verdicts,
                        "idempotency_key": f"bench-{key}",
                        "attempts": 1,
                        "created_at": created,
                        "completed_at": created + timedelta(seconds=2),
                    }
                )
            if len(actions) >= 5 * CHUNK:
                counts["action"] += await _insert(db, tables["action"], actions)
                actions = []
    counts["action"] += await _insert(db, tables["action"], actions)
    del actions

    events = []
    for i, sku in enumerate(skus):
        events.append(
            {
                "sku": sku,
                "kind": "count",
                "delta": 50,
                "counted": 50,
                "external_ref": f"count:{sku}",
                "channel": None,
                "note": None,
                "occurred_at": start - timedelta(days=1),
                "recorded_at": start - timedelta(days=1),
            }
        )
        for n, at in enumerate(sorted(rng.randrange(span) for _ in range(ORDERS_PER_SKU))):
            when = start + timedelta(seconds=at)
            events.append(
                {
                    "sku": sku,
                    "kind": "cancel" if n % 4 == 3 else "order",
                    "delta": 1 if n % 4 == 3 else -1,
                    "counted": None,
                    "external_ref": f"o{i}-{n}",
                    "channel": CHANNELS[n % len(CHANNELS)],
                    "note": f"order {i}-{n}",
                    "occurred_at": when,
                    "recorded_at": when,
                }
            )
    counts["stock_event"] = await _insert(db, tables["stock_event"], events)
    return counts


async def generate_inventory(db: Database, now: datetime) -> dict[str, int]:
    """Stored inventory plans of ``INVENTORY_SKUS`` SKUs (a third to order, from 50 suppliers),
    their health in two pools, a year of aggregates for the bench's products, and a stored FBA
    ledger of lost, damaged and found units; return the row counts."""
    rng = random.Random(16)
    today = now.date()
    restock: list[dict[str, Any]] = []
    health: list[dict[str, Any]] = []
    for i in range(INVENTORY_SKUS):
        sku = f"SKU-{i:06d}"
        demand = rng.random() * 5
        order = rng.random() < 0.33
        restock.append(
            {
                "sku": sku,
                "supplier": f"Supplier {i % 50:02d}",
                "on_hand": 100,
                "on_hand_pools": {"merchant": 60, "amazon-us": 40},
                "inbound": 0,
                "daily_demand": demand,
                "sigma": demand / 2,
                "demand_class": 1,
                "days_of_supply": Decimal(100 / demand if demand else 0).quantize(CENT),
                "lead_time_days": 30,
                "safety_stock": 10,
                "reorder_point": 50,
                "order_quantity": rng.randrange(12, 240, 12) if order else 0,
                "order_by": today + timedelta(days=rng.randrange(-5, 30)) if order else None,
                "order_value": Decimal(rng.randrange(100, 100_000)) / 100 if order else None,
                "forecast_start": today,
                "computed_at": now,
            }
        )
        for pool in ("merchant", "amazon-us"):
            health.append(
                {
                    "sku": sku,
                    "pool": pool,
                    "on_hand": 50,
                    "age_0_90": 30,
                    "age_91_180": 10,
                    "age_181_270": 5,
                    "age_271_365": 3,
                    "age_365_plus": rng.randrange(3),
                    "excess_units": rng.randrange(50),
                    "units_sold_90d": rng.randrange(200),
                    "sell_through": Decimal(rng.randrange(500)) / 100,
                    "stranded_units": 0 if rng.random() < 0.99 else 10,
                    "storage_fee_3m": (
                        Decimal(rng.randrange(1, 5000)) / 100 if pool != "merchant" else None
                    ),
                    "fee_months": [],
                    "computed_at": now,
                }
            )
    counts = {
        "restock": await _insert(db, RestockRow.__table__, restock),  # type: ignore[attr-defined]
        "inventory_health": await _insert(
            db,
            InventoryHealthRow.__table__,  # type: ignore[attr-defined]
            health,
        ),
    }
    del restock, health
    async with db.read() as conn:
        ids = [pid for (pid,) in await conn.execute(sa.select(Product.__table__.c.id))]  # type: ignore[attr-defined]
    days = []
    for pid in ids:
        on_hand = 200
        for back in range(INVENTORY_DAYS, -1, -DAY_ROW_EVERY):
            sold = rng.randrange(0, 12)
            on_hand = max(on_hand - sold, 0) or 200
            days.append(
                {
                    "product_id": pid,
                    "pool": "merchant",
                    "day": today - timedelta(days=back),
                    "sold": sold,
                    "received": 0,
                    "on_hand": on_hand,
                    "inbound": None,
                }
            )
    counts["inventory_day"] = await _insert(db, InventoryDay.__table__, days)  # type: ignore[attr-defined]
    del days
    ledger = []
    for n in range(LEDGER_EVENTS):
        day = today - timedelta(days=rng.randrange(90))
        reason, quantity = rng.choice((("M", -1), ("E", -1), ("F", 1), ("5", -2)))
        ledger.append(
            {
                "channel": "amazon-us",
                "day": day,
                "occurred_at": datetime.combine(day, datetime.min.time(), tzinfo=UTC),
                "fnsku": f"X{n % 500:09d}",
                "asin": f"B{n % 500:09d}",
                "msku": f"SKU-{n % 500:06d}",
                "title": "Bench item",
                "event_type": "Adjustments",
                "reference_id": str(100_000 + n),
                "quantity": quantity,
                "fulfillment_center": "PHX7",
                "disposition": "SELLABLE",
                "reason": reason,
                "country": "US",
                "reconciled_quantity": None,
                "unreconciled_quantity": None if quantity > 0 else -quantity,
                "read_at": now,
            }
        )
    counts["fba_ledger_event"] = await _insert(db, FbaLedgerEvent.__table__, ledger)  # type: ignore[attr-defined]
    async with db.write() as conn:
        await conn.execute(
            sa.insert(InventoryRun.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": 1,
                    "aggregated_through": today,
                    "finished_at": now,
                    "skus": INVENTORY_SKUS,
                    "seconds": 1.0,
                }
            ],
        )
    return counts


def bench_config() -> LoadedConfig:
    """The bench's four channels (in-memory mocks; ``amazon-us`` holds the stored FBA ledger)."""
    settings = Settings.model_validate(
        {
            "channels": {name: {"kind": "mock"} for name in CHANNELS},
            "pricing": {"rules": [{"strategy": "cost_plus", "params": {"margin_pct": 30}}]},
        }
    )
    return LoadedConfig(settings=settings, path=Path("bench.yaml"), digest="bench", secrets=())


async def _new_snapshots(db: Database, now: datetime, n: int, rng: random.Random) -> None:
    """A few competition changes arriving between two page loads."""
    rows = []
    for _ in range(n):
        offers, winner = _offers(rng, Decimal("20"), Decimal("20"))
        rows.append(
            {
                "channel": MARKETS[rng.randrange(len(MARKETS))],
                "sku": f"SKU-{rng.randrange(1000):06d}",
                "source": "notification",
                "buy_box_price": Decimal(winner["price"]),
                "buy_box_seller": winner["seller_id"],
                "reference_price": None,
                "offers": offers,
                "fingerprint": None,
                "observed_at": now - timedelta(seconds=rng.randrange(60)),
            }
        )
    await _insert(db, _tables()["offer_snapshot"], rows)


async def _unused_pass(name: str, channels: tuple[str, ...], skus: tuple[str, ...]) -> str:
    raise RuntimeError("the bench runs no pass")


async def full_pages(
    db: Database, clock: ManualClock, skus: list[str], rng: random.Random
) -> dict[str, Any]:
    """Both pages through the console's aiohttp app (login, session, templates), timed at the
    client on the loopback: the first overview (the tracker's first count), then warm ones with
    a few new snapshots stored before each, then SKU pages not loaded before."""
    app = web.Application()
    add_console(
        app,
        ConsoleContext(
            db=db,
            clock=clock,
            password=lambda: SecretStr(PASSWORD),
            channels=lambda: CHANNELS,
            config=bench_config,
            last_reload=lambda: None,
            request_pass=_unused_pass,
            breaker_rearm=lambda: timedelta(minutes=30),
            own_seller_ids=lambda: {OWN},
            schedule=ScheduleSettings,
        ),
    )
    async with TestClient(TestServer(app)) as client:
        form = await (await client.get("/login")).text()
        token = CSRF.search(form)
        assert token is not None
        login = await client.post(
            "/login",
            data={"csrf": token.group(1), "password": PASSWORD, "next": "/console/"},
            allow_redirects=False,
        )
        assert login.status == 303, login.status

        async def get(path: str, needle: str = "<svg") -> float:
            t0 = time.perf_counter()
            response = await client.get(path, allow_redirects=False)
            body = await response.text()
            spent = time.perf_counter() - t0
            assert response.status == 200, (path, response.status)
            assert needle in body
            return spent

        first = await get("/console/")
        overview = []
        for _ in range(RUNS):
            await _new_snapshots(db, clock.now(), 50, rng)
            overview.append(await get("/console/"))
        sku = [await get(f"/console/sku/{name}") for name in skus]
        inventory = [await get("/console/inventory", "restock-row") for _ in range(5)]
    return {
        "overview_first_load_ms": _ms(first),
        "overview_ms": _stats(overview),
        "sku_page_ms": _stats(sku),
        "inventory_page_ms": _stats(inventory),
    }


def _stats(times: list[float]) -> dict[str, float]:
    return {
        "median": _ms(statistics.median(times)),
        "min": _ms(min(times)),
        "max": _ms(max(times)),
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def measure(db: Database, listings: int) -> dict[str, Any]:
    """Generate, then time the overview (cold, then warm) and the SKU page."""
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    counts = await generate(db, listings, now)
    generate_s = time.perf_counter() - t0
    if not db.is_sqlite:
        # What autovacuum does after a bulk load: statistics for the planner and a visibility
        # map for index-only scans (without it every index hit also reads the table).
        async with db.writer_engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(sa.text("VACUUM ANALYZE"))
    gc.collect()
    clock = ManualClock(now)
    tracker = BuyBoxTracker()
    own = {OWN}

    async def overview() -> str:
        page = await load_overview(db, clock, CHANNELS, own_seller_ids=own, tracker=tracker)
        return "".join(
            sparkline([(s.at, s.ratio) for s in c.buy_box_days], label=c.status.channel)
            for c in page.channels
        )

    t0 = time.perf_counter()
    await overview()
    cold = time.perf_counter() - t0
    rng = random.Random(7)
    warm = []
    for _ in range(RUNS):
        await _new_snapshots(db, now, 50, rng)
        t0 = time.perf_counter()
        await overview()
        warm.append(time.perf_counter() - t0)

    problems = []
    for _ in range(5):
        t0 = time.perf_counter()
        await load_problems(db, clock, channels=CHANNELS)
        problems.append(time.perf_counter() - t0)

    # The first load after midnight closes a day from the snapshots stored since (no recount).
    clock.advance((day_ends(now)[-2] + timedelta(days=1, minutes=1) - now).total_seconds())
    await _new_snapshots(db, clock.now(), 50, rng)
    t0 = time.perf_counter()
    await overview()
    after_midnight = time.perf_counter() - t0

    sku_times, sizes = [], []
    picked = [f"SKU-{rng.randrange(listings // len(CHANNELS)):06d}" for _ in range(RUNS)]
    for n, sku in enumerate(picked):
        t0 = time.perf_counter()
        page = await load_sku_page(db, clock, sku, own_seller_ids=own)
        svg = [price_chart(p, start=page.start, end=page.end) for p in page.prices]
        svg.append(stock_chart(page.stock, start=page.start, end=page.end))
        sku_times.append(time.perf_counter() - t0)
        sizes.append(sum(map(len, svg)))
        if n == 0:
            first = {
                "channels": len(page.prices),
                "price_points": sum(len(p.our_price) + len(p.buy_box) for p in page.prices),
                "markers": sum(len(p.markers) for p in page.prices),
                "stock_events": len(page.stock.events),
            }
    t0 = time.perf_counter()
    counts |= await generate_inventory(db, now)
    generate_s += time.perf_counter() - t0
    config = bench_config()
    inventory_page = []
    for _ in range(5):
        t0 = time.perf_counter()
        loaded = await load_inventory_page(db, clock, config)
        inventory_page.append(time.perf_counter() - t0)
    assert loaded.restock
    assert loaded.health
    assert loaded.audit is not None
    sku_inventory = []
    for sku in picked:
        t0 = time.perf_counter()
        inv = await load_sku_inventory(db, clock, sku, history_days=365, thresholds=[21, 14])
        assert inv is not None
        cover_chart(inv)
        demand_chart(inv)
        sku_inventory.append(time.perf_counter() - t0)
    return {
        "rows": counts,
        "generate_s": round(generate_s, 1),
        "inventory_page_ms": _stats(inventory_page),
        "inventory_page_sample": {
            "restock_to_order": loaded.restock_total,
            "health_rows": loaded.health_total,
            "audit_cases": len(loaded.audit.cases),
        },
        "sku_inventory_ms": _stats(sku_inventory),
        "overview_first_load_ms": _ms(cold),
        "overview_ms": _stats(warm),
        "overview_after_midnight_ms": _ms(after_midnight),
        "problems_ms": _stats(problems),
        "sku_page_ms": _stats(sku_times),
        "through_the_app": await full_pages(
            db,
            clock,
            [f"SKU-{rng.randrange(listings // len(CHANNELS)):06d}" for _ in range(RUNS)],
            rng,
        ),
        "sku_page_svg_bytes": int(statistics.median(sizes)),
        "sku_page_sample": first,
        "runs": RUNS,
        "target_ms": 200,
    }


async def main(listings: int = 100_000) -> dict[str, Any]:
    """SQLite, then PostgreSQL when configured."""
    out: dict[str, Any] = {}
    async with bench_database(None) as db:
        out["sqlite"] = await measure(db, listings)
    url = os.environ.get(POSTGRES_ENV)
    if url:
        async with bench_database(url) as db:
            out["postgresql"] = await measure(db, listings)
    return out
