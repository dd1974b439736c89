"""Compatibility for branches merged this wave; remove next session: the clocks live in
``domain.clock``."""

from __future__ import annotations

from domain.clock import *  # noqa: F403
from domain.clock import __all__ as __all__
