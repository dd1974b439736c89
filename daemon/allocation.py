"""How many units each channel may show: a pure function of available stock and the config."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from daemon.settings import ChannelAllocation, InventorySettings

_DEFAULT = ChannelAllocation()


def allocate(available: int, channel: str, inventory: InventorySettings) -> int | None:
    """Units to publish on ``channel``, or ``None`` if the channel is excluded from stock sync."""
    rule = inventory.channels.get(channel, _DEFAULT)
    if rule.exclude:
        return None
    last = inventory.last_units
    if last is not None and available < last.below and channel not in last.channels:
        return 0  # the last few units go to the priority channels only
    buffer = inventory.buffer if rule.buffer is None else rule.buffer
    units = max(0, available - buffer)
    # A share is rounded down: showing a unit we cannot cover is how oversells happen.
    units = int((Decimal(units) * rule.share_pct / 100).to_integral_value(rounding=ROUND_FLOOR))
    if rule.max is not None:
        units = min(units, rule.max)
    return units
