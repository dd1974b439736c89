"""The command line, end to end on a temporary SQLite file: import, run --once, read the log."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from daemon.cli import main
from tests.daemon_fixtures import demo_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory with the demo config pointing at absolute paths and its own DB."""
    text = (ROOT / "config" / "repricerd.yaml").read_text()
    text = text.replace("config/demo-catalog.csv", str(ROOT / "config" / "demo-catalog.csv"))
    # Free ports: a `make run` on this machine (or another test) may hold the demo's.
    for demo_port in ("8101", "8102", "8103", "8104", "8080"):
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
