"""The real daemon against the mock SP-API over loopback: what lands at "Amazon" is checked there.

Each test serves ``connectors.mock.amazon`` on a free port, writes a daemon YAML with a
``kind: amazon`` channel pointing at it (credentials as ${ENV} references), imports the catalogue
and runs the daemon's own passes. The assertions read the MOCK's state (prices, min/max, quantities,
counted effects, feeds, notifications) and the daemon's action rows, never the connector's view.
Tests with retries or feeds share one manual clock between the daemon and the mock, with a sleep
that advances it: backoffs, rate-limit waits and feed processing take no real time.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from connectors.amazon import AmazonChannel
from connectors.base import ChannelDeps
from connectors.mock.amazon.notify import ANY_OFFER_CHANGED
from connectors.mock.amazon.state import ListingMeta
from connectors.mock.market import MockListing
from daemon.app import run_once
from daemon.db.engine import Database
from daemon.db.models import ActionKind, WebhookEvent
from daemon.ledger import on_hand
from daemon.logging import SecretRedactor
from daemon.passes import run_named_pass
from daemon.runtime import Runtime
from domain.clock import ManualClock
from tests.e2e.amazon_fixtures import (
    CATALOGUE,
    CHANNEL,
    AdvancingSleep,
    action_rows,
    allocation_of,
    ceiling_of,
    daemon_server,
    floor_of,
    loaded,
    manual_runtime,
    mock_state,
    served,
    write_config,
)

INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
SKUS = [row[0] for row in CATALOGUE]
SEED_PRICE = {row[0]: Decimal(row[6]) for row in CATALOGUE}
pytestmark = pytest.mark.usefixtures("credentials")


def _clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))


def _assert_prices_within_guards(state: Any, skus: list[str]) -> None:
    for sku in skus:
        listing, meta = state.listing(sku), state.meta_of(sku)
        assert floor_of(sku) <= listing.price <= ceiling_of(sku), sku
        # Amazon enforces the same bounds: both go with every price write.
        assert (meta.min_price, meta.max_price) == (floor_of(sku), ceiling_of(sku)), sku


def _assert_each_effect_once(state: Any, rows: list[Any]) -> None:
    """Every row Amazon accepted was applied exactly once; nothing was applied without a row."""
    expected = {}
    for row in rows:
        if row.status == "sent" and row.response_code == "ACCEPTED":
            value = row.new_price if row.kind == "price" else row.new_quantity
            expected[f"{row.sku}|{row.kind if row.kind == 'price' else 'quantity'}|{value}"] = 1
    assert dict(state.applied) == expected
    assert not state.orphan_patches


async def test_run_once_lands_guarded_prices_and_ledger_quantities_on_amazon(
    tmp_path: Path,
) -> None:
    """`repricerd run --once`: discovery, reprice and stock sync, all checked at the mock."""
    state = mock_state(tmp_path)
    async with served(state) as mock:
        config = loaded(write_config(tmp_path, mock.base_url))
        assert await run_once(config, SecretRedactor()) == 0
        priced = {sku for sku in SKUS if state.listing(sku).price != SEED_PRICE[sku]}
        assert priced, "the buy_box rule moved no price"
        _assert_prices_within_guards(state, sorted(priced))
        for sku in SKUS:
            step = abs(state.listing(sku).price - SEED_PRICE[sku]) / SEED_PRICE[sku] * 100
            assert step <= Decimal("10"), sku  # max_step_pct
            assert state.listing(sku).quantity == allocation_of(sku), sku
        db = Database(config.settings.database)
        try:
            rows = await action_rows(db)
            assert {(r.kind, r.status, r.response_code) for r in rows} == {
                ("price", "sent", "ACCEPTED"),
                ("stock", "sent", "ACCEPTED"),
            }
            prices = {r.sku: r for r in rows if r.kind == "price"}
            assert set(prices) == priced
            for sku, row in prices.items():
                assert (row.floor, row.ceiling) == (floor_of(sku), ceiling_of(sku))
                assert row.new_price == state.listing(sku).price
            # JUG-1 has no stock: the mock's 0 is already right, so nothing is written for it.
            assert sorted(r.sku for r in rows if r.kind == "stock") == sorted(
                sku for sku in SKUS if allocation_of(sku)
            )
            _assert_each_effect_once(state, rows)
            assert state.rate_limited_total == 0  # paced under the published limits

            # The next run's reconcile reads Amazon back and confirms what it had accepted.
            assert await run_once(config, SecretRedactor()) == 0
            first = {r.id for r in rows}
            again = [r for r in await action_rows(db) if r.id in first]
            assert {r.status for r in again} == {"confirmed"}
            assert not [r for r in await action_rows(db, kind="stock") if r.id not in first]
        finally:
            await db.dispose()
        assert state.calls["lwaToken"] == 2  # one token per process, reused by every call


async def test_a_429_storm_and_500s_lose_and_double_no_write(tmp_path: Path) -> None:
    """Throttles and server errors on PATCH: every intent lands once, none twice, none lost."""
    clock = _clock()
    state = mock_state(tmp_path, clock=clock, sleep=AdvancingSleep(clock))
    async with served(state) as mock:
        rt = await manual_runtime(loaded(write_config(tmp_path, mock.base_url)), clock)
        try:
            state.fault_operations = {"patchListingsItem"}
            async with httpx.AsyncClient() as http:
                answer = await http.post(
                    f"{mock.base_url}/_mock/faults", json={"throttle_next": 14, "error_next": 5}
                )
                assert answer.status_code == 200
            for name in ("reconcile", "reprice", "stock_sync"):
                result = await run_named_pass(rt, name, f"p-{name}")
                assert "error" not in result[CHANNEL], result
            channel = rt.channels[CHANNEL]
            for _ in range(10):  # re-send what a long storm left open, as later passes would
                if not await rt.outbox.count_open() - len(await _accepted(rt)):
                    break
                for kind in ActionKind:
                    await rt.outbox.dispatch(channel, kind)
            # 14 storm answers, plus any the mock's own bucket gave: on the shared manual clock a
            # request in flight "arrives" after other tasks' sleeps moved time on, so arrivals
            # bunch up as with heavy network jitter (the client re-paces after each one).
            assert state.throttled["patchListingsItem"] >= 14
            assert state.failed["patchListingsItem"] == 5
            rows = await action_rows(rt.db)
            assert {(r.status, r.response_code) for r in rows} == {("sent", "ACCEPTED")}
            assert len({(r.kind, r.sku) for r in rows}) == len(rows)  # one intent per change
            _assert_each_effect_once(state, rows)
            _assert_prices_within_guards(state, [r.sku for r in rows if r.kind == "price"])
            for sku in SKUS:
                assert state.listing(sku).quantity == allocation_of(sku), sku
        finally:
            await rt.close()


async def _accepted(rt: Runtime) -> list[Any]:
    return [r for r in await action_rows(rt.db, status="sent") if r.response_code == "ACCEPTED"]


async def test_a_large_batch_goes_as_one_feed_and_a_refused_message_fails_its_row(
    tmp_path: Path,
) -> None:
    """Past patch_max_batch: document, presigned upload, createFeed, polling, report → rows."""
    clock = _clock()
    state = mock_state(tmp_path, clock=clock, sleep=AdvancingSleep(clock))
    state.feed_processing_s = 90.0  # simulated seconds: polled every 30 s on the manual clock
    state.gzip_reports = True
    state.refused_skus = {"LAMP-1"}
    config = write_config(tmp_path, "MOCK", patch_max_batch=2, feed_poll_interval_s=30)
    async with served(state) as mock:
        config.write_text(config.read_text().replace("MOCK", mock.base_url))
        rt = await manual_runtime(loaded(config), clock)
        try:
            for name in ("reconcile", "reprice"):
                result = await run_named_pass(rt, name, f"p-{name}")
                assert "error" not in result[CHANNEL], result
            rows = await action_rows(rt.db)
        finally:
            await rt.close()
    assert state.calls["patchListingsItem"] == 0  # every write went by feed
    assert sorted(feed.status for feed in state.feeds.values()) == ["DONE", "DONE"]
    for op in ("createFeedDocument", "createFeed", "getFeedDocument"):
        assert state.calls[op] == 2, op
    assert state.calls["getFeed"] >= 2 * 3  # 90 s of processing, looked at every 30 s
    uploaded = [
        d for d in state.documents.values() if d.content_type.startswith("application/json;")
    ]
    assert len(uploaded) == 2
    assert all(d.data for d in uploaded)
    refused = [r for r in rows if r.sku == "LAMP-1"]
    assert {(r.kind, r.status, r.response_code) for r in refused} == {
        ("price", "failed", "90000900"),
        ("stock", "failed", "90000900"),
    }
    assert all("restricted" in r.response_message for r in refused)
    others = [r for r in rows if r.sku != "LAMP-1"]
    assert {(r.status, r.response_code) for r in others} == {("sent", "ACCEPTED")}
    feed_refs = {f"feed:{feed_id}" for feed_id in state.feeds}
    assert {r.marketplace_ref for r in rows} == feed_refs
    assert state.listing("LAMP-1").price == SEED_PRICE["LAMP-1"]
    assert state.listing("LAMP-1").quantity == 0
    _assert_each_effect_once(state, rows)


async def test_a_signed_any_offer_changed_is_stored_and_reprices_that_sku(tmp_path: Path) -> None:
    """The mock pushes ANY_OFFER_CHANGED (signed) to /webhooks/amz → inbox → reprice of its SKU."""
    clock = _clock()
    state = mock_state(tmp_path, clock=clock, sleep=AdvancingSleep(clock))
    async with served(state) as mock:
        rt = await manual_runtime(loaded(write_config(tmp_path, mock.base_url)), clock)
        async with daemon_server(rt) as (server, inbox, done):
            await run_named_pass(rt, "reconcile", "p0")  # learns which SKU each ASIN is
            before = {r.id for r in await action_rows(rt.db)}
            state.webhook_url = f"http://127.0.0.1:{server.port}/webhooks/{CHANNEL}"
            async with httpx.AsyncClient() as http:
                fired = await http.post(f"{mock.base_url}/_mock/notify", json={"sku": "BOWL-1"})
            assert fired.status_code == 200
            sent = fired.json()
            assert sent["status"] == 200  # the daemon acknowledged the signed delivery
            await inbox.drain()
            assert await asyncio.wait_for(done.get(), timeout=5) == "reprice"
            async with rt.db.read() as conn:
                stored = (await conn.execute(sa.select(INBOX))).one()
            assert (stored.dedupe_key, stored.topic) == (sent["notificationId"], ANY_OFFER_CHANGED)
            assert stored.outcome == "applied"
            assert json.loads(stored.payload) == sent["body"]
            new = [r for r in await action_rows(rt.db) if r.id not in before]
            assert {r.sku for r in new} == {"BOWL-1"}
            assert [r.kind for r in new] == ["price"]
            assert state.listing("BOWL-1").price == new[0].new_price
            _assert_prices_within_guards(state, ["BOWL-1"])

            # PRICING_HEALTH (lowerCamel envelope): stored under its own id, reprices its SKU.
            async with httpx.AsyncClient() as http:
                health = await http.post(
                    f"{mock.base_url}/_mock/notify", json={"sku": "MUG-2", "type": "PRICING_HEALTH"}
                )
            assert health.json()["status"] == 200
            await inbox.drain()
            assert await asyncio.wait_for(done.get(), timeout=5) == "reprice"
            async with rt.db.read() as conn:
                rows = (await conn.execute(sa.select(INBOX).order_by(INBOX.c.id))).all()
            assert [(r.topic, r.outcome) for r in rows] == [
                (ANY_OFFER_CHANGED, "applied"),
                ("PRICING_HEALTH", "applied"),
            ]
            assert rows[1].dedupe_key == health.json()["notificationId"]


async def test_an_order_change_moves_the_ledger_and_republishes_the_sku(tmp_path: Path) -> None:
    """A shopper buys on the mock → ORDER_CHANGE → ledger order → stock sync of that SKU."""
    clock = _clock()
    state = mock_state(tmp_path, clock=clock, sleep=AdvancingSleep(clock))
    async with served(state) as mock:
        rt = await manual_runtime(loaded(write_config(tmp_path, mock.base_url)), clock)
        async with daemon_server(rt) as (server, inbox, done):
            await run_named_pass(rt, "reconcile", "p0")  # publishes 6 of MUG-1's 7 units
            assert state.listing("MUG-1").quantity == allocation_of("MUG-1") == 6
            before = {r.id for r in await action_rows(rt.db)}
            state.webhook_url = f"http://127.0.0.1:{server.port}/webhooks/{CHANNEL}"
            async with httpx.AsyncClient() as http:
                bought = await http.post(
                    f"{mock.base_url}/_mock/orders", json={"sku": "MUG-1", "quantity": 2}
                )
            assert bought.status_code == 200
            assert bought.json()["notification"]["status"] == 200
            await inbox.drain()
            assert await asyncio.wait_for(done.get(), timeout=5) == "stock_sync"
            async with rt.db.read() as conn:
                stored = (await conn.execute(sa.select(INBOX))).one()
                held = await on_hand(conn, ["MUG-1"])
            assert (stored.topic, stored.outcome) == ("ORDER_CHANGE", "applied")
            assert held == {"MUG-1": 5}  # 7 counted, 2 sold
            new = [r for r in await action_rows(rt.db) if r.id not in before]
            assert [(r.kind, r.sku, r.old_quantity, r.new_quantity) for r in new] == [
                ("stock", "MUG-1", 6, 4)
            ]
            assert state.listing("MUG-1").quantity == 4  # 5 held, 1 kept back as the buffer
            assert state.applied["MUG-1|quantity|4"] == 1


async def test_discovery_pages_past_the_1000_item_search_limit(tmp_path: Path) -> None:
    """searchListingsItems pages through 1000 items per query: createdDate windows reach all."""
    clock = _clock()
    state = mock_state(tmp_path, clock=clock, sleep=AdvancingSleep(clock))
    for index in range(1_200):
        sku = f"BULK-{index:05d}"
        state.market.listings[sku] = MockListing(sku, f"B1{index:08d}", Decimal("9.99"), "USD")
        created = clock.now() - timedelta(minutes=2_000 - index)
        state.meta[sku] = ListingMeta(created=created, updated=clock.now())
    async with served(state) as mock:
        config = loaded(write_config(tmp_path, mock.base_url))
        channel = AmazonChannel(
            CHANNEL,
            config.settings.channels[CHANNEL],  # type: ignore[arg-type]
            ChannelDeps(http=httpx.AsyncClient(), clock=clock, sleep=AdvancingSleep(clock)),
        )
        try:
            found = await channel.fetch_listings()
        finally:
            await channel.deps.http.aclose()
    assert sorted(item.sku for item in found) == sorted(state.market.listings)
    assert len(found) == 1_205
    # Two windows: 1000 items (50 pages of 20), then the rest from the last createdDate seen.
    assert state.calls["searchListingsItems"] == 50 + 11


async def test_an_expired_token_is_refreshed_once_and_the_pass_goes_on(tmp_path: Path) -> None:
    """Amazon refuses the LWA token (403 Unauthorized): one new grant, the call is re-sent."""
    clock = _clock()
    state = mock_state(tmp_path, clock=clock, sleep=AdvancingSleep(clock))
    async with served(state) as mock:
        rt = await manual_runtime(loaded(write_config(tmp_path, mock.base_url)), clock)
        try:
            assert state.calls["lwaToken"] == 1
            async with httpx.AsyncClient() as http:
                expired = await http.post(f"{mock.base_url}/_mock/tokens/expire")
            assert expired.status_code == 200
            result = await run_named_pass(rt, "reconcile", "p0")
            assert result[CHANNEL]["live"] == len(SKUS)
            assert state.calls["lwaToken"] == 2
            rows = await action_rows(rt.db)
            assert {(r.status, r.response_code) for r in rows} == {("sent", "ACCEPTED")}
        finally:
            await rt.close()
