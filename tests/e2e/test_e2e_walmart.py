"""End to end: the real daemon and Walmart connector against the mock Walmart Marketplace.

Every assertion reads the MOCK's state (what Walmart would hold) next to the daemon's rows:
prices applied as JSON numbers (the mock refuses anything else), quantities equal to the
ledger's allocation, single PUTs and feeds with per-item ingestion mapped back to actions, the
feed budget planned (DEFERRED, never a 429), 429/500 storms without lost or doubled writes, and
the webhooks (OFFER_UNPUBLISHED with a reference price, PO_CREATED) signed, verified, stored and
applied.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from connectors.ratelimit import RateLimit
from daemon.allocation import allocate
from daemon.app import run_once
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus
from daemon.history import fetch_explain, render_explain
from daemon.logging import SecretRedactor
from domain.writes import PriceUpdate, PushStatus
from tests.e2e.walmart_harness import (
    CHANNEL,
    GUARDS,
    HOOK_SECRET,
    actions,
    inbox_outcomes,
    ledger,
    price_intent,
    snapshots,
    start_daemon,
    start_setup,
)

# cost × 1.3 (cost_plus 30 %), in cents: every listing moves from its seeded price.
ROWS = [
    {"sku": f"WM-{n:03d}", "cost": f"{10 + n}.00", "price": f"{12 + n}.50", "stock": 5 + n}
    for n in range(6)
]


def expected_price(row: dict[str, object]) -> Decimal:
    """What cost_plus 30 % decides for a catalogue row."""
    return (Decimal(str(row["cost"])) * Decimal("1.3")).quantize(Decimal("0.01"))


async def test_run_once_sends_single_puts_with_numbers_and_ledger_quantities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run_once`` over four listings: four PUT /v3/price, four PUT /v3/inventory, no feed."""
    rows = ROWS[:4]
    setup = await start_setup(tmp_path, monkeypatch, rows)
    state = setup.state
    state.subscriptions.clear()  # run --once serves no webhook route
    try:
        code = await run_once(setup.config, SecretRedactor(setup.config.secrets))
        assert code == 0
        db = Database(setup.config.settings.database)
        # PUT /v3/price answers "allow up to five minutes": accepted, not yet confirmed.
        accepted = await actions(db, ActionKind.PRICE)
        assert {(r.status, r.response_code) for r in accepted} == {("sent", "ACCEPTED")}
        # The next run's reconcile reads the live prices and confirms them; nothing is resent.
        assert await run_once(setup.config, SecretRedactor(setup.config.secrets)) == 0
        prices = await actions(db, ActionKind.PRICE)
        stock = await actions(db, ActionKind.STOCK)
        available = await ledger(db)
        await db.dispose()
    finally:
        await setup.mock.runner.cleanup()
    inventory = setup.config.settings.inventory
    for row in rows:
        sku = str(row["sku"])
        listing = state.market.listings[sku]
        assert listing.price == expected_price(row)
        # The mock validates price.json's Price: a string amount would have been a 400.
        assert state.applied[f"{sku}|price|{expected_price(row)}"] == 1
        assert listing.quantity == allocate(available[sku], CHANNEL, inventory)
        assert listing.quantity == int(str(row["stock"])) - 1  # buffer 1
    sent = [r for r in prices if r.status != ActionStatus.HELD.value]  # run 2 holds (at target)
    assert {(r.sku, r.status) for r in sent} == {(str(r["sku"]), "confirmed") for r in rows}
    assert {(r.sku, r.status) for r in stock} == {(str(r["sku"]), "confirmed") for r in rows}
    assert state.calls["updatePrice"] == 4
    assert state.calls["updateInventory"] == 4
    assert state.calls["submitFeed"] == 0
    assert sum(state.throttled.values()) == 0


