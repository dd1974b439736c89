"""Three `repricerd run` replicas on one PostgreSQL: ownership, webhooks everywhere, kill -9,
SIGSTOP past the lease, and a rolling restart (issue 15's acceptance, on in-memory markets)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from tests.conftest import POSTGRES_ENV, POSTGRES_URL, _drop_postgres_database
from tests.conftest import _fresh_postgres_database as fresh_database

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not POSTGRES_URL, reason=f"{POSTGRES_ENV} is not set"),
]

TTL = 3.0
CHANNELS = [f"m{i}" for i in range(1, 7)]
SKUS = 150
SECRET = "replica-test-webhook-secret"


def catalog(path: Path) -> Path:
    """SKUs listed on every channel, priced away from cost_plus's target (every pass writes)."""
    ids = ",".join(f"id:{c}" for c in CHANNELS)
    lines = [f"sku,cost,fees,min_price,max_price,stock,{ids}"]
    for i in range(SKUS):
        lines.append(
            f"R-{i:04d},10.00,1.00,12.00,60.00,500," + ",".join(f"{c}-{i}" for c in CHANNELS)
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def config(tmp_path: Path) -> Path:
    """Six in-memory channels in small batches (passes take a while), a 3 s lease."""
    csv = catalog(tmp_path / "catalog.csv")
    channels = "".join(
        f"  {c}:\n    kind: mock\n    seed_catalog: {csv}\n    competitors: 0\n    seed: {n}\n"
        "    max_batch: 5\n    webhook_secret: ${REPLICA_TEST_SECRET}\n"
        for n, c in enumerate(CHANNELS)
    )
    text = (
        f"server: {{host: 127.0.0.1, port: 0, shutdown_timeout_s: 3, lease_ttl_s: {TTL}}}\n"
        "schedule: {reprice: 4s, stock_sync: 4s, reconcile: 1h, orders_poll: null}\n"
        f"catalog: {{currency: USD, import_on_start: {csv}}}\n"
        f"channels:\n{channels}"
        "pricing:\n  rules: [{strategy: cost_plus, params: {margin_pct: 30}}]\n"
    )
    path = tmp_path / "repricerd.yaml"
    path.write_text(text)
    return path


@dataclass
class Replica:
    """One `repricerd run` process and its log file."""

    proc: subprocess.Popen[bytes]
    log: Path
    port: int = 0
    replica: str = ""
    stopped: bool = False  # SIGSTOPped: not sent webhooks meanwhile

    def lines(self, start: int = 0) -> list[dict[str, Any]]:
        """Its JSON log events from byte ``start`` on."""
        with self.log.open("rb") as handle:
            handle.seek(start)
            data = handle.read()
        events = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def offset(self) -> int:
        """The log's current size (to read only what comes after)."""
        return self.log.stat().st_size


@dataclass
class Cluster:
    """The replicas, the database they share and what the test sent."""

    tmp: Path
    cfg: Path
    url: str
    engine: AsyncEngine
    replicas: list[Replica] = field(default_factory=list)
    acked: list[tuple[str, str]] = field(default_factory=list)  # (channel, order id) answered 2xx
    samples: int = 0

    def start(self) -> Replica:
        """Start one more replica (it becomes ready in the background)."""
        log = self.tmp / f"replica-{len(self.replicas)}.log"
        env = {
            **os.environ,
            "REPRICERD_DATABASE": self.url,
            "REPRICERD_LOG_LEVEL": "debug",
            "REPLICA_TEST_SECRET": SECRET,
        }
        handle = log.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "run", "-c", str(self.cfg)],
            env=env,
            cwd=self.tmp,
            stderr=handle,
            stdout=subprocess.DEVNULL,
        )
        handle.close()
        replica = Replica(proc, log)
        self.replicas.append(replica)
        return replica

    def live(self) -> list[Replica]:
        """Replicas running and ready."""
        return [r for r in self.replicas if r.proc.poll() is None and r.port and not r.stopped]

    async def ready(self, replica: Replica, within: float = 60) -> None:
        """Wait for ``daemon_ready``; remember the port and the replica id."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for event in replica.lines():
                if event.get("event") == "daemon_ready":
                    replica.port, replica.replica = event["port"], event["replica"]
                    return
            assert replica.proc.poll() is None, replica.log.read_text()[-3000:]
            await asyncio.sleep(0.1)
        raise AssertionError("replica never ready:\n" + replica.log.read_text()[-3000:])

    async def owners(self) -> dict[str, str]:
        """channel → holder of its unexpired lease (the database's clock)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT channel, holder FROM channel_lease"
                    " WHERE holder IS NOT NULL AND expires_at > now()"
                )
            )
            return {channel: holder for channel, holder in rows}

    async def until(self, check: Any, within: float, what: str) -> float:
        """Poll ``check`` (async, truthy when done); return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            if await check():
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise AssertionError(f"{what}: not within {within} s")

    async def balanced(self) -> bool:
        """Every channel owned by a live replica, a fair share each (6 channels: 2 or 3)."""
        owners = await self.owners()
        ids = {r.replica for r in self.live()}
        if set(owners) != set(CHANNELS) or not set(owners.values()) <= ids:
            return False
        share = len(CHANNELS) // len(ids)
        return sorted(list(owners.values()).count(i) for i in ids) == [share] * len(ids)

    async def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the shared database."""
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.text(sql), params)).scalar_one()

    async def send_order(self, session: aiohttp.ClientSession, channel: str, n: int) -> bool:
        """POST one signed order to the next live replica (round robin); True once acked."""
        order_id = f"o-{channel}-{n}"
        body = json.dumps(
            {
                "order_id": order_id,
                "status": "placed",
                "lines": [{"sku": f"R-{n % SKUS:04d}", "quantity": 1}],
                "updated_at": datetime.now(UTC).isoformat(),
            }
        ).encode()
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "X-Mock-Signature": digest,
            "X-Mock-Event-Id": order_id,
            "X-Mock-Topic": "order",
            "Content-Type": "application/json",
        }
        for attempt in range(40):  # a marketplace retries an unanswered delivery
            live = self.live()
            if live:
                target = live[(n + attempt) % len(live)]
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.post(
                        f"http://127.0.0.1:{target.port}/webhooks/{channel}",
                        data=body,
                        headers=headers,
                        timeout=aiohttp.ClientTimeout(total=5),
                    ) as response:
                        if response.status == 200:
                            self.acked.append((channel, order_id))
                            return True
            await asyncio.sleep(0.1)
        return False

    async def settled(self) -> bool:
        """Every acknowledged delivery applied and no intent left open."""
        unprocessed = await self.scalar(
            "SELECT count(*) FROM webhook_event WHERE processed_at IS NULL"
        )
        open_intents = await self.scalar(
            "SELECT count(*) FROM action WHERE status = 'planned'"
            " OR (status = 'sent' AND response_code IS NULL)"
        )
        return bool(unprocessed == 0 and open_intents == 0)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """A fresh PostgreSQL database and the config; replicas are started by the test."""
    url, name = await fresh_database()
    migrated = Database(url)
    await upgrade(migrated)  # the replicas would too (under an advisory lock); the sampler reads
    await migrated.dispose()
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    found = Cluster(tmp_path, config(tmp_path), url, engine)
    try:
        yield found
    finally:
        for replica in found.replicas:
            if replica.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    replica.proc.send_signal(signal.SIGCONT)
                replica.proc.kill()
                replica.proc.wait()
        await engine.dispose()
        await _drop_postgres_database(name)


