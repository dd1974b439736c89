"""The daemon's start-up and channel opening, in process: the server does not wait for any
marketplace, a channel that hangs or refuses is degraded on its own, and catches up when it
opens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal as D
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from connectors.mock import MockChannel
from daemon import runtime
from daemon.app import Daemon, run_once
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus, WebhookEvent
from daemon.intents import PlannedWrite
from daemon.logging import SecretRedactor
from daemon.runtime import LinkState
from domain.clock import ManualClock
from domain.errors import ChannelAuthError
from tests.daemon_fixtures import actions, channel_states, loaded, seed, settings

SECRET = "lifecycle-webhook-secret"
INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
# The open timeout here (30 s in production): a hang is measured in wall-clock time.
OPEN_TIMEOUT_S = 0.2
TIMED_OUT = f"TimeoutError: open() did not finish within {OPEN_TIMEOUT_S:g} s"


class ParkedSleeps:
    """The runtime's sleep here: each one waits until the test ends it, and the manual clock
    then moves by it (the open timeout and the backoff take no real time)."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.parked: list[tuple[float, asyncio.Future[None]]] = []

    async def __call__(self, seconds: float) -> None:
        entry = (seconds, asyncio.get_running_loop().create_future())
        self.parked.append(entry)
        try:
            await entry[1]
        finally:
            self.parked.remove(entry)

    def end_all(self) -> None:
        """End every parked sleep, the clock moved past the longest."""
        self.clock.advance(max((seconds for seconds, _ in self.parked), default=0.0))
        for _, future in self.parked:
            if not future.done():
                future.set_result(None)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (bounded) for background work to reach a state."""
    for _ in range(1000):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def database_url(db: Database) -> str:
    """The fixture database's URL, for the daemon's config."""
    return db.url.render_as_string(hide_password=False)


def order(sku: str, order_id: str, quantity: int, now: Any) -> tuple[bytes, dict[str, str]]:
    """A signed mock order delivery."""
    body = json.dumps(
        {
            "order_id": order_id,
            "status": "placed",
            "lines": [{"sku": sku, "quantity": quantity}],
            "updated_at": now.isoformat(),
        }
    ).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Mock-Signature": signature, "X-Mock-Event-Id": order_id, "X-Mock-Topic": "order"}
    return body, headers


async def inbox_outcomes(db: Database) -> dict[str, str | None]:
    """Each delivery's outcome by dedupe key (None while unprocessed)."""
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(INBOX.c.dedupe_key, INBOX.c.outcome))).all()
    return {row.dedupe_key: row.outcome for row in rows}


async def health(db: Database) -> dict[str, Any]:
    """channel_state rows by channel."""
    return {row["channel"]: row for row in await channel_states(db)}


Opener = Callable[[MockChannel], Awaitable[None]]


@pytest.fixture
def beta_opens_with(monkeypatch: pytest.MonkeyPatch) -> Callable[[Opener], None]:
    """Make channel ``beta``'s open() run the given coroutine first (hang, refuse, ...); the
    open timeout is ``OPEN_TIMEOUT_S``."""
    monkeypatch.setattr(runtime, "OPEN_TIMEOUT_S", OPEN_TIMEOUT_S)

    def install(behaviour: Opener) -> None:
        original = MockChannel.open

        async def open_(self: MockChannel) -> None:
            if self.name == "beta":
                await behaviour(self)
            await original(self)

        monkeypatch.setattr(MockChannel, "open", open_)

    return install


@pytest.fixture
async def started(
    db: Database, clock: ManualClock
) -> AsyncIterator[Callable[[], Awaitable[tuple[Daemon, ParkedSleeps]]]]:
    """Start a Daemon on two mock channels (alpha, beta) over the fixture database; stop it."""
    daemons: list[Daemon] = []

    async def start() -> tuple[Daemon, ParkedSleeps]:
        channel = {"kind": "mock", "webhook_secret": SECRET, "competitors": 0}
        config = settings(
            channels={"alpha": channel, "beta": channel},
            database=database_url(db),
            server={"host": "127.0.0.1", "port": 0},
        )
        sleeps = ParkedSleeps(clock)
        daemon = Daemon(loaded(config), SecretRedactor(), clock, sleep=sleeps, scheduled=False)
        daemons.append(daemon)
        await daemon.start()
        return daemon, sleeps

    yield start
    for daemon in daemons:
        await daemon.stop()


