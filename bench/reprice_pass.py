"""One full reprice pass over a 100,000-listing catalogue on SQLite.

Measured: snapshot load (listing ⋈ product) → rule selection + strategy + guards for every
listing → recording one action row per decision (set-based inserts, digests updated in the same
transaction). Target (issue 2): ≤ 3 s wall on the 2-core development machine. The build of the
catalogue and the dispatch to a marketplace are timed separately and are not part of the target.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from daemon.db.engine import Database, normalize_database_url
from daemon.db.migrate import upgrade
from daemon.db.models import Listing, Product
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.pricing import load_inputs, plan_and_record
from daemon.settings import PricingSettings
from daemon.snapshots import load_listing_rows
from domain.clock import SystemClock

CHANNEL = "bench"
# Set to a PostgreSQL server URL to run the pass benches there (a fresh database, dropped after).
POSTGRES_ENV = "REPRICERD_BENCH_POSTGRES_URL"
PRICING = PricingSettings.model_validate(
    {
        # The breaker would (rightly) stop a pass that moves every listing; the bench measures
        # the write path, so it is set not to trip.
        "guards": {"min_margin_pct": 5, "max_step_pct": 10, "breaker": {"share_pct": 100}},
        "rules": [
            {"match": {"sku": "CLEAR-*"}, "strategy": "cost_plus", "params": {"margin_pct": 10}},
            {"strategy": "cost_plus", "params": {"margin_pct": 30}},
        ],
    }
)


def target_price(sku: str, cost: Decimal) -> Decimal:
    """What the bench rules settle on: cost × (1 + margin) + 1.25, in cents."""
    margin = Decimal("1.1") if sku.startswith("CLEAR") else Decimal("1.3")
    return (cost * margin + Decimal("1.25")).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


async def build(db: Database, listings: int, *, at_target: bool = False) -> None:
    """Insert ``listings`` products and one listing each: priced to move, or already at target."""
    now = datetime.now(UTC)
    products, rows = [], []
    for i in range(listings):
        sku = f"{'CLEAR' if i % 10 == 0 else 'SKU'}-{i:07d}"
        cost = Decimal(500 + i % 5000) / 100
        products.append(
            {
                "sku": sku,
                "currency": "USD",
                "cost": cost,
                "fees": Decimal("1.25"),
                "min_price": cost,
                "max_price": cost * 4,
                "tags": ["bench"],
                "kit_components": {},
                "created_at": now,
                "updated_at": now,
            }
        )
        rows.append(
            {
                "channel": CHANNEL,
                "sku": sku,
                "external_id": f"X{i}",
                "external_ids": {},
                "fulfillment": "merchant",
                "currency": "USD",
                "price": target_price(sku, cost) if at_target else cost * 2,
                "quantity": 5,
                "status": "active",
                "discovered_at": now,
                "updated_at": now,
            }
        )
    async with db.write() as conn:
        for start in range(0, listings, 10_000):
            await conn.execute(sa.insert(Product.__table__), products[start : start + 10_000])  # type: ignore[attr-defined]
            await conn.execute(sa.insert(Listing.__table__), rows[start : start + 10_000])  # type: ignore[attr-defined]


@asynccontextmanager
async def bench_database(server: str | None) -> AsyncIterator[Database]:
    """A fresh migrated database: SQLite in a temporary directory (``server`` None), or a new
    PostgreSQL database on ``server`` (dropped afterwards)."""
    if not server:
        with tempfile.TemporaryDirectory() as tmp:
            db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
            await upgrade(db)
            try:
                yield db
            finally:
                await db.dispose()
        return
    base = normalize_database_url(server)
    name = f"repricerd_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(base, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    db = Database(base.set(database=name).render_as_string(hide_password=False))
    try:
        await upgrade(db)
        yield db
    finally:
        await db.dispose()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def backend() -> str:
    """Which database the pass benches run on."""
    return "postgresql" if os.environ.get(POSTGRES_ENV) else "sqlite"


async def one_pass(db: Database, outbox: Outbox) -> dict[str, Any]:
    """Load, decide, record: the measured part (the daemon's own functions)."""
    t0 = time.perf_counter()
    rows = await load_listing_rows(db, CHANNEL)
    inputs = await load_inputs(
        db,
        channel=CHANNEL,
        now=datetime.now(UTC),
        pricing=PRICING,
        observations={},
        own_seller_ids=frozenset(),
    )
    t1 = time.perf_counter()
    counts, _breaker = await plan_and_record(
        outbox, rows, channel=CHANNEL, pass_id="bench", pricing=PRICING, inputs=inputs
    )
    t2 = time.perf_counter()
    recorded = counts.pop("recorded")
    return {
        "listings": len(rows),
        "decisions": counts,
        "actions": recorded,
        "load_s": round(t1 - t0, 3),
        "decide_and_record_s": round(t2 - t1, 3),
        "total_s": round(t2 - t0, 3),
    }


async def scenario(listings: int, *, at_target: bool, passes: int) -> list[dict[str, Any]]:
    """Build a fresh catalogue and run ``passes`` consecutive passes over it."""
    results = []
    async with bench_database(os.environ.get(POSTGRES_ENV)) as db:
        started = time.perf_counter()
        await build(db, listings, at_target=at_target)
        build_s = time.perf_counter() - started
        outbox = Outbox(db, SystemClock(), Metrics())
        for _ in range(passes):
            cpu0 = time.process_time()
            result = await one_pass(db, outbox)
            results.append(
                {
                    **result,
                    "cpu_s": round(time.process_time() - cpu0, 2),
                    "build_s": round(build_s, 2),
                }
            )
    return results


async def main(listings: int = 100_000) -> dict[str, Any]:
    """Three passes: every listing changes; first decisions at target; the steady state."""
    changing = await scenario(listings, at_target=False, passes=1)
    settled = await scenario(listings, at_target=True, passes=2)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "every_listing_changes": changing[0],
        "first_decisions_all_hold": settled[0],
        "steady_state_no_change": settled[1],
        "peak_rss_mb": round(peak_mb),
        "database": backend(),
        "target_total_s": 3.0,
    }
    for name in ("every_listing_changes", "first_decisions_all_hold", "steady_state_no_change"):
        out[name]["decisions_per_s"] = round(listings / out[name]["total_s"])
    return out
