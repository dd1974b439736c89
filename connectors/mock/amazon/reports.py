"""Reports API 2021-06-30 of the mock SP-API: createReport, getReport, getReportDocument.

Bodies are checked against the official model (``reports_2021-06-30.json``); errors are its
``ErrorList``; each operation keeps its published usage plan (the gate's token buckets). A
report moves IN_QUEUE → IN_PROGRESS (half of ``FbaHistory.processing_s`` after createReport) →
DONE on the mock's clock, its TSV document cut then from the mock's state (``fba.py``), stored
GZIP'd in the mock's "S3" and served at a presigned URL without SP-API auth.

``POST /_mock/reports/outcome {"status": "FATAL"|"CANCELLED", "count": n}`` makes the next n
reports end that way (a FATAL one still gets a document: Amazon's error summary, not data).
"""

from __future__ import annotations

import gzip
from datetime import datetime
from typing import Any, Final

from aiohttp import web

from connectors.mock.amazon.auth import STATE_KEY, ok, sp_api
from connectors.mock.amazon.fba import (
    FbaHistory,
    MockReport,
    inventory_tsv,
    ledger_tsv,
    reimbursements_tsv,
)
from connectors.mock.amazon.feeds import _presigned
from connectors.mock.amazon.state import AmazonMockState, FeedDocument
from connectors.mock.amazon.wire import WireError, invalid_input, json_body, openapi_validator
from connectors.mock.kit.control import bad, json_object
from connectors.mock.kit.wire import first_error, iso
from connectors.ratelimit import RateLimit
from domain.fba import INVENTORY_REPORT, LEDGER_REPORT, REIMBURSEMENTS_REPORT

SPEC = "reports_2021-06-30.json"
# The usage plans of reports_2021-06-30.json.
RATE_LIMITS: Final = {
    "createReport": RateLimit(0.0167, 15),
    "getReport": RateLimit(2, 15),
    "getReportDocument": RateLimit(0.0167, 15),
}
REPORT_TYPES: Final = frozenset({LEDGER_REPORT, REIMBURSEMENTS_REPORT, INVENTORY_REPORT})
_FINAL = frozenset({"DONE", "FATAL", "CANCELLED"})
TSV = "text/tab-separated-values;charset=UTF-8"


def _time(raw: Any, name: str, default: datetime, now: datetime) -> datetime:
    if raw is None:
        return default
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
    now = state.clock.monotonic()
    half = history.processing_s / 2
    for report in history.reports.values():
        if report.status in _FINAL:
            continue
        if report.outcome == "CANCELLED":
            # Cancelled before it started (Amazon also cancels a report with no data).
            report.status, report.ended = "CANCELLED", state.at(report.created_mono)
            continue
        if now - report.created_mono >= half and report.started is None:
            report.status, report.started = "IN_PROGRESS", state.at(report.created_mono + half)
        if now - report.created_mono >= history.processing_s:
            document_id = state.new_document_id()
            data = gzip.compress(_document(state, report), mtime=0)
            state.documents[document_id] = FeedDocument(
                document_id, TSV, state.clock.monotonic(), data, "GZIP"
            )
            report.document_id = document_id
            report.ended = state.at(report.created_mono + history.processing_s)
            report.status = report.outcome


async def _validated(request: web.Request, definition: str) -> dict[str, Any]:
    body = await json_body(request)
    problem = first_error(openapi_validator(SPEC, definition), body)
    if problem is not None:
        raise invalid_input(problem)
    assert isinstance(body, dict)
    return body


@sp_api("createReport")
async def create_report(request: web.Request, state: AmazonMockState) -> web.Response:
    """``POST /reports/2021-06-30/reports`` → 202 ``{reportId}``; processing starts queued."""
    body = await _validated(request, "CreateReportSpecification")
    if body["reportType"] not in REPORT_TYPES:
        raise invalid_input(f"Invalid reportType {body['reportType']}.")
    unknown = [mid for mid in body["marketplaceIds"] if mid != state.marketplace_id]
    if unknown:
        raise invalid_input(f"Invalid marketplaceIds: {','.join(unknown)}.")
    now = state.clock.now()
    start = _time(body.get("dataStartTime"), "dataStartTime", now, now)
    end = _time(body.get("dataEndTime"), "dataEndTime", now, now)
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
    return ok({"reportId": report.report_id}, state, "createReport", 202)


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
async def get_report(request: web.Request, state: AmazonMockState) -> web.Response:
    """``GET /reports/2021-06-30/reports/{reportId}``."""
    advance_reports(state)
    report = state.fba.reports.get(request.match_info["reportId"])
    if report is None:
        raise WireError(404, "NotFound", "The requested report was not found.")
    return ok(report_body(report), state, "getReport")


@sp_api("getReportDocument")
async def get_report_document(request: web.Request, state: AmazonMockState) -> web.Response:
    """``GET /reports/2021-06-30/documents/{reportDocumentId}``: presigned URL, GZIP."""
    document_id = request.match_info["reportDocumentId"]
    known = {r.document_id for r in state.fba.reports.values()}
    if document_id not in known or document_id not in state.documents:
        raise WireError(404, "NotFound", "The requested report document was not found.")
    body = {
        "reportDocumentId": document_id,
        "url": _presigned(request, state, "download", document_id),
        "compressionAlgorithm": "GZIP",
    }
    return ok(body, state, "getReportDocument")


async def force_outcome(request: web.Request) -> web.Response:
    """``POST /_mock/reports/outcome {status, count}``: the next reports end FATAL/CANCELLED."""
    state = request.app[STATE_KEY]
    body = await json_object(request)
    if body is None:
        return bad("expected a JSON object")
    status, count = body.get("status"), body.get("count", 1)
    if status not in ("FATAL", "CANCELLED", "DONE"):
        return bad("status must be FATAL, CANCELLED or DONE")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return bad("count must be a positive integer")
    state.fba.forced.extend([str(status)] * count)
    return web.json_response({"forced": state.fba.forced})


def add_routes(app: web.Application) -> None:
    """Register the Reports routes (and their usage plans) and the outcome control route."""
    state = app[STATE_KEY]
    for operation, limit in RATE_LIMITS.items():
        state.rate_limits.setdefault(operation, limit)
    app.router.add_post("/reports/2021-06-30/reports", create_report)
    app.router.add_get("/reports/2021-06-30/reports/{reportId}", get_report)
    app.router.add_get("/reports/2021-06-30/documents/{reportDocumentId}", get_report_document)
    app.router.add_post("/_mock/reports/outcome", force_outcome)