async def test_a_hanging_channel_delays_nothing_and_catches_up_when_it_opens(
    db: Database,
    clock: ManualClock,
    started: Callable[[], Awaitable[tuple[Daemon, ParkedSleeps]]],
    beta_opens_with: Callable[[Opener], None],
) -> None:
    """beta's open() hangs: the server answers at once, beta is degraded after the open
    timeout (and retried with backoff), alpha's webhooks are stored, applied and its stock
    published, /readyz stays 200; when beta opens, its stored delivery is applied and its
    queued write lands."""
    released = asyncio.Event()

    async def hang(_channel: MockChannel) -> None:
        await released.wait()

    beta_opens_with(hang)
    daemon, sleeps = await started()
    rt = daemon.rt
    assert rt is not None
    assert daemon.passes is not None
    url = f"http://127.0.0.1:{daemon.port}"
    await seed(db, clock, rt, [{"sku": "A", "cost": D("10"), "stock": 10}], ("alpha", "beta"))
    # What an earlier process left queued for beta.
    await rt.outbox.record(
        [
            PlannedWrite(
                pass_id="earlier",
                kind=ActionKind.PRICE,
                channel="beta",
                sku="A",
                status=ActionStatus.PLANNED,
                old_price=D("20.00"),
                new_price=D("19.00"),
                currency="USD",
                reason="queued before the restart",
                idempotency_key="k-beta",
                created_at=clock.now(),
            )
        ]
    )

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as resp:
            assert resp.status == 200

        async def alpha_open() -> bool:
            return rt.is_open("alpha")

        await until(alpha_open, "alpha open")
        async with http.get(f"{url}/readyz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ready", "channels_not_open": ["beta"]}

        async def beta_degraded() -> bool:
            return rt.links["beta"].state is LinkState.DEGRADED and bool(sleeps.parked)

        await until(beta_degraded, "beta degraded and waiting to retry")
        state = await health(db)
        assert state["beta"]["health"] == "degraded"
        assert state["beta"]["last_error"] == TIMED_OUT
        assert state["alpha"]["health"] == "ok"
        assert rt.channel_errors == {"alpha": None, "beta": TIMED_OUT}

        assert set(await daemon.passes.run("reconcile")) == {"alpha"}  # beta is skipped
        for channel, order_id in (("alpha", "o-alpha"), ("beta", "o-beta")):
            body, headers = order("A", order_id, 2, clock.now())
            async with http.post(f"{url}/webhooks/{channel}", data=body, headers=headers) as resp:
                assert resp.status == 200
                assert await resp.json() == {"status": "stored"}

        alpha_market = rt.channels["alpha"].market  # type: ignore[attr-defined]

        async def alpha_applied_and_published() -> bool:
            outcomes = await inbox_outcomes(db)
            return outcomes["o-alpha"] == "applied" and alpha_market.listings["A"].quantity == 8

        await until(alpha_applied_and_published, "alpha's order applied and stock published")
        assert (await inbox_outcomes(db))["o-beta"] is None  # stored, waiting for beta
        async with http.get(f"{url}/readyz") as resp:
            assert resp.status == 200

        released.set()
        sleeps.end_all()  # the backoff ends; the next open() succeeds

        async def beta_caught_up() -> bool:
            outcomes = await inbox_outcomes(db)
            return rt.is_open("beta") and outcomes["o-beta"] == "applied"

        await until(beta_caught_up, "beta open and its stored order applied")
    beta_market = rt.channels["beta"].market  # type: ignore[attr-defined]
    assert beta_market.listings["A"].price == D("19.00")
    (queued,) = await actions(db, idempotency_key="k-beta")
    assert queued.status == "confirmed"
    state = await health(db)
    assert state["beta"]["health"] == "ok"


