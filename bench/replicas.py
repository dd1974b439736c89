"""Several replicas on one PostgreSQL: one reprice round over every account, RSS, webhook spread.

Three `repricerd run` processes share a fresh PostgreSQL database; ``accounts`` in-memory mock
channels (one marketplace account each) list the same ``listings`` SKUs. Once the leases are
balanced and every channel's discovery has run, ``POST /sync {"pass": "reprice"}`` goes to every
replica at once: each reprices the channels it owns. Measured: the time until the last replica
finished (one round over all accounts), each replica's RSS, and a burst of signed order webhooks
sent round robin: acknowledged per replica, and the time until the owners applied them all.

    python -m bench.replicas --accounts 12 --listings 2000
    (REPRICERD_BENCH_POSTGRES_URL, else REPRICERD_TEST_POSTGRES_URL, names the server)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from daemon.db.engine import Database, normalize_database_url
from daemon.db.migrate import upgrade

SECRET = "bench-replicas-webhook-secret"
TOKEN = "bench-replicas-sync-token"
REPLICAS = 3


def write_config(tmp: Path, accounts: int, listings: int) -> Path:
    """A catalogue of ``listings`` SKUs listed on ``accounts`` mock channels, and its config."""
    names = [f"acct-{i:03d}" for i in range(accounts)]
    csv = tmp / "catalog.csv"
    with csv.open("w") as out:
        out.write("sku,cost,fees,min_price,max_price,stock," + ",".join(f"id:{n}" for n in names))
        out.write("\n")
        for i in range(listings):
            ids = ",".join(f"{n}-{i}" for n in names)
            out.write(f"B-{i:06d},10.00,1.00,12.00,60.00,500,{ids}\n")
    channels = "".join(
        f"  {n}:\n    kind: mock\n    seed_catalog: {csv}\n    competitors: 2\n    seed: {i}\n"
        "    max_batch: 500\n    webhook_secret: ${BENCH_WEBHOOK_SECRET}\n"
        for i, n in enumerate(names)
    )
    config = tmp / "repricerd.yaml"
    config.write_text(
        "server:\n  host: 127.0.0.1\n  port: 0\n  sync_token: ${BENCH_SYNC_TOKEN}\n"
        "schedule: {reprice: 24h, stock_sync: 24h, reconcile: 24h, orders_poll: null}\n"
        f"catalog: {{currency: USD, import_on_start: {csv}}}\n"
        f"channels:\n{channels}"
        "pricing:\n"
        "  guards: {breaker: {share_pct: 100, move_pct: 100}}\n"
        "  rules: [{strategy: cost_plus, params: {margin_pct: 30}}]\n"
    )
    return config


def spawn(config: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start one `repricerd run` replica logging to ``log``."""
    with log.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "-c", str(config)],
            env=env,
            cwd=config.parent,
            stderr=handle,
            stdout=subprocess.DEVNULL,
        )


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def events(log: Path) -> list[dict[str, Any]]:
    """The JSON log events of one replica so far."""
    found = []
    for line in log.read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            found.append(json.loads(line))
    return found


