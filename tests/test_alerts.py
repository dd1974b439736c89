"""Alerts reach a local HTTP receiver exactly once when raised and once when resolved; failed
deliveries are retried; a restart does not re-send; secrets stay out of payloads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiohttp import web
from structlog.testing import capture_logs

from daemon.alerts import BACKOFF_S, Alerter
from daemon.controls import record_health, resume, trip_breaker
from daemon.db.engine import Database
from daemon.db.models import ChannelHealth, RestockRow
from daemon.logging import REDACTED, SecretRedactor
from daemon.settings import Settings
from daemon.status import read_status
from domain.clock import ManualClock
from tests.daemon_fixtures import settings
from tests.status_fixtures import INBOX, action, delivery, ledger

SECRET = "hunter2-very-secret"


@dataclass
class Receiver:
    """A local webhook receiver: records every JSON body, answers the queued statuses."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def alerts(self, state: str | None = None) -> list[tuple[str, str]]:
        """(key, state) of the bodies taken (answered 2xx), optionally of one state."""
        return [
            (b["alert"]["key"], b["alert"]["state"])
            for b in self.bodies
            if b.get("_taken") and (state is None or b["alert"]["state"] == state)
        ]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """An aiohttp server on 127.0.0.1 standing in for Slack or a generic receiver."""
    holder: list[Receiver] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        status = holder[0].statuses.pop(0) if holder[0].statuses else 200
        body["_taken"] = status < 300
        holder[0].bodies.append(body)
        return web.json_response({"ok": status < 300}, status=status)

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    holder.append(Receiver(f"http://127.0.0.1:{port}/hook"))
    try:
        yield holder[0]
    finally:
        await runner.cleanup()


@dataclass
class Harness:
    """An Alerter over the test database with a recorded (instant) sleep."""

    db: Database
    clock: ManualClock
    config: Settings
    http: httpx.AsyncClient
    slept: list[float] = field(default_factory=list)

    def alerter(self) -> Alerter:
        """A fresh Alerter (as after a restart)."""

        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        return Alerter(
            self.db,
            self.clock,
            self.http,
            lambda: self.config,
            SecretRedactor([SECRET]),
            sleep=sleep,
        )


@pytest.fixture
async def make(db: Database, clock: ManualClock) -> AsyncIterator[Callable[..., Harness]]:
    """Build a harness with alerts configured (webhook_url as given)."""
    async with httpx.AsyncClient() as http:

        def build(url: str | None, **alerts: Any) -> Harness:
            block = {**alerts, **({"webhook_url": url} if url else {})}
            return Harness(db, clock, settings(alerts=block), http)

        yield build


async def _healthy(db: Database, clock: ManualClock) -> None:
    for name in ("alpha", "beta"):
        await record_health(db, clock, channel=name, error=None)


async def test_breaker_trip_alerts_once_and_resolves_once(
    db: Database, clock: ManualClock, receiver: Receiver, make: Callable[..., Harness]
) -> None:
    """A trip is raised once (log + POST), not again while tripped, resolved once on resume."""
    h = make(receiver.url)
    alerter = h.alerter()
    await _healthy(db, clock)
    assert await alerter.evaluate() == ([], [])
    await trip_breaker(db, clock, channel="alpha", reason="12 of 40 listings moved > 10%")
    with capture_logs() as logs:
        assert await alerter.evaluate() == (["breaker_tripped:alpha"], [])
        await alerter.evaluate()
    events = [e for e in logs if e["event"] == "alert"]
    assert [(e["log_level"], e["key"], e["state"]) for e in events] == [
        ("error", "breaker_tripped:alpha", "raised")
    ]
    assert receiver.alerts() == [("breaker_tripped:alpha", "raised")]
    body = receiver.bodies[0]
    assert body["text"].startswith("[repricerd] ERROR breaker_tripped: alpha: circuit breaker")
    assert body["alert"]["channel"] == "alpha"
    assert body["alert"]["details"] == {"reason": "12 of 40 listings moved > 10%"}
    clock.advance(60)
    await resume(db, clock, channel="alpha")
    assert await alerter.evaluate() == ([], ["breaker_tripped:alpha"])
    await alerter.evaluate()
    assert receiver.alerts() == [
        ("breaker_tripped:alpha", "raised"),
        ("breaker_tripped:alpha", "resolved"),
    ]
    assert receiver.bodies[1]["alert"]["resolved_at"] == clock.now().isoformat()
    assert receiver.bodies[1]["text"].startswith("[repricerd] RESOLVED breaker_tripped")
    # Tripping again after it cleared is a new alert.
    await trip_breaker(db, clock, channel="alpha", reason="again")
    assert (await alerter.evaluate())[0] == ["breaker_tripped:alpha"]
    assert len(receiver.alerts("raised")) == 2


