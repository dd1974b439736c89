"""The real daemon against the mock eBay (OAuth, Sell Inventory, Notification), over loopback.

Nothing is faked between the two: the daemon loads a YAML config (secrets from ``${ENV}``),
imports a catalogue, opens the real ``EbayChannel`` (httpx, token buckets, retries, revision
budget) pointed at the mock started by ``connectors.mock.servers`` from that same config
(aiohttp, OAS-validated bodies, per-listing revision caps, ECDSA-signed notifications to the
daemon's own webhook route). Assertions read the mock's state and what it was sent.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from connectors.ebay.const import REVISION_BUDGET, REVISION_BUDGET_EXHAUSTED
from connectors.mock import MockChannel
from connectors.ratelimit import RateLimit
from daemon.catalog import import_catalog
from domain.writes import StockUpdate
from tests.e2e.ebay_env import (
    BUFFER,
    BULK,
    CENT,
    EVENTS,
    INBOX,
    SKUS,
    Env,
    action_rows,
    assert_converged,
    catalog_rows,
    daemon_once,
    make_env,
    open_actions,
    post,
    sent_entries,
    started,
    target_price,
    wait_for,
    write_catalog,
)
from tests.e2e.test_e2e_order_poll import EBAY_SCOPES
from tests.e2e.test_e2e_order_poll import _with_market as with_market


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    async for made in make_env(tmp_path, monkeypatch):
        yield made


async def test_run_once_prices_and_stock_reach_the_mock_as_ebay_wants_them(env: Env) -> None:
    assert await daemon_once(env) == 0
    assert_converged(env)
    bulk = env.bulk_calls()
    assert bulk
    assert all(1 <= len(c.body["requests"]) <= 25 for c in bulk)
    assert sorted(len(c.body["requests"]) for c in bulk) == [5, 5, 25, 25]
    assert {c.status for c in bulk} == {200}
    prices = [e["offers"][0]["price"] for e in sent_entries(env) if "price" in e["offers"][0]]
    assert len(prices) == SKUS
    assert all(isinstance(p["value"], str) and p["currency"] == "USD" for p in prices)
    assert all(p["value"] == str(Decimal(p["value"]).quantize(CENT)) for p in prices)
    stock = [e for e in sent_entries(env) if "shipToLocationAvailability" in e]
    # The quantity goes to the item and the offer both; quantities are JSON integers.
    for entry in stock:
        qty = entry["shipToLocationAvailability"]["quantity"]
        assert type(qty) is int
        assert entry["offers"][0]["availableQuantity"] == qty
    # Discovery read one page of items and each SKU's offer; no 429 anywhere.
    pages = [c for c in env.calls if c.path.endswith("/inventory_item")]
    assert [c.query["offset"] for c in pages] == ["0", "0"]  # open() probe, then discovery
    assert sum(env.state.throttled.values()) == 0
    assert await open_actions(env) == []
    assert {r.status for r in await action_rows(env, kind="price")} == {"confirmed"}
    # Each listing was revised once for its price and once for its stock, as the mock counts.
    assert Counter(env.state.applied) == Counter({sku: 2 for sku, *_ in catalog_rows()})
    assert {env.revisions(sku) for sku, *_ in catalog_rows()} == {2}

    before = len(env.bulk_calls())
    assert await daemon_once(env) == 0
    assert len(env.bulk_calls()) == before  # nothing changed: nothing is revised


FAST = "    rate_limits:\n      sell.inventory: {rate: 250, burst: 400}"


async def test_429_and_500_storms_complete_without_lost_or_doubled_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both buckets ten times eBay's assumed pace, so the many refills after each 429 (the
    # client drains its bucket) cost milliseconds, not seconds; the faults are the subject.
    async for env in make_env(tmp_path, monkeypatch, FAST):
        env.state.rate_limits["sell.inventory"] = RateLimit(250, 500)
        await _storms(env)


async def _storms(env: Env) -> None:
    faults = env.state.faults
    faults.throttle_next = 6  # a 429 storm as long as one call's retries: the open() probe fails
    # (run_once's exit code does not show it: daemon/app.py reads channel_errors after
    # rt.close() has cleared them - reported, not ours to change.)
    await daemon_once(env)
    assert await action_rows(env) == []  # nothing was planned on a channel that did not open
    # Then two 500s (errorId 25001) in a row, random 429s, and single lines refused with 500
    # 25025 ("concurrent access, retry") inside otherwise good bulk answers.
    faults.error_next = 2
    faults.throttle_rate, faults.partial_rate = 0.2, 0.1
    rounds = 1
    while rounds < 6:  # what ran out of retries stays open for the next round
        rounds += 1
        await daemon_once(env)
        stock_done = {r.sku for r in await action_rows(env, kind="stock", status="confirmed")}
        if not await open_actions(env) and len(stock_done) == SKUS:
            break
    assert rounds > 1  # the storm did cost a round
    faults.throttle_rate = faults.error_rate = faults.partial_rate = 0.0
    assert env.state.throttled["sell.inventory"] > 6
    assert_converged(env)
    assert await open_actions(env) == []
    # Exactly one confirmed price and one confirmed stock write per listing; the mock applied
    # each listing's two revisions once (refused and throttled entries were never applied).
    for kind in ("price", "stock"):
        rows = await action_rows(env, kind=kind)
        assert Counter(r.sku for r in rows if r.status == "confirmed") == Counter(
            {sku: 1 for sku, *_ in catalog_rows()}
        ), kind
        assert {r.status for r in rows} <= {"confirmed", "superseded", "held"}
    assert Counter(env.state.applied) == Counter({sku: 2 for sku, *_ in catalog_rows()})
    assert {env.revisions(sku) for sku, *_ in catalog_rows()} == {2}
    concurrent = [
        line
        for call in env.bulk_calls()
        for line in (call.answer or {}).get("responses", [])
        if line.get("errors") and line["errors"][0]["errorId"] == 25025
    ]
    assert concurrent  # some lines were refused one by one (500, 25025) and retried
    system = [c for c in env.calls if c.status == 500 and c.answer["errors"][0]["errorId"] == 25001]
    assert len(system) == 2


async def test_a_207_maps_each_line_to_its_action_row(env: Env) -> None:
    """One refused line (eBay's errorId on that row) does not fail its batch neighbours."""
    env.state.out_of_stock_control = False  # quantity 0 is refused with 25004 (guide §3.2)
    daemon = await started(env)
    try:
        await daemon.passes.run("reconcile")  # discovery, then the stock repair
        [zero] = await action_rows(env, kind="stock", sku="E05")  # stock 1, buffer 1 → 0
        assert (zero.status, zero.response_code) == ("failed", "25004")
        assert "Invalid quantity" in zero.response_message
        stock_rows = await action_rows(env, kind="stock")
        assert Counter(r.status for r in stock_rows) == Counter(confirmed=SKUS - 1, failed=1)
        assert env.listing("E05")[1] == 1  # refused: not applied
        assert env.listing("E06")[1] == 3 + 6 % 9 - BUFFER

        # The offer of E07 is withdrawn on eBay between discovery and the price push.
        env.state.offers_of("E07")[0].status = "UNPUBLISHED"
        await daemon.passes.run("reprice")
        [refused] = await action_rows(env, kind="price", sku="E07")
        assert (refused.status, refused.response_code) == ("failed", "25713")
        price_rows = await action_rows(env, kind="price")
        assert Counter(r.status for r in price_rows) == Counter(confirmed=SKUS - 1, failed=1)
        mixed = [c for c in env.bulk_calls() if c.status == 207]
        assert len(mixed) == 2  # one stock call, one price call
        lines = [line for c in mixed for line in c.answer["responses"]]
        assert sorted(e["errors"][0]["errorId"] for e in lines if e["statusCode"] != 200) == [
            25004,
            25713,
        ]
        assert await open_actions(env) == []
    finally:
        await daemon.close()


async def test_the_revision_budget_defers_price_moves_keeps_stock_and_never_hits_250(
    env: Env,
) -> None:
    daemon = await started(env)
    try:
        await daemon.converge()
        assert_converged(env)
        assert env.revisions("E01") == 2
        channel = daemon.channel
        ref = channel.refs["E01"]
        quantity = env.listing("E01")[1]
        # Drive E01 to 246 revisions today through the daemon's own connector instance (stock
        # writes: they are never coalesced), leaving 4 < stock_reserve (5).
        drive = [
            StockUpdate("E01", quantity, f"drive-{n}", external_id=ref.offer_id) for n in range(244)
        ]
        results = await channel.push_stock(drive)
        assert {r.status.value for r in results} == {"confirmed"}
        assert env.revisions("E01") == 246
        assert await channel.budget.remaining(ref.budget_key) == 4

        # Costs move for E01 (held: budget) and E02 (sent): one reprice pass.
        rows = catalog_rows()
        bumped = {"E01": str(rows[1][1] + 3), "E02": str(rows[2][1] + 3)}
        recount = env.tmp / "costs.csv"
        write_catalog(recount, catalog_rows(cost_bump=bumped))
        await import_catalog(daemon.rt.db, recount, clock=daemon.rt.clock, known_channels={"ebay"})
        await daemon.passes.run("reprice")
        held = (await action_rows(env, kind="price", sku="E01"))[-1]  # the newest decision
        assert (held.status, held.response_code, held.attempts) == ("planned", REVISION_BUDGET, 0)
        assert "kept for stock updates" in held.response_message
        moved = (await action_rows(env, kind="price", sku="E02"))[-1]  # the newest decision
        assert moved.status == "confirmed"
        assert env.listing("E02")[0] == target_price(Decimal(bumped["E02"]), Decimal("1.00"))
        assert env.revisions("E01") == 246  # the price move was not sent

        # Stock still goes: three sales recounted in the warehouse use three of the four.
        for units in (8, 7, 6, 5):
            write_catalog(recount, catalog_rows(cost_bump=bumped, stock={"E01": units}))
            await import_catalog(
                daemon.rt.db, recount, clock=daemon.rt.clock, known_channels={"ebay"}
            )
            await daemon.passes.run("stock_sync")
            assert env.listing("E01")[1] == units - BUFFER
        assert env.revisions("E01") == 250
        # The 250th is spent: the next stock change waits for tomorrow, eBay is not asked.
        sent_before = len(env.bulk_calls())
        write_catalog(recount, catalog_rows(cost_bump=bumped, stock={"E01": 2}))
        await import_catalog(daemon.rt.db, recount, clock=daemon.rt.clock, known_channels={"ebay"})
        await daemon.passes.run("stock_sync")
        waiting = [
            r for r in await action_rows(env, kind="stock", sku="E01") if r.new_quantity == 1
        ]
        assert [(r.status, r.response_code) for r in waiting] == [
            ("planned", REVISION_BUDGET_EXHAUSTED)
        ]
        assert len(env.bulk_calls()) == sent_before  # neither it nor the held price was sent
        assert env.revisions("E01") == 250
        assert env.listing("E01")[1] == 5 - BUFFER
        # Nothing was ever refused by eBay for the revision cap.
        refusals = [
            line
            for call in env.bulk_calls()
            for line in (call.answer or {}).get("responses", [])
            if line.get("errors") and line["errors"][0]["errorId"] == 25019
        ]
        assert refusals == []
    finally:
        await daemon.close()


async def test_revisions_made_elsewhere_are_deferred_at_ebays_first_refusal(env: Env) -> None:
    """A restart forgets the day's count: eBay's one 25019 puts the update back in the queue
    (not failed, no attempt used) and the listing is not tried again today."""
    daemon = await started(env)
    try:
        await daemon.converge()
        listing_id = env.state.offers_of("E03")[0].listing_id
        for _ in range(250 - env.revisions("E03")):
            env.state.revise(listing_id)  # another tool spent E03's day
        rows = catalog_rows()
        recount = env.tmp / "costs.csv"
        write_catalog(recount, catalog_rows(cost_bump={"E03": str(rows[3][1] + 5)}))
        await import_catalog(daemon.rt.db, recount, clock=daemon.rt.clock, known_channels={"ebay"})
        await daemon.passes.run("reprice")
        held = (await action_rows(env, kind="price", sku="E03"))[-1]  # the newest decision
        assert (held.status, held.response_code, held.attempts) == (
            "planned",
            REVISION_BUDGET_EXHAUSTED,
            0,
        )
        assert "25019" in held.response_message
        calls = len(env.bulk_calls())
        await daemon.passes.run("reprice")  # the open intent is not sent again today
        assert len(env.bulk_calls()) == calls
        assert env.revisions("E03") == 250
    finally:
        await daemon.close()


@pytest.fixture
async def scoped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    """The mock eBay with a fulfillment-scoped user token and an in-memory ``market`` channel."""
    async for made in make_env(tmp_path, monkeypatch, extra=EBAY_SCOPES):
        with_market(made.config, made.catalog)
        yield made


async def test_challenge_and_an_order_confirmation_read_by_id_reach_every_channel(
    scoped: Env,
) -> None:
    """The mock sends what eBay sends (``data.orderId`` only); the inbox worker reads the order
    with getOrder, the ledger takes the units and the stock pass publishes them everywhere."""
    env = scoped
    daemon = await started(env, serve=True)
    control = env.mock.base_url
    try:
        await daemon.converge()
        assert_converged(env)
        market = daemon.rt.channels["market"]
        assert isinstance(market, MockChannel)
        stock = 3 + 4 % 9  # E04's catalogue stock
        assert market.market.listings["E04"].quantity == stock - BUFFER
        # eBay validates the destination: GET <endpoint>?challenge_code= on the daemon's route.
        status, check = await post(f"{control}/_mock/challenge", {})
        assert status == 200
        assert check["passed"] is True, check
        assert check["endpoint"] == f"http://127.0.0.1:{env.daemon_port}/webhooks/ebay"

        # A buyer checks out 2 of E04: a signed ORDER_CONFIRMATION naming the order is POSTed.
        before = env.listing("E04")[1]
        status, sale = await post(f"{control}/_mock/orders", {"sku": "E04", "quantity": 2})
        assert status == 200, sale
        assert sale["notification"]["status"] == 200  # verified and stored
        sent = json.loads(env.state.notifications[-1].body)
        assert sent["notification"]["data"] == {"orderId": sale["orderId"]}
        key_calls = [c for c in env.calls if "/public_key/" in c.path]
        assert [(c.path.rsplit("/", 1)[1], c.status) for c in key_calls] == [
            (env.state.public_key_id, 200)
        ]
        # route → inbox → getOrder → ledger (−2) → a stock pass publishing on every channel.
        await wait_for(lambda: bool(daemon.stock_passes), "stock pass")
        await daemon.inbox.drain()
        await asyncio.gather(*daemon.stock_passes)
        reads = [c for c in env.calls if c.path.startswith("/sell/fulfillment/v1/order/")]
        assert [(c.method, c.path, c.query, c.status) for c in reads] == [
            ("GET", f"/sell/fulfillment/v1/order/{sale['orderId']}", {}, 200)
        ]
        async with daemon.rt.db.read() as conn:
            ledger = (
                await conn.execute(
                    sa.select(EVENTS.c.delta, EVENTS.c.external_ref).where(
                        EVENTS.c.sku == "E04", EVENTS.c.kind == "order"
                    )
                )
            ).all()
        assert [row.delta for row in ledger] == [-2]
        assert sale["orderId"] in ledger[0].external_ref
        assert market.market.listings["E04"].quantity == stock - 2 - BUFFER
        assert env.listing("E04")[1:] == (before - 2, before - 2, before - 2)
        last = [
            e
            for c in env.bulk_calls()
            for e in c.body["requests"]
            if e.get("sku") == "E04" and "shipToLocationAvailability" in e
        ][-1]
        assert last["shipToLocationAvailability"]["quantity"] == stock - 2 - BUFFER

        # eBay retries the delivery: same notificationId, deduplicated, nothing moves.
        nid = sale["notification"]["notificationId"]
        status, again = await post(f"{control}/_mock/redeliver", {"notificationId": nid})
        assert (status, again["status"]) == (200, 200)
        await daemon.inbox.drain()
        async with daemon.rt.db.read() as conn:
            topics = (await conn.execute(sa.select(INBOX.c.topic, INBOX.c.outcome))).all()
        assert [(t.topic, t.outcome) for t in topics] == [("ORDER_CONFIRMATION", "applied")]
        # A forged delivery (body changed after signing) is refused at the route.
        signed = env.state.notifications[-1]
        forged = signed.body.replace(b'"publishAttemptCount":2', b'"publishAttemptCount":3')
        assert forged != signed.body
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{env.daemon_port}/webhooks/ebay",
                data=forged,
                headers={"Content-Type": "application/json", "X-EBAY-SIGNATURE": signed.signature},
            ) as response,
        ):
            assert response.status == 401
    finally:
        await daemon.close()


