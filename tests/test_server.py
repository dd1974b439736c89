"""The HTTP server: webhook inbox (R1-R4), operator trigger, health, readiness, metrics, stop."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from structlog.testing import capture_logs

from connectors.base import ChannelDeps
from connectors.mock import MockChannel, MockSettings
from daemon.db.engine import Database
from daemon.db.models import WebhookEvent
from daemon.metrics import Metrics
from daemon.server import ServerContext, ServerHandle, start_server
from domain.clock import ManualClock

SECRET = "s3cret-value"
TOKEN = "operator-token-123456"
LIMIT = 4096
CHANNEL = "shop-a"


@dataclass
class Served:
    """A running server and the knobs its context reads on every request."""

    handle: ServerHandle
    session: aiohttp.ClientSession
    db: Database
    channel: MockChannel
    errors: dict[str, str | None] = field(default_factory=dict)
    shutting_down: bool = False
    token: SecretStr | None = None
    woken: list[str] = field(default_factory=list)
    passes: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.handle.port}"

    async def rows(self) -> list[Any]:
        """Every inbox row."""
        table = WebhookEvent.__table__  # type: ignore[attr-defined]
        async with self.db.read() as conn:
            return list((await conn.execute(sa.select(table))).all())


def sign(body: bytes) -> str:
    """The mock channel's signature of a body."""
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def webhook_headers(body: bytes, event_id: str = "evt-1") -> dict[str, str]:
    """Headers of a correctly signed mock delivery."""
    return {
        "X-Mock-Signature": sign(body),
        "X-Mock-Event-Id": event_id,
        "X-Mock-Topic": "orders/create",
        "Content-Type": "application/json",
    }


BODY = json.dumps({"order": {"id": 1, "sku": "A-1", "qty": 2}}).encode()

Serve = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve(clock: ManualClock) -> AsyncIterator[Serve]:
    """Start a real server on a free port around a database; stop everything afterwards."""
    started: list[Served] = []
    http = httpx.AsyncClient()

    async def make(
        db: Database,
        *,
        body_read_timeout_s: float = 10.0,
        shutdown_timeout_s: float = 1.0,
        request_pass: Callable[..., Awaitable[str]] | None = None,
    ) -> Served:
        channel = MockChannel(
            CHANNEL,
            MockSettings(kind="mock", webhook_secret=SecretStr(SECRET)),
            ChannelDeps(http=http, clock=clock),
        )
        holder: list[Served] = []

        async def record_pass(name: str, channels: tuple[str, ...], skus: tuple[str, ...]) -> str:
            holder[0].passes.append((name, channels, skus))
            return f"pass-{len(holder[0].passes)}"

        ctx = ServerContext(
            db=db,
            metrics=Metrics(),
            clock=clock,
            channels=lambda: {CHANNEL: channel},
            channel_errors=lambda: holder[0].errors,
            webhook_max_bytes=lambda: LIMIT,
            sync_token=lambda: holder[0].token,
            on_webhook_stored=lambda name: holder[0].woken.append(name),
            request_pass=request_pass or record_pass,
            shutting_down=lambda: holder[0].shutting_down,
            body_read_timeout_s=body_read_timeout_s,
        )
        handle = await start_server(ctx, "127.0.0.1", 0, shutdown_timeout_s=shutdown_timeout_s)
        served = Served(handle, aiohttp.ClientSession(), db, channel, errors={CHANNEL: None})
        holder.append(served)
        started.append(served)
        return served

    yield make
    for served in started:
        await served.session.close()
        await served.handle.stop()
    await http.aclose()


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection and return everything the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    await writer.wait_closed()
    return head


# -- webhooks ---------------------------------------------------------------------------------