async def test_stuck_inbox_alerts_after_the_configured_age(
    db: Database, clock: ManualClock, receiver: Receiver, make: Callable[..., Harness]
) -> None:
    """An unprocessed delivery older than inbox_stuck_after raises; processing it resolves."""
    h = make(receiver.url, inbox_stuck_after="2m")
    alerter = h.alerter()
    await _healthy(db, clock)
    await delivery(db, "beta", clock.now())
    clock.advance(119)
    assert await alerter.evaluate() == ([], [])
    clock.advance(1)
    assert await alerter.evaluate() == (["inbox_stuck:beta"], [])
    await alerter.evaluate()
    async with db.write() as conn:
        await conn.execute(sa.update(INBOX).values(processed_at=clock.now(), outcome="applied"))
    assert await alerter.evaluate() == ([], ["inbox_stuck:beta"])
    assert receiver.alerts() == [("inbox_stuck:beta", "raised"), ("inbox_stuck:beta", "resolved")]
    assert receiver.bodies[0]["alert"]["severity"] == "warning"


async def test_oversell_alerts_until_stock_comes_back(
    db: Database, clock: ManualClock, receiver: Receiver, make: Callable[..., Harness]
) -> None:
    """An order recorded OVERSOLD raises once; a later receipt for the SKU resolves it."""
    alerter = make(receiver.url).alerter()
    await _healthy(db, clock)
    now = clock.now()
    await ledger(db, "MUG", 1, now)
    await ledger(db, "MUG", -1, now, note="order 7: 3 sold; OVERSOLD by 2 (only 1 held)")
    await ledger(db, "CUP", -1, now, note="order 8: 1 sold")
    assert await alerter.evaluate() == (["oversell:MUG"], [])
    clock.advance(30)
    await ledger(db, "MUG", -0, clock.now(), note="order 9: 1 sold")  # still nothing back
    assert await alerter.evaluate() == ([], [])
    await ledger(db, "MUG", 5, clock.now(), kind="receipt")
    assert await alerter.evaluate() == ([], ["oversell:MUG"])
    assert receiver.alerts() == [("oversell:MUG", "raised"), ("oversell:MUG", "resolved")]
    assert "OVERSOLD by 2" in receiver.bodies[0]["text"]


async def test_not_applied_writes_alert_until_later_writes_are_confirmed(
    db: Database, clock: ManualClock, receiver: Receiver, make: Callable[..., Harness]
) -> None:
    """NOT_APPLIED writes raise one alert per channel, listing them; it resolves once every
    such listing has had a confirmed write since."""
    alerter = make(receiver.url).alerter()
    await _healthy(db, clock)
    await action(db, "alpha", "MUG", "failed", clock.now(), code="NOT_APPLIED", price="12.50")
    await action(db, "alpha", "CUP", "failed", clock.now(), code="NOT_APPLIED", kind="stock")
    await action(db, "alpha", "MUG", "confirmed", clock.now(), kind="stock")  # another field
    await action(db, "beta", "CUP", "failed", clock.now(), code="INVALID_VALUE")
    assert await alerter.evaluate() == (["not_applied:alpha"], [])
    assert receiver.bodies[0]["alert"]["details"] == {
        "count": 2,
        "writes": [
            {"sku": "MUG", "write": "price", "value": "12.50"},
            {"sku": "CUP", "write": "stock", "value": "3"},
        ],
    }
    await action(db, "alpha", "MUG", "confirmed", clock.now(), price="12.50")
    assert await alerter.evaluate() == ([], [])  # CUP still not applied
    await action(db, "alpha", "CUP", "confirmed", clock.now(), kind="stock")
    assert await alerter.evaluate() == ([], ["not_applied:alpha"])
    assert receiver.alerts() == [
        ("not_applied:alpha", "raised"),
        ("not_applied:alpha", "resolved"),
    ]


