"""The pass gate: a reprice pass's price intents wait until the breaker has judged the pass.

A pass records its intents as ``planned`` chunk by chunk (memory stays flat however large the
catalogue) while ``channel_state.open_pass`` names it; nothing dispatches an intent of the open
pass. When the whole pass has been judged, the gate closes: one row updated, the intents go out;
or the breaker tripped and they are all blocked. A pass that died half-way (crash, error) leaves
its gate open: its intents are superseded, never sent, and the next pass decides again.
(Before migration 0003 the same wait was a ``staged`` status, flipped row by row at the end:
rewriting 100,000 rows cost a fifth of a pass.)
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from daemon import action_status
from daemon.controls import STATE, upsert_channel_state
from daemon.db.engine import Database
from daemon.db.models import Action, ActionKind, ActionStatus
from domain.clock import Clock

ACTIONS = Action.__table__  # type: ignore[attr-defined]
ABANDONED = "the pass stopped before the circuit breaker judged it"


def awaiting_verdict() -> ColumnElement[bool]:
    """True for a price intent of a pass still open on its channel (not to be sent yet)."""
    return sa.and_(
        ACTIONS.c.kind == ActionKind.PRICE.value,
        sa.exists().where(
            STATE.c.channel == ACTIONS.c.channel, STATE.c.open_pass == ACTIONS.c.pass_id
        ),
    )


async def open_gate(db: Database, clock: Clock, *, channel: str, pass_id: str) -> None:
    """Hold back the price intents ``pass_id`` is about to record on ``channel``."""
    await upsert_channel_state(db, channel, {"open_pass": pass_id, "updated_at": clock.now()})


async def close_gate(
    db: Database, clock: Clock, *, channel: str, pass_id: str, blocked_by: str | None
) -> int:
    """Let the pass's intents go, or block them all (the breaker tripped); returns how many
    were blocked."""
    blocked = 0
    async with db.write() as conn:
        if blocked_by is not None:
            blocked = await action_status.block(
                conn, _open_intents(channel, pass_id), clock.now(), f"circuit breaker: {blocked_by}"
            )
        await _clear_gate(conn, clock, STATE.c.channel == channel, STATE.c.open_pass == pass_id)
    return blocked


async def abandon_pass(db: Database, clock: Clock, *, channel: str, pass_id: str) -> int:
    """A pass that failed half-way: supersede what it recorded and close its gate."""
    async with db.write() as conn:
        count = await action_status.supersede(
            conn, _open_intents(channel, pass_id), clock.now(), ABANDONED
        )
        await _clear_gate(conn, clock, STATE.c.channel == channel, STATE.c.open_pass == pass_id)
    return count


async def abandon_open_passes(db: Database, clock: Clock, channel: str | None = None) -> int:
    """At start-up (or when a replica takes ``channel`` over): intents of passes that died
    before their breaker check are never sent."""
    mine = [] if channel is None else [ACTIONS.c.channel == channel]
    gates = [] if channel is None else [STATE.c.channel == channel]
    async with db.write() as conn:
        count = await action_status.supersede(
            conn,
            sa.and_(
                *mine,
                sa.or_(
                    ACTIONS.c.status == ActionStatus.STAGED.value,
                    sa.and_(ACTIONS.c.status == ActionStatus.PLANNED.value, awaiting_verdict()),
                ),
            ),
            clock.now(),
            ABANDONED,
        )
        await _clear_gate(conn, clock, STATE.c.open_pass.is_not(None), *gates)
    return count


async def _clear_gate(conn: AsyncConnection, clock: Clock, *where: ColumnElement[bool]) -> None:
    values = {"open_pass": None, "updated_at": clock.now()}
    await conn.execute(sa.update(STATE).where(*where).values(values))


def _open_intents(channel: str, pass_id: str) -> ColumnElement[bool]:
    return sa.and_(
        ACTIONS.c.channel == channel,
        ACTIONS.c.pass_id == pass_id,
        ACTIONS.c.kind == ActionKind.PRICE.value,
        ACTIONS.c.status == ActionStatus.PLANNED.value,
    )
