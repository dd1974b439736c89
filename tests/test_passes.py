"""Daemon passes on the in-memory mock channel: reprice, stock sync and reconcile, end to end."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from daemon.db.engine import Database
from daemon.history import fetch_explain
from daemon.passes import run_named_pass
from domain.clock import ManualClock
from domain.listings import Fulfillment
from tests.daemon_fixtures import ACTIONS, EVENTS, actions, listing, make_runtime, seed, settings

D = Decimal


@pytest.fixture
def products() -> list[dict[str, Any]]:
    """MUG-1 wants to fall from 20.00 to 14.00; TEE-1 is at target; NOFLOOR-1 has no floor."""
    return [
        {
            "sku": "MUG-1",
            "cost": D("10.00"),
            "fees": D("1.00"),
            "min_price": D("12.00"),
            "max_price": D("40.00"),
            "price": D("20.00"),
            "stock": 7,
        },
        {
            "sku": "TEE-1",
            "cost": D("10.00"),
            "min_price": D("11.00"),
            "max_price": D("40.00"),
            "price": D("13.00"),
            "stock": 0,
        },
        {"sku": "NOFLOOR-1", "max_price": D("40.00"), "price": D("14.00"), "stock": 3},
    ]


def market(rt: Any, channel: str) -> Any:
    """The simulated marketplace behind a mock channel."""
    return rt.channels[channel].market


async def test_reprice_moves_toward_target_in_guarded_steps(
    db: Database, clock: ManualClock, products: list[dict[str, Any]]
) -> None:
    """cost_plus wants 14.00 from 20.00: 10 % steps (18.00, 16.20), then the 25 %-a-day drift
    guard stops it at 15.00 until a day has passed, when it reaches 14.00."""
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, products)
    await run_named_pass(rt, "reconcile", "p0")
    seen = []
    for n in range(5):
        if n == 4:
            clock.advance(25 * 3600)
        await run_named_pass(rt, "reprice", f"p{n + 1}")
        seen.append(market(rt, "alpha").listings["MUG-1"].price)
    assert seen == [D("18.00"), D("16.20"), D("15.00"), D("15.00"), D("14.00")]
    rows = await actions(db, kind="price", channel="alpha", sku="MUG-1")
    assert [r.status for r in rows] == ["confirmed"] * 3 + ["held", "confirmed"]
    # Sent decisions are explained on demand (their inputs stored, the verdicts re-derived).
    newest_first = await fetch_explain(db, "MUG-1", channel="alpha", limit_per_listing=5)
    explained = [row for row in reversed(newest_first) if row["kind"] == "price"]
    assert [row["id"] for row in explained] == [row.id for row in rows]
    assert any(step["step"] == "guard:max_drift" for step in explained[2]["guard_verdicts"])
    first = rows[0]
    assert (first.old_price, first.new_price) == (D("20.00"), D("18.00"))
    assert first.strategy == "cost_plus"
    assert first.rule == "rules[0]"
    assert first.idempotency_key
    assert (first.floor, first.ceiling) == (D("12.00"), D("40.00"))
    assert any(
        step["step"] == "guard:max_step" and step["verdict"] == "limited"
        for step in explained[0]["guard_verdicts"]
    )
    assert (await listing(db, "alpha", "MUG-1")).price == D("14.00")
    await rt.close()


async def test_listing_without_floor_is_blocked_and_explained_once(
    db: Database, clock: ManualClock, products: list[dict[str, Any]]
) -> None:
    """No cost and no min_price: nothing is sent, one blocked row says why, repeats add none."""
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, products)
    await run_named_pass(rt, "reconcile", "p0")
    await run_named_pass(rt, "reprice", "p1")
    await run_named_pass(rt, "reprice", "p2")
    rows = await actions(db, kind="price", channel="alpha", sku="NOFLOOR-1")
    assert [row.status for row in rows] == ["blocked"]
    assert "no floor" in rows[0].reason
    assert market(rt, "alpha").listings["NOFLOOR-1"].price == D("14.00")
    held = await actions(db, kind="price", channel="alpha", sku="TEE-1")
    assert [row.status for row in held] == ["held"]
    await rt.close()


async def test_stock_sync_publishes_ledger_minus_buffer_with_allocation(
    db: Database, clock: ManualClock, products: list[dict[str, Any]]
) -> None:
    """Each channel shows on-hand minus the buffer, capped and shared as configured."""
    config = settings(inventory={"buffer": 1, "channels": {"beta": {"share_pct": 50, "max": 2}}})
    rt = await make_runtime(db, clock, config)
    await seed(db, clock, rt, products)
    await run_named_pass(rt, "reconcile", "p0")
    await run_named_pass(rt, "stock_sync", "p1")
    alpha, beta = market(rt, "alpha").listings, market(rt, "beta").listings
    assert (alpha["MUG-1"].quantity, alpha["TEE-1"].quantity, alpha["NOFLOOR-1"].quantity) == (
        6,
        0,
        2,
    )
    assert (beta["MUG-1"].quantity, beta["NOFLOOR-1"].quantity) == (2, 1)
    rows = await actions(db, kind="stock", channel="alpha", sku="MUG-1")
    assert [(r.old_quantity, r.new_quantity, r.status) for r in rows] == [(0, 6, "confirmed")]
    await run_named_pass(rt, "stock_sync", "p2")
    assert len(await actions(db, kind="stock")) == 4  # nothing new: already published
    await rt.close()


async def test_stock_sync_never_writes_marketplace_held_or_uncounted_stock(
    db: Database, clock: ManualClock
) -> None:
    """FBA-style listings and SKUs the ledger never counted are left alone."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(
        db,
        clock,
        rt,
        [
            {
                "sku": "FBA-1",
                "stock": 5,
                "fulfillment": Fulfillment.MARKETPLACE,
                "live_quantity": 9,
            },
            {"sku": "UNKNOWN-1", "live_quantity": 4},
        ],
        listed_on=("alpha",),
    )
    await run_named_pass(rt, "reconcile", "p0")
    result = await run_named_pass(rt, "stock_sync", "p1")
    assert result["alpha"]["never_counted"] == 1
    assert await actions(db, kind="stock") == []
    assert market(rt, "alpha").listings["FBA-1"].quantity == 9
    assert market(rt, "alpha").listings["UNKNOWN-1"].quantity == 4
    await rt.close()