async def test_without_a_fulfillment_scope_an_order_confirmation_is_invalid_and_says_why(
    env: Env,
) -> None:
    """A user token that cannot read orders cannot resolve the notification: the delivery is
    marked invalid with the missing scope named, and nothing is asked of the Fulfillment API."""
    daemon = await started(env, serve=True)
    try:
        await daemon.converge()
        status, sale = await post(
            f"{env.mock.base_url}/_mock/orders", {"sku": "E02", "quantity": 1}
        )
        assert (status, sale["notification"]["status"]) == (200, 200)
        await daemon.inbox.drain()  # woken by the route before its 200
        async with daemon.rt.db.read() as conn:
            [row] = (await conn.execute(sa.select(INBOX.c.outcome, INBOX.c.error))).all()
            moved = (
                await conn.execute(sa.select(EVENTS.c.delta).where(EVENTS.c.kind == "order"))
            ).all()
        assert row.outcome == "invalid"
        assert "sell.fulfillment" in row.error
        assert moved == []
        assert not [c for c in env.calls if c.path.startswith("/sell/fulfillment/")]
    finally:
        await daemon.close()


async def test_discovery_follows_the_mocks_page_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """230 items: three getInventoryItems pages by page index (offset 0, 1, 2), as the OAS
    defines ``offset`` and the mock's ``next`` links say."""
    async for env in make_env(tmp_path, monkeypatch, FAST, skus=230):
        env.state.enforce_rate_limits = False
        assert await daemon_once(env) == 0
        pages = [c for c in env.calls if c.path.endswith("/inventory_item")][1:]
        assert [c.query["offset"] for c in pages] == ["0", "1", "2"]
        assert [len(c.answer["inventoryItems"]) for c in pages] == [100, 100, 30]
        assert_converged(env)
        assert sum(env.state.throttled.values()) == 0


