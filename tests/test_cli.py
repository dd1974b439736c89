"""The command line, end to end on a temporary SQLite file: import, run --once, read the log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from daemon.cli import main
from daemon.db.migrate import head_revision
from tests.daemon_fixtures import demo_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory with the demo config pointing at absolute paths and its own DB."""
    text = (ROOT / "config" / "repricerd.yaml").read_text()
    text = text.replace("config/demo-catalog.csv", str(ROOT / "config" / "demo-catalog.csv"))
    # Free ports: a `make run` on this machine (or another test) may hold the demo's.
    for demo_port in ("8101", "8102", "8103", "8104", "8080", "8081"):
        text = text.replace(f"127.0.0.1:{demo_port}", f"127.0.0.1:{free_port()}")
        text = text.replace(f"port: {demo_port}", f"port: {free_port()}")
    (tmp_path / "repricerd.yaml").write_text(text)
    for name, value in demo_env().items():  # the demo's mock credentials, as `make run` sets
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPRICERD_DATABASE", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("REPRICERD_LOG_LEVEL", "warning")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield tmp_path
    # The CLI configures logging onto CliRunner's streams; give later tests theirs back.
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str) -> tuple[int, str, str]:
    """Invoke the CLI in-process; return (exit code, stdout, stderr)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_import_run_once_history_explain_simulate(workdir: Path) -> None:
    """The operator's path: import a catalogue, run once, then read what happened."""
    code, out, _ = run("import", "-c", "repricerd.yaml", str(ROOT / "config" / "demo-catalog.csv"))
    assert code == 0
    assert "50 rows" in out
    code, _, err = run("run", "--once", "-c", "repricerd.yaml", "--mock-marketplaces")
    assert code == 0, err
    code, out, _ = run("history", "-c", "repricerd.yaml", "--kind", "price", "--format", "json")
    assert code == 0
    history = json.loads(out)
    assert history
    assert {row["kind"] for row in history} == {"price"}
    code, out, _ = run("explain", "BOOK-010", "-c", "repricerd.yaml")
    assert code == 0
    assert "no floor" in out
    code, out, _ = run("simulate", "-c", "repricerd.yaml", "--sku", "MUG-00*", "--format", "json")
    assert code == 0
    plan = json.loads(out)
    assert {row["sku"] for row in plan["plan"]} >= {"MUG-001", "MUG-009"}
    conn = sqlite3.connect(workdir / "cli.db")
    before = conn.execute("SELECT count(*) FROM action").fetchone()[0]
    conn.close()
    run("simulate", "-c", "repricerd.yaml", "--format", "csv")
    conn = sqlite3.connect(workdir / "cli.db")
    assert conn.execute("SELECT count(*) FROM action").fetchone()[0] == before
    conn.close()


def test_pause_and_resume_write_channel_state(workdir: Path) -> None:
    """pause/resume flip the kill switch in channel_state; an unknown channel is exit 1."""
    assert run("db", "upgrade", "-c", "repricerd.yaml")[0] == 0
    code, out, _ = run("pause", "-c", "repricerd.yaml", "--reason", "incident 7")
    assert code == 0
    assert "paused all channels" in out
    conn = sqlite3.connect(workdir / "cli.db")
    assert conn.execute(
        "SELECT paused, paused_reason FROM channel_state WHERE channel='*'"
    ).fetchone() == (1, "incident 7")
    conn.close()
    assert run("resume", "-c", "repricerd.yaml", "--channel", "amazon-demo")[0] == 0
    code, _, err = run("pause", "-c", "repricerd.yaml", "--channel", "nope")
    assert code == 1
    assert "unknown channel" in err


def test_usage_errors_exit_2(workdir: Path) -> None:
    """A wrong option or a bad --since value is a usage error (exit 2)."""
    assert run("history", "--since", "5 minutes", "-c", "repricerd.yaml")[0] == 2
    assert run("run", "--bogus")[0] == 2


def test_run_once_exits_1_when_a_channel_cannot_be_reached(workdir: Path) -> None:
    """A shop whose endpoint refuses connections: `run --once` reports it with exit code 1."""
    (workdir / "shop-only.yaml").write_text(
        "channels:\n"
        "  shop-demo:\n"
        "    kind: shopify\n"
        "    shop: repricerd-demo.myshopify.com\n"
        f"    endpoint: http://127.0.0.1:{free_port()}\n"
        "    access_token: ${DEMO_SHOPIFY_ACCESS_TOKEN}\n"
        "pricing: {rules: [{strategy: hold}]}\n"
    )
    assert run("db", "upgrade", "-c", "shop-only.yaml")[0] == 0
    code, _, _ = run("run", "--once", "-c", "shop-only.yaml")
    assert code == 1


# --- read-only commands, papercuts -------------------------------------------------------------

DEMO_SECRETS = tuple(name for name in demo_env() if "SECRET" in name or "TOKEN" in name)


