"""The catalogue's supply and storage columns (inventory pass): parsed, defaulted, validated
with file, line and column."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from daemon.catalog import import_catalog
from daemon.db.engine import Database
from daemon.db.models import Product
from domain.clock import ManualClock
from domain.errors import ConfigError

PRODUCT: sa.Table = Product.__table__  # type: ignore[attr-defined]
HEADER = "sku,lead_time_days,moq,case_pack,supplier,unit_volume_cuft,size_tier\n"


async def test_supply_columns_are_stored_and_blank_means_default(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """Values land on the product; blank cells stay NULL (the pass applies the defaults)."""
    path = tmp_path / "c.csv"
    path.write_text(HEADER + "A,21,48,12,Acme Ltd,0.125,Oversize\nB,,,,,,\n", encoding="utf-8")
    await import_catalog(db, path, clock=clock)
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(PRODUCT).order_by(PRODUCT.c.sku))).all()
    assert [
        (r.lead_time_days, r.moq, r.case_pack, r.supplier, r.unit_volume_cuft, r.size_tier)
        for r in rows
    ] == [
        (21, 48, 12, "Acme Ltd", Decimal("0.125"), "oversize"),
        (None, None, None, None, None, None),
    ]


async def test_bad_supply_cells_name_file_line_and_column(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """Every bad supply cell is reported at once, with its line and column."""
    path = tmp_path / "c.csv"
    path.write_text(
        HEADER + "A,-1,0,x,,0,huge\n" + "B,400,1,1," + "s" * 101 + ",1.23456,standard\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        await import_catalog(db, path, clock=clock)
    found = {(p.line, p.key): p.message for p in caught.value.problems}
    assert list(found) == [
        (2, "lead_time_days"),
        (2, "moq"),
        (2, "case_pack"),
        (2, "unit_volume_cuft"),
        (2, "size_tier"),
        (3, "lead_time_days"),
        (3, "supplier"),
        (3, "unit_volume_cuft"),
    ]
    assert "at least 0" in found[(2, "lead_time_days")]
    assert "at least 1" in found[(2, "moq")]
    assert "'x' is not a whole number" in found[(2, "case_pack")]
    assert "greater than 0" in found[(2, "unit_volume_cuft")]
    assert "not a size tier" in found[(2, "size_tier")]
    assert "at most 365" in found[(3, "lead_time_days")]
    assert "longer than 100" in found[(3, "supplier")]
    assert "more than 4 decimal places" in found[(3, "unit_volume_cuft")]
    assert f"{path}:2: moq:" in str(caught.value)