async def test_refused_credentials_alert_one_channel_only(
    db: Database, clock: ManualClock, receiver: Receiver, make: Callable[..., Harness]
) -> None:
    """auth_failed on beta: status shows it, one alert is delivered, alpha is unaffected; the
    marketplace's error is sent without the secret it echoed."""
    alerter = make(receiver.url).alerter()
    await record_health(db, clock, channel="alpha", error=None)
    await record_health(
        db,
        clock,
        channel="beta",
        error=f"invalid_client for {SECRET}",
        health=ChannelHealth.AUTH_FAILED,
    )
    snap = await read_status(db, ["alpha", "beta"], clock.now())
    assert {c.channel: c.state.value for c in snap.channels} == {
        "alpha": "ok",
        "beta": "auth_failed",
    }
    await alerter.evaluate()
    await alerter.evaluate()
    assert receiver.alerts() == [("auth_failed:beta", "raised")]
    text = str(receiver.bodies)
    assert SECRET not in text
    assert REDACTED in text


async def test_degraded_alerts_only_after_degraded_after(
    db: Database, clock: ManualClock, receiver: Receiver, make: Callable[..., Harness]
) -> None:
    """A degraded channel raises once it has been degraded for degraded_after."""
    alerter = make(receiver.url, degraded_after="10m").alerter()
    await record_health(db, clock, channel="alpha", error=None)
    await record_health(db, clock, channel="beta", error="503 from the marketplace")
    clock.advance(599)
    await record_health(db, clock, channel="beta", error="timeout")  # still degraded: same since
    assert await alerter.evaluate() == ([], [])
    clock.advance(1)
    assert await alerter.evaluate() == (["degraded:beta"], [])
    await record_health(db, clock, channel="beta", error=None)
    assert await alerter.evaluate() == ([], ["degraded:beta"])


async def test_a_500_is_retried_with_backoff(
    db: Database, clock: ManualClock, receiver: Receiver, make: Callable[..., Harness]
) -> None:
    """The receiver answers 500 then 200: the same alert is posted again after a backoff and
    delivered once."""
    h = make(receiver.url)
    receiver.statuses = [500]
    await _healthy(db, clock)
    await trip_breaker(db, clock, channel="beta", reason="moves")
    await h.alerter().evaluate()
    assert [b["alert"]["key"] for b in receiver.bodies] == ["breaker_tripped:beta"] * 2
    assert receiver.alerts() == [("breaker_tripped:beta", "raised")]
    assert h.slept == [BACKOFF_S[0]]


async def test_an_unreachable_receiver_gets_it_at_a_later_evaluation(
    db: Database, clock: ManualClock, receiver: Receiver, make: Callable[..., Harness]
) -> None:
    """Every attempt failing leaves the alert pending; the next evaluation (or a restarted
    daemon) delivers it once, and a restart never re-sends a delivered alert."""
    h = make(receiver.url)
    receiver.statuses = [503] * (len(BACKOFF_S) + 1)
    await _healthy(db, clock)
    await trip_breaker(db, clock, channel="beta", reason="moves")
    with capture_logs() as logs:
        await h.alerter().evaluate()
    assert receiver.alerts() == []
    assert h.slept == list(BACKOFF_S)
    assert [e["event"] for e in logs if e["event"].startswith("alert_")] == [
        "alert_delivery_failed"
    ]
    restarted = h.alerter()
    assert await restarted.evaluate() == ([], [])  # already raised: not raised again
    assert receiver.alerts() == [("breaker_tripped:beta", "raised")]
    await h.alerter().evaluate()
    assert receiver.alerts() == [("breaker_tripped:beta", "raised")]


