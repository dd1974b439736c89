"""The running daemon's resources: config (hot-reloadable), database, clock, channels, outbox."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Final, TypeVar

import httpx
import structlog

from connectors import CHANNELS
from connectors.base import Channel, ChannelDeps
from daemon.config import LoadedConfig, load_config
from daemon.controls import health_of, record_health
from daemon.daily_ledger import DatabaseLedger
from daemon.db.engine import Database, redacted_url
from daemon.db.models import ChannelHealth
from daemon.feeds import DbFeedJournal
from daemon.leases import LeaseKeeper
from daemon.logging import SecretRedactor
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.pricing import BreakerWindow
from daemon.settings import ChannelSettings, Settings
from domain.clock import Clock
from domain.errors import ConfigError

log = structlog.get_logger("repricerd.runtime")
T = TypeVar("T")

# A marketplace that neither answers nor refuses must not hold a channel's opener (or a
# `run --once`) longer than this; the connectors' own retries stop at it too.
OPEN_TIMEOUT_S: Final = 30.0
# Retries of a channel that cannot open: doubling from the first, capped; refused credentials
# are retried more slowly (someone has to fix them, but they may also be a marketplace hiccup).
OPEN_BACKOFF_FIRST_S: Final = 2.0
OPEN_BACKOFF_MAX_S: Final = 60.0
AUTH_BACKOFF_MAX_S: Final = 300.0
# How long a lost channel's cancelled work may take to unwind before the lease round goes on.
CANCEL_WAIT_S: Final = 5.0


class LinkState(StrEnum):
    """Where a channel's connector stands in this process."""

    OPENING = "opening"  # built (webhooks are verified and stored), open() not succeeded yet
    OPEN = "open"  # passes, the inbox and re-drives use it
    DEGRADED = "degraded"  # the last open() failed or timed out; retried in the background
    AUTH_FAILED = "auth_failed"  # the marketplace refused the credentials; retried slowly


@dataclass
class ChannelLink:
    """In-process connection state of one channel (``repricerd status`` and /status read it)."""

    state: LinkState = LinkState.OPENING
    error: str | None = None
    attempts: int = 0  # failed open() calls since the last success
    retry_in_s: float | None = None  # the wait before the next attempt, while one is pending


@dataclass(frozen=True)
class ReloadResult:
    """The outcome of the last config reload (the console's config view shows it)."""

    at: datetime
    accepted: bool
    digest: str
    problems: tuple[str, ...] = ()


