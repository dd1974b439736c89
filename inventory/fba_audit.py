"""The FBA lost/damaged audit: what Amazon lost or damaged in its warehouses and never made good.

Per FNSKU over a window, from the Inventory Ledger and the Reimbursements report:

- **lost**: units adjusted out as misplaced (reason M, 5), minus units found again (F), minus
  units reimbursed for warehouse loss (``Lost_Warehouse``, net of ``Reimbursement_Reversal``
  rows that take one back), never more than the lost events'
  own Unreconciled Quantity when Amazon reports it;
- **damaged**: units adjusted out as damaged in the fulfilment centre (E), minus units
  reimbursed for warehouse damage (``Damaged_Warehouse``), capped the same way.

Found units and reimbursements settle the oldest events first, so the units still open are the
newest ones; each is claimable until its event date plus the claim window in force today
(older ones are reported as expired, not claimed). A case carries the units, their value (the
FNSKU's latest reimbursed amount per unit, else the catalogue cost), the evidence (reference ids,
dates, fulfilment centres), the claim deadline and a text ready to paste into a Seller Central
case.

Both the reason-code table and the claim window are dated data with their source.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from domain.fba import LedgerEntry, Reimbursement


class Kind(StrEnum):
    """What happened to a unit, as far as the audit is concerned."""

    LOST = "lost"
    FOUND = "found"
    DAMAGED = "damaged"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ReasonCode:
    """One inventory adjustment reason code of the ledger's ``Reason`` column."""

    code: str
    sign: str  # "+" or "-"
    description: str
    kind: Kind


# Amazon's inventory adjustment reason codes ("Inventory adjustments", Seller Central help
# 200372710; the same table in 200453260), as read on 2026-12-08. Only the warehouse's own loss
# (M, 5) and damage (E) are claims here: 6 is the inbound carrier's (an inbound-shipment
# claim), 7, H, K and U are expired, customer-, defect- and distributor-damaged units, and
# Q/P/O/1-4/J are moves between dispositions or catalogue records, not losses. N (a transfer
# from the holding account) is how an inventory reimbursement arrives, and the Reimbursements
# report already counts it: it is not "found".
REASON_CODES_AS_OF = date(2026, 12, 8)
REASON_CODES_SOURCE = (
    "https://sellercentral.amazon.com/gp/help/external/200372710 ; "
    "https://sellercentral.amazon.com/gp/help/external/200453260"
)
REASON_CODES: Mapping[str, ReasonCode] = {
    c.code: c
    for c in (
        ReasonCode("1", "+", "Software correction of inventory discrepancies", Kind.OTHER),
        ReasonCode("2", "-", "Software correction of inventory discrepancies", Kind.OTHER),
        ReasonCode("3", "+", "Product redefinition, transfer in", Kind.OTHER),
        ReasonCode("4", "-", "Product redefinition, transfer out", Kind.OTHER),
        ReasonCode("5", "-", "Unrecoverable inventory", Kind.LOST),
        ReasonCode("6", "-", "Damaged by inbound carrier", Kind.OTHER),
        ReasonCode("7", "-", "Damage to expired unit", Kind.OTHER),
        ReasonCode("D", "-", "Destroyed / disposed of", Kind.OTHER),
        ReasonCode("E", "-", "Damaged at Amazon fulfillment center", Kind.DAMAGED),
        ReasonCode("F", "+", "Inventory found", Kind.FOUND),
        ReasonCode("H", "-", "Damaged - customer return", Kind.OTHER),
        ReasonCode("J", "+", "Software correction of inventory discrepancies", Kind.OTHER),
        ReasonCode("K", "-", "Damaged as result of item defect", Kind.OTHER),
        ReasonCode("M", "-", "Inventory misplaced", Kind.LOST),
        ReasonCode("N", "+", "Transfer from holding account", Kind.OTHER),
        ReasonCode("O", "-", "Inventory correction", Kind.OTHER),
        ReasonCode("P", "+", "Inventory disposition change", Kind.OTHER),
        ReasonCode("Q", "-", "Damaged - miscellaneous / disposition change", Kind.OTHER),
        ReasonCode("U", "-", "Damaged - distributor", Kind.OTHER),
    )
}
ADJUSTMENTS = "Adjustments"  # the ledger's Event Type of reason-coded adjustments

