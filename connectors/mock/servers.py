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
from functools import partial
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, SecretStr

from connectors.mock.amazon.app import start as start_amazon
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.ebay.app import start as start_ebay
from connectors.mock.ebay.state import EbayMockState
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


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def _given(**options: Any) -> dict[str, Any]:
    """The options that are set (the state's defaults stand for the others)."""
    return {name: value for name, value in options.items() if value is not None}


def _amazon(cfg: Any, webhook_url: str | None) -> dict[str, Any]:
    return {
        "seller_id": cfg.seller_id,
        "marketplace_id": cfg.marketplace_id,
        "client_id": cfg.credentials.client_id,
        "client_secret": _secret(cfg.credentials.client_secret),
        "refresh_token": _secret(cfg.credentials.refresh_token),
        "webhook_url": webhook_url if cfg.webhook_secret is not None else None,
        **_given(webhook_secret=_secret(cfg.webhook_secret)),
    }


def _shopify(cfg: Any, webhook_url: str | None) -> dict[str, Any]:
    # The mock accepts the channel's static token or, for a Dev Dashboard app, issues tokens to
    # exactly its client credentials; webhooks are signed with the channel's HMAC key.
    return {
        "shop_domain": cfg.shop,
        "client_id": cfg.client_id,
        "client_secret": cfg.client_secret,
        "webhook_url": webhook_url if cfg.webhook_key is not None else None,
        "currency": cfg.currency,
        **_given(access_token=cfg.access_token, webhook_secret=cfg.webhook_key),
    }


def _ebay(cfg: Any, webhook_url: str | None) -> dict[str, Any]:
    # The mock accepts exactly the channel's app credentials and refresh token; its
    # notifications are signed with its own key (served on its public key route), and the
    # endpoint challenge hashes the channel's verification token with the daemon's route.
    return {
        "client_id": cfg.client_id,
        "client_secret": cfg.client_secret,
        "refresh_token": cfg.refresh_token,
        "marketplace_id": cfg.marketplace_id,
        "notify_url": webhook_url,
        **_given(
            verification_token=cfg.verification_token, seller_username=cfg.own_seller_id or None
        ),
    }


def _walmart(cfg: Any, webhook_url: str | None) -> dict[str, Any]:
    return {
        "client_id": cfg.client_id,
        "client_secret": _secret(cfg.client_secret),
        # Every event type is subscribed at start-up, HMAC-signed with the channel's secret
        # (WM_SEC.SIGNATURE over the path the daemon's route is mounted at).
        "webhook_url": webhook_url if cfg.webhook_secret is not None else None,
        **_given(
            partner_id=cfg.seller_id,
            ship_node=cfg.ship_node,
            webhook_secret=_secret(cfg.webhook_secret),
        ),
    }


@dataclass(frozen=True)
class Kind:
    """How the mock of one marketplace is built from a channel's config, and served."""

    # The state class: ``from_catalog(catalog, channel=..., **options)`` or ``(**options)``.
    state: Any
    start: Callable[[Any, str, int], Awaitable[tuple[web.AppRunner, str]]]
    options: Callable[[Any, str | None], dict[str, Any]]  # (channel config, webhook URL) -> options


KINDS: Final[dict[str, Kind]] = {
    "amazon": Kind(AmazonMockState, start_amazon, _amazon),
    "shopify": Kind(ShopifyMockState, start_shopify, _shopify),
    "walmart": Kind(WalmartMockState, start_walmart, _walmart),
    "ebay": Kind(EbayMockState, start_ebay, _ebay),
}


async def launch(
    kind: str,
    name: str,
    cfg: Any,
    catalog: Path | None,
    webhook_url: str | None,
    port: int,
    feed_processing_s: float | None = None,
) -> RunningMock:
    """Build the mock of channel ``name`` (seeded from the catalogue when there is one), serve it.

    ``feed_processing_s`` applies to the marketplaces with bulk feeds (Amazon, Walmart).
    """
    mock = KINDS[kind]
    options = mock.options(cfg, webhook_url)
    if feed_processing_s is not None and hasattr(mock.state, "feed_processing_s"):
        options["feed_processing_s"] = feed_processing_s
    if catalog is None:
        state = mock.state(**options)
    else:
        seeded = {"currency": cfg.currency, **options}
        state = mock.state.from_catalog(catalog, channel=name, **seeded)
    runner, base_url = await mock.start(state, "127.0.0.1", port)
    return RunningMock(name, kind, base_url, state, runner)


STARTERS: Final[Mapping[str, Callable[..., Awaitable[RunningMock]]]] = {
    kind: partial(launch, kind) for kind in KINDS
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
