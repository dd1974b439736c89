"""Event-driven repricing: debounce, inbox processing, offers poll, and the circuit breaker."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import io
import json
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import aiohttp
import sqlalchemy as sa
from pydantic import SecretStr
from rich.console import Console

from daemon import controls
from daemon.app import Passes
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus, OfferSnapshot, WebhookEvent
from daemon.history import fetch_explain
from daemon.inbox import InboxWorker
from daemon.intents import PlannedWrite
from daemon.passes import run_named_pass
from daemon.runtime import Runtime
from daemon.server import ServerContext, start_server
from daemon.settings import Settings
from daemon.simulate import render_plan, simulate
from daemon.snapshots import store_observations
from daemon.triggers import Debouncer
from domain.clock import ManualClock
from domain.offers import CompetitorOffer, OfferObservation
from tests.daemon_fixtures import actions, loaded, make_runtime, seed, settings

D = Decimal
INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]


class ManualSleep:
    """A sleep that returns only when the test releases it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def __call__(self, _seconds: float) -> None:
        await self.release.wait()


def banded(
    skus: str | Iterable[str],
    *,
    cost: str = "5",
    low: str = "6",
    price: str = "20",
    stock: int | None = None,
) -> list[dict[str, Any]]:
    """Products (one, or one a SKU) costing ``cost``, priced ``price`` in the band [low, 40]."""
    counted = {} if stock is None else {"stock": stock}
    return [
        {
            "sku": sku,
            "cost": D(cost),
            "min_price": D(low),
            "max_price": D("40"),
            "price": D(price),
            **counted,
        }
        for sku in ([skus] if isinstance(skus, str) else skus)
    ]


async def reconciled(
    db: Database, clock: ManualClock, config: Settings, products: list[dict[str, Any]]
) -> Runtime:
    """A runtime on ``config`` with ``products`` listed on ``alpha``, reconciled (pass p0)."""
    rt = await make_runtime(db, clock, config)
    await seed(db, clock, rt, products, listed_on=("alpha",))
    await run_named_pass(rt, "reconcile", "p0")
    return rt


def count_polls(channel: Any) -> list[list[str]]:
    """The SKUs of each offers poll ``channel`` makes from now on (sorted, one list a call)."""
    polled: list[list[str]] = []
    poll = channel.fetch_competitor_offers

    async def counting(skus: Any) -> Any:
        polled.append(sorted(skus))
        return await poll(skus)

    channel.fetch_competitor_offers = counting
    return polled


async def test_debouncer_merges_a_burst_into_one_action() -> None:
    """Five notifications inside one window become one call with every SKU."""
    calls: list[tuple[str, frozenset[str]]] = []
    sleep = ManualSleep()

    async def action(channel: str, skus: frozenset[str]) -> None:
        calls.append((channel, skus))

    debouncer = Debouncer(action, 5.0, sleep)
    for sku in ("A", "B", "A", "C", "B"):
        debouncer.notify("alpha", [sku])
    await asyncio.sleep(0)
    assert calls == []
    assert debouncer.pending("alpha") == {"A", "B", "C"}
    sleep.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls == [("alpha", frozenset({"A", "B", "C"}))]
    assert debouncer.pending("alpha") == frozenset()
    await debouncer.close()


async def test_debouncer_close_cancels_waiting_windows() -> None:
    """Shutdown cancels a window that has not fired; nothing runs afterwards."""
    calls: list[Any] = []

    async def action(channel: str, skus: frozenset[str]) -> None:
        calls.append(skus)

    debouncer = Debouncer(action, 5.0, ManualSleep())
    debouncer.notify("alpha", ["A"])
    await asyncio.sleep(0)
    await debouncer.close()
    assert calls == []


async def store(db: Database, clock: ManualClock, key: str, topic: str, payload: Any) -> None:
    """Put a delivery in the inbox as the webhook route would."""
    async with db.write() as conn:
        await conn.execute(
            sa.insert(INBOX).values(
                channel="alpha",
                dedupe_key=key,
                topic=topic,
                payload=json.dumps(payload),
                received_at=clock.now(),
            )
        )