async def test_reconcile_repairs_writes_the_marketplace_silently_dropped(
    db: Database, clock: ManualClock
) -> None:
    """A channel that drops 30 % of writes shows no drift after one reconcile pass."""
    config = settings(channels={"alpha": {"kind": "mock", "drop_rate": 0.3, "seed": 7}})
    rt = await make_runtime(db, clock, config)
    skus = [{"sku": f"S-{i:03d}", "stock": 5 + i} for i in range(60)]
    await seed(db, clock, rt, skus, listed_on=("alpha",))
    await run_named_pass(rt, "reconcile", "p0")  # discovers, and pushes stock (some dropped)
    live = market(rt, "alpha").listings
    wrong = [s["sku"] for s in skus if live[s["sku"]].quantity != s["stock"]]
    assert wrong, "the drop rate should have lost some writes"
    # Repair without further losses, so the assertion is about reconcile, not luck.
    market(rt, "alpha")
    rt.channels["alpha"].settings = rt.channels["alpha"].settings.model_copy(
        update={"drop_rate": 0.0}
    )  # type: ignore[attr-defined]
    report = await run_named_pass(rt, "reconcile", "p1")
    assert report["alpha"]["drift"] == len(wrong)
    assert all(live[s["sku"]].quantity == s["stock"] for s in skus)
    await rt.close()


async def test_a_failing_channel_does_not_stop_the_others(db: Database, clock: ManualClock) -> None:
    """One channel's exception is recorded for it; the other channel's pass completes."""
    config = settings(
        channels={"alpha": {"kind": "mock", "fail_rate": 1.0}, "beta": {"kind": "mock"}}
    )
    rt = await make_runtime(db, clock, config)
    await seed(db, clock, rt, [{"sku": "A-1", "stock": 2}])
    result = await run_named_pass(rt, "reconcile", "p0")
    assert "error" in result["alpha"]
    assert "503" in result["alpha"]["error"]
    assert result["beta"]["live"] == 1
    assert market(rt, "beta").listings["A-1"].quantity == 2
    await rt.close()


