"""The value types the console's loaders return and its charts draw (frozen, slotted; Decimal
money, aware UTC times), kept apart from the queries so the charts stay pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from daemon.status import ChannelStatus


@dataclass(frozen=True, slots=True)
class Point:
    """A value from ``at`` on (a step), or a gap when ``value`` is None."""

    at: datetime
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class Count:
    """A unit count from ``at`` on (a step)."""

    at: datetime
    value: int


@dataclass(frozen=True, slots=True)
class Marker:
    """A decision that did not move the price (blocked or held), where it stood on the chart."""

    at: datetime
    action_id: int
    status: str
    reason: str
    # "step: verdict — detail", one per guard verdict (the tooltip lists them).
    verdicts: tuple[str, ...]
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class PriceSeries:
    """One channel's price chart of a SKU: every series is oldest first and ends at ``end``."""

    channel: str
    currency: str
    our_price: tuple[Point, ...]
    buy_box: tuple[Point, ...]
    lowest_competitor: tuple[Point, ...]
    floor: tuple[Point, ...]
    ceiling: tuple[Point, ...]
    markers: tuple[Marker, ...]


@dataclass(frozen=True, slots=True)
class StockMark:
    """A ledger event drawn on the stock chart (orders, cancels, counts, receipts...)."""

    at: datetime
    event_id: int
    kind: str
    delta: int
    channel: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class StockSeries:
    """A SKU's stock chart: on-hand from the ledger and each channel's published quantity."""

    on_hand: tuple[Count, ...]
    published: tuple[tuple[str, tuple[Count, ...]], ...]  # (channel, steps), by channel
    events: tuple[StockMark, ...]


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One ``stock_event`` row as the SKU page lists it."""

    id: int
    occurred_at: datetime
    recorded_at: datetime
    kind: str
    delta: int
    counted: int | None
    channel: str | None
    note: str | None
    external_ref: str


@dataclass(frozen=True, slots=True)
class SkuPage:
    """Everything the SKU page shows, over ``[start, end]``."""

    sku: str
    title: str | None
    start: datetime
    end: datetime
    prices: tuple[PriceSeries, ...]  # one per channel the SKU is listed on
    stock: StockSeries
    explain: tuple[Mapping[str, Any], ...]  # daemon.history.fetch_explain rows
    ledger: tuple[LedgerRow, ...]  # newest first


@dataclass(frozen=True, slots=True)
class Share:
    """Buy Box share at one time: listings we win among those with offer data."""

    at: datetime
    won: int
    seen: int

    @property
    def ratio(self) -> Decimal | None:
        """``won / seen`` to four places (None without offer data)."""
        if not self.seen:
            return None
        return (Decimal(self.won) / Decimal(self.seen)).quantize(Decimal("0.0001"))


@dataclass(frozen=True, slots=True)
class ChannelOverview:
    """One channel on the overview: its status plus the last 24 h and the Buy Box."""

    status: ChannelStatus
    price_changes_24h: int
    stock_writes_24h: int
    failed_writes_24h: int
    not_applied_24h: int
    buy_box_now: Share
    buy_box_days: tuple[Share, ...]  # one per UTC day end, oldest first; today's is now


@dataclass(frozen=True, slots=True)
class Overview:
    """The overview page at ``at``."""

    at: datetime
    channels: tuple[ChannelOverview, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """Something an operator must fix, with where to look (``sku``: the SKU page to open)."""

    kind: str
    channel: str | None
    sku: str | None
    detail: str
    fix: str
    since: datetime | None
    action_id: int | None = None


@dataclass(frozen=True, slots=True)
class DayValue:
    """One UTC day's value on an inventory chart (None: unknown, a gap)."""

    day: date
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class SkuInventory:
    """The SKU page's inventory section: cover and demand, by UTC day, over ``[start, end]``.

    ``today`` is the first forecast day. Cover before it is the day's on hand (every pool) over
    the current forecast's daily demand; from it on, the on hand the forecast leaves, over the
    same demand. ``forecast_past`` is the forecast made with the history up to ``past_origin``
    (what it expected for the days since); ``censored`` days had no stock (sales not demand).
    """

    sku: str
    start: date
    today: date
    end: date
    on_hand: int
    daily_demand: Decimal | None
    days_of_supply: Decimal | None
    thresholds: tuple[int, ...]
    cover: tuple[DayValue, ...]
    projected_cover: tuple[DayValue, ...]
    sold: tuple[DayValue, ...]
    censored: tuple[date, ...]
    past_origin: date
    forecast_past: tuple[DayValue, ...]
    forecast: tuple[DayValue, ...]
