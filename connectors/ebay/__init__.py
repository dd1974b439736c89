"""eBay connector (Sell Inventory API v1, Browse, Notification): listings, prices, stock."""

from connectors.ebay.channel import EbayChannel
from connectors.ebay.models import EbaySettings

__all__ = ["EbayChannel", "EbaySettings"]
