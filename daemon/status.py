"""The status view: each configured channel's state, last successes, inbox and write outcomes.

Read from the database alone, so ``repricerd status`` answers the same with the daemon stopped
as ``GET /status`` does while it runs, and the metrics gauges are refreshed from it at every
scrape (a handful of aggregate queries: the light snapshot skips the 24-hour counts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson
import sqlalchemy as sa
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from daemon.db.engine import Database
from daemon.db.models import (
    ALL_CHANNELS,
    OPEN_STATUSES,
    Action,
    ActionStatus,
    ChannelHealth,
    ChannelLease,
    ChannelState,
    PassSuccess,
    WebhookEvent,
)
from daemon.pass_gate import awaiting_verdict
from domain.clock import Clock

if TYPE_CHECKING:
    from daemon.metrics import Metrics

STATE = ChannelState.__table__  # type: ignore[attr-defined]
SUCCESS = PassSuccess.__table__  # type: ignore[attr-defined]
INBOX = WebhookEvent.__table__  # type: ignore[attr-defined]
ACTIONS = Action.__table__  # type: ignore[attr-defined]
LEASE = ChannelLease.__table__  # type: ignore[attr-defined]
# The passes whose last success is shown (daemon.passes.PASS_NAMES, in the order they matter).
PASSES: Final = ("reconcile", "reprice", "stock_sync", "offers", "orders", "inventory")
WINDOW: Final = timedelta(hours=24)
NOT_APPLIED: Final = "NOT_APPLIED"
# Inbox outcomes counted as "ignored" (nothing in them for us) and "unknown SKU" (a report about
# a listing we do not know).
IGNORED_OUTCOMES: Final = ("ignored",)
UNKNOWN_SKU_OUTCOMES: Final = ("unknown",)
INVALID_OUTCOME: Final = "invalid"
REASONS_SHOWN: Final = 3


class State(StrEnum):
    """A channel's state as status shows it; the first that applies wins, in this order."""

    PAUSED = "paused"
    BREAKER_TRIPPED = "breaker_tripped"
    AUTH_FAILED = "auth_failed"
    DEGRADED = "degraded"
    OK = "ok"
    UNKNOWN = "unknown"  # never opened (no health recorded yet)


@dataclass(frozen=True)
class ChannelStatus:
    """One configured channel's status."""

    channel: str
    state: State
    since: datetime | None
    reason: str | None
    paused: bool
    breaker_tripped: bool
    health: str | None
    health_since: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_success: Mapping[str, datetime | None]
    inbox_backlog: int
    inbox_oldest_at: datetime | None
    open_intents: int
    # The 24-hour counts (zero in a light snapshot).
    invalid_24h: int = 0
    invalid_reasons: tuple[Mapping[str, Any], ...] = ()
    ignored_24h: int = 0
    unknown_sku_24h: int = 0
    not_applied_24h: int = 0
    failed_24h: int = 0
    # Several replicas: the replica holding the channel's unexpired lease, since when.
    owner: str | None = None
    owner_since: datetime | None = None
    lease_epoch: int | None = None

    def inbox_oldest_seconds(self, now: datetime) -> float:
        """Age of the oldest unprocessed delivery (0 with an empty inbox)."""
        if self.inbox_oldest_at is None:
            return 0.0
        return max(0.0, (now - self.inbox_oldest_at).total_seconds())


