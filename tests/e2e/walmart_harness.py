"""The real daemon against the mock Walmart Marketplace on loopback: config, catalogue, harness.

The mock is started by ``connectors.mock.servers`` (the ``walmart`` starter) on port 0, seeded
from a small catalogue with the channel's own credentials; the daemon gets a YAML config whose
``kind: walmart`` channel points at it, secrets via ``${ENV}``. ``Daemon`` is the long-running
daemon's wiring (runtime, passes, webhook server, inbox worker) as ``daemon.app.run_forever``
builds it, minus the scheduler and signal handling, so a test can drive passes one by one.
"""

from __future__ import annotations

import asyncio
import csv
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.mock.servers import STARTERS, RunningMock
from connectors.mock.walmart.state import WalmartMockState
from connectors.retry import RetryPolicy
from connectors.walmart import WalmartChannel
from daemon.app import Passes, start_runtime
from daemon.catalog import import_catalog
from daemon.config import LoadedConfig, load_config
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import Action, ActionKind, ActionStatus, OfferSnapshot, WebhookEvent
from daemon.inbox import InboxWorker
from daemon.intents import PlannedWrite, new_idempotency_key
from daemon.logging import SecretRedactor
from daemon.runtime import Runtime
from daemon.server import ServerContext, ServerHandle, start_server
from daemon.stock import available_units, load_kits
from domain.clock import SystemClock

ACTIONS = Action.__table__  # type: ignore[attr-defined]
SNAPSHOTS = OfferSnapshot.__table__  # type: ignore[attr-defined]
INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
CHANNEL = "walmart"
CLIENT_ID = "e2e-walmart-client-id"
CLIENT_SECRET = "e2e-walmart-client-secret-value"
HOOK_SECRET = "e2e-walmart-webhook-secret-value"
PARTNER_ID = "10001234567"
# Retries without real multi-second backoffs (the daemon builds channels with the default).
FAST_RETRY = RetryPolicy(attempts=6, deadline_s=30.0, backoff_base_s=0.01, backoff_max_s=0.05)


def free_port() -> int:
    """A free loopback port (for the daemon's webhook server, which the mock must know)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_catalog(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    """A catalogue CSV with Walmart item ids, seeded prices and stock counts."""
    columns = ["sku", "title", "currency", "cost", "fees", "min_price", "max_price", "stock"]
    columns.append(f"id:{CHANNEL}")
    columns.append(f"price:{CHANNEL}")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for n, row in enumerate(rows):
            writer.writerow(
                {
                    "sku": row["sku"],
                    "title": f"Item {row['sku']}",
                    "currency": "USD",
                    "cost": row["cost"],
                    "fees": "0.00",
                    "min_price": "1.00",
                    "max_price": row.get("max_price", "500.00"),
                    "stock": row["stock"],
                    f"id:{CHANNEL}": str(700000000 + n),
                    f"price:{CHANNEL}": row["price"],
                }
            )
    return path


GUARDS = """\
    min_margin_pct: 0
    max_step_pct: 100
    max_daily_move_pct: 100
    reference_band_pct: 1000
    breaker: {share_pct: 100}
"""


def config_text(
    tmp: Path,
    endpoint: str,
    daemon_port: int,
    *,
    margin_pct: int = 30,
    guards: str = GUARDS,
    sections: str = "",
    **channel: Any,
) -> str:
    """The daemon's YAML: SQLite in ``tmp``, one ``kind: walmart`` channel, rules and guards
    (``guards``: the lines under ``pricing.guards``; ``sections``: more top-level YAML)."""
    extra = "".join(f"    {key}: {value}\n" for key, value in channel.items())
    return f"""{sections}
database: sqlite:///{tmp / "e2e.db"}
server: {{host: 127.0.0.1, port: {daemon_port}}}
channels:
  {CHANNEL}:
    kind: walmart
    endpoint: {endpoint}
    auth_endpoint: {endpoint}/v3/token
    client_id: {CLIENT_ID}
    client_secret: ${{E2E_WALMART_CLIENT_SECRET}}
    seller_id: "{PARTNER_ID}"
    webhook_secret: ${{E2E_WALMART_WEBHOOK_SECRET}}
    feed_poll_interval_s: 0.05
    feed_timeout_s: 30
{extra}
inventory:
  buffer: 1
pricing:
  guards:
{guards}  rules:
    - strategy: cost_plus
      params: {{margin_pct: {margin_pct}}}
"""


@dataclass
class Setup:
    """A started mock and the daemon config pointing at it."""

    mock: RunningMock
    config: LoadedConfig
    catalog: Path
    daemon_port: int

    @property
    def state(self) -> WalmartMockState:
        """The mock's state (prices, quantities, calls, 429s, events)."""
        state: WalmartMockState = self.mock.state
        return state


