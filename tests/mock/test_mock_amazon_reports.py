"""The mock's Reports API 2021-06-30: per the model, on the mock's clock, GZIP'd TSVs in "S3"."""

from __future__ import annotations

import gzip
from datetime import timedelta
from typing import Any

from connectors.mock.amazon.wire import openapi_validator
from domain.fba import LEDGER_COLUMNS, LEDGER_REPORT, REIMBURSEMENTS_REPORT
from tests.mock.test_mock_amazon import US, Mock
from tests.mock.test_mock_amazon import mock as mock  # the fixture

REPORTS = "/reports/2021-06-30/reports"
SPEC = "reports_2021-06-30.json"


def _valid(definition: str, body: Any) -> None:
    errors = list(openapi_validator(SPEC, definition).iter_errors(body))
    assert not errors, errors


def _spec(mock: Mock, report_type: str = LEDGER_REPORT, days: int = 90) -> dict[str, Any]:
    end = mock.clock.now()
    return {
        "reportType": report_type,
        "marketplaceIds": [US],
        "dataStartTime": (end - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "dataEndTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def _create(mock: Mock, body: dict[str, Any]) -> str:
    created = await mock.http.post(REPORTS, json=body, headers=mock.auth)
    assert created.status_code == 202, created.text
    _valid("CreateReportResponse", created.json())
    assert created.headers["x-amzn-RateLimit-Limit"] == "0.0167"
    report_id: str = created.json()["reportId"]
    return report_id


async def _get(mock: Mock, report_id: str) -> dict[str, Any]:
    answer = await mock.http.get(f"{REPORTS}/{report_id}", headers=mock.auth)
    assert answer.status_code == 200, answer.text
    _valid("Report", answer.json())
    body: dict[str, Any] = answer.json()
    return body


async def test_a_report_is_queued_then_in_progress_then_done_with_a_gzip_tsv(mock: Mock) -> None:
    report_id = await _create(mock, _spec(mock))
    assert (await _get(mock, report_id))["processingStatus"] == "IN_QUEUE"
    mock.clock.advance(1)
    assert (await _get(mock, report_id))["processingStatus"] == "IN_PROGRESS"
    mock.clock.advance(1)
    report = await _get(mock, report_id)
    assert report["processingStatus"] == "DONE"
    document_id = report["reportDocumentId"]
    meta = await mock.http.get(f"/reports/2021-06-30/documents/{document_id}", headers=mock.auth)
    assert meta.status_code == 200
    _valid("ReportDocument", meta.json())
    assert meta.json()["compressionAlgorithm"] == "GZIP"
    # The presigned URL needs no SP-API token.
    raw = await mock.http.get(meta.json()["url"])
    assert raw.status_code == 200
    lines = gzip.decompress(raw.content).decode().splitlines()
    assert lines[0].split("\t") == list(LEDGER_COLUMNS)
    rows = [dict(zip(LEDGER_COLUMNS, line.split("\t"), strict=True)) for line in lines[1:]]
    lost = [r for r in rows if r["Event Type"] == "Adjustments" and r["Reason"] == "M"]
    assert lost
    assert all(int(r["Quantity"]) < 0 for r in lost)
    assert {r["Reason"] for r in rows} >= {"M", "F", "E", "P", "Q", "H", ""}


async def test_reimbursements_report_lists_full_and_partial_reimbursements(mock: Mock) -> None:
    report_id = await _create(mock, _spec(mock, REIMBURSEMENTS_REPORT))
    mock.clock.advance(2)
    report = await _get(mock, report_id)
    document = mock.state.documents[report["reportDocumentId"]]
    text = gzip.decompress(document.data or b"").decode()
    reasons = [line.split("\t")[4] for line in text.splitlines()[1:]]
    assert sorted(set(reasons)) == ["Damaged_Warehouse", "Lost_Warehouse"]


async def test_bad_bodies_and_unknown_ids_get_the_models_error_list(mock: Mock) -> None:
    cases = [
        {"reportType": LEDGER_REPORT},  # marketplaceIds is required
        {**_spec(mock), "marketplaceIds": []},
        {**_spec(mock), "reportType": "GET_NOTHING"},
        {**_spec(mock), "marketplaceIds": ["A1PA6795UKMFR9"]},
        {**_spec(mock), "dataEndTime": "2099-01-01T00:00:00Z"},
    ]
    for body in cases:
        answer = await mock.http.post(REPORTS, json=body, headers=mock.auth)
        assert answer.status_code == 400, body
        _valid("ErrorList", answer.json())
        assert answer.json()["errors"][0]["code"] == "InvalidInput"
    missing = await mock.http.get(f"{REPORTS}/1", headers=mock.auth)
    assert missing.status_code == 404
    _valid("ErrorList", missing.json())
    unauthenticated = await mock.http.post(REPORTS, json=_spec(mock))
    assert unauthenticated.status_code == 403


async def test_create_report_keeps_its_usage_plan(mock: Mock) -> None:
    for _ in range(15):
        await _create(mock, _spec(mock))
    throttled = await mock.http.post(REPORTS, json=_spec(mock), headers=mock.auth)
    assert throttled.status_code == 429
    assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
    mock.clock.advance(60)
    await _create(mock, _spec(mock))


async def test_forced_outcomes_end_reports_fatal_or_cancelled(mock: Mock) -> None:
    forced = await mock.http.post("/_mock/reports/outcome", json={"status": "FATAL"})
    assert forced.status_code == 200
    await mock.http.post("/_mock/reports/outcome", json={"status": "CANCELLED"})
    assert (await mock.http.post("/_mock/reports/outcome", json={"status": "X"})).status_code == 400
    fatal = await _create(mock, _spec(mock))
    cancelled = await _create(mock, _spec(mock))
    fine = await _create(mock, _spec(mock))
    mock.clock.advance(2)
    assert (await _get(mock, fatal))["processingStatus"] == "FATAL"
    assert "reportDocumentId" in await _get(mock, fatal)  # Amazon's error summary
    assert (await _get(mock, cancelled))["processingStatus"] == "CANCELLED"
    assert "reportDocumentId" not in await _get(mock, cancelled)
    assert (await _get(mock, fine))["processingStatus"] == "DONE"
