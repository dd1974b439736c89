"""The single write path: intent before the call, outcome on the same row, crash re-drive."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from daemon import controls, pass_gate
from daemon.action_status import MAX_ATTEMPTS
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus
from daemon.intents import PlannedWrite, new_idempotency_key
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from domain.clock import ManualClock
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate
from tests.daemon_fixtures import ACTIONS, actions, make_runtime, seed, settings

D = Decimal


def stock_intent(sku: str, qty: int, now: datetime, old: int | None = 0) -> PlannedWrite:
    """A planned stock intent."""
    return PlannedWrite(
        pass_id="t",
        kind=ActionKind.STOCK,
        channel="alpha",
        sku=sku,
        status=ActionStatus.PLANNED,
        old_quantity=old,
        new_quantity=qty,
        reason="test",
        idempotency_key=new_idempotency_key(),
        created_at=now,
    )


def price_intent(sku: str, price: str, now: datetime) -> PlannedWrite:
    """A planned price intent."""
    return PlannedWrite(
        pass_id="t",
        kind=ActionKind.PRICE,
        channel="alpha",
        sku=sku,
        status=ActionStatus.PLANNED,
        old_price=D("20.00"),
        new_price=D(price),
        currency="USD",
        floor=D("1.00"),
        ceiling=D("99.00"),
        reason="test",
        idempotency_key=new_idempotency_key(),
        created_at=now,
    )


class Crash(BaseException):
    """Stands in for kill -9: nothing after the marketplace call runs."""


async def test_intent_is_committed_as_sent_before_the_marketplace_call(
    db: Database, clock: ManualClock
) -> None:
    """When the channel is called, its rows are already durable with status 'sent'."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    channel = rt.channels["alpha"]
    original = channel.push_prices
    seen: list[list[str]] = []

    async def spying(updates: Sequence[PriceUpdate]) -> list[PushResult]:
        async with db.read() as conn:
            rows = (
                await conn.execute(sa.select(ACTIONS.c.status, ACTIONS.c.idempotency_key))
            ).all()
        seen.append(
            [r.status for r in rows if r.idempotency_key in {u.idempotency_key for u in updates}]
        )
        return await original(updates)

    channel.push_prices = spying  # type: ignore[method-assign]
    await rt.outbox.record([price_intent("A", "18.00", clock.now())])
    await rt.outbox.dispatch(channel, ActionKind.PRICE)
    assert seen == [["sent"]]
    [row] = await actions(db)
    assert row.status == "confirmed"
    assert row.attempts == 1
    await rt.close()


async def test_crash_after_the_call_is_redriven_with_the_same_key_and_applied_once(
    db: Database, clock: ManualClock
) -> None:
    """A write that reached the marketplace before a crash is resent on restart, effect once."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}, {"sku": "B"}], listed_on=("alpha",))
    channel = rt.channels["alpha"]
    original = channel.push_stock

    async def crashing(updates: Sequence[StockUpdate]) -> list[PushResult]:
        await original(updates)
        raise Crash

    channel.push_stock = crashing  # type: ignore[method-assign]
    await rt.outbox.record([stock_intent("A", 5, clock.now()), stock_intent("B", 3, clock.now())])
    with contextlib.suppress(Crash):
        await rt.outbox.dispatch(channel, ActionKind.STOCK)
    assert {row.status for row in await actions(db)} == {"sent"}

    channel.push_stock = original  # type: ignore[method-assign]
    restarted = Outbox(db, clock, Metrics())  # a new process: no in-memory state survives
    assert (
        await restarted.dispatch(channel, ActionKind.STOCK)
    ).sent == 0  # normal rounds skip 'sent'
    report = await restarted.dispatch(channel, ActionKind.STOCK, redrive=True)
    assert report.confirmed == 2
    rows = await actions(db)
    assert [(r.status, r.attempts) for r in rows] == [("confirmed", 2), ("confirmed", 2)]
    market = channel.market  # type: ignore[attr-defined]
    assert all(market.deliveries[r.idempotency_key] == 2 for r in rows)
    assert all(market.effects[r.idempotency_key] == 1 for r in rows)
    assert (market.listings["A"].quantity, market.listings["B"].quantity) == (5, 3)
    await rt.close()


async def test_newest_intent_supersedes_older_unsent_ones(db: Database, clock: ManualClock) -> None:
    """Three queued quantities for one SKU: only the newest is sent, the others are superseded."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    await rt.outbox.record([stock_intent("A", q, clock.now()) for q in (4, 3, 2)])
    report = await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.STOCK)
    assert (report.sent, report.superseded) == (1, 2)
    assert [r.status for r in await actions(db)] == ["superseded", "superseded", "confirmed"]
    assert rt.channels["alpha"].market.listings["A"].quantity == 2  # type: ignore[attr-defined]
    await rt.close()


