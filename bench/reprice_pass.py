"""One full reprice pass over a 100,000-listing catalogue on SQLite.

Measured: snapshot load (listing ⋈ product) → rule selection + strategy + guards for every
listing → recording one action row per decision (set-based inserts, digests updated in the same
transaction). Target (issue 2): ≤ 3 s wall on the 2-core development machine. The build of the
catalogue and the dispatch to a marketplace are timed separately and are not part of the target.
"""

from __future__ import annotations

import resource
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from daemon.clock import SystemClock
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import Action, Listing, Product
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.pricing import plan_and_record
from daemon.settings import PricingSettings
from daemon.snapshots import load_listing_rows

CHANNEL = "bench"
PRICING = PricingSettings.model_validate(
    {
        "guards": {"min_margin_pct": 5, "max_step_pct": 10},
        "rules": [
            {"match": {"sku": "CLEAR-*"}, "strategy": "cost_plus", "params": {"margin_pct": 10}},
            {"strategy": "cost_plus", "params": {"margin_pct": 30}},
        ],
    }
)


async def build(db: Database, listings: int) -> None:
    """Insert ``listings`` products and one listing each, priced so that every one will move."""
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
                "price": cost * 2,
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


async def one_pass(db: Database, outbox: Outbox) -> dict[str, Any]:
    """Load, decide, record: the measured part (the daemon's own functions)."""
    t0 = time.perf_counter()
    rows = await load_listing_rows(db, CHANNEL)
    t1 = time.perf_counter()
    counts = await plan_and_record(
        outbox,
        rows,
        channel=CHANNEL,
        pass_id="bench",
        now=datetime.now(UTC),
        pricing=PRICING,
        observations={},
        on_hand={},
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


async def main(listings: int = 100_000) -> dict[str, Any]:
    """Build the catalogue, run one pass, report wall time per phase and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        await upgrade(db)
        started = time.perf_counter()
        await build(db, listings)
        build_s = time.perf_counter() - started
        cpu0 = time.process_time()
        result = await one_pass(db, Outbox(db, SystemClock(), Metrics()))
        cpu_s = time.process_time() - cpu0
        async with db.read() as conn:
            recorded = (
                await conn.execute(sa.select(sa.func.count()).select_from(Action.__table__))
            ).scalar_one()  # type: ignore[attr-defined]
        await db.dispose()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "build_s": round(build_s, 2),
        **result,
        "cpu_s": round(cpu_s, 2),
        "rows_in_action": recorded,
        "decisions_per_s": round(listings / result["total_s"]),
        "peak_rss_mb": round(peak_mb),
        "target_total_s": 3.0,
        "meets_target": result["total_s"] <= 3.0,
    }
