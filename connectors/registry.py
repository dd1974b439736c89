"""The one table of connector kinds: what each ``kind:`` of a channel in the YAML is built from.

A connector is imported on first use, never by ``import connectors``: the config's ``kind``
union (``daemon.settings``) and the runtime's channel factories both read ``KINDS``, so a new
kind is registered here and nowhere else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeAlias

if TYPE_CHECKING:
    from pydantic import BaseModel

    from connectors.base import Channel, ChannelDeps

__all__ = [
    "CHANNELS",
    "KINDS",
    "ChannelFactory",
    "ConnectorKind",
    "channel_factory",
    "settings_model",
    "settings_models",
]

# factory(name, settings, deps) -> the channel; a Channel class is its own factory.
ChannelFactory: TypeAlias = "Callable[[str, Any, ChannelDeps], Channel]"


@dataclass(frozen=True, slots=True)
class ConnectorKind:
    """Where one kind's code lives, as ``"module:attribute"`` references imported lazily."""

    channel: str  # the Channel class, called as factory(name, settings, deps)
    settings: str  # the pydantic model of its YAML block, whose ``kind`` is Literal[<kind>]


# In the order the config's union lists them (pydantic's errors name the kinds in this order).
KINDS: Final[Mapping[str, ConnectorKind]] = MappingProxyType(
    {
        "mock": ConnectorKind(
            "connectors.mock.channel:MockChannel", "connectors.mock.models:MockSettings"
        ),
        "amazon": ConnectorKind(
            "connectors.amazon.channel:AmazonChannel", "connectors.amazon.models:AmazonSettings"
        ),
        "shopify": ConnectorKind(
            "connectors.shopify.channel:ShopifyChannel",
            "connectors.shopify.models:ShopifySettings",
        ),
        "walmart": ConnectorKind(
            "connectors.walmart.channel:WalmartChannel",
            "connectors.walmart.models:WalmartSettings",
        ),
        "ebay": ConnectorKind(
            "connectors.ebay.channel:EbayChannel", "connectors.ebay.models:EbaySettings"
        ),
    }
)


def _load(reference: str) -> Any:
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def channel_factory(kind: str) -> ChannelFactory:
    """The channel class of ``kind``, imported on first use (``KeyError`` for an unknown kind)."""
    factory: ChannelFactory = _load(KINDS[kind].channel)
    return factory


def settings_model(kind: str) -> type[BaseModel]:
    """The settings model of ``kind``, imported on first use (``KeyError`` for an unknown kind)."""
    model: type[BaseModel] = _load(KINDS[kind].settings)
    return model


def settings_models() -> tuple[type[BaseModel], ...]:
    """Every kind's settings model in table order: the members of the config's ``kind`` union."""
    return tuple(settings_model(kind) for kind in KINDS)


class _ChannelFactories(Mapping[str, "ChannelFactory"]):
    """``CHANNELS[kind]``: the table as a mapping of factories that load on first access."""

    def __getitem__(self, kind: str) -> ChannelFactory:
        return channel_factory(kind)

    def __iter__(self) -> Iterator[str]:
        return iter(KINDS)

    def __len__(self) -> int:
        return len(KINDS)


CHANNELS: Final[Mapping[str, ChannelFactory]] = _ChannelFactories()
