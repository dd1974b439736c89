"""The mock seller's FBA history and the three report documents generated from it.

A seeded event history with known truth, laid over the market's listings the first time a
report needs it (dated back from the mock's clock then): units lost in the warehouse (reason M,
Unreconciled Quantity), lost and found again (F), lost and reimbursed in full or in part,
damaged in the warehouse (E) with and without a reimbursement, a loss older than the claim
window, and the ordinary traffic that is no claim at all (receipts, shipments, returns,
disposition changes, carrier and customer damage). ``expected()`` says what an audit must
find. Nothing here speaks HTTP: ``reports.py`` serves it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from connectors.mock.market import MockListing
from domain.fba import INVENTORY_COLUMNS, LEDGER_COLUMNS, REIMBURSEMENT_COLUMNS
from domain.listings import Fulfillment

FC = ("PHX7", "ONT8", "BFI4", "MDW2")


@dataclass(frozen=True, slots=True)
class Scenario:
    """One FNSKU's story: a loss or damage, what settled it, and what is left to claim."""

    name: str
    reason: str  # M (lost) or E (damaged)
    units: int
    days_ago: int
    found: int = 0
    reimbursed: int = 0
    reimbursed_inventory: int = 0  # of ``reimbursed``, paid back in units rather than cash

    @property
    def open(self) -> int:
        """Units neither found nor reimbursed."""
        return self.units - self.found - self.reimbursed


# The truth of the seeded history (the claim window is 60 days: 75 days ago is expired).
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("lost", "M", 3, 10),
    Scenario("lost-found", "M", 2, 20, found=2),
    Scenario("lost-reimbursed", "M", 4, 25, reimbursed=4),
    Scenario("lost-partly-reimbursed", "M", 5, 12, reimbursed=2),
    Scenario("damaged", "E", 2, 9),
    Scenario("damaged-reimbursed", "E", 3, 30, reimbursed=3, reimbursed_inventory=2),
    Scenario("lost-expired", "M", 1, 75),
    Scenario("lost-partly-found", "M", 2, 5, found=1),
    Scenario("damaged-partly-reimbursed", "E", 4, 14, reimbursed=1),
)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One Inventory Ledger event of the mock's history."""

    at: datetime
    fnsku: str
    asin: str
    msku: str
    title: str
    event_type: str
    reference_id: str
    quantity: int
    fc: str
    disposition: str
    reason: str = ""
    reconciled: int | None = None
    unreconciled: int | None = None


@dataclass(frozen=True, slots=True)
class ReimbursementRow:
    """One reimbursement the mock's Amazon has paid."""

    at: datetime
    reimbursement_id: str
    reason: str
    msku: str
    fnsku: str
    asin: str
    title: str
    currency: str
    per_unit: Decimal
    cash: int
    inventory: int


@dataclass
class MockReport:
    """A requested report and its timeline on the mock's clock."""

    report_id: str
    report_type: str
    marketplace_ids: list[str]
    start: datetime
    end: datetime
    created: datetime
    created_mono: float
    outcome: str = "DONE"  # DONE | FATAL | CANCELLED, decided at creation
    status: str = "IN_QUEUE"
    started: datetime | None = None
    ended: datetime | None = None
    document_id: str | None = None