async def test_signed_webhook_is_stored_then_acknowledged(
    db: Database, serve: Serve, clock: ManualClock
) -> None:
    """A valid delivery gets 200 stored, one inbox row with the raw payload, one wake-up."""
    s = await serve(db)
    async with s.session.post(
        f"{s.url}/webhooks/{CHANNEL}", data=BODY, headers=webhook_headers(BODY)
    ) as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "stored"}
    rows = await s.rows()
    assert len(rows) == 1
    row = rows[0]
    assert (row.channel, row.dedupe_key, row.topic) == (CHANNEL, "evt-1", "orders/create")
    assert row.payload == BODY.decode()
    assert row.received_at == clock.now()
    assert row.processed_at is None
    assert s.woken == [CHANNEL]


async def test_same_delivery_ten_times_concurrently_is_stored_once(
    db: Database, serve: Serve
) -> None:
    """Ten concurrent copies: all 200, exactly one row, the worker woken once (R4)."""
    s = await serve(db)

    async def deliver() -> tuple[int, Any]:
        async with s.session.post(
            f"{s.url}/webhooks/{CHANNEL}", data=BODY, headers=webhook_headers(BODY)
        ) as resp:
            return resp.status, await resp.json()

    answers = await asyncio.gather(*(deliver() for _ in range(10)))
    assert [status for status, _ in answers] == [200] * 10
    assert sorted(body["status"] for _, body in answers) == ["duplicate"] * 9 + ["stored"]
    assert len(await s.rows()) == 1
    assert s.woken == [CHANNEL]


async def test_flipped_body_byte_is_refused_and_not_stored(db: Database, serve: Serve) -> None:
    """A body changed after signing gets 401 and leaves the inbox empty (R1)."""
    s = await serve(db)
    headers = webhook_headers(BODY)
    tampered = bytes([BODY[0] ^ 0x01]) + BODY[1:]
    async with s.session.post(
        f"{s.url}/webhooks/{CHANNEL}", data=tampered, headers=headers
    ) as resp:
        assert resp.status == 401
    assert await s.rows() == []
    assert s.woken == []


async def test_missing_signature_is_refused(sqlite_db: Database, serve: Serve) -> None:
    """No signature header: 401, nothing stored."""
    s = await serve(sqlite_db)
    headers = webhook_headers(BODY)
    del headers["X-Mock-Signature"]
    async with s.session.post(f"{s.url}/webhooks/{CHANNEL}", data=BODY, headers=headers) as resp:
        assert resp.status == 401
    assert await s.rows() == []


async def test_oversize_body_by_content_length_is_refused(db: Database, serve: Serve) -> None:
    """A declared length over the limit gets 413 without the body being verified (R2)."""
    s = await serve(db)
    body = b"x" * (LIMIT + 1)
    async with s.session.post(
        f"{s.url}/webhooks/{CHANNEL}", data=body, headers=webhook_headers(body)
    ) as resp:
        assert resp.status == 413
    assert await s.rows() == []


async def test_oversize_chunked_body_is_refused_while_reading(
    sqlite_db: Database, serve: Serve
) -> None:
    """A chunked body (no Content-Length) that grows past the limit gets 413."""
    s = await serve(sqlite_db)
    body = b"y" * (LIMIT * 2)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    async with s.session.post(
        f"{s.url}/webhooks/{CHANNEL}", data=chunks(), headers=webhook_headers(body)
    ) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert resp.status == 413
    assert await s.rows() == []


async def test_chunked_body_within_limit_is_stored(sqlite_db: Database, serve: Serve) -> None:
    """A chunked body under the limit is read whole and verified over the exact bytes."""
    s = await serve(sqlite_db)

    async def chunks() -> AsyncIterator[bytes]:
        yield BODY[:5]
        yield BODY[5:]

    async with s.session.post(
        f"{s.url}/webhooks/{CHANNEL}", data=chunks(), headers=webhook_headers(BODY)
    ) as resp:
        assert resp.status == 200
    assert len(await s.rows()) == 1


async def test_expect_continue_over_limit_is_refused_before_the_body(
    sqlite_db: Database, serve: Serve
) -> None:
    """With Expect: 100-continue, an oversize request gets 413 instead of 100 Continue."""
    s = await serve(sqlite_db)
    head = await raw_exchange(
        s.handle.port,
        f"POST /webhooks/{CHANNEL} HTTP/1.1\r\nHost: x\r\nContent-Length: {LIMIT + 1}\r\n"
        "Expect: 100-continue\r\n\r\n".encode(),
    )
    assert head.startswith(b"HTTP/1.1 413")


