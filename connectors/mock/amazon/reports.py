"""Reports API 2021-06-30 of the mock SP-API: createReport, getReport, getReportDocument.

The gate checks bodies against the official model (``reports_2021-06-30.json``), answers errors
as its ``ErrorList`` and keeps each operation's usage plan. A report moves IN_QUEUE → IN_PROGRESS
(half of ``FbaHistory.processing_s`` after createReport) → DONE on the mock's clock, its TSV
document cut then from the mock's state (``fba.py``), stored GZIP'd in the mock's "S3" and
served at a presigned URL without SP-API auth.

``POST /_mock/reports/outcome {"status": "FATAL"|"CANCELLED", "count": n}`` makes the next n
reports end that way (a FATAL one still gets a document: Amazon's error summary, not data).
"""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta
from typing import Any, Final

from aiohttp import web

from connectors.mock.amazon.fba import (
    FbaHistory,
    MockReport,
    inventory_tsv,
    ledger_tsv,
    reimbursements_tsv,
)
from connectors.mock.amazon.feeds import _presigned, _store
from connectors.mock.amazon.state import AmazonMockState
from connectors.mock.amazon.wire import STATE_KEY, Call, WireError, invalid_input, sp_api
from connectors.mock.kit.control import Args, Refused
from connectors.mock.kit.wire import iso
from domain.fba import INVENTORY_REPORT, LEDGER_REPORT, REIMBURSEMENTS_REPORT

REPORT_TYPES: Final = frozenset({LEDGER_REPORT, REIMBURSEMENTS_REPORT, INVENTORY_REPORT})
_FINAL = frozenset({"DONE", "FATAL", "CANCELLED"})
TSV = "text/tab-separated-values;charset=UTF-8"


def _time(raw: Any, name: str, now: datetime) -> datetime:
    if raw is None:
        return now  # the model's default
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as err:
        raise invalid_input(f"{name} is not an ISO 8601 date-time.") from err
    if moment.tzinfo is None:
        raise invalid_input(f"{name} needs a time zone.")
    if moment > now:
        raise invalid_input(f"{name} must be prior to or equal to the current date and time.")
    return moment


def _document(state: AmazonMockState, report: MockReport) -> bytes:
    history = state.fba
    listings = sorted(state.market.listings.values(), key=lambda item: item.sku)
    history.seed(listings, state.clock.now())
    if report.outcome == "FATAL":
        return b"Report processing failed: an internal error occurred.\n"
    if report.report_type == LEDGER_REPORT:
        return ledger_tsv(history, report.start, report.end)
    if report.report_type == REIMBURSEMENTS_REPORT:
        return reimbursements_tsv(history, report.start, report.end)
    return inventory_tsv(listings)


def advance_reports(state: AmazonMockState) -> None:
    """Move every unfinished report along its timeline; cut its document when it ends."""
    history: FbaHistory = state.fba
    elapsed_s = state.clock.monotonic()
    half = history.processing_s / 2
    for report in history.reports.values():
        age = elapsed_s - report.created_mono
        if report.status in _FINAL:
            continue
        if report.outcome == "CANCELLED":
            # Cancelled before it started (Amazon also cancels a report with no data).
            report.status, report.ended = "CANCELLED", report.created
            continue
        if age >= half and report.started is None:
            report.status = "IN_PROGRESS"
            report.started = report.created + timedelta(seconds=half)
        if age >= history.processing_s:
            data = gzip.compress(_document(state, report), mtime=0)
            report.document_id = _store(state, TSV, data, "GZIP").document_id
            report.ended = report.created + timedelta(seconds=history.processing_s)
            report.status = report.outcome


@sp_api("createReport", ok=202)
def create_report(call: Call) -> Any:
    """``POST /reports/2021-06-30/reports`` → 202 ``{reportId}``; processing starts queued."""
    state, body = call.state, call.body
    if body["reportType"] not in REPORT_TYPES:
        raise invalid_input(f"Invalid reportType {body['reportType']}.")
    unknown = [mid for mid in body["marketplaceIds"] if mid != state.marketplace_id]
    if unknown:
        raise invalid_input(f"Invalid marketplaceIds: {','.join(unknown)}.")
    now = state.clock.now()
    start = _time(body.get("dataStartTime"), "dataStartTime", now)
    end = _time(body.get("dataEndTime"), "dataEndTime", now)
    if start > end:
        raise invalid_input("dataStartTime must be before dataEndTime.")
    history = state.fba
    report = MockReport(
        report_id=history.new_id(),
        report_type=body["reportType"],
        marketplace_ids=list(body["marketplaceIds"]),
        start=start,
        end=end,
        created=now,
        created_mono=state.clock.monotonic(),
        outcome=history.forced.pop(0) if history.forced else "DONE",
    )
    history.reports[report.report_id] = report
    return {"reportId": report.report_id}


def report_body(report: MockReport) -> dict[str, Any]:
    """The ``Report`` object of the model."""
    body: dict[str, Any] = {
        "reportId": report.report_id,
        "reportType": report.report_type,
        "marketplaceIds": report.marketplace_ids,
        "dataStartTime": iso(report.start),
        "dataEndTime": iso(report.end),
        "createdTime": iso(report.created),
        "processingStatus": report.status,
    }
    if report.started is not None:
        body["processingStartTime"] = iso(report.started)
    if report.ended is not None:
        body["processingEndTime"] = iso(report.ended)
    if report.document_id is not None:
        body["reportDocumentId"] = report.document_id
    return body


@sp_api("getReport")
def get_report(call: Call) -> Any:
    """``GET /reports/2021-06-30/reports/{reportId}``."""
    advance_reports(call.state)
    report = call.state.fba.reports.get(call.path("reportId"))
    if report is None:
        raise WireError(404, "NotFound", "The requested report was not found.")
    return report_body(report)


@sp_api("getReportDocument")
def get_report_document(call: Call) -> Any:
    """``GET /reports/2021-06-30/documents/{reportDocumentId}``: presigned URL, GZIP."""
    state, document_id = call.state, call.path("reportDocumentId")
    known = {r.document_id for r in state.fba.reports.values()}
    if document_id not in known or document_id not in state.documents:
        raise WireError(404, "NotFound", "The requested report document was not found.")
    return {
        "reportDocumentId": document_id,
        "url": _presigned(call.request, state, "download", document_id),
        "compressionAlgorithm": "GZIP",
    }


async def force_outcome(request: web.Request, args: Args) -> Args:
    """``POST /_mock/reports/outcome {status, count}``: the next reports end FATAL/CANCELLED."""
    state = request.app[STATE_KEY]
    status, count = args.get("status"), args.get("count", 1)
    if status not in ("FATAL", "CANCELLED", "DONE"):
        raise Refused(400, "status must be FATAL, CANCELLED or DONE")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise Refused(400, "count must be a positive integer")
    state.fba.forced.extend([str(status)] * count)
    return {"forced": state.fba.forced}
