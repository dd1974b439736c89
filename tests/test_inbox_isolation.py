"""Fault isolation in the webhook inbox: one bad delivery never holds up the ones behind it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from daemon import inbox as inbox_module
from daemon.db.engine import Database
from daemon.event_checks import MAX_UNITS, event_problem, printable
from daemon.ledger import on_hand
from daemon.passes import run_named_pass
from daemon.runtime import Runtime
from daemon.server import ServerContext, start_server
from domain.clock import ManualClock
from domain.events import OfferChanged, OrderEvent, OrderLine, OrderStatus, QuantityObserved
from domain.offers import OfferObservation
from tests.daemon_fixtures import EVENTS, make_runtime, seed, settings
from tests.test_orders_pass import polling, quantity
from tests.test_stock_events import INBOX, StockLoop, order, store

SECRET = "alpha-webhook-secret"
NORMAL = 10


@asynccontextmanager
async def webhook_server(rt: Runtime, loop: StockLoop) -> AsyncIterator[str]:
    """The daemon's HTTP server over ``rt``, storing into ``loop``'s inbox; yields its URL."""
    ctx = ServerContext(
        db=rt.db,
        metrics=rt.metrics,
        clock=rt.clock,
        channels=lambda: rt.channels,
        channel_errors=dict,
        webhook_max_bytes=lambda: 65536,
        sync_token=lambda: None,
        on_webhook_stored=loop.worker.wake,
        request_pass=lambda *_: asyncio.sleep(0, "x"),
        shutting_down=lambda: False,
    )
    handle = await start_server(ctx, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{handle.port}/webhooks/alpha"
    finally:
        await handle.stop()


async def post_signed(session: aiohttp.ClientSession, url: str, key: str, body: Any) -> int:
    """POST one ``order`` delivery signed as the mock channel signs; return the HTTP status."""
    raw = json.dumps(body).encode()
    headers = {
        "X-Mock-Signature": hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
        "X-Mock-Event-Id": key,
        "X-Mock-Topic": "order",
    }
    async with session.post(url, data=raw, headers=headers) as response:
        return response.status


async def rows(db: Database) -> dict[str, tuple[str | None, str | None]]:
    """Every inbox row: dedupe key -> (outcome, reason)."""
    async with db.read() as conn:
        found = await conn.execute(
            sa.select(INBOX.c.dedupe_key, INBOX.c.outcome, INBOX.c.error).order_by(INBOX.c.id)
        )
        return {r.dedupe_key: (r.outcome, r.error) for r in found}


async def unprocessed(db: Database) -> int:
    async with db.read() as conn:
        query = sa.select(sa.func.count()).where(INBOX.c.processed_at.is_(None))
        return int((await conn.execute(query)).scalar_one())


async def units(db: Database, sku: str) -> int:
    async with db.read() as conn:
        return (await on_hand(conn, [sku])).get(sku, 0)


def counter(rt: Runtime, name: str, **labels: str) -> float:
    value = rt.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


async def test_bad_signed_deliveries_are_marked_and_the_orders_behind_them_still_apply(
    db: Database, clock: ManualClock
) -> None:
    """Each bad delivery, then ten good ones, through the signed route: the bad one ends invalid
    (or ignored) with its reason, the ten move the stock on both channels, nothing is left."""
    config = settings(
        channels={"alpha": {"kind": "mock", "webhook_secret": SECRET}, "beta": {"kind": "mock"}}
    )
    rt = await make_runtime(db, clock, config)
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 100, "live_quantity": 100}])
    loop = StockLoop(rt)
    await loop.discover()
    now = clock.now()
    bad = {
        "nul": ("MUG\x00-1", 1),
        "long": ("M" * 300, 1),
        "huge": ("MUG-1", 2**70),
        "zero": ("MUG-1", 0),
        "unknown": ("NOPE-9", 1),
    }
    async with webhook_server(rt, loop) as url, aiohttp.ClientSession() as session:
        for case, line in bad.items():
            statuses = [await post_signed(session, url, case, order(f"B-{case}", line, at=now))]
            for i in range(NORMAL):
                body = order(f"G-{case}-{i}", ("MUG-1", 1), at=now)
                statuses.append(await post_signed(session, url, f"{case}-{i}", body))
            assert statuses == [200] * (NORMAL + 1)  # authentic: acknowledged, never re-sent
            await loop.deliver("alpha")
    found = await rows(db)
    assert found.pop("nul") == (
        "invalid",
        "order B-nul: sku 'MUG\\x00-1' contains a control character",
    )
    assert found.pop("long") == (
        "invalid",
        f"order B-long: sku '{'M' * 40}…' is 300 characters (at most 255)",
    )
    assert found.pop("huge") == (
        "invalid",
        f"order B-huge: quantity {2**70} of sku 'MUG-1' is outside 1..{MAX_UNITS}",
    )
    assert found.pop("zero") == (
        "invalid",
        f"order B-zero: quantity 0 of sku 'MUG-1' is outside 1..{MAX_UNITS}",
    )
    assert found.pop("unknown") == ("ignored", "unknown sku 'NOPE-9'")
    assert found == {key: ("applied", None) for key in found}
    assert len(found) == 5 * NORMAL
    assert await units(db, "MUG-1") == 100 - 5 * NORMAL
    assert quantity(rt, "alpha", "MUG-1") == quantity(rt, "beta", "MUG-1") == 50
    async with db.read() as conn:
        nope = await conn.execute(sa.select(EVENTS.c.id).where(EVENTS.c.sku == "NOPE-9"))
        assert nope.all() == []
    assert counter(rt, "repricerd_webhooks_invalid_total", channel="alpha", reason="sku") == 2
    assert counter(rt, "repricerd_webhooks_invalid_total", channel="alpha", reason="quantity") == 2
    assert counter(rt, "repricerd_order_lines_unknown_sku_total", channel="alpha") == 1
    assert await unprocessed(db) == 0  # nothing waits to be retried
    assert await loop.worker.process("alpha") == 0
    await rt.close()


async def poison(db: Database) -> None:
    """A constraint (on both engines) that refuses any second ledger row for SKU POISON."""
    async with db.write() as conn:
        await conn.execute(
            sa.text("CREATE UNIQUE INDEX poison ON stock_event (sku) WHERE sku = 'POISON'")
        )


async def test_a_row_the_database_refuses_is_marked_invalid_and_the_rest_apply_one_by_one(
    db: Database, clock: ManualClock
) -> None:
    """A real constraint fails one order's insert: the batch fails, its rows are applied one
    by one, and only that row ends invalid with the database's error."""
    rt = await make_runtime(db, clock, settings())
    skus = [{"sku": s, "stock": 10, "live_quantity": 10} for s in ("MUG-1", "POISON")]
    await seed(db, clock, rt, skus)
    loop = StockLoop(rt)
    await loop.discover()
    await poison(db)
    now = clock.now()
    for i in range(3):
        await store(db, clock, "alpha", f"a{i}", "order", order(f"A-{i}", ("MUG-1", 1), at=now))
    await store(db, clock, "alpha", "bad", "order", order("P-1", ("POISON", 1), at=now))
    # A parse error whose message holds a NUL byte is stored printable (PostgreSQL refuses NUL).
    await store(db, clock, "alpha", "status", "order", order("S-1", at=now, status="pl\x00aced"))
    mixed = order("M-1", ("MUG-1", 1), ("GHOST", 2), at=now)
    await store(db, clock, "alpha", "mixed", "order", mixed)
    for i in range(3):
        await store(db, clock, "alpha", f"b{i}", "order", order(f"B-{i}", ("MUG-1", 1), at=now))
    await loop.deliver("alpha")
    found = await rows(db)
    outcome, reason = found.pop("bad")
    assert outcome == "invalid"
    assert reason is not None
    assert reason.startswith("database: ")
    assert "poison" in reason.lower() or "unique" in reason.lower()
    assert found.pop("status") == (
        "invalid",
        "ValueError: 'pl\\x00aced' is not a valid OrderStatus",
    )
    assert found.pop("mixed") == ("applied", "unknown sku 'GHOST'")
    assert found == {key: ("applied", None) for key in ("a0", "a1", "a2", "b0", "b1", "b2")}
    assert (await units(db, "MUG-1"), await units(db, "POISON")) == (3, 10)
    assert quantity(rt, "beta", "MUG-1") == 3
    invalid = "repricerd_webhooks_invalid_total"
    assert counter(rt, invalid, channel="alpha", reason="database") == 1
    assert counter(rt, invalid, channel="alpha", reason="unparsable") == 1
    assert await unprocessed(db) == 0
    await rt.close()