async def test_slow_body_times_out(sqlite_db: Database, serve: Serve) -> None:
    """A sender that stops mid-body gets 408 instead of holding the handler forever."""
    s = await serve(sqlite_db, body_read_timeout_s=0.05)
    head = await raw_exchange(
        s.handle.port,
        f"POST /webhooks/{CHANNEL} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        "only-part".encode(),
    )
    assert head.startswith(b"HTTP/1.1 408")
    assert await s.rows() == []


async def test_unknown_channel_is_404(sqlite_db: Database, serve: Serve) -> None:
    """A channel name not in the config gets 404 JSON, counted under a fixed label."""
    s = await serve(sqlite_db)
    async with s.session.post(
        f"{s.url}/webhooks/nope", data=BODY, headers=webhook_headers(BODY)
    ) as resp:
        assert resp.status == 404
        assert "unknown channel" in (await resp.json())["error"]
    async with s.session.get(f"{s.url}/metrics") as resp:
        text = await resp.text()
    assert 'repricerd_webhooks_total{channel="unknown",outcome="unknown_channel"} 1.0' in text


async def test_get_webhook_is_405(sqlite_db: Database, serve: Serve) -> None:
    """GET on a webhook route is not used by any channel yet."""
    s = await serve(sqlite_db)
    async with s.session.get(f"{s.url}/webhooks/{CHANNEL}") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "POST"


async def test_get_challenge_is_answered_by_a_channel_that_knows_how(
    sqlite_db: Database, serve: Serve
) -> None:
    """eBay validates an endpoint with GET ?challenge_code=...; the channel computes the answer."""
    s = await serve(sqlite_db)
    s.channel.answer_challenge = lambda code: {"challengeResponse": f"hash-of-{code}"}
    async with s.session.get(f"{s.url}/webhooks/{CHANNEL}?challenge_code=abc") as resp:
        assert resp.status == 200
        assert await resp.json() == {"challengeResponse": "hash-of-abc"}
    async with s.session.get(f"{s.url}/webhooks/{CHANNEL}") as resp:
        assert resp.status == 400


async def test_a_channel_that_cannot_prepare_verification_gets_503_and_nothing_stored(
    sqlite_db: Database, serve: Serve
) -> None:
    """A key service that is down is the sender's cue to retry, not a 401 and not a 200."""
    s = await serve(sqlite_db)
    prepared: list[str] = []

    async def prepare(headers: Any) -> None:
        prepared.append(headers.get("X-Mock-Event-Id", ""))
        if len(prepared) == 1:
            raise ConnectionError("key service down")

    s.channel.prepare_webhook = prepare
    body = b'{"sku": "MUG-1"}'
    async with s.session.post(
        f"{s.url}/webhooks/{CHANNEL}", data=body, headers=webhook_headers(body)
    ) as resp:
        assert resp.status == 503
    assert await s.rows() == []
    async with s.session.post(
        f"{s.url}/webhooks/{CHANNEL}", data=body, headers=webhook_headers(body)
    ) as resp:
        assert resp.status == 200
    assert prepared == ["evt-1", "evt-1"]
    assert len(await s.rows()) == 1


async def test_database_failure_answers_503(sqlite_db: Database, serve: Serve) -> None:
    """When the inbox cannot be written the sender gets 503 (and retries), never 200."""
    s = await serve(sqlite_db)
    async with sqlite_db.write() as conn:
        await conn.execute(sa.text("DROP TABLE webhook_event"))
    async with s.session.post(
        f"{s.url}/webhooks/{CHANNEL}", data=BODY, headers=webhook_headers(BODY)
    ) as resp:
        assert resp.status == 503
    assert s.woken == []


