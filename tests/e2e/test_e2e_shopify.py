"""The real daemon against the mock Shopify Admin GraphQL server, over loopback.

Nothing is faked between the two: the daemon loads a YAML config, imports a catalogue, opens the
real ``ShopifyChannel`` (httpx, cost bucket, retries) pointed at the mock (aiohttp, graphql-core,
cost rules, compare-and-set, ``@idempotent``) and the mock fires signed webhooks back at the
daemon's own HTTP route. Assertions read the mock's state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web
from pydantic import SecretStr

from connectors.base import ChannelDeps
from connectors.mock import MockChannel
from connectors.mock.market import MockListing, MockMarket
from connectors.mock.shopify.app import SENDER, make_app, start
from connectors.mock.shopify.state import ShopifyMockState
from connectors.mock.shopify.webhooks import WebhookSender
from connectors.shopify import ShopifyChannel, ShopifySettings
from daemon.app import Passes, start_runtime
from daemon.catalog import import_catalog
from daemon.config import load_config
from daemon.db.models import StockEvent, WebhookEvent
from daemon.logging import SecretRedactor
from daemon.runtime import Runtime
from domain.clock import SystemClock
from domain.writes import PriceUpdate, PushStatus
from tests.e2e.harness import Daemon, daemon_once, open_actions, post, wait_for

EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]

TOKEN = "shpat_e2e_access_token_0001"
SECRET = "e2e-app-client-secret-0002"
CLIENT_ID = "e2e-dev-dashboard-app-0003"  # a Dev Dashboard app whose client secret is SECRET
SHOP = "e2e-shop.myshopify.com"
BUFFER = 1  # units never offered: every published quantity is stock - 1
CENT = Decimal("0.01")

# Three products (SKUs share the part before their last '-'), several variants each.
CATALOG = [
    # sku, cost, fees, stock, shop price
    ("MUG-S", "10.00", "1.00", 12, "20.00"),
    ("MUG-M", "11.00", "1.00", 8, "21.00"),
    ("MUG-L", "12.00", "1.00", 5, "22.00"),
    ("TEE-S", "6.00", "0.50", 30, "15.00"),
    ("TEE-M", "6.00", "0.50", 25, "15.00"),
    ("TEE-L", "6.50", "0.50", 20, "15.00"),
    ("TEE-XL", "7.00", "0.50", 3, "16.00"),
    ("CAP-RED", "4.00", "0.25", 40, "9.00"),
    ("CAP-BLUE", "4.00", "0.25", 2, "9.00"),
]
PRODUCTS = 3


def target_price(cost: str, fees: str) -> str:
    """cost_plus 30 %: cost × 1.3 + fees, in cents, as the Money string the mock stores."""
    value = (Decimal(cost) * Decimal("1.3") + Decimal(fees)).quantize(CENT, ROUND_HALF_UP)
    return str(value)


def write_catalog(path: Path, stock: dict[str, int] | None = None) -> None:
    """The seller's catalogue CSV: products, stock, the Shopify variant ids and the mock seeds."""
    lines = ["sku,title,currency,cost,fees,min_price,max_price,stock,id:shop,price:shop,id:market"]
    for number, (sku, cost, fees, units, price) in enumerate(CATALOG, start=1):
        units = (stock or {}).get(sku, units)
        variant = f"gid://shopify/ProductVariant/{4_400_000_000_000 + number}"
        lines.append(
            f"{sku},{sku} title,USD,{cost},{fees},{cost},100.00,{units},{variant},{price},M-{sku}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_config(
    tmp: Path, endpoint: str, catalog: Path, *, client_credentials: bool = False
) -> Path:
    """A daemon YAML config: SQLite in tmp, the mock shop and an in-memory second channel.

    The shop authenticates with the static token, or (``client_credentials``) as a Dev Dashboard
    app whose client secret also keys the webhooks' HMAC.
    """
    auth = (
        f"client_id: {CLIENT_ID}\n    client_secret: ${{E2E_SHOP_SECRET}}"
        if client_credentials
        else "access_token: ${E2E_SHOP_TOKEN}\n    webhook_secret: ${E2E_SHOP_SECRET}"
    )
    path = tmp / "repricerd.yaml"
    path.write_text(
        f"""
database: sqlite:///{tmp / "repricerd.db"}
server:
  host: 127.0.0.1
  port: 0
channels:
  shop:
    kind: shopify
    shop: {SHOP}
    endpoint: {endpoint}
    {auth}
  market:
    kind: mock
    seed_catalog: {catalog}
    competitors: 0
inventory:
  buffer: {BUFFER}
pricing:
  guards:
    max_step_pct: 100
    max_daily_move_pct: 100
    breaker:
      share_pct: 100
  rules:
    - strategy: cost_plus
      params:
        margin_pct: 30
catalog:
  import_on_start: {catalog}
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Env:
    """A running mock shop and a daemon config pointing at it."""

    state: ShopifyMockState
    runner: web.AppRunner
    base_url: str
    config: Path
    catalog: Path
    tmp: Path
    # root field -> how many of its answers to lose after the call took effect
    lose_answers: Counter[str]
    # root field -> how many of its calls find every issued token expired on arrival
    expire_tokens_before: Counter[str]

    @property
    def sender(self) -> WebhookSender:
        """The mock's webhook sender (its deliveries, and a way to wait for them)."""
        return self.runner.app[SENDER]

    def variant(self, sku: str) -> dict[str, Any]:
        """The mock's snapshot row of ``sku``."""
        rows: list[dict[str, Any]] = self.state.snapshot()["variants"]
        return next(row for row in rows if row["sku"] == sku)

    def available(self, sku: str) -> int:
        """Available units at the mock's (only) location."""
        levels: dict[str, int] = self.variant(sku)["available"]
        return levels[self.state.primary_location.gid]

    def calls(self, field: str) -> list[dict[str, Any]]:
        """Variables of every executed call of the root ``field``."""
        return [r["variables"] for r in self.state.requests if field in r["fields"]]

    def effects_per_key(self) -> Counter[str]:
        """How often each ``@idempotent`` key's effect was applied (never more than once)."""
        return Counter(self.state.market.effects)


@contextlib.asynccontextmanager
async def shop_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, client_credentials: bool = False
) -> AsyncIterator[Env]:
    """The mock shop served on loopback and a daemon config for it (see ``write_config``)."""
    catalog = tmp_path / "catalog.csv"
    write_catalog(catalog)
    state = ShopifyMockState.from_catalog(
        catalog,
        channel="shop",
        shop_domain=SHOP,
        access_token=SecretStr(TOKEN),
        webhook_secret=SecretStr(SECRET),
        client_id=CLIENT_ID,
        client_secret=SecretStr(SECRET),
        keep_requests=True,
    )
    lose: Counter[str] = Counter()
    expire: Counter[str] = Counter()
    app = make_app(state)
    app.middlewares.append(_answer_loser(lose))
    app.middlewares.append(_token_expirer(state, expire))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    monkeypatch.setenv("E2E_SHOP_TOKEN", TOKEN)
    monkeypatch.setenv("E2E_SHOP_SECRET", SECRET)
    try:
        config = write_config(tmp_path, base_url, catalog, client_credentials=client_credentials)
        yield Env(state, runner, base_url, config, catalog, tmp_path, lose, expire)
    finally:
        await runner.cleanup()