async def test_pause_stops_writes_and_keeps_intents_queued(
    db: Database, clock: ManualClock
) -> None:
    """The kill switch blocks dispatch; resume lets the same intents go."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    await controls.pause(db, clock, channel=None, reason="incident 42")
    await rt.outbox.record([price_intent("A", "18.00", clock.now())])
    report = await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)
    assert report.sent == 0
    assert report.blocked_reason is not None
    assert "incident 42" in report.blocked_reason
    assert [r.status for r in await actions(db)] == ["planned"]
    await controls.resume(db, clock, channel=None)
    await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)
    assert [r.status for r in await actions(db)] == ["confirmed"]
    await rt.close()


async def test_channel_pause_and_breaker_are_per_channel(db: Database, clock: ManualClock) -> None:
    """A tripped breaker on one channel blocks it alone until resumed."""
    rt = await make_runtime(db, clock, settings())
    await controls.trip_breaker(db, clock, channel="alpha", reason="40% of listings moved")
    async with db.read() as conn:
        assert "breaker" in (await controls.write_block_reason(conn, "alpha") or "")
        assert await controls.write_block_reason(conn, "beta") is None
    await controls.resume(db, clock, channel="alpha")
    async with db.read() as conn:
        assert await controls.write_block_reason(conn, "alpha") is None
    await rt.close()


async def test_transient_failures_stay_open_then_fail_after_the_attempt_cap(
    db: Database, clock: ManualClock
) -> None:
    """A 503 puts the intent back to planned with the error; after MAX_ATTEMPTS it fails."""
    rt = await make_runtime(
        db, clock, settings(channels={"alpha": {"kind": "mock", "fail_rate": 1.0}})
    )
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    await rt.outbox.record([price_intent("A", "18.00", clock.now())])
    await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)
    [row] = await actions(db)
    assert (row.status, row.attempts) == ("planned", 1)
    assert row.response_message is not None
    assert "503" in row.response_message
    for _ in range(MAX_ATTEMPTS - 1):
        await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)
    [row] = await actions(db)
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    await rt.close()


async def test_a_deferred_update_stays_open_without_using_an_attempt(
    db: Database, clock: ManualClock
) -> None:
    """A connector that holds an update back (eBay's revision budget, Walmart's feed budget)
    keeps the intent open for as many rounds as it takes; the attempt cap is for failures."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    channel = rt.channels["alpha"]
    real = channel.push_prices
    budget_left = False

    async def budgeted(updates: Any) -> Any:
        if not budget_left:
            return [
                PushResult(u.idempotency_key, PushStatus.DEFERRED, "REVISION_BUDGET", "wait")
                for u in updates
            ]
        return await real(updates)

    channel.push_prices = budgeted  # type: ignore[method-assign]
    await rt.outbox.record([price_intent("A", "18.00", clock.now())])
    for _ in range(MAX_ATTEMPTS * 2):
        await rt.outbox.dispatch(channel, ActionKind.PRICE)
    [row] = await actions(db)
    assert (row.status, row.attempts, row.response_code) == ("planned", 0, "REVISION_BUDGET")
    budget_left = True
    await rt.outbox.dispatch(channel, ActionKind.PRICE)
    [row] = await actions(db)
    assert (row.status, row.attempts) == ("confirmed", 1)
    await rt.close()


