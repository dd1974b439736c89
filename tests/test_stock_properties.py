"""Property: whatever orders, cancels, duplicates, reorderings and failed pushes arrive, no
channel is ever told to show more than ``max(0, available − buffer)`` and the ledger never goes
below zero; once pushes succeed again, every channel converges on its allocation."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import WebhookEvent
from daemon.inbox import InboxWorker
from daemon.ledger import on_hand
from daemon.passes import redrive, run_named_pass
from daemon.runtime import Runtime
from domain.clock import ManualClock
from domain.errors import TransientChannelError
from tests.daemon_fixtures import actions, make_runtime, seed
from tests.daemon_fixtures import settings as make_settings

INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
SKUS = ("A", "B")
CHANNELS = ("alpha", "beta")
BUFFER = 1
START = {"A": 4, "B": 2}

order_op = st.tuples(
    st.just("order"),
    st.sampled_from(CHANNELS),
    st.integers(0, 6),  # order number: the same number on a channel is the same order
    st.sampled_from(SKUS),
    st.integers(1, 3),
)
cancel_op = st.tuples(st.just("cancel"), st.sampled_from(CHANNELS), st.integers(0, 6))
duplicate_op = st.tuples(st.just("duplicate"), st.integers(0, 50))
fail_op = st.tuples(st.just("fail"), st.sampled_from(CHANNELS))
flush_op = st.tuples(st.just("flush"), st.integers(0, 2**16))  # deliver pending, shuffled
OPS = st.lists(st.one_of(order_op, cancel_op, duplicate_op, fail_op, flush_op), max_size=30)


class World:
    """The daemon's stock path on two in-memory channels, driven one operation at a time."""

    def __init__(self, rt: Runtime, clock: ManualClock) -> None:
        self.rt, self.clock = rt, clock
        self.worker = InboxWorker(rt, on_offer_change=lambda *_: None, on_stock_change=self._moved)
        self.moved: set[str] = set()
        self.pending: list[tuple[str, str, dict[str, Any]]] = []
        self.delivered: list[tuple[str, str, dict[str, Any]]] = []
        self.orders: dict[tuple[str, int], tuple[str, int]] = {}
        self.failing: set[str] = set()
        self.serial = 0
        for name in CHANNELS:
            self._wrap_push(name)

    def _moved(self, skus: set[str]) -> None:
        self.moved |= skus

    def _wrap_push(self, name: str) -> None:
        channel = self.rt.channels[name]
        real = channel.push_stock

        async def push(updates: Any) -> Any:
            if name in self.failing:
                self.failing.discard(name)  # one failed push, then the channel recovers
                raise TransientChannelError("503 injected", status=503)
            return await real(updates)

        channel.push_stock = push  # type: ignore[method-assign]

    def add(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "order":
            _, channel, number, sku, qty = op
            sku, qty = self.orders.setdefault((channel, number), (sku, qty))
            self._queue(channel, number, sku, qty, "placed")
        elif kind == "cancel":
            _, channel, number = op
            if (channel, number) in self.orders:
                sku, qty = self.orders[(channel, number)]
                self._queue(channel, number, sku, qty, "cancelled")
        elif kind == "duplicate" and self.delivered:
            self.pending.append(self.delivered[op[1] % len(self.delivered)])
        elif kind == "fail":
            self.failing.add(op[1])

    def _queue(self, channel: str, number: int, sku: str, qty: int, status: str) -> None:
        self.serial += 1
        body = {
            "order_id": f"{channel}-{number}",
            "status": status,
            "lines": [{"sku": sku, "quantity": qty}],
            "updated_at": (self.clock.now() + timedelta(seconds=self.serial)).isoformat(),
        }
        self.pending.append((channel, f"{channel}-{number}-{status}", body))

    async def flush(self, seed_value: int) -> None:
        """Store pending deliveries in a shuffled order, process them, publish what moved."""
        batch, self.pending = self.pending, []
        random.Random(seed_value).shuffle(batch)
        async with self.rt.db.write() as conn:
            for channel, key, body in batch:
                stmt = (
                    self.rt.db.insert(INBOX)
                    .values(
                        channel=channel,
                        dedupe_key=key,
                        topic="order",
                        payload=json.dumps(body),
                        received_at=self.clock.now(),
                    )
                    .on_conflict_do_nothing(index_elements=["channel", "dedupe_key"])
                )
                await conn.execute(stmt)
        self.delivered.extend(batch)
        for name in CHANNELS:
            while await self.worker.process(name):
                pass
        if self.moved:
            moved, self.moved = frozenset(self.moved), set()
            await run_named_pass(self.rt, "stock_sync", "evt", (), moved)

    async def check(self, *, settled: bool) -> None:
        async with self.rt.db.read() as conn:
            stock = await on_hand(conn, SKUS)
        for sku in SKUS:
            assert 0 <= stock[sku] <= START[sku]
            ceiling = max(0, stock[sku] - BUFFER)
            for name in CHANNELS:
                intents = await actions(self.rt.db, kind="stock", channel=name, sku=sku)
                newest = intents[-1].new_quantity if intents else None
                if newest is not None:
                    assert newest <= ceiling, (name, sku, newest, stock[sku])
                shown = self.rt.channels[name].market.listings[sku].quantity  # type: ignore[attr-defined]
                if settled:
                    assert shown == ceiling, (name, sku, shown, ceiling)


async def _scenario(template: Path, workdir: Path, ops: list[tuple[Any, ...]]) -> None:
    shutil.copy(template, workdir / "p.db")
    db = Database(f"sqlite:///{workdir / 'p.db'}")
    clock = ManualClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
    config = make_settings(inventory={"buffer": BUFFER})
    rt = await make_runtime(db, clock, config)
    try:
        products = [{"sku": sku, "stock": START[sku], "live_quantity": 0} for sku in SKUS]
        await seed(db, clock, rt, products)
        world = World(rt, clock)
        await run_named_pass(rt, "reconcile", "r0")
        for op in ops:
            if op[0] == "flush":
                await world.flush(op[1])
                await world.check(settled=False)
            else:
                world.add(op)
        await world.flush(0)
        world.failing.clear()
        await redrive(rt)  # what a restart or the next round does with unfinished intents
        await run_named_pass(rt, "stock_sync", "settle")
        await world.check(settled=True)
    finally:
        await rt.close()
        await rt.http.aclose()
        await db.dispose()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_published_never_exceeds_available_minus_buffer(
    ops: list[tuple[Any, ...]], tmp_path: Path
) -> None:
    template = tmp_path / "template.db"
    if not template.exists():
        database = Database(f"sqlite:///{template}")

        async def migrate() -> None:
            await upgrade(database)
            await database.dispose()

        asyncio.run(migrate())
    asyncio.run(_scenario(template, tmp_path, ops))