async def test_webhook_logs_carry_no_body_or_signature(sqlite_db: Database, serve: Serve) -> None:
    """Log events name the outcome but never the body or the signature header."""
    s = await serve(sqlite_db)
    with capture_logs() as events:
        async with s.session.post(
            f"{s.url}/webhooks/{CHANNEL}", data=BODY, headers=webhook_headers(BODY)
        ) as resp:
            assert resp.status == 200
        async with s.session.post(
            f"{s.url}/webhooks/{CHANNEL}", data=b"{}", headers=webhook_headers(BODY, "evt-2")
        ) as resp:
            assert resp.status == 401
    webhooks = [e for e in events if e["event"] == "webhook"]
    assert [e["outcome"] for e in webhooks] == ["stored", "unauthorized"]
    dumped = repr(events)
    assert sign(BODY) not in dumped
    assert "A-1" not in dumped


# -- health, readiness, metrics ---------------------------------------------------------------


async def test_healthz(sqlite_db: Database, serve: Serve) -> None:
    """Liveness answers 200 ok."""
    s = await serve(sqlite_db)
    async with s.session.get(f"{s.url}/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok"}


async def test_readyz_ignores_channels_and_fails_when_shutting_down(
    sqlite_db: Database, serve: Serve
) -> None:
    """A channel that cannot open does not fail readiness (its webhooks are still stored; it is
    listed); shutting down does."""
    s = await serve(sqlite_db)
    async with s.session.get(f"{s.url}/readyz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ready", "channels_not_open": []}
    s.errors[CHANNEL] = "ChannelAuthError: refresh token refused"
    async with s.session.get(f"{s.url}/readyz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ready", "channels_not_open": [CHANNEL]}
    s.shutting_down = True
    async with s.session.get(f"{s.url}/readyz") as resp:
        assert resp.status == 503
        assert await resp.json() == {"status": "unready", "shutting_down": True}


