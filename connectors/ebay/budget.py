"""eBay's daily limits, counted in the daemon's ledger: revisions per listing, calls per API.

Revisions (guide §3.2): eBay lets one listing be revised at most 250 times per calendar day and
blocks further revisions until the next day. A repricer that moves prices every few minutes
would burn that by mid-afternoon and then could not even write a sell-out. So:

* every revision is counted per listing (``listingId``; the SKU when eBay has not told us one)
  per **eBay day** in a ``DailyLedger`` (``ChannelDeps.ledger``: a database table in the
  daemon), so the count survives restarts, ``run --once`` from cron and replicas. A revision is
  taken from the ledger *before* the request goes out, atomically against its cap, and given
  back when eBay answers that it did not apply it; an attempt sent but never answered stays
  counted (eBay may have applied it: never an undercount), and so does each resend of it. The
  SKUs of a multi-variation listing share its budget; one request entry is one revision of each
  listing it touches, whatever it carries (price, quantity or both);
* price moves may never use the last ``stock_reserve`` revisions: a price is sent only while the
  listing has used fewer than ``limit - stock_reserve`` today, so a stock change (a sell-out)
  always finds its reserve; stock changes may use the whole limit;
* below ``low_budget_ratio`` of the limit left, price moves smaller than ``coalesce_min_change``
  (relative to the last price we know) are not sent either;
* a held price move is ``DEFERRED`` (no attempt used) coded ``REVISION_BUDGET``; with nothing
  left, ``REVISION_BUDGET_EXHAUSTED`` until the next eBay day, and eBay is not asked;
* "the most valuable change goes first": updates are ordered by ``value`` (stock to zero, then
  back in stock, then the largest relative move) before the budget and the call quota are spent.

eBay's own refusal ("Cannot revise listing", whatever its errorId: see ``inventory``) means
revisions we did not count (another tool, the seller on the site): the listing's day is marked
spent and the update is ``DEFERRED`` until the next eBay day, not failed.

The eBay day: eBay documents "250 times per calendar day" without a time zone, and its daily
call limits reset at midnight US Pacific time (GetApiAccessRules: "The day starts at midnight,
00:00:00 PST (not GMT)"; Analytics API ``reset``). Revisions use the same Pacific day: the one
day boundary eBay documents. A refusal before our midnight (were eBay's revision day another)
is handled as above, so a wrong guess costs waiting, never a failed update.

Call quotas (§3.6): each API family has a daily quota per application that resets at midnight
US Pacific time; every HTTP request (retries included) is counted in the same ledger, per
channel (channels sharing one application's keys each count their own calls), and a call over
the quota is not made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from connectors.base import DailyLedger, Spend
from domain.clock import Clock
from domain.errors import ChannelError

# Ledger keys of call counters (revision counters are listing keys: ``listingId`` or ``sku:…``).
CALL_KEY_PREFIX = "call:"


class QuotaExhaustedError(ChannelError):
    """An API family's daily call quota is used up: the call was not made."""


