"""The action log readers: history filters and order, explain grouping, every output format."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from rich.console import Console

from daemon.db.engine import Database
from daemon.db.models import Action, Listing
from daemon.history import (
    HISTORY_FIELDS,
    fetch_explain,
    fetch_history,
    fetch_listed_channels,
    glob_to_like,
    render_explain,
    render_history,
)
from domain.clock import ManualClock

ACTION: sa.Table = Action.__table__  # type: ignore[attr-defined]
LISTING: sa.Table = Listing.__table__  # type: ignore[attr-defined]


def action(at: datetime, **values: Any) -> dict[str, Any]:
    """An action row with plausible defaults; ``values`` override them."""
    row: dict[str, Any] = {
        "pass_id": "pass-1",
        "kind": "price",
        "channel": "amazon-us",
        "sku": "MUG-1",
        "status": "confirmed",
        "old_price": Decimal("19.99"),
        "new_price": Decimal("18.99"),
        "currency": "USD",
        "old_quantity": None,
        "new_quantity": None,
        "strategy": "buy_box",
        "rule": "rule-1",
        "reason": "beat the buy box by 0.01",
        "trace": [],
        "guard_verdicts": [],
        "idempotency_key": uuid.uuid4().hex,
        "attempts": 1,
        "response_code": None,
        "response_message": None,
        "created_at": at,
    }
    row.update(values)
    return row


async def insert(db: Database, *rows: dict[str, Any]) -> None:
    async with db.write() as conn:
        await conn.execute(sa.insert(ACTION), list(rows))


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200), out


def skus(rows: list[dict[str, Any]]) -> list[str]:
    return [r["sku"] for r in rows]


def test_glob_translation_escapes_like_wildcards() -> None:
    """``*``/``?`` become ``%``/``_``; literal ``%``, ``_`` and ``\\`` are escaped."""
    assert glob_to_like("MUG-*") == "MUG-%"
    assert glob_to_like("A?_%\\") == "A_\\_\\%\\\\"


async def test_sku_glob_matches_literal_underscore_percent_and_backslash(
    db: Database, clock: ManualClock
) -> None:
    """``_`` and ``%`` in a glob are plain characters on both SQLite and PostgreSQL."""
    names = ["MUG-1", "MUG-2", "MUG_X", "MUGAX", "100%COTTON", "100XCOTTON", "A\\B", "AXB"]
    await insert(db, *(action(clock.now(), sku=name) for name in names))

    async def find(glob: str) -> set[str]:
        return set(skus(await fetch_history(db, now=clock.now(), sku_glob=glob)))

    assert await find("MUG_*") == {"MUG_X"}
    assert await find("MUG-?") == {"MUG-1", "MUG-2"}
    assert await find("mug-?") == {"MUG-1", "MUG-2"}  # case-insensitive on both backends
    assert await find("100%*") == {"100%COTTON"}
    assert await find("A\\B") == {"A\\B"}
    assert await find("*") == set(names)
    assert await find("MUG-1") == {"MUG-1"}


async def test_history_filters_order_and_limit(db: Database, clock: ManualClock) -> None:
    """Newest first (ties by id), filtered by age, kind and channel, capped by limit."""
    now = clock.now()
    await insert(
        db,
        action(now - timedelta(hours=3), sku="OLD"),
        action(
            now - timedelta(minutes=30),
            sku="STOCK",
            kind="stock",
            old_price=None,
            new_price=None,
            old_quantity=5,
            new_quantity=3,
            channel="shop",
        ),
        action(now - timedelta(minutes=10), sku="TIE-1"),
        action(now - timedelta(minutes=10), sku="TIE-2"),
        action(now - timedelta(minutes=1), sku="NEW", channel="shop"),
    )

    everything = await fetch_history(db, now=now)
    assert skus(everything) == ["NEW", "TIE-2", "TIE-1", "STOCK", "OLD"]
    assert list(everything[0]) == list(HISTORY_FIELDS)
    recent = await fetch_history(db, now=now, since=timedelta(hours=1))
    assert skus(recent) == ["NEW", "TIE-2", "TIE-1", "STOCK"]
    stock = await fetch_history(db, now=now, kind="stock")
    assert skus(stock) == ["STOCK"]
    assert (stock[0]["old"], stock[0]["new"]) == (5, 3)
    assert skus(await fetch_history(db, now=now, kind="price", channel="shop")) == ["NEW"]
    assert skus(await fetch_history(db, now=now, limit=2)) == ["NEW", "TIE-2"]
    first = everything[0]
    assert (first["old"], first["new"]) == (Decimal("19.99"), Decimal("18.99"))
    assert str(first["new"]) == "18.99"  # same digits on SQLite and PostgreSQL
    assert first["time"] == now - timedelta(minutes=1)
    assert first["time"].tzinfo is not None
    with pytest.raises(ValueError, match="kind"):
        await fetch_history(db, now=now, kind="bogus")


async def test_explain_keeps_the_latest_decisions_per_channel_and_kind(
    db: Database, clock: ManualClock
) -> None:
    """At most N per (channel, kind), grouped, newest first, with trace and verdicts."""
    now = clock.now()
    trace = [{"step": "buy_box", "verdict": "undercut", "detail": "buy box 19.00 by 0.01"}]
    verdicts = [{"step": "guard:bounds", "verdict": "ok", "detail": "[9.99, 29.99]"}]
    rows = [
        action(
            now - timedelta(minutes=m), reason=f"price {m}", trace=trace, guard_verdicts=verdicts
        )
        for m in range(1, 6)
    ]
    rows += [
        action(
            now - timedelta(minutes=m),
            kind="stock",
            old_price=None,
            new_price=None,
            old_quantity=m,
            new_quantity=m - 1,
            reason=f"stock {m}",
        )
        for m in (2, 7)
    ]
    rows += [
        action(now - timedelta(minutes=4), channel="shop", reason="shop price", status="blocked")
    ]
    rows += [action(now, sku="OTHER", reason="other sku")]
    await insert(db, *rows)

    decisions = await fetch_explain(db, "MUG-1", limit_per_listing=3)

    assert [(d["channel"], d["kind"], d["reason"]) for d in decisions] == [
        ("amazon-us", "price", "price 1"),
        ("amazon-us", "price", "price 2"),
        ("amazon-us", "price", "price 3"),
        ("amazon-us", "stock", "stock 2"),
        ("amazon-us", "stock", "stock 7"),
        ("shop", "price", "shop price"),
    ]
    assert decisions[0]["trace"] == trace
    assert decisions[0]["guard_verdicts"] == verdicts
    assert decisions[0]["new"] == Decimal("18.99")
    assert decisions[3]["new"] == 1
    only_shop = await fetch_explain(db, "MUG-1", channel="shop")
    assert [d["status"] for d in only_shop] == ["blocked"]
    assert await fetch_explain(db, "NOPE") == []


async def test_history_renders_as_table_json_and_csv(db: Database, clock: ManualClock) -> None:
    """Every format prints; JSON and CSV parse back with exact decimals and ISO times."""
    now = clock.now()
    await insert(
        db,
        action(
            now,
            sku="[bold]MUG[/bold]",
            status="failed",
            response_code="400",
            response_message="InvalidPrice [too low]",
            attempts=2,
        ),
        action(
            now - timedelta(minutes=1),
            kind="stock",
            old_price=None,
            new_price=None,
            old_quantity=None,
            new_quantity=4,
            strategy=None,
            rule=None,
        ),
    )
    rows = await fetch_history(db, now=now)

    con, out = console()
    render_history(rows, con, "table")
    table = out.getvalue()
    assert "[bold]MUG[/bold]" in table  # printed literally, not as markup
    assert "19.99 → 18.99 USD" in table
    assert "— → 4" in table
    assert "400: InvalidPrice [too low]" in table
    assert "failed" in table

    con, out = console()
    render_history(rows, con, "json")
    parsed = json.loads(out.getvalue())
    assert parsed[0]["new"] == "18.99"
    assert parsed[0]["old"] == "19.99"
    assert datetime.fromisoformat(parsed[0]["time"]) == now
    assert parsed[1]["new"] == 4
    assert parsed[1]["strategy"] is None

    con, out = console()
    render_history(rows, con, "csv")
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(records[0]) == HISTORY_FIELDS
    assert records[0]["sku"] == "[bold]MUG[/bold]"
    assert records[0]["new"] == "18.99"
    assert records[1]["old"] == ""
    assert records[1]["new"] == "4"
    assert datetime.fromisoformat(records[1]["time"]) == now - timedelta(minutes=1)

    con, out = console()
    render_history([], con, "table")
    assert "no actions match" in out.getvalue()


async def test_explain_renders_text_and_json(db: Database, clock: ManualClock) -> None:
    """Text shows a header, the reason and one line per trace step and guard verdict."""
    await insert(
        db,
        action(
            clock.now(),
            status="blocked",
            reason="step over max_step_pct",
            trace=[
                {"step": "buy_box", "verdict": "undercut", "detail": "19.00 - 0.01"},
                {"step": "rounding", "verdict": "ok", "detail": ""},
            ],
            guard_verdicts=[{"step": "guard:step", "verdict": "blocked", "detail": "12% > 10%"}],
        ),
    )
    decisions = await fetch_explain(db, "MUG-1")

    con, out = console()
    render_explain(decisions, con, "text")
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    assert lines[0] == "amazon-us · price · 2026-03-02 12:00:00Z · blocked · 19.99 → 18.99 USD"
    assert "  reason: step over max_step_pct" in lines
    assert "    - buy_box: undercut — 19.00 - 0.01" in lines
    assert "    - rounding: ok" in lines
    assert "    - guard:step: blocked — 12% > 10%" in lines
    assert lines.index("  trace:") < lines.index("  guards:")

    con, out = console()
    render_explain(decisions, con, "json")
    (parsed,) = json.loads(out.getvalue())
    assert parsed["guard_verdicts"][0]["verdict"] == "blocked"
    assert parsed["old"] == "19.99"
    assert parsed["sent_at"] is None


async def test_explain_without_decisions_says_why(db: Database, clock: ManualClock) -> None:
    """No decision: say so, and say whether the SKU is listed but not yet repriced."""
    async with db.write() as conn:
        await conn.execute(
            sa.insert(LISTING),
            [
                {
                    "channel": "shop",
                    "sku": "LISTED",
                    "external_ids": {},
                    "fulfillment": "merchant",
                    "currency": "USD",
                    "status": "active",
                    "discovered_at": clock.now(),
                    "updated_at": clock.now(),
                }
            ],
        )
    for sku, expected in (
        ("LISTED", "listed on shop but has not been repriced yet"),
        ("GHOST", "has no listing"),
    ):
        listed_on = await fetch_listed_channels(db, sku)
        con, out = console()
        render_explain(await fetch_explain(db, sku), con, "text", sku=sku, listed_on=listed_on)
        assert f"no decisions recorded for SKU {sku}" in out.getvalue()
        assert expected in out.getvalue()
    con, out = console()
    render_explain([], con)
    assert "no decisions recorded" in out.getvalue()
    con, out = console()
    render_explain([], con, "json")
    assert json.loads(out.getvalue()) == []
