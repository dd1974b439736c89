"""Reports API 2021-06-30: the exact requests, the S3 download without SP-API headers, parsing."""

from __future__ import annotations

import gzip
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from structlog.testing import capture_logs

from connectors.amazon.reports import (
    ReportsClient,
    parse_inventory,
    parse_ledger,
    parse_reimbursements,
)
from connectors.mock.amazon.wire import openapi_validator
from domain.clock import ManualClock
from domain.errors import ChannelError
from domain.fba import INVENTORY_COLUMNS, LEDGER_COLUMNS, LEDGER_REPORT, REIMBURSEMENT_COLUMNS
from tests.connectors.amazon_fixtures import (
    API,
    MARKET,
    TOKEN,
    FakeSleep,
    body,
    channel,
    token_route,
)

REPORT_ID = "51000000123"
DOC = "amzn1.spdoc.1.4.na.abc"
S3 = "https://tortuga-prod-na.s3-external-1.amazonaws.com/doc-1?X-Amz-Signature=abc"
START = datetime(2026, 9, 9, 0, 0, tzinfo=UTC)
END = datetime(2026, 12, 8, 0, 0, tzinfo=UTC)

LEDGER_TSV = (
    "\t".join(LEDGER_COLUMNS)
    + "\n"
    + "\t".join(
        [
            "11/20/2026", "X001ABC", "B000000001", "MUG-1", "Mug", "Adjustments", "8000000001",
            "-3", "PHX7", "SELLABLE", "M", "US", "1", "2", "2026-11-20T08:15:00-07:00",
        ]
    )
    + "\n"
)  # fmt: skip


def _report(status: str, **extra: Any) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "reportId": REPORT_ID,
            "reportType": LEDGER_REPORT,
            "marketplaceIds": [MARKET],
            "createdTime": "2026-12-08T00:00:00Z",
            "processingStatus": status,
            **extra,
        },
    )


def _routes(router: respx.MockRouter, statuses: list[str], document: bytes) -> dict[str, Any]:
    token_route(router)
    last = statuses[-1]
    polls = [_report(s) for s in statuses[:-1]] + [
        _report(last, reportDocumentId=DOC) if last in ("DONE", "FATAL") else _report(last)
    ]
    return {
        "create": router.post(f"{API}/reports/2021-06-30/reports").mock(
            return_value=httpx.Response(202, json={"reportId": REPORT_ID})
        ),
        "poll": router.get(f"{API}/reports/2021-06-30/reports/{REPORT_ID}").mock(side_effect=polls),
        "meta": router.get(f"{API}/reports/2021-06-30/documents/{DOC}").mock(
            return_value=httpx.Response(
                200, json={"reportDocumentId": DOC, "url": S3, "compressionAlgorithm": "GZIP"}
            )
        ),
        "download": router.get(S3).mock(return_value=httpx.Response(200, content=document)),
    }