def failing_apply(fails: Any) -> tuple[list[int], Any]:
    """``apply_orders`` that raises ``fails(events)`` when it is not None; records batch sizes."""
    real = inbox_module.apply_orders
    sizes: list[int] = []

    async def apply(*args: Any, events: Sequence[OrderEvent], **kwargs: Any) -> Any:
        sizes.append(len(events))
        error = fails(events)
        if error is not None:
            raise error
        return await real(*args, events=events, **kwargs)

    return sizes, apply


async def test_a_failure_only_inside_the_batch_applies_every_row_one_by_one(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 10, "live_quantity": 10}])
    loop = StockLoop(rt)
    await loop.discover()
    batch_error = sa.exc.IntegrityError("INSERT INTO stock_event", {}, Exception("batch only"))
    sizes, apply = failing_apply(lambda events: batch_error if len(events) > 1 else None)
    monkeypatch.setattr(inbox_module, "apply_orders", apply)
    for i in range(4):
        body = order(f"A-{i}", ("MUG-1", 1), at=clock.now())
        await store(db, clock, "alpha", f"o{i}", "order", body)
    await loop.deliver("alpha")
    assert sizes == [4, 1, 1, 1, 1]  # the batch, then each row alone
    assert await rows(db) == {f"o{i}": ("applied", None) for i in range(4)}
    assert await units(db, "MUG-1") == 6
    assert quantity(rt, "beta", "MUG-1") == 6
    await rt.close()


