"""Shopify Admin GraphQL connector (API 2026-04): listings, prices, stock, webhooks."""

from connectors.shopify.channel import ShopifyChannel
from connectors.shopify.models import ShopifySettings

__all__ = ["ShopifyChannel", "ShopifySettings"]
