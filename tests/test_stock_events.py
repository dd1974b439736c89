"""Stock from events: orders, cancels, kits, outside quantity changes, allocation to channels."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import sqlalchemy as sa

from connectors.mock.market import MockListing
from daemon.allocation import allocate
from daemon.db.engine import Database
from daemon.db.models import WebhookEvent
from daemon.inbox import InboxWorker
from daemon.ledger import on_hand
from daemon.passes import run_named_pass
from daemon.runtime import Runtime
from daemon.server import ServerContext, start_server
from daemon.settings import InventorySettings
from daemon.stock import Kits, apply_order, available_units, load_kits, observe_quantity
from domain.clock import ManualClock
from domain.errors import TransientChannelError
from domain.events import OrderEvent, OrderLine, OrderStatus, QuantityObserved
from domain.listings import Fulfillment
from tests.daemon_fixtures import PRODUCTS, actions, listing, make_runtime, seed, settings

INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]


async def store(
    db: Database, clock: ManualClock, channel: str, key: str, topic: str, body: Any
) -> None:
    """Put one delivery in the inbox, as the webhook handler does."""
    async with db.write() as conn:
        await conn.execute(
            sa.insert(INBOX).values(
                channel=channel,
                dedupe_key=key,
                topic=topic,
                payload=json.dumps(body),
                received_at=clock.now(),
            )
        )


def order(
    order_id: str, *lines: tuple[str, int], at: datetime, status: str = "placed"
) -> dict[str, Any]:
    """An ``order`` delivery body of the mock channel."""
    return {
        "order_id": order_id,
        "status": status,
        "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines],
        "updated_at": at.isoformat(),
    }


class StockLoop:
    """The daemon's wiring in miniature: inbox → ledger → immediate stock pass on every channel."""

    def __init__(self, rt: Runtime) -> None:
        """Wire the inbox of ``rt``; call ``discover`` once the markets are seeded."""
        self.rt = rt
        self.published: list[set[str]] = []
        self.worker = InboxWorker(rt, on_offer_change=lambda *_: None, on_stock_change=self._moved)

    async def discover(self) -> None:
        """Read the seeded listings (reconcile), as the daemon does at start."""
        await run_named_pass(self.rt, "reconcile", "r0")

    def _moved(self, skus: set[str]) -> None:
        self.published.append(set(skus))

    async def deliver(self, *channels: str) -> None:
        """Process the inboxes, then publish what moved (as the stock trigger does)."""
        for channel in channels:
            self.worker.wake(channel)
        await self.worker.drain()
        moved = set().union(*self.published) if self.published else set()
        self.published.clear()
        if moved:
            await run_named_pass(self.rt, "stock_sync", "evt", (), frozenset(moved))


async def outcomes(db: Database) -> list[tuple[str, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(INBOX.c.dedupe_key, INBOX.c.outcome).order_by(INBOX.c.id)
        )
        return [(r.dedupe_key, r.outcome) for r in rows]


async def test_an_order_moves_the_other_channel_within_the_same_round(
    db: Database, clock: ManualClock
) -> None:
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 5, "live_quantity": 5}])
    loop = StockLoop(rt)
    await loop.discover()
    await store(db, clock, "alpha", "o1", "order", order("A-1", ("MUG-1", 2), at=clock.now()))
    await loop.deliver("alpha")
    async with db.read() as conn:
        assert (await on_hand(conn, ["MUG-1"]))["MUG-1"] == 3
    for name in ("alpha", "beta"):
        assert rt.channels[name].market.listings["MUG-1"].quantity == 3  # type: ignore[attr-defined]
    assert await outcomes(db) == [("o1", "applied")]
    await rt.close()


