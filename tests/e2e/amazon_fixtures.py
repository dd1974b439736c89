"""The mock SP-API server and a daemon config pointing at it, for the Amazon end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from connectors.mock.amazon import AmazonMockState, start
from daemon.app import Passes
from daemon.catalog import import_catalog
from daemon.config import LoadedConfig, load_config
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import Action
from daemon.inbox import InboxWorker
from daemon.logging import SecretRedactor
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.runtime import Runtime
from daemon.server import ServerHandle, start_server
from daemon.triggers import Debouncer
from domain.clock import ManualClock
from tests.daemon_fixtures import server_context

ACTIONS = Action.__table__  # type: ignore[attr-defined]
CHANNEL = "amz"
SELLER = "A3EZFOFNDPFB8R"
MARKET = "ATVPDKIKX0DER"
CLIENT_ID = "amzn1.application-oa2-client.e2e"
CLIENT_SECRET = "e2e-client-secret-value"
REFRESH_TOKEN = "Atzr|e2e-refresh-token"
WEBHOOK_SECRET = "e2e-webhook-secret"
MIN_MARGIN_PCT = Decimal("10")
MAX_STEP_PCT = Decimal("10")
BUFFER = 1

# sku, cost, min_price, max_price, stock, ASIN, price on Amazon today.
CATALOGUE = [
    ("MUG-1", "10.00", "12.00", "30.00", 7, "B000000001", "20.00"),
    ("MUG-2", "8.00", "9.00", "25.00", 3, "B000000002", "15.00"),
    ("LAMP-1", "20.00", "25.00", "60.00", 12, "B000000003", "45.00"),
    ("BOWL-1", "4.00", "5.00", "14.00", 20, "B000000004", "9.50"),
    ("JUG-1", "6.00", "7.00", "19.00", 0, "B000000005", "12.00"),
]
PRODUCTS = {row[0]: row for row in CATALOGUE}


def write_catalogue(path: Path) -> Path:
    """The seller's catalogue CSV (also the mock's seed: ``id:amz`` and ``price:amz``)."""
    lines = [f"sku,title,cost,min_price,max_price,stock,id:{CHANNEL},price:{CHANNEL}"]
    for sku, cost, low, high, stock, asin, price in CATALOGUE:
        lines.append(f"{sku},{sku} title,{cost},{low},{high},{stock},{asin},{price}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def floor_of(sku: str) -> Decimal:
    """The guard floor: max(min_price, cost × (1 + min margin)), rounded up to cents."""
    _sku, cost, low, *_rest = PRODUCTS[sku]
    by_cost = Decimal(cost) * (1 + MIN_MARGIN_PCT / 100)
    return max(Decimal(low), by_cost).quantize(Decimal("0.01"), ROUND_CEILING)


def ceiling_of(sku: str) -> Decimal:
    """The guard ceiling: the product's max_price."""
    return Decimal(PRODUCTS[sku][3])


def allocation_of(sku: str) -> int:
    """What the ledger lets Amazon show: on hand minus the buffer, never below zero."""
    return max(0, PRODUCTS[sku][4] - BUFFER)


def write_config(tmp_path: Path, base_url: str, **amazon: Any) -> Path:
    """The daemon's YAML: SQLite in tmp_path, one ``kind: amazon`` channel on the mock."""
    extra = "".join(f"    {key}: {value}\n" for key, value in amazon.items())
    text = f"""
database: sqlite:///{tmp_path / "repricerd.db"}
server: {{host: 127.0.0.1, port: 0}}
catalog:
  currency: USD
  import_on_start: {tmp_path / "catalogue.csv"}
channels:
  {CHANNEL}:
    kind: amazon
    endpoint: {base_url}
    auth_endpoint: {base_url}/auth/o2/token
    marketplace_id: {MARKET}
    seller_id: {SELLER}
    credentials:
      client_id: {CLIENT_ID}
      client_secret: ${{E2E_AMZ_CLIENT_SECRET}}
      refresh_token: ${{E2E_AMZ_REFRESH_TOKEN}}
    webhook_secret: ${{E2E_AMZ_WEBHOOK_SECRET}}
{extra}inventory:
  buffer: {BUFFER}
pricing:
  guards:
    min_margin_pct: {MIN_MARGIN_PCT}
    max_step_pct: {MAX_STEP_PCT}
    breaker: {{share_pct: 100}}
  rules:
    - name: win-the-buy-box
      strategy: buy_box
      params: {{position: beat, by_amount: "0.01"}}
"""
    path = tmp_path / "repricerd.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def mock_state(tmp_path: Path, **kwargs: Any) -> AmazonMockState:
    """A mock seller account seeded from the catalogue, with this test's credentials."""
    return AmazonMockState.from_catalog(
        write_catalogue(tmp_path / "catalogue.csv"),
        channel=CHANNEL,
        seller_id=SELLER,
        marketplace_id=MARKET,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
        webhook_secret=WEBHOOK_SECRET,
        **kwargs,
    )


