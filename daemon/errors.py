"""Compatibility for branches merged this wave; remove next session: the error hierarchy lives
in ``domain.errors``."""

from __future__ import annotations

from domain.errors import *  # noqa: F403
from domain.errors import __all__ as __all__