async def test_concurrent_orders_for_the_last_unit_never_take_the_ledger_below_zero(
    db: Database, clock: ManualClock
) -> None:
    """Both channels sell the last unit before either hears of the other: one oversell, recorded,
    the ledger stays at 0 and after the first order is processed the other channel shows 0."""
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "LAST", "stock": 1, "live_quantity": 1}])
    loop = StockLoop(rt)
    await loop.discover()
    await store(db, clock, "alpha", "a1", "order", order("A-9", ("LAST", 1), at=clock.now()))
    await loop.deliver("alpha")
    assert rt.channels["beta"].market.listings["LAST"].quantity == 0  # type: ignore[attr-defined]
    await store(db, clock, "beta", "b1", "order", order("B-9", ("LAST", 1), at=clock.now()))
    await loop.deliver("beta")
    async with db.read() as conn:
        assert (await on_hand(conn, ["LAST"]))["LAST"] == 0
        notes = (
            (
                await conn.execute(
                    sa.text("SELECT note FROM stock_event WHERE kind = 'order' ORDER BY id")
                )
            )
            .scalars()
            .all()
        )
    assert "OVERSOLD by 1" in notes[1]
    await rt.close()


async def test_the_same_order_ten_times_concurrently_is_one_ledger_event(
    db: Database, clock: ManualClock
) -> None:
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 5}])
    event = OrderEvent("A-1", OrderStatus.PLACED, (OrderLine("MUG-1", 1),), clock.now())
    kits = Kits()
    results = await asyncio.gather(
        *(apply_order(db, kits, channel="alpha", event=event, now=clock.now()) for _ in range(10))
    )
    assert sum(r.applied for r in results) == 1
    assert sum(r.duplicate for r in results) == 9
    async with db.read() as conn:
        assert (await on_hand(conn, ["MUG-1"]))["MUG-1"] == 4
    await rt.close()


async def test_concurrent_ledger_writes_never_deadlock_and_keep_exact_totals(
    db: Database, clock: ManualClock
) -> None:
    """Fifty concurrent orders (ten of them replays) and ten concurrent adopted counts, each a
    read-then-write ledger transaction, all commit: each order applies once, one count wins."""
    config = settings(inventory={"channels": {"alpha": {"external_changes": "adopt"}}})
    rt = await make_runtime(db, clock, config)
    await seed(db, clock, rt, [{"sku": "A", "stock": 100}, {"sku": "B", "stock": 0}])
    await StockLoop(rt).discover()
    kits, now = Kits(), clock.now()

    async def sell(i: int) -> int:
        line = (OrderLine("A", 1),)
        event = OrderEvent(f"O-{i % 40}", OrderStatus.PLACED, line, now)
        return (await apply_order(db, kits, channel="alpha", event=event, now=now)).applied

    async def count(units: int) -> str:
        seen = QuantityObserved("B", units, now + timedelta(seconds=units))
        async with db.write() as conn:
            return await observe_quantity(
                conn, db, channel="alpha", event=seen, policy="adopt", now=now
            )

    results = await asyncio.gather(
        *(sell(i) for i in range(50)), *(count(units) for units in range(1, 11))
    )
    assert sum(results[:50]) == 40  # ten were replays of an order: applied once
    assert "adopted" in results[50:]
    assert set(results[50:]) <= {"adopted", "stale"}
    async with db.read() as conn:
        totals = await on_hand(conn)
    assert totals["A"] == 60
    assert totals["B"] in range(1, 11)
    await rt.close()


async def test_a_cancel_gives_back_what_its_order_took_and_a_early_cancel_voids_the_order(
    db: Database, clock: ManualClock
) -> None:
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 5, "live_quantity": 5}])
    loop = StockLoop(rt)
    await loop.discover()
    now = clock.now()
    await store(db, clock, "alpha", "o1", "order", order("A-1", ("MUG-1", 2), at=now))
    await store(
        db, clock, "alpha", "c1", "order", order("A-1", ("MUG-1", 2), at=now, status="cancelled")
    )
    # Out of order: the cancel of B-2 arrives before B-2 itself.
    await store(
        db, clock, "beta", "c2", "order", order("B-2", ("MUG-1", 1), at=now, status="cancelled")
    )
    await store(db, clock, "beta", "o2", "order", order("B-2", ("MUG-1", 1), at=now))
    await store(db, clock, "beta", "o2-again", "order", order("B-2", ("MUG-1", 1), at=now))
    await loop.deliver("alpha", "beta")
    async with db.read() as conn:
        assert (await on_hand(conn, ["MUG-1"]))["MUG-1"] == 5
    assert dict(await outcomes(db)) == {
        "o1": "applied",
        "c1": "applied",
        "c2": "applied",
        "o2": "duplicate",
        "o2-again": "duplicate",
    }
    await rt.close()


