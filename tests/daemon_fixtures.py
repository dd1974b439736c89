"""Build a Runtime on the in-memory mock channel for daemon tests (no network, manual clock)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from connectors.mock.market import MockListing, MockMarket, make_competitors
from daemon.config import LoadedConfig
from daemon.db.engine import Database
from daemon.db.models import Action, ChannelState, Listing, Product, StockEvent
from daemon.logging import SecretRedactor
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.runtime import Runtime
from daemon.server import ServerContext
from daemon.settings import Settings
from domain.clock import ManualClock
from domain.listings import Fulfillment

ACTIONS = Action.__table__  # type: ignore[attr-defined]
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
PRODUCTS = Product.__table__  # type: ignore[attr-defined]
EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
STATES = ChannelState.__table__  # type: ignore[attr-defined]


def settings(channels: Mapping[str, Mapping[str, Any]] | None = None, **sections: Any) -> Settings:
    """Settings with mock channels and a cost_plus default rule unless told otherwise."""
    data: dict[str, Any] = {
        "channels": channels or {"alpha": {"kind": "mock"}, "beta": {"kind": "mock"}},
        "pricing": {"rules": [{"strategy": "cost_plus", "params": {"margin_pct": 30}}]},
    }
    data.update(sections)
    return Settings.model_validate(data)


def loaded(config: Settings, path: Path | None = None) -> LoadedConfig:
    """Wrap settings as if loaded from ``path``."""
    path = path or Path("test.yaml")
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "none"
    return LoadedConfig(settings=config, path=path, digest=digest, secrets=())


async def make_runtime(
    db: Database, clock: ManualClock, config: Settings, path: Path | None = None
) -> Runtime:
    """A Runtime over ``db`` with the configured mock channels opened."""
    metrics = Metrics()
    rt = Runtime(
        config=loaded(config, path),
        db=db,
        clock=clock,
        metrics=metrics,
        redactor=SecretRedactor(),
        http=httpx.AsyncClient(),
        outbox=Outbox(db, clock, metrics),
    )
    await rt.open_channels()
    return rt


async def seed(
    db: Database,
    clock: ManualClock,
    rt: Runtime,
    products: list[dict[str, Any]],
    listed_on: tuple[str, ...] = ("alpha", "beta"),
) -> None:
    """Create products (with optional stock counts) and matching listings on the mock markets."""
    now = clock.now()
    async with db.write() as conn:
        for p in products:
            await conn.execute(
                sa.insert(PRODUCTS).values(
                    sku=p["sku"],
                    currency="USD",
                    cost=p.get("cost"),
                    fees=p.get("fees"),
                    min_price=p.get("min_price"),
                    max_price=p.get("max_price"),
                    tags=p.get("tags", []),
                    kit_components={},
                    created_at=now,
                    updated_at=now,
                )
            )
            if "stock" in p:
                await conn.execute(
                    sa.insert(EVENTS).values(
                        sku=p["sku"],
                        kind="count",
                        delta=p["stock"],
                        counted=p["stock"],
                        external_ref=f"seed:{p['sku']}",
                        occurred_at=now,
                        recorded_at=now,
                    )
                )
    for name in listed_on:
        channel = rt.channels[name]
        market: MockMarket = channel.market  # type: ignore[attr-defined]
        rivals = channel.settings.competitors  # type: ignore[attr-defined]
        for p in products:
            price = p.get("price", Decimal("20.00"))
            market.competitors[p["sku"]] = make_competitors(
                p["sku"], price, rivals, random.Random(f"{name}:{p['sku']}")
            )
            market.listings[p["sku"]] = MockListing(
                sku=p["sku"],
                external_id=f"{name}-{p['sku']}",
                price=p.get("price", Decimal("20.00")),
                currency="USD",
                quantity=p.get("live_quantity", 0),
                fulfillment=p.get("fulfillment", Fulfillment.MERCHANT),
            )


async def actions(db: Database, **where: Any) -> list[Any]:
    """Action rows matching column equality filters, oldest first."""
    query = sa.select(ACTIONS).order_by(ACTIONS.c.id)
    for column, value in where.items():
        query = query.where(ACTIONS.c[column] == value)
    async with db.read() as conn:
        return list((await conn.execute(query)).all())


async def listing(db: Database, channel: str, sku: str) -> Any:
    """One listing row."""
    async with db.read() as conn:
        return (
            await conn.execute(
                sa.select(LISTINGS).where(LISTINGS.c.channel == channel, LISTINGS.c.sku == sku)
            )
        ).one()


def demo_env() -> dict[str, str]:
    """The demo's mock-marketplace credentials, exactly as the Makefile exports them."""
    env = {}
    for line in (Path(__file__).resolve().parents[1] / "Makefile").read_text().splitlines():
        if line.startswith("export DEMO_"):
            name, _, value = line.removeprefix("export ").partition(" ?= ")
            env[name] = value
    return env


def server_context(
    rt: Runtime,
    on_webhook_stored: Callable[[str], None],
    request_pass: Callable[[str, tuple[str, ...], tuple[str, ...]], Awaitable[str]] | None = None,
    webhook_max_bytes: int = 262144,
) -> ServerContext:
    """The HTTP server's view of ``rt``, as ``run_forever`` wires it (no sync token)."""

    async def no_pass(name: str, _channels: tuple[str, ...], _skus: tuple[str, ...]) -> str:
        raise AssertionError(f"this test requests no pass ({name})")

    return ServerContext(
        db=rt.db,
        metrics=rt.metrics,
        clock=rt.clock,
        channels=lambda: rt.channels,
        channel_errors=lambda: rt.channel_errors,
        webhook_max_bytes=lambda: webhook_max_bytes,
        sync_token=lambda: None,
        on_webhook_stored=on_webhook_stored,
        request_pass=request_pass or no_pass,
        shutting_down=lambda: False,
    )


async def channel_states(db: Database) -> list[dict[str, object]]:
    """Every ``channel_state`` row as a dict, ordered by channel."""
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(STATES).order_by(STATES.c.channel))).mappings().all()
    return [dict(row) for row in rows]
