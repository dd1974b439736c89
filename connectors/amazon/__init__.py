"""Amazon SP-API connector: Listings Items, Feeds, Product Pricing v0 and notifications."""

from connectors.amazon.channel import AmazonChannel
from connectors.amazon.models import AmazonSettings

__all__ = ["AmazonChannel", "AmazonSettings"]