@pytest.fixture
async def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    async with shop_env(tmp_path, monkeypatch) as running:
        yield running


LOST_ANSWER_DELAY_S = 0.6  # longer than the daemon's request timeout in that test


def _answer_loser(lose: Counter[str]) -> Any:
    """Middleware: let a call of a listed mutation take effect, then answer too late."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        field = next((f for f, n in lose.items() if n > 0 and f.encode() in body), None)
        response: web.StreamResponse = await handler(request)
        if field is not None:
            lose[field] -= 1
            await asyncio.sleep(LOST_ANSWER_DELAY_S)
        return response

    return middleware


def _token_expirer(state: ShopifyMockState, expire: Counter[str]) -> Any:
    """Middleware: every issued token expires just before a call of a listed root field."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        field = next((f for f, n in expire.items() if n > 0 and f.encode() in body), None)
        if field is not None:
            expire[field] -= 1
            state.expire_tokens()
        response: web.StreamResponse = await handler(request)
        return response

    return middleware


def assert_converged(env: Env) -> None:
    """Every variant shows the cost_plus price (a Money string) and stock - buffer."""
    for sku, cost, fees, units, _price in CATALOG:
        row = env.variant(sku)
        assert row["price"] == target_price(cost, fees), sku
        assert env.available(sku) == units - BUFFER, sku


