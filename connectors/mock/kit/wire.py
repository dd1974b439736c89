"""Wire helpers the mocks share: the marketplaces' millisecond timestamps, schema violations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jsonschema.protocols import Validator


def iso(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and ``Z`` (Amazon, eBay and Walmart all write this)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def first_error(validator: Validator, instance: Any, separator: str = "/") -> str | None:
    """A readable description of the first schema violation, or None if ``instance`` is valid."""
    error = next(iter(validator.iter_errors(instance)), None)
    if error is None:
        return None
    where = separator.join(str(part) for part in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"
