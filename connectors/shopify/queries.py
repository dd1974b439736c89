"""The GraphQL documents we send to the Admin API (2026-04), one constant per operation.

Each is parsed by graphql-core in the tests, so a typo fails CI rather than the shop's answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

# A variant as a listing: price, product and inventory item ids, and the "available" quantity at
# the managed location (null inventoryLevel = not stocked there).
LISTING_VARIANT_FRAGMENT: Final = """
fragment ListingVariant on ProductVariant {
  id
  sku
  price
  product { id status }
  inventoryItem {
    id
    inventoryLevel(locationId: $locationId) {
      quantities(names: ["available"]) { name quantity }
    }
  }
}
"""

OPEN_PRIMARY: Final = """
query Open {
  shop { name currencyCode }
  location { id name isActive }
  locations(first: 5) { nodes { id name isActive } }
}
"""

OPEN_AT_LOCATION: Final = """
query OpenAtLocation($id: ID!) {
  shop { name currencyCode }
  location(id: $id) { id name isActive }
}
"""

LISTINGS_PAGE: Final = (
    """
query Listings($first: Int!, $after: String, $locationId: ID!) {
  productVariants(first: $first, after: $after) {
    nodes { ...ListingVariant }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    + LISTING_VARIANT_FRAGMENT
)

VARIANTS_BY_ID: Final = (
    """
query VariantsById($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on ProductVariant { ...ListingVariant }
  }
}
"""
    + LISTING_VARIANT_FRAGMENT
)

VARIANTS_BY_SKU: Final = (
    """
query VariantsBySku($first: Int!, $query: String!, $locationId: ID!) {
  productVariants(first: $first, query: $query) {
    nodes { ...ListingVariant }
    pageInfo { hasNextPage endCursor }
  }
}
"""
    + LISTING_VARIANT_FRAGMENT
)

SET_PRICES: Final = """
mutation SetPrices($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants, allowPartialUpdates: true) {
    productVariants { id price }
    userErrors { field message code }
  }
}
"""

# 2026-04: @idempotent is required at runtime; a replay with the same key returns the original
# result instead of applying twice.
SET_STOCK: Final = """
mutation SetStock($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup {
      reason
      referenceDocumentUri
      changes { name delta quantityAfterChange }
    }
    userErrors { code field message }
  }
}
"""

READ_LEVELS: Final = """
query ReadLevels($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem {
      id
      inventoryLevel(locationId: $locationId) {
        quantities(names: ["available"]) { name quantity }
      }
    }
  }
}
"""

# Orders updated since a time, oldest update first (orders/create and orders/cancelled both move
# updatedAt). ``legacyResourceId`` is the numeric REST id the order webhooks carry.
ORDERS_PAGE: Final = """
query Orders($first: Int!, $after: String, $query: String!, $lines: Int!) {
  orders(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    nodes {
      id
      legacyResourceId
      createdAt
      updatedAt
      cancelledAt
      lineItems(first: $lines) {
        nodes { sku quantity }
        pageInfo { hasNextPage endCursor }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

# The rest of the line items of an order with more than fit on the orders page.
ORDER_LINES: Final = """
query OrderLines($id: ID!, $first: Int!, $after: String) {
  node(id: $id) {
    ... on Order {
      lineItems(first: $first, after: $after) {
        nodes { sku quantity }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""

ALL_DOCUMENTS: Final = (
    OPEN_PRIMARY,
    OPEN_AT_LOCATION,
    LISTINGS_PAGE,
    VARIANTS_BY_ID,
    VARIANTS_BY_SKU,
    SET_PRICES,
    SET_STOCK,
    READ_LEVELS,
    ORDERS_PAGE,
    ORDER_LINES,
)


def sku_search(skus: list[str]) -> str:
    """A productVariants search string matching any of ``skus`` exactly (quoted, escaped)."""
    terms = []
    for sku in skus:
        escaped = sku.replace("\\", "\\\\").replace('"', '\\"')
        terms.append(f'sku:"{escaped}"')
    return " OR ".join(terms)


def updated_since(since: datetime) -> str:
    """An ``orders`` search string: updated at or after ``since`` (UTC, whole seconds, rounded
    down so the boundary second is included)."""
    moment = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"updated_at:>='{moment}'"
