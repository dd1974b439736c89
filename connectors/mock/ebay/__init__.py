"""Mock eBay (OAuth, Sell Inventory, Browse, Notification) over the simulated market."""

from connectors.mock.ebay.app import make_app, start
from connectors.mock.ebay.state import EbayMockState

__all__ = ["EbayMockState", "make_app", "start"]
