"""The HTTP server: webhook inbox, operator trigger, liveness, readiness, status and metrics.

Webhook handlers never call a marketplace: cap the body, verify the signature over the raw
bytes, insert into the ``webhook_event`` inbox (deduplicated by the database, not by a
SELECT), answer only after the commit, then wake the inbox worker.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import hdrs, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_urldispatcher import _default_expect_handler
from pydantic import SecretStr

from connectors.base import AnswersChallenge, Channel, PreparesWebhook
from daemon.db.engine import Database
from daemon.logging import get_logger
from daemon.metrics import CONTENT_TYPE_LATEST, Metrics
from daemon.passes import PASS_NAMES
from daemon.status import StatusSnapshot, publish, read_status
from daemon.webhook_store import InboxRow, WebhookStore
from domain.clock import Clock
from domain.errors import WebhookError

__all__ = ["ServerContext", "ServerHandle", "build_admin_app", "build_app", "start_server"]

# Every body is read through our own capped reader, so aiohttp's limit (which only applies to
# request.read()/json()) must never be the one that refuses: set it at the settings' maximum.
_CLIENT_MAX_SIZE: Final = 10 * 1024 * 1024
_SYNC_MAX_BYTES: Final = 64 * 1024
# Readiness must answer even when the database hangs (a probe that hangs is a failed probe).
_PING_TIMEOUT_S: Final = 2.0
_STATUS_TIMEOUT_S: Final = 10.0
# A load balancer probing every instance every second must not add a write transaction per
# probe: the database check is reused for this long.
_READY_CACHE_S: Final = 1.5
_LISTEN_BACKLOG: Final = 1024
# Fetching a verification key must not hold an acknowledgement past the senders' timeouts.
_PREPARE_TIMEOUT_S: Final = 2.0
# Metrics label for unknown channel names: the URL is attacker-controlled, the label set is not.
_UNKNOWN_CHANNEL_LABEL: Final = "unknown"

_log = get_logger(component="http")


@dataclass(frozen=True)
class ServerContext:
    """Everything the HTTP handlers may use, injected by the daemon (callables see hot reloads)."""

    db: Database
    metrics: Metrics
    clock: Clock
    channels: Callable[[], Mapping[str, Channel]]
    channel_errors: Callable[[], Mapping[str, str | None]]
    webhook_max_bytes: Callable[[], int]
    sync_token: Callable[[], SecretStr | None]
    on_webhook_stored: Callable[[str], None]
    request_pass: Callable[[str, tuple[str, ...], tuple[str, ...]], Awaitable[str]]
    shutting_down: Callable[[], bool]
    # A sender that stops mid-body must not hold a handler (and a shutdown) forever.
    body_read_timeout_s: float = 10.0


class _DatabaseCheck:
    """The database's readiness verdict, re-checked at most every ``_READY_CACHE_S``; probes
    that arrive during a check share it."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self._verdict: str | None = None
        self._at: float | None = None
        self._running: asyncio.Task[str | None] | None = None

    async def problem(self) -> str | None:
        """``None`` when a write transaction can be opened, else why not."""
        fresh = self._at is not None and self.clock.monotonic() - self._at < _READY_CACHE_S
        if fresh:
            return self._verdict
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._check(), name="readyz-database")
        return await asyncio.shield(self._running)

    async def _check(self) -> str | None:
        try:
            async with asyncio.timeout(_PING_TIMEOUT_S):
                await self.db.ping_writable()
            verdict = None
        except TimeoutError:
            verdict = f"no write transaction within {_PING_TIMEOUT_S:g} s"
        except Exception as err:
            # First line only: SQLAlchemy appends the statement and a docs link.
            first_line = next(iter(str(err).splitlines()), "")
            verdict = f"{type(err).__name__}: {first_line}"[:300]
        self._verdict, self._at = verdict, self.clock.monotonic()
        return verdict


CTX: Final = web.AppKey("repricerd_server_ctx", ServerContext)
STORE: Final = web.AppKey("repricerd_webhook_store", WebhookStore)
DB_CHECK: Final = web.AppKey("repricerd_database_check", _DatabaseCheck)


class _BodyTooLarge(Exception):
    """The body grew past the limit while being read."""


def _json(http_status: int, /, **body: Any) -> web.Response:
    return web.json_response(body, status=http_status)


async def _read_capped(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """Read at most ``limit + 1`` bytes of the body; raise ``_BodyTooLarge`` past ``limit``."""
    chunks: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout_s):
        while size <= limit:
            chunk = await request.content.read(limit + 1 - size)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
    raise _BodyTooLarge


