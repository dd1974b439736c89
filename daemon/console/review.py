"""What a tripped breaker held back: the price intents of the pass that tripped it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from daemon.db.engine import Database
from daemon.db.models import Action, ActionKind, ActionStatus
from daemon.history import fetch_history

ACTIONS = Action.__table__  # type: ignore[attr-defined]
BREAKER_PREFIX: Final = "circuit breaker:"
SHOWN: Final = 500


async def breaker_moves(
    db: Database, channel: str, now: datetime
) -> tuple[str | None, list[dict[str, Any]]]:
    """The pass id of the channel's latest breaker-blocked pass and the moves it held back
    (at most ``SHOWN``): what the breaker stopped, for the operator to judge before release."""
    async with db.read() as conn:
        pass_id = (
            await conn.execute(
                sa.select(ACTIONS.c.pass_id)
                .where(
                    ACTIONS.c.channel == channel,
                    ACTIONS.c.kind == ActionKind.PRICE.value,
                    ACTIONS.c.status == ActionStatus.BLOCKED.value,
                    ACTIONS.c.reason.like(f"{BREAKER_PREFIX}%"),
                )
                .order_by(ACTIONS.c.created_at.desc(), ACTIONS.c.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    if pass_id is None:
        return None, []
    moves = await fetch_history(
        db,
        now=now,
        channel=channel,
        kind=ActionKind.PRICE.value,
        status=ActionStatus.BLOCKED.value,
        pass_id=pass_id,
        limit=SHOWN,
    )
    return pass_id, moves