async def test_run_once_reprices_and_publishes_stock_on_the_mock_shop(env: Env) -> None:
    assert await daemon_once(env) == 0
    assert_converged(env)
    # One productVariantsBulkUpdate per product, prices as decimal strings.
    price_calls = env.calls("productVariantsBulkUpdate")
    assert len(price_calls) == PRODUCTS
    assert len({call["productId"] for call in price_calls}) == PRODUCTS
    sent_prices = [v["price"] for call in price_calls for v in call["variants"]]
    assert len(sent_prices) == len(CATALOG)
    assert all(isinstance(p, str) and len(p.split(".")[1]) == 2 for p in sent_prices)
    # Quantities: one inventorySetQuantities (9 rows ≤ 250) comparing against what was read.
    [stock_call] = env.calls("inventorySetQuantities")
    rows = stock_call["input"]["quantities"]
    by_item = {v["inventory_item_id"]: v["sku"] for v in env.state.snapshot()["variants"]}
    stock = {sku: units for sku, _c, _f, units, _p in CATALOG}
    assert {by_item[r["inventoryItemId"]]: r["changeFromQuantity"] for r in rows} == stock
    assert {by_item[r["inventoryItemId"]]: r["quantity"] for r in rows} == {
        sku: units - BUFFER for sku, units in stock.items()
    }
    assert stock_call["input"]["name"] == "available"
    assert env.effects_per_key() == Counter({stock_call["idempotencyKey"]: 1})
    assert env.state.counters.throttled == 0
    assert await open_actions(env) == []
    # A second run finds nothing to change: no write reaches the shop.
    before = env.state.counters.operations.copy()
    assert await daemon_once(env) == 0
    after = env.state.counters.operations
    assert after["productVariantsBulkUpdate"] == before["productVariantsBulkUpdate"]
    assert after["inventorySetQuantities"] == before["inventorySetQuantities"]


async def test_throttled_storms_and_server_errors_lose_and_double_nothing(env: Env) -> None:
    faults = env.state.faults
    faults.throttle_rate, faults.error_rate = 0.35, 0.15
    for _round in range(4):  # a call that ran out of retries stays open for the next round
        await daemon_once(env)
        if not await open_actions(env):
            break
    faults.throttle_rate = faults.error_rate = 0.0
    assert env.state.counters.throttled > 0
    assert env.state.counters.errors_injected > 0
    assert_converged(env)
    assert await open_actions(env) == []
    effects = env.effects_per_key()
    assert effects
    assert max(effects.values()) == 1


async def test_a_write_whose_answer_is_lost_is_replayed_not_applied_twice(env: Env) -> None:
    """The stock write is applied but its answer never arrives (the daemon times out); the
    retry carries the same @idempotent key and gets the original result back."""
    settings = env.config.read_text().replace(
        f"    endpoint: {env.base_url}\n",
        f"    endpoint: {env.base_url}\n    request_timeout_s: 0.3\n",
    )
    env.config.write_text(settings)
    env.lose_answers["inventorySetQuantities"] = 1
    assert await daemon_once(env) == 0
    assert env.lose_answers["inventorySetQuantities"] == 0  # the answer was lost once
    assert_converged(env)
    [key] = env.effects_per_key()
    assert env.effects_per_key()[key] == 1
    assert env.state.market.deliveries[key] == 2  # sent twice, applied once
    assert len(env.calls("inventorySetQuantities")) == 2
    assert await open_actions(env) == []