async def test_inbox_turns_offer_changes_into_triggers_and_marks_rows(
    db: Database, clock: ManualClock
) -> None:
    """offer_changed rows trigger their SKUs; bad payloads and other topics are marked, not lost."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await store(db, clock, "e1", "offer_changed", {"sku": "MUG-1"})
    await store(db, clock, "e2", "offer_changed", {"skus": ["TEE-1", "MUG-1"]})
    await store(db, clock, "e3", "offer_changed", {"nope": 1})
    await store(db, clock, "e4", "orders/create", {"id": 1})
    seen: list[tuple[str, set[str]]] = []
    worker = InboxWorker(rt, on_offer_change=lambda ch, skus: seen.append((ch, set(skus))))
    worker.wake("alpha")
    await worker.drain()
    assert seen == [("alpha", {"MUG-1", "TEE-1"})]
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(INBOX.c.dedupe_key, INBOX.c.outcome, INBOX.c.error).order_by(INBOX.c.id)
            )
        ).all()
    assert [(r.dedupe_key, r.outcome) for r in rows] == [
        ("e1", "applied"),
        ("e2", "applied"),
        ("e3", "invalid"),
        ("e4", "ignored"),
    ]
    assert rows[2].error is not None
    assert await worker.process("alpha") == 0  # processed rows are not processed again
    await rt.close()


async def test_offers_poll_reports_changed_competition_only(
    db: Database, clock: ManualClock
) -> None:
    """The first poll reports every listing; a poll with unchanged offers reports none."""
    config = settings(channels={"alpha": {"kind": "mock", "competitors": 2}})
    rt = await reconciled(db, clock, config, [{"sku": "A", "stock": 1}, {"sku": "B", "stock": 1}])
    changed: list[set[str]] = []
    rt.on_offer_change = lambda _ch, skus: changed.append(set(skus))
    first = await run_named_pass(rt, "offers", "p1")
    assert first["alpha"]["changed"] == 2
    assert changed == [{"A", "B"}]
    channel = rt.channels["alpha"]
    still = await channel.fetch_competitor_offers(["A", "B"])

    async def unchanged(_skus: Any) -> Any:
        return [dataclasses.replace(o, observed_at=clock.now()) for o in still]

    channel.fetch_competitor_offers = unchanged  # type: ignore[method-assign]
    await run_named_pass(rt, "offers", "p2")  # differs from p1's offers once
    stored = await offer_rows(db)
    second = await run_named_pass(rt, "offers", "p3")
    assert second["alpha"]["changed"] == 0
    assert await offer_rows(db) == stored  # unchanged competition is not stored again
    assert len(changed) == 2
    await rt.close()


async def offer_rows(db: Database) -> int:
    """How many offer snapshots are stored."""
    table = OfferSnapshot.__table__  # type: ignore[attr-defined]
    async with db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def test_event_reprice_touches_only_the_changed_skus(
    db: Database, clock: ManualClock
) -> None:
    """A debounced trigger for one SKU reprices that SKU alone."""
    products = banded(("A", "B", "C"), cost="10", low="11", stock=1)
    rt = await reconciled(db, clock, settings(channels={"alpha": {"kind": "mock"}}), products)
    await run_named_pass(rt, "reprice", "p1", ["alpha"], frozenset({"B"}))
    assert {row.sku for row in await actions(db, kind="price")} == {"B"}
    await rt.close()


async def test_breaker_blocks_a_pass_that_moves_too_much_and_stays_tripped(
    db: Database, clock: ManualClock
) -> None:
    """Half the listings moving 50 %: nothing is sent, each is logged blocked, until resume."""
    config = settings(
        channels={"alpha": {"kind": "mock"}},
        pricing={
            "guards": {
                "max_step_pct": 100,
                "max_daily_move_pct": 100,
                "reference_band_pct": 1000,
                "breaker": {"share_pct": 20, "move_pct": 10, "min_listings": 10},
            },
            "rules": [{"strategy": "cost_plus", "params": {"margin_pct": 0}}],
        },
    )
    products = [
        {
            "sku": f"S-{i:02d}",
            "cost": D("10") if i % 2 else D("20"),
            "min_price": D("5"),
            "max_price": D("40"),
            "price": D("20.00"),
            "stock": 1,
        }
        for i in range(20)
    ]
    rt = await reconciled(db, clock, config, products)
    result = await run_named_pass(rt, "reprice", "p1")
    assert result["alpha"]["breaker"] is not None
    rows = await actions(db, kind="price")
    assert len(rows) == 20
    assert {r.status for r in rows} == {"blocked", "held"}
    assert all("circuit breaker" in r.reason for r in rows if r.status == "blocked")
    market = rt.channels["alpha"].market  # type: ignore[attr-defined]
    assert {item.price for item in market.listings.values()} == {D("20.00")}
    skipped = await run_named_pass(rt, "reprice", "p2")
    assert "circuit breaker" in skipped["alpha"]["skipped"]
    # The breaker answers a pricing anomaly: stock keeps flowing (holding it back oversells).
    market.listings["S-00"].quantity = 0
    await run_named_pass(rt, "reconcile", "p2b")
    assert market.listings["S-00"].quantity == 1
    await controls.resume(db, clock, channel="alpha")
    again = await run_named_pass(rt, "reprice", "p3")
    assert "skipped" not in again["alpha"]
    await rt.close()


async def test_simulate_plans_without_writing(db: Database, clock: ManualClock) -> None:
    """simulate returns every decision and leaves the action log and the market untouched."""
    products = [
        {
            "sku": "A",
            "cost": D("10"),
            "min_price": D("11"),
            "max_price": D("40"),
            "price": D("20"),
            "stock": 1,
        },
        {"sku": "B", "max_price": D("40"), "price": D("20"), "stock": 1},
    ]
    rt = await reconciled(db, clock, settings(channels={"alpha": {"kind": "mock"}}), products)
    plans = await simulate(
        db,
        rt.settings,
        channels=["alpha"],
        sku_glob=None,
        now=clock.now(),
        own_seller_ids=rt.own_seller_ids(),
    )
    assert await actions(db, kind="price") == []
    by_sku = {a.sku: a for a in plans[0].rows}
    assert by_sku["A"].status == "planned"
    assert by_sku["A"].new_price == D("18.00")
    assert by_sku["B"].status == "blocked"
    out = io.StringIO()
    render_plan(plans, Console(file=out, width=200), "json")
    data = json.loads(out.getvalue())
    assert data["counts"] == {"change": 1, "blocked": 1}
    assert rt.channels["alpha"].market.listings["A"].price == D("20")  # type: ignore[attr-defined]
    await rt.close()


async def test_signed_offer_webhook_reprices_that_sku_through_inbox_and_debounce(
    sqlite_db: Database, clock: ManualClock
) -> None:
    """POST /webhooks/alpha (offer_changed) → 200 → inbox → debounced reprice of that SKU only."""
    config = settings(channels={"alpha": {"kind": "mock", "webhook_secret": "unused"}})
    rt = await make_runtime(sqlite_db, clock, config)
    secret = "s3cret-hook-key"
    channel = rt.channels["alpha"]
    channel.settings = channel.settings.model_copy(update={"webhook_secret": SecretStr(secret)})  # type: ignore[attr-defined]
    products = banded(("A", "B"), cost="10", low="11", stock=1)
    await seed(sqlite_db, clock, rt, products, listed_on=("alpha",))
    await run_named_pass(rt, "reconcile", "p0")
    passes = Passes(rt)
    fired = asyncio.Event()

    async def reprice(ch: str, skus: frozenset[str]) -> None:
        await passes.run("reprice", [ch], skus)
        fired.set()

    debouncer = Debouncer(reprice, 0.0)
    inbox = InboxWorker(rt, on_offer_change=debouncer.notify)
    ctx = ServerContext(
        db=rt.db,
        metrics=rt.metrics,
        clock=clock,
        channels=lambda: rt.channels,
        channel_errors=lambda: rt.channel_errors,
        webhook_max_bytes=lambda: 65536,
        sync_token=lambda: None,
        on_webhook_stored=inbox.wake,
        request_pass=passes.request,
        shutting_down=lambda: False,
    )
    server = await start_server(ctx, "127.0.0.1", 0)
    body = json.dumps({"sku": "B"}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Mock-Signature": signature,
        "X-Mock-Event-Id": "evt-1",
        "X-Mock-Topic": "offer_changed",
    }
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.port}/webhooks/alpha"
            async with http.post(url, data=body, headers=headers) as response:
                assert response.status == 200
        await inbox.drain()
        await asyncio.wait_for(fired.wait(), timeout=10)
    finally:
        await server.stop()
        await debouncer.close()
    assert {row.sku for row in await actions(sqlite_db, kind="price")} == {"B"}
    await rt.close()


async def test_a_payload_that_breaks_the_parser_is_marked_and_does_not_block_the_inbox(
    db: Database, clock: ManualClock
) -> None:
    """A signed but malformed body (a JSON list) is marked invalid; the next row is processed."""
    rt = await make_runtime(db, clock, settings(channels={"alpha": {"kind": "mock"}}))
    await store(db, clock, "bad", "offer_changed", [])
    await store(db, clock, "good", "offer_changed", {"sku": "A"})
    seen: list[set[str]] = []
    worker = InboxWorker(rt, on_offer_change=lambda _ch, skus: seen.append(set(skus)))
    worker.wake("alpha")
    await worker.drain()
    async with db.read() as conn:
        rows = (
            await conn.execute(sa.select(INBOX.c.dedupe_key, INBOX.c.outcome).order_by(INBOX.c.id))
        ).all()
    assert [(r.dedupe_key, r.outcome) for r in rows] == [("bad", "invalid"), ("good", "applied")]
    assert seen == [{"A"}]
    await rt.close()


async def test_the_breaker_judges_event_driven_passes_together(
    db: Database, clock: ManualClock
) -> None:
    """Twenty listings moved five at a time by event-driven passes: the breaker counts the big
    moves of the recent passes together and trips before most of the channel has moved."""
    config = settings(
        channels={"alpha": {"kind": "mock"}},
        pricing={
            "guards": {
                "max_step_pct": 100,
                "max_daily_move_pct": 100,
                "reference_band_pct": 1000,
                "breaker": {"share_pct": 30, "move_pct": 10, "min_listings": 10},
            },
            "rules": [{"strategy": "fixed", "params": {"price": "15.00"}}],
        },
    )
    skus = [f"S-{i:02d}" for i in range(20)]
    products = [
        {
            "sku": s,
            "cost": D("5"),
            "min_price": D("5"),
            "max_price": D("40"),
            "price": D("20.00"),
            "stock": 1,
        }
        for s in skus
    ]
    rt = await reconciled(db, clock, config, products)
    results = []
    for n in range(4):
        results.append(
            await run_named_pass(
                rt, "reprice", f"e{n}", ["alpha"], frozenset(skus[n * 5 : n * 5 + 5])
            )
        )
    tripped = [r["alpha"].get("breaker") or r["alpha"].get("skipped") for r in results]
    assert tripped[0] is None  # 5 of 20 is 25 % > 20 %? no: 5 big moves of 20 listings is 25 %
    moved = [
        item
        for item in rt.channels["alpha"].market.listings.values()  # type: ignore[attr-defined]
        if item.price == D("15.00")
    ]
    assert len(moved) < 20
    assert any(t for t in tripped)
    await rt.close()


async def test_a_hold_supersedes_an_older_intent_still_waiting(
    db: Database, clock: ManualClock
) -> None:
    """An intent left planned (paused channel) is superseded when a later pass holds the SKU."""
    products = banded("A", cost="10", low="11", stock=1)
    rt = await reconciled(db, clock, settings(channels={"alpha": {"kind": "mock"}}), products)
    await controls.pause(db, clock, channel="alpha", reason="maintenance")
    await rt.outbox.record(
        [
            PlannedWrite(
                pass_id="old",
                kind=ActionKind.PRICE,
                channel="alpha",
                sku="A",
                status=ActionStatus.PLANNED,
                old_price=D("20"),
                new_price=D("19.00"),
                currency="USD",
                floor=D("11"),
                ceiling=D("40"),
                reason="old",
                idempotency_key="k-old",
                created_at=clock.now(),
            )
        ]
    )
    await controls.resume(db, clock, channel="alpha")
    rt.config = rt.config.__class__(
        settings=rt.settings.model_copy(
            update={
                "pricing": rt.settings.pricing.model_validate({"rules": [{"strategy": "hold"}]})
            }
        ),
        path=rt.config.path,
        digest=rt.config.digest,
        secrets=(),
    )
    await run_named_pass(rt, "reprice", "p1")
    statuses = {row.idempotency_key: row.status for row in await actions(db, kind="price")}
    assert statuses["k-old"] == "superseded"
    assert rt.channels["alpha"].market.listings["A"].price == D("20")  # type: ignore[attr-defined]
    await rt.close()


async def test_a_reprice_decides_on_a_fresh_stored_snapshot_and_polls_the_rest(
    db: Database, clock: ManualClock
) -> None:
    """Offers a notification brought a moment ago are used as they are (no second call for
    them); older ones, and every one with ``offers_max_age: 0s``, are polled."""
    config = settings(
        channels={"alpha": {"kind": "mock", "competitors": 2}},
        pricing={"rules": [{"strategy": "lowest_price", "params": {"position": "match"}}]},
    )
    products = banded(("A", "B"))
    rt = await reconciled(db, clock, config, products)
    polled = count_polls(rt.channels["alpha"])
    rival = CompetitorOffer("NOTIFIED", D("19.50"), fulfillment="fbm")
    notified = OfferObservation("A", clock.now(), (rival,), source="notification")
    await store_observations(db, "alpha", [notified])
    clock.advance(30)
    await run_named_pass(rt, "reprice", "p1", ["alpha"], frozenset({"A", "B"}))
    assert polled == [["B"]]
    [decided] = [row for row in await actions(db, kind="price") if row.sku == "A"]
    assert decided.new_price == D("19.50")
    [explained] = await fetch_explain(db, "A", channel="alpha")
    assert "NOTIFIED" in json.dumps(explained["trace"])
    clock.advance(31)  # A's offers are now older than offers_max_age (60 s), B's poll is not
    await run_named_pass(rt, "reprice", "p2", ["alpha"], frozenset({"A", "B"}))
    assert polled[-1] == ["A"]
    schedule = rt.settings.schedule.model_copy(update={"offers_max_age": timedelta(0)})
    rt.config = loaded(rt.settings.model_copy(update={"schedule": schedule}))
    await store_observations(db, "alpha", [dataclasses.replace(notified, observed_at=clock.now())])
    await run_named_pass(rt, "reprice", "p3", ["alpha"], frozenset({"A", "B"}))
    assert polled[-1] == ["A", "B"]
    await rt.close()


async def test_offers_max_age_0s_polls_at_every_reprice(db: Database, clock: ManualClock) -> None:
    """With `offers_max_age: 0s` (as written in the YAML) every reprice polls every SKU, even
    one whose offers a notification stored this very second."""
    config = settings(
        channels={"alpha": {"kind": "mock", "competitors": 2}},
        schedule={"offers_max_age": "0s"},
        pricing={"rules": [{"strategy": "lowest_price", "params": {"position": "match"}}]},
    )
    assert config.schedule.offers_max_age == timedelta(0)
    products = banded(("A", "B"))
    rt = await reconciled(db, clock, config, products)
    polled = count_polls(rt.channels["alpha"])
    rival = CompetitorOffer("NOTIFIED", D("19.50"), fulfillment="fbm")
    await store_observations(
        db, "alpha", [OfferObservation("A", clock.now(), (rival,), source="notification")]
    )
    await run_named_pass(rt, "reprice", "p1", ["alpha"], frozenset({"A", "B"}))
    await run_named_pass(rt, "reprice", "p2", ["alpha"])
    assert polled == [["A", "B"], ["A", "B"]]
    await rt.close()


async def test_a_collapse_the_reference_band_refuses_still_trips_the_breaker(
    db: Database, clock: ManualClock
) -> None:
    """Amazon's CompetitivePriceThreshold and every offer collapse to 0.01 on 25 listings: the
    reference band refuses all 25 (nothing would be sent), and the breaker, judging what the
    strategy asked for, trips anyway, so the channel stops and the operator is told."""
    config = settings(
        channels={"alpha": {"kind": "mock"}},
        pricing={"rules": [{"strategy": "lowest_price", "params": {"position": "match"}}]},
    )
    skus = [f"S-{i:02d}" for i in range(25)]
    products = banded(skus)
    rt = await reconciled(db, clock, config, products)
    penny = CompetitorOffer("FLOOD", D("0.01"), fulfillment="fbm")
    collapse = [OfferObservation(s, clock.now(), (penny,), reference_price=D("0.01")) for s in skus]
    await store_observations(db, "alpha", collapse)
    result = await run_named_pass(rt, "reprice", "p1")
    assert result["alpha"]["breaker"] == (
        "would move 25 of 25 listings (100 %) by more than 10 %; limit 20 %"
    )
    rows = await actions(db, kind="price")
    assert len(rows) == 25
    assert {r.status for r in rows} == {"blocked"}
    assert all("reference price 0.01" in r.reason for r in rows)
    async with db.read() as conn:
        tripped = await controls.write_block_reason(conn, "alpha")
    assert tripped is not None
    assert "circuit breaker" in tripped
    market = rt.channels["alpha"].market  # type: ignore[attr-defined]
    assert {item.price for item in market.listings.values()} == {D("20")}
    await rt.close()


async def test_the_breaker_judges_the_wish_not_the_refusal(
    db: Database, clock: ManualClock
) -> None:
    """The threshold alone collapsing while competitors stay near us: the strategy asks for a
    5 % move, the reference band refuses every listing, and the breaker (which counts moves
    the strategy asked for, not refusals) stays untripped."""
    config = settings(
        channels={"alpha": {"kind": "mock"}},
        pricing={"rules": [{"strategy": "lowest_price", "params": {"position": "match"}}]},
    )
    skus = [f"S-{i:02d}" for i in range(25)]
    products = banded(skus)
    rt = await reconciled(db, clock, config, products)
    near = CompetitorOffer("RIVAL", D("19.00"), fulfillment="fbm")
    await store_observations(
        db,
        "alpha",
        [OfferObservation(s, clock.now(), (near,), reference_price=D("0.01")) for s in skus],
    )
    result = await run_named_pass(rt, "reprice", "p1")
    assert result["alpha"]["breaker"] is None
    assert result["alpha"]["decisions"]["blocked"] == 25
    await rt.close()


async def test_a_stored_marketplace_reference_outlives_polls_without_one(
    db: Database, clock: ManualClock
) -> None:
    """Walmart's OFFER_UNPUBLISHED reference (30.00) stays the listing's reference while later
    polls report none: the reprice moves 18.99 into ±35 % of it and the trace names the value,
    source and age; after 30 days without a new one it is no longer used."""
    config = settings(
        channels={"alpha": {"kind": "mock"}},
        schedule={"offers_max_age": "0s"},
        pricing={
            "guards": {"max_step_pct": 1},
            "rules": [{"strategy": "fixed", "params": {"price": "19.00"}}],
        },
    )
    products = banded("A", price="18.99")
    rt = await reconciled(db, clock, config, products)
    unpublished = OfferObservation(
        "A", clock.now(), (), source="OFFER_UNPUBLISHED", reference_price=D("30.00")
    )
    await store_observations(db, "alpha", [unpublished])
    reported = clock.now().strftime("%Y-%m-%d %H:%M:%SZ")
    clock.advance(120)
    await run_named_pass(rt, "reprice", "p1")  # polls the mock: offers, no reference
    [moved] = await actions(db, kind="price")
    assert (moved.status, moved.new_price) == ("confirmed", D("19.50"))
    [explained] = await fetch_explain(db, "A", channel="alpha")
    [band] = [v for v in explained["guard_verdicts"] if v["step"] == "guard:reference_band"]
    assert band == {
        "step": "guard:reference_band",
        "verdict": "clamped",
        "detail": "19.00 → 19.50: our price 18.99 is outside ±35% of the marketplace reference "
        f"price 30.00 (marketplace: OFFER_UNPUBLISHED, reported {reported}, 2m old) "
        "[19.50, 40.50]; moved into it so the marketplace can republish",
    }
    clock.advance(31 * 86_400)
    # Still held to the band, 19.00 would be refused; with the reference gone (and our own
    # 19.50 older than 30 days) it is a plain 1 % step towards 19.00.
    await run_named_pass(rt, "reprice", "p2")
    last = (await actions(db, kind="price"))[-1]
    explained = (await fetch_explain(db, "A", channel="alpha"))[0]  # newest first
    [band] = [v for v in explained["guard_verdicts"] if v["step"] == "guard:reference_band"]
    assert band["verdict"] == "skipped"
    assert last.new_price == D("19.31")
    await rt.close()