@contextlib.asynccontextmanager
async def sampling(cluster: Cluster) -> AsyncIterator[list[str]]:
    """Sample the lease table all along: no channel ever has two unexpired holders, and every
    holder is a replica that heartbeats (the table has one row per channel, so a second holder
    would mean a row per holder: checked by counting)."""
    problems: list[str] = []

    async def sample() -> None:
        while True:
            async with cluster.engine.connect() as conn:
                rows = (
                    await conn.execute(
                        sa.text(
                            "SELECT channel, count(*) FROM channel_lease WHERE holder IS NOT NULL"
                            " AND expires_at > now() GROUP BY channel HAVING count(*) > 1"
                        )
                    )
                ).all()
            if rows:
                problems.append(repr(rows))
            cluster.samples += 1
            await asyncio.sleep(0.1)

    task = asyncio.create_task(sample())
    try:
        yield problems
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _claims(events: list[dict[str, Any]], channel: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == "batch_claimed" and e.get("channel") == channel]


async def test_three_replicas_share_six_channels_through_kill_stop_and_rolling_restart(
    cluster: Cluster,
) -> None:
    """(a) one owner per channel all along, two each; (b) a round-robin burst of orders applied
    once each; (c) kill -9 of an owner: taken over within ttl + a renewal, its work finished,
    nothing doubled; (d) SIGSTOP past the ttl: after SIGCONT it claims nothing for the channels
    it lost; (e) a rolling restart (three fresh replicas join, the old ones stop one by one)
    loses no webhook."""
    timings: dict[str, float] = {}
    began = time.monotonic()

    def mark(label: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {label}", flush=True)

    async with sampling(cluster) as problems, aiohttp.ClientSession() as session:
        first = [cluster.start() for _ in range(3)]
        for replica in first:
            await cluster.ready(replica)
        mark("ready")
        # (a) fair shares: two channels each
        timings["balanced"] = await cluster.until(cluster.balanced, 30, "two channels each")

        mark("balanced")
        # (b) a burst of signed orders, round robin over the replicas
        sent = await asyncio.gather(
            *(cluster.send_order(session, CHANNELS[n % 6], n) for n in range(60))
        )
        assert all(sent)
        timings["burst_applied"] = await cluster.until(cluster.settled, 40, "burst applied")
        published = await cluster.scalar(
            "SELECT count(DISTINCT sku) FROM action WHERE kind = 'stock' AND status = 'confirmed'"
        )
        assert published > 0  # the ordered SKUs were republished on the channels

        mark("burst applied")
        # (c) kill -9 of the owner of m1, while its passes write
        owners = await cluster.owners()
        victim = next(r for r in cluster.live() if r.replica == owners["m1"])
        lost = {c for c, holder in owners.items() if holder == victim.replica}
        await asyncio.gather(
            *(cluster.send_order(session, c, 1000 + i) for i, c in enumerate(lost))
        )
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        killed_at = time.monotonic()

        async def taken_over() -> bool:
            now = await cluster.owners()
            return all(now.get(c) not in (None, victim.replica) for c in lost)

        await cluster.until(taken_over, 30, "the killed replica's channels taken over")
        timings["takeover_s"] = time.monotonic() - killed_at
        assert timings["takeover_s"] <= TTL + TTL / 3 + 3  # ttl + one renewal, some slack
        await cluster.until(cluster.settled, 40, "the killed replica's work finished")

        mark("killed work finished")
        await cluster.until(cluster.balanced, 30, "the two survivors rebalanced")
        mark("survivors balanced")
        # (d) SIGSTOP one replica past the ttl; SIGCONT: nothing claimed for what it lost
        owners = await cluster.owners()
        paused = cluster.live()[0]
        mine = {c for c, holder in owners.items() if holder == paused.replica}
        paused.proc.send_signal(signal.SIGSTOP)
        paused.stopped = True
        stopped_at = time.monotonic()
        await asyncio.gather(
            *(cluster.send_order(session, c, 2000 + i) for i, c in enumerate(sorted(mine)))
        )

        async def moved() -> bool:
            now = await cluster.owners()
            return all(now.get(c) not in (None, paused.replica) for c in mine)

        await cluster.until(moved, 30, "the paused replica's channels taken over")
        await asyncio.sleep(max(0.0, 2 * TTL - (time.monotonic() - stopped_at)))
        resumed = paused.offset()
        paused.proc.send_signal(signal.SIGCONT)
        paused.stopped = False
        await asyncio.sleep(TTL)
        after = paused.lines(resumed)
        for channel in mine:
            regained = next(
                (
                    i
                    for i, e in enumerate(after)
                    if e.get("event") == "lease_gained" and e.get("channel") == channel
                ),
                len(after),
            )
            assert not _claims(after[:regained], channel), f"{channel} claimed after SIGCONT"
        await cluster.until(cluster.balanced, 30, "rebalanced after SIGCONT")

        mark("sigstop done")
        # (e) a rolling restart, orders flowing all along: three new replicas (back to three;
        # spawned together, a cold start takes seconds here), then the two old ones stop one by
        # one.
        flowing = True

        async def flow() -> int:
            n = 3000
            while flowing:
                assert await cluster.send_order(session, CHANNELS[n % 6], n)
                n += 1
                await asyncio.sleep(0.02)
            return n - 3000

        sender = asyncio.create_task(flow())
        restart_started = time.monotonic()
        olds = list(cluster.live())
        news = [cluster.start() for _ in range(3)]
        for new in news:
            await cluster.ready(new)
        for old in olds:
            old.proc.send_signal(signal.SIGTERM)
            assert old.proc.wait(timeout=15) == 0
            await asyncio.sleep(TTL / 3)  # one lease round: the survivors take its channels
        flowing = False
        during_restart = await sender
        timings["rolling_restart_s"] = time.monotonic() - restart_started
        await cluster.until(cluster.balanced, 30, "balanced after the rolling restart")
        mark("rolling restart done")
        timings["final_settle"] = await cluster.until(cluster.settled, 40, "everything applied")

    assert not problems, problems
    assert cluster.samples > 50
    # every acknowledged delivery stored once and applied once: one ledger row per order
    assert during_restart > 0
    acked = sorted(set(cluster.acked))
    assert len(acked) == len(cluster.acked)
    stored = await cluster.scalar("SELECT count(*) FROM webhook_event")
    assert stored == len(acked)
    applied = await cluster.scalar("SELECT count(*) FROM webhook_event WHERE outcome = 'applied'")
    assert applied == len(acked)
    ledger = await cluster.scalar(
        "SELECT count(*) FROM stock_event WHERE external_ref LIKE '%o-m%'"
    )
    assert ledger == len(acked)
    # nothing doubled: keys unique, and no action claimed (so sent) by two replicas, except
    # the rows the killed replica left in flight, re-driven by their new owner with their keys.
    keys = await cluster.scalar("SELECT count(*) - count(DISTINCT idempotency_key) FROM action")
    assert keys == 0
    claimed_by: dict[int, set[int]] = {}
    for index, replica in enumerate(cluster.replicas):
        held: set[str] = set()
        for event in replica.lines():
            kind, channel = event.get("event"), event.get("channel")
            if kind == "lease_gained":
                held.add(channel)
            elif kind == "lease_lost":
                held.discard(channel)
            elif kind == "batch_claimed":
                # A replica claims only between gaining a channel and losing it (its work is
                # cancelled before a handover releases the lease).
                assert channel in held, (replica.log.name, event)
                for action_id in event["ids"]:
                    claimed_by.setdefault(action_id, set()).add(index)
    # Claimed by two replicas: a row the first left in flight (killed, or its push cancelled
    # by a handover), re-driven by the next owner with the same key (attempts counts both).
    twice = [i for i, who in claimed_by.items() if len(who) > 1]
    if twice:
        attempts = await cluster.scalar(
            "SELECT min(attempts) FROM action WHERE id = ANY(:ids)", ids=twice
        )
        assert attempts >= 2
    timings["redriven_rows"] = len(twice)
    confirmed = await cluster.scalar("SELECT count(*) FROM action WHERE status = 'confirmed'")
    assert confirmed > 0
    print(json.dumps({"timings": {k: round(v, 2) for k, v in timings.items()}}))
