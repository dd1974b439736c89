"""The operator audit trail: every console action (login, pause, resume, pass run, breaker
release) recorded in ``operator_action`` with who and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from daemon.db.engine import Database
from daemon.db.models import OperatorAction
from domain.clock import Clock

TABLE = OperatorAction.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class OperatorEntry:
    """One recorded operator action."""

    at: datetime
    actor: str
    action: str
    channel: str | None
    detail: str


async def record(
    db: Database,
    clock: Clock,
    *,
    actor: str,
    action: str,
    channel: str | None = None,
    detail: str = "",
) -> None:
    """Append one operator action (committed before the caller answers)."""
    async with db.write() as conn:
        await conn.execute(
            sa.insert(TABLE).values(
                at=clock.now(),
                actor=actor[:200],
                action=action[:40],
                channel=channel,
                detail=detail[:2000],
            )
        )


async def recent(db: Database, *, limit: int = 50) -> list[OperatorEntry]:
    """The latest operator actions, newest first."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    TABLE.c.at, TABLE.c.actor, TABLE.c.action, TABLE.c.channel, TABLE.c.detail
                )
                .order_by(TABLE.c.at.desc(), TABLE.c.id.desc())
                .limit(limit)
            )
        ).all()
    return [OperatorEntry(r.at, r.actor, r.action, r.channel, r.detail) for r in rows]
