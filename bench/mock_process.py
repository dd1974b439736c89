"""A mock marketplace served in a child process, so its CPU work stays off the bench's loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import structlog

Start = Callable[[Any, str, int], Awaitable[tuple[Any, str]]]


def _serve(
    start: Start, state_type: Any, catalog: Path, options: dict[str, Any], conn: Connection
) -> None:
    # The child's log lines would interleave with the bench's report on stdout.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    async def serve() -> None:
        state = state_type.from_catalog(catalog, **options)
        _runner, base_url = await start(state, "127.0.0.1", 0)
        conn.send(base_url)
        await asyncio.Event().wait()

    asyncio.run(serve())


@asynccontextmanager
async def mock_process(
    start: Start, state_type: Any, catalog: Path, **options: Any
) -> AsyncIterator[str]:
    """Serve ``state_type.from_catalog(catalog, **options)`` in a child; yield its base URL."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_serve, args=(start, state_type, catalog, options, sender), daemon=True
    )
    process.start()
    try:
        if not await asyncio.to_thread(receiver.poll, 60):
            raise RuntimeError("the mock marketplace did not start")
        yield str(receiver.recv())
    finally:
        process.terminate()
        await asyncio.to_thread(process.join)