@pytest.fixture
async def served(env: Env) -> AsyncIterator[tuple[Env, Daemon, str]]:
    """The daemon started (import, channels opened), its webhook route live, reconciled once."""
    config = load_config(env.config)
    rt = await start_runtime(config, SecretRedactor(config.secrets), SystemClock())
    daemon = Daemon(rt)
    port = await daemon.serve()
    # Route the mock's webhooks to the daemon's route for the channel.
    env.state.webhook_url = f"http://127.0.0.1:{port}/webhooks/shop"
    control = env.base_url
    try:
        yield env, daemon, control
    finally:
        await daemon.close()


async def inbox_rows(rt: Runtime) -> list[Any]:
    async with rt.db.read() as conn:
        return list(
            (
                await conn.execute(
                    sa.select(INBOX.c.topic, INBOX.c.outcome, INBOX.c.processed_at).order_by(
                        INBOX.c.id
                    )
                )
            ).all()
        )


async def test_an_order_at_the_shop_reaches_the_ledger_and_the_other_channel(
    served: tuple[Env, Daemon, str],
) -> None:
    env, daemon, control = served
    for name in ("reconcile", "reprice", "stock_sync"):
        await daemon.passes.run(name)
    assert_converged(env)
    market = daemon.rt.channels["market"]
    assert isinstance(market, MockChannel)
    assert isinstance(daemon.rt.channels["shop"], ShopifyChannel)
    assert market.market.listings["MUG-S"].quantity == 12 - BUFFER
    await asyncio.sleep(0.2)  # the echo webhooks of our own writes arrive and are ignored
    await daemon.inbox.drain()

    status, order = await post(f"{control}/_mock/orders", {"sku": "MUG-S", "quantity": 3})
    assert status == 200
    # orders/create (signed) → daemon route → inbox → ledger → stock pass on every channel.
    await wait_for(lambda: market.market.listings["MUG-S"].quantity == 12 - 3 - BUFFER, "market")
    await wait_for(lambda: env.available("MUG-S") == 12 - 3 - BUFFER, "shop")
    async with daemon.rt.db.read() as conn:
        ledger = (
            await conn.execute(
                sa.select(EVENTS.c.kind, EVENTS.c.delta, EVENTS.c.external_ref).where(
                    EVENTS.c.sku == "MUG-S", EVENTS.c.kind == "order"
                )
            )
        ).all()
    assert [(row.kind, row.delta) for row in ledger] == [("order", -3)]
    assert str(order["order_id"]) in ledger[0].external_ref

    # Shopify retries a delivery: the same webhook again changes nothing.
    webhook = next(d for d in env.sender.deliveries.values() if d.topic == "orders/create")
    status, again = await post(f"{control}/_mock/redeliver", {"webhook_id": webhook.webhook_id})
    assert (status, again["status"]) == (200, 200)
    await asyncio.sleep(0.2)
    await daemon.inbox.drain()
    assert market.market.listings["MUG-S"].quantity == 12 - 3 - BUFFER

    # The shopper cancels: the units come back everywhere.
    status, _ = await post(f"{control}/_mock/orders/{order['order_id']}/cancel", {})
    assert status == 200
    await wait_for(lambda: market.market.listings["MUG-S"].quantity == 12 - BUFFER, "cancel")
    await env.sender.drain()  # the cancel's inventory_levels/update too
    await daemon.inbox.drain()
    await asyncio.gather(*daemon.stock_passes)
    rows = await inbox_rows(daemon.rt)
    topics = Counter(row.topic for row in rows)
    assert topics["orders/create"] == 1  # the redelivery was deduplicated at the route
    assert topics["orders/cancelled"] == 1
    assert all(row.outcome != "invalid" for row in rows)
    # Nothing is left queued: a write made stale by the shop's own sale is not sent later.
    assert await open_actions(env) == []


