"""Item-level checks shared by the single-SKU endpoints and feed processing.

Each returns the parsed value or a ``Refusal`` (code + description), which the single-SKU
endpoints turn into a 400 and feed processing into a ``DATA_ERROR`` ingestion status.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.mock.walmart.const import ERR_INVALID_DATA
from connectors.mock.walmart.wire import first_error, money, spec_validator, whole

_PROMO_FIELDS = (
    "comparisonPrice",
    "comparisonPriceType",
    "effectiveDate",
    "expirationDate",
    "promoId",
    "processMode",
    "priceDisplayCodes",
)


@dataclass(frozen=True)
class Refusal:
    """Why one item was not accepted."""

    code: str
    description: str
    field: str = ""


def check_price(item: Any, currency: str) -> tuple[str, Decimal] | Refusal:
    """A price.json ``Price`` with one BASE price in the seller's currency -> (sku, amount)."""
    problem = first_error(spec_validator("price.json", "Price"), item)
    if problem is not None:
        return Refusal(ERR_INVALID_DATA, f"Invalid price: {problem}")
    pricing = item["pricing"]
    if len(pricing) != 1 or pricing[0]["currentPriceType"] != "BASE":
        # Promotions (REDUCED/CLEARANCE, several entries) are not modelled by this mock.
        return Refusal(ERR_INVALID_DATA, "Exactly one BASE price is expected.", "pricing")
    entry = pricing[0]
    if any(name in entry for name in _PROMO_FIELDS):
        return Refusal(ERR_INVALID_DATA, "Promotion fields are not supported.", "pricing")
    price = entry["currentPrice"]
    if "amount" not in price or "currency" not in price:
        return Refusal(ERR_INVALID_DATA, "currentPrice needs currency and amount.", "amount")
    if price["currency"] != currency:
        return Refusal(ERR_INVALID_DATA, f"Currency must be {currency}.", "currency")
    amount = money(price["amount"])
    if amount is None or amount <= 0:
        return Refusal(
            ERR_INVALID_DATA, "amount must be a positive number with at most 2 decimals.", "amount"
        )
    return str(item["sku"]), amount


def check_quantity(quantity: Any) -> int | Refusal:
    """An ``InputQty`` (unit EACH, whole non-negative amount) -> the amount."""
    problem = first_error(spec_validator("inventory.json", "InputQty"), quantity)
    if problem is not None:
        return Refusal(ERR_INVALID_DATA, f"Invalid quantity: {problem}", "quantity")
    amount = whole(quantity["amount"])
    if amount is None:
        return Refusal(
            ERR_INVALID_DATA, "quantity.amount must be a whole number >= 0.", "quantity.amount"
        )
    return amount


def check_inventory(item: Any) -> tuple[str, int] | Refusal:
    """An inventory.json ``Inventory`` (spec 1.4 feed item / single PUT) -> (sku, amount)."""
    problem = first_error(spec_validator("inventory.json", "Inventory"), item)
    if problem is not None:
        return Refusal(ERR_INVALID_DATA, f"Invalid inventory: {problem}")
    amount = check_quantity(item["quantity"])
    if isinstance(amount, Refusal):
        return amount
    return str(item["sku"]), amount


def check_node_inventory(item: Any) -> tuple[str, list[tuple[str, int]]] | Refusal:
    """An MP_INVENTORY (spec 1.5) item ``{sku, shipNodes: [{shipNode, quantity}]}``."""
    problem = first_error(spec_validator("inventory.json", "InventoryWFS"), item)
    if problem is not None:
        return Refusal(ERR_INVALID_DATA, f"Invalid inventory: {problem}")
    if not isinstance(item.get("sku"), str) or not item.get("shipNodes"):
        return Refusal(ERR_INVALID_DATA, "sku and shipNodes are required.")
    nodes: list[tuple[str, int]] = []
    for node in item["shipNodes"]:
        if not isinstance(node.get("shipNode"), str) or "quantity" not in node:
            return Refusal(ERR_INVALID_DATA, "Each shipNode needs shipNode and quantity.")
        amount = check_quantity(node["quantity"])
        if isinstance(amount, Refusal):
            return amount
        nodes.append((node["shipNode"], amount))
    return item["sku"], nodes
