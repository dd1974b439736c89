"""The crash tests' harness: ``python -m daemon`` in child processes (the mock marketplaces in
their own, so they survive a kill -9 of the daemon), a config for them, and the mocks' state."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A port nothing listens on right now (the child processes' URLs are known in advance)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    tmp_path: Path, daemon_port: int, catalog: Path, channels: str, extra: str = ""
) -> Path:
    """``crash.yaml``: SQLite in ``tmp_path``, periodic passes a day apart (only what the test
    causes runs), the catalogue imported on start, ``extra`` settings (YAML lines), ``channels``
    (YAML, the lines below ``channels:``), and a pricing rule that holds every price."""
    config = tmp_path / "crash.yaml"
    config.write_text(
        f"""
database: sqlite:///{tmp_path / "crash.db"}
server: {{host: 127.0.0.1, port: {daemon_port}}}
schedule: {{reprice: 24h, stock_sync: 24h, reconcile: 24h}}
catalog: {{import_on_start: {catalog}}}
{extra}channels:
{channels}pricing:
  rules: [{{strategy: hold}}]
"""
    )
    return config


def child_env(**values: str) -> dict[str, str]:
    """This process's environment plus ``values`` (the config's secrets), logging at info."""
    return {**os.environ, **values, "REPRICERD_LOG_LEVEL": "info"}


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m daemon ARGS`` to the end (bounded: two minutes)."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def start(args: list[str], env: dict[str, str], cwd: Path, until: str) -> subprocess.Popen[str]:
    """Start ``python -m daemon ARGS`` (output to a log file, never a pipe that could fill up
    and stall it) and wait until ``until`` appears in that log."""
    log = cwd / f"{args[0]}-{time.monotonic_ns()}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", *args],
            env=env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if until in log.read_text():
            return proc
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"never saw {until!r}:\n" + log.read_text()[-3000:])


@contextmanager
def mocks_running(config: Path, env: dict[str, str], cwd: Path, until: str) -> Iterator[None]:
    """The database migrated, then ``repricerd mock-marketplaces`` of ``config`` running (it
    has started when ``until`` is logged) for the block; SIGTERM when it ends."""
    upgraded = cli(["db", "upgrade", "-c", str(config)], env, cwd)
    assert upgraded.returncode == 0, upgraded.stdout[-2000:] + upgraded.stderr[-2000:]
    mocks = start(["mock-marketplaces", "-c", str(config)], env, cwd, until)
    try:
        yield
    finally:
        mocks.send_signal(signal.SIGTERM)
        mocks.wait(timeout=10)


def mock_state(port: int) -> Any:
    """The mock's ``/_mock/state`` (a raw socket: no client library in the way)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /_mock/state HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])