async def test_a_quantity_changed_behind_our_back_is_never_blindly_overwritten(env: Env) -> None:
    """Compare-and-set: a stale prior is refused by the shop, re-read, and the next round
    writes the ledger's number against the live one."""
    config = load_config(env.config)
    rt = await start_runtime(config, SecretRedactor(config.secrets), SystemClock())
    passes = Passes(rt)
    try:
        for name in ("reconcile", "reprice", "stock_sync"):
            await passes.run(name)
        assert env.available("TEE-S") == 30 - BUFFER
        # Someone edits the shop (no webhook reaches us) while the warehouse recounts to 40.
        variant = env.state.variant_by_sku("TEE-S")
        assert variant is not None
        env.state.set_available(variant, env.state.primary_location.gid, 4)
        recount = env.tmp / "recount.csv"
        write_catalog(recount, {"TEE-S": 40})
        await import_catalog(rt.db, recount, clock=rt.clock, known_channels=set(rt.channels))

        await passes.run("stock_sync")
        assert env.available("TEE-S") == 4  # refused by the shop: never a blind overwrite
        [row] = [r for r in await open_actions(env) if r.channel == "shop"]
        assert (row.sku, row.status, row.response_code) == (
            "TEE-S",
            "planned",
            "CHANGE_FROM_QUANTITY_STALE",
        )
        assert "live available is 4" in row.response_message

        await passes.run("stock_sync")  # the retry compares against the live 4 it re-read
        assert env.available("TEE-S") == 40 - BUFFER
        last = env.calls("inventorySetQuantities")[-1]["input"]["quantities"]
        assert [(q["quantity"], q["changeFromQuantity"]) for q in last] == [(39, 4)]
        assert await open_actions(env) == []
        effects = env.effects_per_key()
        assert max(effects.values()) == 1
    finally:
        await rt.close()


async def test_a_cold_channel_resolves_250_variant_ids_within_the_query_cost_limit() -> None:
    """The connector alone against the mock: 250 unknown SKUs with variant GIDs are looked up
    with ``nodes(ids:)`` in calls the cost rules accept (250 ids at once would cost ~1,250)."""
    market = MockMarket()
    for number in range(250):
        sku = f"P{number // 5:03d}-{number % 5}"
        gid = f"gid://shopify/ProductVariant/{7_000_000_000_000 + number}"
        market.listings[sku] = MockListing(sku, gid, Decimal("10.00"), "USD", 3)
    state = ShopifyMockState(market=market, keep_requests=True)
    runner, base_url = await start(state)
    settings = ShopifySettings.model_validate(
        {
            "kind": "shopify",
            "shop": state.shop_domain,
            "endpoint": base_url,
            "access_token": state.access_token.get_secret_value(),
        }
    )
    try:
        async with httpx.AsyncClient() as http:
            channel = ShopifyChannel("shop", settings, ChannelDeps(http=http, clock=SystemClock()))
            updates = [
                PriceUpdate(sku, Decimal("12.50"), "USD", f"k-{sku}", external_id=item.external_id)
                for sku, item in market.listings.items()
            ]
            results = await channel.push_prices(updates)
    finally:
        await runner.cleanup()
    assert {r.status for r in results} == {PushStatus.CONFIRMED}
    assert state.counters.max_cost_exceeded == 0
    lookups = [r["variables"]["ids"] for r in state.requests if r["fields"] == ["nodes"]]
    assert [len(ids) for ids in lookups] == [100, 100, 50]
    assert {v.price for v in market.listings.values()} == {Decimal("12.50")}
