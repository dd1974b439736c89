"""Fixtures of every connector test: a sleep that moves the test's clock, and an HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from domain.clock import ManualClock
from tests.connectors.fakes import FakeSleep


@pytest.fixture
def sleep(clock: ManualClock) -> FakeSleep:
    """Backoff waits advance the test's clock (``clock`` is the suite's manual clock)."""
    return FakeSleep(clock)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client (respx routes its requests)."""
    async with httpx.AsyncClient() as client:
        yield client