async def test_a_kit_shows_its_scarcest_component_and_its_orders_consume_components(
    db: Database, clock: ManualClock
) -> None:
    rt = await make_runtime(db, clock, settings())
    await seed(
        db,
        clock,
        rt,
        [
            {"sku": "CUP", "stock": 7, "live_quantity": 7},
            {"sku": "SAUCER", "stock": 4, "live_quantity": 4},
            {"sku": "SET", "live_quantity": 0},
        ],
    )
    async with db.write() as conn:
        await conn.execute(
            sa.update(PRODUCTS)
            .where(PRODUCTS.c.sku == "SET")
            .values(kit_components={"CUP": 2, "SAUCER": 1})
        )
        kits = await load_kits(conn)
        assert (await available_units(conn, kits, ["SET"]))["SET"] == 3  # 7 // 2
    loop = StockLoop(rt)
    await loop.discover()
    await store(db, clock, "alpha", "k1", "order", order("A-5", ("SET", 2), at=clock.now()))
    await loop.deliver("alpha")
    beta = rt.channels["beta"].market.listings  # type: ignore[attr-defined]
    assert (beta["CUP"].quantity, beta["SAUCER"].quantity, beta["SET"].quantity) == (3, 2, 1)
    stock_rows = await actions(db, kind="stock", channel="beta", sku="SET")
    assert "kit" in stock_rows[-1].reason
    await rt.close()


async def test_outside_quantity_changes_are_overwritten_or_adopted_and_stale_ones_skipped(
    db: Database, clock: ManualClock
) -> None:
    config = settings(inventory={"channels": {"beta": {"external_changes": "adopt"}}})
    rt = await make_runtime(db, clock, config)
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 5, "live_quantity": 5}])
    loop = StockLoop(rt)
    await loop.discover()
    later, earlier = clock.now() + timedelta(minutes=5), clock.now() + timedelta(minutes=1)
    body = {"sku": "MUG-1", "quantity": 9, "updated_at": later.isoformat()}
    await store(db, clock, "alpha", "q1", "quantity", body)
    await store(
        db,
        clock,
        "alpha",
        "q2",
        "quantity",
        {**body, "quantity": 1, "updated_at": earlier.isoformat()},
    )
    await loop.deliver("alpha")
    alpha = rt.channels["alpha"].market.listings  # type: ignore[attr-defined]
    assert alpha["MUG-1"].quantity == 5  # overwritten back to the ledger's allocation
    overwrite = (await actions(db, kind="stock", channel="alpha", sku="MUG-1"))[-1]
    assert (overwrite.old_quantity, overwrite.new_quantity) == (9, 5)
    await store(db, clock, "beta", "q3", "quantity", {**body, "quantity": 2})
    await store(
        db,
        clock,
        "beta",
        "q4",
        "quantity",
        {**body, "quantity": 2, "updated_at": (later + timedelta(seconds=1)).isoformat()},
    )
    await loop.deliver("beta")
    async with db.read() as conn:
        assert (await on_hand(conn, ["MUG-1"]))["MUG-1"] == 2  # adopted as a count
    assert alpha["MUG-1"].quantity == 2
    assert dict(await outcomes(db)) == {
        "q1": "applied",
        "q2": "skipped",
        "q3": "applied",
        "q4": "echo",
    }
    assert (await listing(db, "beta", "MUG-1")).quantity == 2
    await rt.close()


def test_last_units_go_to_the_priority_channels_only() -> None:
    inventory = InventorySettings.model_validate(
        {"buffer": 0, "last_units": {"below": 3, "channels": ["shop"]}}
    )
    assert allocate(2, "shop", inventory) == 2
    assert allocate(2, "amazon", inventory) == 0
    assert allocate(3, "amazon", inventory) == 3


