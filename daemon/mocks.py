"""Serve the mock marketplaces a config points at: standalone, or beside the daemon (demo).

Bulk feeds are processed in ``DEMO_FEED_PROCESSING_S`` here; the mocks' own defaults (and the
benches) keep the marketplaces' realistic delays.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar, cast

import structlog
from pydantic import BaseModel

from connectors.mock.servers import RunningMock, start_mocks, stop_mocks
from daemon.config import LoadedConfig
from daemon.settings import ServerSettings
from domain.errors import ConfigError

T = TypeVar("T")
DEMO_FEED_PROCESSING_S = 10.0
log = structlog.get_logger("repricerd.mocks")


def webhook_base(server: ServerSettings) -> str | None:
    """Where the daemon receives webhooks, as a mock on this machine must call it."""
    if server.port == 0:
        return None  # a free port picked at start-up: the mocks cannot know it
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host  # noqa: S104
    return f"http://{host}:{server.port}"


async def start_for(loaded: LoadedConfig, port_base: int | None = None) -> list[RunningMock]:
    """Start a mock for each channel of the config whose endpoint is on loopback."""
    settings = loaded.settings
    mocks = await start_mocks(
        # Every kind's settings are a pydantic model (connectors.registry.KINDS names them).
        cast(Mapping[str, BaseModel], settings.channels),
        catalog=settings.catalog.import_on_start,
        webhook_base=webhook_base(settings.server),
        port_base=port_base,
        # A demo should not wait Walmart's real five minutes per feed.
        feed_processing_s=DEMO_FEED_PROCESSING_S,
    )
    if not mocks:
        raise ConfigError(
            f"{loaded.path}: no channel of a mockable kind (amazon, shopify) has a loopback "
            "endpoint such as http://127.0.0.1:8101"
        )
    for mock in mocks:
        log.info(
            "mock_marketplace_started", channel=mock.channel, kind=mock.kind, url=mock.base_url
        )
    return mocks


async def beside(loaded: LoadedConfig, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` (the daemon) with the config's mock marketplaces serving in this process."""
    mocks = await start_for(loaded)
    try:
        return await work()
    finally:
        await stop_mocks(mocks)


async def serve(loaded: LoadedConfig, port_base: int | None) -> int:
    """Serve the mocks until SIGINT/SIGTERM."""
    mocks = await start_for(loaded, port_base)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    for mock in mocks:
        print(f"{mock.channel}: mock {mock.kind} on {mock.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await stop_mocks(mocks)
    return 0
