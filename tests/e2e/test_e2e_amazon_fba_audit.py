"""``repricerd audit fba`` end to end against the mock Amazon over loopback: the Reports API,
idempotent storage, the audit of the mock's seeded FBA history, usage plans, FATAL/CANCELLED."""

from __future__ import annotations

import io
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from rich.console import Console

from connectors.amazon import AmazonChannel, AmazonSettings
from connectors.amazon.reports import ReportsClient
from connectors.base import ChannelDeps
from daemon.catalog import import_catalog
from daemon.cli import main
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import FbaInventory, FbaLedgerEvent, FbaReimbursement, InventoryDay, Product
from daemon.fba_audit import Fetched, fetch_reports, render_audit, run_audit
from daemon.inventory_pass import run_inventory
from daemon.settings import InventorySettings, Settings
from domain.clock import ManualClock
from domain.fba import INVENTORY_REPORT, LEDGER_REPORT, REIMBURSEMENTS_REPORT
from inventory.fba_audit import AuditReport
from tests.e2e.amazon_fixtures import (
    CHANNEL,
    PRODUCTS,
    AdvancingSleep,
    Served,
    loaded,
    mock_state,
    served,
    write_config,
)

pytestmark = pytest.mark.usefixtures("credentials")
SINCE = timedelta(days=90)
REPORT_OPS = ("createReport", "getReport", "getReportDocument")


