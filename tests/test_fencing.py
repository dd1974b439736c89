"""Fencing in SQL: a replica whose lease expired or moved claims, completes and applies nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
import sqlalchemy as sa
from rich.console import Console

from daemon.db.engine import Database
from daemon.db.models import ActionKind
from daemon.inbox import InboxWorker
from daemon.leases import LeaseKeeper, LeaseLostError, LeaseStore
from daemon.runtime import Runtime
from daemon.status import read_status, render_status
from domain.clock import ManualClock
from domain.writes import PriceUpdate, PushResult
from tests.daemon_fixtures import actions, make_runtime, seed, settings
from tests.test_outbox import price_intent
from tests.test_stock_events import INBOX, order, store

TTL = 15.0


async def noop_sleep(_seconds: float) -> None:
    """The keepers are ticked by hand."""


def keeper(db: Database, clock: ManualClock, replica: str) -> LeaseKeeper:
    """A replica's lease keeper on ``alpha`` over the shared database and clock."""
    store = LeaseStore(db, ttl_s=TTL, clock=clock)
    return LeaseKeeper(store, ["alpha"], clock, replica=replica, sleep=noop_sleep)


async def stale_and_taken_over(db: Database, clock: ManualClock) -> tuple[LeaseKeeper, Runtime]:
    """Replica ``a`` holds ``alpha``, is 'paused' past the TTL and ``b`` takes the channel.

    Returns ``a``'s keeper (it still believes it holds the lease: it has not ticked since) and
    a runtime fenced with it.
    """
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    a = keeper(db, clock, "a")
    await a.tick()
    assert a.holds("alpha") is not None
    rt.outbox.fence = a.fence
    clock.advance(TTL + 1)
    b = keeper(db, clock, "b")
    await b.tick()
    assert b.holds("alpha") is not None
    assert a.holds("alpha") is not None  # a has not noticed: only the database knows
    return a, rt


async def test_a_stale_holder_claims_nothing(db: Database, clock: ManualClock) -> None:
    """The claim UPDATE ANDs the fence: 0 rows sent, the marketplace never called."""
    a, rt = await stale_and_taken_over(db, clock)
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    await rt.outbox.record([price_intent("A", "18.00", clock.now())])
    channel = rt.channels["alpha"]
    report = await rt.outbox.dispatch(channel, ActionKind.PRICE)
    assert (report.sent, report.blocked_reason) == (0, "lease lost")
    [row] = await actions(db)
    assert (row.status, row.attempts, row.sent_at) == ("planned", 0, None)
    assert not channel.market.deliveries  # type: ignore[attr-defined]
    assert not a.fresh("alpha")  # the local check agrees once the TTL has passed
    await rt.close()


async def test_a_holder_that_lost_the_lease_mid_push_completes_nothing(
    db: Database, clock: ManualClock
) -> None:
    """Claimed while held; the lease moves during the call: the row stays sent, unanswered,
    for the new owner to re-drive with the same key."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A"}], listed_on=("alpha",))
    a = keeper(db, clock, "a")
    await a.tick()
    rt.outbox.fence = a.fence
    channel = rt.channels["alpha"]
    original = channel.push_prices

    async def slow(updates: Sequence[PriceUpdate]) -> list[PushResult]:
        clock.advance(TTL + 1)  # paused mid-call, past the lease
        await keeper(db, clock, "b").tick()
        return await original(updates)

    channel.push_prices = slow  # type: ignore[method-assign]
    await rt.outbox.record([price_intent("A", "18.00", clock.now())])
    report = await rt.outbox.dispatch(channel, ActionKind.PRICE)
    assert report.sent == 1
    [row] = await actions(db)
    assert (row.status, row.response_code, row.completed_at) == ("sent", None, None)
    await rt.close()


async def ledger_rows(db: Database) -> int:
    """Rows of the stock ledger."""
    async with db.read() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM stock_event"))).scalar_one())


async def test_a_stale_holder_applies_no_webhook(db: Database, clock: ManualClock) -> None:
    """The inbox's mark is fenced: the round rolls back (no ledger row) and the row waits."""
    _a, rt = await stale_and_taken_over(db, clock)
    await seed(db, clock, rt, [{"sku": "A", "stock": 10}], listed_on=("alpha",))
    await store(db, clock, "alpha", "o-1", "order", order("o-1", ("A", 2), at=clock.now()))
    before = await ledger_rows(db)
    worker = InboxWorker(rt, on_offer_change=lambda *_: None)
    with pytest.raises(LeaseLostError):
        await worker.process("alpha")
    async with db.read() as conn:
        processed = (await conn.execute(sa.select(INBOX.c.processed_at))).scalars().all()
    assert processed == [None]
    assert await ledger_rows(db) == before
    await rt.close()


async def test_the_owner_claims_and_applies_as_before(db: Database, clock: ManualClock) -> None:
    """The fence lets the current holder through (the same dispatch and inbox round)."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A", "stock": 10}], listed_on=("alpha",))
    a = keeper(db, clock, "a")
    await a.tick()
    rt.outbox.fence = a.fence
    rt.leases = a
    await rt.outbox.record([price_intent("A", "18.00", clock.now())])
    report = await rt.outbox.dispatch(rt.channels["alpha"], ActionKind.PRICE)
    assert report.confirmed == 1
    await store(db, clock, "alpha", "o-1", "order", order("o-1", ("A", 2), at=clock.now()))
    before = await ledger_rows(db)
    assert await InboxWorker(rt, on_offer_change=lambda *_: None).process("alpha") == 1
    assert await ledger_rows(db) == before + 1
    clock.advance(TTL)  # not renewed for a whole TTL: no longer usable
    assert not rt.is_open("alpha")
    await rt.close()


async def test_status_shows_each_channel_owner_and_lease_age(
    db: Database, clock: ManualClock
) -> None:
    """`status` and GET /status name the replica holding each lease and how long it has."""
    a = keeper(db, clock, "replica-a")
    await a.tick()
    clock.advance(4)
    snapshot = await read_status(db, ("alpha", "beta"), clock.now())
    alpha = snapshot.as_dict()["channels"]["alpha"]["owner"]
    assert alpha == {
        "replica": "replica-a",
        "epoch": 1,
        "since": (clock.now() - timedelta(seconds=4)).isoformat(),
        "lease_age_seconds": 4.0,
    }
    assert snapshot.as_dict()["channels"]["beta"]["owner"] is None  # not leased (not configured)
    console = Console(width=200, record=True)
    render_status(snapshot, console)
    assert "owner replica-a (4s ago)" in console.export_text()
    clock.advance(TTL)  # expired: nobody owns it
    assert (await read_status(db, ("alpha",), clock.now())).channels[0].owner is None
