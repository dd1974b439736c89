"""10,000 price changes to the mock Walmart Marketplace at its real limits (real clock).

Path measured: 10,000 ``planned`` price intents in the daemon's outbox (as one reprice pass
records them) → ``Outbox.dispatch`` → the real ``WalmartChannel`` → HTTP on loopback → the mock
Walmart (its own process, ``bench.mock_process``) with its default limits:
feeds 10/hour per type (burst 10), PUT /v3/price 300/hour, feed status 300/minute. 10,000
updates are above ``single_max_batch``, so they go as ONE price feed (≤ 10,000 items per
feed), polled with ``includeDetails=true`` and read back 50 items per page; each item's
ingestion status completes its action row.

Walmart's feed processing delay is minutes (the mock's default is 300 s, "allow five
minutes"); the bench uses ``FEED_SECONDS`` (default 60 s; ``BENCH_WALMART_FEED_SECONDS``
overrides it) and polls every ``FEED_SECONDS / 20``. Lower bound from the limits and that delay:
one feed submission (within the burst of 10: no wait) + the processing delay + 200 detail pages
(within the status burst of 300: no wait) = the delay itself. Single PUTs instead would need
(10,000 - 300) / (300/h) = 32.3 h: the bench reports that bound too.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench.mock_process import mock_process
from connectors.mock.walmart.app import start
from connectors.mock.walmart.const import MAX_FEED_DETAIL_LIMIT, MAX_FEED_ITEMS, RATE_LIMITS
from connectors.mock.walmart.state import WalmartMockState
from daemon.app import start_runtime
from daemon.catalog import import_catalog
from daemon.config import LoadedConfig
from daemon.db.models import ActionKind, ActionStatus
from daemon.intents import PlannedWrite, new_idempotency_key
from daemon.logging import SecretRedactor
from daemon.settings import Settings
from domain.clock import SystemClock

CHANNEL = "walmart-bench"
CHANGES = 10_000
FEED_SECONDS = float(os.environ.get("BENCH_WALMART_FEED_SECONDS", "60"))
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-client-secret"


def write_catalog(path: Path, count: int) -> None:
    """``count`` SKUs with Walmart item ids, seeded prices (the reference) and stock."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "sku",
                "currency",
                "cost",
                "min_price",
                "max_price",
                "stock",
                f"id:{CHANNEL}",
                f"price:{CHANNEL}",
            ]
        )
        for i in range(count):
            cost = Decimal(500 + i % 2000) / 100
            writer.writerow(
                [f"WB-{i:05d}", "USD", cost, cost, cost * 4, 10, 800000000 + i, cost * 2]
            )


def settings(tmp: Path, endpoint: str) -> Settings:
    """The daemon's config: SQLite, one walmart channel at the mock, feeds polled often."""
    return Settings.model_validate(
        {
            "database": f"sqlite:///{tmp / 'bench.db'}",
            "channels": {
                CHANNEL: {
                    "kind": "walmart",
                    "endpoint": endpoint,
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "wfs": False,
                    "feed_poll_interval_s": FEED_SECONDS / 20,
                    "feed_timeout_s": FEED_SECONDS * 4,
                }
            },
            "pricing": {"rules": [{"strategy": "hold"}]},
        }
    )


def lower_bounds() -> dict[str, float]:
    """Least wall time the mock's limits allow for CHANGES price updates."""
    feeds = math.ceil(CHANGES / MAX_FEED_ITEMS)
    feed_limit = RATE_LIMITS["feed:price"]
    pages = math.ceil(CHANGES / MAX_FEED_DETAIL_LIMIT)
    status_limit = RATE_LIMITS["getFeedItemStatus"]
    # Feeds run one after another in a push (each waits for its own ingestion report).
    feed_path = feed_limit.lower_bound_s(feeds) + feeds * FEED_SECONDS
    feed_path += status_limit.lower_bound_s(pages)
    return {
        "feed_path_s": round(feed_path, 3),
        "single_put_path_s": round(RATE_LIMITS["updatePrice"].lower_bound_s(CHANGES), 1),
    }


async def main(listings: int = CHANGES) -> dict[str, Any]:
    """Push CHANGES price changes once; ``listings`` is ignored (the brief fixes 10,000)."""
    del listings
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        catalog = tmp / "catalog.csv"
        write_catalog(catalog, CHANGES)
        async with mock_process(
            start,
            WalmartMockState,
            catalog,
            channel=CHANNEL,
            competitors=1,
            feed_processing_s=FEED_SECONDS,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
        ) as base_url:
            config = LoadedConfig(settings(tmp, base_url), tmp / "bench.yaml", "bench", ())
            rt = await start_runtime(config, SecretRedactor(), SystemClock())
            await import_catalog(rt.db, catalog, clock=rt.clock, known_channels={CHANNEL})
            now = rt.clock.now()
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
                seeded = (await http.get("/_mock/state")).json()["listings"]
            targets = {row["sku"]: Decimal(row["price"]) + Decimal("0.37") for row in seeded}
            t0 = time.perf_counter()
            await rt.outbox.record(
                [
                    PlannedWrite(
                        pass_id="bench",
                        kind=ActionKind.PRICE,
                        channel=CHANNEL,
                        sku=sku,
                        status=ActionStatus.PLANNED,
                        new_price=price,
                        currency="USD",
                        idempotency_key=new_idempotency_key(),
                        created_at=now,
                    )
                    for sku, price in targets.items()
                ]
            )
            t1 = time.perf_counter()
            report = await rt.outbox.dispatch(rt.channels[CHANNEL], ActionKind.PRICE)
            t2 = time.perf_counter()
            await rt.close()
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
                final = (await http.get("/_mock/state")).json()
    live = {row["sku"]: Decimal(row["price"]) for row in final["listings"]}
    applied = sum(1 for sku, price in targets.items() if live.get(sku) == price)
    bounds = lower_bounds()
    dispatch_s = t2 - t1
    return {
        "changes": CHANGES,
        "feed_processing_s": FEED_SECONDS,
        "record_s": round(t1 - t0, 3),
        "dispatch_wall_s": round(dispatch_s, 3),
        "lower_bound_s": bounds["feed_path_s"],
        "ratio_to_lower_bound": round(dispatch_s / bounds["feed_path_s"], 3),
        "single_put_lower_bound_s": bounds["single_put_path_s"],
        "calls": final["calls"],
        "http_429": final["throttled"],
        "dispatch": vars(report),
        "prices_applied_on_mock": applied,
    }