@dataclass
class Harness:
    """The mock, the daemon's settings and database on it, one shared manual clock."""

    mock: Served
    settings: Settings
    config: Path
    db: Database
    clock: ManualClock
    sleep: AdvancingSleep
    http: httpx.AsyncClient

    async def audit(self, *, fetch: bool = True) -> tuple[AuditReport, list[Fetched]]:
        """Run what ``repricerd audit fba`` runs, polling every second."""
        report, fetched = await run_audit(
            self.db,
            self.settings,
            http=self.http,
            clock=self.clock,
            sleep=self.sleep,
            since=SINCE,
            fetch=fetch,
            poll_interval_s=1,
        )
        return report, fetched

    async def force(self, status: str, count: int = 1) -> None:
        """Make the mock's next ``count`` reports end ``status``."""
        answer = await self.http.post(
            f"{self.mock.base_url}/_mock/reports/outcome", json={"status": status, "count": count}
        )
        assert answer.status_code == 200

    async def count(self, model: object) -> int:
        table = model.__table__  # type: ignore[attr-defined]
        async with self.db.read() as conn:
            return int(
                (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()
            )


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = ManualClock()
    sleep = AdvancingSleep(clock)
    state = mock_state(tmp_path, clock=clock, sleep=sleep, ticker_s=None)  # no real-time ticker
    async with served(state) as mock:
        path = write_config(tmp_path, mock.base_url)
        settings = loaded(path).settings
        db = Database(settings.database)
        await upgrade(db)
        await import_catalog(db, tmp_path / "catalogue.csv", clock=clock, known_channels={CHANNEL})
        async with httpx.AsyncClient() as http:
            yield Harness(mock, settings, path, db, clock, sleep, http)
        await db.dispose()


def _found(report: AuditReport) -> dict[str, dict[str, tuple[int, int]]]:
    """FNSKU -> {kind: (claimable units, expired units)}, as the mock's ``expected()`` says."""
    out: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for case in report.cases:
        out[case.fnsku][case.kind.value][0 if case.claimable else 1] += case.units
    return {f: {k: (v[0], v[1]) for k, v in kinds.items()} for f, kinds in out.items()}


async def test_the_audit_finds_every_claimable_unit_and_claims_nothing_settled(
    harness: Harness,
) -> None:
    report, fetched = await harness.audit()
    assert [(f.report_type, f.status, f.attempts) for f in fetched] == [
        (LEDGER_REPORT, "DONE", 1),
        (REIMBURSEMENTS_REPORT, "DONE", 1),
        (INVENTORY_REPORT, "DONE", 1),
    ]
    history = harness.mock.state.fba
    expected = history.expected()
    assert _found(report) == expected
    # The truth of the seeded history: 3 + 3 + 1 lost and 2 + 3 damaged claimable, 1 expired;
    # the found and reimbursed scenarios are not claimed at all.
    claimable = sum(c.units for c in report.claimable)
    assert claimable == 12
    assert sum(c.units for c in report.expired) == 1
    settled = {f for f, s in history.scenarios.items() if s.open == 0}
    assert len(settled) == 3
    assert not settled & {c.fnsku for c in report.cases}
    for case in report.claimable:
        scenario = history.scenarios[case.fnsku]
        if scenario.reimbursed:
            assert case.value_source == "reimbursement"
        else:
            # No reimbursement history for this FNSKU: the catalogue cost.
            assert case.value_source == "cost"
            assert case.unit_value == Decimal(PRODUCTS[case.msku][1])
        assert case.deadline >= harness.clock.now().date()
        assert case.evidence
        assert all(e.reference_id in case.text for e in case.evidence)
    assert await harness.count(FbaInventory) == len(harness.mock.state.market.listings)


async def test_reading_the_same_reports_again_adds_nothing(harness: Harness) -> None:
    first, fetched = await harness.audit()
    rows = (await harness.count(FbaLedgerEvent), await harness.count(FbaReimbursement))
    assert all(f.added == f.rows for f in fetched)
    harness.clock.advance(120)
    again, refetched = await harness.audit()
    assert [f.added for f in refetched] == [0, 0, 0]
    assert [f.rows for f in refetched] == [f.rows for f in fetched]
    assert (await harness.count(FbaLedgerEvent), await harness.count(FbaReimbursement)) == rows
    assert _found(again) == _found(first)
    stored, nothing = await harness.audit(fetch=False)
    assert nothing == []
    assert _found(stored) == _found(first)


async def test_reports_are_fetched_within_the_published_usage_plans(harness: Harness) -> None:
    """Six rounds of the three reports with one client: 18 createReport calls (the burst is
    15, then one a minute) and not one 429 from the mock's buckets."""
    config = harness.settings.channels[CHANNEL]
    assert isinstance(config, AmazonSettings)
    deps = ChannelDeps(http=harness.http, clock=harness.clock, sleep=harness.sleep)
    reports = ReportsClient(AmazonChannel(CHANNEL, config, deps).client, poll_interval_s=1)
    state = harness.mock.state
    started = harness.clock.monotonic()
    for _ in range(6):
        now = harness.clock.now()
        fetched = await fetch_reports(
            harness.db, CHANNEL, reports, start=now - SINCE, end=now, now=now, sleep=harness.sleep
        )
        assert all(f.status == "DONE" for f in fetched)
    assert {op: state.throttled[op] for op in REPORT_OPS} == dict.fromkeys(REPORT_OPS, 0)
    assert state.calls["createReport"] == 18
    assert state.calls["getReportDocument"] == 18
    assert state.calls["getReport"] == 36  # IN_PROGRESS after 1 s, DONE after 2 s
    # Past the burst of 15, createReport and getReportDocument go at 0.0167/s: three more
    # of each took at least three minutes of (manual) time.
    assert harness.clock.monotonic() - started >= 3 / 0.0167


@pytest.mark.parametrize("status", ["FATAL", "CANCELLED"])
async def test_a_fatal_or_cancelled_report_is_asked_again_later_never_parsed(
    harness: Harness, status: str
) -> None:
    await harness.force(status)  # the first (ledger) report fails once
    report, fetched = await harness.audit()
    ledger = fetched[0]
    assert (ledger.status, ledger.attempts) == ("DONE", 2)
    state = harness.mock.state
    # The failed report's document (a FATAL one has Amazon's error summary) was never read.
    assert state.calls["getReportDocument"] == 3
    assert harness.sleep.waits.count(300.0) == 1
    assert _found(report) == state.fba.expected()


async def test_a_report_that_keeps_failing_is_reported_and_the_next_run_reads_it(
    harness: Harness,
) -> None:
    await harness.force("FATAL", 3)
    report, fetched = await harness.audit()
    assert (fetched[0].report_type, fetched[0].status) == (LEDGER_REPORT, "FATAL")
    assert fetched[0].attempts == 3
    assert await harness.count(FbaLedgerEvent) == 0  # nothing parsed from a FATAL report
    assert report.cases == ()
    later, fetched = await harness.audit()
    assert fetched[0].status == "DONE"
    assert _found(later) == harness.mock.state.fba.expected()


async def test_render_and_cli(harness: Harness) -> None:
    report, _ = await harness.audit()
    buffer = io.StringIO()
    render_audit(report, Console(file=buffer, width=200), "table")
    table = buffer.getvalue()
    assert "12 claimable unit(s)" in table
    assert "Please reimburse" in table
    buffer = io.StringIO()
    render_audit(report, Console(file=buffer, width=10_000), "csv")
    lines = buffer.getvalue().splitlines()
    assert lines[0].startswith("claimable,fnsku,msku,asin,kind,units")
    buffer = io.StringIO()
    render_audit(report, Console(file=buffer, width=10_000), "json")
    body = json.loads(buffer.getvalue())
    assert body["claim_window_days"] == 60
    assert sum(c["units"] for c in body["cases"] if c["claimable"]) == 12


def test_the_command_audits_what_is_stored_without_asking_amazon(tmp_path: Path) -> None:
    """``--no-fetch``: no secrets needed, nothing asked of Amazon (the endpoint is closed)."""
    config = str(write_config(tmp_path, "http://127.0.0.1:9"))
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade", "-c", config]).exit_code == 0
    result = runner.invoke(main, ["audit", "fba", "-c", config, "--no-fetch", "--format", "json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["claim_window_days"], body["cases"]) == (60, [])
    csv_out = runner.invoke(main, ["audit", "fba", "-c", config, "--no-fetch", "--format", "csv"])
    assert csv_out.stdout.startswith("claimable,fnsku,msku,asin,kind,units,")
    bad = runner.invoke(main, ["audit", "fba", "-c", config, "--since", "x"])
    assert bad.exit_code == 2
    unknown = runner.invoke(main, ["audit", "fba", "-c", config, "--channel", "nope"])
    assert unknown.exit_code == 1
    # One clear line: the file, the unknown name, and the names there are.
    [line] = unknown.stderr.splitlines()
    assert line == f"error: {config}: no Amazon channel named nope (Amazon channels: {CHANNEL})"


async def test_the_inventory_pass_reads_the_stored_ledger_into_the_fba_pool(
    harness: Harness,
) -> None:
    """After ``audit fba`` stored the mock's seeded ledger, the nightly inventory pass counts
    exactly its shipments as the FBA pool's sales and its sellable arrivals as receipts."""
    await harness.audit()
    await run_inventory(harness.db, harness.clock, InventorySettings())
    now = harness.clock.now()
    sold: dict[tuple[str, date], int] = defaultdict(int)
    received: dict[tuple[str, date], int] = defaultdict(int)
    for row in harness.mock.state.fba.ledger:
        if not now - SINCE <= row.at <= now or row.disposition != "SELLABLE":
            continue
        key = (row.msku, row.at.date())
        if row.event_type == "Shipments":
            sold[key] -= row.quantity
        elif row.quantity > 0 and row.event_type != "WhseTransfers":
            received[key] += row.quantity
    days = InventoryDay.__table__  # type: ignore[attr-defined]
    products = Product.__table__  # type: ignore[attr-defined]
    async with harness.db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(products.c.sku, days.c.day, days.c.sold, days.c.received)
                .join(products, products.c.id == days.c.product_id)
                .where(days.c.pool == CHANNEL)
            )
        ).all()
    assert sum(sold.values()) > 0
    assert {(r.sku, r.day): r.sold for r in rows if r.sold} == {k: v for k, v in sold.items() if v}
    assert {(r.sku, r.day): r.received for r in rows if r.received} == {
        k: v for k, v in received.items() if v
    }
