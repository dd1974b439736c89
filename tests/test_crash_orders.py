"""kill -9 of `repricerd run` in the middle of a burst of Shopify orders, then a restart: no
acknowledged webhook is lost, no order is applied twice, and the mock marketplaces (a separate
process, so they survive the crash) never applied a write twice for one idempotency key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytestmark = pytest.mark.slow

SKUS = 30
STOCK = 100
ORDERS = 160
SECRET = "crash-test-webhook-secret"
TOKEN = "shpat_crash_test_token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup(tmp_path: Path) -> tuple[Path, dict[str, str], dict[str, int]]:
    ports = {"daemon": free_port(), "shop": free_port(), "store2": free_port()}
    lines = ["sku,cost,min_price,max_price,stock,id:shop,id:store2,price:shop,price:store2"]
    for i in range(SKUS):
        lines.append(f"C-{i:03d},5.00,8.00,30.00,{STOCK},{1000 + i},{2000 + i},12.00,12.00")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("\n".join(lines) + "\n")
    config = tmp_path / "crash.yaml"
    config.write_text(
        f"""
database: sqlite:///{tmp_path / "crash.db"}
server: {{host: 127.0.0.1, port: {ports["daemon"]}}}
schedule: {{reprice: 24h, stock_sync: 24h, reconcile: 24h}}
catalog: {{import_on_start: {catalog}}}
channels:
  shop:
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
pricing:
  rules: [{{strategy: hold}}]
"""
    )
    env = {
        **os.environ,
        "CRASH_TOKEN": TOKEN,
        "CRASH_SECRET": SECRET,
        "REPRICERD_LOG_LEVEL": "info",
    }
    return config, env, ports


def start(args: list[str], env: dict[str, str], cwd: Path, until: str) -> subprocess.Popen[str]:
    """Start ``python -m daemon ARGS`` (output to a log file, never a pipe that could fill up
    and stall it) and wait until ``until`` appears in that log."""
    log = cwd / f"{args[0]}-{time.monotonic_ns()}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", *args],
            env=env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if until in log.read_text():
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"never saw {until!r}:\n" + log.read_text()[-3000:])


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


def mock_state(port: int) -> Any:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /_mock/state HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def test_kill_9_during_an_order_burst_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    config, env, ports = setup(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "daemon", "db", "upgrade", "-c", str(config)],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    mocks = start(["mock-marketplaces", "-c", str(config)], env, tmp_path, "store2: mock")
    try:
        daemon = start(["run", "-c", str(config)], env, tmp_path, '"pass_name": "stock_sync"')
        acked = asyncio.run(burst(ports["daemon"], daemon))
        daemon.wait(timeout=10)
        assert daemon.returncode == -signal.SIGKILL
        assert ORDERS // 3 <= len(acked) < ORDERS  # the crash cut the burst

        again = subprocess.run(
            [sys.executable, "-m", "daemon", "run", "--once", "-c", str(config)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
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
    finally:
        mocks.send_signal(signal.SIGTERM)
        mocks.wait(timeout=10)
