"""Marketplace connectors behind one small ``Channel`` protocol, and their explicit registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from connectors.amazon import AmazonChannel
from connectors.base import Channel, ChannelDeps
from connectors.ebay import EbayChannel
from connectors.mock import MockChannel
from connectors.shopify import ShopifyChannel
from connectors.walmart import WalmartChannel

ChannelFactory = Callable[[str, Any, ChannelDeps], Channel]

# kind (the ``kind:`` of a channel in the YAML) -> factory(name, settings, deps)
CHANNELS: Final[Mapping[str, ChannelFactory]] = {
    "mock": MockChannel,
    "amazon": AmazonChannel,
    "shopify": ShopifyChannel,
    "ebay": EbayChannel,
    "walmart": WalmartChannel,
}

__all__ = ["CHANNELS", "Channel", "ChannelDeps", "ChannelFactory"]