async def test_ten_concurrent_copies_of_one_order_webhook_make_one_event_and_one_push_each(
    db: Database, clock: ManualClock
) -> None:
    """Through the real HTTP route: 10 identical signed deliveries at once → one inbox row, one
    ledger event, one stock write per channel; and while a marketplace hangs, webhooks still
    get their 2xx at once (handlers never call a marketplace)."""
    config = settings(
        channels={
            "alpha": {"kind": "mock", "webhook_secret": "alpha-webhook-secret"},
            "beta": {"kind": "mock"},
        }
    )
    rt = await make_runtime(db, clock, config)
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 5, "live_quantity": 5}])
    loop = StockLoop(rt)
    await loop.discover()
    hang = asyncio.Event()
    beta = rt.channels["beta"]
    real_push = beta.push_stock

    async def slow_push(updates: Any) -> Any:
        await hang.wait()  # the marketplace hangs until the test lets it answer
        return await real_push(updates)

    beta.push_stock = slow_push  # type: ignore[method-assign]
    publishes: list[asyncio.Task[Any]] = []

    def stock_moved(skus: set[str]) -> None:
        publishes.append(
            asyncio.create_task(run_named_pass(rt, "stock_sync", "evt", (), frozenset(skus)))
        )

    worker = InboxWorker(rt, on_offer_change=lambda *_: None, on_stock_change=stock_moved)
    ctx = ServerContext(
        db=db,
        metrics=rt.metrics,
        clock=clock,
        channels=lambda: rt.channels,
        channel_errors=dict,
        webhook_max_bytes=lambda: 65536,
        sync_token=lambda: None,
        on_webhook_stored=worker.wake,
        request_pass=lambda *_: asyncio.sleep(0, "x"),
        shutting_down=lambda: False,
    )
    handle = await start_server(ctx, "127.0.0.1", 0)
    body = json.dumps(order("A-77", ("MUG-1", 2), at=clock.now())).encode()
    headers = {
        "X-Mock-Signature": hmac.new(b"alpha-webhook-secret", body, hashlib.sha256).hexdigest(),
        "X-Mock-Event-Id": "evt-77",
        "X-Mock-Topic": "order",
    }
    try:
        async with aiohttp.ClientSession() as session:

            async def deliver() -> int:
                url = f"http://127.0.0.1:{handle.port}/webhooks/alpha"
                async with session.post(url, data=body, headers=headers) as response:
                    return response.status

            statuses = await asyncio.wait_for(
                asyncio.gather(*(deliver() for _ in range(10))), timeout=5
            )
            assert statuses == [200] * 10
            await worker.drain()
            # beta's push is hanging, yet a second delivery is acknowledged at once.
            assert await asyncio.wait_for(deliver(), timeout=2) == 200
            hang.set()
            await asyncio.gather(*publishes)
    finally:
        await handle.stop()
    async with db.read() as conn:
        inbox = (await conn.execute(sa.select(sa.func.count()).select_from(INBOX))).scalar_one()
        events = (
            await conn.execute(sa.text("SELECT count(*) FROM stock_event WHERE kind = 'order'"))
        ).scalar_one()
    assert (inbox, events) == (1, 1)
    for name in ("alpha", "beta"):
        writes = await actions(db, kind="stock", channel=name, sku="MUG-1", new_quantity=3)
        assert len(writes) == 1
        assert rt.channels[name].market.listings["MUG-1"].quantity == 3  # type: ignore[attr-defined]
    await rt.close()