# The Reimbursements report's ``reason`` values that settle a warehouse loss or damage.
REIMBURSEMENT_KINDS: Mapping[str, Kind] = {
    "Lost_Warehouse": Kind.LOST,
    "Damaged_Warehouse": Kind.DAMAGED,
}
# A reimbursement taken back (typically: the lost unit was found after all, and the ledger then
# shows it as found, F). Its row names the reversed one's reason in original-reimbursement-type;
# left uncounted, the unit would be settled twice, by the find and by the reimbursement.
REVERSAL = "Reimbursement_Reversal"


@dataclass(frozen=True, slots=True)
class ClaimWindow:
    """How long after an item is reported lost or damaged a manual claim may be filed."""

    effective: date
    days: int
    source: str


# FBA lost and damaged inventory reimbursement policy, fulfilment-centre operations claims.
# Until 2024-10-22: 18 months. From 2024-10-23: "no later than 60 days after the item was
# reported lost or damaged" (Amazon's announcement of 2024-07-24; policy page G200213130).
# Since 2024-11-01 Amazon reimburses most warehouse losses on its own: a claim is for what it
# missed.
CLAIM_WINDOWS: tuple[ClaimWindow, ...] = (
    ClaimWindow(
        date(2016, 1, 1), 548, "https://sellercentral.amazon.com/gp/help/external/G200213130"
    ),
    ClaimWindow(
        date(2024, 10, 23),
        60,
        "https://sellercentral.amazon.com/seller-forums/discussions/t/"
        "6605eede-df8e-4498-803f-cb612d95d7ce ; "
        "https://sellercentral.amazon.com/gp/help/external/G200213130",
    ),
)


def claim_window(on: date) -> ClaimWindow:
    """The claim window in force on ``on`` (the newest one effective by then)."""
    current = CLAIM_WINDOWS[0]
    for window in CLAIM_WINDOWS:
        if window.effective <= on:
            current = window
    return current


@dataclass(frozen=True, slots=True)
class Evidence:
    """One ledger event a claim rests on, with the units of it still open."""

    reference_id: str
    day: date
    fulfillment_center: str
    reason: str
    units: int
    deadline: date


@dataclass(frozen=True, slots=True)
class Case:
    """A claim (or a loss whose window has closed) for one FNSKU and one kind."""

    fnsku: str
    msku: str
    asin: str
    title: str
    kind: Kind  # LOST | DAMAGED
    units: int
    unit_value: Decimal | None
    value_source: str  # reimbursement | cost | unknown
    currency: str
    evidence: tuple[Evidence, ...]
    claimable: bool
    deadline: date  # the earliest deadline among the evidence
    affected: int  # units lost/damaged in the window
    settled: int  # of which found or reimbursed

    @property
    def value(self) -> Decimal | None:
        """Units × unit value (None when no value is known)."""
        return None if self.unit_value is None else (self.unit_value * self.units)

    @property
    def text(self) -> str:
        """A case text ready to paste into Seller Central's "Lost and damaged inventory" form."""
        what = "lost (misplaced)" if self.kind is Kind.LOST else "damaged"
        lines = [
            f"Hello, {self.units} unit(s) of FNSKU {self.fnsku} (SKU {self.msku}, "
            f"ASIN {self.asin}) were {what} in your fulfillment centers and have been neither "
            "found nor reimbursed.",
            "Inventory Ledger events:",
        ]
        lines += [
            f"- Reference ID {e.reference_id}, {e.day.isoformat()}, {e.fulfillment_center}, "
            f"reason {e.reason}: {e.units} unit(s) open"
            for e in self.evidence
        ]
        if self.unit_value is not None:
            lines.append(
                f"Value: {self.units} x {self.unit_value} {self.currency} = "
                f"{self.value} {self.currency}."
            )
        lines.append(
            "Please reimburse these units under the FBA lost and damaged inventory "
            "reimbursement policy."
        )
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class AuditReport:
    """The cases of one audit run, claimable ones first."""

    since: date
    today: date
    window: ClaimWindow
    cases: tuple[Case, ...]

    @property
    def claimable(self) -> tuple[Case, ...]:
        """Cases that can still be filed."""
        return tuple(c for c in self.cases if c.claimable)

    @property
    def expired(self) -> tuple[Case, ...]:
        """Open units whose claim window has closed."""
        return tuple(c for c in self.cases if not c.claimable)


def _kind(entry: LedgerEntry) -> Kind:
    if entry.event_type != ADJUSTMENTS:
        return Kind.OTHER
    code = REASON_CODES.get(entry.reason)
    return code.kind if code is not None else Kind.OTHER