async def test_marketplace_rejection_is_recorded_with_its_code_and_never_retried(
    db: Database, clock: ManualClock
) -> None:
    """A 4xx-style rejection marks the row failed with the marketplace's code and message."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await rt.outbox.record([price_intent("GHOST", "18.00", clock.now())])
    await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)
    await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)
    [row] = await actions(db)
    assert (row.status, row.response_code, row.attempts) == ("failed", "NOT_FOUND", 1)
    assert row.response_message is not None
    assert "GHOST" in row.response_message
    await rt.close()


async def test_staged_intents_are_never_sent_and_are_abandoned_at_start_up(
    db: Database, clock: ManualClock
) -> None:
    """A pass that died before its breaker check (older databases: staged rows) is never
    dispatched, and the next start marks its rows superseded (the next pass decides again)."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    await rt.outbox.record(
        [replace(price_intent("A", "18.00", clock.now()), status=ActionStatus.STAGED)]
    )
    assert (
        await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE, redrive=True)
    ).sent == 0
    assert await pass_gate.abandon_open_passes(db, clock) == 1
    [row] = await actions(db)
    assert row.status == "superseded"
    assert row.response_message is not None
    assert rt.channels["alpha"].market.listings["A"].price == D("20.00")  # type: ignore[attr-defined]
    await rt.close()


async def test_intents_of_an_open_pass_wait_for_the_gate(db: Database, clock: ManualClock) -> None:
    """Price intents recorded behind an open pass gate are not sent, not counted as open or
    unsent; closing the gate lets them go; only that pass and channel are held back."""
    rt = await make_runtime(
        db, clock, settings(channels={"alpha": {"kind": "mock"}, "beta": {"kind": "mock"}})
    )
    await seed(db, clock, rt, [{"sku": "A"}, {"sku": "B"}], listed_on=("alpha", "beta"))
    await pass_gate.open_gate(db, clock, channel="alpha", pass_id="t")
    await rt.outbox.record(
        [
            price_intent("A", "18.00", clock.now()),
            replace(price_intent("B", "17.00", clock.now()), pass_id="older"),
            replace(price_intent("A", "16.00", clock.now()), channel="beta"),
        ]
    )
    alpha, beta = rt.channels["alpha"], rt.channels["beta"]
    assert await rt.outbox.unsent_skus("alpha", ActionKind.PRICE, {"A", "B"}) == {"B"}
    assert await rt.outbox.count_open() == 2
    assert (await rt.outbox.dispatch(alpha, ActionKind.PRICE)).sent == 1  # B, another pass
    assert (await rt.outbox.dispatch(beta, ActionKind.PRICE)).sent == 1  # the gate is alpha's
    assert alpha.market.listings["A"].price == D("20.00")  # type: ignore[attr-defined]
    assert await pass_gate.close_gate(db, clock, channel="alpha", pass_id="t", blocked_by=None) == 0
    assert (await rt.outbox.dispatch(alpha, ActionKind.PRICE)).sent == 1
    assert alpha.market.listings["A"].price == D("18.00")  # type: ignore[attr-defined]
    await rt.close()


async def test_a_tripped_breaker_blocks_every_intent_behind_the_gate(
    db: Database, clock: ManualClock
) -> None:
    """Closing the gate with the breaker's reason blocks the pass's intents, nothing else."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}, {"sku": "B"}], listed_on=("alpha",))
    await pass_gate.open_gate(db, clock, channel="alpha", pass_id="t")
    await rt.outbox.record(
        [
            price_intent("A", "18.00", clock.now()),
            replace(price_intent("B", "17.00", clock.now()), pass_id="older"),
        ]
    )
    assert (
        await pass_gate.close_gate(db, clock, channel="alpha", pass_id="t", blocked_by="90% moved")
    ) == 1
    rows = {row.sku: row for row in await actions(db)}
    assert rows["A"].status == "blocked"
    assert rows["A"].reason == "circuit breaker: 90% moved"
    assert rows["B"].status == "planned"
    await rt.close()


async def test_an_open_pass_is_abandoned_at_start_up(db: Database, clock: ManualClock) -> None:
    """kill -9 in the middle of a pass leaves its gate open: the next start supersedes what it
    recorded and opens the gate, so neither those intents nor later ones are stuck."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    await pass_gate.open_gate(db, clock, channel="alpha", pass_id="t")
    await rt.outbox.record([price_intent("A", "18.00", clock.now())])
    assert await pass_gate.abandon_open_passes(db, clock) == 1
    [row] = await actions(db)
    assert (row.status, row.response_message) == ("superseded", pass_gate.ABANDONED)
    await rt.outbox.record([replace(price_intent("A", "19.00", clock.now()), pass_id="t")])
    assert (await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)).sent == 1
    await rt.close()