def seed_action(workdir: Path, **values: object) -> None:
    """One action row in the CLI's database (migrated already), as a pass records it."""
    from daemon.db.engine import Database
    from tests.test_history import action, insert

    async def go() -> None:
        db = Database(f"sqlite:///{workdir / 'cli.db'}")
        try:
            await insert(db, action(datetime.now(UTC), **values))
        finally:
            await db.dispose()

    asyncio.run(go())


def test_read_only_commands_need_no_channel_secret(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """history, explain and simulate never call a marketplace: they run with no channel secret
    in the environment; `check` (and everything that opens a channel) still insists."""
    assert run("db", "upgrade", "-c", "repricerd.yaml")[0] == 0
    seed_action(workdir, sku="MUG-001", channel="amazon-demo")
    for name in DEMO_SECRETS:
        monkeypatch.delenv(name)
    code, out, err = run("history", "-c", "repricerd.yaml", "--format", "json")
    assert (code, err) == (0, "")
    assert [row["sku"] for row in json.loads(out)] == ["MUG-001"]
    code, out, err = run("explain", "MUG-001", "-c", "repricerd.yaml")
    assert (code, err) == (0, "")
    assert "beat the buy box by 0.01" in out
    code, out, err = run("simulate", "-c", "repricerd.yaml", "--format", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["plan"] == []
    code, _, err = run("check", "-c", "repricerd.yaml")
    assert code == 1
    assert "environment variable DEMO_" in err


def test_history_off_a_tty_keeps_every_column(workdir: Path) -> None:
    """Piped (CliRunner is no TTY), the table keeps channel, SKU and reason whole."""
    assert run("db", "upgrade", "-c", "repricerd.yaml")[0] == 0
    reason = "beat the Buy Box 19.00 by 0.01 (seller A1B2C3)"
    seed_action(workdir, sku="MUG-BLUE-0001", channel="amazon-demo", reason=reason)
    code, out, _ = run("history", "-c", "repricerd.yaml")
    assert code == 0
    for value in ("amazon-demo", "MUG-BLUE-0001", reason, "buy_box", "rule-1", "confirmed"):
        assert value in out, out


def test_history_in_an_80_column_terminal_wraps_instead_of_dropping() -> None:
    """At 80 columns each action becomes a record: every field is there, the SKU whole."""
    from rich.console import Console

    from daemon.history import render_history

    reason = "beat the Buy Box 19.00 by 0.01 (seller A1B2C3), the cheapest qualifying offer"
    row = {
        "time": datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        "channel": "amazon-demo",
        "sku": "MUG-BLUE-0001",
        "kind": "price",
        "status": "failed",
        "old": Decimal("19.99"),
        "new": Decimal("18.99"),
        "currency": "USD",
        "strategy": "buy_box",
        "rule": "rule-1",
        "reason": reason,
        "response_code": "INVALID",
        "response_message": "price too low",
        "attempts": 3,
    }
    out = io.StringIO()
    render_history([row], Console(file=out, width=80), "table")
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    head = "2026-03-02 12:00:00Z  amazon-demo  MUG-BLUE-0001  price  failed  "
    assert text.startswith(head)
    flat = " ".join(line.strip() for line in text.splitlines())
    for value in (
        "19.99 → 18.99 USD",
        "buy_box / rule-1",
        reason,
        "INVALID: price too low",
        "attempts 3",
    ):
        assert value in flat, text


def test_explain_an_unknown_sku_exits_1(workdir: Path) -> None:
    """A SKU with no listing and no decision is an error (exit 1), said on stderr; a listed SKU
    not repriced yet is not."""
    assert run("db", "upgrade", "-c", "repricerd.yaml")[0] == 0
    code, out, err = run("explain", "NO-SUCH-SKU", "-c", "repricerd.yaml")
    assert (code, out) == (1, "")
    assert "error: unknown SKU 'NO-SUCH-SKU'" in err
    seed_action(workdir, sku="MUG-001")
    assert run("explain", "MUG-001", "-c", "repricerd.yaml")[0] == 0


@pytest.mark.parametrize(
    "args",
    [
        ("history",),
        ("explain", "MUG-001"),
        ("simulate",),
    ],
)
def test_db_commands_on_a_database_never_migrated_say_how_to_fix_it(
    workdir: Path, args: tuple[str, ...]
) -> None:
    """No traceback: one line saying to run `repricerd db upgrade`, exit 1; nothing migrated."""
    code, out, err = run(*args, "-c", "repricerd.yaml")
    assert (code, out) == (1, "")
    assert err.startswith("error: the database sqlite:///")
    assert err.rstrip().endswith(
        f"has no repricerd tables, this version needs {head_revision()}: run `repricerd db upgrade`"
    )
    assert "Traceback" not in err
    conn = sqlite3.connect(workdir / "cli.db")
    assert conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall() == []
    conn.close()


def test_import_of_a_missing_file_exits_1(workdir: Path) -> None:
    """A catalogue path that does not exist is invalid input (exit 1), not a usage error."""
    code, out, err = run("import", "-c", "repricerd.yaml", "missing.csv")
    assert (code, out) == (1, "")
    assert err == "error: missing.csv: no such file; nothing was imported\n"