@dataclass
class Served:
    """A running mock: its state (the truth the tests check) and its base URL."""

    state: AmazonMockState
    base_url: str


@asynccontextmanager
async def served(state: AmazonMockState) -> AsyncIterator[Served]:
    """Serve ``state`` on a free loopback port for the duration of the block."""
    runner, base_url = await start(state, "127.0.0.1", 0)
    try:
        yield Served(state, base_url)
    finally:
        await runner.cleanup()


class AdvancingSleep:
    """A sleep that moves the shared manual clock (the daemon's and the mock's) instead."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(max(0.0, seconds))
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is


async def manual_runtime(
    config: LoadedConfig, clock: ManualClock, channels: tuple[str, ...] = (CHANNEL,)
) -> Runtime:
    """What ``start_runtime`` builds (migrate, import the catalogue, open the channels), on a
    manual clock whose sleeps advance it: retries and rate-limit waits take no real time.
    Exactly ``channels`` are opened, without an error."""
    settings = config.settings
    db = Database(settings.database)
    await upgrade(db)
    assert settings.catalog.import_on_start is not None
    await import_catalog(
        db, settings.catalog.import_on_start, clock=clock, known_channels=set(settings.channels)
    )
    metrics = Metrics()
    rt = Runtime(
        config=config,
        db=db,
        clock=clock,
        metrics=metrics,
        redactor=SecretRedactor(),
        http=httpx.AsyncClient(timeout=httpx.Timeout(10.0)),
        outbox=Outbox(db, clock, metrics),
        sleep=AdvancingSleep(clock),
    )
    await rt.open_channels()
    assert rt.channel_errors == dict.fromkeys(channels)
    return rt


def loaded(path: Path) -> LoadedConfig:
    """Load the YAML exactly as ``repricerd run`` does (env references resolved)."""
    return load_config(path)


async def action_rows(db: Database, **where: Any) -> list[Any]:
    """Action rows matching column equality filters, oldest first."""
    query = sa.select(ACTIONS).order_by(ACTIONS.c.id)
    for column, value in where.items():
        query = query.where(ACTIONS.c[column] == value)
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


@asynccontextmanager
async def daemon_server(
    rt: Runtime,
) -> AsyncIterator[tuple[ServerHandle, InboxWorker, asyncio.Queue[str]]]:
    """The daemon's HTTP server, inbox and debounced triggers, wired as ``run_forever`` does;
    each pass a trigger ran is put on the queue. On leaving: triggers, server and ``rt`` closed."""
    passes = Passes(rt)
    done: asyncio.Queue[str] = asyncio.Queue()

    async def reprice(channel: str, skus: frozenset[str]) -> None:
        await passes.run("reprice", [channel], skus)
        done.put_nowait("reprice")

    async def stock(_all: str, skus: frozenset[str]) -> None:
        await passes.run("stock_sync", (), skus)
        done.put_nowait("stock_sync")

    offers, stock_trigger = Debouncer(reprice, 0.0), Debouncer(stock, 0.0)
    inbox = InboxWorker(
        rt,
        on_offer_change=offers.notify,
        on_stock_change=lambda skus: stock_trigger.notify("*", skus),
    )
    server = await start_server(server_context(rt, inbox.wake, passes.request), "127.0.0.1", 0)
    try:
        yield server, inbox, done
    finally:
        for debouncer in (offers, stock_trigger):
            await debouncer.close()
        await server.stop()
        await rt.close()
