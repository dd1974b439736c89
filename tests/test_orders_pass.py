"""The ``orders`` pass: watermark, idempotent apply, one stock pass for what moved, scheduling."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from connectors.base import PollsOrders
from daemon.app import Passes, _schedule
from daemon.db.engine import Database
from daemon.ledger import on_hand
from daemon.order_poll import ORDER_POLL_OVERLAP, order_watermark
from daemon.passes import run_named_pass
from daemon.runtime import Runtime
from daemon.stock import apply_order, load_kits
from domain.clock import ManualClock
from domain.events import OrderEvent, OrderLine, OrderStatus
from tests.daemon_fixtures import loaded, make_runtime, seed, settings


class Orders:
    """What a polling channel's marketplace reports, and the ``since`` of every poll."""

    def __init__(self) -> None:
        self.events: list[OrderEvent] = []
        self.since: list[datetime] = []
        self.fail: Exception | None = None

    async def __call__(self, since: datetime) -> list[OrderEvent]:
        self.since.append(since)
        if self.fail is not None:
            raise self.fail
        return [e for e in self.events if e.updated_at >= since]


def polling(rt: Runtime, name: str) -> Orders:
    """Give the mock channel ``name`` a ``fetch_orders`` (the mock marketplace has no orders)."""
    orders = Orders()
    rt.channels[name].fetch_orders = orders  # type: ignore[attr-defined]
    assert isinstance(rt.channels[name], PollsOrders)
    return orders


def quantity(rt: Runtime, channel: str, sku: str) -> int:
    value: int = rt.channels[channel].market.listings[sku].quantity  # type: ignore[attr-defined]
    return value


async def test_polled_orders_apply_once_and_every_channel_follows(
    db: Database, clock: ManualClock
) -> None:
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 9, "live_quantity": 9}])
    await run_named_pass(rt, "reconcile", "p0")
    began = clock.now()
    orders = polling(rt, "alpha")
    first = await run_named_pass(rt, "orders", "p1")
    # No order in the ledger yet, and the ledger began (its first count) just now: an older
    # order is in that count already.
    assert orders.since == [began]
    clock.advance(3 * 86400)
    await run_named_pass(rt, "orders", "p1b")
    assert orders.since[-1] == began - ORDER_POLL_OVERLAP  # from the last poll, however long ago
    assert first["alpha"]["polled"] == 0
    assert "stock_sync" not in first["alpha"]
    assert first["beta"] == {"skipped": "the channel cannot list its orders"}

    placed = clock.now() - timedelta(minutes=3)
    orders.events = [
        OrderEvent("A-1", OrderStatus.PLACED, (OrderLine("MUG-1", 2),), placed),
        OrderEvent("A-2", OrderStatus.CANCELLED, (OrderLine("MUG-1", 0),), placed),
        OrderEvent("A-3", OrderStatus.PLACED, (), placed),  # only a gift card
    ]
    # A-2 was seen by its webhook already.
    async with db.read() as conn:
        kits = await load_kits(conn)
    await apply_order(db, kits, channel="alpha", event=orders.events[1], now=clock.now())
    result = await run_named_pass(rt, "orders", "p2")
    alpha = result["alpha"]
    assert (alpha["polled"], alpha["applied"], alpha["duplicates"]) == (3, 1, 1)
    assert alpha["ignored"] == 1
    assert alpha["skus"] == ["MUG-1"]
    assert set(alpha["stock_sync"]) == {"alpha", "beta"}
    async with db.read() as conn:
        assert await on_hand(conn, ["MUG-1"]) == {"MUG-1": 7}
    assert quantity(rt, "beta", "MUG-1") == 7
    assert quantity(rt, "alpha", "MUG-1") == 7

    # The watermark is where the last poll started minus the overlap; the next poll repeats
    # nothing. A channel never polled starts from its newest order event, else the lookback.
    assert await order_watermark(rt, "alpha") == clock.now() - ORDER_POLL_OVERLAP
    assert await order_watermark(rt, "beta") == clock.now() - timedelta(hours=24)
    again = (await run_named_pass(rt, "orders", "p3"))["alpha"]
    assert orders.since[-1] == clock.now() - ORDER_POLL_OVERLAP
    assert (again["applied"], again["duplicates"], again["ignored"]) == (0, 2, 1)
    await rt.close()


async def test_webhooks_after_an_outage_do_not_move_the_poll_past_missed_orders(
    db: Database, clock: ManualClock
) -> None:
    """Orders placed while webhooks were lost are still polled when a newer order's webhook
    arrived first; a failed poll leaves the watermark where it was."""
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 9, "live_quantity": 9}])
    orders = polling(rt, "alpha")
    await run_named_pass(rt, "orders", "p0")
    last_poll = clock.now()
    clock.advance(2 * 3600)  # an outage: nothing polled, webhooks lost
    missed = OrderEvent("A-1", OrderStatus.PLACED, (OrderLine("MUG-1", 2),), clock.now())
    clock.advance(3600)
    newer = OrderEvent("A-2", OrderStatus.PLACED, (OrderLine("MUG-1", 1),), clock.now())
    async with db.read() as conn:
        kits = await load_kits(conn)
    await apply_order(db, kits, channel="alpha", event=newer, now=clock.now())  # its webhook
    orders.events = [missed, newer]
    orders.fail = RuntimeError("marketplace down")
    await run_named_pass(rt, "orders", "p1")
    orders.fail = None
    result = (await run_named_pass(rt, "orders", "p2"))["alpha"]
    assert orders.since[-2:] == [last_poll - ORDER_POLL_OVERLAP] * 2
    assert (result["applied"], result["duplicates"]) == (1, 1)
    async with db.read() as conn:
        assert await on_hand(conn, ["MUG-1"]) == {"MUG-1": 6}
    await rt.close()


async def test_a_failing_poll_is_that_channels_error_only(db: Database, clock: ManualClock) -> None:
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 4}])
    polling(rt, "alpha").fail = RuntimeError("marketplace down")
    beta = polling(rt, "beta")
    beta.events = [
        OrderEvent("B-1", OrderStatus.PLACED, (OrderLine("MUG-1", 1),), clock.now()),
    ]
    result = await run_named_pass(rt, "orders", "p1")
    assert result["alpha"] == {"error": "RuntimeError: marketplace down"}
    assert result["beta"]["applied"] == 1
    async with db.read() as conn:
        assert await on_hand(conn, ["MUG-1"]) == {"MUG-1": 3}
    await rt.close()


def test_the_orders_job_follows_the_schedule(clock: ManualClock) -> None:
    scheduler = AsyncIOScheduler(timezone="UTC")
    rt: Any = type("Rt", (), {})()
    rt.clock = clock
    rt.settings = settings(schedule={"orders_poll": "2m"})
    passes: Any = Passes(rt)
    _schedule(scheduler, passes.run, rt)
    job = scheduler.get_job("orders")
    assert job is not None
    assert job.args == ("orders",)
    assert job.trigger.interval == timedelta(minutes=2)
    rt.settings = settings(schedule={"orders_poll": None})
    _schedule(scheduler, passes.run, rt)
    assert scheduler.get_job("orders") is None
    assert scheduler.get_job("reprice") is not None
    assert loaded(settings()).settings.schedule.orders_poll == timedelta(minutes=5)