async def start_setup(
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[dict[str, Any]],
    *,
    margin_pct: int = 30,
    guards: str = GUARDS,
    sections: str = "",
    **channel: Any,
) -> Setup:
    """Write the catalogue and config, start the mock (port 0) and import the catalogue."""
    monkeypatch.setenv("E2E_WALMART_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("E2E_WALMART_WEBHOOK_SECRET", HOOK_SECRET)
    catalog = write_catalog(tmp / "catalog.csv", rows)
    port = free_port()
    path = tmp / "repricerd.yaml"
    # The starter needs the channel's settings (credentials, secret); the endpoint is known
    # only once the mock is listening, so the config is written twice.
    path.write_text(
        config_text(
            tmp,
            "http://127.0.0.1:9",
            port,
            margin_pct=margin_pct,
            guards=guards,
            sections=sections,
            **channel,
        )
    )
    cfg = load_config(path).settings.channels[CHANNEL]
    hook = f"http://127.0.0.1:{port}/webhooks/{CHANNEL}"
    mock = await STARTERS["walmart"](CHANNEL, cfg, catalog, hook, 0)
    state: WalmartMockState = mock.state
    state.feed_processing_s = 0.1  # Walmart's is minutes; the timeline is the same
    state.webhook_retry_s = 0.05  # a delivery the daemon misses (stopped) does not hold cleanup
    path.write_text(
        config_text(
            tmp,
            mock.base_url,
            port,
            margin_pct=margin_pct,
            guards=guards,
            sections=sections,
            **channel,
        )
    )
    loaded = load_config(path)
    db = Database(loaded.settings.database)
    try:
        await upgrade(db)
        await import_catalog(db, catalog, clock=SystemClock(), known_channels={CHANNEL})
    finally:
        await db.dispose()
    return Setup(mock, loaded, catalog, port)


@dataclass
class Daemon:
    """The long-running daemon's parts, driven by the test."""

    rt: Runtime
    passes: Passes
    inbox: InboxWorker
    server: ServerHandle
    offer_changes: list[set[str]] = field(default_factory=list)
    stock_passes: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def channel(self) -> WalmartChannel:
        """The real Walmart connector the runtime opened."""
        channel = self.rt.channels[CHANNEL]
        assert isinstance(channel, WalmartChannel)
        return channel

    async def settle(self) -> None:
        """Wait for the inbox and the stock passes it triggered."""
        await self.inbox.drain()
        while self.stock_passes:
            await self.stock_passes.pop()

    async def stop(self) -> None:
        """Stop the server, finish what it stored, then close the runtime."""
        # The mock pushes events in the background: stop taking them before draining the inbox,
        # or a late delivery starts an inbox round on a database being closed.
        await self.server.stop()
        await self.settle()
        await self.rt.close()


async def start_daemon(setup: Setup, *, fast_retry: bool = True) -> Daemon:
    """Start the runtime, webhook server and inbox worker as ``run_forever`` wires them."""
    rt = await start_runtime(setup.config, SecretRedactor(setup.config.secrets), SystemClock())
    if fast_retry:
        channel = rt.channels[CHANNEL]
        assert isinstance(channel, WalmartChannel)
        channel.client.policy = FAST_RETRY
    passes = Passes(rt)
    holder: list[Daemon] = []

    def on_stock(skus: set[str]) -> None:
        # As run_forever: an order republishes the SKUs concerned at once.
        task = asyncio.create_task(passes.run("stock_sync", (), frozenset(skus)))
        holder[0].stock_passes.append(task)

    inbox = InboxWorker(
        rt,
        on_offer_change=lambda _channel, skus: holder[0].offer_changes.append(set(skus)),
        on_stock_change=on_stock,
    )
    ctx = ServerContext(
        db=rt.db,
        metrics=rt.metrics,
        clock=rt.clock,
        channels=lambda: rt.channels,
        channel_errors=lambda: rt.channel_errors,
        webhook_max_bytes=lambda: rt.settings.server.webhook_max_bytes,
        sync_token=lambda: None,
        on_webhook_stored=inbox.wake,
        request_pass=passes.request,
        shutting_down=lambda: False,
    )
    server = await start_server(ctx, "127.0.0.1", setup.daemon_port)
    daemon = Daemon(rt, passes, inbox, server)
    holder.append(daemon)
    return daemon


async def actions(db: Database, kind: ActionKind) -> list[Any]:
    """Every action row of ``kind`` on the channel, oldest first."""
    async with db.read() as conn:
        query = (
            sa.select(ACTIONS)
            .where(ACTIONS.c.channel == CHANNEL, ACTIONS.c.kind == kind.value)
            .order_by(ACTIONS.c.id)
        )
        return list((await conn.execute(query)).all())


async def ledger(db: Database) -> dict[str, int]:
    """Available units per SKU from the stock ledger."""
    async with db.read() as conn:
        return await available_units(conn, await load_kits(conn), None)


async def inbox_outcomes(db: Database) -> list[tuple[str, str | None, str | None]]:
    """(topic, outcome, error) of every stored webhook delivery of the channel."""
    async with db.read() as conn:
        query = sa.select(INBOX.c.topic, INBOX.c.outcome, INBOX.c.error).where(
            INBOX.c.channel == CHANNEL
        )
        return [tuple(row) for row in (await conn.execute(query)).all()]


async def snapshots(db: Database, sku: str) -> list[Any]:
    """Offer snapshots stored for ``sku``."""
    async with db.read() as conn:
        query = sa.select(SNAPSHOTS).where(SNAPSHOTS.c.channel == CHANNEL, SNAPSHOTS.c.sku == sku)
        return list((await conn.execute(query)).all())


def price_intent(
    sku: str, old: Decimal | None, new: Decimal, now: datetime, pass_id: str
) -> PlannedWrite:
    """A planned price intent, as a reprice pass records it."""
    return PlannedWrite(
        pass_id=pass_id,
        kind=ActionKind.PRICE,
        channel=CHANNEL,
        sku=sku,
        status=ActionStatus.PLANNED,
        old_price=old,
        new_price=new,
        currency="USD",
        reason="e2e",
        idempotency_key=new_idempotency_key(),
        created_at=now,
    )
