"""The `Channel` contract, the same tests for every real connector against its mock marketplace.

Each connector is started exactly as the daemon starts it (``CHANNELS[kind]`` with injected
``ChannelDeps``) and pointed over loopback at the mock that ``repricerd mock-marketplaces`` would
serve for its config. What the daemon relies on must hold for all of them: discovery returns the
catalogue in domain types, one result per pushed update (by idempotency key), pushes land at the
marketplace, a retried push with the same keys changes nothing more, a forged webhook is refused.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from connectors import CHANNELS
from connectors.base import Channel, ChannelDeps
from connectors.mock.servers import STARTERS, RunningMock, start_mocks, stop_mocks
from daemon.settings import ChannelSettings
from domain.clock import SystemClock
from domain.errors import WebhookError
from domain.listings import ChannelListing
from domain.writes import PriceUpdate, PushStatus, StockUpdate

SKUS = [f"CT-{i:02d}" for i in range(6)]
APPLIED = {PushStatus.CONFIRMED, PushStatus.ACCEPTED}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_for(kind: str, port: int) -> dict[str, Any]:
    """A channel config of ``kind`` pointed at a mock on ``port`` (secrets as values: the YAML
    layer's ${ENV} rule is tested elsewhere)."""
    base = f"http://127.0.0.1:{port}"
    if kind == "amazon":
        return {
            "kind": "amazon",
            "endpoint": base,
            "auth_endpoint": f"{base}/auth/o2/token",
            "marketplace_id": "ATVPDKIKX0DER",
            "seller_id": "A3CONTRACTSELLER",
            "credentials": {
                "client_id": "amzn1.application-oa2-client.contract",
                "client_secret": "contract-client-secret",
                "refresh_token": "Atzr|contract-refresh-token",
            },
            "webhook_secret": "contract-webhook-secret",
            "patch_max_batch": 50,
        }
    if kind == "shopify":
        return {
            "kind": "shopify",
            "shop": "contract.myshopify.com",
            "endpoint": base,
            "access_token": "shpat_contract_token",
            "webhook_secret": "contract-webhook-secret",
        }
    if kind == "walmart":
        return {
            "kind": "walmart",
            "endpoint": base,
            "client_id": "contract-walmart-client",
            "client_secret": "contract-walmart-secret",
            "webhook_secret": "contract-webhook-secret",
            "single_max_batch": 10,
        }
    return {
        "kind": "ebay",
        "endpoint": base,
        "auth_endpoint": f"{base}/identity/v1/oauth2/token",
        "client_id": "Contract-repricer-PRD-0123456789",
        "client_secret": "PRD-contract-client-secret",
        "refresh_token": "v^1.1#contract-refresh-token",
        "verification_token": "contract_verification_token_0123456789abcdef",
        "webhook_endpoint_url": "https://repricer.example.com/webhooks/contract",
    }


def write_catalog(path: Path, name: str) -> Path:
    lines = [f"sku,cost,min_price,max_price,stock,id:{name},price:{name}"]
    for i, sku in enumerate(SKUS):
        # Ids that every mock takes: numeric (Shopify variant, eBay offer), also a valid ASIN.
        lines.append(f"{sku},5.00,8.00,40.00,{10 + i},{9_000_000_100 + i},{20 + i}.00")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(params=sorted(STARTERS))
async def connected(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Channel, RunningMock]]:
    """A real connector, opened against its mock marketplace on loopback."""
    kind: str = request.param
    name = f"contract-{kind}"
    cfg = TypeAdapter(ChannelSettings).validate_python(settings_for(kind, free_port()))
    mocks = await start_mocks(
        {name: cfg}, catalog=write_catalog(tmp_path / "c.csv", name), webhook_base=None
    )
    http = httpx.AsyncClient(timeout=10)
    channel = CHANNELS[kind](name, cfg, ChannelDeps(http=http, clock=SystemClock()))
    try:
        await channel.open()
        yield channel, mocks[0]
    finally:
        await channel.close()
        await http.aclose()
        await stop_mocks(mocks)


async def listings(channel: Channel) -> dict[str, ChannelListing]:
    return {item.sku: item for item in await channel.fetch_listings()}


async def test_discovery_returns_the_catalogue_in_domain_types(
    connected: tuple[Channel, RunningMock],
) -> None:
    channel, _ = connected
    found = await listings(channel)
    assert set(SKUS) <= set(found)
    for sku in SKUS:
        item = found[sku]
        assert isinstance(item.price, Decimal)
        assert item.price == item.price.quantize(Decimal("0.01"))
        assert item.currency == "USD"
    assert channel.capabilities.max_price_batch >= 1
    assert channel.capabilities.max_stock_batch >= 1


async def test_prices_land_once_and_a_retry_with_the_same_keys_changes_nothing(
    connected: tuple[Channel, RunningMock],
) -> None:
    channel, _ = connected
    before = await listings(channel)
    updates = [
        PriceUpdate(
            sku=sku,
            price=(before[sku].price or Decimal("20")) + Decimal("1.25"),
            currency="USD",
            idempotency_key=f"price-{sku}",
            floor=Decimal("8.00"),
            ceiling=Decimal("40.00"),
            external_id=before[sku].external_id,
        )
        for sku in SKUS[:3]
    ]
    results = await channel.push_prices(updates)
    assert sorted(r.idempotency_key for r in results) == sorted(u.idempotency_key for u in updates)
    assert {r.status for r in results} <= APPLIED, results
    again = await channel.push_prices(updates)
    assert {r.status for r in again} <= APPLIED, again
    after = await listings(channel)
    for update in updates:
        assert after[update.sku].price == update.price
    for sku in SKUS[3:]:
        assert after[sku].price == before[sku].price


async def test_quantities_land_and_each_update_gets_its_own_result(
    connected: tuple[Channel, RunningMock],
) -> None:
    channel, _ = connected
    before = await listings(channel)
    updates = [
        StockUpdate(
            sku=sku,
            quantity=3 + i,
            idempotency_key=f"stock-{sku}",
            expected=before[sku].quantity,
            external_id=before[sku].external_id,
        )
        for i, sku in enumerate(SKUS[:4])
    ]
    results = await channel.push_stock(updates)
    assert sorted(r.idempotency_key for r in results) == sorted(u.idempotency_key for u in updates)
    assert {r.status for r in results} <= APPLIED, results
    after = await listings(channel)
    for update in updates:
        assert after[update.sku].quantity == update.quantity


async def test_a_forged_webhook_is_refused(connected: tuple[Channel, RunningMock]) -> None:
    channel, _ = connected
    body = b'{"forged": true}'
    headers = {
        "X-Shopify-Hmac-Sha256": "AAAA",
        "X-Repricerd-Signature": "00" * 32,
        "WM_SEC.SIGNATURE": "AAAA",
        "WM_SEC.TIMESTAMP": "1700000000000",
        "X-EBAY-SIGNATURE": "e30=",
    }
    prepare = getattr(channel, "prepare_webhook", None)

    async def verify() -> None:  # as the server does: prepare (fetch a key), then verify
        if prepare is not None:
            await prepare(headers)
        channel.verify_webhook(headers, body)

    with pytest.raises(WebhookError):
        await verify()
