"""What a pass step did on one channel, as typed reports; JSON (``as_json``) only at the edge:
the ``/sync`` answer, the CLI, the logs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass  # counted up while the round runs
class DispatchReport:
    """What one dispatch round did for one channel and kind."""

    sent: int = 0
    confirmed: int = 0
    accepted: int = 0
    failed: int = 0
    retry: int = 0
    superseded: int = 0
    blocked_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """The step did nothing on this channel, and why (paused, stock held by the marketplace)."""

    skipped: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The step failed on this channel (the others went on)."""

    error: str


@dataclass(frozen=True, slots=True)
class NoListings:
    """Nothing to decide or poll: the channel (or the selection) has no active listing."""

    listings: int = 0


@dataclass(frozen=True, slots=True)
class StockReport:
    """One channel's stock publish: intents recorded and the dispatch that sent them."""

    listings: int
    intents: int
    restock_waits_for_price: int
    never_counted: int
    dispatch: DispatchReport


@dataclass(frozen=True, slots=True)
class RepriceReport:
    """One channel's reprice: decisions per verdict, rows recorded, the breaker, the dispatch."""

    listings: int
    decisions: dict[str, int]
    recorded: int
    breaker: str | None
    dispatch: DispatchReport


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """One channel's reconcile: what was read live, drift, verified writes, stock repaired."""

    live: int
    new: int
    drift: int
    verified: dict[str, int]  # accepted writes confirmed or found not applied, by outcome
    stock: StockReport | Skipped


@dataclass(frozen=True, slots=True)
class OffersReport:
    """One channel's offers poll: listings polled, observations, competition changes."""

    listings: int
    observed: int
    changed: int


@dataclass(frozen=True, slots=True)
class OrdersReport:
    """One channel's orders poll since its watermark, and the SKUs whose availability moved."""

    since: str
    polled: int
    applied: int
    duplicates: int
    ignored: int
    invalid: int
    skus: list[str]


PassReport = (
    Failed
    | Skipped
    | NoListings
    | StockReport
    | RepriceReport
    | ReconcileReport
    | OffersReport
    | OrdersReport
)


def as_json(report: PassReport) -> dict[str, Any]:
    """The report as the JSON object the ``/sync`` answer and the logs carry."""
    return asdict(report)


def reports_json(reports: Mapping[str, PassReport]) -> dict[str, dict[str, Any]]:
    """Per channel, its report as JSON."""
    return {channel: as_json(report) for channel, report in reports.items()}
