"""Marketplace connectors behind one small ``Channel`` protocol (``connectors.base``).

Importing this package loads no connector: ``connectors.registry`` is the one table of kinds,
and each connector is imported when its kind is first used.
"""

from __future__ import annotations

from connectors.registry import CHANNELS, ChannelFactory

__all__ = ["CHANNELS", "ChannelFactory"]
