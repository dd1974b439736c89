"""The action lifecycle: which status an action row may move to, and the only code that moves it.

An action is recorded ``planned`` (an intent), ``blocked`` or ``held`` (a decision not to write).
An intent is claimed ``sent`` (committed before the marketplace call), then completed:
``confirmed``, ``failed``, back to ``planned`` (a retry or a deferred update), or left ``sent``
with the code ``ACCEPTED`` (queued at the marketplace) until reconcile confirms it or marks it
``failed`` with ``NOT_APPLIED``. A newer decision supersedes an intent not yet answered; a tripped
breaker blocks the intents of its pass. Every UPDATE of ``action.status`` is issued here, and
each one only touches rows in a status its transition starts from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from daemon.db.models import Action, ActionStatus
from domain.writes import PushResult, PushStatus

ACTIONS = Action.__table__  # type: ignore[attr-defined]
MAX_ATTEMPTS = 8
ACCEPTED = "ACCEPTED"  # response_code of a write the marketplace queued (status stays sent)
NOT_APPLIED = "NOT_APPLIED"  # response_code of an accepted write that never went live
ID_CHUNK = 900  # ids per IN (…): below SQLite's bound-parameter limit

PLANNED, SENT = ActionStatus.PLANNED, ActionStatus.SENT

RECORDED_AS: Final = frozenset({PLANNED, ActionStatus.BLOCKED, ActionStatus.HELD})
"""The statuses an action row is inserted with."""

TRANSITIONS: Final[Mapping[ActionStatus, frozenset[ActionStatus]]] = {
    # ``staged``: intents recorded before migration 0003, only ever abandoned at start-up.
    ActionStatus.STAGED: frozenset({ActionStatus.SUPERSEDED}),
    PLANNED: frozenset({SENT, ActionStatus.SUPERSEDED, ActionStatus.BLOCKED}),
    # sent → sent: an unfinished send re-driven with its key, or a write accepted (queued);
    # sent → planned: a retry, or an update the connector deferred.
    SENT: frozenset(
        {SENT, ActionStatus.CONFIRMED, ActionStatus.FAILED, PLANNED, ActionStatus.SUPERSEDED}
    ),
}
"""Allowed status changes of an existing row; a status not listed is final."""


class IllegalTransitionError(ValueError):
    """A status change the lifecycle does not allow."""


def require(old: ActionStatus, new: ActionStatus) -> None:
    """Raise unless an action may move from ``old`` to ``new``."""
    if new not in TRANSITIONS.get(old, frozenset()):
        raise IllegalTransitionError(f"an action cannot go from {old.value} to {new.value}")


def sources(new: ActionStatus) -> list[str]:
    """The statuses (column values) an action may move to ``new`` from."""
    return [old.value for old, targets in TRANSITIONS.items() if new in targets]


@dataclass(frozen=True, slots=True)
class Completion:
    """What one push result writes back onto its ``sent`` row."""

    action_id: int
    status: ActionStatus
    response_code: str | None
    response_message: str | None
    marketplace_ref: str | None
    completed_at: datetime | None
    attempts: int

    @property
    def applied(self) -> bool:
        """The listing now holds the new value (confirmed, or accepted: reconcile checks)."""
        return self.status is ActionStatus.CONFIRMED or self.response_code == ACCEPTED


def completion(action_id: int, attempts: int, result: PushResult, now: datetime) -> Completion:
    """The outcome of one push result for a row claimed with ``attempts`` earlier attempts."""
    tried = attempts + 1  # the claim counted this attempt
    status, completed = _status_after(result, tried)
    code = result.code or (ACCEPTED if result.status is PushStatus.ACCEPTED else None)
    return Completion(
        action_id=action_id,
        status=status,
        response_code=code,
        response_message=(result.message or "")[:2000] or None,
        marketplace_ref=result.marketplace_ref,
        completed_at=now if completed else None,
        # A deferred update was never sent: the claim's attempt is given back.
        attempts=attempts if result.status is PushStatus.DEFERRED else tried,
    )


def _status_after(result: PushResult, attempts: int) -> tuple[ActionStatus, bool]:
    """Map a push result to (row status, completed?)."""
    if result.status is PushStatus.CONFIRMED:
        return ActionStatus.CONFIRMED, True
    if result.status is PushStatus.ACCEPTED:
        return SENT, False  # queued at the marketplace; reconcile verifies it
    if result.status is PushStatus.REJECTED:
        return ActionStatus.FAILED, True
    if result.status is PushStatus.DEFERRED:
        return PLANNED, False  # not sent: no attempt used
    if attempts >= MAX_ATTEMPTS:
        return ActionStatus.FAILED, True
    return PLANNED, False


def unfinished() -> ColumnElement[bool]:
    """A ``sent`` row without an answer: a crash or shutdown cut its call."""
    return sa.and_(ACTIONS.c.status == SENT.value, ACTIONS.c.response_code.is_(None))


def open_intent() -> ColumnElement[bool]:
    """An intent the marketplace has not taken yet: planned, or sent without an answer."""
    return sa.or_(ACTIONS.c.status == PLANNED.value, unfinished())


def _fenced(fence: ColumnElement[bool] | None) -> tuple[ColumnElement[bool], ...]:
    """The lease fence (``daemon.leases``) to AND into a WHERE, if the channel is leased."""
    return () if fence is None else (fence,)


async def claim(
    conn: AsyncConnection,
    ids: Sequence[int],
    now: datetime,
    fence: ColumnElement[bool] | None = None,
) -> set[int]:
    """Mark the still-open intents among ``ids`` sent (one attempt more); returns their ids.

    Only rows still open: one superseded or completed since it was read is not sent. With a
    ``fence`` (several replicas), nothing is claimed unless this replica still holds the
    channel's lease in the database.
    """
    result = await conn.execute(
        sa.update(ACTIONS)
        .where(ACTIONS.c.id.in_(list(ids)), open_intent(), *_fenced(fence))
        .values(
            status=SENT.value,
            attempts=ACTIONS.c.attempts + 1,
            sent_at=now,
            response_code=None,
            response_message=None,
        )
        .returning(ACTIONS.c.id)
    )
    return set(result.scalars())


async def complete(
    conn: AsyncConnection,
    completions: Sequence[Completion],
    fence: ColumnElement[bool] | None = None,
) -> None:
    """Write push outcomes onto their ``sent`` rows (one batched statement); with a ``fence``,
    only while this replica holds the channel's lease (else the rows stay ``sent`` and the new
    owner re-drives them with the same keys)."""
    for done in completions:
        require(SENT, done.status)
    await conn.execute(
        sa.update(ACTIONS)
        .where(
            ACTIONS.c.id == sa.bindparam("b_id"), ACTIONS.c.status == SENT.value, *_fenced(fence)
        )
        .values(
            status=sa.bindparam("b_status"),
            response_code=sa.bindparam("b_code"),
            response_message=sa.bindparam("b_message"),
            marketplace_ref=sa.bindparam("b_ref"),
            completed_at=sa.bindparam("b_completed"),
            attempts=sa.bindparam("b_attempts"),
        ),
        [_bind(done) for done in completions],
    )


def _bind(done: Completion) -> dict[str, Any]:
    return {
        "b_id": done.action_id,
        "b_status": done.status.value,
        "b_code": done.response_code,
        "b_message": done.response_message,
        "b_ref": done.marketplace_ref,
        "b_completed": done.completed_at,
        "b_attempts": done.attempts,
    }


async def supersede(
    conn: AsyncConnection,
    where: ColumnElement[bool],
    now: datetime,
    message: str | None = None,
) -> int:
    """Supersede the rows matching ``where`` that are still open; returns how many."""
    values: dict[str, Any] = {"status": ActionStatus.SUPERSEDED.value, "completed_at": now}
    if message is not None:
        values["response_message"] = message
    result = await conn.execute(
        sa.update(ACTIONS)
        .where(where, ACTIONS.c.status.in_(sources(ActionStatus.SUPERSEDED)))
        .values(values)
    )
    return int(result.rowcount or 0)


async def supersede_ids(conn: AsyncConnection, ids: Sequence[int], now: datetime) -> None:
    """Supersede the open intents among ``ids`` (older intents a newer one replaces)."""
    for start in range(0, len(ids), ID_CHUNK):
        await supersede(conn, ACTIONS.c.id.in_(list(ids[start : start + ID_CHUNK])), now)


async def block(
    conn: AsyncConnection, where: ColumnElement[bool], now: datetime, reason: str
) -> int:
    """Block the planned intents matching ``where`` (the breaker tripped); returns how many."""
    result = await conn.execute(
        sa.update(ACTIONS)
        .where(where, ACTIONS.c.status.in_(sources(ActionStatus.BLOCKED)))
        .values(status=ActionStatus.BLOCKED.value, completed_at=now, reason=reason[:1000])
    )
    return int(result.rowcount or 0)


async def settle_accepted(
    conn: AsyncConnection,
    *,
    live: Sequence[int],
    not_live: Sequence[int],
    now: datetime,
    fence: ColumnElement[bool] | None = None,
) -> None:
    """Accepted writes: confirm those now live, fail those not live in their apply window."""
    accepted = sa.and_(
        ACTIONS.c.status == SENT.value, ACTIONS.c.response_code == ACCEPTED, *_fenced(fence)
    )
    if live:
        await conn.execute(
            sa.update(ACTIONS)
            .where(ACTIONS.c.id.in_(list(live)), accepted)
            .values(status=ActionStatus.CONFIRMED.value, completed_at=now)
        )
    if not_live:
        await conn.execute(
            sa.update(ACTIONS)
            .where(ACTIONS.c.id.in_(list(not_live)), accepted)
            .values(
                status=ActionStatus.FAILED.value,
                completed_at=now,
                response_code=NOT_APPLIED,
                response_message="accepted by the marketplace, not live in its apply window",
            )
        )
