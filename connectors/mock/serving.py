"""Serve one mock marketplace's aiohttp app on loopback (every mock's ``start`` uses this)."""

from __future__ import annotations

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)


async def serve_app(
    app: web.Application, host: str, port: int, *, kind: str, listings: int
) -> tuple[web.AppRunner, str]:
    """Listen on ``host:port`` (0 = any free port); return the runner and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    base_url = f"http://{host}:{runner.addresses[0][1]}"
    log.info(f"{kind}_mock.started", base_url=base_url, listings=listings)
    return runner, base_url
