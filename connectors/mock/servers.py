"""Start the mock marketplace servers a repricerd config points at (demo, e2e tests, backtests).

For each channel of a real kind (amazon, shopify, ...) whose ``endpoint`` is a loopback URL, a
mock of that marketplace is started on that URL's port, seeded from the catalogue CSV, with the
same credentials the channel will present (so auth is exercised for real) and pushing its
webhooks, signed with the channel's secret, to the daemon's own webhook route for that channel.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, SecretStr

from connectors.mock.amazon.app import start as start_amazon
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.ebay.app import start as start_ebay
from connectors.mock.ebay.state import EbayMockState
from connectors.mock.market import MockMarket
from connectors.mock.shopify.app import start as start_shopify
from connectors.mock.shopify.state import ShopifyMockState
from connectors.mock.walmart.app import start as start_walmart
from connectors.mock.walmart.state import WalmartMockState

# ``--port-base N`` puts each kind at a fixed offset from N (the contract's standalone mode).
PORT_OFFSETS: Final = {"amazon": 1, "walmart": 2, "ebay": 3, "shopify": 4}


@dataclass
class RunningMock:
    """One started mock marketplace."""

    channel: str
    kind: str
    base_url: str
    state: Any
    runner: web.AppRunner


Starter = Callable[[str, Any, Path | None, str | None, int, float | None], Awaitable[RunningMock]]


async def _launch(
    name: str,
    kind: str,
    state_type: Any,
    start: Callable[[Any, str, int], Awaitable[tuple[web.AppRunner, str]]],
    catalog: Path | None,
    port: int,
    options: dict[str, Any],
    currency: str | None = None,
) -> RunningMock:
    """Build a mock's state (seeded from the catalogue when there is one) and serve it."""
    if catalog is not None:
        seeded = options if currency is None else {**options, "currency": currency}
        state = state_type.from_catalog(catalog, channel=name, **seeded)
    else:
        state = state_type(**options)
    runner, base_url = await start(state, "127.0.0.1", port)
    return RunningMock(name, kind, base_url, state, runner)


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


async def _amazon(
    name: str,
    cfg: Any,
    catalog: Path | None,
    webhook_url: str | None,
    port: int,
    feed_processing_s: float | None = None,
) -> RunningMock:
    options: dict[str, Any] = {
        "seller_id": cfg.seller_id,
        "marketplace_id": cfg.marketplace_id,
        "client_id": cfg.credentials.client_id,
        "client_secret": _secret(cfg.credentials.client_secret),
        "refresh_token": _secret(cfg.credentials.refresh_token),
        "webhook_url": webhook_url if cfg.webhook_secret is not None else None,
    }
    if cfg.webhook_secret is not None:
        options["webhook_secret"] = _secret(cfg.webhook_secret)
    if feed_processing_s is not None:
        options["feed_processing_s"] = feed_processing_s
    return await _launch(
        name, "amazon", AmazonMockState, start_amazon, catalog, port, options, cfg.currency
    )


async def _shopify(
    name: str,
    cfg: Any,
    catalog: Path | None,
    webhook_url: str | None,
    port: int,
    feed_processing_s: float | None = None,  # no feeds on this marketplace
) -> RunningMock:
    # The mock accepts the channel's static token or, for a Dev Dashboard app, issues tokens to
    # exactly its client credentials; webhooks are signed with the channel's HMAC key.
    options: dict[str, Any] = {
        "shop_domain": cfg.shop,
        "client_id": cfg.client_id,
        "client_secret": cfg.client_secret,
        "webhook_url": webhook_url if cfg.webhook_key is not None else None,
        "currency": cfg.currency,
    }
    if cfg.access_token is not None:
        options["access_token"] = cfg.access_token
    if cfg.webhook_key is not None:
        options["webhook_secret"] = cfg.webhook_key
    if catalog is None:
        options["market"] = MockMarket()
    return await _launch(name, "shopify", ShopifyMockState, start_shopify, catalog, port, options)