@dataclass(frozen=True)
class StatusSnapshot:
    """Every configured channel's status at one time."""

    at: datetime
    channels: tuple[ChannelStatus, ...]
    full: bool = True
    by_name: Mapping[str, ChannelStatus] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.channel: c for c in self.channels})

    @property
    def ok(self) -> bool:
        """True when every channel is ok."""
        return all(c.state is State.OK for c in self.channels)

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data (``GET /status``, ``--format json``)."""
        return {
            "at": iso(self.at),
            "ok": self.ok,
            "channels": {c.channel: _channel_dict(c, self.at, self.full) for c in self.channels},
        }


def iso(at: datetime | None) -> str | None:
    """ISO 8601 text of an aware time, or None."""
    return None if at is None else at.isoformat()


def _channel_dict(c: ChannelStatus, now: datetime, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "state": c.state.value,
        "since": iso(c.since),
        "reason": c.reason,
        "paused": c.paused,
        "breaker_tripped": c.breaker_tripped,
        "health": c.health,
        "health_since": iso(c.health_since),
        "last_error": c.last_error,
        "last_error_at": iso(c.last_error_at),
        "last_success": {name: iso(at) for name, at in c.last_success.items()},
        "inbox": {
            "backlog": c.inbox_backlog,
            "oldest_at": iso(c.inbox_oldest_at),
            "oldest_seconds": round(c.inbox_oldest_seconds(now), 3),
        },
        "open_intents": c.open_intents,
        "owner": None
        if c.owner is None
        else {
            "replica": c.owner,
            "epoch": c.lease_epoch,
            "since": iso(c.owner_since),
            "lease_age_seconds": None
            if c.owner_since is None
            else round(max(0.0, (now - c.owner_since).total_seconds()), 3),
        },
    }
    if full:
        data["deliveries_24h"] = {
            "invalid": c.invalid_24h,
            "invalid_reasons": [dict(r) for r in c.invalid_reasons],
            "ignored": c.ignored_24h,
            "unknown_sku": c.unknown_sku_24h,
        }
        data["writes_24h"] = {"not_applied": c.not_applied_24h, "failed": c.failed_24h}
    return data


async def read_status(
    db: Database, channels: Sequence[str], now: datetime, *, full: bool = True
) -> StatusSnapshot:
    """The status of ``channels`` (the configured ones) from the database; ``full`` adds the
    24-hour delivery and write counts."""
    names = list(dict.fromkeys(channels))
    async with db.read() as conn:
        states: dict[str, Mapping[str, Any]] = {
            row["channel"]: dict(row)
            for row in (
                await conn.execute(
                    sa.select(STATE).where(STATE.c.channel.in_([*names, ALL_CHANNELS]))
                )
            ).mappings()
        }
        successes: dict[str, dict[str, datetime]] = {}
        for row in await conn.execute(
            sa.select(SUCCESS.c.channel, SUCCESS.c.pass_name, SUCCESS.c.last_success_at).where(
                SUCCESS.c.channel.in_(names)
            )
        ):
            successes.setdefault(row.channel, {})[row.pass_name] = row.last_success_at
        backlog = {
            row.channel: (int(row.n), row.oldest)
            for row in await conn.execute(
                sa.select(
                    INBOX.c.channel,
                    sa.func.count().label("n"),
                    sa.func.min(INBOX.c.received_at).label("oldest"),
                )
                .where(INBOX.c.processed_at.is_(None), INBOX.c.channel.in_(names))
                .group_by(INBOX.c.channel)
            )
        }
        open_intents = {
            row.channel: int(row.n)
            for row in await conn.execute(
                sa.select(ACTIONS.c.channel, sa.func.count().label("n"))
                .where(
                    ACTIONS.c.channel.in_(names),
                    ACTIONS.c.status.in_([s.value for s in OPEN_STATUSES]),
                    sa.not_(awaiting_verdict()),
                )
                .group_by(ACTIONS.c.channel)
            )
        }
        extra = await _window_counts(conn, names, now - WINDOW) if full else {}
        owners = {
            row.channel: {
                "owner": row.holder,
                "owner_since": row.acquired_at,
                "lease_epoch": int(row.epoch),
            }
            for row in await conn.execute(
                sa.select(
                    LEASE.c.channel, LEASE.c.holder, LEASE.c.epoch, LEASE.c.acquired_at
                ).where(
                    LEASE.c.channel.in_(names),
                    LEASE.c.holder.is_not(None),
                    LEASE.c.expires_at > now,
                )
            )
        }
    star = states.get(ALL_CHANNELS)
    result = []
    for name in names:
        base = _state_of(states.get(name), star)
        result.append(
            ChannelStatus(
                channel=name,
                **base,
                last_success={p: successes.get(name, {}).get(p) for p in PASSES},
                inbox_backlog=backlog.get(name, (0, None))[0],
                inbox_oldest_at=backlog.get(name, (0, None))[1],
                open_intents=open_intents.get(name, 0),
                **extra.get(name, {}),
                **owners.get(name, {}),
            )
        )
    return StatusSnapshot(at=now, channels=tuple(result), full=full)


def _state_of(row: Mapping[str, Any] | None, star: Mapping[str, Any] | None) -> dict[str, Any]:
    """State, since and reason of one channel from its channel_state row and the global one."""
    rows = [r for r in (star, row) if r is not None]
    paused = [r for r in rows if r["paused"]]
    tripped = [r for r in rows if r["breaker_tripped"]]
    health = row["health"] if row is not None else None
    base: dict[str, Any] = {
        "paused": bool(paused),
        "breaker_tripped": bool(tripped),
        "health": health,
        "health_since": row["health_since"] if row is not None else None,
        "last_error": row["last_error"] if row is not None else None,
        "last_error_at": row["last_error_at"] if row is not None else None,
    }
    if paused:
        since = [r["paused_at"] for r in paused if r["paused_at"] is not None]
        scope = "all channels: " if paused[0] is star else ""
        reason = f"{scope}{paused[0]['paused_reason'] or 'no reason given'}"
        return {**base, "state": State.PAUSED, "since": min(since, default=None), "reason": reason}
    if tripped:
        since = [r["breaker_tripped_at"] for r in tripped if r["breaker_tripped_at"] is not None]
        return {
            **base,
            "state": State.BREAKER_TRIPPED,
            "since": min(since, default=None),
            "reason": tripped[0]["breaker_reason"],
        }
    if row is None or health is None:
        return {**base, "state": State.UNKNOWN, "since": None, "reason": "never opened"}
    known = {h.value: State(h.value) for h in ChannelHealth}
    state = known.get(str(health), State.UNKNOWN)
    error = None if state is State.OK else row["last_error"]
    return {**base, "state": state, "since": row["health_since"], "reason": error}


async def _window_counts(conn: Any, names: list[str], since: datetime) -> dict[str, dict[str, Any]]:
    """Invalid, ignored and unknown-SKU deliveries and NOT_APPLIED / failed writes since
    ``since``, per channel."""
    counts: dict[str, dict[str, Any]] = {name: {} for name in names}
    outcomes = {
        INVALID_OUTCOME: "invalid_24h",
        **dict.fromkeys(IGNORED_OUTCOMES, "ignored_24h"),
        **dict.fromkeys(UNKNOWN_SKU_OUTCOMES, "unknown_sku_24h"),
    }
    for row in await conn.execute(
        sa.select(INBOX.c.channel, INBOX.c.outcome, sa.func.count().label("n"))
        .where(
            INBOX.c.processed_at >= since,
            INBOX.c.channel.in_(names),
            INBOX.c.outcome.in_(list(outcomes)),
        )
        .group_by(INBOX.c.channel, INBOX.c.outcome)
    ):
        key = outcomes[row.outcome]
        counts[row.channel][key] = counts[row.channel].get(key, 0) + int(row.n)
    for name in names:
        if not counts[name].get("invalid_24h"):
            continue
        reasons = await conn.execute(
            sa.select(INBOX.c.processed_at, INBOX.c.topic, INBOX.c.error)
            .where(
                INBOX.c.channel == name,
                INBOX.c.outcome == INVALID_OUTCOME,
                INBOX.c.processed_at >= since,
            )
            .order_by(INBOX.c.processed_at.desc(), INBOX.c.id.desc())
            .limit(REASONS_SHOWN)
        )
        counts[name]["invalid_reasons"] = tuple(
            {"at": iso(r.processed_at), "topic": r.topic, "reason": r.error} for r in reasons
        )
    not_applied = sa.case((ACTIONS.c.response_code == NOT_APPLIED, 1), else_=0)
    for row in await conn.execute(
        # channel, status, kind, completed_at: ix_action_channel_status.
        sa.select(
            ACTIONS.c.channel,
            sa.func.sum(not_applied).label("not_applied"),
            sa.func.count().label("n"),
        )
        .where(
            ACTIONS.c.channel.in_(names),
            ACTIONS.c.kind.in_(["price", "stock"]),
            ACTIONS.c.status == ActionStatus.FAILED.value,
            ACTIONS.c.completed_at >= since,
        )
        .group_by(ACTIONS.c.channel)
    ):
        counts[row.channel]["not_applied_24h"] = int(row.not_applied or 0)
        counts[row.channel]["failed_24h"] = int(row.n) - int(row.not_applied or 0)
    return counts


async def record_pass_success(db: Database, clock: Clock, *, channel: str, pass_name: str) -> None:
    """Remember that ``pass_name`` just succeeded on ``channel``."""
    now = clock.now()
    stmt = db.insert(SUCCESS).values(channel=channel, pass_name=pass_name, last_success_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["channel", "pass_name"], set_={"last_success_at": now}
    )
    async with db.write() as conn:
        await conn.execute(stmt)


def publish(metrics: Metrics, snapshot: StatusSnapshot) -> None:
    """Set the per-channel gauges from ``snapshot`` (channels no longer configured vanish)."""
    gauges = (
        metrics.channel_up,
        metrics.channel_state,
        metrics.breaker_tripped,
        metrics.paused,
        metrics.inbox_backlog,
        metrics.inbox_oldest_seconds,
        metrics.last_success,
        metrics.open_intents,
    )
    for gauge in gauges:
        gauge.clear()
    for c in snapshot.channels:
        metrics.channel_up.labels(c.channel).set(1 if c.state is State.OK else 0)
        for state in State:
            metrics.channel_state.labels(c.channel, state.value).set(int(c.state is state))
        metrics.breaker_tripped.labels(c.channel).set(int(c.breaker_tripped))
        metrics.paused.labels(c.channel).set(int(c.paused))
        metrics.inbox_backlog.labels(c.channel).set(c.inbox_backlog)
        metrics.inbox_oldest_seconds.labels(c.channel).set(c.inbox_oldest_seconds(snapshot.at))
        metrics.open_intents.labels(c.channel).set(c.open_intents)
        for pass_name, at in c.last_success.items():
            if at is not None:
                metrics.last_success.labels(c.channel, pass_name).set(at.timestamp())


# -- rendering --------------------------------------------------------------------------------


def _ago(now: datetime, at: datetime | None) -> str:
    """``3m ago`` style age; ``never`` for None."""
    if at is None:
        return "never"
    seconds = max(0, int((now - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


_STYLE: Final = {
    State.OK: "green",
    State.DEGRADED: "yellow",
    State.UNKNOWN: "yellow",
    State.AUTH_FAILED: "bold red",
    State.BREAKER_TRIPPED: "bold red",
    State.PAUSED: "bold magenta",
}


def render_status(
    snapshot: StatusSnapshot, console: Console, fmt: Literal["table", "json"] = "table"
) -> None:
    """Print the snapshot as a table that fits the console (cells fold, no column dropped) or
    as JSON."""
    if fmt == "json":
        console.print_json(orjson.dumps(snapshot.as_dict()).decode())
        return
    now = snapshot.at
    table = Table(show_lines=True)
    for header in (
        "channel",
        "state",
        "last success",
        "inbox",
        "open intents",
        "deliveries 24h",
        "writes 24h",
        "reason",
    ):
        # fold: a narrow terminal wraps a cell's text onto more lines instead of cutting it.
        table.add_column(header, overflow="fold")
    for c in snapshot.channels:
        state = f"[{_STYLE[c.state]}]{c.state.value}[/]"
        since = "" if c.since is None else f"\nsince {_ago(now, c.since)}"
        if c.owner is not None:  # several replicas: who owns it, for how long
            since += f"\nowner {escape(c.owner)} ({_ago(now, c.owner_since)})"
        inbox = str(c.inbox_backlog)
        if c.inbox_backlog:
            inbox += f"\noldest {_ago(now, c.inbox_oldest_at)}"
        reasons = [c.reason or ""] + [
            f"invalid {r['topic']}: {r['reason']}" for r in c.invalid_reasons
        ]
        table.add_row(
            Text(c.channel),
            state + since,
            "\n".join(f"{p} {_ago(now, at)}" for p, at in c.last_success.items()),
            inbox,
            str(c.open_intents),
            f"invalid {c.invalid_24h}\nignored {c.ignored_24h}\nunknown sku {c.unknown_sku_24h}",
            f"not applied {c.not_applied_24h}\nfailed {c.failed_24h}",
            # Marketplace messages may hold brackets: never read them as rich markup.
            Text("\n".join(r for r in reasons if r)),
        )
    console.print(table)
    bad = [c.channel for c in snapshot.channels if c.state is not State.OK]
    console.print("all channels ok" if not bad else f"not ok: {', '.join(bad)}", highlight=False)