# -- webhooks ---------------------------------------------------------------------------------


def _webhook_refusal(request: web.Request) -> web.Response | None:
    """Answer what can be refused from the request line and headers alone (before any body)."""
    ctx = request.app[CTX]
    name = request.match_info["channel"]
    if name not in ctx.channels():
        return _webhook_outcome(
            ctx, name, "unknown_channel", 404, error=f"unknown channel {name!r}"
        )
    limit = ctx.webhook_max_bytes()
    if request.content_length is not None and request.content_length > limit:
        response = _webhook_outcome(
            ctx,
            name,
            "too_large",
            413,
            error=f"body over {limit} bytes",
            bytes=request.content_length,
        )
        # Do not keep a connection whose unread body aiohttp would otherwise drain and reuse.
        response.force_close()
        return response
    return None


def _webhook_outcome(
    ctx: ServerContext, channel: str, outcome: str, status: int, **fields: Any
) -> web.Response:
    """Count and log one delivery outcome; return the JSON answer (``error`` or ``status``)."""
    known = channel in ctx.channels()
    ctx.metrics.webhooks.labels(channel if known else _UNKNOWN_CHANNEL_LABEL, outcome).inc()
    # Never the body or the headers: they carry signatures and customer data.
    log_fields = {k: v for k, v in fields.items() if k != "error"}
    level = _log.info if status < 400 else _log.warning
    level("webhook", channel=channel[:100], outcome=outcome, http_status=status, **log_fields)
    if "error" in fields:
        return _json(status, error=fields["error"])
    return _json(status, status=outcome)


async def _webhook_expect(request: web.Request) -> web.Response | None:
    """Refuse an ``Expect: 100-continue`` request before the client sends its body."""
    refusal = _webhook_refusal(request)
    if refusal is not None:
        return refusal
    await _default_expect_handler(request)
    return None


async def _post_webhook(request: web.Request) -> web.Response:
    """Verify, deduplicate and store one delivery; 200 only after the inbox row is committed."""
    ctx = request.app[CTX]
    refusal = _webhook_refusal(request)
    if refusal is not None:
        return refusal
    name = request.match_info["channel"]
    channel = ctx.channels()[name]
    limit = ctx.webhook_max_bytes()
    try:
        body = await _read_capped(request, limit, ctx.body_read_timeout_s)
    except _BodyTooLarge:
        response = _webhook_outcome(ctx, name, "too_large", 413, error=f"body over {limit} bytes")
        response.force_close()
        return response
    except TimeoutError:
        response = _webhook_outcome(ctx, name, "error", 408, error="body not received in time")
        response.force_close()
        return response

    # What isinstance(channel, PreparesWebhook) decides (the method is there), without the
    # runtime protocol's walk over its members on every delivery (~25 µs).
    prepare = getattr(channel, PreparesWebhook.prepare_webhook.__name__, None)
    if prepare is not None:
        try:
            async with asyncio.timeout(_PREPARE_TIMEOUT_S):
                await prepare(request.headers)
        except WebhookError as err:
            return _webhook_outcome(ctx, name, "unauthorized", err.status, error=str(err))
        except Exception as err:  # e.g. the key service is down: the sender retries later
            return _webhook_outcome(
                ctx, name, "error", 503, error="cannot verify now", reason=type(err).__name__
            )
    try:
        delivery = channel.verify_webhook(request.headers, body)
    except WebhookError as err:
        outcome = {401: "unauthorized", 413: "too_large"}.get(err.status, "error")
        return _webhook_outcome(ctx, name, outcome, err.status, error=str(err), reason=str(err))
    except Exception as err:  # a connector bug or an undecodable body: refuse, store nothing
        return _webhook_outcome(
            ctx,
            name,
            "error",
            400,
            error="delivery could not be verified",
            reason=type(err).__name__,
        )

    row = InboxRow(name, delivery.dedupe_key, delivery.topic, delivery.payload, ctx.clock.now())
    try:
        # Committed (with whatever else arrived meanwhile) before we answer: the 2xx means
        # "durably in the inbox".
        stored = await request.app[STORE].store(row)
    except Exception as err:  # the sender retries on 5xx; nothing was acknowledged
        return _webhook_outcome(
            ctx,
            name,
            "error",
            503,
            error="inbox unavailable, retry later",
            reason=type(err).__name__,
            dedupe_key=delivery.dedupe_key,
        )

    outcome = "stored" if stored else "duplicate"
    response = _webhook_outcome(
        ctx,
        name,
        outcome,
        200,
        topic=delivery.topic,
        dedupe_key=delivery.dedupe_key,
        bytes=len(body),
    )
    if stored:
        try:
            ctx.on_webhook_stored(name)
        except Exception:  # the row is committed; the inbox sweep (every minute) picks it up
            _log.exception("webhook_wake_failed", channel=name)
    return response