async def test_feeds_map_each_items_ingestion_back_to_its_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six listings over single_max_batch 2: an inventory feed, then a price feed in which
    one SKU (retired on Walmart since reconcile) is a DATA_ERROR: only its action fails, with
    Walmart's ingestion code; the others are confirmed by the feed's item statuses."""
    setup = await start_setup(tmp_path, monkeypatch, ROWS, single_max_batch=2)
    state = setup.state
    daemon = await start_daemon(setup)
    try:
        reconciled = await daemon.passes.run("reconcile")
        assert "error" not in reconciled[CHANNEL]
        gone = state.market.listings.pop("WM-003")  # retired between the read and the write
        await daemon.passes.run("reprice")
        prices = {r.sku: r for r in await actions(daemon.rt.db, ActionKind.PRICE)}
        stock = await actions(daemon.rt.db, ActionKind.STOCK)
    finally:
        await daemon.stop()
        await setup.mock.runner.cleanup()
    assert state.calls["submitFeed"] == 2  # one inventory feed, one price feed
    assert state.calls["updatePrice"] == state.calls["updateInventory"] == 0
    assert state.calls["getFeedItemStatus"] >= 2
    assert {r.status for r in stock} == {"confirmed"}
    failed = prices.pop("WM-003")
    assert failed.status == ActionStatus.FAILED.value
    assert failed.response_code == "ERR_EXT_DATA_0801001"  # the mock's "item not found"
    assert "WM-003" in (failed.response_message or "")
    assert failed.marketplace_ref.startswith("feed:")
    assert gone.price == Decimal(str(ROWS[3]["price"]))
    for row in ROWS:
        if row["sku"] == "WM-003":
            continue
        action = prices[str(row["sku"])]
        assert action.status == ActionStatus.CONFIRMED.value
        assert action.marketplace_ref == failed.marketplace_ref  # the same feed
        assert state.market.listings[str(row["sku"])].price == expected_price(row)


@pytest.mark.parametrize("restart", [False, True], ids=["one-process", "restarted"])
async def test_the_eleventh_feed_in_an_hour_is_deferred_not_throttled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restart: bool
) -> None:
    """Eleven feeds' worth of price work within the hour: ten feeds go, the eleventh batch
    stays open (DEFERRED, no attempt used) and the mock never answers 429, also when the
    eleventh comes from a restarted daemon (it reads the hour's feeds from GET /v3/feeds)."""
    setup = await start_setup(tmp_path, monkeypatch, ROWS[:2], single_max_batch=0)
    state = setup.state
    daemon = await start_daemon(setup)
    try:
        await daemon.passes.run("reconcile")
        for n in range(11):
            if n == 10 and restart:
                await daemon.stop()
                daemon = await start_daemon(setup)
            now = daemon.rt.clock.now()
            price = Decimal("20.00") + n
            await daemon.rt.outbox.record([price_intent("WM-000", None, price, now, f"p{n}")])
            await daemon.rt.outbox.dispatch(daemon.channel, ActionKind.PRICE)
        rows = await actions(daemon.rt.db, ActionKind.PRICE)
    finally:
        await daemon.stop()
        await setup.mock.runner.cleanup()
    kinds = [feed.feed_type for feed in state.feeds.values()]
    assert kinds.count("price") == 10  # (reconcile sent its quantities as an inventory feed)
    assert state.calls["submitFeed"] == len(kinds)
    assert state.throttled == {}  # never a 429, not even for the eleventh
    assert [r.status for r in rows[:10]] == ["confirmed"] * 10
    last = rows[10]
    assert (last.status, last.attempts, last.response_code) == (
        "planned",
        0,
        "FEED_BUDGET_EXHAUSTED",
    )
    assert state.market.listings["WM-000"].price == Decimal("29.00")


@pytest.mark.parametrize("single_max_batch", [10, 2], ids=["single", "feed"])
async def test_429_and_500_storms_lose_and_double_no_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, single_max_batch: int
) -> None:
    """Storms of 429s and 500s on the write path (PUTs, or feed submit and status): the
    outbox drives every intent to completion and every price lands exactly once."""
    setup = await start_setup(tmp_path, monkeypatch, ROWS, single_max_batch=single_max_batch)
    state = setup.state
    # Fast windows so a storm's waits for X-Next-Replenishment-Time take milliseconds.
    for api in ("updatePrice", "feed:price", "getFeedItemStatus"):
        state.rate_limits[api] = RateLimit(100.0, 300)
    daemon = await start_daemon(setup)
    try:
        await daemon.passes.run("reconcile")
        now = daemon.rt.clock.now()
        targets = {str(row["sku"]): expected_price(row) for row in ROWS}
        await daemon.rt.outbox.record(
            [price_intent(sku, None, price, now, "storm") for sku, price in targets.items()]
        )
        state.faults.throttle_next = 4  # a 429 storm, then a 500 storm, then 30 % of both
        state.faults.error_next = 3
        state.faults.throttle_rate = 0.2
        state.faults.error_rate = 0.1
        rounds = 0
        while rounds < 8:
            rounds += 1
            await daemon.rt.outbox.dispatch(daemon.channel, ActionKind.PRICE)
            rows = await actions(daemon.rt.db, ActionKind.PRICE)
            if all(r.status != ActionStatus.PLANNED.value for r in rows):
                break
        state.faults.throttle_rate = state.faults.error_rate = 0.0
        await daemon.passes.run("reconcile")  # confirms what single PUTs left "accepted"
        rows = await actions(daemon.rt.db, ActionKind.PRICE)
    finally:
        await daemon.stop()
        await setup.mock.runner.cleanup()
    assert sum(state.throttled.values()) >= 4
    assert {r.sku: r.status for r in rows} == dict.fromkeys(targets, "confirmed")
    for sku, price in targets.items():
        assert state.market.listings[sku].price == price
        # Retries carry the same update: applied once, never a second, different write.
        assert state.applied[f"{sku}|price|{price}"] == 1
    assert not state.dropped


