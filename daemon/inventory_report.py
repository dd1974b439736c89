"""``repricerd inventory restock|health``: the inventory pass's stored plans as a table, CSV or
JSON. Read-only: nothing is recomputed here (``repricerd inventory refresh`` runs the pass)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Final, Literal

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from rich.text import Text

from daemon.db.engine import Database
from daemon.db.models import InventoryHealthRow, InventoryRun, RestockRow
from daemon.history import to_json

RUN = InventoryRun.__table__  # type: ignore[attr-defined]
RESTOCK = RestockRow.__table__  # type: ignore[attr-defined]
HEALTH = InventoryHealthRow.__table__  # type: ignore[attr-defined]
Format = Literal["table", "csv", "json"]
NEVER_RUN: Final = (
    "the inventory pass has not run yet: run `repricerd inventory refresh`, or POST /sync "
    '{"pass": "inventory"} to the running daemon (it runs every schedule.inventory, 1d)'
)
RESTOCK_FIELDS: Final = (
    "sku",
    "supplier",
    "on_hand",
    "inbound",
    "daily_demand",
    "days_of_supply",
    "reorder_point",
    "order_quantity",
    "order_by",
    "order_value",
)
HEALTH_FIELDS: Final = (
    "sku",
    "pool",
    "on_hand",
    "age_0_90",
    "age_91_180",
    "age_181_270",
    "age_271_365",
    "age_365_plus",
    "excess_units",
    "units_sold_90d",
    "sell_through",
    "stranded_units",
    "storage_fee_3m",
)
HEADINGS: Final = {
    "on_hand": "on hand",
    "daily_demand": "demand/day",
    "days_of_supply": "days of supply",
    "reorder_point": "reorder point",
    "order_quantity": "order qty",
    "order_by": "order by",
    "order_value": "value",
    "age_0_90": "0-90",
    "age_91_180": "91-180",
    "age_181_270": "181-270",
    "age_271_365": "271-365",
    "age_365_plus": "365+",
    "excess_units": "excess",
    "units_sold_90d": "sold 90d",
    "sell_through": "sell-through",
    "stranded_units": "stranded",
    "storage_fee_3m": "fees 3 mo",
}


async def last_run(db: Database) -> datetime | None:
    """When the inventory pass last completed (None: never)."""
    async with db.read() as conn:
        value: datetime | None = (await conn.execute(sa.select(RUN.c.finished_at))).scalar()
    return value


async def fetch_restock(db: Database, supplier: str | None = None) -> list[dict[str, Any]]:
    """The SKUs to order (order quantity > 0), soonest order-by date first."""
    query = sa.select(RESTOCK).where(RESTOCK.c.order_quantity > 0)
    if supplier is not None:
        query = query.where(RESTOCK.c.supplier == supplier)
    async with db.read() as conn:
        rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    rows.sort(key=lambda r: (r["order_by"] or date.max, r["sku"]))
    for row in rows:
        row["daily_demand"] = Decimal(repr(row["daily_demand"])).quantize(Decimal("0.01"))
        if row["days_of_supply"] is not None:
            row["days_of_supply"] = row["days_of_supply"].quantize(Decimal("0.1"))
    return rows


async def fetch_health(db: Database) -> list[dict[str, Any]]:
    """Health per SKU and pool, by SKU then pool."""
    async with db.read() as conn:
        result = await conn.execute(sa.select(HEALTH).order_by(HEALTH.c.sku, HEALTH.c.pool))
        return [dict(r) for r in result.mappings()]


def _cell(field: str, value: Any) -> str:
    """One value as text: pools as ``pool:units``, blank for None."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return " ".join(f"{k}:{v}" for k, v in sorted(value.items()))
    return str(value)


def render(
    rows: Sequence[Mapping[str, Any]],
    fields: Sequence[str],
    console: Console,
    fmt: Format,
    *,
    empty: str,
) -> None:
    """Print rows as a table, CSV (one header row) or JSON (an array of every stored field)."""
    if fmt == "json":
        out = [{k: v for k, v in row.items() if k != "computed_at"} for row in rows]
        console.out(to_json(out), highlight=False)
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(fields)
        writer.writerows([[_cell(f, _value(row, f)) for f in fields] for row in rows])
        console.out(buffer.getvalue(), end="", highlight=False)
        return
    if not rows:
        console.print(empty, style="dim")
        return
    table = Table(header_style="bold")
    for f in fields:
        table.add_column(HEADINGS.get(f, f), no_wrap=f != "supplier")
    for row in rows:
        table.add_row(*(Text(_cell(f, _value(row, f))) for f in fields))
    console.print(table)


def _value(row: Mapping[str, Any], field: str) -> Any:
    """A field of a row; on hand of a restock row is shown by pool."""
    if field == "on_hand" and "on_hand_pools" in row:
        return row["on_hand_pools"] or row["on_hand"]
    return row.get(field)
