"""Read the action log: ``repricerd history`` (what was done) and ``repricerd explain`` (why).

Both are plain queries on ``action``, the audit log and outbox: every intended write, held
decision and guard refusal is a row there with its reason, trace and guard verdicts.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from rich.text import Text

from daemon.db.engine import Database
from daemon.db.models import Action, ActionKind, Listing
from daemon.decision_inputs import Rederiver, steps_json, trace_of
from daemon.snapshots import LIKE_ESCAPE, glob_to_like

# The columns of ``history`` output, in order (JSON keys, CSV header).
HISTORY_FIELDS = (
    "id",
    "time",
    "channel",
    "sku",
    "kind",
    "status",
    "old",
    "new",
    "currency",
    "strategy",
    "rule",
    "reason",
    "response_code",
    "response_message",
    "attempts",
    "pass_id",
)
EXPLAIN_FIELDS = (
    *HISTORY_FIELDS,
    "trace",
    "guard_verdicts",
    "marketplace_ref",
    "sent_at",
    "completed_at",
)
CENT = Decimal("0.01")
SHORT_COLUMNS = frozenset({"time", "kind", "status", "old → new", "attempts"})
# Narrower consoles get one record per action instead of the eleven-column table.
WIDE_TABLE = 120
VERDICT_STYLES = MappingProxyType(
    {
        "ok": "green",
        "pass": "green",
        "send": "green",
        "hold": "dim",
        "clamped": "yellow",
        "blocked": "red",
        "fail": "red",
        "failed": "red",
    }
)
STATUS_STYLES = MappingProxyType(
    {
        "confirmed": "green",
        "sent": "cyan",
        "planned": "cyan",
        "failed": "bold red",
        "blocked": "yellow",
        "held": "dim",
        "superseded": "dim",
    }
)


def _action() -> sa.Table:
    table: sa.Table = Action.__table__  # type: ignore[attr-defined]
    return table


def _listing() -> sa.Table:
    table: sa.Table = Listing.__table__  # type: ignore[attr-defined]
    return table


async def fetch_history(
    db: Database,
    *,
    now: datetime,
    sku_glob: str | None = None,
    since: timedelta | None = None,
    kind: str | None = None,
    channel: str | None = None,
    limit: int = 200,
    status: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    offset: int = 0,
    pass_id: str | None = None,
    action_id: int | None = None,
) -> list[dict[str, Any]]:
    """Return the newest actions first, filtered by SKU glob, age (or a ``start``..``end``
    range), kind, channel, status, pass and id; ``offset`` skips that many (paging)."""
    if kind is not None and kind not in {k.value for k in ActionKind}:
        raise ValueError(f"kind must be one of {', '.join(k.value for k in ActionKind)}")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    action = _action()
    stmt = sa.select(action)
    if sku_glob:
        # Case-insensitive on both backends (SQLite's LIKE already is, PostgreSQL's is not).
        stmt = stmt.where(action.c.sku.ilike(glob_to_like(sku_glob), escape=LIKE_ESCAPE))
    if since is not None:
        stmt = stmt.where(action.c.created_at >= now - since)
    if kind is not None:
        stmt = stmt.where(action.c.kind == kind)
    if channel is not None:
        stmt = stmt.where(action.c.channel == channel)
    if status is not None:
        stmt = stmt.where(action.c.status == status)
    if pass_id is not None:
        stmt = stmt.where(action.c.pass_id == pass_id)
    if action_id is not None:
        stmt = stmt.where(action.c.id == action_id)
    if start is not None:
        stmt = stmt.where(action.c.created_at >= start)
    if end is not None:
        stmt = stmt.where(action.c.created_at < end)
    stmt = stmt.order_by(action.c.created_at.desc(), action.c.id.desc()).limit(limit)
    if offset:
        stmt = stmt.offset(offset)
    async with db.read() as conn:
        result = await conn.execute(stmt)
        return [_record(row, HISTORY_FIELDS) for row in result.mappings()]


async def fetch_explain(
    db: Database, sku: str, *, channel: str | None = None, limit_per_listing: int = 3
) -> list[dict[str, Any]]:
    """Return the latest decisions for one SKU: ``limit_per_listing`` per (channel, kind)."""
    if limit_per_listing < 1:
        raise ValueError("limit_per_listing must be at least 1")
    action = _action()
    newest_first = (action.c.created_at.desc(), action.c.id.desc())
    rank = sa.func.row_number().over(
        partition_by=(action.c.channel, action.c.kind), order_by=newest_first
    )
    inner = sa.select(action, rank.label("rank")).where(action.c.sku == sku)
    if channel is not None:
        inner = inner.where(action.c.channel == channel)
    ranked = inner.subquery()
    stmt = (
        sa.select(ranked)
        .where(ranked.c.rank <= limit_per_listing)
        .order_by(ranked.c.channel, ranked.c.kind, ranked.c.created_at.desc(), ranked.c.id.desc())
    )
    async with db.read() as conn:
        rows = list((await conn.execute(stmt)).mappings())
        rederiver = await Rederiver.load(conn, (row["config"] for row in rows))
    return [_explained(row, rederiver) for row in rows]


def _explained(row: sa.RowMapping, rederiver: Rederiver) -> dict[str, Any]:
    """An explain record; a decision stored as its inputs gets its trace and guard verdicts
    re-derived (the pure strategy and guards re-run on them: the same steps the pass saw).
    Older rows kept theirs."""
    record = _record(row, EXPLAIN_FIELDS)
    outcome = rederiver.outcome(row)
    if outcome is not None:
        record["trace"] = trace_of(outcome)
        record["guard_verdicts"] = steps_json(outcome.guards.steps)
    return record


async def fetch_listed_channels(db: Database, sku: str, *, channel: str | None = None) -> list[str]:
    """Return the channels the SKU has a listing on (to explain an empty decision log)."""
    listing = _listing()
    stmt = sa.select(listing.c.channel).where(listing.c.sku == sku).order_by(listing.c.channel)
    if channel is not None:
        stmt = stmt.where(listing.c.channel == channel)
    async with db.read() as conn:
        return list((await conn.execute(stmt)).scalars())


def _record(row: sa.RowMapping, fields: Sequence[str]) -> dict[str, Any]:
    """One action row as a flat dict: old/new are prices or quantities depending on kind."""
    is_price = row["kind"] == ActionKind.PRICE
    values = {
        **row,
        "time": row["created_at"],
        "old": _tidy(row["old_price"]) if is_price else row["old_quantity"],
        "new": _tidy(row["new_price"]) if is_price else row["new_quantity"],
    }
    return {field: values.get(field) for field in fields}


def _tidy(value: Decimal | None) -> Decimal | None:
    """Drop the zeros PostgreSQL's NUMERIC(18, 4) pads with (19.9900 -> 19.99), as SQLite shows.

    Only zeros beyond the cents go, so the value is unchanged and both backends print the same.
    """
    if value is None or value != value.quantize(CENT):
        return value
    exponent = value.as_tuple().exponent
    return value.quantize(CENT) if isinstance(exponent, int) and exponent < -2 else value


def render_history(
    rows: Sequence[Mapping[str, Any]],
    console: Console,
    fmt: Literal["table", "json", "csv"] = "table",
) -> None:
    """Print the action log as a table, JSON (an array) or CSV."""
    if fmt == "json":
        console.out(to_json(rows), highlight=False)
    elif fmt == "csv":
        console.out(to_csv(rows), end="", highlight=False)
    elif fmt == "table":
        if not rows:
            console.print("no actions match", style="dim")
            return
        if console.width < WIDE_TABLE:
            _render_records(rows, console)
            return
        table = Table(show_lines=False, header_style="bold")
        for heading in (
            "time",
            "channel",
            "sku",
            "kind",
            "status",
            "old → new",
            "strategy",
            "rule",
            "reason",
            "response",
            "attempts",
        ):
            # Short fixed-shape columns stay on one line; free text wraps.
            table.add_column(heading, overflow="fold", no_wrap=heading in SHORT_COLUMNS)
        for row in rows:
            # Text, not markup strings: a SKU or a marketplace message may contain "[...]".
            table.add_row(
                Text(_time(row.get("time"))),
                Text(str(row.get("channel") or "")),
                Text(str(row.get("sku") or "")),
                Text(str(row.get("kind") or "")),
                _status(row.get("status")),
                Text(_change(row)),
                Text(row.get("strategy") or ""),
                Text(row.get("rule") or ""),
                Text(row.get("reason") or ""),
                Text(_response(row)),
                Text(str(row.get("attempts") or 0), justify="right"),
            )
        console.print(table)
    else:
        raise ValueError(f"unknown format {fmt!r} (table, json or csv)")


def _render_records(rows: Sequence[Mapping[str, Any]], console: Console) -> None:
    """The history for a narrow terminal: eleven columns do not fit in 80 (rich would shrink
    channel, SKU and reason to nothing), so each action is a line of its fixed fields followed
    by its strategy, rule, reason, response and attempts, wrapped and indented."""
    for row in rows:
        head = Text(f"{_time(row.get('time'))}  ")
        head.append(str(row.get("channel") or ""), style="bold")
        head.append("  ")
        head.append(str(row.get("sku") or ""), style="bold")
        head.append(f"  {row.get('kind') or ''}  ")
        head.append_text(_status(row.get("status")))
        head.append(f"  {_change(row)}")
        console.print(head, overflow="fold")
        chosen = " / ".join(str(part) for part in (row.get("strategy"), row.get("rule")) if part)
        details = [
            chosen,
            row.get("reason") or "",
            _response(row),
            f"attempts {row.get('attempts') or 0}",
        ]
        console.print(Text("    " + " · ".join(d for d in details if d)), overflow="fold")


def render_explain(
    rows: Sequence[Mapping[str, Any]],
    console: Console,
    fmt: Literal["text", "json"] = "text",
    *,
    sku: str | None = None,
    listed_on: Sequence[str] | None = None,
) -> None:
    """Print each decision with its reason, trace steps and guard verdicts.

    ``sku`` and ``listed_on`` (from ``fetch_listed_channels``) only word the message shown when
    there is no decision: a listed SKU "has not been repriced yet".
    """
    if fmt == "json":
        console.out(to_json(rows), highlight=False)
        return
    if fmt != "text":
        raise ValueError(f"unknown format {fmt!r} (text or json)")
    if not rows:
        name = f"SKU {sku}" if sku else "this SKU"
        message = f"no decisions recorded for {name}"
        if listed_on:
            message += (
                f": it is listed on {', '.join(listed_on)} but has not been repriced "
                "yet (it will be at the next pass)"
            )
        elif sku is not None and listed_on is not None:
            message += ": it has no listing (check the SKU, or import/discover it first)"
        console.print(Text(message))
        return
    for index, row in enumerate(rows):
        if index:
            console.print()
        header = Text()
        header.append(
            f"{row.get('channel')} · {row.get('kind')} · {_time(row.get('time'))} · ", style="bold"
        )
        header.append_text(_status(row.get("status")))
        header.append(f" · {_change(row)}", style="bold")
        console.print(header)
        details = [
            ("rule", row.get("rule")),
            ("strategy", row.get("strategy")),
            ("attempts", row.get("attempts") or None),
        ]
        if any(value is not None for _, value in details):
            console.print(
                Text(
                    "  "
                    + "   ".join(f"{key}: {value}" for key, value in details if value is not None)
                )
            )
        console.print(Text(f"  reason: {row.get('reason') or '(none recorded)'}"))
        for title, key in (("trace", "trace"), ("guards", "guard_verdicts")):
            steps = row.get(key) or []
            if steps:
                console.print(Text(f"  {title}:"))
            for step in steps:
                console.print(_step(step))
        if response := _response(row):
            console.print(Text(f"  response: {response}"))


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Serialise history rows as CSV with the ``HISTORY_FIELDS`` header."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HISTORY_FIELDS)
    writer.writerows([[_plain(row.get(f)) for f in HISTORY_FIELDS] for row in rows])
    return buffer.getvalue()


def to_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """Serialise rows as a JSON array: Decimal as strings, dates and times as ISO 8601."""
    return json.dumps(
        [dict(row) for row in rows], default=_json_default, indent=2, ensure_ascii=False
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _plain(value: Any) -> str:
    """A CSV cell: ISO times, exact decimals, blank for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    return str(value)


def _time(value: Any) -> str:
    if not isinstance(value, datetime):
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _change(row: Mapping[str, Any]) -> str:
    old, new = row.get("old"), row.get("new")
    text = f"{'—' if old is None else old} → {'—' if new is None else new}"
    if row.get("kind") == ActionKind.PRICE and row.get("currency"):
        text += f" {row['currency']}"
    return text


def _response(row: Mapping[str, Any]) -> str:
    code, message = row.get("response_code"), row.get("response_message")
    return ": ".join(str(part) for part in (code, message) if part)


def _status(status: Any) -> Text:
    return Text(str(status or ""), style=STATUS_STYLES.get(str(status), ""))


def _step(step: Any) -> Text:
    """One trace step or guard verdict, on its own line: ``step: verdict — detail``."""
    if not isinstance(step, Mapping):
        return Text(f"    - {step}")
    line = Text("    - ")
    line.append(str(step.get("step", "?")), style="bold")
    verdict = str(step.get("verdict", ""))
    style = VERDICT_STYLES.get(verdict.lower(), "")
    line.append(": ")
    line.append(verdict, style=style)
    if detail := step.get("detail"):
        line.append(f" — {detail}")
    return line