async def test_unreasonable_price_unpublishes_and_the_signed_webhook_stores_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cost_plus 100 % goes past the mock's reasonable band (×1.5 here): Walmart accepts the
    price, unpublishes the offer and pushes OFFER_UNPUBLISHED, HMAC-signed, to the daemon's
    webhook route; the daemon verifies it and stores Walmart's referencePrice."""
    rows = [{"sku": "WM-100", "cost": "20.00", "price": "21.00", "stock": 4}]
    setup = await start_setup(tmp_path, monkeypatch, rows, margin_pct=100)
    state = setup.state
    state.reasonable_high = Decimal("1.5")  # Walmart's formula is unpublished (guide §2.8)
    daemon = await start_daemon(setup)
    try:
        await daemon.passes.run("reconcile")
        await daemon.passes.run("reprice")
        async with httpx.AsyncClient(base_url=setup.mock.base_url) as http:
            assert (await http.post("/_mock/settle")).status_code == 200
        await daemon.settle()
        stored = await snapshots(daemon.rt.db, "WM-100")
        inbox = await inbox_outcomes(daemon.rt.db)
    finally:
        await daemon.stop()
        await setup.mock.runner.cleanup()
    meta = state.items["WM-100"]
    assert state.market.listings["WM-100"].price == Decimal("40.00")
    assert meta.published_status == "UNPUBLISHED"
    [sent] = [e for e in state.events if e.event_type == "OFFER_UNPUBLISHED"]
    assert sent.status == 200
    assert sent.attempts == 1
    # The signature the daemon verified: Walmart's timestamped HMAC over the route's path.
    stamp = sent.headers["WM_SEC.TIMESTAMP"]
    digest = hashlib.sha256(sent.body).hexdigest()
    message = f"POST\n/webhooks/{CHANNEL}\n{stamp}\n{digest}".encode()
    mac = hmac.new(HOOK_SECRET.encode(), message, hashlib.sha256).digest()
    assert sent.headers["WM_SEC.SIGNATURE"] == base64.b64encode(mac).decode()
    assert json.loads(sent.body)["payload"]["referencePrice"] == 21.0
    [snapshot] = [s for s in stored if s.reference_price is not None]
    assert snapshot.reference_price == Decimal("21.00")
    assert snapshot.source == "OFFER_UNPUBLISHED"
    assert {"WM-100"} in daemon.offer_changes
    # Every event the mock pushed (OFFER_UNPUBLISHED, BUY_BOX_CHANGED) parsed, none invalid.
    assert {topic for topic, _, _ in inbox} >= {"OFFER_UNPUBLISHED"}
    assert [row for row in inbox if row[1] in (None, "invalid")] == []


