"""The real process with one marketplace that hangs: the server answers at once, the other
channels' webhooks are stored and applied, readiness holds, SIGTERM exits 0 in time; and a
SIGTERM under load logs nothing at ERROR."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_fixtures import demo_env
from tests.test_process import CANARY, ROOT, big_catalog, demo_config, env

pytestmark = pytest.mark.slow
CATALOG = ROOT / "config" / "demo-catalog.csv"
SHUTDOWN_TIMEOUT_S = 6.0  # server.shutdown_timeout_s's default, which the demo config keeps


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Lines:
    """A child's stderr JSON lines, read in a thread so no wait can block on a pipe."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self.lines.append(line)

    def events(self) -> list[dict[str, Any]]:
        """Every JSON line so far."""
        found = []
        for line in list(self.lines):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def wait_for(self, event: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """The first line with this event (and fields), waiting up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in self.events():
                if item.get("event") == event and all(item.get(k) == v for k, v in fields.items()):
                    return item
            time.sleep(0.05)
        raise AssertionError(f"no {event} {fields} within {timeout} s:\n{self.tail()}")

    def tail(self) -> str:
        """The last lines, for an assertion message."""
        return "".join(self.lines[-40:])

    def join(self) -> None:
        """Wait for the reader (the child has exited)."""
        self._thread.join(timeout=10)


def get(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    """GET a JSON route: status and body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def post_json(url: str, body: dict[str, Any]) -> Any:
    """POST a JSON body; return the decoded answer."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def place_order(port: int, sku: str) -> None:
    """A shopper buys one unit on a mock, once the daemon has published stock there (409
    until then)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            post_json(f"http://127.0.0.1:{port}/_mock/orders", {"sku": sku, "quantity": 1})
            return
        except urllib.error.HTTPError as err:
            with err:
                answer = err.read().decode()
            if err.code != 409 or time.monotonic() > deadline:
                raise AssertionError(f"order on port {port}: {err.code} {answer}") from None
        time.sleep(0.2)


def spawn_run(config: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``repricerd run -c CONFIG`` as a child whose stderr (the JSON log) is piped to us."""
    return subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "-c", str(config)],
        env=env,
        cwd=cwd,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def terminate_in_time(proc: subprocess.Popen[str], log: Lines) -> None:
    """SIGTERM ``proc``: it exits 0 within the shutdown timeout + 2 s."""
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=SHUTDOWN_TIMEOUT_S + 10)
    elapsed = time.monotonic() - sent
    log.join()
    assert proc.returncode == 0, log.tail()
    assert elapsed < SHUTDOWN_TIMEOUT_S + 2, (elapsed, log.tail())


def stop(proc: subprocess.Popen[str]) -> None:
    """Kill a child that is still running (a failed test); close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def inbox(db_file: Path) -> dict[str, list[str | None]]:
    """Each channel's delivery outcomes (None while unprocessed)."""
    conn = sqlite3.connect(db_file)
    try:
        rows = conn.execute("SELECT channel, outcome FROM webhook_event").fetchall()
    finally:
        conn.close()
    found: dict[str, list[str | None]] = {}
    for channel, outcome in rows:
        found.setdefault(channel, []).append(outcome)
    return found


def demo_with_ports(daemon_port: int, ports: dict[int, int], hang_port: int) -> str:
    """The demo config with free ports: the daemon's, each mock's, and eBay at ``hang_port``."""
    text = (ROOT / "config" / "repricerd.yaml").read_text()
    # A hung open is recorded degraded after 3 s instead of 30 (the test waits for it).
    text = text.replace("port: 8080", f"port: {daemon_port}\n  channel_open_timeout_s: 3")
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{daemon_port}")
    text = text.replace("admin_port: 8081", "admin_port: 0")
    for old, new in ports.items():
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    text = text.replace("127.0.0.1:8103", f"127.0.0.1:{hang_port}")
    return text.replace("config/demo-catalog.csv", str(CATALOG))


@pytest.fixture
def hanging_marketplace() -> Iterator[int]:
    """A port that accepts connections and never answers (the kernel completes the handshake
    into the backlog; nothing ever reads or writes): a marketplace that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


def test_one_hanging_marketplace_delays_nothing(tmp_path: Path, hanging_marketplace: int) -> None:
    """eBay hangs: /healthz answers within 2 s of start-up, the Amazon, Shopify and Walmart
    mocks' order webhooks are stored and applied, /readyz is 200, /status and `repricerd
    status` show eBay degraded, SIGTERM exits 0 in time."""
    daemon_port = free_port()
    mock_ports = {old: free_port() for old in (8101, 8102, 8104)}
    text = demo_with_ports(daemon_port, mock_ports, hanging_marketplace)
    daemon_config = tmp_path / "repricerd.yaml"
    daemon_config.write_text(text)
    # The three mocks that answer, served by `repricerd mock-marketplaces` from their blocks.
    channels = text[text.index("  amazon-demo:\n") : text.index("  ebay-demo:\n")]
    mocks_config = tmp_path / "mocks.yaml"
    mocks_config.write_text(
        f"server: {{host: 127.0.0.1, port: {daemon_port}}}\n"
        f"catalog: {{currency: USD, import_on_start: {CATALOG}}}\n"
        "pricing: {rules: [{strategy: hold}]}\n"
        f"channels:\n{channels}"
    )
    child_env = {
        **os.environ,
        **demo_env(),
        "REPRICERD_DATABASE": f"sqlite:///{tmp_path / 'var' / 'r.db'}",
        "REPRICERD_LOG_LEVEL": "info",
    }
    mocks = subprocess.Popen(
        [sys.executable, "-m", "daemon", "mock-marketplaces", "-c", str(mocks_config)],
        env=child_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    daemon: subprocess.Popen[str] | None = None
    try:
        assert mocks.stdout is not None
        started = []
        deadline = time.monotonic() + 60
        while len(started) < 3 and time.monotonic() < deadline:
            line = mocks.stdout.readline()
            if not line:
                break
            if ": mock " in line:
                started.append(line)
        assert len(started) == 3, "the mocks did not start:\n" + "".join(started)

        daemon = spawn_run(daemon_config, child_env, tmp_path)
        log = Lines(daemon)
        first = log.wait_for("database_ready", timeout=60)
        base = f"http://127.0.0.1:{daemon_port}"
        answered = None
        deadline = time.monotonic() + 30
        while answered is None and time.monotonic() < deadline:
            try:
                if get(f"{base}/healthz")[0] == 200:
                    answered = datetime.now().astimezone()
            except OSError:
                time.sleep(0.05)
        assert answered is not None, log.tail()
        # Measured from the process's first line (after the interpreter's imports): the
        # migration and the catalogue import come first, no marketplace is waited for.
        assert (answered - datetime.fromisoformat(first["timestamp"])).total_seconds() < 2.0
        opened = {e.get("channel") for e in log.events() if e.get("event") == "channel_opened"}
        assert "ebay-demo" not in opened

        for channel in ("amazon-demo", "shop-demo", "walmart-demo"):
            log.wait_for("channel_opened", timeout=30, channel=channel)
        for old in (8101, 8102, 8104):
            place_order(mock_ports[old], "MUG-007")
        db_file = tmp_path / "var" / "r.db"
        deadline = time.monotonic() + 30
        outcomes: dict[str, list[str | None]] = {}
        wanted = {"amazon-demo", "shop-demo", "walmart-demo"}
        while time.monotonic() < deadline:
            outcomes = inbox(db_file)
            if all("applied" in outcomes.get(channel, []) for channel in wanted):
                break
            time.sleep(0.2)
        assert all("applied" in outcomes.get(channel, []) for channel in wanted), outcomes
        status, body = get(f"{base}/readyz")
        assert (status, body["status"]) == (200, "ready")
        assert body["channels_not_open"] == ["ebay-demo"]
        # The hanging channel is degraded once its first open timed out, the others ok, in
        # GET /status and `repricerd status` (read from the database; exit 3: one is not ok).
        log.wait_for("channel_open_failed", timeout=30, channel="ebay-demo")
        states: dict[str, str] = {}
        deadline = time.monotonic() + 10  # the health row is written just after that log line
        while states.get("ebay-demo") != "degraded" and time.monotonic() < deadline:
            status, body = get(f"{base}/status", timeout=10)
            assert status == 200, body
            states = {name: ch["state"] for name, ch in body["channels"].items()}
        assert states["ebay-demo"] == "degraded", states
        assert {states[name] for name in wanted} == {"ok"}, states
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "daemon",
                "status",
                "-c",
                str(daemon_config),
                "--format",
                "json",
            ],
            env=child_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 3, shown.stderr
        assert json.loads(shown.stdout)["channels"]["ebay-demo"]["state"] == "degraded"
        assert "ebay-demo" not in {
            e.get("channel") for e in log.events() if e.get("event") == "channel_opened"
        }

        terminate_in_time(daemon, log)
        log.wait_for("shutdown_complete", timeout=1)
    finally:
        if daemon is not None:
            stop(daemon)
        mocks.send_signal(signal.SIGTERM)
        try:
            mocks.wait(timeout=15)
        finally:
            stop(mocks)


def test_sigterm_during_a_hung_start_exits_zero(tmp_path: Path, hanging_marketplace: int) -> None:
    """SIGTERM while every marketplace hangs (openers waiting): exit 0 within the shutdown
    timeout + 2 s."""
    daemon_port = free_port()
    hang = {old: hanging_marketplace for old in (8101, 8102, 8104)}
    config = tmp_path / "repricerd.yaml"
    config.write_text(demo_with_ports(daemon_port, hang, hanging_marketplace))
    proc = spawn_run(
        config, {**env(tmp_path), **demo_env(), "REPRICERD_LOG_LEVEL": "info"}, tmp_path
    )
    log = Lines(proc)
    try:
        log.wait_for("daemon_ready", timeout=60)
        terminate_in_time(proc, log)
        assert not [e for e in log.events() if e.get("level") in ("error", "critical")]
    finally:
        stop(proc)


def signed(body: bytes, event_id: str, topic: str) -> dict[str, str]:
    """Headers of a delivery to the in-memory shop-demo channel (signed with the canary)."""
    return {
        "X-Mock-Signature": hmac.new(CANARY.encode(), body, hashlib.sha256).hexdigest(),
        "X-Mock-Event-Id": event_id,
        "X-Mock-Topic": topic,
    }


def test_sigterm_under_load_logs_nothing_at_error(tmp_path: Path) -> None:
    """A burst of webhooks and the first passes running over 3,000 SKUs when SIGTERM comes:
    exit 0 in time, and not one ERROR line (nothing pages anyone for a clean stop)."""
    port = free_port()
    config = demo_config(tmp_path, port=port)
    catalog = big_catalog(tmp_path / "big.csv", 3000)
    # The big catalogue's prices are far from every strategy's: a breaker trip would be a
    # (rightful) ERROR line, so the breaker only trips on moves over 99 % here.
    text = config.read_text().replace(str(CATALOG), str(catalog))
    config.write_text(text.replace("move_pct: 20", "move_pct: 99"))
    proc = spawn_run(config, {**env(tmp_path), "REPRICERD_LOG_LEVEL": "info"}, tmp_path)
    log = Lines(proc)
    try:
        log.wait_for("daemon_ready", timeout=90)
        url = f"http://127.0.0.1:{port}/webhooks/shop-demo"
        for i in range(200):
            body = json.dumps({"skus": [f"K-{i:05d}"]}).encode()
            request = urllib.request.Request(
                url, data=body, method="POST", headers=signed(body, f"e-{i}", "offer_changed")
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
        terminate_in_time(proc, log)
        errors = [e for e in log.events() if e.get("level") in ("error", "critical")]
        assert errors == []
        log.wait_for("shutdown_complete", timeout=1)
    finally:
        stop(proc)
