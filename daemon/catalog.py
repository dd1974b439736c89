"""Import the seller's catalogue from CSV: products, channel listing ids and on-hand stock counts.

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

import asyncio
import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.clock import Clock
from daemon.db.engine import Database
from daemon.db.models import Listing, Product, StockEvent, StockEventKind
from daemon.errors import ConfigError, ConfigProblem

CHUNK_ROWS = 2_000
MAX_LISTED_PROBLEMS = 50
# Serialises imports on PostgreSQL: two counts computed from the same on-hand would otherwise
# both apply their delta. SQLite already has a single writer.
IMPORT_LOCK_KEY = 0x7265_7072_6963_6531
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
    }
)
EXPECTED = ", ".join(("sku", *PRODUCT_COLUMNS, "stock", "id:<channel>", "price:<channel>"))
MAX_SKU, MAX_TITLE, MAX_EXTERNAL_ID, MAX_CHANNEL, MAX_INT = 200, 500, 200, 100, 2**31 - 1
# Money is NUMERIC(18, 4) on PostgreSQL: larger or finer values would be rounded there.
MONEY_MAX_PLACES, MONEY_MAX_INT_DIGITS = 4, 14
_CURRENCY = re.compile(r"[A-Z]{3}")
# Plain notation only: no exponent, thousands separator, NaN or Infinity slips through.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_INTEGER = re.compile(r"[+-]?[0-9]+")

T = TypeVar("T")


@dataclass(frozen=True)
class ImportReport:
    """What an import did: ``listings`` counts the channel ids applied, ``stock_counts`` the
    count events written (0 when the same file was imported before)."""

    rows: int
    products_created: int
    products_updated: int
    listings: int
    stock_counts: int


@dataclass(frozen=True, slots=True)
class _Layout:
    """The header, understood: which cell index holds what."""

    sku: int | None
    product: dict[str, int]  # CSV product column -> cell index
    stock: int | None
    ids: dict[str, int]  # channel -> cell index
    width: int


@dataclass(frozen=True, slots=True)
class _Row:
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


async def import_catalog(
    db: Database,
    path: Path,
    *,
    clock: Clock,
    default_currency: str = "USD",
    known_channels: Collection[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Validate the whole CSV, then write products, listings and stock counts in one transaction."""
    if not _CURRENCY.fullmatch(default_currency):
        raise ValueError(f"default_currency must be an ISO 4217 code, got {default_currency!r}")
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as err:
        problems = _Problems(str(path))
        problems.add(None, "", f"cannot read: {err.strerror}")
        raise problems.error() from err
    # Parsing 100k rows is about a second of CPU: off the event loop, so a daemon stays live.
    layout, rows = await asyncio.to_thread(
        _parse, str(path), data, default_currency, known_channels
    )
    digest = hashlib.sha256(data).hexdigest()[:16]
    now = clock.now()
    total, done, created, listings, counts = len(rows), 0, 0, 0, 0
    if progress:
        progress(0, total)
    async with db.write() as conn:
        if not db.is_sqlite:
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(IMPORT_LOCK_KEY)))
        present = {PRODUCT_COLUMNS[column] for column in layout.product}
        product_stmt, listing_stmt, count_stmt = _statements(
            db, conn.dialect, present, default_currency, now
        )
        for chunk in _chunks(rows, CHUNK_ROWS):
            existing = await _existing_currencies(conn, [r.sku for r in chunk])
            created += sum(1 for r in chunk if r.sku not in existing)
            await conn.execute(product_stmt, [r.product for r in chunk])
            listing_params = [
                {
                    "channel": channel,
                    "sku": r.sku,
                    "external_id": external_id,
                    "currency": r.product.get("currency") or existing.get(r.sku, default_currency),
                }
                for r in chunk
                for channel, external_id in r.ids.items()
            ]
            for part in _chunks(listing_params, CHUNK_ROWS):
                await conn.execute(listing_stmt, part)
            listings += len(listing_params)
            if events := await _count_events(conn, chunk, digest):
                await conn.execute(count_stmt, events)
            counts += len(events)
            done += len(chunk)
            if progress:
                progress(done, total)
    return ImportReport(total, created, total - created, listings, counts)


def _parse(
    name: str, data: bytes, default_currency: str, known_channels: Collection[str] | None
) -> tuple[_Layout, list[_Row]]:
    """Read and validate every row; raise one ConfigError with all problems."""
    problems = _Problems(name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problems.add(line, "", f"not valid UTF-8 (byte {err.start}); save the file as UTF-8")
        raise problems.error() from err
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[_Row] = []
    layout = _Layout(None, {}, None, {}, 0)
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
) -> _Layout:
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
    return _Layout(sku, product, stock, ids, len(header))


