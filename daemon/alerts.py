"""Alerts: conditions an operator must act on, raised once and resolved once.

Every evaluation (every ``EVALUATE_EVERY_S`` in the daemon) derives the current conditions from
the status snapshot, the ledger (oversells) and the action log (writes not applied). A condition
not yet active is raised: one ``alert`` log event (warning or error) and, when
``alerts.webhook_url`` is set, one JSON POST (``{"text": ..., "alert": {...}}``: Slack's incoming
webhooks read ``text``, generic receivers the rest). An active alert whose condition is gone is
resolved the same way. Alerts live in the ``alert`` table, so a restart neither re-sends an
active alert nor forgets to resolve it; a notification the receiver did not take is retried with
backoff, then again at the next evaluation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal

import httpx
import sqlalchemy as sa
import structlog

from daemon.db.engine import Database
from daemon.db.models import (
    Action,
    ActionKind,
    ActionStatus,
    AlertRecord,
    ChannelHealth,
    RestockRow,
    StockEvent,
    StockEventKind,
)
from daemon.logging import SecretRedactor
from daemon.metrics import Metrics
from daemon.settings import Settings
from daemon.status import NOT_APPLIED, WINDOW, StatusSnapshot, iso, publish, read_status
from domain.clock import Clock

ALERTS = AlertRecord.__table__  # type: ignore[attr-defined]
EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
ACTIONS = Action.__table__  # type: ignore[attr-defined]
RESTOCK = RestockRow.__table__  # type: ignore[attr-defined]
EVALUATE_EVERY_S: Final = 30.0
# Waits between the attempts of one notification (then the next evaluation tries again).
BACKOFF_S: Final = (1.0, 2.0, 4.0)
POST_TIMEOUT: Final = httpx.Timeout(10.0, connect=5.0)
# The ledger's mark of an order that took more units than were held (daemon.stock).
OVERSOLD_MARK: Final = "OVERSOLD"
# Orders are recorded late when an orders poll finds them: look at older order times too.
ORDER_LATENESS: Final = timedelta(hours=24)
# Listings named in a not-applied alert (the count covers the rest).
LISTED: Final = 20
RESTOCK_KIND: Final = "restock"
# One notification for many restock alerts raised at once (inventory.restock_alert_digest_over).
DIGEST_KIND: Final = "restock_digest"
log = structlog.get_logger("repricerd.alerts")

Severity = Literal["warning", "error"]


@dataclass(frozen=True)
class Condition:
    """One thing wrong right now; ``key`` identifies it across evaluations."""

    key: str
    kind: str
    severity: Severity
    channel: str | None
    summary: str
    details: Mapping[str, Any] = field(default_factory=dict)


def channel_conditions(snapshot: StatusSnapshot, settings: Settings) -> list[Condition]:
    """Breaker trips, refused credentials, long degradations and stuck inboxes."""
    now, rules = snapshot.at, settings.alerts
    found: list[Condition] = []
    for c in snapshot.channels:
        name = c.channel
        if c.breaker_tripped:
            found.append(
                Condition(
                    f"breaker_tripped:{name}",
                    "breaker_tripped",
                    "error",
                    name,
                    f"{name}: circuit breaker tripped, price writes stopped "
                    f"(`repricerd resume --channel {name}` after review): {c.reason}",
                    {"reason": c.reason},
                )
            )
        if c.health == ChannelHealth.AUTH_FAILED.value:
            found.append(
                Condition(
                    f"auth_failed:{name}",
                    "auth_failed",
                    "error",
                    name,
                    f"{name}: the marketplace refuses the credentials: {c.last_error}",
                    {"error": c.last_error, "since": iso(c.health_since)},
                )
            )
        since = c.health_since
        if (
            c.health == ChannelHealth.DEGRADED.value
            and since is not None
            and now - since >= rules.degraded_after
        ):
            found.append(
                Condition(
                    f"degraded:{name}",
                    "degraded",
                    "warning",
                    name,
                    f"{name}: degraded for {_duration(now - since)}: {c.last_error}",
                    {"error": c.last_error, "since": iso(since)},
                )
            )
        oldest = c.inbox_oldest_at
        if oldest is not None and now - oldest >= rules.inbox_stuck_after:
            found.append(
                Condition(
                    f"inbox_stuck:{name}",
                    "inbox_stuck",
                    "warning",
                    name,
                    f"{name}: {c.inbox_backlog} webhook deliveries waiting, the oldest for "
                    f"{_duration(now - oldest)}",
                    {"backlog": c.inbox_backlog, "oldest_at": iso(oldest)},
                )
            )
    return found


async def oversell_conditions(db: Database, now: datetime) -> list[Condition]:
    """SKUs oversold in the last 24 h (an order took more than was held) whose stock has not
    come back since (no later ledger entry adding units)."""
    since = now - WINDOW
    async with db.read() as conn:
        rows = (
            await conn.execute(
                # kind, occurred_at: ix_stock_event_kind_time.
                sa.select(EVENTS.c.id, EVENTS.c.sku, EVENTS.c.channel, EVENTS.c.note)
                .where(
                    EVENTS.c.kind == StockEventKind.ORDER.value,
                    EVENTS.c.occurred_at >= since - ORDER_LATENESS,
                    EVENTS.c.recorded_at >= since,
                    EVENTS.c.note.contains(OVERSOLD_MARK),
                )
                .order_by(EVENTS.c.id)
            )
        ).all()
        newest = {row.sku: row for row in rows}
        if not newest:
            return []
        restocked: dict[str, int] = dict(
            (
                await conn.execute(
                    sa.select(EVENTS.c.sku, sa.func.max(EVENTS.c.id))
                    .where(EVENTS.c.sku.in_(list(newest)), EVENTS.c.delta > 0)
                    .group_by(EVENTS.c.sku)
                )
            ).all()
        )
    return [
        Condition(
            f"oversell:{sku}",
            "oversell",
            "error",
            row.channel,
            f"{sku}: oversold on {row.channel}: {row.note}",
            {"sku": sku, "note": row.note},
        )
        for sku, row in sorted(newest.items())
        if restocked.get(sku, 0) < row.id
    ]


async def not_applied_conditions(
    db: Database, channels: Sequence[str], now: datetime
) -> list[Condition]:
    """Per channel: writes of the last 24 h the marketplace accepted but never applied
    (NOT_APPLIED) to listings without a confirmed write since. One alert per channel, not per
    listing: a feed that never applied would otherwise send hundreds of messages."""
    later = ACTIONS.alias("later")
    confirmed_since = (
        sa.exists()
        .where(
            later.c.sku == ACTIONS.c.sku,
            later.c.channel == ACTIONS.c.channel,
            later.c.kind == ACTIONS.c.kind,
            later.c.status == ActionStatus.CONFIRMED.value,
            later.c.id > ACTIONS.c.id,
        )
        .correlate(ACTIONS)
    )
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    ACTIONS.c.channel,
                    ACTIONS.c.sku,
                    ACTIONS.c.kind,
                    ACTIONS.c.new_price,
                    ACTIONS.c.new_quantity,
                    ACTIONS.c.completed_at,
                )
                .where(
                    ACTIONS.c.channel.in_(list(channels)),
                    ACTIONS.c.kind.in_([k.value for k in ActionKind]),
                    ACTIONS.c.status == ActionStatus.FAILED.value,
                    ACTIONS.c.response_code == NOT_APPLIED,
                    ACTIONS.c.completed_at >= now - WINDOW,
                    sa.not_(confirmed_since),
                )
                .order_by(ACTIONS.c.id)
            )
        ).all()
    per_channel: dict[str, dict[tuple[str, str], dict[str, str]]] = {}
    for row in rows:
        value = row.new_price if row.kind == ActionKind.PRICE.value else row.new_quantity
        # The newest write of a listing's field stands for it.
        per_channel.setdefault(row.channel, {})[row.sku, row.kind] = {
            "sku": row.sku,
            "write": row.kind,
            "value": str(value),
        }
    found = []
    for channel, writes in sorted(per_channel.items()):
        listed = list(writes.values())
        shown = ", ".join(f"{w['sku']} {w['write']} {w['value']}" for w in listed[:LISTED])
        more = f" and {len(listed) - LISTED} more" if len(listed) > LISTED else ""
        found.append(
            Condition(
                f"not_applied:{channel}",
                "not_applied",
                "warning",
                channel,
                f"{channel}: {len(listed)} write(s) accepted but never applied: {shown}{more}",
                {"count": len(listed), "writes": listed[:LISTED]},
            )
        )
    return found


async def restock_conditions(db: Database, thresholds: Sequence[int]) -> list[Condition]:
    """One condition per SKU and restock threshold its stored cover (the inventory pass's days
    of supply) is below: raised once when cover falls below it, resolved when it climbs back,
    so an alert fires once per crossing (``inventory.restock.crossings``)."""
    if not thresholds:
        return []
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    RESTOCK.c.sku,
                    RESTOCK.c.supplier,
                    RESTOCK.c.days_of_supply,
                    RESTOCK.c.order_quantity,
                    RESTOCK.c.order_by,
                ).where(
                    RESTOCK.c.days_of_supply.is_not(None),
                    # Evaluated every 30 s over up to 100,000 plans: only those near a threshold
                    # come back (cover = position ÷ demand; exact check below).
                    RESTOCK.c.daily_demand > 0,
                    RESTOCK.c.on_hand + RESTOCK.c.inbound
                    < (max(thresholds) + 1) * RESTOCK.c.daily_demand,
                )
            )
        ).all()
    found = []
    lowest = min(thresholds)
    for row in rows:
        cover = row.days_of_supply
        for days in thresholds:
            if cover < days:
                found.append(
                    Condition(
                        f"restock:{days}:{row.sku}",
                        RESTOCK_KIND,
                        "error" if days == lowest else "warning",
                        None,
                        f"{row.sku}: {cover} days of cover left (< {days}); order "
                        f"{row.order_quantity} from {row.supplier or 'the supplier'} by "
                        f"{row.order_by}",
                        {
                            "sku": row.sku,
                            "threshold_days": days,
                            "days_of_supply": str(cover),
                            "order_quantity": row.order_quantity,
                            "order_by": row.order_by.isoformat() if row.order_by else None,
                            "supplier": row.supplier,
                        },
                    )
                )
    return found


def restock_digest(restocks: Sequence[Condition], now: datetime) -> Condition:
    """One condition announcing many restock alerts raised at once: how many SKUs fell below
    each threshold, and the ``LISTED`` lowest covers by name."""
    by_sku: dict[str, Condition] = {}
    per_threshold: dict[int, int] = {}
    for c in restocks:
        days = int(c.details["threshold_days"])
        per_threshold[days] = per_threshold.get(days, 0) + 1
        sku = str(c.details["sku"])
        if sku not in by_sku or days < int(by_sku[sku].details["threshold_days"]):
            by_sku[sku] = c  # the lowest threshold a SKU fell below says the most
    lowest = sorted(by_sku.values(), key=lambda c: (Decimal(c.details["days_of_supply"]), c.key))
    named = [f"{c.details['sku']} ({c.details['days_of_supply']} d)" for c in lowest[:LISTED]]
    more = f" and {len(lowest) - LISTED} more" if len(lowest) > LISTED else ""
    counts = ", ".join(f"{n} below {d} days" for d, n in sorted(per_threshold.items()))
    return Condition(
        f"{DIGEST_KIND}:{now.isoformat()}",
        DIGEST_KIND,
        "error" if any(c.severity == "error" for c in restocks) else "warning",
        None,
        f"{len(by_sku)} SKUs need restocking ({counts}): lowest cover {', '.join(named)}{more}; "
        "see `repricerd inventory restock`",
        {
            "skus": len(by_sku),
            "alerts": len(restocks),
            "below": {str(d): n for d, n in sorted(per_threshold.items())},
            "lowest": [dict(c.details) for c in lowest[:LISTED]],
        },
    )


class Alerter:
    """Evaluates the conditions, records raised and resolved alerts and notifies the webhook."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        http: httpx.AsyncClient,
        settings: Callable[[], Settings],
        redactor: SecretRedactor,
        *,
        metrics: Metrics | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.db = db
        self.clock = clock
        self.http = http
        self.settings = settings  # called at every evaluation: follows config reloads
        self.redactor = redactor
        self.metrics = metrics
        self.sleep = sleep

    async def run(self) -> None:
        """One evaluation, for the scheduler: an error is logged, never raised."""
        try:
            await self.evaluate()
        except Exception as err:
            log.exception("alerts_failed", error=str(err))

    async def evaluate(self) -> tuple[list[str], list[str]]:
        """Raise the new conditions, resolve the cleared ones, deliver pending notifications;
        return the keys raised and resolved."""
        settings = self.settings()
        now = self.clock.now()
        channels = list(settings.channels)
        snapshot = await read_status(self.db, channels, now, full=False)
        if self.metrics is not None:
            publish(self.metrics, snapshot)  # the gauges stay fresh between scrapes too
        current = {
            c.key: c
            for c in [
                *channel_conditions(snapshot, settings),
                *await oversell_conditions(self.db, now),
                *await not_applied_conditions(self.db, channels, now),
                *await restock_conditions(self.db, settings.inventory.restock_alert_days),
            ]
        }
        async with self.db.read() as conn:
            active = {
                row.key: row
                for row in await conn.execute(
                    sa.select(
                        ALERTS.c.id,
                        ALERTS.c.key,
                        ALERTS.c.kind,
                        ALERTS.c.channel,
                        ALERTS.c.summary,
                        ALERTS.c.notified_at,
                        ALERTS.c.details,
                    ).where(ALERTS.c.resolved_at.is_(None))
                )
            }
        raised = [c for key, c in current.items() if key not in active]
        cleared = [row for key, row in active.items() if key not in current]
        restocks = [c for c in raised if c.kind == RESTOCK_KIND]
        digest = None
        if len(restocks) > settings.inventory.restock_alert_digest_over:
            digest = restock_digest(restocks, now)
        if raised or cleared:
            await self._record(raised, cleared, now, digest)
        for condition in raised:
            if digest is not None and condition.kind == RESTOCK_KIND:
                continue  # announced by the digest, logged below
            level = log.error if condition.severity == "error" else log.warning
            level("alert", **self._fields(condition.key, "raised", condition))
        if digest is not None:
            level = log.error if digest.severity == "error" else log.warning
            level("alert", **self._fields(digest.key, "raised", digest))
        for row in cleared:
            log.info(
                "alert",
                key=row.key,
                state="resolved",
                kind=row.kind,
                channel=row.channel,
                summary=row.summary,
            )
        await self.deliver()
        return [c.key for c in raised], [row.key for row in cleared]

    async def _record(
        self,
        raised: list[Condition],
        cleared: list[Any],
        now: datetime,
        digest: Condition | None = None,
    ) -> None:
        """Insert the raised alerts and resolve the cleared ones. With a ``digest``, the raised
        restock alerts are recorded (so each still fires once per crossing) as announced by it,
        and the digest is recorded already resolved: only its raise is ever sent."""

        def record(c: Condition) -> dict[str, Any]:
            covered = digest is not None and c.kind == RESTOCK_KIND
            details = dict(c.details) | ({"digest": digest.key} if digest and covered else {})
            return {
                "key": c.key,
                "kind": c.kind,
                "severity": c.severity,
                "channel": c.channel,
                "summary": self.redactor.scrub(c.summary)[:1000],
                "details": self.redactor.redact(details),
                "raised_at": now,
                # Covered by the digest: neither its raise nor (later) its resolution is sent.
                "notified_at": now if covered else None,
                # Every row names every column: one executemany takes the first row's keys.
                "resolved_at": None,
                "resolved_notified_at": None,
            }

        async with self.db.write() as conn:
            rows = [record(c) for c in raised]
            if digest is not None:
                rows.append(record(digest) | {"resolved_at": now, "resolved_notified_at": now})
            if rows:
                await conn.execute(sa.insert(ALERTS), rows)
            for row in cleared:
                # Never announced (no receiver then), or announced only inside a digest: there
                # is nothing to resolve.
                announced = row.notified_at is not None and not (row.details or {}).get("digest")
                await conn.execute(
                    sa.update(ALERTS)
                    .where(ALERTS.c.id == row.id)
                    .values(resolved_at=now, resolved_notified_at=None if announced else now)
                )

    def _fields(self, key: str, state: str, condition: Condition) -> dict[str, Any]:
        return {
            "key": key,
            "state": state,
            "kind": condition.kind,
            "severity": condition.severity,
            "channel": condition.channel,
            "summary": condition.summary,
            "details": dict(condition.details),
        }

    async def deliver(self) -> int:
        """POST the notifications not yet taken by the receiver (raised, then resolved), oldest
        first; stop at the first that still fails after the retries. Return how many went."""
        url = self.settings().alerts.webhook_url
        if url is None:
            return 0
        async with self.db.read() as conn:
            pending = (
                await conn.execute(
                    sa.select(ALERTS)
                    .where(
                        sa.or_(
                            sa.and_(ALERTS.c.resolved_at.is_(None), ALERTS.c.notified_at.is_(None)),
                            # A digest is recorded resolved: only its raise goes out.
                            sa.and_(ALERTS.c.kind == DIGEST_KIND, ALERTS.c.notified_at.is_(None)),
                            sa.and_(
                                ALERTS.c.resolved_at.is_not(None),
                                ALERTS.c.resolved_notified_at.is_(None),
                            ),
                        )
                    )
                    .order_by(ALERTS.c.id)
                )
            ).all()
        sent = 0
        for row in pending:
            # A row resolved before its raise went out announces neither (see _record), so a
            # resolved row here was announced: send its resolution.
            state = "raised" if row.resolved_at is None or row.kind == DIGEST_KIND else "resolved"
            if not await self._post(url.get_secret_value(), self._payload(row, state)):
                break
            column = "notified_at" if state == "raised" else "resolved_notified_at"
            async with self.db.write() as conn:
                await conn.execute(
                    sa.update(ALERTS)
                    .where(ALERTS.c.id == row.id)
                    .values({column: self.clock.now()})
                )
            sent += 1
        return sent

    def _payload(self, row: Any, state: str) -> dict[str, Any]:
        """The JSON sent: ``text`` for Slack, ``alert`` for everything else; secrets masked."""
        marker = {"raised": row.severity.upper(), "resolved": "RESOLVED"}[state]
        alert = {
            "key": row.key,
            "kind": row.kind,
            "severity": row.severity,
            "state": state,
            "channel": row.channel,
            "summary": row.summary,
            "details": row.details,
            "raised_at": iso(row.raised_at),
            "resolved_at": iso(row.resolved_at) if state == "resolved" else None,
            "source": "repricerd",
        }
        return self.redactor.redact(
            {"text": f"[repricerd] {marker} {row.kind}: {row.summary}", "alert": alert}
        )

    async def _post(self, url: str, payload: dict[str, Any]) -> bool:
        """POST with retries on 5xx, 429 and network errors; False if it never went."""
        key = payload["alert"]["key"]
        for attempt, wait in enumerate((*BACKOFF_S, None), start=1):
            try:
                response = await self.http.post(url, json=payload, timeout=POST_TIMEOUT)
            except httpx.HTTPError as err:
                problem = type(err).__name__
            else:
                if response.status_code < 300:
                    return True
                if response.status_code < 500 and response.status_code not in (408, 429):
                    # The receiver refuses this payload; sending it again would not change that.
                    log.error("alert_delivery_refused", key=key, http_status=response.status_code)
                    return True
                problem = f"HTTP {response.status_code}"
            if wait is None:
                log.warning("alert_delivery_failed", key=key, attempts=attempt, error=problem)
                return False
            await self.sleep(wait)
        return False


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
