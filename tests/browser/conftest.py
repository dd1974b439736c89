"""The demo daemon (in-memory channels, SQLite in tmp, free ports) in a thread of its own, and
a headless Debian Chromium driven by Playwright; the tests skip where no Chromium exists."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import shutil
import threading
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from connectors.mock.const import EVENT_ID_HEADER, ORDER_TOPIC, SIGNATURE_HEADER, TOPIC_HEADER
from daemon.app import Daemon
from daemon.config import load_config
from daemon.fba_audit import store
from daemon.logging import SecretRedactor
from domain.clock import ManualClock
from domain.fba import LEDGER_COLUMNS, LEDGER_REPORT
from tests.inventory_fixtures import Ledger, at
from tests.test_process import demo_config

T = TypeVar("T")
PASSWORD = "browser-test-console"
HISTORY_DAYS = 10
CHART_SKU = "MUG-007"  # on all four channels, 120 in stock
INVENTORY_SKU = "MUG-002"  # Stoneware Co., 21 days' lead time: sold out once, to reorder
FBA_FNSKU = "X00MUG0007"
SHOP_SECRET = "browser-shop-secret"
DEMO_CHANNELS = ("amazon-demo", "shop-demo", "walmart-demo", "ebay-demo")
CHROMIUM = os.environ.get("REPRICERD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]

if sync_playwright is None or not Path(CHROMIUM).exists():
    pytest.skip(
        "no Chromium: install Debian's chromium (apt-get install chromium) to run the console's "
        "browser tests",
        allow_module_level=True,
    )


class DemoDaemon:
    """The daemon on the demo config, served from an event loop in a background thread."""

    def __init__(self, tmp: Path) -> None:
        environ = {
            **os.environ,
            "DEMO_SHOP_SECRET": SHOP_SECRET,
            "DEMO_CONSOLE_PASSWORD": PASSWORD,
            "REPRICERD_DATABASE": f"sqlite:///{tmp / 'console.db'}",
        }
        self.config = load_config(demo_config(tmp), environ=environ)
        self.clock = ManualClock(datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.daemon = Daemon(
            self.config, SecretRedactor(self.config.secrets), self.clock, scheduled=False
        )
        self.call(self._start())

    async def _start(self) -> None:
        await self.daemon.start()
        rt = self.daemon.rt
        assert rt is not None
        for _ in range(500):  # the in-memory channels open at once; allow a few loop turns
            if all(rt.is_open(name) for name in DEMO_CHANNELS):
                break
            await asyncio.sleep(0.01)
        await self.run_pass("reconcile")
        # Ten days of history for the charts: every day a reprice and a stock sync, and on
        # some days an order of the charted SKU on the shop (one of them cancelled).
        for day in range(HISTORY_DAYS):
            self.clock.advance(24 * 3600)
            if day % 3 == 1:
                await self.order(f"order-{day}", "placed", 2 + day % 4)
            if day == 8:
                await self.order("order-4", "cancelled", 2)
            for name in ("reprice", "stock_sync"):
                await self.run_pass(name)
        await self.seed_inventory()

    async def seed_inventory(self) -> None:
        """Forty days of ``INVENTORY_SKU`` sales with a week's stock-out (its ledger, dated
        before the demo's), an FBA ledger report with lost and damaged units of ``CHART_SKU``
        stored for amazon-demo, then the inventory pass."""
        rt = self.daemon.rt
        assert rt is not None
        today = self.clock.now().date()
        ledger = Ledger(rt.db)
        await ledger.add(INVENTORY_SKU, "receipt", 50, at(today - timedelta(days=40), 6))
        await ledger.daily_sales(INVENTORY_SKU, today - timedelta(days=40), 25, 2)
        await ledger.add(INVENTORY_SKU, "receipt", 10, at(today - timedelta(days=7), 6))
        await ledger.daily_sales(INVENTORY_SKU, today - timedelta(days=7), 6, 1)

        def row(days_ago: int, ref: str, quantity: int, reason: str) -> list[str]:
            day = today - timedelta(days=days_ago)
            return [
                day.strftime("%m/%d/%Y"), FBA_FNSKU, "B000000007", CHART_SKU, "Ceramic mug #7",
                "Adjustments", ref, str(quantity), "PHX7", "SELLABLE", reason, "US", "",
                str(-quantity), f"{day.isoformat()}T10:00:00Z",
            ]  # fmt: skip

        rows = [row(20, "9001", -2, "M"), row(12, "9002", -1, "E")]
        document = "\n".join("\t".join(r) for r in [list(LEDGER_COLUMNS), *rows]) + "\n"
        await store(rt.db, "amazon-demo", LEDGER_REPORT, document, self.clock.now())
        await self.run_pass("inventory")

    async def order(self, order_id: str, status: str, quantity: int) -> None:
        """Deliver a signed order webhook for ``CHART_SKU`` to shop-demo and apply it."""
        body = json.dumps(
            {
                "order_id": order_id,
                "status": status,
                "lines": [{"sku": CHART_SKU, "quantity": quantity}],
                "updated_at": self.clock.now().isoformat(),
            }
        ).encode()
        signature = hmac.new(SHOP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{self.public}/webhooks/shop-demo",
                content=body,
                headers={
                    SIGNATURE_HEADER: signature,
                    TOPIC_HEADER: ORDER_TOPIC,
                    EVENT_ID_HEADER: f"{order_id}-{status}",
                },
            )
        response.raise_for_status()
        assert self.daemon.inbox is not None
        while await self.daemon.inbox.process("shop-demo"):
            pass

    async def run_pass(self, name: str, channels: tuple[str, ...] = ()) -> dict[str, Any]:
        """Run one pass to its end (a minute later on the demo's clock)."""
        assert self.daemon.passes is not None
        self.clock.advance(60)
        return await self.daemon.passes.run(name, channels)

    def call(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the daemon's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=60)

    @property
    def admin(self) -> str:
        """The admin listener's base URL."""
        assert self.daemon.admin is not None
        return f"http://127.0.0.1:{self.daemon.admin.port}"

    @property
    def public(self) -> str:
        """The public (webhook) listener's base URL."""
        return f"http://127.0.0.1:{self.daemon.port}"

    def stop(self) -> None:
        """Stop the daemon and its loop."""
        self.call(self.daemon.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="package")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDaemon]:
    """One demo daemon for every browser test."""
    running = DemoDaemon(tmp_path_factory.mktemp("console"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per module (root needs --no-sandbox)."""
    assert sync_playwright is not None
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def log_in(page: Page, base: str) -> None:
    """Log in through the form."""
    page.goto(f"{base}/console/")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/")


@pytest.fixture
def page(browser: Browser, demo: DemoDaemon) -> Iterator[Page]:
    """A logged-in page in a fresh browser context."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    log_in(page, demo.admin)
    yield page
    context.close()
