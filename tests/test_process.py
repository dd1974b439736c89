"""The real ``repricerd`` process: --once, readiness, SIGTERM, secrets, hot reload."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from daemon.config import load_config
from daemon.db.engine import Database
from domain.clock import ManualClock
from tests.daemon_fixtures import make_runtime

ROOT = Path(__file__).resolve().parents[1]
CANARY = "canary-Secret-7f3a9c1e55"
pytestmark = pytest.mark.slow


# The process tests are about the process (readiness, signals, crashes, secrets), so the demo's
# channels become in-memory markets: thousands of listings without marketplace rate limits.
IN_MEMORY_CHANNELS = """channels:
  amazon-demo: {kind: mock, seed_catalog: config/demo-catalog.csv, competitors: 4, seed: 1}
  shop-demo:
    kind: mock
    seed_catalog: config/demo-catalog.csv
    competitors: 0
    seed: 2
    webhook_secret: ${DEMO_SHOP_SECRET}
  walmart-demo: {kind: mock, seed_catalog: config/demo-catalog.csv, competitors: 2, seed: 3}
  ebay-demo: {kind: mock, seed_catalog: config/demo-catalog.csv, competitors: 2, seed: 4}

"""


def demo_config(tmp_path: Path, *, port: int = 0, extra: str = "") -> Path:
    """The demo config on in-memory channels, a free port, absolute CSV paths and a secret
    from the environment."""
    text = (ROOT / "config" / "repricerd.yaml").read_text()
    start, end = text.index("channels:\n"), text.index("inventory:\n")
    text = text[:start] + IN_MEMORY_CHANNELS + text[end:]
    text = text.replace("port: 8080", f"port: {port}").replace("admin_port: 8081", "admin_port: 0")
    text = text.replace("config/demo-catalog.csv", str(ROOT / "config" / "demo-catalog.csv"))
    path = tmp_path / "repricerd.yaml"
    path.write_text(text + extra)
    return path


def env(tmp_path: Path) -> dict[str, str]:
    """Environment for a child daemon: its own SQLite file and the canary secret."""
    return {
        **os.environ,
        "REPRICERD_DATABASE": f"sqlite:///{tmp_path / 'var' / 'r.db'}",
        "DEMO_SHOP_SECRET": CANARY,
        "DEMO_CONSOLE_PASSWORD": "process-test-console",
        "REPRICERD_LOG_LEVEL": "debug",
    }


def table_text(db_file: Path) -> str:
    """Every value of every table, as one string (to search for leaked secrets)."""
    conn = sqlite3.connect(db_file)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(
            repr(row) for name in names for row in conn.execute(f'SELECT * FROM "{name}"')
        )
    finally:
        conn.close()


def test_run_once_exits_zero_and_leaves_price_and_stock_actions(tmp_path: Path) -> None:
    """`repricerd run --once` on the demo config exits 0 with price and stock rows in SQLite."""
    config = demo_config(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--once", "-c", str(config)],
        env=env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    db_file = tmp_path / "var" / "r.db"
    conn = sqlite3.connect(db_file)
    counts = dict(
        conn.execute("SELECT kind, count(*) FROM action WHERE status='confirmed' GROUP BY kind")
    )
    blocked = conn.execute("SELECT count(*) FROM action WHERE status='blocked'").fetchone()[0]
    conn.close()
    assert counts.get("price", 0) > 0
    assert counts.get("stock", 0) > 0
    assert blocked > 0  # the demo has SKUs without a floor: refused, and the refusal is logged
    assert CANARY not in proc.stderr + proc.stdout
    assert CANARY not in table_text(db_file)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A running `repricerd run`, with the port it bound."""
    config = demo_config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "-c", str(config)],
        env=env(tmp_path),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    port = None
    lines = []
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if '"daemon_ready"' in line:
            port = json.loads(line)["port"]
            break
    assert port, "daemon never became ready:\n" + "".join(lines)[-3000:]
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_daemon_serves_ready_and_stops_on_sigterm_within_8s(
    daemon: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    """The daemon answers /readyz, rejects a forged webhook, and exits 0 within 8 s of SIGTERM."""
    proc, port = daemon
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
        assert response.status == 200
    forged = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/shop-demo",
        data=b'{"order": 1}',
        method="POST",
        headers={"X-Mock-Signature": "00" * 32, "Authorization": f"Bearer {CANARY}"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(forged, timeout=5)
    assert err.value.code == 401
    err.value.close()
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=15)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, stderr[-3000:]
    assert elapsed < 8
    assert '"shutdown_complete"' in stderr
    assert CANARY not in stderr
    assert CANARY not in table_text(tmp_path / "var" / "r.db")


async def test_hot_reload_adopts_a_valid_change_and_keeps_the_old_config_on_error(
    tmp_path: Path, sqlite_db: Database, clock: ManualClock
) -> None:
    """A valid edit takes effect at the next reload; an invalid one is logged and ignored."""
    path = tmp_path / "r.yaml"
    base = (
        "channels: {alpha: {kind: mock}}\n"
        "pricing: {rules: [{strategy: cost_plus, params: {margin_pct: 30}}]}\n"
    )
    path.write_text(base)
    rt = await make_runtime(sqlite_db, clock, load_config(path).settings, path)
    assert await rt.reload_if_changed() is False

    path.write_text(base.replace("30", "45"))
    assert await rt.reload_if_changed() is True
    assert rt.settings.pricing.rules[0].params.margin_pct == 45  # type: ignore[union-attr]

    path.write_text(base.replace("margin_pct: 30", "margin_pct: -5, bogus: 1"))
    with capture_logs() as logs:
        assert await rt.reload_if_changed() is False
        assert await rt.reload_if_changed() is False  # the same broken file is reported once
    assert rt.settings.pricing.rules[0].params.margin_pct == 45  # type: ignore[union-attr]
    rejected = [e for e in logs if e["event"] == "config_reload_rejected"]
    assert len(rejected) == 1
    assert any("bogus" in p for p in rejected[0]["problems"])
    await rt.close()


def big_catalog(path: Path, skus: int) -> Path:
    """A catalogue large enough that a pass is still running when the process is killed."""
    lines = [
        "sku,cost,fees,min_price,max_price,stock,id:amazon-demo,id:shop-demo,"
        "price:amazon-demo,price:shop-demo"
    ]
    for i in range(skus):
        lines.append(f"K-{i:05d},10.00,1.00,12.00,60.00,{i % 7},A{i},S{i},40.00,40.00")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_kill_9_mid_pass_then_restart_leaves_no_intent_behind(tmp_path: Path) -> None:
    """kill -9 while passes write, then `run --once`: the database is intact, every intent the
    crash left planned or in flight is re-driven with its key, none is left open."""
    catalog = big_catalog(tmp_path / "big.csv", 3000)
    config = demo_config(tmp_path, extra="")
    config.write_text(
        config.read_text().replace(str(ROOT / "config" / "demo-catalog.csv"), str(catalog))
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "-c", str(config)],
        env=env(tmp_path),
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line or ('"pass_name": "reconcile"' in line and '"pass_finished"' in line):
            break
    proc.send_signal(signal.SIGKILL)  # in the middle of the reprice pass that follows
    proc.wait(timeout=10)
    proc.stderr.close()
    db_file = tmp_path / "var" / "r.db"
    conn = sqlite3.connect(db_file)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()

    again = subprocess.run(
        [sys.executable, "-m", "daemon", "run", "--once", "-c", str(config)],
        env=env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    conn = sqlite3.connect(db_file)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        open_rows = conn.execute(
            "SELECT count(*) FROM action WHERE status IN ('planned', 'sent')"
        ).fetchone()[0]
        keys = conn.execute(
            "SELECT count(*), count(DISTINCT idempotency_key) FROM action"
        ).fetchone()
        confirmed = conn.execute(
            "SELECT count(*) FROM action WHERE status = 'confirmed'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert open_rows == 0
    assert keys[0] == keys[1]
    assert confirmed > 0
