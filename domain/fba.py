"""Rows of Amazon's FBA reports, typed: the inventory ledger, reimbursements, and the inventory.

The Reports API connector parses the TSV documents into these; the daemon stores them and the
pure FBA audit (``inventory.fba_audit``) reads them. Money is ``Decimal``; times are aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

# The report types the FBA audit reads (Reports API 2021-06-30 ``reportType`` values).
LEDGER_REPORT = "GET_LEDGER_DETAIL_VIEW_DATA"
REIMBURSEMENTS_REPORT = "GET_FBA_REIMBURSEMENTS_DATA"
INVENTORY_REPORT = "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One row of the Inventory Ledger detail view (``GET_LEDGER_DETAIL_VIEW_DATA``)."""

    day: date  # "Date"
    fnsku: str
    asin: str
    msku: str
    title: str
    event_type: str  # Receipts, Shipments, CustomerReturns, Adjustments, ...
    reference_id: str
    quantity: int  # signed: a loss is negative
    fulfillment_center: str
    disposition: str
    reason: str  # the adjustment reason code (M, F, E, ...) on Adjustments rows
    country: str
    reconciled_quantity: int | None
    unreconciled_quantity: int | None
    occurred_at: datetime  # "Date and Time", aware UTC

    def key(self) -> tuple[datetime, str, str, str, int, str, str, str]:
        """The natural key: a re-read of the same row matches it (the report has no row id);
        the disposition tells apart an event's units that differ only in condition."""
        return (
            self.occurred_at,
            self.fnsku,
            self.event_type,
            self.reference_id,
            self.quantity,
            self.fulfillment_center,
            self.reason,
            self.disposition,
        )


@dataclass(frozen=True, slots=True)
class Reimbursement:
    """One row of the FBA reimbursements report (``GET_FBA_REIMBURSEMENTS_DATA``)."""

    approved_at: datetime
    reimbursement_id: str
    case_id: str
    amazon_order_id: str
    reason: str  # Lost_Warehouse, Damaged_Warehouse, Reimbursement_Reversal, ...
    sku: str
    fnsku: str
    asin: str
    product_name: str
    condition: str
    currency: str
    amount_per_unit: Decimal | None
    amount_total: Decimal
    quantity_cash: int
    quantity_inventory: int
    quantity_total: int
    original_reimbursement_id: str
    original_reimbursement_type: str


@dataclass(frozen=True, slots=True)
class FbaInventoryRow:
    """One row of the unsuppressed Manage FBA Inventory report (a snapshot per SKU)."""

    sku: str
    fnsku: str
    asin: str
    product_name: str
    condition: str
    your_price: Decimal | None
    mfn_listing_exists: bool
    mfn_fulfillable: int | None
    afn_listing_exists: bool
    afn_warehouse: int
    afn_fulfillable: int
    afn_unsellable: int
    afn_reserved: int
    afn_total: int
    per_unit_volume: Decimal | None
    afn_inbound_working: int
    afn_inbound_shipped: int
    afn_inbound_receiving: int
    afn_researching: int
    afn_reserved_future_supply: int
    afn_future_supply_buyable: int


# The documents' columns, in Amazon's order (the TSV header row). Readers match by name, so a
# column Amazon adds later is ignored, and a missing one is an error.
LEDGER_COLUMNS = (
    "Date",
    "FNSKU",
    "ASIN",
    "MSKU",
    "Title",
    "Event Type",
    "Reference ID",
    "Quantity",
    "Fulfillment Center",
    "Disposition",
    "Reason",
    "Country",
    "Reconciled Quantity",
    "Unreconciled Quantity",
    "Date and Time",
)
REIMBURSEMENT_COLUMNS = (
    "approval-date",
    "reimbursement-id",
    "case-id",
    "amazon-order-id",
    "reason",
    "sku",
    "fnsku",
    "asin",
    "product-name",
    "condition",
    "currency-unit",
    "amount-per-unit",
    "amount-total",
    "quantity-reimbursed-cash",
    "quantity-reimbursed-inventory",
    "quantity-reimbursed-total",
    "original-reimbursement-id",
    "original-reimbursement-type",
)
INVENTORY_COLUMNS = (
    "sku",
    "fnsku",
    "asin",
    "product-name",
    "condition",
    "your-price",
    "mfn-listing-exists",
    "mfn-fulfillable-quantity",
    "afn-listing-exists",
    "afn-warehouse-quantity",
    "afn-fulfillable-quantity",
    "afn-unsellable-quantity",
    "afn-reserved-quantity",
    "afn-total-quantity",
    "per-unit-volume",
    "afn-inbound-working-quantity",
    "afn-inbound-shipped-quantity",
    "afn-inbound-receiving-quantity",
    "afn-researching-quantity",
    "afn-reserved-future-supply",
    "afn-future-supply-buyable",
)
