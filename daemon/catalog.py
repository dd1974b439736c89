"""Import the seller's catalogue from CSV: one all-or-nothing transaction of set-based writes.

The file format and its validation live in ``daemon.catalog_csv``; this module writes what it
parsed: products, channel listing ids and on-hand stock counts.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.catalog_csv import PRODUCT_COLUMNS, CatalogRow, read_catalog
from daemon.db.engine import Database
from daemon.db.models import Listing, Product, StockEvent, StockEventKind
from domain.clock import Clock

CHUNK_ROWS = 2_000
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
    # Reading and checking 100k rows is about a second of CPU: off the event loop, so a
    # running daemon stays live.
    layout, rows, data = await asyncio.to_thread(
        read_catalog, path, default_currency, known_channels
    )
    digest = hashlib.sha256(data).hexdigest()[:16]
    now = clock.now()
    total, done, created, listings, counts = len(rows), 0, 0, 0, 0
    if progress:
        progress(0, total)
    async with db.write() as conn:
        # Counts are computed from on-hand: no ledger write (order, cancel, another import) may
        # land between reading on-hand and inserting the count (a no-op on SQLite, whose write
        # transactions are already exclusive).
        await db.lock_table_for_writes(conn, _table(StockEvent))
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
        "lead_time_days": None,
        "moq": None,
        "case_pack": None,
        "supplier": None,
        "unit_volume_cuft": None,
        "size_tier": None,
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
    conn: AsyncConnection, chunk: Sequence[CatalogRow], digest: str
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