async def test_without_webhook_alerts_are_logged_only(
    db: Database, clock: ManualClock, make: Callable[..., Harness]
) -> None:
    """No webhook_url: the alert event is logged once and nothing is posted."""
    h = make(None)
    await _healthy(db, clock)
    await trip_breaker(db, clock, channel="alpha", reason="moves")
    with capture_logs() as logs:
        await h.alerter().evaluate()
        await h.alerter().evaluate()
    assert [e["key"] for e in logs if e["event"] == "alert"] == ["breaker_tripped:alpha"]
    assert await h.alerter().deliver() == 0


def test_alert_settings_are_strict() -> None:
    """alerts: unknown keys and a non-http webhook are config errors; defaults 5m / 10m."""
    assert settings().alerts.inbox_stuck_after == timedelta(minutes=5)
    assert settings().alerts.degraded_after == timedelta(minutes=10)
    with pytest.raises(ValueError, match="extra"):
        settings(alerts={"webhook": "x"})
    with pytest.raises(ValueError, match="http"):
        settings(alerts={"webhook_url": "ftp://example.com/x"})


async def _plans(db: Database, clock: ManualClock, covers: dict[str, str]) -> None:
    """Stored restock plans (as the inventory pass writes them) with the given covers."""
    restock = RestockRow.__table__  # type: ignore[attr-defined]
    async with db.write() as conn:
        await conn.execute(sa.delete(restock))
        if not covers:
            return
        await conn.execute(
            sa.insert(restock),
            [
                {
                    "sku": sku,
                    "supplier": "ACME",
                    "on_hand": int(Decimal(cover) * 10),
                    "on_hand_pools": {"merchant": int(Decimal(cover) * 10)},
                    "inbound": 0,
                    "daily_demand": 10.0,
                    "sigma": 1.0,
                    "demand_class": 1,
                    "days_of_supply": Decimal(cover),
                    "lead_time_days": 7,
                    "safety_stock": 5,
                    "reorder_point": 75,
                    "order_quantity": 600,
                    "order_by": clock.now().date(),
                    "order_value": None,
                    "forecast_start": clock.now().date(),
                    "computed_at": clock.now(),
                }
                for sku, cover in covers.items()
            ],
        )


async def test_many_restock_alerts_at_once_are_announced_as_one_digest(
    db: Database, clock: ManualClock, receiver: Receiver, make: Callable[..., Harness]
) -> None:
    """A first inventory pass on a large catalogue: 30 SKUs below 14 days (60 alerts) reach
    the receiver as one digest; each SKU's alert is still recorded once per crossing, a later
    single crossing is announced on its own, and the digested ones resolve silently."""
    h = make(receiver.url)
    alerter = h.alerter()
    await _healthy(db, clock)
    covers = {f"S{i:02d}": f"{10 + i / 10:.1f}" for i in range(30)}
    await _plans(db, clock, covers)
    with capture_logs() as logs:
        raised, cleared = await alerter.evaluate()
    assert (len(raised), cleared) == (60, [])
    assert [e["key"] for e in logs if e["event"] == "alert"] == [
        f"restock_digest:{clock.now().isoformat()}"
    ]
    [(key, state)] = receiver.alerts()
    assert (key.startswith("restock_digest:"), state) == (True, "raised")
    digest = receiver.bodies[0]["alert"]
    assert digest["severity"] == "error"
    assert digest["details"]["skus"] == 30
    assert digest["details"]["below"] == {"14": 30, "21": 30}
    assert [d["sku"] for d in digest["details"]["lowest"]][:2] == ["S00", "S01"]
    assert "30 SKUs need restocking" in receiver.bodies[0]["text"]
    clock.advance(60)
    assert await alerter.evaluate() == ([], [])  # once per crossing: nothing again
    await _plans(db, clock, covers | {"NEW": "18.0"})
    clock.advance(60)
    assert await alerter.evaluate() == (["restock:21:NEW"], [])
    assert receiver.alerts()[1:] == [("restock:21:NEW", "raised")]
    await _plans(db, clock, {})
    clock.advance(60)
    raised, cleared = await alerter.evaluate()
    assert (raised, len(cleared)) == ([], 61)
    assert receiver.alerts()[2:] == [("restock:21:NEW", "resolved")]