async def wait_for(check: Any, within: float, what: str) -> float:
    """Poll ``check`` until truthy; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise TimeoutError(what)


async def run(accounts: int, listings: int, webhooks: int) -> dict[str, Any]:
    """Start the replicas, time one reprice round and a webhook burst, report."""
    base = os.environ.get("REPRICERD_BENCH_POSTGRES_URL") or os.environ.get(
        "REPRICERD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    admin_url = normalize_database_url(base)
    name = f"repricerd_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    await upgrade(db)
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    result: dict[str, Any] = {"accounts": accounts, "listings_per_account": listings}
    try:
        with tempfile.TemporaryDirectory(prefix="repricerd-bench-replicas-") as tmp_name:
            tmp = Path(tmp_name)
            config = write_config(tmp, accounts, listings)
            env = {
                **os.environ,
                "REPRICERD_DATABASE": url,
                "BENCH_WEBHOOK_SECRET": SECRET,
                "BENCH_SYNC_TOKEN": TOKEN,
            }
            started = time.monotonic()
            for i in range(REPLICAS):
                log = tmp / f"replica-{i}.log"
                proc = spawn(config, env, log)
                procs.append((proc, log))
            ports: dict[int, int] = {}

            async def ready() -> bool:
                for i, (_, log) in enumerate(procs):
                    for event in events(log):
                        if event.get("event") == "daemon_ready":
                            ports[i] = event["port"]
                return len(ports) == REPLICAS

            await wait_for(ready, 300, "replicas ready")

            async def owned() -> dict[str, str]:
                async with db.read() as conn:
                    rows = await conn.execute(
                        sa.text(
                            "SELECT channel, holder FROM channel_lease"
                            " WHERE holder IS NOT NULL AND expires_at > now()"
                        )
                    )
                    return dict(rows.all())

            async def balanced() -> bool:
                found = await owned()
                counts = sorted(list(found.values()).count(h) for h in set(found.values()))
                return (
                    len(found) == accounts
                    and len(counts) == REPLICAS
                    and (counts[-1] - counts[0] <= 1)
                )

            await wait_for(balanced, 300, "leases balanced")

            async def discovered() -> bool:
                done = sum(
                    1
                    for _, log in procs
                    for e in events(log)
                    if e.get("event") == "pass_finished" and e.get("pass_name") == "reconcile"
                )
                return done >= accounts

            await wait_for(discovered, 900, "every account discovered")
            result["start_to_discovered_s"] = round(time.monotonic() - started, 1)
            owners = await owned()
            result["accounts_per_replica"] = sorted(
                list(owners.values()).count(h) for h in set(owners.values())
            )
            offsets = [log.stat().st_size for _, log in procs]
            async with aiohttp.ClientSession() as session:
                round_started = time.monotonic()
                for port in ports.values():
                    async with session.post(
                        f"http://127.0.0.1:{port}/sync",
                        json={"pass": "reprice"},
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    ) as response:
                        assert response.status == 202, await response.text()
                finished: dict[int, float] = {}

                async def repriced() -> bool:
                    for i, (_, log) in enumerate(procs):
                        if i in finished:
                            continue
                        with log.open("rb") as handle:
                            handle.seek(offsets[i])
                            tail = handle.read().splitlines()
                        for line in tail:
                            if b'"pass_finished"' in line and b'"reprice"' in line:
                                finished[i] = time.monotonic() - round_started
                    return len(finished) == REPLICAS

                await wait_for(repriced, 1800, "the reprice round")
                result["reprice_round_s"] = round(max(finished.values()), 2)
                result["reprice_per_replica_s"] = [round(finished[i], 2) for i in sorted(finished)]
                async with db.read() as conn:
                    result["price_writes_confirmed"] = (
                        await conn.execute(
                            sa.text(
                                "SELECT count(*) FROM action"
                                " WHERE kind = 'price' AND status = 'confirmed'"
                            )
                        )
                    ).scalar_one()
                result["rss_mb"] = [round(rss_mb(p.pid), 1) for p, _ in procs]
                result["webhooks"] = await burst(session, list(ports.values()), accounts, webhooks)

                async def applied() -> bool:
                    async with db.read() as conn:
                        left = (
                            await conn.execute(
                                sa.text(
                                    "SELECT count(*) FROM webhook_event WHERE processed_at IS NULL"
                                )
                            )
                        ).scalar_one()
                    return bool(left == 0)

                waited = await wait_for(applied, 300, "webhooks applied")
                result["webhooks"]["applied_after_last_ack_s"] = round(waited, 2)
            result["rss_mb_after"] = [round(rss_mb(p.pid), 1) for p, _ in procs]
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
            if proc.poll() is None:
                proc.kill()
        await db.dispose()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    return result


async def burst(
    session: aiohttp.ClientSession, ports: list[int], accounts: int, count: int
) -> dict[str, Any]:
    """Send ``count`` signed orders round robin over the replicas, 32 at a time."""
    acked = dict.fromkeys(ports, 0)
    semaphore = asyncio.Semaphore(32)

    async def one(n: int) -> None:
        channel = f"acct-{n % accounts:03d}"
        body = json.dumps(
            {
                "order_id": f"bench-{n}",
                "status": "placed",
                "lines": [{"sku": f"B-{n % 97:06d}", "quantity": 1}],
                "updated_at": "2026-12-08T00:00:00+00:00",
            }
        ).encode()
        headers = {
            "X-Mock-Signature": hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
            "X-Mock-Event-Id": f"bench-{n}",
            "X-Mock-Topic": "order",
        }
        port = ports[n % len(ports)]
        async with (
            semaphore,
            session.post(
                f"http://127.0.0.1:{port}/webhooks/{channel}", data=body, headers=headers
            ) as response,
        ):
            if response.status == 200:
                acked[port] += 1

    started = time.monotonic()
    await asyncio.gather(*(one(n) for n in range(count)))
    seconds = time.monotonic() - started
    return {
        "sent": count,
        "acked_per_replica": list(acked.values()),
        "ack_seconds": round(seconds, 2),
        "acked_per_s": round(sum(acked.values()) / seconds, 1),
    }


async def main(listings: int = 2_000, accounts: int = 12, webhooks: int = 3_000) -> dict[str, Any]:
    """Run the scenario once (``make bench`` does not: it needs PostgreSQL)."""
    return await run(accounts, listings, webhooks)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.replicas")
    parser.add_argument("--accounts", type=int, default=12)
    parser.add_argument("--listings", type=int, default=2_000, help="per account")
    parser.add_argument("--webhooks", type=int, default=3_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.listings, args.accounts, args.webhooks)), indent=2))
