"""The marketplaces' official schemas, copied unchanged (see README.md here for provenance).

Connectors' tests validate the bodies they build against these, and the mock marketplaces reject
any request body that fails them, as the real APIs do.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SPECS_DIR = Path(__file__).parent


@cache
def load_spec(marketplace: str, name: str) -> Any:
    """Parse ``<marketplace>/<name>`` (e.g. ``amazon``, ``listingsItems_2021-08-01.json``)."""
    return json.loads((SPECS_DIR / marketplace / name).read_text(encoding="utf-8"))
