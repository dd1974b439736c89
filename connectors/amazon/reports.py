"""Reports API 2021-06-30: request a report, wait for it, download and parse its TSV document.

createReport (reportType, marketplaceIds, dataStartTime/dataEndTime) → poll getReport until a
terminal processingStatus → getReportDocument (a presigned URL, maybe GZIP) → GET the URL with
no SP-API headers (S3 authenticates by the URL) → gunzip → rows. Every call keeps to its
operation's published usage plan (``const.RATE_LIMITS``: createReport and getReportDocument
one a minute after a burst of 15; getReport 2/s).

A report that ends FATAL or CANCELLED (or is still running when the wait ends) is not parsed:
its ``ReportOutcome`` says so and the caller asks again later (a FATAL report's document holds
Amazon's error summary, not data).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import structlog

from connectors.amazon.client import SpApiClient
from connectors.amazon.const import (
    CREATE_REPORT,
    GET_REPORT,
    GET_REPORT_DOCUMENT,
    REPORT_DOCUMENT_PATH,
    REPORT_DOWNLOAD,
    REPORT_PATH,
    REPORT_TERMINAL,
    REPORTS_PATH,
)
from domain.errors import ChannelError
from domain.fba import (
    INVENTORY_COLUMNS,
    LEDGER_COLUMNS,
    REIMBURSEMENT_COLUMNS,
    FbaInventoryRow,
    LedgerEntry,
    Reimbursement,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")

DEFAULT_POLL_INTERVAL_S = 30.0
DEFAULT_TIMEOUT_S = 1800.0  # large ledger reports can take many minutes


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """A report's end: its status and, only when DONE, its document's text."""

    report_type: str
    report_id: str | None
    status: str  # DONE | FATAL | CANCELLED | TIMEOUT
    text: str | None = None

    @property
    def done(self) -> bool:
        """True when the report finished and its document was read."""
        return self.status == "DONE" and self.text is not None


class ReportsClient:
    """Requests and reads reports for one seller account (through its ``SpApiClient``)."""

    def __init__(
        self,
        client: SpApiClient,
        *,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s

    async def create(self, report_type: str, start: datetime, end: datetime) -> str:
        """createReport for the seller's marketplace over [start, end]; return the reportId."""
        body = {
            "reportType": report_type,
            "marketplaceIds": [self.client.settings.marketplace_id],
            "dataStartTime": _iso(start),
            "dataEndTime": _iso(end),
        }
        created = await self.client.call(CREATE_REPORT, "POST", REPORTS_PATH, body=body)
        return _str(created, "reportId")

    async def wait(self, report_id: str) -> Mapping[str, Any] | None:
        """Poll getReport until the report ends; None if ``timeout_s`` passes first."""
        clock, sleep = self.client.deps.clock, self.client.deps.sleep
        started = clock.monotonic()
        polls = 0
        while True:
            # A report is never ready the moment it is requested: wait first, then look, on a
            # grid from the start (a slow answer does not push later polls back).
            polls += 1
            await sleep(max(0.0, started + polls * self.poll_interval_s - clock.monotonic()))
            report = await self.client.call(
                GET_REPORT, "GET", REPORT_PATH.format(report_id=report_id)
            )
            if isinstance(report, Mapping) and report.get("processingStatus") in REPORT_TERMINAL:
                return report
            if (polls + 1) * self.poll_interval_s > self.timeout_s:
                return None

    async def document(self, document_id: str) -> str:
        """getReportDocument, then download (no SP-API headers) and gunzip; return the text."""
        meta = await self.client.call(
            GET_REPORT_DOCUMENT, "GET", REPORT_DOCUMENT_PATH.format(document_id=document_id)
        )
        compression = meta.get("compressionAlgorithm") if isinstance(meta, Mapping) else None
        raw = await self.client.download(
            REPORT_DOWNLOAD,
            _str(meta, "url"),
            compression if isinstance(compression, str) else None,
        )
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            # Flat-file reports of some marketplaces are Windows-1252, not UTF-8.
            return raw.decode("cp1252", errors="replace")

    async def fetch(self, report_type: str, start: datetime, end: datetime) -> ReportOutcome:
        """Request one report and read it when it is DONE; any other end is returned unread."""
        report_id = await self.create(report_type, start, end)
        log.info("amazon.report.requested", report_type=report_type, report_id=report_id)
        report = await self.wait(report_id)
        if report is None:
            log.warning("amazon.report.timeout", report_type=report_type, report_id=report_id)
            return ReportOutcome(report_type, report_id, "TIMEOUT")
        status = str(report["processingStatus"])
        document_id = report.get("reportDocumentId")
        if status != "DONE" or not isinstance(document_id, str):
            log.warning("amazon.report.not_done", report_type=report_type, status=status)
            return ReportOutcome(report_type, report_id, status)
        text = await self.document(document_id)
        log.info("amazon.report.read", report_type=report_type, report_id=report_id)
        return ReportOutcome(report_type, report_id, status, text)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _str(body: Any, key: str) -> str:
    value = body.get(key) if isinstance(body, Mapping) else None
    if not isinstance(value, str) or not value:
        raise ChannelError(f"Reports API response without {key!r}")
    return value


