"""Process lifecycle: start-up, the scheduler, the HTTP server, signals and graceful shutdown."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from daemon.alerts import EVALUATE_EVERY_S, Alerter
from daemon.catalog import import_catalog
from daemon.config import LoadedConfig
from daemon.console.web import ConsoleContext, add_console
from daemon.db.engine import Database, normalize_database_url, redacted_url
from daemon.db.failures import blames_database, error_line
from daemon.db.migrate import upgrade
from daemon.db.models import InventoryRun
from daemon.inbox import InboxWorker
from daemon.leases import Held, LeaseKeeper, LeaseStore, new_replica_id
from daemon.logging import SecretRedactor
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.pass_gate import abandon_open_passes
from daemon.passes import INVENTORY, redrive, run_named_pass
from daemon.runtime import Runtime
from daemon.server import ServerContext, ServerHandle, build_admin_app, start_server
from daemon.snapshots import SkuSelection
from daemon.triggers import Coalescer, Debouncer
from daemon.wakeups import InboxWakeups
from domain.clock import Clock, SystemClock

log = structlog.get_logger("repricerd.app")
HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
INBOX_SWEEP_S = 60
# Of the shutdown timeout, this much is kept for cancelling what is left, closing the channels
# and the database, and the interpreter's own exit; the passes get the rest.
SHUTDOWN_RESERVE_S = 1.0
IMPORT_ATTEMPTS = 5


def _url_host(host: str) -> str:
    """The host to put in a URL for a listener bound to ``host``."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


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
        return self.start(name, channels, skus)

    def start(self, name: str, channels: tuple[str, ...], skus: tuple[str, ...]) -> str:
        """Start a pass in the background, tracked for shutdown; return a handle id."""
        request_id = uuid.uuid4().hex[:12]

        async def go() -> None:
            for glob in skus or (None,):
                await self.run(name, channels, glob)

        task = asyncio.create_task(go(), name=f"requested-{name}-{request_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return request_id


def leased(config: LoadedConfig) -> bool:
    """Whether channels are owned through leases: on PostgreSQL, where several replicas may
    share the database. SQLite is one process, which owns every channel."""
    return normalize_database_url(config.settings.database).get_backend_name() != "sqlite"


async def _import_on_start(db: Database, config: LoadedConfig, clock: Clock) -> Any:
    """Import the start-up catalogue; a deadlock with another replica's writes (its reconcile
    upserting the same listings) is retried: the import is one transaction."""
    settings = config.settings
    assert settings.catalog.import_on_start is not None
    for attempt in range(1, IMPORT_ATTEMPTS + 1):
        try:
            return await import_catalog(
                db,
                settings.catalog.import_on_start,
                clock=clock,
                default_currency=settings.catalog.currency,
                known_channels=set(settings.channels),
            )
        except Exception as err:
            if attempt == IMPORT_ATTEMPTS or not blames_database(err):
                raise
            log.warning("catalog_import_retried", attempt=attempt, error=error_line(err))
            await asyncio.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


async def prepare_runtime(
    config: LoadedConfig,
    redactor: SecretRedactor,
    clock: Clock,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    *,
    abandon: bool = True,
) -> Runtime:
    """Migrate the database, import the start-up catalogue and build the runtime: local work
    only, no marketplace is called (the channels are opened afterwards). ``abandon``: supersede
    every channel's half-written pass now (one process); with leases each replica does it for
    a channel when it takes the channel over."""
    settings = config.settings
    db = Database(settings.database)
    before, after = await upgrade(db)
    log.info("database_ready", url=redacted_url(db.url), revision=after, migrated=before != after)
    if settings.catalog.import_on_start:
        report = await _import_on_start(db, config, clock)
        log.info("catalog_imported", file=str(settings.catalog.import_on_start), **vars(report))
    abandoned = await abandon_open_passes(db, clock) if abandon else 0
    if abandoned:
        log.warning(
            "unjudged_intents_abandoned",
            count=abandoned,
            note="a reprice pass died before its breaker check; the next pass decides again",
        )
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
    if sleep is not None:
        rt.sleep = sleep
    return rt


async def start_runtime(
    config: LoadedConfig,
    redactor: SecretRedactor,
    clock: Clock,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Runtime:
    """Prepare the runtime, try once to open every channel (concurrently, each within
    ``OPEN_TIMEOUT_S``) and re-drive the open ones' unfinished intents (``run --once``)."""
    rt = await prepare_runtime(config, redactor, clock, sleep)
    await rt.open_channels()
    not_open = {name: error for name, error in rt.channel_errors.items() if error is not None}
    if not_open:
        log.warning("channels_not_open", channels=not_open, note="skipped by this run")
    redriven = await redrive(rt)
    if redriven:
        log.warning("intents_redriven", result=redriven)
    return rt


async def run_once(
    config: LoadedConfig,
    redactor: SecretRedactor,
    clock: Clock | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> int:
    """Run reconcile (discovery), the stored webhooks, reprice and stock sync once each on the
    channels that open; exit code 0, or 1 if a pass or a channel failed."""
    rt = await start_runtime(config, redactor, clock or SystemClock(), sleep)
    passes = Passes(rt)
    # Deliveries stored by an earlier process (say one that was killed) are applied before
    # the passes, which then cover every SKU they moved.
    inbox = InboxWorker(rt, on_offer_change=lambda _channel, _skus: None)
    try:
        await passes.run("reconcile")
        for channel in rt.selected():
            while await inbox.process(channel.name):
                pass
        for name in ("reprice", "stock_sync"):
            await passes.run(name)
        # Read before close(), which forgets the channels (and their errors).
        failed = passes.failures or any(rt.channel_errors.values())
    finally:
        await rt.close()
    return 1 if failed else 0


def _schedule(
    scheduler: AsyncIOScheduler,
    job: Callable[[str], Awaitable[None]],
    rt: Runtime,
    not_before: Mapping[str, datetime] | None = None,
) -> None:
    """(Re)create the pass jobs from the config's schedule (at start and after a reload).

    ``not_before``: a pass's first run is not earlier than this (the nightly inventory pass,
    which takes minutes at 100,000 SKUs, is not run again at every restart).
    """
    schedule = rt.settings.schedule
    grace = int(schedule.misfire_grace.total_seconds())
    # Reconcile (discovery) first runs one interval from now: each channel is reconciled when it
    # opens (Daemon._channel_ready). The offers and orders polls are optional.
    intervals: dict[str, timedelta | None] = {
        "reconcile": schedule.reconcile,
        "reprice": schedule.reprice,
        "stock_sync": schedule.stock_sync,
        "offers": schedule.offers_poll,
        "orders": schedule.orders_poll,
        "inventory": schedule.inventory,
    }
    now = rt.clock.now()
    for offset, (name, interval) in enumerate(intervals.items()):
        existing = scheduler.get_job(name)
        if interval is None:
            if existing is not None:
                existing.remove()
            continue
        trigger = IntervalTrigger(seconds=interval.total_seconds())
        if existing is not None:
            if existing.trigger.interval != trigger.interval:
                existing.reschedule(trigger)
            continue
        scheduler.add_job(
            job,
            trigger,
            args=[name],
            id=name,
            name=name,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=grace,
            next_run_time=max(
                now + (interval if name == "reconcile" else timedelta(seconds=offset)),
                (not_before or {}).get(name, now),
            ),
        )


INVENTORY_RUN = InventoryRun.__table__  # type: ignore[attr-defined]


async def _inventory_due(rt: Runtime) -> dict[str, datetime]:
    """When the inventory pass is next due: one interval after its last complete run."""
    interval = rt.settings.schedule.inventory
    async with rt.db.read() as conn:
        finished = (
            await conn.execute(
                sa.select(INVENTORY_RUN.c.finished_at).where(INVENTORY_RUN.c.id == 1)
            )
        ).scalar_one_or_none()
    if interval is None or finished is None:
        return {}
    return {INVENTORY: finished + interval}


class Daemon:
    """The long-running daemon: HTTP server first, channels opened behind it, then the passes.

    ``start`` does only local work before the server listens (migrations, the catalogue
    import); every marketplace is opened in the background, each on its own, so one that hangs
    or refuses delays nothing else. ``stop`` may be called at any point of ``start``.
    """

    def __init__(
        self,
        config: LoadedConfig,
        redactor: SecretRedactor,
        clock: Clock,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        scheduled: bool = True,
    ) -> None:
        self.config = config
        self.redactor = redactor
        self.clock = clock
        self.sleep = sleep
        self.scheduled = scheduled  # tests drive passes themselves
        self.rt: Runtime | None = None
        self.passes: Passes | None = None
        self.inbox: InboxWorker | None = None
        self.server: ServerHandle | None = None
        self.admin: ServerHandle | None = None  # the console's listener, when it is on
        self.scheduler: AsyncIOScheduler | None = None
        self.shutting_down = False
        self._stopped = False
        self._debouncer: Debouncer | None = None
        self._stock_trigger: Coalescer | None = None
        self._jobs: set[asyncio.Task[Any]] = set()
        # Several replicas (PostgreSQL): this process's leases and the cross-replica wake-ups.
        self.leases: LeaseKeeper | None = None
        self.wakeups: InboxWakeups | None = None
        self._keeping: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The port the HTTP server listens on."""
        assert self.server is not None, "the daemon is not started"
        return self.server.port

    async def start(self) -> None:
        """Prepare the runtime, listen, start opening the channels and schedule the passes."""
        shared = leased(self.config)
        rt = self.rt = await prepare_runtime(
            self.config, self.redactor, self.clock, self.sleep, abandon=not shared
        )
        passes = self.passes = Passes(rt)
        # Offer changes (webhook or poll) reprice just the SKUs concerned, debounced.
        self._debouncer = Debouncer(
            lambda channel, skus: passes.run("reprice", [channel], skus),
            lambda: rt.settings.schedule.offer_debounce.total_seconds(),  # follows reloads
        )
        rt.on_offer_change = self._debouncer.notify
        # Orders and outside quantity changes republish the SKUs concerned on every channel at
        # once; a burst arriving while one publish runs is coalesced into the next.
        self._stock_trigger = Coalescer(lambda skus: passes.run("stock_sync", (), skus))
        self.inbox = InboxWorker(
            rt, on_offer_change=self._debouncer.notify, on_stock_change=self._stock_trigger.notify
        )
        ctx = ServerContext(
            db=rt.db,
            metrics=rt.metrics,
            clock=self.clock,
            channels=lambda: rt.channels,
            channel_errors=lambda: rt.channel_errors,
            webhook_max_bytes=lambda: rt.settings.server.webhook_max_bytes,
            sync_token=lambda: rt.settings.server.sync_token,
            on_webhook_stored=self._stored,
            request_pass=passes.request,
            shutting_down=lambda: self.shutting_down,
        )
        self.server = await start_server(ctx, rt.settings.server.host, rt.settings.server.port)
        await self._start_admin(ctx, rt, passes)
        # An opened channel first re-sends what a previous process left in flight, then its
        # stored deliveries (a previous process's, or this one's while it was opening) run.
        rt.on_channel_open = self._redrive
        rt.on_channel_ready = self._channel_ready
        if shared:
            await self._start_leases(rt, passes)
        await rt.open_in_background()
        if self.scheduled:
            self._start_scheduler(rt, passes, await _inventory_due(rt))
        log.info(
            "daemon_ready",
            host=rt.settings.server.host,
            port=self.server.port,
            admin_port=self.admin.port if self.admin is not None else None,
            channels=sorted(rt.channels),
            schedule={k: str(v) for k, v in rt.settings.schedule},
            replica=self.leases.replica if self.leases is not None else None,
        )

    async def _start_leases(self, rt: Runtime, passes: Passes) -> None:
        """Own channels through leases (several replicas share the database) and listen for
        other replicas' inbox wake-ups."""
        keeper = self.leases = LeaseKeeper(
            LeaseStore(rt.db, ttl_s=rt.settings.server.lease_ttl_s),
            channels=sorted(rt.settings.channels),
            clock=self.clock,
            replica=new_replica_id(),
            on_gain=self._gained,
            on_loss=self._lost,
        )
        rt.leases = keeper
        rt.outbox.fence = keeper.fence
        rt.metrics.replica = keeper.replica

        def follow_reload() -> None:
            keeper.channels = sorted(rt.settings.channels)

        passes.on_reload.append(follow_reload)
        self.wakeups = InboxWakeups(rt.db, self._wake)
        await self.wakeups.start()
        self._keeping = asyncio.create_task(keeper.run(), name="leases")

    async def _gained(self, held: Held) -> None:
        """This replica now owns ``held.channel``: supersede the pass its previous owner left
        half-written, then re-send what it left in flight and apply the stored deliveries."""
        assert self.rt is not None
        rt, channel = self.rt, held.channel
        self._count_leases(channel)
        abandoned = await abandon_open_passes(rt.db, rt.clock, channel)
        if abandoned:
            log.warning("unjudged_intents_abandoned", channel=channel, count=abandoned)
        if rt.is_open(channel):  # not open yet: the open hooks do the same once it opens
            task = asyncio.create_task(self._take_over(channel), name=f"take-over-{channel}")
            self._jobs.add(task)
            task.add_done_callback(self._jobs.discard)

    def _count_leases(self, channel: str) -> None:
        assert self.rt is not None
        assert self.leases is not None
        metrics, held = self.rt.metrics, self.leases.held
        metrics.leases_held.labels(metrics.replica).set(len(held))
        metrics.channel_owned.labels(metrics.replica, channel).set(int(channel in held))

    async def _take_over(self, channel: str) -> None:
        await self._redrive(channel)
        self._channel_ready(channel)

    async def _lost(self, held: Held) -> None:
        """Another replica owns ``held.channel`` now (or may): stop its work at once."""
        assert self.rt is not None
        rt = self.rt
        self._count_leases(held.channel)
        cancelled = await rt.cancel_channel_work(held.channel)
        if self.inbox is not None:
            await self.inbox.cancel(held.channel)
        log.info("channel_work_stopped", channel=held.channel, cancelled=cancelled)

    async def _start_admin(self, ctx: ServerContext, rt: Runtime, passes: Passes) -> None:
        """Start the admin listener (console, status, metrics) when a console password is set."""
        server = rt.settings.server
        if server.console_password is None:
            return
        console = ConsoleContext(
            db=rt.db,
            clock=self.clock,
            password=lambda: rt.settings.server.console_password,
            channels=lambda: list(rt.settings.channels),
            config=lambda: rt.config,
            last_reload=lambda: rt.last_reload,
            request_pass=passes.request,
            breaker_rearm=lambda: timedelta(
                seconds=rt.settings.pricing.guards.breaker.rearm_after_s
            ),
            own_seller_ids=rt.own_seller_ids,
            schedule=lambda: rt.settings.schedule,
        )
        app = build_admin_app(ctx, lambda admin: add_console(admin, console))
        self.admin = await start_server(ctx, server.admin_host, server.admin_port, app=app)
        log.info(
            "console_listening",
            url=f"http://{_url_host(server.admin_host)}:{self.admin.port}/console/",
        )

    def _channel_ready(self, channel: str) -> None:
        """A channel just opened: apply its stored deliveries and discover its listings."""
        assert self.inbox is not None
        assert self.passes is not None
        self.inbox.wake(channel)
        if self.scheduled:
            # The scheduled reconcile's first run waits one interval: each channel is
            # reconciled as it opens instead (one that opens late is not left for an hour).
            self.passes.start("reconcile", (channel,), ())

    def _wake(self, channel: str) -> None:
        """Process a channel's inbox soon, once it is open (until then deliveries wait) and
        while this replica owns it."""
        if self.rt is not None and self.inbox is not None and self.rt.is_open(channel):
            self.inbox.wake(channel)

    def _stored(self, channel: str) -> None:
        """A webhook was stored: wake the inbox here, or its owner on another replica."""
        if self.rt is None or self.rt.owns(channel) or self.wakeups is None:
            self._wake(channel)
        else:
            self.wakeups.notify(channel)

    async def _redrive(self, channel: str) -> None:
        assert self.rt is not None
        rt = self.rt
        if not rt.owns(channel):
            return  # its owner re-drives it
        redriven = await rt.owned_work(channel, redrive(rt, [rt.channels[channel]]))
        if redriven:
            log.warning("intents_redriven", channel=channel, result=redriven)

    def _start_scheduler(
        self, rt: Runtime, passes: Passes, not_before: Mapping[str, datetime]
    ) -> None:
        scheduler = self.scheduler = AsyncIOScheduler(timezone="UTC")
        _schedule(scheduler, self._scheduled_pass, rt, not_before)
        passes.on_reload.append(lambda: _schedule(scheduler, self._scheduled_pass, rt))
        scheduler.add_job(
            self._housekeeping,
            IntervalTrigger(seconds=INBOX_SWEEP_S),
            id="housekeeping",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=INBOX_SWEEP_S,
        )
        alerter = Alerter(
            rt.db, rt.clock, rt.http, lambda: rt.settings, rt.redactor, metrics=rt.metrics
        )
        scheduler.add_job(
            self._alerts,
            IntervalTrigger(seconds=EVALUATE_EVERY_S),
            args=[alerter],
            id="alerts",
            coalesce=True,
            max_instances=1,
        )
        scheduler.start()

    async def _scheduled_pass(self, name: str) -> None:
        assert self.passes is not None
        await self._job(self.passes.run(name))

    async def _housekeeping(self) -> None:
        assert self.rt is not None
        rt = self.rt

        async def sweep() -> None:
            for channel in rt.selected():
                self._wake(channel.name)  # deliveries whose wake-up was lost (a failed round)

        await self._job(sweep())

    async def _alerts(self, alerter: Alerter) -> None:
        await self._job(alerter.run())

    async def _job(self, work: Awaitable[Any]) -> None:
        """Run a scheduler job; a cancellation by ``stop`` ends it quietly (APScheduler would
        log any exception, CancelledError included, as a failed job at ERROR)."""
        task = asyncio.current_task()
        assert task is not None
        self._jobs.add(task)
        try:
            await work
        except asyncio.CancelledError:
            if not self.shutting_down:
                raise
        finally:
            self._jobs.discard(task)

    async def stop(self) -> None:
        """Stop in reverse order within ``server.shutdown_timeout_s``: no new work, the server
        closed, passes given the rest of the time, then cancelled (their intents stay open and
        are re-driven at the next start), stored deliveries left for the next start."""
        if self._stopped:
            return
        self._stopped = self.shutting_down = True
        started = time.perf_counter()
        timeout = self.config.settings.server.shutdown_timeout_s
        if self.rt is not None:
            timeout = self.rt.settings.server.shutdown_timeout_s
        deadline = started + max(0.0, timeout - SHUTDOWN_RESERVE_S)
        passes = self.passes
        log.info("shutdown_started", in_flight=len(passes.tasks) if passes else 0)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()  # no new runs; running ones are waited for below
        if self.rt is not None:
            await self.rt.stop_opening()
        if self.server is not None:
            await self.server.stop()
        if self.admin is not None:
            await self.admin.stop()
        if self._debouncer is not None:
            await self._debouncer.close()
        if self._stock_trigger is not None:
            await self._stock_trigger.close()
        pending: set[asyncio.Task[Any]] = set()
        if passes is not None:
            pending = {t for t in passes.tasks if not t.done()}
            if pending:
                left = max(0.0, deadline - time.perf_counter())
                _done, pending = await asyncio.wait(pending, timeout=left)
        # Cancelled pushes leave their rows 'sent'; the next start re-drives them, same keys.
        cancelled = pending | {t for t in self._jobs if not t.done()}
        for task in cancelled:
            task.cancel()
        await asyncio.gather(*cancelled, return_exceptions=True)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.inbox is not None:
            # Unfinished inbox rows stay unprocessed and are picked up at the next start.
            await self.inbox.close(timeout_s=min(1.0, max(0.0, deadline - time.perf_counter())))
        await self._stop_leases()
        if self.rt is not None:
            await self.rt.close()
        log.info(
            "shutdown_complete",
            seconds=round(time.perf_counter() - started, 3),
            cancelled=len(pending),
        )

    async def _stop_leases(self) -> None:
        """Release every lease (the other replicas take the channels at their next round)."""
        if self._keeping is not None:
            self._keeping.cancel()
            await asyncio.gather(self._keeping, return_exceptions=True)
        if self.wakeups is not None:
            await self.wakeups.close()
        if self.leases is not None:
            try:
                async with asyncio.timeout(2):
                    await self.leases.stop()
            except Exception as err:  # expiry hands them over anyway
                log.warning("leases_not_released", error=str(err).splitlines()[0][:200])


async def run_forever(
    config: LoadedConfig,
    redactor: SecretRedactor,
    clock: Clock | None = None,
    ready: asyncio.Event | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT (honoured at any moment, start-up included); finish or
    release in-flight work within the shutdown timeout; exit code 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before anything that can take time: a signal during start-up must stop it.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(config, redactor, clock or SystemClock())

    def reload() -> None:
        # SIGHUP's default action ends the process: handled from the start, a no-op until the
        # passes exist.
        passes = daemon.passes
        if passes is not None and not daemon.shutting_down:
            task = asyncio.create_task(passes.reload(), name="reload")
            passes.tasks.add(task)  # waited for (or cancelled) by the shutdown
            task.add_done_callback(passes.tasks.discard)

    loop.add_signal_handler(signal.SIGHUP, reload)
    starting = asyncio.create_task(daemon.start(), name="daemon-start")
    stopping = asyncio.create_task(stop.wait(), name="daemon-stop-signal")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.info("startup_interrupted", note="stop requested before start-up finished")
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
        else:
            starting.result()  # a start-up failure (the port taken, the database) is raised
            if ready is not None:
                ready.set()
            await stopping
    finally:
        stopping.cancel()
        await daemon.stop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    return 0