async def test_an_unexpected_connector_error_is_a_retry_not_a_stuck_row(
    db: Database, clock: ManualClock
) -> None:
    """A connector bug (any exception) puts the intent back to planned with the error."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))

    async def broken(_updates: Sequence[PriceUpdate]) -> list[PushResult]:
        raise RuntimeError("connector bug")

    rt.channels["alpha"].push_prices = broken  # type: ignore[method-assign]
    await rt.outbox.record([price_intent("A", "21.00", clock.now())])
    await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)
    [row] = await actions(db)
    assert (row.status, row.response_code) == ("planned", "RuntimeError")
    await rt.close()


async def test_redrive_never_puts_back_a_write_older_than_a_confirmed_one(
    db: Database, clock: ManualClock
) -> None:
    """A row left 'sent' by a crash is superseded, not re-sent, once a newer write for the same
    listing was confirmed: the old price must not come back after a restart."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    channel = rt.channels["alpha"]
    original = channel.push_prices

    async def crashing(updates: Sequence[PriceUpdate]) -> list[PushResult]:
        raise Crash

    channel.push_prices = crashing  # type: ignore[method-assign]
    await rt.outbox.record([price_intent("A", "21.00", clock.now())])
    with contextlib.suppress(Crash):
        await rt.outbox.dispatch(channel, ActionKind.PRICE)
    channel.push_prices = original  # type: ignore[method-assign]
    await rt.outbox.record([price_intent("A", "22.00", clock.now())])
    await rt.outbox.dispatch(channel, ActionKind.PRICE)
    assert channel.market.listings["A"].price == D("22.00")  # type: ignore[attr-defined]
    await Outbox(db, clock, Metrics()).dispatch(channel, ActionKind.PRICE, redrive=True)
    assert channel.market.listings["A"].price == D("22.00")  # type: ignore[attr-defined]
    assert [r.status for r in await actions(db)] == ["superseded", "confirmed"]
    await rt.close()


async def test_resume_after_a_plain_pause_keeps_the_breaker_armed(
    db: Database, clock: ManualClock
) -> None:
    """Only a tripped breaker is disarmed by resume; a pause/resume leaves it watching."""
    await controls.pause(db, clock, channel=None, reason="lunch")
    await controls.resume(db, clock, channel=None, rearm_after=timedelta(days=1))
    async with db.read() as conn:
        assert await controls.breaker_armed(conn, "alpha", clock.now())
    await controls.trip_breaker(db, clock, channel="alpha", reason="test")
    await controls.resume(db, clock, channel="alpha", rearm_after=timedelta(days=1))
    async with db.read() as conn:
        assert not await controls.breaker_armed(conn, "alpha", clock.now())
        assert await controls.breaker_armed(conn, "beta", clock.now())


async def test_an_intent_superseded_after_it_was_read_is_not_sent(
    db: Database, clock: ManualClock, monkeypatch: Any
) -> None:
    """A newer decision that supersedes an intent between the dispatcher's read and its claim
    wins: the claim takes only rows still open, so the old price never goes out."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    await rt.outbox.record([price_intent("A", "18.00", clock.now())])
    read = Outbox._pending

    async def read_then_supersede(self: Outbox, conn: Any, *args: Any, **kwargs: Any) -> Any:
        rows = await read(self, conn, *args, **kwargs)
        await self.supersede_open("alpha", ActionKind.PRICE, ["A"], before_pass="newer")
        return rows

    monkeypatch.setattr(Outbox, "_pending", read_then_supersede)
    assert (await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)).sent == 0
    [row] = await actions(db)
    assert row.status == "superseded"
    assert rt.channels["alpha"].market.listings["A"].price == D("20.00")  # type: ignore[attr-defined]
    await rt.close()
