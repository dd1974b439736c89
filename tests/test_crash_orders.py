"""kill -9 of `repricerd run` in the middle of a burst of Shopify orders, then a restart: no
acknowledged webhook is lost, no order is applied twice, and the mock marketplaces (a separate
process, so they survive the crash) never applied a write twice for one idempotency key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest

from tests.crash_fixtures import (
    child_env,
    cli,
    free_port,
    mock_state,
    mocks_running,
    start,
    write_config,
)

pytestmark = pytest.mark.slow

SKUS = 30
STOCK = 100
ORDERS = 160
SECRET = "crash-test-webhook-secret"
TOKEN = "shpat_crash_test_token"


def setup(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, int]]:
    ports = {"daemon": free_port(), "shop": free_port(), "store2": free_port()}
    lines = ["sku,cost,min_price,max_price,stock,id:shop,id:store2,price:shop,price:store2"]
    for i in range(SKUS):
        lines.append(f"C-{i:03d},5.00,8.00,30.00,{STOCK},{1000 + i},{2000 + i},12.00,12.00")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("\n".join(lines) + "\n")
    channels = f"""  shop:
    kind: shopify
    shop: crash-a.myshopify.com
    endpoint: http://127.0.0.1:{ports["shop"]}
    access_token: ${{CRASH_TOKEN}}
    webhook_secret: ${{CRASH_SECRET}}
  store2:
    kind: shopify
    shop: crash-b.myshopify.com
    endpoint: http://127.0.0.1:{ports["store2"]}
    access_token: ${{CRASH_TOKEN}}
    webhook_secret: ${{CRASH_SECRET}}
"""
    config = write_config(tmp_path, ports["daemon"], catalog, channels)
    return config, child_env(CRASH_TOKEN=TOKEN, CRASH_SECRET=SECRET), ports


def order_delivery(index: int) -> tuple[bytes, dict[str, str]]:
    sku = f"C-{index % SKUS:03d}"
    now = "2026-11-27T12:00:00+00:00"
    body = json.dumps(
        {
            "id": 5_000_000 + index,
            "admin_graphql_api_id": f"gid://shopify/Order/{5_000_000 + index}",
            "created_at": now,
            "updated_at": now,
            "line_items": [{"id": index, "sku": sku, "quantity": 1, "variant_id": 1000}],
        }
    ).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Webhook-Id": f"crash-{index}",
        "X-Shopify-Shop-Domain": "crash-a.myshopify.com",
        "X-Shopify-Triggered-At": now,
        "X-Shopify-API-Version": "2026-04",
        "Content-Type": "application/json",
    }
    return body, headers


async def burst(port: int, daemon: subprocess.Popen[str]) -> set[str]:
    """Send the orders 8 at a time; kill -9 the daemon after a third are acknowledged."""
    acked: set[str] = set()
    url = f"http://127.0.0.1:{port}/webhooks/shop"
    semaphore = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:

        async def one(index: int) -> None:
            body, headers = order_delivery(index)
            async with semaphore:
                try:
                    async with session.post(url, data=body, headers=headers) as response:
                        if response.status == 200:
                            acked.add(headers["X-Shopify-Webhook-Id"])
                except (aiohttp.ClientError, TimeoutError):
                    return  # not acknowledged: Shopify would deliver it again
                if len(acked) == ORDERS // 3 and daemon.poll() is None:
                    daemon.send_signal(signal.SIGKILL)

        await asyncio.gather(*(one(i) for i in range(ORDERS)))
    return acked


def test_kill_9_during_an_order_burst_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    config, env, ports = setup(tmp_path)
    with mocks_running(config, env, tmp_path, "store2: mock"):
        daemon = start(["run", "-c", str(config)], env, tmp_path, '"pass_name": "stock_sync"')
        acked = asyncio.run(burst(ports["daemon"], daemon))
        daemon.wait(timeout=10)
        assert daemon.returncode == -signal.SIGKILL
        assert ORDERS // 3 <= len(acked) < ORDERS  # the crash cut the burst

        again = cli(["run", "--once", "-c", str(config)], env, tmp_path)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]

        db = sqlite3.connect(tmp_path / "crash.db")
        try:
            stored = dict(
                db.execute(
                    "SELECT dedupe_key, processed_at FROM webhook_event"
                    " WHERE topic = 'orders/create'"
                )
            )
            orders = db.execute(
                "SELECT sku, count(*), sum(delta) FROM stock_event"
                " WHERE kind = 'order' GROUP BY sku"
            ).fetchall()
            refs = db.execute(
                "SELECT count(*), count(DISTINCT external_ref) FROM stock_event"
            ).fetchone()
            open_rows = db.execute(
                "SELECT count(*) FROM action WHERE status IN ('planned', 'sent')"
            ).fetchone()[0]
        finally:
            db.close()
        # Nothing acknowledged was lost, and everything stored was processed.
        assert acked <= set(stored)
        assert all(processed is not None for processed in stored.values())
        # Each stored order applied exactly once.
        assert sum(count for _, count, _ in orders) == len(stored)
        assert refs[0] == refs[1]
        assert open_rows == 0
        sold = {sku: -delta for sku, _, delta in orders}
        for name in ("shop", "store2"):
            state = mock_state(ports[name])
            effects = state["counters"]["effects"]
            assert effects, name  # stock writes reached this shop
            assert all(count == 1 for count in effects.values()), name
            shown = {v["sku"]: sum(v["available"].values()) for v in state["variants"]}
            for i in range(SKUS):
                sku = f"C-{i:03d}"
                assert shown[sku] == STOCK - sold.get(sku, 0), (name, sku)
