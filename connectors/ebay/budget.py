"""eBay's daily limits, tracked on the channel instance: revisions per listing, calls per API.

Revisions (guide §3.2): eBay lets one listing be revised at most 250 times per calendar day and
blocks further revisions until the next day. A repricer that moves prices every few minutes
would burn that by mid-afternoon and then could not even write a sell-out. So:

* every *successful* revision this instance sends is counted per listing (``listingId``; the
  SKU when eBay has not told us one) per **UTC day**, and so is every attempt sent but never
  answered (eBay may have applied it: counted pessimistically, never an undercount); the SKUs
  of a multi-variation listing share its budget, and revisions planned by a push still in
  flight are held (``reserve``) so concurrent price and stock pushes cannot overspend it;
* while a listing has more than ``low_budget_ratio`` of its daily limit left, everything goes;
* below that, price moves smaller than ``coalesce_min_change`` (relative to the last price we
  know) are not sent: the result is ``DEFERRED`` (no attempt used) coded ``REVISION_BUDGET``,
  so the daemon keeps the newest intent open and a later, larger move (or tomorrow's budget)
  carries it; price moves may not use the last ``stock_reserve`` revisions either, which stay
  for stock (a sell-out);
* with nothing left, nothing is sent for the listing: ``DEFERRED`` coded
  ``REVISION_BUDGET_EXHAUSTED`` until the next UTC midnight;
* "the most valuable change goes first": updates are ordered by ``value`` (stock to zero, then
  back in stock, then the largest relative move) before the budget and the call quota are spent;
* stock updates are never coalesced: only exhaustion (or the call quota) holds them back.

The count lives in memory: a restart forgets the day's revisions. eBay then refuses the excess
itself (errorId 25019, "Cannot revise listing"); that refusal is taken as the listing's budget
being spent (``exhaust``) and the update is ``DEFERRED``, not failed.

Call quotas (§3.6): each API family has a daily quota that resets at midnight US Pacific time;
every HTTP request (retries included) is counted, and a call over the quota is not made.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from connectors.base import Clock
from daemon.errors import ChannelError


class QuotaExhaustedError(ChannelError):
    """An API family's daily call quota is used up: the call was not made."""


class RevisionBudget:
    """Revisions sent per listing per UTC day, and what a new revision is allowed to be."""

    def __init__(
        self,
        clock: Clock,
        *,
        limit: int,
        low_ratio: float,
        min_change: Decimal,
        stock_reserve: int,
    ) -> None:
        self._clock = clock
        self.limit = limit
        self.low_ratio = low_ratio
        self.min_change = min_change
        self.stock_reserve = stock_reserve
        self._day: date | None = None
        self._used: dict[str, int] = defaultdict(int)
        # Revisions planned by pushes still in flight: concurrent pushes share the budget.
        self._pending: dict[str, int] = defaultdict(int)

    def _today(self) -> dict[str, int]:
        day = self._clock.now().astimezone(UTC).date()
        if day != self._day:
            self._day = day
            self._used = defaultdict(int)
        return self._used

    def used(self, listing: str) -> int:
        """Revisions of ``listing`` counted today."""
        return self._today().get(listing, 0)

    def remaining(self, listing: str) -> int:
        """Revisions ``listing`` may still get today (less those planned by pushes in flight)."""
        return max(0, self.limit - self.used(listing) - self._pending.get(listing, 0))

    def reserve(self, listing: str) -> None:
        """Hold one revision of ``listing`` for an update about to be sent."""
        self._pending[listing] += 1

    def release(self, listing: str) -> None:
        """Give back a held revision (``record`` counts it if eBay applied the update)."""
        self._pending[listing] -= 1
        if self._pending[listing] <= 0:
            del self._pending[listing]

    def is_low(self, listing: str) -> bool:
        """Whether ``listing`` has less than ``low_ratio`` of its daily limit left."""
        return self.remaining(listing) < self.limit * self.low_ratio

    def record(self, listing: str, count: int = 1) -> None:
        """Count ``count`` successful revisions of ``listing``."""
        self._today()[listing] += count

    def exhaust(self, listing: str) -> None:
        """eBay refused a revision of ``listing``: count its whole day's budget as used."""
        today = self._today()
        today[listing] = max(today[listing], self.limit)

    def resets_at(self) -> datetime:
        """The next UTC midnight, when every listing's budget is full again."""
        today = self._clock.now().astimezone(UTC).date()
        return datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def value(old: Decimal | int | None, new: Decimal | int, *, stock: bool) -> tuple[int, Decimal]:
    """Sort key (ascending = most valuable first) of moving a listing from ``old`` to ``new``.

    Stock to zero stops overselling and ranks first; back in stock sells again and ranks next;
    otherwise the larger relative move ranks higher. An unknown old value counts as a full move.
    """
    if stock and new == 0 and old != 0:
        return (0, Decimal(0))
    if stock and old == 0 and new != 0:
        return (1, Decimal(0))
    return (2, -relative_change(old, new))


def relative_change(old: Decimal | int | None, new: Decimal | int) -> Decimal:
    """|new − old| / old (1 when old is unknown or zero)."""
    if old is None or old == 0:
        return Decimal(1)
    return abs(Decimal(new) - Decimal(old)) / abs(Decimal(old))


class DailyQuotas:
    """Calls made per API family per Pacific day, against the configured daily quotas."""

    def __init__(self, clock: Clock, quotas: Mapping[str, int]) -> None:
        self._clock = clock
        self.quotas = dict(quotas)
        self._day: date | None = None
        self._used: dict[str, int] = defaultdict(int)

    def _today(self) -> dict[str, int]:
        day = pacific_date(self._clock.now())
        if day != self._day:
            self._day = day
            self._used = defaultdict(int)
        return self._used

    def used(self, family: str) -> int:
        """Calls of ``family`` counted today."""
        return self._today().get(family, 0)

    def remaining(self, family: str) -> int | None:
        """Calls ``family`` may still make today (None: no quota configured)."""
        quota = self.quotas.get(family)
        return None if quota is None else max(0, quota - self.used(family))

    def take(self, family: str) -> bool:
        """Count one call of ``family`` if the quota allows it; False if it is used up."""
        left = self.remaining(family)
        if left is not None and left <= 0:
            return False
        self._today()[family] += 1
        return True


def pacific_date(moment: datetime) -> date:
    """The calendar date in US Pacific time (eBay's quota day), from the US DST rules.

    Computed rather than read from a tz database so that slim images without tzdata agree:
    PDT (UTC−7) from the second Sunday of March 02:00 to the first Sunday of November 02:00
    local time, PST (UTC−8) otherwise.
    """
    utc = moment.astimezone(UTC)
    year = utc.year
    dst_start = _nth_sunday(year, 3, 2) + timedelta(hours=2 + 8)  # 02:00 PST in UTC
    dst_end = _nth_sunday(year, 11, 1) + timedelta(hours=2 + 7)  # 02:00 PDT in UTC
    offset = 7 if dst_start <= utc < dst_end else 8
    return (utc - timedelta(hours=offset)).date()


def _nth_sunday(year: int, month: int, nth: int) -> datetime:
    first = datetime(year, month, 1, tzinfo=UTC)
    to_sunday = (6 - first.weekday()) % 7
    return first + timedelta(days=to_sunday + 7 * (nth - 1))