async def test_a_database_that_is_down_leaves_the_rows_for_the_next_round(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure that is not the row's is never marked invalid: what committed before it is
    published, the rest waits and applies on the next round."""
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 10, "live_quantity": 10}])
    loop = StockLoop(rt)
    await loop.discover()
    down = sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))
    _, apply = failing_apply(lambda events: down if "A-1" in {e.order_id for e in events} else None)
    monkeypatch.setattr(inbox_module, "apply_orders", apply)
    for i in range(3):
        body = order(f"A-{i}", ("MUG-1", 1), at=clock.now())
        await store(db, clock, "alpha", f"o{i}", "order", body)
    with pytest.raises(sa.exc.OperationalError):
        await loop.worker.process("alpha")
    assert await rows(db) == {"o0": ("applied", None), "o1": (None, None), "o2": (None, None)}
    assert loop.published == [{"MUG-1"}]  # o0 committed: its stock is still published
    monkeypatch.undo()
    await loop.deliver("alpha")
    assert await rows(db) == {f"o{i}": ("applied", None) for i in range(3)}
    assert await units(db, "MUG-1") == 7
    assert quantity(rt, "beta", "MUG-1") == 7
    assert counter(rt, "repricerd_webhooks_invalid_total", channel="alpha", reason="database") == 0
    await rt.close()


async def test_a_sku_of_255_characters_is_applied(db: Database, clock: ManualClock) -> None:
    """Shopify allows 255-character SKUs: the catalogue, the ledger and the listing hold one."""
    rt = await make_runtime(db, clock, settings())
    sku = "S" * 255
    await seed(db, clock, rt, [{"sku": sku, "stock": 4, "live_quantity": 4}])
    for name in ("alpha", "beta"):  # a marketplace id is short, whatever the SKU
        rt.channels[name].market.listings[sku].external_id = f"{name}-1"  # type: ignore[attr-defined]
    loop = StockLoop(rt)
    await loop.discover()
    await store(db, clock, "alpha", "o1", "order", order("X" * 100, (sku, 1), at=clock.now()))
    await loop.deliver("alpha")
    assert await rows(db) == {"o1": ("applied", None)}
    assert await units(db, sku) == 3
    assert quantity(rt, "beta", sku) == 3
    await rt.close()


async def test_the_orders_poll_skips_absurd_or_refused_orders_and_ignores_unknown_skus(
    db: Database, clock: ManualClock
) -> None:
    """None of them stops the poll (its watermark would stay, and every later poll fail)."""
    rt = await make_runtime(db, clock, settings())
    skus = [{"sku": s, "stock": 9, "live_quantity": 9} for s in ("MUG-1", "POISON")]
    await seed(db, clock, rt, skus)
    await run_named_pass(rt, "reconcile", "p0")
    await poison(db)
    orders = polling(rt, "alpha")
    placed = clock.now() + timedelta(minutes=1)
    orders.events = [
        OrderEvent("A-1", OrderStatus.PLACED, (OrderLine("MUG\x00", 1),), placed),
        OrderEvent("A-2", OrderStatus.PLACED, (OrderLine("MUG-1", 2**31),), placed),
        OrderEvent("A-3", OrderStatus.PLACED, (OrderLine("NOPE", 1),), placed),
        OrderEvent("A-4", OrderStatus.PLACED, (OrderLine("POISON", 1),), placed),
        OrderEvent("A-5", OrderStatus.PLACED, (OrderLine("MUG-1", 2),), placed),
    ]
    clock.advance(120)
    report = (await run_named_pass(rt, "orders", "p1"))["alpha"]
    assert (report["invalid"], report["ignored"], report["applied"]) == (3, 1, 1)
    assert (await units(db, "MUG-1"), await units(db, "POISON")) == (7, 9)
    assert quantity(rt, "beta", "MUG-1") == 7
    assert counter(rt, "repricerd_order_lines_unknown_sku_total", channel="alpha") == 1
    await rt.close()


def test_event_checks_accept_what_marketplaces_send_and_name_what_they_refuse() -> None:
    at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

    def placed(sku: str, quantity: Any, order_id: str = "111-2223333-4445555") -> OrderEvent:
        return OrderEvent(order_id, OrderStatus.PLACED, (OrderLine(sku, quantity),), at)

    fine = [
        placed("Tasse-Größe-ü 40cl", 1),
        placed("S" * 255, MAX_UNITS),
        OrderEvent("9", OrderStatus.CANCELLED, (OrderLine("MUG-1", 0),), at),  # Amazon's cancel
        QuantityObserved("MUG-1", -3, at),  # Shopify lets a shop oversell
        OfferChanged("MUG-1", OfferObservation("MUG-1", at, ())),
    ]
    assert [event_problem(event) for event in fine] == [None] * len(fine)
    refused = {
        "sku": [
            placed("", 1),
            placed("   ", 1),
            placed("S" * 256, 1),
            placed("A\tB", 1),
            placed("A\x7f", 1),
            placed("A\x85", 1),
            placed("A\ud800", 1),
            OfferChanged("MUG-1", OfferObservation("M\x00", at, ())),
            QuantityObserved("M\n", 1, at),
        ],
        "quantity": [
            placed("MUG-1", 0),
            placed("MUG-1", -1),
            placed("MUG-1", MAX_UNITS + 1),
            placed("MUG-1", True),
            QuantityObserved("MUG-1", -MAX_UNITS - 1, at),
        ],
        "order_id": [
            placed("MUG-1", 1, ""),
            placed("MUG-1", 1, "9" * 101),
            placed("MUG-1", 1, "1\x00"),
        ],
    }
    for kind, events in refused.items():
        for event in events:
            problem = event_problem(event)
            assert problem is not None, event
            assert problem.kind == kind, event
            assert printable(problem.reason) == problem.reason


def test_printable_escapes_control_characters_and_lone_surrogates() -> None:
    assert printable("a\x00b\tc\ud800d é") == "a\\x00b\\tc\\ud800d é"
