"""The pure FBA lost/damaged audit on hand-made ledgers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from domain.fba import LedgerEntry, Reimbursement
from inventory.fba_audit import (
    CLAIM_WINDOWS,
    REASON_CODES,
    AuditReport,
    Kind,
    audit,
    claim_window,
)

TODAY = date(2026, 12, 8)
SINCE = TODAY - timedelta(days=90)
COST = {"MUG-1": Decimal("7.50")}


def _event(
    days_ago: int,
    quantity: int,
    reason: str,
    *,
    ref: str = "",
    fnsku: str = "X001",
    event_type: str = "Adjustments",
    unreconciled: int | None = None,
    fc: str = "PHX7",
) -> LedgerEntry:
    day = TODAY - timedelta(days=days_ago)
    return LedgerEntry(
        day=day,
        fnsku=fnsku,
        asin="B000000001",
        msku="MUG-1",
        title="Mug",
        event_type=event_type,
        reference_id=ref or f"R{days_ago}{reason}{quantity}",
        quantity=quantity,
        fulfillment_center=fc,
        disposition="SELLABLE",
        reason=reason,
        country="US",
        reconciled_quantity=None,
        unreconciled_quantity=unreconciled,
        occurred_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
    )


def _paid(
    days_ago: int,
    quantity: int,
    reason: str = "Lost_Warehouse",
    *,
    fnsku: str = "X001",
    per_unit: str = "9.00",
) -> Reimbursement:
    day = TODAY - timedelta(days=days_ago)
    return Reimbursement(
        approved_at=datetime(day.year, day.month, day.day, 8, tzinfo=UTC),
        reimbursement_id=f"RB{days_ago}{quantity}",
        case_id="",
        amazon_order_id="",
        reason=reason,
        sku="MUG-1",
        fnsku=fnsku,
        asin="B000000001",
        product_name="Mug",
        condition="New",
        currency="USD",
        amount_per_unit=Decimal(per_unit),
        amount_total=Decimal(per_unit) * quantity,
        quantity_cash=quantity,
        quantity_inventory=0,
        quantity_total=quantity,
        original_reimbursement_id="",
        original_reimbursement_type="",
    )


def _run(ledger: list[LedgerEntry], paid: list[Reimbursement] | None = None) -> AuditReport:
    return audit(ledger, paid or [], since=SINCE, today=TODAY, cost_by_sku=COST)


def test_lost_then_found_is_no_claim() -> None:
    report = _run([_event(20, -2, "M"), _event(15, 2, "F")])
    assert report.cases == ()


def test_lost_and_reimbursed_is_no_claim() -> None:
    report = _run([_event(20, -4, "M")], [_paid(10, 4)])
    assert report.cases == ()


def test_partly_reimbursed_claims_the_rest_at_the_reimbursed_unit_value() -> None:
    report = _run([_event(12, -5, "M", ref="8001")], [_paid(8, 2, per_unit="11.25")])
    [case] = report.cases
    assert (case.kind, case.units, case.claimable) == (Kind.LOST, 3, True)
    assert (case.unit_value, case.value, case.value_source) == (
        Decimal("11.25"),
        Decimal("33.75"),
        "reimbursement",
    )
    assert (case.affected, case.settled) == (5, 2)
    [evidence] = case.evidence
    assert (evidence.reference_id, evidence.fulfillment_center, evidence.units) == (
        "8001",
        "PHX7",
        3,
    )
    assert case.deadline == TODAY - timedelta(days=12) + timedelta(days=60)
    assert "8001" in case.text
    assert "X001" in case.text
    assert "33.75 USD" in case.text


def test_lost_then_partly_found_claims_the_rest_valued_at_cost() -> None:
    report = _run([_event(5, -2, "M"), _event(3, 1, "F")])
    [case] = report.cases
    assert (case.units, case.unit_value, case.value_source) == (1, Decimal("7.50"), "cost")


def test_damaged_with_unreconciled_quantity_is_claimed_up_to_it() -> None:
    # Four damaged, one reimbursed; Amazon says two are still unreconciled: two are claimed.
    report = _run(
        [_event(9, -4, "E", unreconciled=2), _event(9, 4, "P")],
        [_paid(5, 1, "Damaged_Warehouse")],
    )
    [case] = report.cases
    assert (case.kind, case.units, case.claimable) == (Kind.DAMAGED, 2, True)


def test_damaged_not_reimbursed_is_claimed_and_a_lost_reimbursement_does_not_settle_it() -> None:
    report = _run([_event(9, -2, "E")], [_paid(5, 2, "Lost_Warehouse")])
    [case] = report.cases
    assert (case.kind, case.units) == (Kind.DAMAGED, 2)


def test_outside_the_claim_window_is_reported_expired_not_claimed() -> None:
    report = _run([_event(75, -1, "M", ref="old"), _event(10, -3, "M", ref="new")])
    assert [(c.claimable, c.units) for c in report.cases] == [(True, 3), (False, 1)]
    expired = report.expired[0]
    assert expired.evidence[0].reference_id == "old"
    assert expired.deadline < TODAY
    assert sum(c.units for c in report.claimable) == 3


def test_found_units_settle_the_oldest_loss_first() -> None:
    # The old loss (expired) is the one found again: the newer one stays claimable.
    report = _run(
        [_event(75, -1, "M", ref="old"), _event(10, -1, "M", ref="new"), _event(5, 1, "F")]
    )
    [case] = report.cases
    assert case.claimable
    assert case.evidence[0].reference_id == "new"


def test_no_claim_for_disposition_changes_carrier_customer_damage_or_other_events() -> None:
    ledger = [
        _event(10, -1, "Q"),
        _event(10, 1, "P"),
        _event(10, -1, "6"),
        _event(10, -1, "H"),
        _event(10, -1, "K"),
        _event(10, -1, "D"),
        _event(10, -3, "", event_type="Shipments"),
        _event(10, -2, "M", event_type="Shipments"),  # a reason on a non-adjustment row
    ]
    assert _run(ledger).cases == ()


def test_events_before_the_window_are_not_audited_and_fnskus_are_separate() -> None:
    ledger = [_event(120, -2, "M"), _event(10, -1, "E", fnsku="X002")]
    [case] = _run(ledger).cases
    assert (case.fnsku, case.kind, case.units) == ("X002", Kind.DAMAGED, 1)


def test_unknown_value_when_no_reimbursement_and_no_cost() -> None:
    report = audit([_event(10, -1, "M")], [], since=SINCE, today=TODAY)
    [case] = report.cases
    assert (case.unit_value, case.value, case.value_source) == (None, None, "unknown")


def test_claim_window_is_dated_data() -> None:
    assert claim_window(date(2024, 10, 22)).days == 548
    assert claim_window(date(2024, 10, 23)).days == 60
    assert claim_window(TODAY) is CLAIM_WINDOWS[-1]
    assert all(w.source.startswith("https://") for w in CLAIM_WINDOWS)
    assert REASON_CODES["M"].kind is Kind.LOST
    assert REASON_CODES["F"].kind is Kind.FOUND
    assert REASON_CODES["E"].kind is Kind.DAMAGED
    assert REASON_CODES["6"].kind is Kind.OTHER


def test_a_reversed_reimbursement_no_longer_settles_the_unit_the_find_settles() -> None:
    # Three lost and two reimbursed; one turned up again (F), so Amazon took back the
    # reimbursement of it. Net: one found, one reimbursed, one still open.
    reversal = replace(
        _paid(5, -1, "Reimbursement_Reversal"),
        reimbursement_id="RBREV",
        original_reimbursement_id="RB102",
        original_reimbursement_type="Lost_Warehouse",
    )
    report = _run([_event(20, -3, "M"), _event(6, 1, "F")], [_paid(10, 2), reversal])
    [case] = report.cases
    assert (case.kind, case.units, case.affected, case.settled) == (Kind.LOST, 1, 3, 2)
