"""Walmart Marketplace (US) connector: single and bulk price/inventory writes, items, webhooks."""

from connectors.walmart.channel import WalmartChannel
from connectors.walmart.models import WalmartSettings

__all__ = ["WalmartChannel", "WalmartSettings"]
