"""Operator switches and channel health in ``channel_state``: pause, resume, breaker, last error."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.db.engine import Database
from daemon.db.models import ALL_CHANNELS, ChannelHealth, ChannelState
from domain.clock import Clock
from domain.errors import ChannelAuthError

STATE = ChannelState.__table__  # type: ignore[attr-defined]


async def upsert_channel_state(
    db: Database,
    channel: str,
    values: Mapping[str, object],
    on_update: Mapping[str, object] | None = None,
) -> None:
    """Insert or update one channel_state row (``on_update`` overrides values of an update)."""
    stmt = db.insert(STATE).values(channel=channel, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["channel"], set_={**values, **(on_update or {})}
    )
    async with db.write() as conn:
        await conn.execute(stmt)


async def pause(db: Database, clock: Clock, *, channel: str | None, reason: str) -> None:
    """Stop all writes to ``channel`` (or to every channel) from the next batch on."""
    now = clock.now()
    await upsert_channel_state(
        db,
        channel or ALL_CHANNELS,
        {"paused": True, "paused_reason": reason, "paused_at": now, "updated_at": now},
        {"paused_at": _first_set(STATE.c.paused, STATE.c.paused_at, now)},
    )


def _first_set(switch: sa.Column[bool], since: sa.Column[datetime], now: datetime) -> Any:
    """Keep the time a switch was first set while it stays set (status shows since when)."""
    return sa.case((switch.is_(True), sa.func.coalesce(since, now)), else_=now)


async def resume(
    db: Database, clock: Clock, *, channel: str | None, rearm_after: timedelta = timedelta(0)
) -> None:
    """Allow writes again and clear a tripped breaker (for one channel, or everywhere).

    The breaker stays disarmed for ``rearm_after``: the operator has looked at the moves that
    tripped it, and tripping again on the same moves would make ``resume`` useless.
    """
    # Only a breaker that actually tripped is disarmed; resuming after a plain pause keeps it armed.
    tripped = STATE.c.breaker_tripped.is_(True)
    if channel is not None:
        tripped = sa.and_(tripped, STATE.c.channel.in_([channel, ALL_CHANNELS]))
    async with db.write() as conn:
        await conn.execute(
            sa.update(STATE).where(tripped).values(breaker_rearm_at=clock.now() + rearm_after)
        )
    values = {
        "paused": False,
        "paused_reason": None,
        "breaker_tripped": False,
        "breaker_reason": None,
        "paused_at": None,
        "breaker_tripped_at": None,
        "updated_at": clock.now(),
    }
    if channel is not None:
        await upsert_channel_state(db, channel, values)
        return
    async with db.write() as conn:
        await conn.execute(sa.update(STATE).values(**values))
    await upsert_channel_state(db, ALL_CHANNELS, values)


async def trip_breaker(db: Database, clock: Clock, *, channel: str, reason: str) -> None:
    """Stop writes to ``channel`` until an operator runs ``repricerd resume``."""
    now = clock.now()
    await upsert_channel_state(
        db,
        channel,
        {
            "breaker_tripped": True,
            "breaker_reason": reason,
            "breaker_tripped_at": now,
            "updated_at": now,
        },
        {
            "breaker_tripped_at": _first_set(
                STATE.c.breaker_tripped, STATE.c.breaker_tripped_at, now
            )
        },
    )


async def write_block_reason(
    conn: AsyncConnection, channel: str, *, prices: bool = True
) -> str | None:
    """Why writes to ``channel`` are refused right now, or ``None`` if they may go.

    A pause stops every write. A tripped breaker stops price writes only: it answers a pricing
    anomaly, and holding back stock updates meanwhile would oversell.
    """
    rows = (
        await conn.execute(
            sa.select(
                STATE.c.channel,
                STATE.c.paused,
                STATE.c.paused_reason,
                STATE.c.breaker_tripped,
                STATE.c.breaker_reason,
            ).where(STATE.c.channel.in_([channel, ALL_CHANNELS]))
        )
    ).all()
    for row in sorted(rows, key=lambda r: r.channel != ALL_CHANNELS):
        scope = "all channels" if row.channel == ALL_CHANNELS else f"channel {channel}"
        if row.paused:
            return f"paused ({scope}): {row.paused_reason or 'no reason given'}"
        if row.breaker_tripped and prices:
            return f"circuit breaker tripped ({scope}): {row.breaker_reason}"
    return None


async def breaker_armed(conn: AsyncConnection, channel: str, now: datetime) -> bool:
    """False while a `resume` keeps the channel's breaker disarmed."""
    rearm = (
        (
            await conn.execute(
                sa.select(STATE.c.breaker_rearm_at).where(
                    STATE.c.channel.in_([channel, ALL_CHANNELS])
                )
            )
        )
        .scalars()
        .all()
    )
    return not any(at is not None and at > now for at in rearm)


def health_of(err: BaseException) -> ChannelHealth:
    """The channel health an error means: refused credentials, or anything else."""
    return (
        ChannelHealth.AUTH_FAILED if isinstance(err, ChannelAuthError) else ChannelHealth.DEGRADED
    )


async def record_health(
    db: Database,
    clock: Clock,
    *,
    channel: str,
    error: str | None,
    health: ChannelHealth | None = None,
) -> None:
    """Remember the last success or error of a channel and its health (shown by status).

    ``health`` defaults to ``ok`` on success and ``degraded`` on an error; ``health_since``
    moves only when the health changes.
    """
    now = clock.now()
    if health is None:
        health = ChannelHealth.OK if error is None else ChannelHealth.DEGRADED
    values: dict[str, object] = {"updated_at": now, "health": health.value}
    if error is None:
        values["last_success_at"] = now
    else:
        values.update(last_error_at=now, last_error=error[:2000])
    stmt = db.insert(STATE).values(channel=channel, health_since=now, **values)
    changed = STATE.c.health.is_distinct_from(health.value)
    stmt = stmt.on_conflict_do_update(
        index_elements=["channel"],
        set_={**values, "health_since": sa.case((changed, now), else_=STATE.c.health_since)},
    )
    async with db.write() as conn:
        await conn.execute(stmt)