@dataclass
class Runtime:
    """Everything a pass needs, injected; owned by ``daemon.app`` for the process lifetime."""

    config: LoadedConfig
    db: Database
    clock: Clock
    metrics: Metrics
    redactor: SecretRedactor
    http: httpx.AsyncClient
    outbox: Outbox
    channels: dict[str, Channel] = field(default_factory=dict)
    # How connectors wait (backoff, rate limits); tests inject one that advances a manual clock.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # Per configured channel: opening, open, degraded or auth_failed (see ``LinkState``).
    links: dict[str, ChannelLink] = field(default_factory=dict)
    # Awaited once a channel's open() succeeded, before passes and the inbox may use it (the
    # daemon re-drives the channel's open intents here).
    on_channel_open: Callable[[str], Awaitable[None]] | None = None
    # Called once a channel is usable (the daemon wakes its inbox).
    on_channel_ready: Callable[[str], None] | None = None
    # Called with (channel, skus) when competition changed: the debounced reprice trigger.
    on_offer_change: Callable[[str, set[str]], None] | None = None
    # Big price moves of recent passes, per channel, judged together by the breaker.
    breaker_window: BreakerWindow = field(default_factory=BreakerWindow)
    # One reprice pass per channel at a time: a debounced or /sync pass waits for the scheduled
    # one instead of deciding from prices the other is about to change.
    reprice_locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Monotonic time of the last "healthy" row written per channel: event-driven passes run
    # many times a second, and a success is only re-recorded every HEALTH_REFRESH_S.
    health_written: dict[str, float] = field(default_factory=dict)
    # The same for each (channel, pass)'s last success (pass_success, shown by status).
    success_written: dict[tuple[str, str], float] = field(default_factory=dict)
    # None until a changed config file was read (accepted or rejected).
    last_reload: ReloadResult | None = None
    _channel_settings: dict[str, ChannelSettings] = field(default_factory=dict)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _openers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # True once ``open_in_background`` ran: channels added by a reload are opened the same way.
    _background: bool = False
    # Several replicas on PostgreSQL: this replica's leases (None: it owns every channel).
    leases: LeaseKeeper | None = None
    # Per channel, the tasks doing its work (pass steps, re-drives): cancelled on lease loss.
    channel_work: dict[str, set[asyncio.Task[object]]] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        """The config in force (replaced atomically by a successful reload)."""
        return self.config.settings

    @property
    def channel_errors(self) -> dict[str, str | None]:
        """Per channel: ``None`` when open, else why not (the error, or ``opening``)."""
        return {
            name: None
            if (link := self.links.get(name, ChannelLink())).state is LinkState.OPEN
            else link.error or link.state.value
            for name in self.channels
        }

    def is_open(self, name: str) -> bool:
        """Whether ``name`` opened and may be used by passes and the inbox (by this replica:
        with several, only while it holds the channel's lease)."""
        link = self.links.get(name)
        opened = name in self.channels and link is not None and link.state is LinkState.OPEN
        return opened and self.owns(name)

    def owns(self, name: str) -> bool:
        """Whether this process may work on ``name``: always, unless leases are in force."""
        return self.leases is None or self.leases.fresh(name)

    async def owned_work(self, channel: str, work: Awaitable[T]) -> T | None:
        """Run ``work`` for ``channel`` as a task of its own; None if losing the channel's lease
        cancelled it (``cancel_channel_work``). A cancellation of the caller is passed on."""
        task: asyncio.Task[T] = asyncio.ensure_future(work)
        tasks = self.channel_work.setdefault(channel, set())
        tasks.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and not current.cancelling():
                return None
            raise
        finally:
            tasks.discard(task)

    async def cancel_channel_work(self, channel: str) -> int:
        """Cancel every running task of ``channel`` (its lease is lost) and wait until they
        have stopped; returns how many there were."""
        running = [task for task in self.channel_work.get(channel, ()) if not task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=CANCEL_WAIT_S)
        return len(running)

    def selected(self, names: tuple[str, ...] | list[str] = ()) -> list[Channel]:
        """The named channels (all if none named) that opened successfully."""
        chosen = (
            [self.channels[n] for n in names if n in self.channels]
            if names
            else list(self.channels.values())
        )
        return [ch for ch in chosen if self.is_open(ch.name)]

    def own_seller_ids(self) -> frozenset[str]:
        """Our seller ids on every channel: offers from them are never competition."""
        return frozenset(
            ch.capabilities.own_seller_id
            for ch in self.channels.values()
            if ch.capabilities.own_seller_id
        )

    async def open_channels(self) -> None:
        """Build every configured channel and try once to open each (concurrently, each within
        ``OPEN_TIMEOUT_S``); a failure is recorded, not raised (``run --once``, tests)."""
        await self._sync_channels(self.settings.channels)

    async def open_in_background(self) -> None:
        """Build every configured channel now (webhooks can be verified and stored at once) and
        keep opening each in the background, with backoff, until it opens."""
        self._background = True
        await self._sync_channels(self.settings.channels)

    async def stop_opening(self) -> None:
        """Cancel the background openers (shutdown); unopened channels stay unopened."""
        self._background = False
        openers = list(self._openers.values())
        for task in openers:
            task.cancel()
        await asyncio.gather(*openers, return_exceptions=True)

    async def _sync_channels(self, wanted: Mapping[str, ChannelSettings]) -> None:
        for name in [
            n
            for n in self.channels
            if n not in wanted or wanted[n] != self._channel_settings.get(n)
        ]:
            await self._close_channel(name)
        added = []
        for name, cfg in wanted.items():
            if name in self.channels:
                continue
            # Building a channel only reads its settings (secrets included): no network.
            deps = ChannelDeps(
                http=self.http,
                clock=self.clock,
                sleep=self.sleep,
                feed_journal=DbFeedJournal(self.db, self.clock, name),
                ledger=DatabaseLedger(self.db),
            )
            self.channels[name] = CHANNELS[cfg.kind](name, cfg, deps)
            self._channel_settings[name] = cfg
            self.links[name] = ChannelLink()
            added.append(name)
        if self._background:
            for name in added:
                self._openers[name] = asyncio.create_task(
                    self._keep_opening(name), name=f"open-{name}"
                )
        else:
            await asyncio.gather(*(self._open_once(name) for name in added))

    async def _keep_opening(self, name: str) -> None:
        """Open ``name``, retrying with backoff until it opens (or the channel is closed)."""
        try:
            while not await self._open_once(name):
                link = self.links[name]
                refused = link.state is LinkState.AUTH_FAILED
                cap = AUTH_BACKOFF_MAX_S if refused else OPEN_BACKOFF_MAX_S
                # Jitter over the upper half: restarts of many daemons do not retry in step.
                ceiling = min(cap, OPEN_BACKOFF_FIRST_S * 2 ** (link.attempts - 1))
                link.retry_in_s = random.uniform(ceiling / 2, ceiling)
                await self.sleep(link.retry_in_s)
                link.retry_in_s = None
        finally:
            if self._openers.get(name) is asyncio.current_task():
                del self._openers[name]

    async def _open_once(self, name: str) -> bool:
        """One attempt to open ``name``; record the outcome (state, health, logs)."""
        channel = self.channels[name]
        link = self.links[name]
        error = await self._attempt_open(channel)
        if error is None:
            if self.on_channel_open is not None:
                try:
                    await self.on_channel_open(name)
                except Exception as err:  # the channel is open all the same
                    log.warning("channel_open_hook_failed", channel=name, error=str(err))
            link.state, link.error, link.attempts = LinkState.OPEN, None, 0
            log.info("channel_opened", channel=name, kind=self._channel_settings[name].kind)
            await self._record_health(name, None, ChannelHealth.OK)
            self.health_written[name] = self.clock.monotonic()
            if self.on_channel_ready is not None:
                self.on_channel_ready(name)
            return True
        health = health_of(error)
        reason = f"{type(error).__name__}: {error}"
        link.attempts += 1
        link.state = LinkState(health.value)
        link.error = reason
        log.warning(
            "channel_open_failed",
            channel=name,
            health=health.value,
            error=reason,
            attempts=link.attempts,
        )
        await self._record_health(name, reason, health)
        return False

    async def _attempt_open(self, channel: Channel) -> Exception | None:
        """Run ``channel.open()`` for at most ``server.channel_open_timeout_s`` (default
        ``OPEN_TIMEOUT_S``); return its error, a
        ``TimeoutError``, or ``None`` when it opened.

        Wall-clock time, not the injected sleep: a hung marketplace is a real-time matter, and
        a test's sleep that advances a manual clock at once would time out every open().
        """
        # Read at each call: a reload may change it, tests shorten the default.
        limit = self.settings.server.channel_open_timeout_s or OPEN_TIMEOUT_S
        try:
            async with asyncio.timeout(limit):
                await channel.open()
        except TimeoutError:
            return TimeoutError(f"open() did not finish within {limit:g} s")
        except Exception as err:
            return err
        return None

    async def _record_health(self, name: str, error: str | None, health: ChannelHealth) -> None:
        try:
            await record_health(self.db, self.clock, channel=name, error=error, health=health)
        except Exception as err:  # the database is down: the state in memory still holds
            log.warning("channel_health_unrecorded", channel=name, error=str(err))

    async def _close_channel(self, name: str) -> None:
        opener = self._openers.pop(name, None)
        if opener is not None:
            opener.cancel()
            await asyncio.gather(opener, return_exceptions=True)
        channel = self.channels.pop(name)
        self._channel_settings.pop(name, None)
        self.links.pop(name, None)
        try:
            await channel.close()
        except Exception as err:
            log.warning("channel_close_failed", channel=name, error=str(err))

    async def close(self) -> None:
        """Close channels, the HTTP client and the database."""
        await self.stop_opening()
        for name in list(self.channels):
            await self._close_channel(name)
        await self.http.aclose()
        await self.db.dispose()

    async def reload_if_changed(self) -> bool:
        """Adopt the config file if it changed and is valid; keep the old one if it is not."""
        async with self._reload_lock:
            path = self.config.path
            try:
                digest_now = _digest(path)
            except OSError as err:
                log.error("config_reload_rejected", path=str(path), error=str(err))
                self.last_reload = ReloadResult(
                    self.clock.now(), False, self.config.digest, (f"{path}: {err.strerror}",)
                )
                return False
            if digest_now == self.config.digest:
                return False
            try:
                loaded = await asyncio.to_thread(load_config, path)
            except ConfigError as err:
                log.error(
                    "config_reload_rejected",
                    path=str(path),
                    problems=[str(p) for p in err.problems],
                    kept_digest=self.config.digest[:12],
                )
                # Remember the bad digest so the same broken file is not re-reported every pass.
                self.config = _with_digest(self.config, digest_now)
                self.last_reload = ReloadResult(
                    self.clock.now(), False, digest_now, tuple(str(p) for p in err.problems)
                )
                return False
            if loaded.settings.database != self.settings.database:
                log.warning(
                    "config_reload_database_ignored",
                    database=redacted_url(loaded.settings.database),
                    note="a database change needs a restart",
                )
            self.redactor.set_known(loaded.secrets)
            self.config = loaded
            await self._sync_channels(loaded.settings.channels)
            self.last_reload = ReloadResult(self.clock.now(), True, loaded.digest)
            log.info("config_reloaded", path=str(path), digest=loaded.digest[:12])
            return True


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _with_digest(config: LoadedConfig, digest: str) -> LoadedConfig:
    return dataclasses.replace(config, digest=digest)
