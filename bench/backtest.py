"""``repricerd backtest`` over 30 days of hourly snapshots: ``--listings`` SKUs (at most 10,000).

Issue 18's target: 10,000 SKUs × 720 hourly passes (7.2 million decisions per config, two
configs) within 10 minutes on the 2-core machine. The history is written straight into a
migrated SQLite file with the ``sqlite3`` module (the bench measures the replay, not the
ingest): per SKU a product and listing, one offer snapshot an hour with three rivals on a
random walk (the worst case: the competition changes every hour, so every snapshot is stored),
and about two orders a day. Measured: the whole ``backtest_channel`` (stream the snapshots,
decide every listing every hour for both configs with guards, drift and breaker, the market
model, the competition of the most-changed SKUs for the report), then the summary and the
HTML report; ``time.process_time`` (plus the CPU of the process replaying the candidate,
``--jobs 2``) beside the wall clock (the machine is shared).
"""

from __future__ import annotations

import json
import os
import random
import resource
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from daemon.backtest import BacktestRequest, backtest_channel
from daemon.backtest_report import render_html, summarise
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.settings import PricingSettings

CHANNEL = "bench"
DAYS = 30
MAX_SKUS = 10_000
START = datetime(2026, 11, 1, tzinfo=UTC)


def _pricing(by: str, margin: int) -> PricingSettings:
    return PricingSettings.model_validate(
        {
            "guards": {"min_margin_pct": margin, "max_step_pct": 10, "max_daily_move_pct": 25},
            "rules": [
                {
                    "strategy": "buy_box",
                    "params": {"position": "beat", "by_amount": by},
                }
            ],
        }
    )


BASELINE = _pricing("0.01", 10)
CANDIDATE = _pricing("0.05", 3)


def generate(path: Path, skus: int, days: int = DAYS) -> int:
    """Write the history; return the number of snapshots."""
    rng = random.Random(18)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    stamp = (START - timedelta(days=1)).isoformat()
    products, listings, walks = [], [], []
    for index in range(skus):
        sku = f"SKU-{index:05d}"
        cost = Decimal(rng.randint(500, 5000)) / 100
        price = (cost * Decimal("1.4")).quantize(Decimal("0.01"))
        products.append((sku, "USD", str(cost), "0", None, str(cost * 3), "[]", "{}", stamp, stamp))
        listings.append((CHANNEL, sku, "USD", str(price), "active", "{}", "merchant", stamp, stamp))
        walks.append((sku, [float(price) * rng.uniform(0.9, 1.1) for _ in range(3)]))
    conn.executemany(
        "INSERT INTO product (sku, currency, cost, fees, min_price, max_price, tags, "
        "kit_components, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        products,
    )
    conn.executemany(
        "INSERT INTO listing (channel, sku, currency, price, status, external_ids, fulfillment, "
        "discovered_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
        listings,
    )
    count = 0
    orders = []
    for hour in range(days * 24):
        at = (START + timedelta(hours=hour)).isoformat()
        rows = []
        for sku, walk in walks:
            offers = []
            for rival, value in enumerate(walk):
                value *= rng.uniform(0.985, 1.015)
                walk[rival] = value
                offers.append(
                    {
                        "seller_id": f"R{rival}",
                        "price": f"{value:.2f}",
                        "shipping": "0",
                        "fulfillment": "fbm",
                        "rating_pct": 95,
                    }
                )
            best = min(offers, key=lambda o: Decimal(o["price"]))
            rows.append(
                (CHANNEL, sku, "poll", best["price"], best["seller_id"], json.dumps(offers), at)
            )
            if rng.random() < 2 / 24:
                orders.append((sku, "order", -1, f"o{count}", CHANNEL, at, at))
            count += 1
        conn.executemany(
            "INSERT INTO offer_snapshot (channel, sku, source, buy_box_price, buy_box_seller, "
            "offers, observed_at) VALUES (?,?,?,?,?,?,?)",
            rows,
        )
    conn.executemany(
        "INSERT INTO stock_event (sku, kind, delta, external_ref, channel, occurred_at, "
        "recorded_at) VALUES (?,?,?,?,?,?,?)",
        orders,
    )
    conn.commit()
    conn.close()
    return count


async def main(listings: int = MAX_SKUS) -> dict[str, Any]:
    """Generate the history, replay it for two configs, report the figures."""
    skus = min(listings, MAX_SKUS)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.db"
        db = Database(f"sqlite:///{path}")
        await upgrade(db)
        await db.dispose()
        began = time.perf_counter()
        snapshots = generate(path, skus)
        generated = time.perf_counter() - began
        db = Database(f"sqlite:///{path}")
        request = BacktestRequest(
            channels=(CHANNEL,),
            baseline=BASELINE,
            candidate=CANDIDATE,
            since=START,
            until=START + timedelta(days=DAYS) - timedelta(hours=1),
        )
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        # The candidate in a second process (``--jobs 2``): its CPU is the children's.
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        result = await backtest_channel(db, request, CHANNEL, jobs=2)
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - children
        assert result is not None
        replayed = time.perf_counter() - wall
        html = render_html([result], summarise([result]), title="bench")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        await db.dispose()
    decisions = result.ticks * skus
    return {
        "skus": skus,
        "passes": result.ticks,
        "snapshots": snapshots,
        "decisions_per_config": decisions,
        "generate_s": round(generated, 1),
        "replay_s": round(replayed, 1),
        "total_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "worker_cpu_s": round(children, 1),
        "cpu_us_per_decision": round((cpu + children) * 1e6 / (2 * decisions)),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "worker_max_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024,
        "decisions_per_s": round(2 * decisions / replayed),
        "report_kb": len(html) // 1024,
        "load_1m_before": round(load, 2),
        "extrapolated_10000_skus_s": round(replayed * MAX_SKUS / skus),
        "extrapolated_10000_skus_cpu_s": round((cpu + children) * MAX_SKUS / skus),
    }