async def test_readyz_checks_the_database_at_most_every_1_5_s(
    sqlite_db: Database, serve: Serve, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probes within 1.5 s reuse the last database check; the next one checks again (here it
    finds the database refusing writes)."""
    calls: list[str] = []
    original = sqlite_db.ping_writable

    async def counted() -> None:
        calls.append("ping")
        if len(calls) > 1:
            raise RuntimeError("disk I/O error\nSQL: BEGIN IMMEDIATE")
        await original()

    monkeypatch.setattr(sqlite_db, "ping_writable", counted)
    s = await serve(sqlite_db)
    for _ in range(3):
        async with s.session.get(f"{s.url}/readyz") as resp:
            assert resp.status == 200
    assert calls == ["ping"]
    clock.advance(1.5)
    async with s.session.get(f"{s.url}/readyz") as resp:
        assert resp.status == 503
        assert await resp.json() == {
            "status": "unready",
            "database": "RuntimeError: disk I/O error",
        }
    assert calls == ["ping", "ping"]


async def test_readyz_reports_an_unreachable_database(serve: Serve) -> None:
    """A database that refuses connections makes readiness 503 with the error text."""
    unreachable = Database("postgresql://nobody@127.0.0.1:1/none")
    try:
        s = await serve(unreachable)
        async with s.session.get(f"{s.url}/readyz") as resp:
            assert resp.status == 503
            assert "database" in await resp.json()
    finally:
        await unreachable.dispose()


async def test_metrics_exposes_webhook_counter(sqlite_db: Database, serve: Serve) -> None:
    """/metrics is Prometheus text with the webhook counter."""
    s = await serve(sqlite_db)
    async with s.session.post(
        f"{s.url}/webhooks/{CHANNEL}", data=BODY, headers=webhook_headers(BODY)
    ) as resp:
        assert resp.status == 200
    async with s.session.get(f"{s.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    assert "repricerd_webhooks_total" in text
    assert f'repricerd_webhooks_total{{channel="{CHANNEL}",outcome="stored"}} 1.0' in text


# -- POST /sync -------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


async def test_sync_is_disabled_without_a_token(sqlite_db: Database, serve: Serve) -> None:
    """No configured token: 403 with the setting to change."""
    s = await serve(sqlite_db)
    async with s.session.post(
        f"{s.url}/sync", json={"pass": "reprice"}, headers=bearer(TOKEN)
    ) as resp:
        assert resp.status == 403
        assert await resp.json() == {"error": "POST /sync is disabled: set server.sync_token"}
    assert s.passes == []


@pytest.mark.parametrize(
    "headers", [{}, bearer("wrong"), bearer("é-non-ascii"), {"Authorization": f"Basic {TOKEN}"}]
)
async def test_sync_refuses_a_wrong_token(
    sqlite_db: Database, serve: Serve, headers: dict[str, str]
) -> None:
    """Missing, wrong, non-ASCII or non-bearer credentials get 401."""
    s = await serve(sqlite_db)
    s.token = SecretStr(TOKEN)
    async with s.session.post(f"{s.url}/sync", json={"pass": "reprice"}, headers=headers) as resp:
        assert resp.status == 401
    assert s.passes == []


async def test_sync_requests_the_pass(sqlite_db: Database, serve: Serve) -> None:
    """A good token and body start the pass with the parsed arguments and answer 202."""
    s = await serve(sqlite_db)
    s.token = SecretStr(TOKEN)
    async with s.session.post(
        f"{s.url}/sync",
        json={"pass": "stock_sync", "channels": [CHANNEL], "skus": ["A-1", "B-2"]},
        headers=bearer(TOKEN),
    ) as resp:
        assert resp.status == 202
        assert await resp.json() == {"pass_id": "pass-1"}
    assert s.passes == [("stock_sync", (CHANNEL,), ("A-1", "B-2"))]
    async with s.session.post(
        f"{s.url}/sync", json={"pass": "reconcile"}, headers=bearer(TOKEN)
    ) as resp:
        assert resp.status == 202
    assert s.passes[-1] == ("reconcile", (), ())


async def test_sync_is_refused_while_shutting_down(sqlite_db: Database, serve: Serve) -> None:
    """No new pass starts once shutdown has begun."""
    s = await serve(sqlite_db)
    s.token = SecretStr(TOKEN)
    s.shutting_down = True
    async with s.session.post(
        f"{s.url}/sync", json={"pass": "reprice"}, headers=bearer(TOKEN)
    ) as resp:
        assert resp.status == 503
    assert s.passes == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"pass": "dance"}', "pass must be one of"),
        (b'{"pass": "reprice", "channels": ["nope"]}', "unknown channels ['nope']"),
        (b'{"pass": "reprice", "skus": "A-1"}', "skus must be a list"),
        (b'{"pass": "reprice", "extra": 1}', "unknown keys"),
        (b'{"pass": ', "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
async def test_sync_rejects_bad_bodies(
    sqlite_db: Database, serve: Serve, body: bytes, message: str
) -> None:
    """Unknown pass or channel, wrong types and malformed JSON get 400 with a clear message."""
    s = await serve(sqlite_db)
    s.token = SecretStr(TOKEN)
    headers = {**bearer(TOKEN), "Content-Type": "application/json"}
    async with s.session.post(f"{s.url}/sync", data=body, headers=headers) as resp:
        assert resp.status == 400
        assert message in (await resp.json())["error"]
    assert s.passes == []


# -- lifecycle --------------------------------------------------------------------------------


async def test_stop_ends_in_flight_requests_and_refuses_new_ones(
    sqlite_db: Database, serve: Serve
) -> None:
    """stop() returns promptly even with a hung request, and the port stops accepting."""
    entered = asyncio.Event()
    never = asyncio.Event()

    async def hang(*_args: Any) -> str:
        entered.set()
        await never.wait()
        return "unreachable"

    s = await serve(sqlite_db, request_pass=hang, shutdown_timeout_s=0.05)
    s.token = SecretStr(TOKEN)
    in_flight = asyncio.create_task(
        s.session.post(f"{s.url}/sync", json={"pass": "reprice"}, headers=bearer(TOKEN))
    )
    await entered.wait()
    async with asyncio.timeout(2):
        await s.handle.stop()
    with pytest.raises(aiohttp.ClientError):
        await in_flight
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", s.handle.port)
    await s.handle.stop()  # idempotent
