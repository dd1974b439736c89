"""``repricerd audit fba``: read Amazon's FBA reports, store them once, and audit them.

``fetch_reports`` asks each Amazon channel's Reports API for the inventory ledger and the
reimbursements over the window, and the current inventory, one report after the other (the
connector keeps each operation inside its published usage plan). A report that ends FATAL or
CANCELLED is never parsed: it is asked for again after ``retry_after_s``, up to ``attempts``
times; still not DONE, it is reported, and the next run asks again (what is stored stays).

Rows are stored by their natural key, so reading the same report again adds nothing.
``load_audit`` runs the pure audit (``inventory.fba_audit``) over what is stored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.amazon import AmazonChannel, AmazonSettings
from connectors.amazon.reports import (
    ReportOutcome,
    ReportsClient,
    parse_inventory,
    parse_ledger,
    parse_reimbursements,
)
from connectors.base import ChannelDeps
from daemon.db.engine import Database
from daemon.db.models import FbaInventory, FbaLedgerEvent, FbaReimbursement, Product
from daemon.settings import Settings
from domain.clock import Clock
from domain.errors import ChannelError
from domain.fba import (
    INVENTORY_REPORT,
    LEDGER_REPORT,
    REIMBURSEMENTS_REPORT,
    FbaInventoryRow,
    LedgerEntry,
    Reimbursement,
)
from inventory.fba_audit import AuditReport, Case, audit

LEDGER: sa.Table = FbaLedgerEvent.__table__  # type: ignore[attr-defined]
REIMBURSEMENTS: sa.Table = FbaReimbursement.__table__  # type: ignore[attr-defined]
INVENTORY: sa.Table = FbaInventory.__table__  # type: ignore[attr-defined]
PRODUCT: sa.Table = Product.__table__  # type: ignore[attr-defined]

REPORT_TYPES = (LEDGER_REPORT, REIMBURSEMENTS_REPORT, INVENTORY_REPORT)
RETRY_AFTER_S = 300.0  # a FATAL report is usually a transient failure on Amazon's side
ATTEMPTS = 3
UNREADABLE = "UNREADABLE"  # DONE, but its document does not have the documented columns

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Fetched:
    """What became of one report of one channel."""

    channel: str
    report_type: str
    status: str  # DONE, or the last FATAL | CANCELLED | TIMEOUT, or UNREADABLE
    attempts: int
    rows: int = 0
    added: int = 0


def amazon_channels(settings: Settings, wanted: Sequence[str] = ()) -> list[str]:
    """The configured Amazon channels (those of ``wanted`` only, when given)."""
    return [
        name
        for name, cfg in settings.channels.items()
        if isinstance(cfg, AmazonSettings) and (not wanted or name in wanted)
    ]


async def run_audit(
    db: Database,
    settings: Settings,
    *,
    http: httpx.AsyncClient,
    clock: Clock,
    sleep: Callable[[float], Awaitable[None]],
    since: timedelta,
    channels: Sequence[str] = (),
    fetch: bool = True,
    progress: Progress = lambda _: None,
    poll_interval_s: float | None = None,
) -> tuple[AuditReport, list[Fetched]]:
    """What ``repricerd audit fba`` does: fetch (unless told not to), store, then audit."""
    names = amazon_channels(settings, channels)
    now = clock.now()
    start, first_day = window(since, now)
    fetched: list[Fetched] = []
    if fetch:
        deps = ChannelDeps(http=http, clock=clock, sleep=sleep)
        for name in names:
            config = settings.channels[name]
            assert isinstance(config, AmazonSettings)
            client = AmazonChannel(name, config, deps).client
            reports = (
                ReportsClient(client)
                if poll_interval_s is None
                else ReportsClient(client, poll_interval_s=poll_interval_s)
            )
            fetched += await fetch_reports(
                db, name, reports, start=start, end=now, now=now, sleep=sleep, progress=progress
            )
    report = await audit_stored(db, settings, names, since=first_day, today=clock.now().date())
    return report, fetched


async def audit_stored(
    db: Database, settings: Settings, names: Sequence[str], *, since: date, today: date
) -> AuditReport:
    """Audit the stored reports of the channels ``names`` (``--no-fetch``), each in its own
    currency (a channel of another kind with stored reports, e.g. the demo's, included)."""
    currencies = {
        n: str(getattr(settings.channels[n], "currency", "USD"))
        for n in names
        if n in settings.channels
    }
    return await audit_channels(db, currencies, since=since, today=today)


async def audit_channels(
    db: Database, currencies: Mapping[str, str], *, since: date, today: date
) -> AuditReport:
    """Audit each channel (seller account) on its own, in its currency, and list the cases
    together: a claim is filed in one account, so one account's found units or reimbursements
    must not settle another's losses of the same FNSKU."""
    reports = [
        await load_audit(db, [name], since=since, today=today, currency=currency)
        for name, currency in currencies.items()
    ]
    if not reports:
        return await load_audit(db, [], since=since, today=today, currency="USD")
    cases = sorted(
        (case for r in reports for case in r.cases),
        key=lambda c: (not c.claimable, c.deadline, c.fnsku, c.kind),
    )
    return replace(reports[0], cases=tuple(cases))


async def fetch_reports(
    db: Database,
    channel: str,
    reports: ReportsClient,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    sleep: Callable[[float], Awaitable[None]],
    progress: Progress = lambda _: None,
    attempts: int = ATTEMPTS,
    retry_after_s: float = RETRY_AFTER_S,
) -> list[Fetched]:
    """Read the three FBA reports for [start, end] and store their rows; one result each."""
    out = []
    for report_type in REPORT_TYPES:
        outcome: ReportOutcome | None = None
        tries = 0
        while tries < attempts:
            if tries:
                progress(
                    f"{channel}: {report_type} ended {outcome and outcome.status}; "
                    f"asking again in {retry_after_s:.0f}s"
                )
                await sleep(retry_after_s)
            tries += 1
            progress(f"{channel}: requesting {report_type} {start:%Y-%m-%d}..{end:%Y-%m-%d}")
            outcome = await reports.fetch(report_type, start, end)
            if outcome.done:
                break
        assert outcome is not None
        if not outcome.done or outcome.text is None:
            progress(
                f"{channel}: {report_type} {outcome.status} after {tries} attempt(s): "
                "not read; run again later"
            )
            out.append(Fetched(channel, report_type, outcome.status, tries))
            continue
        try:
            rows, added = await store(db, channel, report_type, outcome.text, now)
        except ChannelError as err:
            # A document this code cannot read (a documented column missing): the other
            # reports and channels are still read, and the run ends "not DONE" (exit 3).
            progress(f"{channel}: {report_type} document not read: {err}")
            out.append(Fetched(channel, report_type, UNREADABLE, tries))
            continue
        progress(f"{channel}: {report_type} DONE, {rows} rows ({added} new)")
        out.append(Fetched(channel, report_type, "DONE", tries, rows, added))
    return out


# Per report type: its parser, its table, and the columns a re-read refreshes (the others of a
# stored row stay as first read; a row is "the same" by the table's unique key).
_STORES: dict[str, tuple[Callable[[str], Sequence[Any]], sa.Table, tuple[str, ...]]] = {
    LEDGER_REPORT: (
        parse_ledger,
        LEDGER,
        ("reconciled_quantity", "unreconciled_quantity", "read_at"),
    ),
    REIMBURSEMENTS_REPORT: (parse_reimbursements, REIMBURSEMENTS, ()),
    INVENTORY_REPORT: (parse_inventory, INVENTORY, ("*",)),  # the latest snapshot wins
}


async def store(
    db: Database, channel: str, report_type: str, text: str, now: datetime
) -> tuple[int, int]:
    """Parse one DONE report's document and store its rows; return (rows read, rows added)."""
    parse, table, refresh = _STORES[report_type]
    parsed = parse(text)
    rows = [_row(channel, item, now) for item in parsed]
    return len(parsed), await _upsert(db, table, rows, refresh=refresh, channel=channel)


async def _upsert(
    db: Database,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    refresh: tuple[str, ...],
    channel: str,
) -> int:
    """Insert rows new by the table's unique key; refresh ``refresh`` (``*``: every column) on
    the others; return how many were new."""
    if not rows:
        return 0
    names = list(rows[0])
    unique = [c for c in table.constraints if isinstance(c, sa.UniqueConstraint)]
    keys = [c.name for c in (unique[0] if unique else table.primary_key).columns]
    if refresh == ("*",):
        refresh = tuple(name for name in names if name not in keys)
    insert = db.insert(table).values(
        {name: sa.bindparam(name, type_=table.c[name].type) for name in names}
    )
    statement = (
        insert.on_conflict_do_update(
            index_elements=keys, set_={name: insert.excluded[name] for name in refresh}
        )
        if refresh
        else insert.on_conflict_do_nothing(index_elements=keys)
    )
    count = sa.select(sa.func.count()).select_from(table).where(table.c.channel == channel)
    async with db.write() as conn:
        before = (await conn.execute(count)).scalar_one()
        # Duplicates inside one document (the same row twice) must not trip the conflict
        # clause of a single batched statement: keep the first of each key.
        first = list({tuple(row[k] for k in keys): row for row in reversed(rows)}.values())
        await db.execute_many(conn, statement, first)
        after = (await conn.execute(count)).scalar_one()
    return int(after) - int(before)


def _row(
    channel: str, item: LedgerEntry | Reimbursement | FbaInventoryRow, now: datetime
) -> dict[str, Any]:
    row = {"channel": channel, **{f.name: getattr(item, f.name) for f in fields(item)}}
    for name in ("title", "product_name"):  # free text Amazon does not bound
        if name in row:
            row[name] = row[name][:500]
    return row | {"read_at": now}


async def load_audit(
    db: Database, channels: Sequence[str], *, since: date, today: date, currency: str
) -> AuditReport:
    """Audit the stored ledger and reimbursements of ``channels`` for events since ``since``."""
    async with db.read() as conn:
        ledger = await _ledger(conn, channels, since)
        paid = await _reimbursements(conn, channels, since)
        skus = sorted({e.msku for e in ledger})
        costs: dict[str, Decimal] = {}
        if skus:
            query = sa.select(PRODUCT.c.sku, PRODUCT.c.cost).where(PRODUCT.c.sku.in_(skus))
            costs = {row.sku: row.cost for row in await conn.execute(query) if row.cost is not None}
    return audit(ledger, paid, since=since, today=today, cost_by_sku=costs, currency=currency)


async def _ledger(conn: AsyncConnection, channels: Sequence[str], since: date) -> list[LedgerEntry]:
    query = sa.select(LEDGER).where(LEDGER.c.channel.in_(channels), LEDGER.c.day >= since)
    names = [f.name for f in fields(LedgerEntry)]
    result = await conn.execute(query)
    return [LedgerEntry(**{n: row[n] for n in names}) for row in result.mappings()]


async def _reimbursements(
    conn: AsyncConnection, channels: Sequence[str], since: date
) -> list[Reimbursement]:
    start = datetime.combine(since, datetime.min.time()).replace(tzinfo=UTC)
    query = sa.select(REIMBURSEMENTS).where(
        REIMBURSEMENTS.c.channel.in_(channels), REIMBURSEMENTS.c.approved_at >= start
    )
    names = [f.name for f in fields(Reimbursement)]
    result = await conn.execute(query)
    return [Reimbursement(**{n: row[n] for n in names}) for row in result.mappings()]


# --- rendering --------------------------------------------------------------------------------

FIELDS = (
    "claimable",
    "fnsku",
    "msku",
    "asin",
    "kind",
    "units",
    "unit_value",
    "value",
    "currency",
    "value_source",
    "deadline",
    "reference_ids",
    "dates",
    "fulfillment_centers",
    "case_text",
)


def case_record(case: Case) -> dict[str, Any]:
    """One case as a flat record (CSV and JSON)."""
    return {
        "claimable": case.claimable,
        "fnsku": case.fnsku,
        "msku": case.msku,
        "asin": case.asin,
        "kind": case.kind.value,
        "units": case.units,
        "unit_value": case.unit_value,
        "value": case.value,
        "currency": case.currency,
        "value_source": case.value_source,
        "deadline": case.deadline.isoformat(),
        "reference_ids": " ".join(e.reference_id for e in case.evidence),
        "dates": " ".join(e.day.isoformat() for e in case.evidence),
        "fulfillment_centers": " ".join(sorted({e.fulfillment_center for e in case.evidence})),
        "case_text": case.text,
    }


def render_audit(
    report: AuditReport, console: Console, fmt: Literal["table", "csv", "json"] = "table"
) -> None:
    """Print the audit's cases as a table (with the case texts), CSV or JSON."""
    records = [case_record(c) for c in report.cases]
    if fmt == "json":
        body = {
            "since": report.since.isoformat(),
            "today": report.today.isoformat(),
            "claim_window_days": report.window.days,
            "claim_window_source": report.window.source,
            "cases": [
                {**r, "evidence": [_evidence(e) for e in c.evidence]}
                for r, c in zip(records, report.cases, strict=True)
            ],
        }
        console.out(json.dumps(body, indent=2, default=_json), highlight=False)
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(FIELDS)
        writer.writerows([[_plain(r[f]) for f in FIELDS] for r in records])
        console.out(buffer.getvalue(), end="", highlight=False)
        return
    if not report.cases:
        console.print(f"no open lost or damaged units since {report.since}", style="dim")
        return
    table = Table(header_style="bold")
    for heading in ("", "FNSKU", "SKU", "kind", "units", "value", "deadline", "evidence"):
        table.add_column(heading, overflow="fold")
    for case, record in zip(report.cases, records, strict=True):
        value = "?" if case.value is None else f"{case.value} {case.currency}"
        table.add_row(
            Text(
                "claim" if case.claimable else "expired", style="green" if case.claimable else "dim"
            ),
            Text(case.fnsku),
            Text(case.msku),
            case.kind.value,
            str(case.units),
            value,
            record["deadline"],
            Text(
                ", ".join(f"{e.reference_id} {e.day} {e.fulfillment_center}" for e in case.evidence)
            ),
        )
    console.print(table)
    claimable = report.claimable
    total = sum((c.value or Decimal(0) for c in claimable), Decimal(0))
    console.print(
        f"{sum(c.units for c in claimable)} claimable unit(s) in {len(claimable)} case(s), "
        f"worth {total}; claim window {report.window.days} days ({report.window.source})"
    )
    for case in claimable:
        console.rule(f"{case.fnsku} {case.kind.value}")
        console.out(case.text, highlight=False)


def _evidence(evidence: Any) -> dict[str, Any]:
    return {k: _json(v) for k, v in asdict(evidence).items()}


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    return value


def window(since: timedelta, now: datetime) -> tuple[datetime, date]:
    """The report window's start (aware UTC) and the audit's first day for ``--since``."""
    start = (now - since).replace(microsecond=0)
    return start, start.date()
