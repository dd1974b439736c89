"""The status view: states and their precedence, inbox, intents, 24-hour counts, pass successes,
``GET /status``, the gauges of ``/metrics`` and ``repricerd status``."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from rich.console import Console

from daemon.cli import main
from daemon.config import UNRESOLVED, load_config
from daemon.controls import pause, record_health, trip_breaker
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import ChannelHealth, PassSuccess
from daemon.metrics import Metrics
from daemon.passes import run_named_pass
from daemon.server import ServerContext, ServerHandle, _is_loopback, start_server
from daemon.status import State, read_status, record_pass_success, render_status
from domain.clock import ManualClock
from domain.errors import ConfigError
from tests.daemon_fixtures import make_runtime, seed, settings
from tests.status_fixtures import action, delivery

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "status-token-123456"


async def _healthy(db: Database, clock: ManualClock, *names: str) -> None:
    for name in names:
        await record_health(db, clock, channel=name, error=None)


async def test_states_follow_their_precedence(db: Database, clock: ManualClock) -> None:
    """paused > breaker_tripped > auth_failed > degraded > ok; never opened is unknown."""
    await _healthy(db, clock, "ok", "paused", "tripped")
    await record_health(
        db, clock, channel="refused", error="401 invalid_client", health=ChannelHealth.AUTH_FAILED
    )
    await record_health(db, clock, channel="slow", error="timeout")
    opened = clock.now()
    clock.advance(60)
    await trip_breaker(db, clock, channel="paused", reason="moves")
    await pause(db, clock, channel="paused", reason="maintenance")
    await trip_breaker(db, clock, channel="tripped", reason="30% of listings moved")
    tripped_at = clock.now()
    clock.advance(60)
    await trip_breaker(db, clock, channel="tripped", reason="again")  # keeps its first time
    snap = await read_status(
        db, ["ok", "paused", "tripped", "refused", "slow", "never"], clock.now()
    )
    states = {c.channel: (c.state, c.since, c.reason) for c in snap.channels}
    assert states == {
        "ok": (State.OK, opened, None),
        "paused": (State.PAUSED, tripped_at, "maintenance"),
        "tripped": (State.BREAKER_TRIPPED, tripped_at, "again"),
        "refused": (State.AUTH_FAILED, opened, "401 invalid_client"),
        "slow": (State.DEGRADED, opened, "timeout"),
        "never": (State.UNKNOWN, None, "never opened"),
    }
    assert not snap.ok
    assert (await read_status(db, ["ok"], clock.now())).ok


async def test_a_global_pause_pauses_every_channel(db: Database, clock: ManualClock) -> None:
    """``repricerd pause`` without a channel shows every channel paused, since that time."""
    await _healthy(db, clock, "alpha")
    await pause(db, clock, channel=None, reason="stop everything")
    snap = await read_status(db, ["alpha"], clock.now())
    alpha = snap.by_name["alpha"]
    assert (alpha.state, alpha.since, alpha.reason, alpha.paused) == (
        State.PAUSED,
        clock.now(),
        "all channels: stop everything",
        True,
    )


async def test_inbox_intents_and_24h_counts(db: Database, clock: ManualClock) -> None:
    """Backlog and oldest delivery, open intents, invalid/ignored/unknown deliveries with the
    newest reasons, NOT_APPLIED and failed writes, each per channel and within 24 hours."""
    now = clock.now()
    await _healthy(db, clock, "alpha", "beta")
    await delivery(db, "alpha", now - timedelta(minutes=7))
    await delivery(db, "alpha", now - timedelta(minutes=1))
    await delivery(db, "beta", now - timedelta(hours=2), processed_at=now, outcome="applied")
    for minutes in (50, 40, 30, 20):
        await delivery(
            db,
            "alpha",
            now - timedelta(minutes=minutes),
            processed_at=now - timedelta(minutes=minutes),
            outcome="invalid",
            error=f"ValueError: bad {minutes}",
        )
    await delivery(
        db,
        "alpha",
        now - timedelta(days=2),
        processed_at=now - timedelta(days=2),
        outcome="invalid",
    )
    await delivery(db, "alpha", now, processed_at=now, outcome="ignored")
    await delivery(db, "beta", now, processed_at=now, outcome="unknown")
    await action(db, "alpha", "A", "planned", now)
    await action(db, "alpha", "B", "sent", now)
    await action(db, "beta", "A", "confirmed", now)
    await action(db, "alpha", "C", "failed", now, code="NOT_APPLIED")
    await action(db, "alpha", "D", "failed", now, code="INVALID_PRICE")
    await action(db, "alpha", "E", "failed", now - timedelta(days=2), code="NOT_APPLIED")
    snap = await read_status(db, ["alpha", "beta"], now)
    alpha, beta = snap.by_name["alpha"], snap.by_name["beta"]
    assert (alpha.inbox_backlog, alpha.inbox_oldest_at) == (2, now - timedelta(minutes=7))
    assert alpha.inbox_oldest_seconds(now) == 420
    assert (beta.inbox_backlog, beta.inbox_oldest_at, beta.inbox_oldest_seconds(now)) == (
        0,
        None,
        0,
    )
    assert (alpha.open_intents, beta.open_intents) == (2, 0)
    assert (alpha.invalid_24h, alpha.ignored_24h, alpha.unknown_sku_24h) == (4, 1, 0)
    assert (beta.invalid_24h, beta.ignored_24h, beta.unknown_sku_24h) == (0, 0, 1)
    assert [r["reason"] for r in alpha.invalid_reasons] == [
        "ValueError: bad 20",
        "ValueError: bad 30",
        "ValueError: bad 40",
    ]
    assert (alpha.not_applied_24h, alpha.failed_24h) == (1, 1)
    assert (beta.not_applied_24h, beta.failed_24h) == (0, 0)
    light = await read_status(db, ["alpha"], now, full=False)
    assert light.by_name["alpha"].invalid_24h == 0
    assert "deliveries_24h" not in light.as_dict()["channels"]["alpha"]
    data = snap.as_dict()["channels"]["alpha"]
    assert data["inbox"] == {
        "backlog": 2,
        "oldest_at": (now - timedelta(minutes=7)).isoformat(),
        "oldest_seconds": 420.0,
    }
    assert data["writes_24h"] == {"not_applied": 1, "failed": 1}


async def test_passes_record_their_last_success_at_most_every_30s(
    db: Database, clock: ManualClock
) -> None:
    """A channel's successful step records its pass; repeats within 30 s write nothing; a
    paused (skipped) reprice is no success."""
    rt = await make_runtime(db, clock, settings())
    try:
        await seed(
            db,
            clock,
            rt,
            [{"sku": "A", "cost": Decimal(5), "min_price": Decimal(6), "max_price": Decimal(20)}],
        )
        first = clock.now()
        await run_named_pass(rt, "reconcile", "p1")
        await run_named_pass(rt, "stock_sync", "p2")
        clock.advance(10)
        await run_named_pass(rt, "reconcile", "p3")
        snap = await read_status(db, ["alpha", "beta"], clock.now())
        assert snap.by_name["alpha"].last_success == {
            "reconcile": first,
            "reprice": None,
            "stock_sync": first,
            "offers": None,
            "orders": None,
            "inventory": None,
        }
        clock.advance(25)
        await run_named_pass(rt, "reconcile", "p4")
        await pause(db, clock, channel="beta", reason="x")
        await run_named_pass(rt, "reprice", "p5")
        snap = await read_status(db, ["alpha", "beta"], clock.now())
        assert snap.by_name["alpha"].last_success["reconcile"] == clock.now()
        assert snap.by_name["alpha"].last_success["reprice"] == clock.now()
        assert snap.by_name["beta"].last_success["reprice"] is None
        table = PassSuccess.__table__  # type: ignore[attr-defined]
        async with db.read() as conn:
            rows = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar()
        assert rows == 5  # alpha and beta: reconcile, stock_sync; alpha: reprice
    finally:
        await rt.close()


# -- HTTP -------------------------------------------------------------------------------------


@pytest.fixture
async def served(db: Database, clock: ManualClock) -> AsyncIterator[tuple[ServerHandle, Any]]:
    """The daemon's server over ``db`` with channels alpha and beta; token settable."""
    token: list[SecretStr | None] = [None]
    ctx = ServerContext(
        db=db,
        metrics=Metrics(),
        clock=clock,
        channels=lambda: dict.fromkeys(("alpha", "beta")),  # type: ignore[arg-type]
        channel_errors=dict,
        webhook_max_bytes=lambda: 4096,
        sync_token=lambda: token[0],
        on_webhook_stored=lambda _name: None,
        request_pass=lambda *_: asyncio.sleep(0, "x"),
        shutting_down=lambda: False,
    )
    handle = await start_server(ctx, "127.0.0.1", 0)
    try:
        yield handle, token
    finally:
        await handle.stop()


