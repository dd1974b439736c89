"""Order polling end to end: an order whose webhook never reaches the daemon is found by the
``orders`` pass, applied once, and the other channel follows; the webhook arriving later is a
duplicate; a cancel whose webhook is lost too gives the units back. Mocks and daemon are the
real ones, over loopback (see test_e2e_shopify/amazon/walmart/ebay): Shopify, Amazon, Walmart
(GET /v3/orders) and eBay (Fulfillment getOrders)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import httpx
import pytest
import sqlalchemy as sa

from connectors.mock import MockChannel
from connectors.mock.amazon.notify import deliver, order_change
from connectors.mock.walmart.events import Event as WmEvent
from connectors.mock.walmart.events import deliver as wm_deliver
from connectors.mock.walmart.state import WalmartMockState
from daemon.app import start_runtime
from daemon.config import load_config
from daemon.db.engine import Database
from daemon.db.models import StockEvent, WebhookEvent
from daemon.ledger import on_hand
from daemon.logging import SecretRedactor
from daemon.order_poll import ORDER_POLL_OVERLAP, order_watermark
from daemon.passes import run_named_pass
from daemon.runtime import Runtime
from domain.clock import ManualClock, SystemClock
from tests.e2e.amazon_fixtures import (
    CATALOGUE,
    CHANNEL,
    AdvancingSleep,
    daemon_server,
    loaded,
    manual_runtime,
    mock_state,
    served,
    write_config,
)
from tests.e2e.ebay_env import Env as EbayEnv
from tests.e2e.ebay_env import make_env as make_ebay_env
from tests.e2e.ebay_env import started as ebay_started
from tests.e2e.test_e2e_shopify import (
    BUFFER,
    Daemon,
    Env,
    assert_converged,
    inbox_rows,
    post,
    wait_for,
)
from tests.e2e.test_e2e_shopify import shop_env as running_shop
from tests.e2e.walmart_harness import CHANNEL as WM_CHANNEL
from tests.e2e.walmart_harness import free_port, inbox_outcomes, start_setup
from tests.e2e.walmart_harness import start_daemon as wm_daemon

EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]


async def ledger(db: Database, sku: str) -> list[tuple[str, int, str]]:
    """(kind, delta, external_ref) of the order and cancel rows of ``sku``, oldest first."""
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(EVENTS.c.kind, EVENTS.c.delta, EVENTS.c.external_ref)
            .where(EVENTS.c.sku == sku, EVENTS.c.kind.in_(["order", "cancel"]))
            .order_by(EVENTS.c.id)
        )
        return [(row.kind, row.delta, row.external_ref) for row in rows]


# -- Shopify ------------------------------------------------------------------------------------


@pytest.fixture
async def shop_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    """The mock shop (no webhook target: orders/create reaches nobody) and a daemon config."""
    async with running_shop(tmp_path, monkeypatch) as env:
        yield env


async def test_a_shopify_order_without_its_webhook_is_polled_once_and_followed(
    shop_env: Env,
) -> None:
    env = shop_env
    config = load_config(env.config)
    rt = await start_runtime(config, SecretRedactor(config.secrets), SystemClock())
    daemon = Daemon(rt)
    port = await daemon.serve()
    try:
        for name in ("reconcile", "reprice", "stock_sync"):
            await daemon.passes.run(name)
        assert_converged(env)
        market = rt.channels["market"]
        assert isinstance(market, MockChannel)
        assert market.market.listings["MUG-S"].quantity == 12 - BUFFER

        # A shopper buys 3; the shop has no webhook target, so the daemon hears nothing.
        status, order = await post(f"{env.base_url}/_mock/orders", {"sku": "MUG-S", "quantity": 3})
        assert status == 200
        await env.sender.drain()
        create = next(d for d in env.sender.deliveries.values() if d.topic == "orders/create")
        assert (create.attempts, create.error) == (0, "no webhook target configured")
        assert await ledger(rt.db, "MUG-S") == []

        result = await daemon.passes.run("orders")
        assert result["market"] == {"skipped": "the channel cannot list its orders"}
        shop = result["shop"]
        assert (shop["polled"], shop["applied"], shop["duplicates"]) == (1, 1, 0)
        assert shop["skus"] == ["MUG-S"]
        assert "error" not in shop["stock_sync"]["market"]
        # The ledger dropped and the other channel follows, from the poll alone.
        assert await ledger(rt.db, "MUG-S") == [
            ("order", -3, f"shop:order:{order['order_id']}:MUG-S")
        ]
        assert market.market.listings["MUG-S"].quantity == 12 - 3 - BUFFER
        assert env.available("MUG-S") == 12 - 3 - BUFFER
        orders_calls = env.calls("orders")
        assert orders_calls[0]["query"].startswith("updated_at:>='")
        assert orders_calls[0]["first"] == 50

        # The webhook arrives after all (a late retry): a duplicate, applied once.
        env.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/shop"
        redelivered = await env.sender.redeliver(create.webhook_id)
        assert redelivered is not None
        assert redelivered.status == 200
        await daemon.inbox.drain()
        rows = [row for row in await inbox_rows(rt) if row.topic == "orders/create"]
        assert [row.outcome for row in rows] == ["duplicate"]
        assert len(await ledger(rt.db, "MUG-S")) == 1
        assert market.market.listings["MUG-S"].quantity == 12 - 3 - BUFFER

        # The next poll sees the order again (the overlap) and applies nothing.
        again = (await daemon.passes.run("orders"))["shop"]
        assert (again["polled"], again["applied"], again["duplicates"]) == (1, 0, 1)
        assert "stock_sync" not in again

        # A cancel whose webhook is lost too: the poll gives the units back everywhere.
        env.state.webhook_url = None
        status, _ = await post(f"{env.base_url}/_mock/orders/{order['order_id']}/cancel", {})
        assert status == 200
        cancelled = (await daemon.passes.run("orders"))["shop"]
        assert (cancelled["applied"], cancelled["duplicates"]) == (1, 0)
        assert [kind for kind, _delta, _ref in await ledger(rt.db, "MUG-S")] == ["order", "cancel"]
        assert market.market.listings["MUG-S"].quantity == 12 - BUFFER
        await wait_for(lambda: env.available("MUG-S") == 12 - BUFFER, "shop restocked")
    finally:
        await daemon.close()


# -- Amazon -------------------------------------------------------------------------------------


def _with_market(path: Path, catalogue: Path) -> Path:
    """Add an in-memory ``market`` channel (seeded from the catalogue's id:market) to the YAML."""
    text = path.read_text(encoding="utf-8").replace(
        "inventory:\n",
        f"  market:\n    kind: mock\n    seed_catalog: {catalogue}\n    competitors: 0\n"
        "schedule:\n  orders_poll: 2m\n  orders_lookback: 6h\ninventory:\n",
        1,
    )
    path.write_text(text, encoding="utf-8")
    lines = catalogue.read_text(encoding="utf-8").splitlines()
    rows = [lines[0] + ",id:market"] + [f"{line},M-{line.split(',')[0]}" for line in lines[1:]]
    catalogue.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


async def _runtime(tmp_path: Path, base_url: str, clock: ManualClock) -> Runtime:
    """``start_runtime`` on the manual clock, with the Amazon channel and a mock market."""
    config = loaded(_with_market(write_config(tmp_path, base_url), tmp_path / "catalogue.csv"))
    settings = config.settings
    assert settings.schedule.orders_poll is not None
    assert settings.schedule.orders_poll.total_seconds() == 120
    return await manual_runtime(config, clock, (CHANNEL, "market"))


async def test_an_amazon_order_without_its_notification_is_polled_once_and_followed(
    tmp_path: Path, credentials: None
) -> None:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    state = mock_state(tmp_path, clock=clock, sleep=AdvancingSleep(clock))
    stock = {row[0]: row[4] for row in CATALOGUE}
    async with served(state) as mock:
        rt = await _runtime(tmp_path, mock.base_url, clock)
        async with daemon_server(rt) as (server, inbox, _done):
            await run_named_pass(rt, "reconcile", "p0")
            market = rt.channels["market"]
            assert isinstance(market, MockChannel)
            assert state.listing("MUG-1").quantity == stock["MUG-1"] - BUFFER == 6
            assert market.market.listings["MUG-1"].quantity == 6
            # No order in the ledger yet: the first poll looks orders_lookback (6 h) back, but
            # not before the ledger began (the catalogue's counts, imported at 09:00).
            assert await order_watermark(rt, CHANNEL) == clock.now()
            clock.advance(8 * 3600)
            assert await order_watermark(rt, CHANNEL) == clock.now().replace(hour=11)

            async with httpx.AsyncClient() as http:  # no webhook target: no ORDER_CHANGE
                bought = await http.post(
                    f"{mock.base_url}/_mock/orders", json={"sku": "MUG-1", "quantity": 2}
                )
            assert bought.status_code == 200
            assert "notification" not in bought.json()
            order_id = bought.json()["amazonOrderId"]
            clock.advance(30)

            result = await run_named_pass(rt, "orders", "p1")
            amz = result[CHANNEL]
            assert (amz["polled"], amz["applied"], amz["duplicates"]) == (1, 1, 0)
            assert result["market"] == {"skipped": "the channel cannot list its orders"}
            assert state.calls["getOrders"] == 1
            assert state.calls["getOrderItems"] == 1
            async with rt.db.read() as conn:
                assert await on_hand(conn, ["MUG-1"]) == {"MUG-1": 5}
            assert await ledger(rt.db, "MUG-1") == [
                ("order", -2, f"{CHANNEL}:order:{order_id}:MUG-1")
            ]
            assert market.market.listings["MUG-1"].quantity == 4  # 5 held, 1 buffer
            assert state.listing("MUG-1").quantity == 4  # Amazon took them off itself
            # The next poll starts where this one did, minus the overlap.
            assert await order_watermark(rt, CHANNEL) == clock.now() - ORDER_POLL_OVERLAP

            # The ORDER_CHANGE comes after all: stored, and a duplicate.
            state.webhook_url = f"http://127.0.0.1:{server.port}/webhooks/{CHANNEL}"
            listing = state.listing("MUG-1")
            assert listing is not None
            item_id = state.orders[order_id].item_id
            document = order_change(state, listing, 2, order_id, item_id=item_id)
            async with aiohttp.ClientSession() as session:
                sent = await deliver(state, session, "MUG-1", document)
            assert sent.status == 200
            await inbox.drain()
            async with rt.db.read() as conn:
                stored = (await conn.execute(sa.select(INBOX.c.topic, INBOX.c.outcome))).all()
            assert [(row.topic, row.outcome) for row in stored] == [("ORDER_CHANGE", "duplicate")]
            assert len(await ledger(rt.db, "MUG-1")) == 1

            # A second poll: the order again, nothing applied; its items came from the cache.
            again = (await run_named_pass(rt, "orders", "p2"))[CHANNEL]
            assert (again["polled"], again["applied"], again["duplicates"]) == (1, 0, 1)
            assert state.calls["getOrderItems"] == 1

            # Cancelled at Amazon, notification lost: the poll gives the 2 units back.
            state.webhook_url = None
            clock.advance(60)
            async with httpx.AsyncClient() as http:
                cancel = await http.post(f"{mock.base_url}/_mock/orders/{order_id}/cancel")
            assert cancel.status_code == 200
            clock.advance(30)
            back = (await run_named_pass(rt, "orders", "p3"))[CHANNEL]
            assert (back["applied"], back["duplicates"]) == (1, 0)
            assert [row[:2] for row in await ledger(rt.db, "MUG-1")] == [
                ("order", -2),
                ("cancel", 2),
            ]
            assert market.market.listings["MUG-1"].quantity == 6
            assert state.listing("MUG-1").quantity == 6
            assert state.rate_limited_total == 0


# -- Walmart ------------------------------------------------------------------------------------


def _dead_subscriptions(state: WalmartMockState) -> dict[str, str]:
    """Point every subscription at a port nothing listens on; return their real URLs."""
    real = {sid: sub.event_url for sid, sub in state.subscriptions.items()}
    for sub in state.subscriptions.values():
        sub.event_url = f"http://127.0.0.1:{free_port()}/webhooks/{WM_CHANNEL}"
    return real


async def test_a_walmart_order_without_its_po_created_is_polled_once_and_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{"sku": f"WM-{n:03d}", "cost": "10.00", "price": "12.50", "stock": 6} for n in range(2)]
    setup = await start_setup(tmp_path, monkeypatch, rows)
    path = tmp_path / "repricerd.yaml"
    _with_market(path, setup.catalog)
    setup = replace(setup, config=load_config(path))
    state = setup.state
    daemon = await wm_daemon(setup)
    rt = daemon.rt
    try:
        await daemon.passes.run("reconcile")
        market = rt.channels["market"]
        assert isinstance(market, MockChannel)
        assert market.market.listings["WM-001"].quantity == 5  # 6 - buffer 1

        real = _dead_subscriptions(state)  # PO_CREATED reaches nobody
        async with httpx.AsyncClient(base_url=setup.mock.base_url) as http:
            placed = await http.post("/_mock/orders", json={"sku": "WM-001", "quantity": 2})
        assert placed.status_code == 200, placed.text
        po = placed.json()["purchaseOrderId"]
        [lost] = [e for e in state.events if e.event_type == "PO_CREATED"]
        assert lost.status is None
        assert await ledger(rt.db, "WM-001") == []

        result = await daemon.passes.run("orders")
        wm = result[WM_CHANNEL]
        assert (wm["polled"], wm["applied"], wm["duplicates"]) == (1, 1, 0)
        assert result["market"] == {"skipped": "the channel cannot list its orders"}
        assert wm["skus"] == ["WM-001"]
        assert state.calls["getAllOrders"] == 1
        assert await ledger(rt.db, "WM-001") == [("order", -2, f"{WM_CHANNEL}:order:{po}:1:WM-001")]
        assert market.market.listings["WM-001"].quantity == 3  # the other channel follows
        assert state.market.listings["WM-001"].quantity == 3  # and Walmart shows 4 - buffer

        # The PO_CREATED comes after all (Walmart's retry): stored, and a duplicate.
        for sid, url in real.items():
            state.subscriptions[sid].event_url = url
        document = json.loads(lost.body)
        sub = next(s for s in state.subscriptions.values() if s.event_type == "PO_CREATED")
        async with aiohttp.ClientSession() as session:
            event = WmEvent("PO_CREATED", "WM-001", document["payload"])
            sent = await wm_deliver(state, session, sub, event, document)
        assert sent.status == 200
        await daemon.settle()
        outcomes = [(t, o) for t, o, _ in await inbox_outcomes(rt.db) if t == "PO_CREATED"]
        assert outcomes == [("PO_CREATED", "duplicate")]
        assert len(await ledger(rt.db, "WM-001")) == 1

        # The next poll sees the order again (the overlap) and applies nothing.
        again = (await daemon.passes.run("orders"))[WM_CHANNEL]
        assert (again["polled"], again["applied"], again["duplicates"]) == (1, 0, 1)

        # Walmart cancels the line and PO_LINE_AUTOCANCELLED is lost too: the poll gives back.
        _dead_subscriptions(state)
        async with httpx.AsyncClient(base_url=setup.mock.base_url) as http:
            cancelled = await http.post(f"/_mock/orders/{po}/cancel", json={"lineNumber": "1"})
        assert cancelled.status_code == 200, cancelled.text
        back = (await daemon.passes.run("orders"))[WM_CHANNEL]
        assert (back["applied"], back["duplicates"]) == (1, 0)
        assert [row[:2] for row in await ledger(rt.db, "WM-001")] == [("order", -2), ("cancel", 2)]
        assert market.market.listings["WM-001"].quantity == 5
        assert state.market.listings["WM-001"].quantity == 5
    finally:
        await daemon.stop()
        await setup.mock.runner.cleanup()


