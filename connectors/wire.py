"""Exact JSON and money on the marketplace wires (Amazon's listings, Walmart's feeds and items).

Amazon and Walmart carry money as a JSON *number*; a ``float`` on the way would turn 19.99 into
19.989999999999998 somewhere, so bodies are written by ``dumps_exact`` (``Decimal`` → the exact
decimal literal) and responses are read by ``loads_exact`` (every JSON number → ``Decimal``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["dumps_exact", "loads_exact", "quantize", "to_decimal"]


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON with every number that has a fraction or exponent as an exact ``Decimal``."""
    return json.loads(text, parse_float=Decimal)


def dumps_exact(value: Any) -> bytes:
    """Serialize to compact JSON, writing ``Decimal`` as its exact literal; floats are refused."""
    out: list[str] = []
    _emit(value, out)
    return "".join(out).encode("utf-8")


def _emit(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, bool | str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send non-finite amount {value}")
        out.append(format(value, "f"))
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        raise TypeError("money must be Decimal, not float, on the SP-API wire")
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, got {type(key).__name__}")
            out.append("," if i else "")
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            _emit(item, out)
        out.append("}")
    elif isinstance(value, Sequence):
        out.append("[")
        for i, item in enumerate(value):
            out.append("," if i else "")
            _emit(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot serialize {type(value).__name__} to JSON")


# ISO 4217 minor units that differ from 2 (the marketplaces' currencies only).
_MINOR_UNITS = {"JPY": 0}


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit (cents for USD, EUR, GBP...; yen for JPY)."""
    return amount.quantize(Decimal(1).scaleb(-_MINOR_UNITS.get(currency, 2)))


def to_decimal(value: Any) -> Decimal | None:
    """A wire amount (JSON number already parsed as Decimal/int, or a decimal string) → Decimal."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int | str):
        try:
            result = Decimal(value)
        except ArithmeticError:
            return None
        return result if result.is_finite() else None
    if isinstance(value, float):  # only if a caller parsed without loads_exact
        return Decimal(str(value))
    return None