def audit(
    ledger: Iterable[LedgerEntry],
    reimbursements: Iterable[Reimbursement],
    *,
    since: date,
    today: date,
    cost_by_sku: Mapping[str, Decimal] | None = None,
    currency: str = "USD",
) -> AuditReport:
    """The open lost and damaged units per FNSKU among events dated ``since``..``today``."""
    window = claim_window(today)
    events: dict[tuple[str, Kind], list[LedgerEntry]] = defaultdict(list)
    found: dict[str, int] = defaultdict(int)
    names: dict[str, LedgerEntry] = {}
    for entry in ledger:
        if not since <= entry.day <= today:
            continue
        names.setdefault(entry.fnsku, entry)
        kind = _kind(entry)
        if kind in (Kind.LOST, Kind.DAMAGED) and entry.quantity < 0:
            events[(entry.fnsku, kind)].append(entry)
        elif kind is Kind.FOUND and entry.quantity > 0:
            found[entry.fnsku] += entry.quantity
    reimbursed: dict[tuple[str, Kind], int] = defaultdict(int)
    latest: dict[str, Reimbursement] = {}
    for row in reimbursements:
        # A reimbursement of an event inside the window is approved on or after that event.
        if row.approved_at.date() < since:
            continue
        settles = REIMBURSEMENT_KINDS.get(row.reason)
        if settles is not None:
            reimbursed[(row.fnsku, settles)] += row.quantity_total
        elif row.reason == REVERSAL:
            reversed_kind = REIMBURSEMENT_KINDS.get(row.original_reimbursement_type)
            if reversed_kind is not None:
                # Whatever sign the report gives the reversed quantity, it takes units back.
                reimbursed[(row.fnsku, reversed_kind)] -= abs(row.quantity_total)
        if row.amount_per_unit is not None and row.amount_per_unit > 0:
            best = latest.get(row.fnsku)
            if best is None or row.approved_at > best.approved_at:
                latest[row.fnsku] = row
    cases = []
    for (fnsku, kind), entries in sorted(events.items()):
        affected = sum(-e.quantity for e in entries)
        settled = reimbursed[(fnsku, kind)] + (found[fnsku] if kind is Kind.LOST else 0)
        open_units = affected - settled
        unreconciled = [e.unreconciled_quantity for e in entries]
        if all(u is not None for u in unreconciled):
            # Amazon's own view of what is still open on these events caps ours.
            open_units = min(open_units, sum(abs(u or 0) for u in unreconciled))
        if open_units <= 0:
            continue
        name = names[fnsku]
        value, source = _value(latest.get(fnsku), (cost_by_sku or {}).get(name.msku))
        cur = latest[fnsku].currency if fnsku in latest and source == "reimbursement" else currency
        for claimable, evidence in _allocate(entries, open_units, window, today):
            cases.append(
                Case(
                    fnsku=fnsku,
                    msku=name.msku,
                    asin=name.asin,
                    title=name.title,
                    kind=kind,
                    units=sum(e.units for e in evidence),
                    unit_value=value,
                    value_source=source,
                    currency=cur,
                    evidence=evidence,
                    claimable=claimable,
                    deadline=min(e.deadline for e in evidence),
                    affected=affected,
                    settled=settled,
                )
            )
    cases.sort(key=lambda c: (not c.claimable, c.deadline, c.fnsku, c.kind))
    return AuditReport(since=since, today=today, window=window, cases=tuple(cases))


def _value(latest: Reimbursement | None, cost: Decimal | None) -> tuple[Decimal | None, str]:
    if latest is not None and latest.amount_per_unit is not None:
        return latest.amount_per_unit, "reimbursement"
    if cost is not None:
        return cost, "cost"
    return None, "unknown"


def _allocate(
    entries: list[LedgerEntry], open_units: int, window: ClaimWindow, today: date
) -> list[tuple[bool, tuple[Evidence, ...]]]:
    """Spread the open units over the newest events; split them by whether still claimable."""
    left = open_units
    claimable: list[Evidence] = []
    expired: list[Evidence] = []
    for entry in sorted(entries, key=lambda e: (e.occurred_at, e.reference_id), reverse=True):
        if left <= 0:
            break
        units = min(left, -entry.quantity)
        left -= units
        deadline = entry.day + timedelta(days=window.days)
        evidence = Evidence(
            entry.reference_id, entry.day, entry.fulfillment_center, entry.reason, units, deadline
        )
        (claimable if deadline >= today else expired).append(evidence)
    out = []
    if claimable:
        out.append((True, tuple(sorted(claimable, key=lambda e: (e.day, e.reference_id)))))
    if expired:
        out.append((False, tuple(sorted(expired, key=lambda e: (e.day, e.reference_id)))))
    return out