async def test_refused_credentials_make_the_channel_auth_failed_and_the_daemon_stays_ready(
    db: Database,
    clock: ManualClock,
    started: Callable[[], Awaitable[tuple[Daemon, ParkedSleeps]]],
    beta_opens_with: Callable[[Opener], None],
) -> None:
    """beta's credentials are refused: it is auth_failed (retried slowly), /readyz is 200 and
    alpha's webhooks are still stored."""

    async def refuse(_channel: MockChannel) -> None:
        raise ChannelAuthError("refresh token refused")

    beta_opens_with(refuse)
    daemon, sleeps = await started()
    rt = daemon.rt
    assert rt is not None

    async def beta_refused() -> bool:
        return rt.links["beta"].state is LinkState.AUTH_FAILED and bool(sleeps.parked)

    await until(beta_refused, "beta auth_failed and waiting to retry")
    assert (await health(db))["beta"]["health"] == "auth_failed"
    assert 1.0 <= (rt.links["beta"].retry_in_s or 0) <= 2.0  # the first backoff
    url = f"http://127.0.0.1:{daemon.port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/readyz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ready", "channels_not_open": ["beta"]}
        body, headers = order("A", "o-1", 1, clock.now())
        async with http.post(f"{url}/webhooks/alpha", data=body, headers=headers) as resp:
            assert resp.status == 200
    sleeps.end_all()

    async def tried_again() -> bool:
        return rt.links["beta"].attempts == 2 and bool(sleeps.parked)

    await until(tried_again, "beta retried")
    assert rt.links["beta"].state is LinkState.AUTH_FAILED


async def test_stop_during_a_hanging_open_cancels_it(
    db: Database,
    clock: ManualClock,
    started: Callable[[], Awaitable[tuple[Daemon, ParkedSleeps]]],
    beta_opens_with: Callable[[Opener], None],
) -> None:
    """Stopping while beta's open() hangs ends at once: the opener is cancelled, beta stays
    unopened, nothing is recorded as a failure."""
    entered = asyncio.Event()

    async def hang(_channel: MockChannel) -> None:
        entered.set()
        await asyncio.Event().wait()

    beta_opens_with(hang)
    daemon, _sleeps = await started()
    await asyncio.wait_for(entered.wait(), timeout=10)
    await asyncio.wait_for(daemon.stop(), timeout=10)
    assert daemon.rt is not None
    assert daemon.rt.channels == {}
    assert "beta" not in await health(db)


async def test_run_once_skips_a_channel_that_hangs_and_exits_1(
    db: Database, clock: ManualClock, beta_opens_with: Callable[[Opener], None]
) -> None:
    """`run --once` with beta hanging: beta's open() is abandoned at the timeout and it is
    recorded degraded, alpha's passes run (its health is ok), the exit code is 1."""

    async def hang(_channel: MockChannel) -> None:
        await asyncio.Event().wait()

    async def no_wait(seconds: float) -> None:
        clock.advance(seconds)

    beta_opens_with(hang)
    channel = {"kind": "mock", "webhook_secret": SECRET, "competitors": 0}
    config = settings(channels={"alpha": channel, "beta": channel}, database=database_url(db))
    code = await asyncio.wait_for(
        run_once(loaded(config), SecretRedactor(), clock, sleep=no_wait), timeout=60
    )
    assert code == 1
    state = await health(db)
    assert state["beta"]["health"] == "degraded"
    assert state["beta"]["last_error"] == TIMED_OUT
    assert state["alpha"]["health"] == "ok"


async def test_ping_writable_refuses_a_read_only_database(db: Database) -> None:
    """The readiness check opens a write transaction; on PostgreSQL a database whose sessions
    are read-only is refused."""
    await db.ping_writable()
    if db.is_sqlite:
        return
    name = db.url.database
    async with db.write() as conn:
        await conn.execute(
            sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        )
    await db.dispose()  # new sessions pick the default up
    with pytest.raises(RuntimeError, match="accepts no writes"):
        await db.ping_writable()