async def test_a_listing_at_zero_gets_its_new_price_before_its_restock(
    db: Database, clock: ManualClock
) -> None:
    """Restocking 0 → n sends the pending price first; while that price cannot be sent, the
    restock waits (the listing must not go live at its old price)."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    product = {
        "sku": "MUG-1",
        "cost": Decimal("14.00"),
        "min_price": Decimal("12.00"),
        "max_price": Decimal("40.00"),
        "live_quantity": 0,
    }
    await seed(db, clock, rt, [product], listed_on=("alpha",))
    loop = StockLoop(rt)
    await loop.discover()
    channel = rt.channels["alpha"]
    calls: list[str] = []
    real_prices, real_stock = channel.push_prices, channel.push_stock
    price_down = True

    async def prices(updates: Any) -> Any:
        calls.append("price")
        if price_down:
            raise TransientChannelError("503", status=503)
        return await real_prices(updates)

    async def stock(updates: Any) -> Any:
        calls.append("stock")
        return await real_stock(updates)

    channel.push_prices = prices  # type: ignore[method-assign]
    channel.push_stock = stock  # type: ignore[method-assign]
    await run_named_pass(rt, "reprice", "p1")  # cost_plus moves the price; the push fails
    assert calls == ["price"]
    async with db.write() as conn:  # a receipt: 4 units arrive
        await conn.execute(
            sa.text(
                "INSERT INTO stock_event (sku, kind, delta, external_ref, occurred_at, recorded_at)"
                " VALUES ('MUG-1', 'receipt', 4, 'rcpt-1', :t, :t)"
            ),
            {"t": clock.now()},
        )
    report = await run_named_pass(rt, "stock_sync", "s1")
    assert report["alpha"]["restock_waits_for_price"] == 1
    assert "stock" not in calls  # the price was retried first, failed again, so no restock
    price_down = False
    await run_named_pass(rt, "stock_sync", "s2")
    assert calls[-2:] == ["price", "stock"]
    listing_now = rt.channels["alpha"].market.listings["MUG-1"]  # type: ignore[attr-defined]
    assert listing_now.quantity == 4
    assert listing_now.price != Decimal("20.00")
    await rt.close()


async def test_a_drop_on_the_channel_waits_for_its_order_instead_of_being_written_back(
    db: Database, clock: ManualClock
) -> None:
    """Shopify lowers its own count on a sale and may tell us before the order arrives: the drop
    is not overwritten at once (that would re-offer the sold unit); the order then settles it."""
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 5, "live_quantity": 5}])
    loop = StockLoop(rt)
    await loop.discover()
    alpha = rt.channels["alpha"].market.listings  # type: ignore[attr-defined]
    alpha["MUG-1"].quantity = 4  # the shop sold one and says so first
    at = clock.now() + timedelta(seconds=1)
    await store(
        db,
        clock,
        "alpha",
        "lvl",
        "quantity",
        {"sku": "MUG-1", "quantity": 4, "updated_at": at.isoformat()},
    )
    await loop.deliver("alpha")
    assert alpha["MUG-1"].quantity == 4  # not written back to 5
    await store(db, clock, "alpha", "ord", "order", order("S-1", ("MUG-1", 1), at=at))
    await loop.deliver("alpha")
    assert alpha["MUG-1"].quantity == 4
    assert rt.channels["beta"].market.listings["MUG-1"].quantity == 4  # type: ignore[attr-defined]
    assert dict(await outcomes(db)) == {"lvl": "applied", "ord": "applied"}
    await rt.close()


async def test_marketplace_held_units_are_read_never_written_and_offered_where_configured(
    db: Database, clock: ManualClock
) -> None:
    """FBA units on alpha are never written; beta (fulfilled through MCF) may offer them."""
    config = settings(
        channels={"alpha": {"kind": "mock"}, "beta": {"kind": "mock"}, "gamma": {"kind": "mock"}},
        inventory={"channels": {"beta": {"include_marketplace_held": True}}},
    )
    rt = await make_runtime(db, clock, config)
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 3}], listed_on=("beta", "gamma"))
    await seed_fba(db, clock, rt)
    await StockLoop(rt).discover()
    markets = {name: rt.channels[name].market.listings for name in ("alpha", "beta", "gamma")}  # type: ignore[attr-defined]
    assert markets["alpha"]["MUG-1"].quantity == 7  # the marketplace's count, untouched
    assert markets["beta"]["MUG-1"].quantity == 10  # 3 of ours + 7 at the marketplace
    assert markets["gamma"]["MUG-1"].quantity == 3
    assert await actions(db, kind="stock", channel="alpha") == []
    await rt.close()


async def seed_fba(db: Database, clock: ManualClock, rt: Runtime) -> None:
    """MUG-1 on alpha, fulfilled by the marketplace with 7 units there."""
    rt.channels["alpha"].market.listings["MUG-1"] = MockListing(  # type: ignore[attr-defined]
        "MUG-1", "alpha-MUG-1", Decimal("20.00"), "USD", 7, Fulfillment.MARKETPLACE
    )
