"""Read and check the seller's catalogue CSV: products, channel listing ids, on-hand stock.

CSV format (UTF-8, an optional BOM is accepted; the header row is required):

==================  =========================================================================
column              meaning
==================  =========================================================================
``sku``             required, non-empty, unique within the file (at most 200 characters)
``title``           free text (at most 500 characters)
``currency``        ISO 4217 code such as ``USD``; blank means the import's default currency
``cost``, ``fees``  decimals ≥ 0 in plain notation (``12.34``), at most 4 decimal places
``min_price``,      decimals > 0, same notation; ``min_price`` ≤ ``max_price`` when a row gives
``max_price``       both
``stock``           on-hand count, an integer ≥ 0, recorded as a ``count`` stock event
``tags``            tags separated by ``|``: ``clearance|summer``
``components``      kit components with positive integer quantities: ``SKU-A:2|SKU-B:1``
``id:<channel>``    the listing's id on that channel (ASIN, item id, variant id...): a value
                    creates or updates the listing (channel, sku); a blank cell leaves it alone
``price:<channel>`` accepted and ignored here (it seeds the mock marketplaces)
``lead_time_days``  supplier lead time, whole days 0–365 (blank: 30)
``moq``             minimum order quantity, a whole number ≥ 1 (blank: 1)
``case_pack``       units per case, orders are rounded up to whole cases, ≥ 1 (blank: 1)
``supplier``        who to order from, free text (at most 100 characters)
``unit_volume_cuft`` one unit's volume in cubic feet, a decimal > 0 (blank: no storage-fee
                    forecast)
``size_tier``       storage-fee size tier: ``standard`` or ``oversize`` (blank: standard)
==================  =========================================================================

A column present in the file is authoritative for every row: a blank cell clears the value (a
blank ``currency`` resets it to the default). A column absent from the file leaves existing values
untouched. A blank ``stock`` cell means "no count for this row". Column names are
case-insensitive; channel names are not.

The whole file is validated first and every problem is reported at once (``ConfigError`` with
file, line and column); only then is everything written, in one transaction of set-based
statements. Stock counts are keyed by the file's content: re-importing the same bytes changes no
stock, while a new file with a new count moves on-hand to it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

from daemon.db.models import SKU_LENGTH
from daemon.event_checks import printable
from domain.errors import ConfigError, ConfigProblem

MAX_LISTED_PROBLEMS = 50
# CSV column -> product column, in the documented order.
PRODUCT_COLUMNS = MappingProxyType(
    {
        "title": "title",
        "currency": "currency",
        "cost": "cost",
        "fees": "fees",
        "min_price": "min_price",
        "max_price": "max_price",
        "tags": "tags",
        "components": "kit_components",
        "lead_time_days": "lead_time_days",
        "moq": "moq",
        "case_pack": "case_pack",
        "supplier": "supplier",
        "unit_volume_cuft": "unit_volume_cuft",
        "size_tier": "size_tier",
    }
)
SIZE_TIERS = ("standard", "oversize")
MAX_SUPPLIER, MAX_LEAD_TIME_DAYS = 100, 365
EXPECTED = ", ".join(("sku", *PRODUCT_COLUMNS, "stock", "id:<channel>", "price:<channel>"))
MAX_SKU, MAX_TITLE, MAX_EXTERNAL_ID, MAX_CHANNEL, MAX_INT = SKU_LENGTH, 500, 200, 100, 2**31 - 1
# Money is NUMERIC(18, 4) on PostgreSQL: larger or finer values would be rounded there.
MONEY_MAX_PLACES, MONEY_MAX_INT_DIGITS = 4, 14
_CURRENCY = re.compile(r"[A-Z]{3}")
# Plain notation only: no exponent, thousands separator, NaN or Infinity slips through.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class Layout:
    """The header, understood: which cell index holds what."""

    sku: int | None
    product: dict[str, int]  # CSV product column -> cell index
    stock: int | None
    ids: dict[str, int]  # channel -> cell index
    width: int


@dataclass(frozen=True, slots=True)
class CatalogRow:
    sku: str
    product: dict[str, Any]  # product column -> value (sku included), for columns in the file
    stock: int | None
    ids: dict[str, str]  # channel -> external id, non-blank cells only


class _Problems(list[ConfigProblem]):
    """The problems found in one file."""

    def __init__(self, file: str) -> None:
        super().__init__()
        self.file = file

    def add(self, line: int | None, key: str, message: str) -> None:
        self.append(ConfigProblem(self.file, line, key, message))

    def error(self) -> ConfigError:
        """One error carrying every problem; its message lists the first ones."""
        lines = [f"{self.file}: {len(self)} problem(s), nothing was imported"]
        lines += [str(p) for p in self[:MAX_LISTED_PROBLEMS]]
        if len(self) > MAX_LISTED_PROBLEMS:
            lines.append(f"… and {len(self) - MAX_LISTED_PROBLEMS} more")
        return ConfigError("\n".join(lines), list(self))


class _BadCell(ValueError):
    """A cell that does not parse; the message is shown to the operator."""


def read_catalog(
    path: Path, default_currency: str, known_channels: Collection[str] | None
) -> tuple[Layout, list[CatalogRow], bytes]:
    """Read and validate a catalogue file; raise ``ConfigError`` with every problem found."""
    if not _CURRENCY.fullmatch(default_currency):
        raise ValueError(f"default_currency must be an ISO 4217 code, got {default_currency!r}")
    try:
        data = path.read_bytes()
    except OSError as err:
        problems = _Problems(str(path))
        problems.add(None, "", f"cannot read: {err.strerror}")
        raise problems.error() from err
    layout, rows = parse_catalog(str(path), data, default_currency, known_channels)
    return layout, rows, data


def parse_catalog(
    name: str, data: bytes, default_currency: str, known_channels: Collection[str] | None
) -> tuple[Layout, list[CatalogRow]]:
    """Read and validate every row; raise one ConfigError with all problems."""
    problems = _Problems(name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problems.add(line, "", f"not valid UTF-8 (byte {err.start}); save the file as UTF-8")
        raise problems.error() from err
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[CatalogRow] = []
    layout = Layout(None, {}, None, {}, 0)
    try:
        header = next(reader, None)
        if header is None:
            problems.add(1, "", "empty file: a header row is required")
            raise problems.error()
        layout = _layout(header, known_channels, problems)
        first_line: dict[str, int] = {}
        while True:
            line = reader.line_num + 1  # where this record starts (a record may span lines)
            cells = next(reader, None)
            if cells is None:
                break
            if not any(c.strip() for c in cells):
                continue
            row = _row(line, cells, layout, default_currency, problems)
            if row is not None and row.sku in first_line:
                first = first_line[row.sku]
                problems.add(line, "sku", f"duplicate sku {row.sku!r} (first on line {first})")
            elif row is not None:
                first_line[row.sku] = line
                rows.append(row)
    except csv.Error as err:
        problems.add(reader.line_num or 1, "", f"malformed CSV: {err}")
    if problems:
        raise problems.error()
    return layout, rows


def _layout(
    header: Sequence[str], known_channels: Collection[str] | None, problems: _Problems
) -> Layout:
    """Map header names to cell indexes; unknown or duplicated columns are problems on line 1."""
    product: dict[str, int] = {}
    ids: dict[str, int] = {}
    sku = stock = None
    seen: set[str] = set()
    for index, raw in enumerate(header):
        column = raw.strip()
        prefix, colon, channel = column.partition(":")
        prefix, channel = prefix.strip().lower(), channel.strip()
        canonical = f"{prefix}:{channel}" if colon else prefix
        if canonical in seen:
            problems.add(1, column, "duplicate column")
            continue
        seen.add(canonical)
        if canonical == "sku":
            sku = index
        elif canonical == "stock":
            stock = index
        elif canonical in PRODUCT_COLUMNS:
            product[canonical] = index
        elif colon and prefix in ("id", "price"):
            if not channel or len(channel) > MAX_CHANNEL:
                problems.add(1, column, f"{prefix}:<channel> needs a channel name")
            elif prefix == "id" and known_channels is not None and channel not in known_channels:
                known = ", ".join(sorted(known_channels)) or "none configured"
                problems.add(1, column, f"unknown channel {channel!r} (configured: {known})")
            elif prefix == "id":
                ids[channel] = index
        else:
            problems.add(1, column or f"#{index + 1}", f"unknown column (expected: {EXPECTED})")
    if sku is None:
        problems.add(1, "sku", "the required column 'sku' is missing")
    return Layout(sku, product, stock, ids, len(header))


def _row(
    line: int, cells: list[str], layout: Layout, default_currency: str, problems: _Problems
) -> CatalogRow | None:
    """Validate one record; record its problems and return None if it has any."""
    before = len(problems)
    if len(cells) != layout.width:
        problems.add(line, "", f"the row has {len(cells)} fields, the header {layout.width}")
        return None
    sku = cells[layout.sku].strip() if layout.sku is not None else ""
    if layout.sku is not None and not sku:
        problems.add(line, "sku", "a sku is required")
    elif len(sku) > MAX_SKU:
        problems.add(line, "sku", f"longer than {MAX_SKU} characters")
    elif printable(sku) != sku:
        problems.add(line, "sku", "contains a control character")
    product: dict[str, Any] = {"sku": sku}
    for column, index in layout.product.items():
        try:
            product[PRODUCT_COLUMNS[column]] = _cell(
                column, cells[index].strip(), sku, default_currency
            )
        except _BadCell as err:
            problems.add(line, column, str(err))
    low, high = product.get("min_price"), product.get("max_price")
    if low is not None and high is not None and low > high:
        problems.add(line, "min_price", f"min_price {low} is above max_price {high}")
    stock = None
    if layout.stock is not None and (raw := cells[layout.stock].strip()):
        try:
            stock = _integer(raw, minimum=0)
        except _BadCell as err:
            problems.add(line, "stock", str(err))
    ids: dict[str, str] = {}
    for channel, index in layout.ids.items():
        if value := cells[index].strip():
            if len(value) > MAX_EXTERNAL_ID:
                problems.add(line, f"id:{channel}", f"longer than {MAX_EXTERNAL_ID} characters")
            ids[channel] = value
    if len(problems) > before or layout.sku is None:
        return None
    return CatalogRow(sku, product, stock, ids)


def _cell(column: str, raw: str, sku: str, default_currency: str) -> Any:
    """Parse one product cell; blank clears the value (the column is present in the file)."""
    if column in ("cost", "fees", "min_price", "max_price"):
        return _money(raw, positive=column.endswith("price"))
    if column == "title":
        if len(raw) > MAX_TITLE:
            raise _BadCell(f"longer than {MAX_TITLE} characters")
        return raw or None
    if column == "currency":
        if not _CURRENCY.fullmatch(code := raw.upper() or default_currency):
            raise _BadCell(f"{raw!r} is not an ISO 4217 currency code (like USD, EUR)")
        return code
    if column == "tags":
        return list(dict.fromkeys(t.strip() for t in raw.split("|") if t.strip()))
    if column == "components":
        return _components(raw, sku)
    return _supply(column, raw)


def _supply(column: str, raw: str) -> Any:
    """The supply and storage columns of the inventory pass; blank means the default."""
    if not raw:
        return None
    if column == "lead_time_days":
        value = _integer(raw, minimum=0)
        if value > MAX_LEAD_TIME_DAYS:
            raise _BadCell(f"must be at most {MAX_LEAD_TIME_DAYS} days, got {value}")
        return value
    if column in ("moq", "case_pack"):
        return _integer(raw, minimum=1)
    if column == "supplier":
        if len(raw) > MAX_SUPPLIER:
            raise _BadCell(f"longer than {MAX_SUPPLIER} characters")
        return raw
    if column == "unit_volume_cuft":
        return _money(raw, positive=True)
    if raw.lower() not in SIZE_TIERS:
        raise _BadCell(f"{raw!r} is not a size tier (one of {', '.join(SIZE_TIERS)})")
    return raw.lower()


def _money(raw: str, *, positive: bool) -> Decimal | None:
    if not raw:
        return None
    if not _DECIMAL.fullmatch(raw):
        raise _BadCell(f"{raw!r} is not a decimal number (write 12.34)")
    whole, _, places = raw.lstrip("+-").partition(".")
    if len(places) > MONEY_MAX_PLACES:
        raise _BadCell(f"{raw} has more than {MONEY_MAX_PLACES} decimal places")
    if len(whole.lstrip("0")) > MONEY_MAX_INT_DIGITS:
        raise _BadCell(f"{raw} is too large")
    value = Decimal(raw)
    if value < 0:
        raise _BadCell(f"must not be negative, got {raw}")
    if positive and value == 0:
        raise _BadCell(f"must be greater than 0, got {raw}")
    return value


def _integer(raw: str, *, minimum: int) -> int:
    if not _INTEGER.fullmatch(raw):
        raise _BadCell(f"{raw!r} is not a whole number")
    if (value := int(raw)) < minimum:
        raise _BadCell(f"must be at least {minimum}, got {value}")
    if value > MAX_INT:
        raise _BadCell(f"{value} is too large")
    return value


def _components(raw: str, sku: str) -> dict[str, int]:
    components: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in raw.split("|"))):
        component, colon, quantity = (s.strip() for s in part.rpartition(":"))
        if not colon or not component:
            raise _BadCell(f"{part!r} is not SKU:QUANTITY (write SKU-A:2|SKU-B:1)")
        if component == sku:
            raise _BadCell("a kit cannot contain itself")
        try:
            components[component] = components.get(component, 0) + _integer(quantity, minimum=1)
        except _BadCell as err:
            raise _BadCell(f"component {component!r}: quantity {err}") from None
    return components
