"""Process lifecycle: start-up, the scheduler, the HTTP server, signals and graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Sequence
from contextlib import suppress
from datetime import timedelta
from typing import Any

import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from daemon.alerts import EVALUATE_EVERY_S, Alerter
from daemon.catalog import import_catalog
from daemon.clock import Clock, SystemClock
from daemon.config import LoadedConfig
from daemon.db.engine import Database, redacted_url
from daemon.db.migrate import upgrade
from daemon.inbox import InboxWorker
from daemon.logging import SecretRedactor
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.pass_gate import abandon_open_passes
from daemon.passes import redrive, run_named_pass
from daemon.runtime import Runtime
from daemon.server import ServerContext, start_server
from daemon.snapshots import SkuSelection
from daemon.triggers import Coalescer, Debouncer

log = structlog.get_logger("repricerd.app")
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
INBOX_SWEEP_S = 60


class Passes:
    """Runs passes with a pass id, metrics and logs; tracks them so shutdown can wait."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.tasks: set[asyncio.Task[Any]] = set()
        self.failures = 0
        self.on_reload: list[Any] = []

    async def run(
        self, name: str, channels: Sequence[str] = (), selection: SkuSelection = None
    ) -> dict[str, Any]:
        """Run one pass now and return its per-channel summary."""
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        pass_id = uuid.uuid4().hex[:12]
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(pass_id=pass_id, pass_name=name):
            try:
                await self.reload()
                result = await run_named_pass(self.rt, name, pass_id, channels, selection)
            except asyncio.CancelledError:
                self.rt.metrics.passes.labels(name, "cancelled").inc()
                raise
            except Exception as err:
                self.failures += 1
                self.rt.metrics.passes.labels(name, "error").inc()
                log.exception("pass_failed", error=str(err))
                return {"error": str(err)}
            finally:
                if task is not None:
                    self.tasks.discard(task)
            elapsed = time.perf_counter() - started
            errors = [ch for ch, r in result.items() if "error" in r]
            self.failures += bool(errors)
            outcome = "partial" if errors else "ok"
            self.rt.metrics.passes.labels(name, outcome).inc()
            self.rt.metrics.pass_seconds.labels(name).observe(elapsed)
            log.info("pass_finished", outcome=outcome, seconds=round(elapsed, 3), result=result)
            return result

    async def reload(self) -> bool:
        """Adopt a changed config file (at each pass and on SIGHUP) and apply it."""
        if not await self.rt.reload_if_changed():
            return False
        for callback in self.on_reload:
            callback()
        return True

    async def request(self, name: str, channels: tuple[str, ...], skus: tuple[str, ...]) -> str:
        """Start a pass in the background (operator trigger); return a handle id."""
        request_id = uuid.uuid4().hex[:12]

        async def go() -> None:
            for glob in skus or (None,):
                await self.run(name, channels, glob)

        task = asyncio.create_task(go(), name=f"requested-{name}-{request_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return request_id


async def start_runtime(config: LoadedConfig, redactor: SecretRedactor, clock: Clock) -> Runtime:
    """Migrate the database, import the start-up catalogue and open the channels."""
    settings = config.settings
    db = Database(settings.database)
    before, after = await upgrade(db)
    log.info("database_ready", url=redacted_url(db.url), revision=after, migrated=before != after)
    if settings.catalog.import_on_start:
        report = await import_catalog(
            db,
            settings.catalog.import_on_start,
            clock=clock,
            default_currency=settings.catalog.currency,
            known_channels=set(settings.channels),
        )
        log.info("catalog_imported", file=str(settings.catalog.import_on_start), **vars(report))
    metrics = Metrics()
    rt = Runtime(
        config=config,
        db=db,
        clock=clock,
        metrics=metrics,
        redactor=redactor,
        http=httpx.AsyncClient(timeout=HTTP_TIMEOUT),
        outbox=Outbox(db, clock, metrics),
    )
    await rt.open_channels()
    abandoned = await abandon_open_passes(db, clock)
    if abandoned:
        log.warning(
            "unjudged_intents_abandoned",
            count=abandoned,
            note="a reprice pass died before its breaker check; the next pass decides again",
        )
    redriven = await redrive(rt)
    if redriven:
        log.warning("intents_redriven", result=redriven)
    return rt


async def run_once(
    config: LoadedConfig, redactor: SecretRedactor, clock: Clock | None = None
) -> int:
    """Run reconcile (discovery), the stored webhooks, reprice and stock sync once each; exit
    code 0 or 1."""
    rt = await start_runtime(config, redactor, clock or SystemClock())
    passes = Passes(rt)
    # Deliveries stored by an earlier process (say one that was killed) are applied before
    # the passes, which then cover every SKU they moved.
    inbox = InboxWorker(rt, on_offer_change=lambda _channel, _skus: None)
    try:
        await passes.run("reconcile")
        for name in rt.channels:
            while await inbox.process(name):
                pass
        for name in ("reprice", "stock_sync"):
            await passes.run(name)
        # Read before close(), which forgets the channels (and their errors).
        failed = passes.failures or any(rt.channel_errors.values())
    finally:
        await rt.close()
    return 1 if failed else 0


def _schedule(scheduler: AsyncIOScheduler, passes: Passes, rt: Runtime) -> None:
    """(Re)create the pass jobs from the config's schedule (at start and after a reload)."""
    schedule = rt.settings.schedule
    grace = int(schedule.misfire_grace.total_seconds())
    # Reconcile first: it discovers listings. The offers and orders polls are optional.
    intervals: dict[str, timedelta | None] = {
        "reconcile": schedule.reconcile,
        "reprice": schedule.reprice,
        "stock_sync": schedule.stock_sync,
        "offers": schedule.offers_poll,
        "orders": schedule.orders_poll,
    }
    now = rt.clock.now()
    for offset, (name, interval) in enumerate(intervals.items()):
        job = scheduler.get_job(name)
        if interval is None:
            if job is not None:
                job.remove()
            continue
        trigger = IntervalTrigger(seconds=interval.total_seconds())
        if job is not None:
            if job.trigger.interval != trigger.interval:
                job.reschedule(trigger)
            continue
        scheduler.add_job(
            passes.run,
            trigger,
            args=[name],
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace,
            next_run_time=now + timedelta(seconds=offset),
        )


async def run_forever(
    config: LoadedConfig,
    redactor: SecretRedactor,
    clock: Clock | None = None,
    ready: asyncio.Event | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; finish or release in-flight work within the shutdown timeout."""
    clock = clock or SystemClock()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    rt = await start_runtime(config, redactor, clock)
    passes = Passes(rt)
    shutting_down = False
    # Offer changes (webhook or poll) reprice just the SKUs concerned, debounced.
    debouncer = Debouncer(
        lambda channel, skus: passes.run("reprice", [channel], skus),
        lambda: rt.settings.schedule.offer_debounce.total_seconds(),  # follows reloads
    )
    rt.on_offer_change = debouncer.notify
    # Orders and outside quantity changes republish the SKUs concerned on every channel at once;
    # a burst arriving while one publish runs is coalesced into the next, which starts at once.
    stock_trigger = Coalescer(lambda skus: passes.run("stock_sync", (), skus))
    inbox = InboxWorker(rt, on_offer_change=debouncer.notify, on_stock_change=stock_trigger.notify)
    for name in rt.channels:
        inbox.wake(name)  # deliveries a previous process stored but did not process
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(passes.reload()))

    ctx = ServerContext(
        db=rt.db,
        metrics=rt.metrics,
        clock=clock,
        channels=lambda: rt.channels,
        channel_errors=lambda: rt.channel_errors,
        webhook_max_bytes=lambda: rt.settings.server.webhook_max_bytes,
        sync_token=lambda: rt.settings.server.sync_token,
        on_webhook_stored=inbox.wake,
        request_pass=passes.request,
        shutting_down=lambda: shutting_down,
    )
    server = await start_server(ctx, rt.settings.server.host, rt.settings.server.port)
    scheduler = AsyncIOScheduler(timezone="UTC")
    _schedule(scheduler, passes, rt)
    passes.on_reload.append(lambda: _schedule(scheduler, passes, rt))

    async def housekeeping() -> None:
        for name in rt.channels:
            inbox.wake(name)  # deliveries whose wake-up was lost (a failed round, a restart)

    scheduler.add_job(
        housekeeping,
        IntervalTrigger(seconds=INBOX_SWEEP_S),
        id="housekeeping",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=INBOX_SWEEP_S,
    )
    alerter = Alerter(rt.db, clock, rt.http, lambda: rt.settings, rt.redactor, metrics=rt.metrics)
    scheduler.add_job(
        alerter.run, IntervalTrigger(seconds=EVALUATE_EVERY_S), id="alerts", coalesce=True
    )
    scheduler.start()
    log.info(
        "daemon_ready",
        host=rt.settings.server.host,
        port=server.port,
        channels=sorted(rt.channels),
        schedule={k: str(v) for k, v in rt.settings.schedule},
    )
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        shutting_down = True
        started = time.perf_counter()
        log.info("shutdown_started", in_flight=len(passes.tasks))
        scheduler.shutdown(wait=False)
        await server.stop()
        await debouncer.close()
        await stock_trigger.close()
        timeout = rt.settings.server.shutdown_timeout_s
        pending = {t for t in passes.tasks if not t.done()}
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            # Cancelled pushes leave their rows 'sent'; start-up re-drives them with the same keys.
            task.cancel()
        for task in pending:
            with suppress(asyncio.CancelledError, Exception):
                await task
        # Unfinished inbox rows stay unprocessed and are picked up at the next start.
        with suppress(TimeoutError):
            await asyncio.wait_for(inbox.drain(), timeout=1.0)
        await rt.close()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        log.info(
            "shutdown_complete",
            seconds=round(time.perf_counter() - started, 3),
            cancelled=len(pending),
        )
    return 0