async def _get_webhook(request: web.Request) -> web.Response:
    """Answer a marketplace's endpoint challenge (eBay's ``challenge_code``); else 405."""
    ctx = request.app[CTX]
    name = request.match_info["channel"]
    channel = ctx.channels().get(name)
    code = request.query.get("challenge_code", "")
    if channel is None or not isinstance(channel, AnswersChallenge):
        return web.json_response({"error": "use POST"}, status=405, headers={hdrs.ALLOW: "POST"})
    if not code or len(code) > 512:
        return _json(400, error="challenge_code is required")
    _log.info("webhook_challenge", channel=name)
    return web.json_response(channel.answer_challenge(code))


# -- operator trigger -------------------------------------------------------------------------


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _parse_sync(
    body: bytes, known: Mapping[str, Channel]
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """Validate a ``POST /sync`` body; raise ``ValueError`` with a message for the operator."""
    try:
        data = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError) as err:
        raise ValueError(f"body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError('body must be a JSON object like {"pass": "reprice"}')
    unknown = sorted(set(data) - {"pass", "channels", "skus"})
    if unknown:
        raise ValueError(f"unknown keys {unknown}: allowed are pass, channels, skus")
    pass_name = data.get("pass")
    if pass_name not in PASS_NAMES:
        raise ValueError(f"pass must be one of {list(PASS_NAMES)}, got {pass_name!r}")
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("channels", "skus"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ValueError(f"{key} must be a list of non-empty strings")
        lists[key] = tuple(dict.fromkeys(value))
    missing = [c for c in lists["channels"] if c not in known]
    if missing:
        raise ValueError(f"unknown channels {missing}: configured are {sorted(known)}")
    return pass_name, lists["channels"], lists["skus"]


def _token_refusal(request: web.Request, expected: SecretStr, event: str) -> web.Response | None:
    """401 unless the request carries ``expected`` as its bearer token."""
    given = _bearer(request)
    # Bytes, not str: compare_digest refuses non-ASCII str and would turn a bad token into a 500.
    if given is None or not hmac.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    ):
        _log.warning(event)
        return web.json_response(
            {"error": "missing or wrong bearer token"},
            status=401,
            headers={hdrs.WWW_AUTHENTICATE: "Bearer"},
        )
    return None


async def _post_sync(request: web.Request) -> web.Response:
    """Start a pass now for some channels/SKUs (operator trigger, bearer token)."""
    ctx = request.app[CTX]
    expected = ctx.sync_token()
    if expected is None:
        return _json(403, error="POST /sync is disabled: set server.sync_token")
    refusal = _token_refusal(request, expected, "sync_unauthorized")
    if refusal is not None:
        return refusal
    if ctx.shutting_down():
        return _json(503, error="shutting down")
    try:
        body = await _read_capped(request, _SYNC_MAX_BYTES, ctx.body_read_timeout_s)
    except _BodyTooLarge:
        return _json(413, error=f"body over {_SYNC_MAX_BYTES} bytes")
    except TimeoutError:
        return _json(408, error="body not received in time")
    try:
        pass_name, channels, skus = _parse_sync(body, ctx.channels())
    except ValueError as err:
        return _json(400, error=str(err))
    pass_id = await ctx.request_pass(pass_name, channels, skus)
    _log.info(
        "sync_requested",
        pass_name=pass_name,
        channels=list(channels),
        skus=len(skus),
        pass_id=pass_id,
    )
    return _json(202, pass_id=pass_id)


# -- health and metrics -----------------------------------------------------------------------


async def _healthz(_request: web.Request) -> web.Response:
    """Liveness: the event loop answers."""
    return _json(200, status="ok")


async def _readyz(request: web.Request) -> web.Response:
    """Readiness: webhooks can be accepted and durably stored (the database takes a write
    transaction) and the process is not shutting down. A marketplace never fails it: its
    webhooks are stored all the same, and the other channels' must keep flowing."""
    ctx = request.app[CTX]
    problems: dict[str, Any] = {}
    if ctx.shutting_down():
        problems["shutting_down"] = True
    else:
        database = await request.app[DB_CHECK].problem()
        if database is not None:
            problems["database"] = database
    if problems:
        return _json(503, status="unready", **problems)
    # Shown, not judged: GET /status and `repricerd status` say more.
    not_open = sorted(name for name, error in ctx.channel_errors().items() if error is not None)
    return _json(200, status="ready", channels_not_open=not_open)


async def _read_status(ctx: ServerContext, *, full: bool) -> StatusSnapshot:
    # A scrape must answer quickly; the full view counts a day of deliveries and writes.
    async with asyncio.timeout(_STATUS_TIMEOUT_S if full else _PING_TIMEOUT_S):
        return await read_status(ctx.db, list(ctx.channels()), ctx.clock.now(), full=full)


async def _status(request: web.Request) -> web.Response:
    """Per-channel status as JSON: ``server.sync_token`` as bearer, or loopback without one."""
    ctx = request.app[CTX]
    expected = ctx.sync_token()
    if expected is not None:
        refusal = _token_refusal(request, expected, "status_unauthorized")
        if refusal is not None:
            return refusal
    elif not _is_loopback(request.remote):
        return _json(403, error="GET /status is loopback-only without server.sync_token")
    try:
        snapshot = await _read_status(ctx, full=True)
    except Exception as err:
        return _json(503, error=f"status unavailable: {type(err).__name__}")
    return web.json_response(snapshot.as_dict())


def _is_loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


async def _metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; the channel gauges are read from the database first, so every
    scrape (the first one too) sees the current state."""
    ctx = request.app[CTX]
    try:
        publish(ctx.metrics, await _read_status(ctx, full=False))
    except Exception as err:  # the counters still answer; the gauges keep their last values
        _log.warning("metrics_status_unavailable", error=type(err).__name__)
    return web.Response(body=ctx.metrics.render(), headers={hdrs.CONTENT_TYPE: CONTENT_TYPE_LATEST})


# -- app and lifecycle ------------------------------------------------------------------------


class _AccessLog(AbstractAccessLogger):
    """Access log through structlog at debug level: method, path (no query string), status."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        """Emit one request line."""
        _log.debug(
            "http_request",
            method=request.method,
            path=request.path,
            status=response.status,
            duration_ms=round(time * 1000, 1),
        )


def build_app(ctx: ServerContext) -> web.Application:
    """Build the public application: webhooks, the operator trigger, health, and (guarded by
    the sync token or loopback, as before the admin listener existed) status and metrics."""
    app = web.Application(client_max_size=_CLIENT_MAX_SIZE)
    app[CTX] = ctx
    app[STORE] = WebhookStore(ctx.db)
    app[DB_CHECK] = _DatabaseCheck(ctx.db, ctx.clock)
    app.router.add_post("/webhooks/{channel}", _post_webhook, expect_handler=_webhook_expect)
    app.router.add_get("/webhooks/{channel}", _get_webhook, allow_head=False)
    app.router.add_post("/sync", _post_sync)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/status", _status)
    return app


def build_admin_app(
    ctx: ServerContext, add_console: Callable[[web.Application], None]
) -> web.Application:
    """Build the admin application: the console (added by ``add_console``), status, metrics."""
    app = web.Application(client_max_size=_SYNC_MAX_BYTES)
    app[CTX] = ctx
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/status", _status)
    add_console(app)
    return app


class ServerHandle:
    """A listening server: its bound port and how to stop it."""

    def __init__(self, runner: web.AppRunner, port: int) -> None:
        self._runner = runner
        self.port = port
        self._stopped = False

    async def stop(self) -> None:
        """Stop accepting connections, let in-flight requests finish briefly, then close."""
        if self._stopped:
            return
        self._stopped = True
        await self._runner.cleanup()


async def start_server(
    ctx: ServerContext,
    host: str,
    port: int,
    *,
    shutdown_timeout_s: float = 1.0,
    app: web.Application | None = None,
) -> ServerHandle:
    """Bind ``host:port`` (port 0 picks a free one) and serve ``app`` (the public one unless
    given) until ``stop()``."""
    # shutdown_timeout bounds the wait for in-flight handlers at stop (aiohttp may take twice
    # it: a graceful wait, then cancellation), well inside Docker's 10 s SIGTERM grace period.
    runner = web.AppRunner(
        app if app is not None else build_app(ctx),
        access_log_class=_AccessLog,
        shutdown_timeout=shutdown_timeout_s,
    )
    await runner.setup()
    try:
        # A marketplace bursts webhooks over many new connections at once; with aiohttp's
        # default backlog (128) the overflow's SYNs are dropped and retried a second later.
        site = web.TCPSite(runner, host, port, backlog=_LISTEN_BACKLOG)
        await site.start()
        bound = runner.addresses[0][1]
    except BaseException:
        await runner.cleanup()
        raise
    _log.info("http_listening", host=host, port=bound, admin=app is not None)
    return ServerHandle(runner, int(bound))