@dataclass
class FbaHistory:
    """Reports requested of the mock and the seeded FBA history they are cut from."""

    processing_s: float = 2.0
    # Outcomes forced on the next reports (tests of FATAL / CANCELLED), first one first.
    forced: list[str] = field(default_factory=list)
    reports: dict[str, MockReport] = field(default_factory=dict)
    ledger: list[LedgerRow] = field(default_factory=list)
    reimbursements: list[ReimbursementRow] = field(default_factory=list)
    # FNSKU -> scenario (the truth ``expected()`` reads).
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    seeded: bool = False
    next_id: int = 51_000_000_000

    def new_id(self) -> str:
        """Report ids are numeric strings, as Amazon's are."""
        self.next_id += 1
        return str(self.next_id)

    def seed(self, listings: list[MockListing], now: datetime) -> None:
        """Lay the scenarios over ``listings`` (cycling), dated back from ``now``; once."""
        if self.seeded or not listings:
            return
        self.seeded = True
        for serial, scenario in enumerate(SCENARIOS, start=1):
            self._lay(serial, scenario, listings[(serial - 1) % len(listings)], now)

    def _lay(self, serial: int, scenario: Scenario, listing: MockListing, now: datetime) -> None:
        """The ledger events (and reimbursement) of one scenario on one listing."""
        fnsku = f"X0{serial:02d}{_digest(listing.sku)[:6]}"
        self.scenarios[fnsku] = scenario
        fc = FC[serial % len(FC)]
        at = (now - timedelta(days=scenario.days_ago)).replace(microsecond=0)
        title = f"Item {listing.sku}"

        def event(
            when: datetime, kind: str, ref: str, units: int, disposition: str, reason: str = ""
        ) -> None:
            self.ledger.append(
                LedgerRow(
                    when,
                    fnsku,
                    listing.external_id,
                    listing.sku,
                    title,
                    kind,
                    ref,
                    units,
                    fc,
                    disposition,
                    reason,
                )
            )

        # Ordinary traffic: a receipt long before, a shipment and its return, a disposition
        # change (Q out, P in) and a customer-damaged return: none of it is a claim.
        order = f"113-{serial:07d}-0000001"
        event(at - timedelta(days=40), "Receipts", f"FBA15{serial:07d}", 20, "SELLABLE")
        event(at - timedelta(days=2), "Shipments", order, -2, "SELLABLE")
        event(at - timedelta(days=1), "CustomerReturns", order, 1, "CUSTOMER_DAMAGED")
        moved = f"{7_000_000_000 + serial}"
        event(at - timedelta(hours=20), "Adjustments", moved, -1, "SELLABLE", "Q")
        event(at - timedelta(hours=20), "Adjustments", moved, 1, "WAREHOUSE_DAMAGED", "P")
        hurt = f"{7_100_000_000 + serial}"
        event(at - timedelta(hours=10), "Adjustments", hurt, -1, "CUSTOMER_DAMAGED", "H")
        # The loss or damage itself, with Amazon's own reconciliation of it.
        ref = f"{8_000_000_000 + serial}"
        self.ledger.append(
            LedgerRow(
                at,
                fnsku,
                listing.external_id,
                listing.sku,
                title,
                "Adjustments",
                ref,
                -scenario.units,
                fc,
                "SELLABLE",
                scenario.reason,
                reconciled=scenario.found + scenario.reimbursed,
                unreconciled=scenario.open,
            )
        )
        if scenario.reason == "E":
            # Damaged units move to warehouse-damaged (a P code always follows an E).
            event(at, "Adjustments", ref, scenario.units, "WAREHOUSE_DAMAGED", "P")
        if scenario.found:
            found = f"{8_500_000_000 + serial}"
            event(at + timedelta(days=2), "Adjustments", found, scenario.found, "SELLABLE", "F")
        if scenario.reimbursed:
            per_unit = (listing.price * Decimal("0.6")).quantize(Decimal("0.01"))
            inventory = scenario.reimbursed_inventory
            self.reimbursements.append(
                ReimbursementRow(
                    at + timedelta(days=4),
                    f"{3_000_000_000 + serial}",
                    "Lost_Warehouse" if scenario.reason == "M" else "Damaged_Warehouse",
                    listing.sku,
                    fnsku,
                    listing.external_id,
                    title,
                    listing.currency,
                    per_unit,
                    scenario.reimbursed - inventory,
                    inventory,
                )
            )

    def expected(self) -> dict[str, dict[str, tuple[int, int]]]:
        """FNSKU -> {lost|damaged: (claimable units, expired units)} an audit must report."""
        out: dict[str, dict[str, tuple[int, int]]] = {}
        for fnsku, scenario in self.scenarios.items():
            if scenario.open <= 0:
                continue
            kind = "lost" if scenario.reason == "M" else "damaged"
            expired = scenario.days_ago > 60
            out[fnsku] = {kind: (0, scenario.open) if expired else (scenario.open, 0)}
        return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest().upper()


def _tsv(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    lines = ["\t".join(header)] + ["\t".join(row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def ledger_tsv(history: FbaHistory, start: datetime, end: datetime) -> bytes:
    """``GET_LEDGER_DETAIL_VIEW_DATA``: the events whose time falls in [start, end]."""
    rows = [
        [
            row.at.strftime("%m/%d/%Y"),
            row.fnsku,
            row.asin,
            row.msku,
            row.title,
            row.event_type,
            row.reference_id,
            str(row.quantity),
            row.fc,
            row.disposition,
            row.reason,
            "US",
            "" if row.reconciled is None else str(row.reconciled),
            "" if row.unreconciled is None else str(row.unreconciled),
            _stamp(row.at),
        ]
        for row in sorted(history.ledger, key=lambda r: (r.at, r.reference_id))
        if start <= row.at <= end
    ]
    return _tsv(LEDGER_COLUMNS, rows)


def reimbursements_tsv(history: FbaHistory, start: datetime, end: datetime) -> bytes:
    """``GET_FBA_REIMBURSEMENTS_DATA``: the reimbursements approved in [start, end]."""
    rows = []
    for row in sorted(history.reimbursements, key=lambda r: r.at):
        if not start <= row.at <= end:
            continue
        total = row.cash + row.inventory
        rows.append(
            [
                _stamp(row.at),
                row.reimbursement_id,
                "",
                "",
                row.reason,
                row.msku,
                row.fnsku,
                row.asin,
                row.title,
                "New",
                row.currency,
                f"{row.per_unit}",
                f"{row.per_unit * row.cash}",
                str(row.cash),
                str(row.inventory),
                str(total),
                "",
                "",
            ]
        )
    return _tsv(REIMBURSEMENT_COLUMNS, rows)


def inventory_tsv(listings: list[MockListing]) -> bytes:
    """``GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA``: every listing's stock as it is now."""
    rows = []
    for listing in listings:
        fba = listing.fulfillment is Fulfillment.MARKETPLACE
        units = str(listing.quantity) if fba else "0"
        rows.append(
            [
                listing.sku,
                f"X00{_digest(listing.sku)[:7]}" if fba else listing.external_id,
                listing.external_id,
                f"Item {listing.sku}",
                "New",
                f"{listing.price}",
                "No" if fba else "Yes",
                "" if fba else str(listing.quantity),
                "Yes" if fba else "No",
                units,
                units,
                "0",
                "0",
                units,
                "0.12",
                "0",
                "0",
                "0",
                "0",
                "0",
                "0",
            ]
        )
    return _tsv(INVENTORY_COLUMNS, rows)
