"""Mock Shopify Admin GraphQL API (2026-04) over the simulated market, for e2e tests and demos."""

from connectors.mock.shopify.app import make_app, start
from connectors.mock.shopify.state import ShopifyMockState

__all__ = ["ShopifyMockState", "make_app", "start"]
