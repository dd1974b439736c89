"""The FBA report rows are stored once by their natural keys, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from connectors.amazon.reports import ReportOutcome
from daemon.db.engine import Database
from daemon.db.models import FbaLedgerEvent
from daemon.fba_audit import UNREADABLE, audit_channels, fetch_reports, load_audit, store
from domain.fba import (
    INVENTORY_COLUMNS,
    INVENTORY_REPORT,
    LEDGER_COLUMNS,
    LEDGER_REPORT,
    REIMBURSEMENT_COLUMNS,
    REIMBURSEMENTS_REPORT,
)

NOW = datetime(2026, 12, 8, 12, tzinfo=UTC)
LEDGER = FbaLedgerEvent.__table__  # type: ignore[attr-defined]


def _ledger(*rows: list[str]) -> str:
    return "\n".join(["\t".join(LEDGER_COLUMNS), *("\t".join(r) for r in rows)]) + "\n"


def _row(ref: str, quantity: str, reason: str, unreconciled: str = "") -> list[str]:
    return [
        "12/01/2026", "X001", "B000000001", "MUG-1", "Mug", "Adjustments", ref, quantity,
        "PHX7", "SELLABLE", reason, "US", "", unreconciled, "2026-12-01T10:00:00Z",
    ]  # fmt: skip


async def test_a_re_read_adds_nothing_and_refreshes_amazons_reconciliation(db: Database) -> None:
    document = _ledger(_row("8001", "-3", "M", "3"), _row("8002", "1", "F"), _row("8002", "1", "F"))
    assert await store(db, "amz", LEDGER_REPORT, document, NOW) == (3, 2)
    assert await store(db, "amz", LEDGER_REPORT, document, NOW) == (3, 0)
    # Amazon reconciled two of the lost units meanwhile: same row, new counts.
    later = _ledger(_row("8001", "-3", "M", "1"), _row("8002", "1", "F"))
    assert await store(db, "amz", LEDGER_REPORT, later, NOW + timedelta(days=1)) == (2, 0)
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(LEDGER).order_by(LEDGER.c.reference_id))).all()
    assert [(r.reference_id, r.unreconciled_quantity) for r in rows] == [
        ("8001", 1),
        ("8002", None),
    ]
    # Another channel's identical row is its own.
    assert await store(db, "amz-eu", LEDGER_REPORT, document, NOW) == (3, 2)
    paid = "\t".join(REIMBURSEMENT_COLUMNS) + "\n" + "\t".join(
        ["2026-12-03T00:00:00+00:00", "3001", "", "", "Lost_Warehouse", "MUG-1", "X001",
         "B000000001", "Mug", "New", "USD", "9.50", "9.50", "1", "0", "1", "", ""]
    )  # fmt: skip
    assert await store(db, "amz", REIMBURSEMENTS_REPORT, paid, NOW) == (1, 1)
    assert await store(db, "amz", REIMBURSEMENTS_REPORT, paid, NOW) == (1, 0)
    report = await load_audit(
        db, ["amz"], since=date(2026, 11, 1), today=NOW.date(), currency="USD"
    )
    # 3 lost, 1 found, 1 reimbursed; Amazon's unreconciled 1 agrees: one unit to claim.
    [case] = report.cases
    assert (case.units, str(case.unit_value), case.value_source) == (1, "9.50", "reimbursement")


class _Reports:
    """A Reports API stand-in: every report DONE with the given document."""

    def __init__(self, documents: dict[str, str]) -> None:
        self.documents = documents

    async def fetch(self, report_type: str, start: datetime, end: datetime) -> ReportOutcome:
        return ReportOutcome(report_type, "1", "DONE", self.documents[report_type])


async def test_an_unreadable_document_does_not_stop_the_other_reports(db: Database) -> None:
    """The ledger's document lacks a column: it is reported (not DONE), the others are stored."""
    broken = "\t".join(c for c in LEDGER_COLUMNS if c != "Reason") + "\n"
    paid = "\t".join(REIMBURSEMENT_COLUMNS) + "\n"
    stock = "\t".join(INVENTORY_COLUMNS) + "\n" + "\t".join(
        ["MUG-1", "X001", "B000000001", "Mug", "New", "19.99", "No", "", "Yes", "5", "5", "0",
         "0", "5", "0.1", "0", "0", "0", "0", "0", "0"]
    )  # fmt: skip
    reports: Any = _Reports(
        {LEDGER_REPORT: broken, REIMBURSEMENTS_REPORT: paid, INVENTORY_REPORT: stock}
    )
    lines: list[str] = []

    async def sleep(_: float) -> None:
        return None

    fetched = await fetch_reports(
        db, "amz", reports, start=NOW, end=NOW, now=NOW, sleep=sleep, progress=lines.append
    )
    assert [(f.report_type, f.status, f.added) for f in fetched] == [
        (LEDGER_REPORT, UNREADABLE, 0),
        (REIMBURSEMENTS_REPORT, "DONE", 0),
        (INVENTORY_REPORT, "DONE", 1),
    ]
    assert any("lacks column(s) Reason" in line for line in lines)


async def test_rows_that_differ_only_in_disposition_are_both_kept(db: Database) -> None:
    """A customer return of one sellable and one damaged unit: two rows, same time, order,
    quantity and centre; both are stored (and a re-read still adds nothing)."""
    sellable = _row("111-1", "1", "")
    damaged = [*sellable[:9], "CUSTOMER_DAMAGED", *sellable[10:]]
    for row in (sellable, damaged):
        row[5] = "CustomerReturns"
    document = _ledger(sellable, damaged)
    assert await store(db, "amz", LEDGER_REPORT, document, NOW) == (2, 2)
    assert await store(db, "amz", LEDGER_REPORT, document, NOW) == (2, 0)


async def test_each_channel_is_audited_on_its_own(db: Database) -> None:
    """Two Amazon accounts sharing an FNSKU: units found in one do not settle the other's loss,
    and each case carries its own account's currency."""
    assert await store(db, "amz-us", LEDGER_REPORT, _ledger(_row("8001", "-2", "M")), NOW) == (
        1,
        1,
    )
    assert await store(db, "amz-ca", LEDGER_REPORT, _ledger(_row("8002", "2", "F")), NOW) == (
        1,
        1,
    )
    report = await audit_channels(
        db, {"amz-us": "USD", "amz-ca": "CAD"}, since=date(2026, 11, 1), today=NOW.date()
    )
    [case] = report.cases
    assert (case.units, case.currency, [e.reference_id for e in case.evidence]) == (
        2,
        "USD",
        ["8001"],
    )


async def test_line_items_of_one_reimbursement_are_all_kept(db: Database) -> None:
    """One reimbursement id for two orders of one FNSKU, and a reversal carrying that id: three
    rows, all stored; a re-read adds nothing."""

    def line(order: str, reason: str, quantity: str) -> str:
        return "\t".join(
            ["2026-12-03T00:00:00+00:00", "3001", "", order, reason, "MUG-1", "X001",
             "B000000001", "Mug", "New", "USD", "9.50", "9.50", quantity, "0", quantity, "", ""]
        )  # fmt: skip

    paid = "\n".join(
        [
            "\t".join(REIMBURSEMENT_COLUMNS),
            line("111-1", "CustomerReturn", "1"),
            line("111-2", "CustomerReturn", "1"),
            line("", "Reimbursement_Reversal", "-1"),
        ]
    )
    assert await store(db, "amz", REIMBURSEMENTS_REPORT, paid, NOW) == (3, 3)
    assert await store(db, "amz", REIMBURSEMENTS_REPORT, paid, NOW) == (3, 0)
