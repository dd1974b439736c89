"""The running daemon's resources: config (hot-reloadable), database, clock, channels, outbox."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import structlog

from connectors import CHANNELS
from connectors.base import Channel, ChannelDeps
from daemon.clock import Clock
from daemon.config import LoadedConfig, load_config
from daemon.controls import health_of, record_health
from daemon.daily_ledger import DatabaseLedger
from daemon.db.engine import Database, redacted_url
from daemon.errors import ChannelError, ConfigError
from daemon.feeds import DbFeedJournal
from daemon.logging import SecretRedactor
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.pricing import BreakerWindow
from daemon.settings import ChannelSettings, Settings

log = structlog.get_logger("repricerd.runtime")


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
    channel_errors: dict[str, str | None] = field(default_factory=dict)
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
    _channel_settings: dict[str, ChannelSettings] = field(default_factory=dict)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def settings(self) -> Settings:
        """The config in force (replaced atomically by a successful reload)."""
        return self.config.settings

    def selected(self, names: tuple[str, ...] | list[str] = ()) -> list[Channel]:
        """The named channels (all if none named) that opened successfully."""
        chosen = (
            [self.channels[n] for n in names if n in self.channels]
            if names
            else list(self.channels.values())
        )
        return [ch for ch in chosen if self.channel_errors.get(ch.name) is None]

    def own_seller_ids(self) -> frozenset[str]:
        """Our seller ids on every channel: offers from them are never competition."""
        return frozenset(
            ch.capabilities.own_seller_id
            for ch in self.channels.values()
            if ch.capabilities.own_seller_id
        )

    async def open_channels(self) -> None:
        """Build and open every configured channel; failures are recorded, not fatal."""
        await self._sync_channels(self.settings.channels)

    async def _sync_channels(self, wanted: Mapping[str, ChannelSettings]) -> None:
        for name in [
            n
            for n in self.channels
            if n not in wanted or wanted[n] != self._channel_settings.get(n)
        ]:
            await self._close_channel(name)
        for name, cfg in wanted.items():
            if name in self.channels:
                continue
            deps = ChannelDeps(
                http=self.http,
                clock=self.clock,
                sleep=self.sleep,
                feed_journal=DbFeedJournal(self.db, self.clock, name),
                ledger=DatabaseLedger(self.db),
            )
            channel = CHANNELS[cfg.kind](name, cfg, deps)
            self.channels[name] = channel
            self._channel_settings[name] = cfg
            try:
                await channel.open()
            except ChannelError as err:
                self.channel_errors[name] = f"{type(err).__name__}: {err}"
                log.error("channel_open_failed", channel=name, error=str(err))
                await record_health(
                    self.db, self.clock, channel=name, error=str(err), health=health_of(err)
                )
            else:
                self.channel_errors[name] = None
                log.info("channel_opened", channel=name, kind=cfg.kind)

    async def _close_channel(self, name: str) -> None:
        channel = self.channels.pop(name)
        self._channel_settings.pop(name, None)
        self.channel_errors.pop(name, None)
        try:
            await channel.close()
        except Exception as err:
            log.warning("channel_close_failed", channel=name, error=str(err))

    async def close(self) -> None:
        """Close channels, the HTTP client and the database."""
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
            log.info("config_reloaded", path=str(path), digest=loaded.digest[:12])
            return True


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _with_digest(config: LoadedConfig, digest: str) -> LoadedConfig:
    return LoadedConfig(
        settings=config.settings, path=config.path, digest=digest, secrets=config.secrets
    )