async def test_a_price_set_by_hand_becomes_the_drift_anchor_a_day_later(
    db: Database, clock: ManualClock, products: list[dict[str, Any]]
) -> None:
    """Someone sets 30.00 by hand in the marketplace: repricing holds for a day (a big move
    just happened), then steps down from 30.00 instead of holding for the 30-day history."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, products, listed_on=("alpha",))
    await run_named_pass(rt, "reconcile", "p0")
    await run_named_pass(rt, "reprice", "p1")
    live = market(rt, "alpha").listings["MUG-1"]
    assert live.price == D("18.00")
    clock.advance(3600)
    live.price = D("30.00")  # by hand, outside repricerd
    report = await run_named_pass(rt, "reconcile", "p2")
    assert report["alpha"]["drift"] >= 1
    clock.advance(3600)
    await run_named_pass(rt, "reprice", "p3")
    assert live.price == D("30.00")  # within 24 h of the last moves: held by the drift guard
    clock.advance(25 * 3600)
    await run_named_pass(rt, "reprice", "p4")
    assert live.price == D("27.00")  # one 10 % step down from the hand-set price
    await rt.close()


async def test_a_queued_stock_retry_is_kept_and_an_outdated_one_dropped(
    db: Database, clock: ManualClock
) -> None:
    """A retry already queued for the target goes out as it is (it carries the connector's live
    re-read); a queued retry for a number the ledger no longer wants is superseded, not sent."""
    from tests.test_outbox import stock_intent

    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await seed(db, clock, rt, [{"sku": "A", "stock": 6}, {"sku": "B", "stock": 4}], ("alpha",))
    await run_named_pass(rt, "reconcile", "p0")
    await run_named_pass(rt, "stock_sync", "p1")
    assert (
        market(rt, "alpha").listings["A"].quantity,
        market(rt, "alpha").listings["B"].quantity,
    ) == (6, 4)
    # Retries left planned by an earlier pass: A for 9 (a recount to 9 below), B for 7 (stale:
    # the ledger still says 4, which the listing already shows).
    await rt.outbox.record(
        [stock_intent("A", 9, clock.now(), old=6), stock_intent("B", 7, clock.now(), old=4)]
    )
    async with db.write() as conn:  # each has been tried once already
        await conn.execute(ACTIONS.update().values(attempts=1))
    async with db.write() as conn:
        await conn.execute(
            EVENTS.insert().values(
                sku="A",
                kind="count",
                delta=3,
                counted=9,
                external_ref="recount:A",
                occurred_at=clock.now(),
                recorded_at=clock.now(),
            )
        )
    await run_named_pass(rt, "stock_sync", "p2")
    rows = {(r.sku, r.pass_id): r for r in await actions(db, kind="stock")}
    assert rows[("A", "t")].status == "confirmed"  # the queued retry itself was sent
    assert ("A", "p2") not in rows  # no second intent for the same number
    assert rows[("B", "t")].status == "superseded"
    assert market(rt, "alpha").listings["A"].quantity == 9
    assert market(rt, "alpha").listings["B"].quantity == 4
    await rt.close()


async def test_an_accepted_write_gets_time_to_go_live_before_it_is_called_not_applied(
    db: Database, clock: ManualClock
) -> None:
    """A queued (ACCEPTED) write not live yet stays sent while the marketplace may still apply
    it; past the channel's ``accepted_apply_s`` reconcile records it NOT_APPLIED, and one that
    went live is confirmed."""
    config = settings(channels={"alpha": {"kind": "mock", "accept_writes": True, "drop_rate": 1.0}})
    rt = await make_runtime(db, clock, config)
    await seed(db, clock, rt, [{"sku": "A", "stock": 5}, {"sku": "B", "stock": 6}], ("alpha",))
    await run_named_pass(rt, "reconcile", "p0")  # discovers the listings and pushes stock
    sent = {row.sku: row for row in await actions(db) if row.kind == "stock"}
    assert {row.status for row in sent.values()} == {"sent"}
    market(rt, "alpha").listings["B"].quantity = 6  # B went live; A is still queued
    clock.advance(60)
    report = await run_named_pass(rt, "reconcile", "p1")
    assert report["alpha"]["verified"] == {"confirmed": 1, "pending": 1, "not_applied": 0}
    rows = {row.id: row for row in await actions(db)}
    assert rows[sent["A"].id].status == "sent"
    assert rows[sent["B"].id].status == "confirmed"
    assert len(rows) == 2  # the queued value is not drift: A was not sent a second time
    clock.advance(rt.channels["alpha"].capabilities.accepted_apply_s)
    report = await run_named_pass(rt, "reconcile", "p2")
    assert report["alpha"]["verified"]["not_applied"] == 1
    row = {row.id: row for row in await actions(db)}[sent["A"].id]
    assert (row.status, row.response_code) == ("failed", "NOT_APPLIED")
    again = [r for r in await actions(db) if r.sku == "A" and r.id != sent["A"].id]
    assert [r.new_quantity for r in again] == [5]  # the same reconcile repaired it
    await rt.close()
