"""Order webhook → quantity write at every other channel, at 100 orders/s.

The daemon runs in this process on its real code path (HTTP route, HMAC check, group-commit
inbox, inbox worker, ledger, allocation, outbox, connector push) with three in-memory mock
channels: orders arrive signed on ``web``; ``alpha`` and ``beta`` must show the new quantity.
A second process sends the orders at a fixed rate (open loop) and stamps each with its send
time; this process records when each stock write reaches a channel. An order's latency is the
time until both other channels have received a quantity at or below the one that order left.
Target (issue 5): p99 ≤ 250 ms at 100 orders/s.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import hmac
import json
import multiprocessing
import os
import random
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.webhook_ingest import free_port, wait_ready
from connectors.mock.channel import MockChannel
from domain.writes import PushResult, StockUpdate

SECRET = "bench-order-secret"
SKUS = 500
STOCK = 1_000_000
CONFIG = """
database: sqlite:///{db}
server: {{host: 127.0.0.1, port: {port}}}
schedule: {{reprice: 24h, stock_sync: 24h, reconcile: 24h}}
catalog: {{import_on_start: {catalog}}}
channels:
  web:
    kind: mock
    seed_catalog: {catalog}
    competitors: 0
    webhook_secret: "${{BENCH_ORDER_SECRET}}"
  alpha: {{kind: mock, seed_catalog: {catalog}, competitors: 0}}
  beta: {{kind: mock, seed_catalog: {catalog}, competitors: 0}}
pricing:
  rules: [{{strategy: hold}}]
"""


def write_catalog(path: Path) -> None:
    """SKUs listed on all three channels with plenty of stock."""
    lines = ["sku,cost,stock,id:web,id:alpha,id:beta"]
    lines += [f"S-{i:04d},5.00,{STOCK},W{i},A{i},B{i}" for i in range(SKUS)]
    path.write_text("\n".join(lines) + "\n")


def _generator(url: str, rate: float, seconds: float, out: Any) -> None:
    out.put(asyncio.run(_send_orders(url, rate, seconds)))


async def _send_orders(url: str, rate: float, seconds: float) -> list[tuple[str, float, int]]:
    """Send signed orders at ``rate``/s; return (sku, sent_at, status) per order."""
    rng = random.Random(7)
    total = int(rate * seconds)
    sent: list[tuple[str, float, int]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        start = time.perf_counter() + 0.2

        async def one(index: int) -> None:
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sku = f"S-{rng.randrange(SKUS):04d}"
            body = json.dumps(
                {
                    "order_id": f"O-{index}",
                    "status": "placed",
                    "lines": [{"sku": sku, "quantity": 1}],
                    "updated_at": datetime.now(UTC).isoformat(),
                }
            ).encode()
            headers = {
                "X-Mock-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
                "X-Mock-Event-Id": f"order-{index}",
                "X-Mock-Topic": "order",
            }
            sent_at = time.time()
            async with session.post(f"{url}/webhooks/web", data=body, headers=headers) as resp:
                await resp.read()
                sent.append((sku, sent_at, resp.status))

        await asyncio.gather(*(one(i) for i in range(total)))
    sent.sort(key=lambda item: item[1])
    return sent


def latencies(
    sent: Sequence[tuple[str, float, int]], arrivals: dict[tuple[str, str], list[tuple[float, int]]]
) -> list[float]:
    """Per order: time until every other channel received a quantity ≤ what it left."""
    left: dict[str, int] = defaultdict(lambda: STOCK)
    result = []
    for sku, sent_at, status in sent:
        if status != 200:
            continue
        left[sku] -= 1
        done = []
        for channel in ("alpha", "beta"):
            seen = arrivals.get((channel, sku), [])
            index = bisect.bisect_left(seen, (sent_at, -1))
            hit = next((t for t, qty in seen[index:] if qty <= left[sku]), None)
            done.append(hit)
        if all(t is not None for t in done):
            result.append(max(t for t in done if t is not None) - sent_at)
        else:
            result.append(float("inf"))
    return sorted(result)


async def main(listings: int = 0, rate: float = 100.0, seconds: float = 20.0) -> dict[str, Any]:
    """Run the daemon in-process, send orders from a second process, report latencies."""
    del listings
    from daemon.app import run_forever
    from daemon.config import load_config
    from daemon.db.engine import Database
    from daemon.db.migrate import upgrade
    from daemon.logging import configure_logging

    arrivals: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    original = MockChannel.push_stock

    async def recorded(self: MockChannel, updates: Sequence[StockUpdate]) -> list[PushResult]:
        now = time.time()
        for update in updates:
            arrivals[(self.name, update.sku)].append((now, update.quantity))
        return await original(self, updates)

    with tempfile.TemporaryDirectory(prefix="repricerd-orders-") as tmp:
        workdir = Path(tmp)
        catalog = workdir / "catalog.csv"
        write_catalog(catalog)
        port = free_port()
        config = workdir / "bench.yaml"
        config.write_text(CONFIG.format(db=workdir / "b.db", port=port, catalog=catalog))
        os.environ["BENCH_ORDER_SECRET"] = SECRET
        loaded = load_config(config)
        database = Database(loaded.settings.database)
        await upgrade(database)
        await database.dispose()
        redactor = configure_logging(level="warning")
        MockChannel.push_stock = recorded  # type: ignore[method-assign]
        ready = asyncio.Event()
        daemon = asyncio.create_task(run_forever(loaded, redactor, ready=ready))
        try:
            await asyncio.wait_for(ready.wait(), 60)
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url)
            await asyncio.sleep(3)  # the start-up passes (reconcile, stock) settle first
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            worker = context.Process(target=_generator, args=(url, rate, seconds, queue))
            worker.start()
            sent = await asyncio.to_thread(queue.get)
            worker.join()
            await asyncio.sleep(2)  # the last orders' pushes land
        finally:
            MockChannel.push_stock = original  # type: ignore[method-assign]
            os.kill(os.getpid(), 15)  # SIGTERM: run_forever's own clean shutdown
            await daemon
    for series in arrivals.values():
        series.sort()
    values = latencies(sent, arrivals)

    def pct(p: float) -> float:
        value = values[min(len(values) - 1, int(p * len(values)))]
        return round(value * 1000, 1)

    return {
        "orders": len(sent),
        "offered_per_s": rate,
        "acknowledged": sum(1 for _, _, status in sent if status == 200),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0 - 1e-9),
        "stock_writes": sum(len(v) for v in arrivals.values()),
    }
