"""Pure pricing strategies, rule selection and the guards that run after them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from strategies.base import StrategyFn
from strategies.simple import cost_plus, fixed, hold

STRATEGIES: Final[Mapping[str, StrategyFn]] = {
    "hold": hold,
    "fixed": fixed,
    "cost_plus": cost_plus,
}

__all__ = ["STRATEGIES"]