async def test_a_lost_answer_is_resent_and_both_revisions_are_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bulk call is applied but its answer comes after the daemon gave up: the retry (no
    idempotency keys on eBay) applies the same absolute price again, and the connector counts
    both revisions against the listing's day, as eBay does."""
    async for env in make_env(tmp_path, monkeypatch, "    request_timeout_s: 0.3"):
        await _lost_answer(env)


async def _lost_answer(env: Env) -> None:
    daemon = await started(env)
    try:
        await daemon.converge()
        rows = catalog_rows()
        recount = env.tmp / "costs.csv"
        write_catalog(recount, catalog_rows(cost_bump={"E08": str(rows[8][1] + 2)}))
        await import_catalog(daemon.rt.db, recount, clock=daemon.rt.clock, known_channels={"ebay"})
        env.slow[BULK] = 1
        before = len(env.calls)
        await daemon.passes.run("reprice")
        assert env.slow[BULK] == 0
        moved = (await action_rows(env, kind="price", sku="E08"))[-1]
        assert (moved.status, moved.attempts) == ("confirmed", 1)
        wanted = target_price(Decimal(rows[8][1] + 2), Decimal("1.00"))
        assert env.listing("E08")[0] == wanted
        # The lost answer is recorded when it finally goes out (after the retry's).
        await wait_for(lambda: len(env.calls) - before == 2, "the late answer")
        sent = [e for c in env.calls[before:] for e in c.body["requests"]]
        assert [c.path for c in env.calls[before:]] == [BULK, BULK]
        assert sent[0] == sent[1]  # the same entry twice
        assert env.revisions("E08") == 2 + 2
        ref = daemon.channel.refs["E08"]
        assert await daemon.channel.budget.used(ref.budget_key) == env.revisions("E08")
    finally:
        await daemon.close()