async def test_status_route_needs_the_token_or_loopback(
    db: Database, clock: ManualClock, served: tuple[ServerHandle, Any]
) -> None:
    """Without a token /status answers on loopback; with one it wants it as bearer."""
    handle, token = served
    await _healthy(db, clock, "alpha")
    await record_health(
        db, clock, channel="beta", error="refused", health=ChannelHealth.AUTH_FAILED
    )
    url = f"http://127.0.0.1:{handle.port}/status"
    async with httpx.AsyncClient() as http:
        open_answer = await http.get(url)
        token[0] = SecretStr(TOKEN)
        refused = await http.get(url)
        wrong = await http.get(url, headers={"Authorization": "Bearer nope"})
        allowed = await http.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert open_answer.status_code == 200
    assert (refused.status_code, wrong.status_code, allowed.status_code) == (401, 401, 200)
    body = allowed.json()
    assert body["ok"] is False
    assert body["at"] == clock.now().isoformat()
    assert {name: c["state"] for name, c in body["channels"].items()} == {
        "alpha": "ok",
        "beta": "auth_failed",
    }
    assert body["channels"]["beta"]["reason"] == "refused"
    assert body["channels"]["alpha"]["deliveries_24h"]["invalid"] == 0
    assert (_is_loopback("::1"), _is_loopback("10.0.0.7"), _is_loopback(None)) == (
        True,
        False,
        False,
    )


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_are_right_from_the_first_scrape(
    db: Database, clock: ManualClock, served: tuple[ServerHandle, Any]
) -> None:
    """Open intents, inbox, breaker, pause, state and last success come from the database at
    the first scrape, before any pass ran in this process."""
    handle, _token = served
    now = clock.now()
    await _healthy(db, clock, "alpha", "beta")
    await trip_breaker(db, clock, channel="beta", reason="moves")
    for sku in ("A", "B", "C"):
        await action(db, "alpha", sku, "planned", now)
    await delivery(db, "beta", now - timedelta(seconds=90))
    await record_pass_success(db, clock, channel="alpha", pass_name="reprice")
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{handle.port}/metrics")).text
    samples = _samples(text)

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert value("repricerd_open_intents", channel="alpha") == 3
    assert value("repricerd_open_intents", channel="beta") == 0
    assert value("repricerd_channel_up", channel="alpha") == 1
    assert value("repricerd_channel_up", channel="beta") == 0
    assert value("repricerd_breaker_tripped", channel="beta") == 1
    assert value("repricerd_breaker_tripped", channel="alpha") == 0
    assert value("repricerd_paused", channel="alpha") == 0
    assert value("repricerd_channel_state", channel="beta", state="breaker_tripped") == 1
    assert value("repricerd_channel_state", channel="beta", state="ok") == 0
    assert value("repricerd_inbox_backlog", channel="beta") == 1
    assert value("repricerd_inbox_oldest_seconds", channel="beta") == 90
    assert value("repricerd_inbox_oldest_seconds", channel="alpha") == 0
    assert (
        value("repricerd_last_success_timestamp_seconds", channel="alpha", **{"pass": "reprice"})
        == now.timestamp()
    )
    assert not any(name == "repricerd_channel_paused" for name, _ in samples)