# -- eBay ---------------------------------------------------------------------------------------

EBAY_SCOPES = (
    "    scopes:\n"
    "      - https://api.ebay.com/oauth/api_scope/sell.inventory\n"
    "      - https://api.ebay.com/oauth/api_scope/sell.fulfillment.readonly\n"
)


@pytest.fixture
async def ebay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EbayEnv]:
    """The mock eBay (from ebay_env) with a fulfillment scope and a ``market`` channel."""
    async for env in make_ebay_env(tmp_path, monkeypatch, extra=EBAY_SCOPES, skus=3):
        _with_market(env.config, env.catalog)
        yield env


async def test_an_ebay_order_without_its_order_confirmation_is_polled_once_and_followed(
    ebay: EbayEnv,
) -> None:
    env = ebay
    daemon = await ebay_started(env, serve=True)
    rt = daemon.rt
    control = env.mock.base_url
    try:
        await daemon.converge()
        market = rt.channels["market"]
        assert isinstance(market, MockChannel)
        stock = 3 + 2 % 9  # E02's catalogue stock
        assert market.market.listings["E02"].quantity == stock - BUFFER

        env.state.notify_url = None  # ORDER_CONFIRMATION reaches nobody
        status, sale = await post(f"{control}/_mock/orders", {"sku": "E02", "quantity": 2})
        assert status == 200, sale
        assert sale["notification"]["error"] == "no notification endpoint configured"
        assert await ledger(rt.db, "E02") == []

        result = await daemon.passes.run("orders")
        polled = result["ebay"]
        assert (polled["polled"], polled["applied"], polled["duplicates"]) == (1, 1, 0)
        assert result["market"] == {"skipped": "the channel cannot list its orders"}
        assert await ledger(rt.db, "E02") == [("order", -2, f"ebay:order:{sale['orderId']}:E02")]
        assert market.market.listings["E02"].quantity == stock - 2 - BUFFER
        assert env.listing("E02")[1] == stock - 2 - BUFFER
        [call] = [c for c in env.calls if c.path == "/sell/fulfillment/v1/order"]
        assert call.query["filter"].startswith("lastmodifieddate:[")
        assert (call.query["limit"], call.query["offset"], call.status) == ("200", "0", 200)

        # eBay retries the notification later: stored, a duplicate, applied once.
        env.state.notify_url = f"http://127.0.0.1:{env.daemon_port}/webhooks/ebay"
        nid = sale["notification"]["notificationId"]
        status, again = await post(f"{control}/_mock/redeliver", {"notificationId": nid})
        assert (status, again["status"]) == (200, 200)
        await daemon.inbox.drain()
        async with rt.db.read() as conn:
            rows = (await conn.execute(sa.select(INBOX.c.topic, INBOX.c.outcome))).all()
        assert [(r.topic, r.outcome) for r in rows] == [("ORDER_CONFIRMATION", "duplicate")]
        assert len(await ledger(rt.db, "E02")) == 1

        # The order is cancelled (eBay pushes nothing for it): the poll gives the units back.
        status, _ = await post(f"{control}/_mock/orders/{sale['orderId']}/cancel", {})
        assert status == 200
        back = (await daemon.passes.run("orders"))["ebay"]
        assert (back["applied"], back["duplicates"]) == (1, 0)
        assert [row[:2] for row in await ledger(rt.db, "E02")] == [("order", -2), ("cancel", 2)]
        assert market.market.listings["E02"].quantity == stock - BUFFER
        await wait_for(lambda: env.listing("E02")[1] == stock - BUFFER, "eBay restocked")
    finally:
        await daemon.close()
