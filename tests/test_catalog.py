"""The CSV catalogue import: exact values, idempotent stock counts, all problems at once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import daemon.catalog as catalog
from daemon.catalog import ImportReport, import_catalog
from daemon.db.engine import Database
from daemon.db.models import Listing, Product, StockEvent
from domain.clock import ManualClock
from domain.errors import ConfigError

PRODUCT: sa.Table = Product.__table__  # type: ignore[attr-defined]
LISTING: sa.Table = Listing.__table__  # type: ignore[attr-defined]
EVENT: sa.Table = StockEvent.__table__  # type: ignore[attr-defined]

GOOD = """\
sku,title,currency,cost,fees,min_price,max_price,stock,tags,components,id:amazon-us,id:shop,price:amazon-us
MUG-1,Blue mug,,4.10,1.25,9.99,19.99,12,kitchen|blue,,B000MUG001,gid://shopify/ProductVariant/1,14.50
MUG-2,"Red mug, large",EUR,5.005,0,10.00,20.00,0,,,B000MUG002,,
KIT-1,Mug pair,usd,,,,,,gift,MUG-1:1|MUG-2:1,,gid://shopify/ProductVariant/3,
"""


def write(tmp_path: Path, text: str, name: str = "catalog.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def rows(db: Database, table: sa.Table, *order: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        result = await conn.execute(sa.select(table).order_by(*(table.c[o] for o in order)))
        return [dict(r) for r in result.mappings()]


async def on_hand(db: Database, sku: str) -> int:
    async with db.read() as conn:
        total = await conn.scalar(sa.select(sa.func.sum(EVENT.c.delta)).where(EVENT.c.sku == sku))
    return int(total or 0)


async def test_good_import_creates_products_listings_and_counts(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """Products, listings and count events are written with exact Decimals and aware times."""
    report = await import_catalog(db, write(tmp_path, GOOD), clock=clock)

    assert report == ImportReport(
        rows=3, products_created=3, products_updated=0, listings=4, stock_counts=2
    )
    products = {p["sku"]: p for p in await rows(db, PRODUCT, "sku")}
    mug = products["MUG-1"]
    assert (mug["title"], mug["currency"]) == ("Blue mug", "USD")
    assert (mug["cost"], mug["fees"]) == (Decimal("4.10"), Decimal("1.25"))
    assert (mug["min_price"], mug["max_price"]) == (Decimal("9.99"), Decimal("19.99"))
    assert all(isinstance(mug[k], Decimal) for k in ("cost", "fees", "min_price", "max_price"))
    assert mug["tags"] == ["kitchen", "blue"]
    assert mug["kit_components"] == {}
    assert mug["created_at"] == mug["updated_at"] == clock.now()
    assert products["MUG-2"]["title"] == "Red mug, large"
    assert products["MUG-2"]["currency"] == "EUR"
    assert products["MUG-2"]["cost"] == Decimal("5.005")
    assert products["MUG-2"]["fees"] == Decimal("0")
    kit = products["KIT-1"]
    assert kit["currency"] == "USD"
    assert kit["cost"] is None
    assert kit["min_price"] is None
    assert kit["kit_components"] == {"MUG-1": 1, "MUG-2": 1}
    assert kit["tags"] == ["gift"]

    listings = {(r["channel"], r["sku"]): r for r in await rows(db, LISTING, "channel", "sku")}
    assert set(listings) == {
        ("amazon-us", "MUG-1"),
        ("amazon-us", "MUG-2"),
        ("shop", "MUG-1"),
        ("shop", "KIT-1"),
    }
    amazon = listings[("amazon-us", "MUG-2")]
    assert amazon["external_id"] == "B000MUG002"
    assert amazon["currency"] == "EUR"
    assert (amazon["fulfillment"], amazon["status"], amazon["external_ids"]) == (
        "merchant",
        "active",
        {},
    )
    assert amazon["price"] is None
    assert amazon["quantity"] is None
    assert amazon["discovered_at"] == amazon["updated_at"] == clock.now()
    assert listings[("shop", "MUG-1")]["external_id"] == "gid://shopify/ProductVariant/1"

    events = await rows(db, EVENT, "sku")
    assert [(e["sku"], e["kind"], e["delta"], e["counted"]) for e in events] == [
        ("MUG-1", "count", 12, 12),
        ("MUG-2", "count", 0, 0),
    ]
    assert all(
        e["external_ref"].startswith("import:") and e["external_ref"].endswith(e["sku"])
        for e in events
    )
    assert all(e["occurred_at"] == e["recorded_at"] == clock.now() for e in events)


async def test_reimport_of_the_same_file_changes_no_stock(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """The same bytes again: products reported updated, no new count event, on-hand kept."""
    path = write(tmp_path, GOOD)
    await import_catalog(db, path, clock=clock)
    # An order after the first import must survive a re-import of the same file.
    await add_event(db, clock, "MUG-1", -2, "order:1")
    clock.advance(3600)

    report = await import_catalog(db, path, clock=clock)

    assert report == ImportReport(
        rows=3, products_created=0, products_updated=3, listings=4, stock_counts=0
    )
    assert len(await rows(db, EVENT, "id")) == 3
    assert await on_hand(db, "MUG-1") == 10
    assert len(await rows(db, PRODUCT, "sku")) == 3
    assert len(await rows(db, LISTING, "id")) == 4
    products = {p["sku"]: p for p in await rows(db, PRODUCT, "sku")}
    assert products["MUG-1"]["updated_at"] == clock.now()
    assert products["MUG-1"]["created_at"] < clock.now()


async def add_event(db: Database, clock: ManualClock, sku: str, delta: int, ref: str) -> None:
    async with db.write() as conn:
        await conn.execute(
            sa.insert(EVENT),
            [
                {
                    "sku": sku,
                    "kind": "order",
                    "delta": delta,
                    "external_ref": ref,
                    "occurred_at": clock.now(),
                    "recorded_at": clock.now(),
                }
            ],
        )


async def test_changed_stock_counts_bring_on_hand_to_the_new_value(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """A new count moves on-hand to exactly the counted number, whatever happened in between."""
    await import_catalog(
        db, write(tmp_path, "sku,stock\nA,10\nB,5\nC,\n", "first.csv"), clock=clock
    )
    await add_event(db, clock, "A", -3, "order:1")
    await add_event(db, clock, "C", 7, "receipt:1")
    clock.advance(60)

    report = await import_catalog(
        db, write(tmp_path, "sku,stock\nA,4\nB,\nC,2\n", "second.csv"), clock=clock
    )

    assert report.stock_counts == 2
    assert (await on_hand(db, "A"), await on_hand(db, "B"), await on_hand(db, "C")) == (4, 5, 2)
    counts = [e for e in await rows(db, EVENT, "id") if e["recorded_at"] == clock.now()]
    assert [(e["sku"], e["delta"], e["counted"]) for e in counts] == [("A", -3, 4), ("C", -5, 2)]


BAD = """\
sku,title,cost,min_price,max_price,stock,colour,components,currency,id:amazon-us,id:nowhere
OK-1,fine,1.00,2.00,3.00,1,,,USD,B01,
BAD-1,bad decimal,"12,50",2.00,3.00,1,,,USD,,
BAD-2,min above max,1,30.00,20.00,1,,,USD,,
OK-1,duplicate,1,2,3,1,,,USD,,
BAD-3,"negative stock
on two lines",1,2,3,-4,,,USD,,
BAD-4,bad kit,1,2,3,1,,A:0|B,US,,
,no sku,1,2,3,1,,,USD,,
BAD-5,zero price and too precise,1.00001,0,3,x,,BAD-5:1,USD,,
BAD-6,short row
"""


async def test_bad_file_reports_every_problem_and_writes_nothing(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """All problems come back at once, each with its line and column; no table is touched."""
    path = write(tmp_path, BAD)
    with pytest.raises(ConfigError) as caught:
        await import_catalog(db, path, clock=clock, known_channels={"amazon-us", "shop"})

    found = [(p.line, p.key) for p in caught.value.problems]
    assert found == [
        (1, "colour"),
        (1, "id:nowhere"),
        (3, "cost"),
        (4, "min_price"),
        (5, "sku"),
        (6, "stock"),  # the record on lines 6-7 starts on line 6
        (8, "components"),
        (8, "currency"),
        (9, "sku"),
        (10, "cost"),
        (10, "min_price"),
        (10, "components"),
        (10, "stock"),
        (11, ""),
    ]
    assert all(p.file == str(path) for p in caught.value.problems)
    messages = {(p.line, p.key): p.message for p in caught.value.problems}
    assert "unknown column" in messages[(1, "colour")]
    assert "unknown channel 'nowhere'" in messages[(1, "id:nowhere")]
    assert "'12,50' is not a decimal" in messages[(3, "cost")]
    assert "above max_price" in messages[(4, "min_price")]
    assert "first on line 2" in messages[(5, "sku")]
    assert "at least 0" in messages[(6, "stock")]
    assert "more than 4 decimal places" in messages[(10, "cost")]
    assert "greater than 0" in messages[(10, "min_price")]
    assert "cannot contain itself" in messages[(10, "components")]
    assert f"{path}:3: cost:" in str(caught.value)
    for table in (PRODUCT, LISTING, EVENT):
        assert await rows(db, table, "id") == []


async def test_many_problems_are_all_kept_but_the_message_is_capped(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """60 bad rows: 60 problems, and the message shows 50 and says how many more."""
    body = "".join(f"S{i},-1\n" for i in range(60))
    with pytest.raises(ConfigError) as caught:
        await import_catalog(db, write(tmp_path, "sku,stock\n" + body), clock=clock)
    assert len(caught.value.problems) == 60
    assert [p.line for p in caught.value.problems] == list(range(2, 62))
    message = caught.value.args[0]
    assert "60 problem(s)" in message
    assert "… and 10 more" in message
    assert ":52: stock" not in message
    assert ":51: stock" in message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty file"),
        (b"title\nx\n", "'sku' is missing"),
        (b"sku,stock\nA,1\nB\xff,2\n", "not valid UTF-8"),
        (b"sku,sku\nA,B\n", "duplicate column"),
        (b"sku,price:\nA,1\n", "needs a channel name"),
    ],
)
async def test_malformed_files_are_refused(
    db: Database, clock: ManualClock, tmp_path: Path, content: bytes, expected: str
) -> None:
    """Header and encoding problems are reported like any other."""
    path = tmp_path / "catalog.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        await import_catalog(db, path, clock=clock)
    assert expected in str(caught.value)
    if b"\xff" in content:
        assert caught.value.problems[0].line == 3
    assert await rows(db, PRODUCT, "id") == []


async def test_absent_column_is_untouched_and_blank_cell_clears(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """Only columns in the file change; a blank cell in one of them clears that value."""
    await import_catalog(db, write(tmp_path, GOOD, "full.csv"), clock=clock)
    update = "sku,min_price,tags,id:shop\nMUG-1,,,\nMUG-2,5.50,sale,gid://2\nNEW-1,1,,\n"

    report = await import_catalog(db, write(tmp_path, update, "update.csv"), clock=clock)

    assert (report.products_created, report.products_updated) == (1, 2)
    assert report.stock_counts == 0
    assert report.listings == 1
    products = {p["sku"]: p for p in await rows(db, PRODUCT, "sku")}
    mug1, mug2 = products["MUG-1"], products["MUG-2"]
    assert mug1["min_price"] is None
    assert mug1["tags"] == []
    assert (mug1["max_price"], mug1["cost"], mug1["title"]) == (
        Decimal("19.99"),
        Decimal("4.10"),
        "Blue mug",
    )
    assert mug2["min_price"] == Decimal("5.50")
    assert mug2["tags"] == ["sale"]
    assert mug2["currency"] == "EUR"
    assert mug2["title"] == "Red mug, large"
    new = products["NEW-1"]
    assert (new["currency"], new["title"], new["cost"], new["kit_components"]) == (
        "USD",
        None,
        None,
        {},
    )
    listings = {(r["channel"], r["sku"]): r for r in await rows(db, LISTING, "id")}
    # A blank id cell leaves the listing as it was; a value on a new listing uses the product's
    # currency even when the file has no currency column.
    assert listings[("shop", "MUG-1")]["external_id"] == "gid://shopify/ProductVariant/1"
    assert listings[("shop", "MUG-2")]["external_id"] == "gid://2"
    assert listings[("shop", "MUG-2")]["currency"] == "EUR"
    assert len(listings) == 5
    assert await on_hand(db, "MUG-1") == 12


async def test_listing_external_id_is_updated_in_place(
    db: Database, clock: ManualClock, tmp_path: Path
) -> None:
    """A new id for an existing (channel, sku) updates that row; no duplicate listing."""
    await import_catalog(db, write(tmp_path, "sku,id:shop\nA,old\n", "a.csv"), clock=clock)
    clock.advance(10)
    await import_catalog(db, write(tmp_path, "sku,id:shop\nA,new\n", "b.csv"), clock=clock)
    (listing,) = await rows(db, LISTING, "id")
    assert listing["external_id"] == "new"
    assert listing["updated_at"] == clock.now()
    assert listing["discovered_at"] < clock.now()


async def test_progress_reaches_the_total_across_chunks(
    db: Database, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The callback sees (done, total) after every chunk and ends at (total, total)."""
    monkeypatch.setattr(catalog, "CHUNK_ROWS", 2)
    body = "".join(f"S{i},{i},ID{i}\n" for i in range(5))
    calls: list[tuple[int, int]] = []
    report = await import_catalog(
        db,
        write(tmp_path, "sku,stock,id:shop\n" + body),
        clock=clock,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]
    assert report == ImportReport(5, 5, 0, 5, 5)  # a count of 0 is still a count
