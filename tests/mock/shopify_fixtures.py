"""A mock Shopify store over the test catalogue, served on loopback (shared by mock tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from pydantic import SecretStr

from connectors.mock.shopify import ShopifyMockState, start
from domain.clock import ManualClock
from tests.mock.test_mock_shopify import CATALOG, SECRET, TOKEN


def store(tmp_path: Path, clock: ManualClock) -> ShopifyMockState:
    """The test catalogue as a store, with the tests' token and webhook secret."""
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    return ShopifyMockState.from_catalog(
        catalog,
        channel="shop",
        access_token=SecretStr(TOKEN),
        webhook_secret=SecretStr(SECRET),
        clock=clock,
    )


async def serve(state: ShopifyMockState) -> AsyncIterator[httpx.AsyncClient]:
    """A client on ``state`` served on a free loopback port, authorised with the tests' token."""
    runner, base_url = await start(state)
    headers = {"X-Shopify-Access-Token": TOKEN}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
        yield client
    await runner.cleanup()