async def test_a_report_is_created_polled_and_its_gzip_document_read(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock() as router, httpx.AsyncClient() as http:
        r = _routes(router, ["IN_QUEUE", "IN_PROGRESS", "DONE"], gzip.compress(LEDGER_TSV.encode()))
        reports = ReportsClient(channel(http, clock, sleep).client, poll_interval_s=15)
        outcome = await reports.fetch(LEDGER_REPORT, START, END)
    assert outcome.done
    assert (outcome.report_id, outcome.status) == (REPORT_ID, "DONE")
    create = r["create"].calls.last.request
    sent = body(create)
    assert sent == {
        "reportType": LEDGER_REPORT,
        "marketplaceIds": [MARKET],
        "dataStartTime": "2026-09-09T00:00:00Z",
        "dataEndTime": "2026-12-08T00:00:00Z",
    }
    assert not list(openapi_validator("reports_2021-06-30.json", "CreateReportSpecification")
                    .iter_errors(sent))  # fmt: skip
    assert create.headers["x-amz-access-token"] == TOKEN
    assert create.headers["content-type"] == "application/json"
    assert r["poll"].call_count == 3
    assert r["poll"].calls.last.request.headers["x-amz-access-token"] == TOKEN
    assert r["meta"].calls.last.request.headers["x-amz-access-token"] == TOKEN
    # S3 authenticates by the presigned URL: no SP-API token or date goes there.
    download = r["download"].calls.last.request
    assert "x-amz-access-token" not in download.headers
    assert "x-amz-date" not in download.headers
    assert "authorization" not in download.headers
    # Polls waited on a 15 s grid (no real sleeping: the clock moved).
    assert sleep.waits[:3] == [15, 15, 15]
    [entry] = parse_ledger(outcome.text or "")
    assert entry.occurred_at == datetime(2026, 11, 20, 15, 15, tzinfo=UTC)
    assert (entry.day, entry.quantity, entry.reason) == (date(2026, 11, 20), -3, "M")
    assert (entry.reconciled_quantity, entry.unreconciled_quantity) == (1, 2)


@pytest.mark.parametrize("status", ["FATAL", "CANCELLED"])
async def test_a_fatal_or_cancelled_report_is_not_downloaded(
    clock: ManualClock, sleep: FakeSleep, status: str
) -> None:
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        r = _routes(router, ["IN_QUEUE", status], b"not a report")
        reports = ReportsClient(channel(http, clock, sleep).client, poll_interval_s=15)
        outcome = await reports.fetch(LEDGER_REPORT, START, END)
    assert (outcome.status, outcome.text, outcome.done) == (status, None, False)
    assert not r["meta"].called
    assert not r["download"].called


async def test_a_report_still_running_at_the_timeout_is_left_for_later(
    clock: ManualClock, sleep: FakeSleep
) -> None:
    async with respx.mock(assert_all_called=False) as router, httpx.AsyncClient() as http:
        r = _routes(router, ["IN_PROGRESS"] * 3, b"")
        client = channel(http, clock, sleep).client
        outcome = await ReportsClient(client, poll_interval_s=10, timeout_s=30).fetch(
            LEDGER_REPORT, START, END
        )
    assert outcome.status == "TIMEOUT"
    assert r["poll"].call_count == 3
    assert not r["download"].called


def test_reimbursements_and_inventory_documents_parse_to_typed_rows() -> None:
    paid = "\t".join(REIMBURSEMENT_COLUMNS) + "\n" + "\t".join(
        [
            "2026-11-24T06:17:32+00:00", "3000000004", "", "", "Lost_Warehouse", "MUG-1",
            "X001ABC", "B000000001", "Mug", "New", "USD", "12.00", "24.00", "2", "1", "3", "", "",
        ]
    )  # fmt: skip
    [row] = parse_reimbursements(paid)
    assert row.approved_at == datetime(2026, 11, 24, 6, 17, 32, tzinfo=UTC)
    assert (row.amount_per_unit, row.amount_total) == (Decimal("12.00"), Decimal("24.00"))
    assert (row.quantity_cash, row.quantity_inventory, row.quantity_total) == (2, 1, 3)
    stock = "\t".join([*INVENTORY_COLUMNS, "store"]) + "\n" + "\t".join(
        ["MUG-1", "X001ABC", "B000000001", "Mug", "New", "19.99", "No", "", "Yes", "7", "5",
         "1", "1", "7", "0.12", "0", "3", "0", "0", "0", "0", "extra"]
    )  # fmt: skip
    [item] = parse_inventory(stock)
    assert (item.your_price, item.afn_fulfillable, item.mfn_fulfillable) == (
        Decimal("19.99"),
        5,
        None,
    )
    assert item.afn_listing_exists
    assert not item.mfn_listing_exists


def test_a_document_without_a_documented_column_is_refused() -> None:
    header = "\t".join(c for c in LEDGER_COLUMNS if c != "Reason")
    with pytest.raises(ChannelError, match="Reason"):
        parse_ledger(header + "\n")


def test_a_malformed_row_is_skipped_and_logged_and_the_others_are_read() -> None:
    bad = LEDGER_TSV.splitlines()[1].replace("\t-3\t", "\tmany\t")
    with capture_logs() as logs:
        entries = parse_ledger(LEDGER_TSV.replace("\n", "\n" + bad + "\n", 1))
    assert [e.quantity for e in entries] == [-3]
    [skipped] = [e for e in logs if e["event"] == "amazon.report.row_skipped"]
    assert (skipped["report"], skipped["line"]) == ("ledger", 2)
    assert "many" in skipped["error"]


def test_each_documents_converters_line_up_with_its_columns_and_fields() -> None:
    from dataclasses import fields

    from connectors.amazon import reports
    from domain.fba import FbaInventoryRow, LedgerEntry, Reimbursement

    for columns, converters, row in (
        (LEDGER_COLUMNS, reports._LEDGER, LedgerEntry),
        (REIMBURSEMENT_COLUMNS, reports._REIMBURSEMENTS, Reimbursement),
        (INVENTORY_COLUMNS, reports._INVENTORY, FbaInventoryRow),
    ):
        assert len(columns) == len(converters) == len(fields(row))