async def test_walmarts_reasonable_price_reference_brings_an_unpublished_offer_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walmart revises its reasonable price to 30.00 while we sell at 18.99 (outside its band
    [21, 60]): both offers are unpublished and OFFER_UNPUBLISHED carries referencePrice 30.00.
    The next reprice, after an insights poll that reports no reference (offers_max_age: 0s),
    still uses the stored reference: WM-200 moves into our ±25 % band (22.50), Walmart
    republishes it, and `explain` names the reference's value, source and age; WM-201, whose
    max_price (20.00) forbids any price in the band, is blocked with what to change."""
    rows = [
        {"sku": "WM-200", "cost": "10.00", "price": "18.99", "stock": 4},
        {"sku": "WM-201", "cost": "10.00", "price": "18.99", "stock": 4, "max_price": "20.00"},
    ]
    guards = GUARDS.replace("reference_band_pct: 1000", "reference_band_pct: 25")
    setup = await start_setup(
        tmp_path,
        monkeypatch,
        rows,
        margin_pct=90,  # cost_plus asks for 19.00: still below Walmart's band
        guards=guards,
        sections="schedule: {offers_max_age: 0s}\n",
    )
    state = setup.state
    state.reasonable_low = Decimal("0.7")
    daemon = await start_daemon(setup)
    try:
        await daemon.passes.run("reconcile")
        async with httpx.AsyncClient(base_url=setup.mock.base_url) as http:
            for sku in ("WM-200", "WM-201"):
                revised = await http.post(
                    "/_mock/reference", json={"sku": sku, "referencePrice": 30.0}
                )
                assert revised.json() == {"sent": ["OFFER_UNPUBLISHED"]}
        await daemon.settle()
        assert {state.items[sku].published_status for sku in ("WM-200", "WM-201")} == {
            "UNPUBLISHED"
        }
        polls = state.calls["itemsDetailsForListing"]
        await daemon.passes.run("reprice")
        assert state.calls["itemsDetailsForListing"] > polls  # polled: the reference is not in it
        async with httpx.AsyncClient(base_url=setup.mock.base_url) as http:
            assert (await http.post("/_mock/settle")).status_code == 200
        await daemon.settle()
        prices = {r.sku: r for r in await actions(daemon.rt.db, ActionKind.PRICE)}
        explained = await fetch_explain(daemon.rt.db, "WM-200")
        stored = await snapshots(daemon.rt.db, "WM-200")
    finally:
        await daemon.stop()
        await setup.mock.runner.cleanup()
    assert [s.reference_price for s in stored if s.source == "OFFER_UNPUBLISHED"] == [
        Decimal("30.00")
    ]
    assert any(s.reference_price is None for s in stored)  # the insights poll had none
    moved = prices["WM-200"]
    assert moved.new_price == Decimal("22.50")
    assert state.market.listings["WM-200"].price == Decimal("22.50")
    assert state.items["WM-200"].published_status == "PUBLISHED"
    assert "OFFER_PUBLISHED" in [e.event_type for e in state.events if e.sku == "WM-200"]
    decision = next(row for row in explained if row["kind"] == "price")  # newest first
    [band] = [v for v in decision["guard_verdicts"] if v["step"] == "guard:reference_band"]
    assert band["verdict"] == "clamped"
    blocked = prices["WM-201"]
    assert blocked.status == ActionStatus.BLOCKED.value
    assert blocked.reason.endswith(
        "its bottom 22.50 is above the ceiling (max_price) 20.00: raise max_price to at least "
        "22.50 if the marketplace is right, or ask it to correct the reference"
    )
    assert state.market.listings["WM-201"].price == Decimal("18.99")
    out = io.StringIO()
    render_explain(explained, Console(file=out, width=400), "text", sku="WM-200")
    text = out.getvalue()
    assert re.search(
        r"guard:reference_band: clamped — 19\.00 → 22\.50: our price 18\.99 is outside ±25% of "
        r"the marketplace reference price 30\.00 \(marketplace: OFFER_UNPUBLISHED, reported "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, \d+s old\) \[22\.50, 37\.50\]",
        text,
    ), text


async def test_a_walmart_order_webhook_decrements_the_ledger_and_republishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /_mock/orders: the PO_CREATED webhook reaches the daemon, the ledger loses the
    units, and the immediate stock pass writes the new allocation back to Walmart."""
    setup = await start_setup(tmp_path, monkeypatch, ROWS[:2])
    state = setup.state
    daemon = await start_daemon(setup)
    try:
        await daemon.passes.run("reconcile")
        before = await ledger(daemon.rt.db)
        assert state.market.listings["WM-001"].quantity == before["WM-001"] - 1
        async with httpx.AsyncClient(base_url=setup.mock.base_url) as http:
            placed = await http.post("/_mock/orders", json={"sku": "WM-001", "quantity": 2})
            assert placed.status_code == 200, placed.text
        await daemon.settle()
        after = await ledger(daemon.rt.db)
        stock = await actions(daemon.rt.db, ActionKind.STOCK)
        inbox = await inbox_outcomes(daemon.rt.db)
    finally:
        await daemon.stop()
        await setup.mock.runner.cleanup()
    [sent] = [e for e in state.events if e.event_type == "PO_CREATED"]
    assert sent.status == 200
    assert [(topic, outcome) for topic, outcome, _ in inbox if topic == "PO_CREATED"] == [
        ("PO_CREATED", "applied")
    ]
    assert after["WM-001"] == before["WM-001"] - 2
    assert after["WM-000"] == before["WM-000"]
    # The republish: the ledger's allocation (available - buffer) is what Walmart shows.
    assert state.market.listings["WM-001"].quantity == after["WM-001"] - 1
    assert stock[-1].sku == "WM-001"
    assert stock[-1].status == ActionStatus.CONFIRMED.value
    assert stock[-1].new_quantity == after["WM-001"] - 1


async def test_price_through_the_connector_is_a_json_number_on_the_wire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connector's body as the mock received it: ``amount`` is a JSON number (24.99)."""
    setup = await start_setup(tmp_path, monkeypatch, ROWS[:1])
    seen: list[bytes] = []
    daemon = await start_daemon(setup)

    async def record(request: httpx.Request) -> None:
        if request.url.path == "/v3/price":
            seen.append(request.content)

    daemon.rt.http.event_hooks["request"].append(record)
    try:
        update = PriceUpdate("WM-000", Decimal("24.99"), "USD", "k-1")
        [result] = await daemon.channel.push_prices([update])
    finally:
        await daemon.stop()
        await setup.mock.runner.cleanup()
    assert result.status is PushStatus.ACCEPTED
    [body] = seen
    assert b'"amount":24.99' in body.replace(b" ", b"")
    assert setup.state.market.listings["WM-000"].price == Decimal("24.99")
