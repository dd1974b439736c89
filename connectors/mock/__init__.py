"""Mock marketplaces: the in-memory channel (and, later, the wire-faithful HTTP servers)."""

from connectors.mock.channel import MockChannel
from connectors.mock.models import MockSettings

__all__ = ["MockChannel", "MockSettings"]
