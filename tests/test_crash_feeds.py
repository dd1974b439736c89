"""kill -9 of `repricerd run` right after it created a bulk feed, then a restart: the restarted
daemon resumes that feed (polls it, maps its report) instead of creating a second one, so the
marketplace saw one feed and every SKU was written once. The mock marketplaces run in their own
process (they survive the crash) and hold the feed unprocessed until the daemon is dead."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.crash_fixtures import (
    child_env,
    cli,
    free_port,
    mock_state,
    mocks_running,
    start,
    write_config,
)

pytestmark = pytest.mark.slow

SKUS = 6
STOCK = 10
BUFFER = 1
CHANNEL = "mkt"

CHANNELS = {
    "amazon": """
    kind: amazon
    endpoint: http://127.0.0.1:{port}
    auth_endpoint: http://127.0.0.1:{port}/auth/o2/token
    marketplace_id: ATVPDKIKX0DER
    seller_id: A3CRASHSELLER
    credentials:
      client_id: amzn1.application-oa2-client.crash
      client_secret: ${{CRASH_SECRET}}
      refresh_token: ${{CRASH_SECRET}}
    patch_max_batch: 2
""",
    "walmart": """
    kind: walmart
    endpoint: http://127.0.0.1:{port}
    auth_endpoint: http://127.0.0.1:{port}/v3/token
    client_id: crash-client
    client_secret: ${{CRASH_SECRET}}
    seller_id: "10001234"
    single_max_batch: 2
""",
}
# The operation that creates a feed, as each mock counts it; and the final status of a feed.
CREATE = {"amazon": "createFeed", "walmart": "submitFeed"}
FINAL = {"amazon": "DONE", "walmart": "PROCESSED"}


def setup(tmp_path: Path, kind: str) -> tuple[Path, dict[str, str], dict[str, int]]:
    ports = {"daemon": free_port(), CHANNEL: free_port()}
    lines = [f"sku,cost,min_price,max_price,stock,id:{CHANNEL},price:{CHANNEL}"]
    for i in range(SKUS):
        lines.append(f"F-{i:03d},5.00,8.00,30.00,{STOCK},B0000{i:05d},12.00")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("\n".join(lines) + "\n")
    channel = CHANNELS[kind].format(port=ports[CHANNEL])
    channels = f"  {CHANNEL}:{channel}    feed_poll_interval_s: 0.2\n    feed_timeout_s: 60\n"
    inventory = f"inventory: {{buffer: {BUFFER}}}\n"
    config = write_config(tmp_path, ports["daemon"], catalog, channels, inventory)
    env = child_env(CRASH_SECRET="crash-test-secret")
    return config, env, ports


def hold_feeds(port: int, hold: bool) -> None:
    """Tell the mock to keep (or stop keeping) its feeds unprocessed."""
    response = httpx.post(
        f"http://127.0.0.1:{port}/_mock/faults", json={"hold_feeds": hold}, timeout=5
    )
    response.raise_for_status()


def wait_for_feed(port: int, kind: str) -> dict[str, Any]:
    """The mock's state once it holds a feed (bounded wait)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = mock_state(port)
        if state["feeds"]:
            return dict(state)
        time.sleep(0.05)
    raise AssertionError(f"the {kind} mock never received a feed")


@pytest.mark.parametrize("kind", ["amazon", "walmart"])
def test_kill_9_right_after_a_feed_was_created_resumes_that_feed(tmp_path: Path, kind: str) -> None:
    config, env, ports = setup(tmp_path, kind)
    with mocks_running(config, env, tmp_path, f"{CHANNEL}: mock"):
        hold_feeds(ports[CHANNEL], True)
        # "feed.recorded": the feed id is in the journal; the daemon now polls a feed that
        # the mock will not process, until it is killed.
        daemon = start(["run", "-c", str(config)], env, tmp_path, "feed.recorded")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        assert daemon.returncode == -signal.SIGKILL
        before = wait_for_feed(ports[CHANNEL], kind)
        assert before["calls"][CREATE[kind]] == 1
        assert not before["applied"]  # held: nothing written yet
        hold_feeds(ports[CHANNEL], False)

        again = cli(["run", "--once", "-c", str(config)], env, tmp_path)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]

        state = mock_state(ports[CHANNEL])
        ((feed_id, status),) = state["feeds"].items()
        assert status == FINAL[kind]
        assert state["calls"][CREATE[kind]] == 1  # resumed, never created again
        assert f"{kind}.feed.resumed" in again.stdout + again.stderr
        # Every SKU written once, to its allocation.
        assert state["applied"] == {
            f"F-{i:03d}|quantity|{STOCK - BUFFER}": 1 for i in range(SKUS)
        }, json.dumps(state["applied"])

        db = sqlite3.connect(tmp_path / "crash.db")
        try:
            rows = db.execute(
                "SELECT sku, status, response_code, marketplace_ref FROM action"
                " WHERE kind = 'stock' ORDER BY sku"
            ).fetchall()
            feeds = db.execute(
                "SELECT channel, feed_id, kind, status, finished_at IS NOT NULL"
                " FROM marketplace_feed"
            ).fetchall()
            items = db.execute("SELECT count(*) FROM marketplace_feed_item").fetchone()[0]
        finally:
            db.close()
        # One intent per SKU, each answered from that feed's report (Amazon: accepted, then
        # confirmed by the reconcile of `run --once`; Walmart: the item's SUCCESS).
        outcome = ("confirmed", "ACCEPTED") if kind == "amazon" else ("confirmed", None)
        assert rows == [(f"F-{i:03d}", *outcome, f"feed:{feed_id}") for i in range(SKUS)]
        assert feeds == [(CHANNEL, feed_id, "stock", FINAL[kind], 1)]
        assert items == SKUS
