"""The e2e eBay set-up: a catalogue, a daemon config, the mock eBay started from that config by
``connectors.mock.servers`` (its serving wrapped to record every API call), and the daemon's
runtime and webhook route wired as ``run_forever`` wires them."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import connectors.mock.servers as servers
from connectors.ebay import EbayChannel
from connectors.mock.ebay.app import make_app
from connectors.mock.ebay.state import EbayMockState
from connectors.mock.servers import RunningMock, start_mocks, stop_mocks
from daemon.app import start_runtime
from daemon.config import LoadedConfig, load_config
from daemon.db.models import StockEvent, WebhookEvent
from daemon.logging import SecretRedactor
from domain.clock import SystemClock
from tests.e2e import harness
from tests.e2e.harness import action_rows as action_rows
from tests.e2e.harness import daemon_once as daemon_once
from tests.e2e.harness import open_actions as open_actions
from tests.e2e.harness import post as post
from tests.e2e.harness import wait_for as wait_for

EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]

CLIENT_ID = "E2eRepri-repricer-PRD-0a1b2c3d4-5e6f7a8b"
SECRET = "PRD-e2e-client-secret-0123456789"
REFRESH = "v^1.1#i^1#p^3#r^1#I^3#f^0#t^Ul4xMF9e2e-refresh-token"
VERIFY = "e2e_verification_token_0123456789abcdefABCDEF"
SELLER = "repricerd_e2e"
BUFFER = 1
CENT = Decimal("0.01")
BULK = "/sell/inventory/v1/bulk_update_price_quantity"
SKUS = 30  # two bulk calls per kind: 25 + 5


Row = tuple[str, Decimal, Decimal, int, str, Decimal]


def catalog_rows(
    cost_bump: dict[str, str] | None = None,
    stock: dict[str, int] | None = None,
    count: int = SKUS,
) -> list[Row]:
    """(sku, cost, fees, stock, offerId, initial eBay price) of the test catalogue."""
    rows = []
    for n in range(count):
        sku = f"E{n:02d}"
        cost = Decimal(10 + n % 40) + Decimal(n % 7) / 4
        cost = Decimal((cost_bump or {}).get(sku, cost))
        units = (stock or {}).get(sku, 1 if n == 5 else 3 + n % 9)
        rows.append((sku, cost, Decimal("1.00"), units, str(7_100_000_000 + n), cost * 2))
    return rows


def target_price(cost: Decimal, fees: Decimal) -> str:
    """cost_plus 30 %: cost × 1.3 + fees, as the string eBay stores."""
    return str((cost * Decimal("1.3") + fees).quantize(CENT, ROUND_HALF_UP))


def write_catalog(path: Path, rows: list[Row]) -> None:
    """The seller's catalogue: products, stock, the eBay offerIds and the mock's seed prices."""
    lines = ["sku,title,currency,cost,fees,min_price,max_price,stock,id:ebay,price:ebay"]
    for sku, cost, fees, units, offer_id, price in rows:
        lines.append(f"{sku},{sku} mug,USD,{cost},{fees},{cost},200.00,{units},{offer_id},{price}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def free_port() -> int:
    """A port nothing listens on right now (the daemon's URL must be known before it starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(tmp: Path, mock_port: int, daemon_port: int, catalog: Path, extra: str) -> Path:
    """A daemon YAML config: SQLite in tmp, one eBay channel at the mock, guards, one rule."""
    path = tmp / "repricerd.yaml"
    endpoint = f"http://127.0.0.1:{mock_port}"
    path.write_text(
        f"""
database: sqlite:///{tmp / "repricerd.db"}
server:
  host: 127.0.0.1
  port: {daemon_port}
channels:
  ebay:
    kind: ebay
    endpoint: {endpoint}
    auth_endpoint: {endpoint}/identity/v1/oauth2/token
    client_id: {CLIENT_ID}
    client_secret: ${{E2E_EBAY_SECRET}}
    refresh_token: ${{E2E_EBAY_REFRESH}}
    verification_token: ${{E2E_EBAY_VERIFY}}
    webhook_endpoint_url: http://127.0.0.1:{daemon_port}/webhooks/ebay
    own_seller_id: {SELLER}
{extra}
inventory:
  buffer: {BUFFER}
pricing:
  guards:
    min_margin_pct: 5
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
class Call:
    """One API request the mock answered."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    answer: Any


LOST_ANSWER_DELAY_S = 0.8  # longer than the request_timeout_s of the lost-answer test


def _recorder(calls: list[Call], slow: Counter[str]) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/_mock"):  # control routes: not eBay's, not recorded
            return await handler(request)
        raw = await request.read()  # cached: the handler reads it again
        response: web.StreamResponse = await handler(request)
        if slow[request.path] > 0:  # applied, but the answer comes after the client gave up
            slow[request.path] -= 1
            await asyncio.sleep(LOST_ANSWER_DELAY_S)
        body = json.loads(raw) if raw and request.content_type == "application/json" else None
        text = getattr(response, "body", None)
        try:
            answer = json.loads(text) if isinstance(text, bytes) and text else None
        except ValueError:
            answer = None
        calls.append(
            Call(request.method, request.path, dict(request.query), body, response.status, answer)
        )
        return response

    return middleware


@dataclass
class Env:
    """The mock eBay started from the daemon's config, and that config."""

    mock: RunningMock
    config: Path
    catalog: Path
    tmp: Path
    daemon_port: int
    calls: list[Call] = field(default_factory=list)
    skus: int = SKUS
    slow: Counter[str] = field(default_factory=Counter)  # path -> answers to lose

    @property
    def state(self) -> EbayMockState:
        """The mock's state (same process: read directly)."""
        state: EbayMockState = self.mock.state
        return state

    def loaded(self) -> LoadedConfig:
        """The daemon's config, loaded as ``repricerd`` loads it."""
        return load_config(self.config)

    def bulk_calls(self) -> list[Call]:
        """Every ``bulkUpdatePriceQuantity`` the mock answered, in order."""
        return [c for c in self.calls if c.path == BULK]

    def listing(self, sku: str) -> tuple[str, int, int, int]:
        """(price string, listing quantity, offer availableQuantity, ship-to-home quantity)."""
        offer = self.state.offers_of(sku)[0]
        listing = self.state.listing(sku)
        assert listing is not None
        return (
            str(listing.price.quantize(CENT)),
            listing.quantity,
            offer.available_quantity,
            self.state.items[sku].ship_to_quantity,
        )

    def revisions(self, sku: str) -> int:
        """Revisions the mock counted today for the listing of ``sku``."""
        return self.state.revisions_today(self.state.offers_of(sku)[0].listing_id)


async def make_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "", skus: int = SKUS
) -> AsyncIterator[Env]:
    """Catalogue, config and the mock eBay started from it by ``start_mocks``."""
    catalog = tmp_path / "catalog.csv"
    write_catalog(catalog, catalog_rows(count=skus))
    monkeypatch.setenv("E2E_EBAY_SECRET", SECRET)
    monkeypatch.setenv("E2E_EBAY_REFRESH", REFRESH)
    monkeypatch.setenv("E2E_EBAY_VERIFY", VERIFY)
    daemon_port = free_port()
    config = write_config(tmp_path, free_port(), daemon_port, catalog, extra)
    calls: list[Call] = []
    slow: Counter[str] = Counter()

    async def recording_start(
        state: EbayMockState, host: str = "127.0.0.1", port: int = 0
    ) -> tuple[web.AppRunner, str]:
        app = make_app(state)
        app.middlewares.append(_recorder(calls, slow))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        return runner, f"http://{host}:{runner.addresses[0][1]}"

    # The servers module's own eBay starter builds the state from the channel's config; only
    # the serving is wrapped, to record what the daemon sent.
    ebay = replace(servers.KINDS["ebay"], start=recording_start)
    monkeypatch.setitem(servers.KINDS, "ebay", ebay)
    loaded = load_config(config)
    [mock] = await start_mocks(
        loaded.settings.channels, catalog=catalog, webhook_base=f"http://127.0.0.1:{daemon_port}"
    )
    try:
        yield Env(mock, config, catalog, tmp_path, daemon_port, calls, skus, slow)
    finally:
        await stop_mocks([mock])


def assert_converged(env: Env) -> None:
    """Every listing shows the cost_plus price and the ledger's allocation (stock − buffer),
    on the offer and on the inventory item both."""
    for sku, cost, fees, units, _offer, _price in catalog_rows(count=env.skus):
        wanted = max(0, units - BUFFER)
        assert env.listing(sku) == (target_price(cost, fees), wanted, wanted, wanted), sku


def sent_entries(env: Env) -> list[dict[str, Any]]:
    """Every ``requests[]`` entry sent in bulk calls."""
    return [entry for call in env.bulk_calls() for entry in call.body["requests"]]


class Daemon(harness.Daemon):
    """The harness daemon, with its eBay connector at hand."""

    @property
    def channel(self) -> EbayChannel:
        """The daemon's eBay connector instance."""
        channel = self.rt.channels["ebay"]
        assert isinstance(channel, EbayChannel)
        return channel


async def started(env: Env, *, serve: bool = False) -> Daemon:
    """The daemon started on the env's config (import, channels opened), optionally serving."""
    config = env.loaded()
    rt = await start_runtime(config, SecretRedactor(config.secrets), SystemClock())
    daemon = Daemon(rt)
    if serve:
        await daemon.serve(env.daemon_port)
    return daemon
