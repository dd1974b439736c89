"""Pure pricing strategies, rule selection and the guards that run after them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from strategies.base import StrategyFn
from strategies.competitive import buy_box, lowest_price
from strategies.inventory import excess_inventory, sales_velocity
from strategies.simple import cost_plus, fixed, hold

STRATEGIES: Final[Mapping[str, StrategyFn]] = {
    "hold": hold,
    "fixed": fixed,
    "cost_plus": cost_plus,
    "buy_box": buy_box,
    "lowest_price": lowest_price,
    "excess_inventory": excess_inventory,
    "sales_velocity": sales_velocity,
}

__all__ = ["STRATEGIES"]