def _row(
    line: int, cells: list[str], layout: _Layout, default_currency: str, problems: _Problems
) -> _Row | None:
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
    return _Row(sku, product, stock, ids)


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
    return _components(raw, sku)


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


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _table(model: Any) -> sa.Table:
    table: sa.Table = model.__table__
    return table


def _inline(dialect: Dialect, value: Any, type_: Any) -> sa.ColumnElement[Any]:
    """A constant rendered once into the SQL text instead of a parameter on every row.

    Per-row parameter processing is most of the cost of a large executemany: the same timestamp,
    status or empty JSON on 100k rows need not be processed 100k times.
    """
    if isinstance(type_, sa.JSON):
        value, type_ = json.dumps(value), sa.String()
    sql = sa.literal(value, type_).compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return sa.literal_column(str(sql))


def _statements(
    db: Database, dialect: Dialect, present: set[str], default_currency: str, now: datetime
) -> tuple[Any, Any, Any]:
    """The three statements: product and listing upserts, count-event insert-or-ignore."""
    product, listing, event = _table(Product), _table(Listing), _table(StockEvent)
    # Absent columns get a new product's defaults and stay out of the ON CONFLICT update, so
    # existing products keep their values.
    product_constants: dict[str, Any] = {
        "title": None,
        "currency": default_currency,
        "cost": None,
        "fees": None,
        "min_price": None,
        "max_price": None,
        "tags": [],
        "kit_components": {},
    }
    products = db.insert(product).values(
        {
            col: _inline(dialect, value, product.c[col].type)
            for col, value in {**product_constants, "created_at": now, "updated_at": now}.items()
            if col not in present
        }
    )
    product_stmt = products.on_conflict_do_update(
        index_elements=["sku"],
        set_={col: products.excluded[col] for col in (*sorted(present), "updated_at")},
    )
    listing_constants = {
        "external_ids": {},
        "fulfillment": "merchant",
        "status": "active",
        "discovered_at": now,
        "updated_at": now,
    }
    listings = db.insert(listing).values(
        {
            col: _inline(dialect, value, listing.c[col].type)
            for col, value in listing_constants.items()
        }
    )
    listing_stmt = listings.on_conflict_do_update(
        index_elements=["channel", "sku"],
        set_={
            "external_id": listings.excluded.external_id,
            "updated_at": listings.excluded.updated_at,
        },
    )
    event_constants = {
        "kind": StockEventKind.COUNT.value,
        "channel": None,
        "note": "catalogue import",
        "occurred_at": now,
        "recorded_at": now,
    }
    count_stmt = (
        db.insert(event)
        .values(
            {
                col: _inline(dialect, value, event.c[col].type)
                for col, value in event_constants.items()
            }
        )
        .on_conflict_do_nothing(index_elements=["external_ref"])
    )
    return product_stmt, listing_stmt, count_stmt


async def _existing_currencies(conn: AsyncConnection, skus: Sequence[str]) -> dict[str, str]:
    """SKU -> currency of the products that already exist (so created vs updated is exact)."""
    product = _table(Product)
    result = await conn.execute(
        sa.select(product.c.sku, product.c.currency).where(product.c.sku.in_(skus))
    )
    return {sku: currency for sku, currency in result}


async def _count_events(
    conn: AsyncConnection, chunk: Sequence[_Row], digest: str
) -> list[dict[str, Any]]:
    """Count events for the rows with a stock value not already imported from this same file."""
    refs = {r.sku: f"import:{digest}:{r.sku}" for r in chunk if r.stock is not None}
    if not refs:
        return []
    event = _table(StockEvent)
    done = set(
        (
            await conn.execute(
                sa.select(event.c.external_ref).where(event.c.external_ref.in_(refs.values()))
            )
        ).scalars()
    )
    todo = [r for r in chunk if r.sku in refs and refs[r.sku] not in done]
    if not todo:
        return []
    # On-hand is the ledger sum, read inside the write transaction so the delta is exact.
    on_hand = {
        sku: int(total or 0)
        for sku, total in await conn.execute(
            sa.select(event.c.sku, sa.func.sum(event.c.delta))
            .where(event.c.sku.in_([r.sku for r in todo]))
            .group_by(event.c.sku)
        )
    }
    return [
        {
            "sku": r.sku,
            "delta": (r.stock or 0) - on_hand.get(r.sku, 0),
            "counted": r.stock,
            "external_ref": refs[r.sku],
        }
        for r in todo
    ]