# --- the TSV documents ------------------------------------------------------------------------


def _rows(text: str, columns: Sequence[str], report: str) -> list[dict[str, str]]:
    """The document's rows as column → value; every documented column must be in the header."""
    reader = csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in columns if name not in header]
    if missing:
        raise ChannelError(f"{report}: document lacks column(s) {', '.join(missing)}")
    reader.fieldnames = header
    return [
        {key: (value or "").strip() for key, value in row.items() if isinstance(key, str)}
        for row in reader
        if any((value or "").strip() for value in row.values() if isinstance(value, str))
    ]


def _parse_all(
    text: str,
    columns: Sequence[str],
    report: str,
    build: Callable[..., T],
    converters: Sequence[Callable[[str], Any]],
) -> list[T]:
    """Build one ``T`` per row from ``columns`` converted in order (the fields' order).

    A row that does not convert is logged with its line and skipped: one malformed row must not
    cost the rest of the document (a missing column still refuses it whole, in ``_rows``)."""
    out = []
    for number, row in enumerate(_rows(text, columns, report), start=2):
        try:
            out.append(build(*(c(row[n]) for n, c in zip(columns, converters, strict=True))))
        except (ValueError, InvalidOperation) as err:
            log.warning("amazon.report.row_skipped", report=report, line=number, error=str(err))
    return out


def _int(raw: str) -> int:
    return int(raw) if raw else 0


def _opt_int(raw: str) -> int | None:
    return int(raw) if raw else None


def _money(raw: str) -> Decimal | None:
    return Decimal(raw.replace(",", "")) if raw else None


def _money0(raw: str) -> Decimal:
    return _money(raw) or Decimal(0)


def _yes(raw: str) -> bool:
    return raw.strip().lower() in {"yes", "true", "y"}


def _moment(raw: str) -> datetime:
    """An ISO 8601 time with its offset (a bare one is UTC), as aware UTC."""
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _day(raw: str) -> date:
    """The ledger's ``Date`` (MM/DD/YYYY in the US download, ISO in some others)."""
    if "/" in raw:
        month, day, year = (int(part) for part in raw.split("/"))
        return date(year, month, day)
    return date.fromisoformat(raw[:10])


# Each document's converters, column by column (the dataclasses' fields are in column order).
_LEDGER: tuple[Callable[[str], Any], ...] = (
    _day,
    *[str] * 6,
    int,
    *[str] * 4,
    _opt_int,
    _opt_int,
    _moment,
)
_REIMBURSEMENTS: tuple[Callable[[str], Any], ...] = (
    _moment,
    *[str] * 10,
    _money,
    _money0,
    _int,
    _int,
    _int,
    str,
    str,
)
_INVENTORY: tuple[Callable[[str], Any], ...] = (
    *[str] * 5,
    _money,
    _yes,
    _opt_int,
    _yes,
    *[_int] * 5,
    _money,
    *[_int] * 6,
)


def parse_ledger(text: str) -> list[LedgerEntry]:
    """Rows of a ``GET_LEDGER_DETAIL_VIEW_DATA`` document."""
    return _parse_all(text, LEDGER_COLUMNS, "ledger", LedgerEntry, _LEDGER)


def parse_reimbursements(text: str) -> list[Reimbursement]:
    """Rows of a ``GET_FBA_REIMBURSEMENTS_DATA`` document."""
    return _parse_all(text, REIMBURSEMENT_COLUMNS, "reimbursements", Reimbursement, _REIMBURSEMENTS)


def parse_inventory(text: str) -> list[FbaInventoryRow]:
    """Rows of a ``GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA`` document."""
    return _parse_all(text, INVENTORY_COLUMNS, "inventory", FbaInventoryRow, _INVENTORY)