# -- CLI --------------------------------------------------------------------------------------


@pytest.fixture
def demo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo config with its own SQLite file and none of the channels' secrets set."""
    shutil.copy(ROOT / "config" / "repricerd.yaml", tmp_path / "repricerd.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPRICERD_DATABASE", f"sqlite:///{tmp_path / 'status.db'}")
    monkeypatch.setenv("REPRICERD_LOG_LEVEL", "warning")
    for name in [n for n in os.environ if n.startswith("DEMO_")]:
        monkeypatch.delenv(name)
    return tmp_path


DEMO_CHANNELS = ("amazon-demo", "shop-demo", "walmart-demo", "ebay-demo")


def _prepare(path: Path, clock: ManualClock, refused: str | None) -> None:
    async def go() -> None:
        db = Database(f"sqlite:///{path / 'status.db'}")
        try:
            await upgrade(db)
            for name in DEMO_CHANNELS:
                if name == refused:
                    await record_health(
                        db,
                        clock,
                        channel=name,
                        error="invalid_client",
                        health=ChannelHealth.AUTH_FAILED,
                    )
                else:
                    await record_health(db, clock, channel=name, error=None)
        finally:
            await db.dispose()

    asyncio.run(go())


def test_status_command_table_and_json_without_secrets(
    demo_dir: Path, clock: ManualClock, restore_logging: None
) -> None:
    """`repricerd status` reads the database with the daemon stopped and no channel secrets:
    exit 0 when all are ok, 3 when one is not; the table keeps every column."""
    runner = CliRunner()
    _prepare(demo_dir, clock, refused=None)
    ok = runner.invoke(main, ["status", "-c", "repricerd.yaml"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    for header in ("channel", "state", "last success", "inbox", "open intents", "writes 24h"):
        assert header in ok.stdout
    assert "all channels ok" in ok.stdout
    _prepare(demo_dir, clock, refused="shop-demo")
    bad = runner.invoke(
        main, ["status", "--format", "json"], env={"REPRICERD_CONFIG": "repricerd.yaml"}
    )
    assert bad.exit_code == 3, bad.output
    body = json.loads(bad.stdout)
    assert {name: c["state"] for name, c in body["channels"].items()} == {
        "amazon-demo": "ok",
        "shop-demo": "auth_failed",
        "walmart-demo": "ok",
        "ebay-demo": "ok",
    }
    table = runner.invoke(main, ["status", "-c", "repricerd.yaml"], catch_exceptions=False)
    assert table.exit_code == 3
    assert "not ok: shop-demo" in table.stdout
    assert "invalid_client" in table.stdout


@pytest.mark.parametrize("width", [60, 100, 200])
async def test_the_table_fits_the_terminal_with_every_column(
    db: Database, clock: ManualClock, width: int
) -> None:
    """However narrow the console, every line fits it and all eight columns are there."""
    await record_health(
        db,
        clock,
        channel="amazon-us",
        error="ChannelAuthError: [/invalid_client] [bold]Client authentication failed " * 3,
        health=ChannelHealth.AUTH_FAILED,
    )
    snap = await read_status(db, ["amazon-us", "ebay-us"], clock.now())
    console = Console(width=width, record=True, file=io.StringIO())
    render_status(snap, console)
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines)
    assert lines[0].count("┳") == 7
    text = "".join(lines)
    assert "amazon" in text
    assert "ebay" in text
    if width == 200:  # wide enough to keep the message on one line: brackets shown as sent
        assert "ChannelAuthError: [/invalid_client] [bold]Client" in text


def test_read_only_commands_load_the_config_without_channel_secrets() -> None:
    """resolve_secrets=False turns unset ${ENV} references into a placeholder instead of an
    error (the set ones, such as the database password, are still resolved)."""
    path = ROOT / "config" / "production.example.yaml"
    env = {"REPRICERD_PG_PASSWORD": "pg-password-1"}
    with pytest.raises(ConfigError, match="AMZ_CLIENT_SECRET is not set"):
        load_config(path, environ=env)
    loaded = load_config(path, environ=env, resolve_secrets=False)
    assert loaded.settings.database.startswith("postgresql://repricerd:pg-password-1@")
    amazon = loaded.settings.channels["amazon-us"]
    assert amazon.kind == "amazon"
    assert amazon.credentials.client_secret.get_secret_value() == UNRESOLVED
    assert loaded.secrets == ("pg-password-1",)