class RevisionBudget:
    """Revisions per listing per eBay day, and what a new revision is allowed to be."""

    def __init__(
        self,
        ledger: DailyLedger,
        channel: str,
        clock: Clock,
        *,
        limit: int,
        low_ratio: float,
        min_change: Decimal,
        stock_reserve: int,
    ) -> None:
        self.ledger = ledger
        self.channel = channel
        self._clock = clock
        self.limit = limit
        self.low_ratio = low_ratio
        self.min_change = min_change
        self.stock_reserve = stock_reserve

    def day(self) -> date:
        """Today's eBay day (US Pacific)."""
        return pacific_date(self._clock.now())

    def cap(self, *, stock: bool) -> int:
        """How many revisions of a listing a day may hold after this one: the whole limit for
        stock, the limit less the stock reserve for a price."""
        return self.limit if stock else max(0, self.limit - self.stock_reserve)

    async def used(self, listing: str, day: date | None = None) -> int:
        """Revisions of ``listing`` counted on ``day`` (today)."""
        return (await self.usage([listing], day))[listing]

    async def usage(self, listings: Sequence[str], day: date | None = None) -> dict[str, int]:
        """Revisions of each listing counted on ``day`` (today)."""
        return await self.ledger.counts(self.channel, day or self.day(), listings)

    async def remaining(self, listing: str) -> int:
        """Revisions ``listing`` may still get today."""
        return max(0, self.limit - await self.used(listing))

    def is_low(self, used: int) -> bool:
        """Whether a listing that used ``used`` has less than ``low_ratio`` of its limit left."""
        return self.limit - used < self.limit * self.low_ratio

    async def take(self, day: date, wanted: Sequence[tuple[str, bool]]) -> list[bool]:
        """Take one revision per (listing, is stock) before it is sent; False where its cap
        (``cap``) is reached. Taken in one ledger call: atomic per listing."""
        spends = [Spend(listing, 1, self.cap(stock=stock)) for listing, stock in wanted]
        return await self.ledger.spend(self.channel, day, spends)

    async def record(self, day: date, listings: Sequence[str]) -> None:
        """Count one more revision of each listing, uncapped (an attempt eBay may have applied)."""
        await self.ledger.spend(self.channel, day, [Spend(key) for key in listings])

    async def give_back(self, day: date, listings: Sequence[str]) -> None:
        """Return revisions taken for updates eBay did not apply."""
        if listings:
            await self.ledger.spend(self.channel, day, [Spend(key, -1) for key in listings])

    async def exhaust(self, day: date, listing: str) -> None:
        """eBay refused a revision of ``listing``: count its whole day's budget as used."""
        await self.ledger.raise_to(self.channel, day, listing, self.limit)

    def resets_at(self) -> datetime:
        """The next Pacific midnight, when every listing's budget is full again."""
        return next_pacific_midnight(self._clock.now())


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
    """Calls made per API family per Pacific day, against the configured daily quotas, counted
    in the ledger (so restarts and replicas share them)."""

    def __init__(
        self, ledger: DailyLedger, channel: str, clock: Clock, quotas: Mapping[str, int]
    ) -> None:
        self.ledger = ledger
        self.channel = channel
        self._clock = clock
        self.quotas = dict(quotas)

    async def used(self, family: str) -> int:
        """Calls of ``family`` counted today."""
        key = CALL_KEY_PREFIX + family
        return (await self.ledger.counts(self.channel, pacific_date(self._clock.now()), [key]))[key]

    async def remaining(self, family: str) -> int | None:
        """Calls ``family`` may still make today (None: no quota configured)."""
        quota = self.quotas.get(family)
        return None if quota is None else max(0, quota - await self.used(family))

    async def take(self, family: str) -> bool:
        """Count one call of ``family`` if the quota allows it; False if it is used up."""
        spend = Spend(CALL_KEY_PREFIX + family, 1, self.quotas.get(family))
        day = pacific_date(self._clock.now())
        [ok] = await self.ledger.spend(self.channel, day, [spend])
        return ok


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


def next_pacific_midnight(moment: datetime) -> datetime:
    """The first instant (UTC) of the Pacific day after the one ``moment`` falls in."""
    following = pacific_date(moment) + timedelta(days=1)
    for offset in (7, 8):  # PDT, then PST: the one whose midnight is that day's first instant
        candidate = datetime.combine(following, time(), tzinfo=UTC) + timedelta(hours=offset)
        if (
            pacific_date(candidate) == following
            and pacific_date(candidate - timedelta(seconds=1)) != following
        ):
            return candidate
    raise AssertionError(f"no Pacific midnight found after {moment}")  # pragma: no cover


def _nth_sunday(year: int, month: int, nth: int) -> datetime:
    first = datetime(year, month, 1, tzinfo=UTC)
    to_sunday = (6 - first.weekday()) % 7
    return first + timedelta(days=to_sunday + 7 * (nth - 1))