async def _ebay(
    name: str,
    cfg: Any,
    catalog: Path | None,
    webhook_url: str | None,
    port: int,
    feed_processing_s: float | None = None,  # no feeds on this marketplace
) -> RunningMock:
    # The mock accepts exactly the channel's app credentials and refresh token; its
    # notifications are signed with its own key (served on its public key route), and the
    # endpoint challenge hashes the channel's verification token with the daemon's route.
    options: dict[str, Any] = {
        "client_id": cfg.client_id,
        "client_secret": cfg.client_secret,
        "refresh_token": cfg.refresh_token,
        "marketplace_id": cfg.marketplace_id,
        "notify_url": webhook_url,
    }
    if cfg.verification_token is not None:
        options["verification_token"] = cfg.verification_token
    if cfg.own_seller_id:
        options["seller_username"] = cfg.own_seller_id
    return await _launch(
        name, "ebay", EbayMockState, start_ebay, catalog, port, options, cfg.currency
    )


async def _walmart(
    name: str,
    cfg: Any,
    catalog: Path | None,
    webhook_url: str | None,
    port: int,
    feed_processing_s: float | None = None,
) -> RunningMock:
    options: dict[str, Any] = {
        "client_id": cfg.client_id,
        "client_secret": _secret(cfg.client_secret),
        # Every event type is subscribed at start-up, HMAC-signed with the channel's secret
        # (WM_SEC.SIGNATURE over the path the daemon's route is mounted at).
        "webhook_url": webhook_url if cfg.webhook_secret is not None else None,
    }
    if cfg.seller_id is not None:
        options["partner_id"] = cfg.seller_id
    if cfg.ship_node is not None:
        options["ship_node"] = cfg.ship_node
    if cfg.webhook_secret is not None:
        options["webhook_secret"] = _secret(cfg.webhook_secret)
    if feed_processing_s is not None:
        options["feed_processing_s"] = feed_processing_s
    return await _launch(
        name, "walmart", WalmartMockState, start_walmart, catalog, port, options, cfg.currency
    )


STARTERS: Final[Mapping[str, Starter]] = {
    "amazon": _amazon,
    "shopify": _shopify,
    "walmart": _walmart,
    "ebay": _ebay,
}


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (only such endpoints get a mock)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def mockable(channels: Mapping[str, BaseModel]) -> dict[str, BaseModel]:
    """The channels of a kind we can mock whose endpoint is on loopback."""
    return {
        name: cfg
        for name, cfg in channels.items()
        if getattr(cfg, "kind", None) in STARTERS and is_loopback(str(getattr(cfg, "endpoint", "")))
    }


async def start_mocks(
    channels: Mapping[str, BaseModel],
    *,
    catalog: Path | None,
    webhook_base: str | None,
    port_base: int | None = None,
    feed_processing_s: float | None = None,
) -> list[RunningMock]:
    """Start a mock for every mockable channel; on failure stop the ones already started.

    ``feed_processing_s`` shortens bulk-feed processing (Amazon, Walmart) from the mocks'
    realistic defaults (Walmart: 5 minutes), for demos.
    """
    started: list[RunningMock] = []
    try:
        for name, cfg in mockable(channels).items():
            kind = str(getattr(cfg, "kind"))  # noqa: B009 - a union of models, all with kind
            port = (
                port_base + PORT_OFFSETS[kind]
                if port_base is not None
                else urlsplit(str(getattr(cfg, "endpoint"))).port or 80  # noqa: B009
            )
            hook = f"{webhook_base}/webhooks/{name}" if webhook_base else None
            started.append(await STARTERS[kind](name, cfg, catalog, hook, port, feed_processing_s))
    except BaseException:
        await stop_mocks(started)
        raise
    return started


async def stop_mocks(mocks: list[RunningMock]) -> None:
    """Stop every started mock."""
    for mock in reversed(mocks):
        await mock.runner.cleanup()
