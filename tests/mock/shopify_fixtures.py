"""A mock Shopify store over the test catalogue, served on loopback (shared by mock tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
from pydantic import SecretStr

from connectors.mock.shopify import ShopifyMockState, start
from domain.clock import ManualClock

TOKEN = "shpat_test_token"
SECRET = "whsec_test"
CATALOG = """sku,title,currency,cost,stock,id:shop,price:shop
MUG-001,Ceramic mug #1,USD,10,15,gid://shopify/ProductVariant/1001,24.99
MUG-002,Ceramic mug #2,USD,10,4,gid://shopify/ProductVariant/1002,19.49
MUG-003,Ceramic mug #3,USD,10,0,gid://shopify/ProductVariant/1003,21.00
TEE-S,Plain tee S,USD,5,7,gid://shopify/ProductVariant/2001,12.00
TEE-M,Plain tee M,USD,5,9,gid://shopify/ProductVariant/2002,12.00
BOOK-1,A book,USD,3,2,gid://shopify/ProductVariant/3001,9.99
NOPE-1,Not on this shop,USD,3,2,,9.99
"""


def store(
    tmp_path: Path, clock: ManualClock, sleep: Callable[[float], Awaitable[None]] | None = None
) -> ShopifyMockState:
    """The test catalogue as a store, with the tests' token and webhook secret."""
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(CATALOG, encoding="utf-8")
    return ShopifyMockState.from_catalog(
        catalog,
        channel="shop",
        access_token=SecretStr(TOKEN),
        webhook_secret=SecretStr(SECRET),
        clock=clock,
        **({} if sleep is None else {"sleep": sleep}),
    )


async def serve(state: ShopifyMockState) -> AsyncIterator[httpx.AsyncClient]:
    """A client on ``state`` served on a free loopback port, authorised with the tests' token."""
    runner, base_url = await start(state)
    headers = {"X-Shopify-Access-Token": TOKEN}
    async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:
        yield client
    await runner.cleanup()
