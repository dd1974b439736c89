"""The reprice pass for one channel: snapshot → strategy → guards → action rows → dispatch."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.base import OfferObservation
from daemon.bulk import gc_paused
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus, Listing
from daemon.outbox import Outbox, new_idempotency_key
from daemon.settings import PricingSettings
from daemon.snapshots import make_snapshot
from strategies.engine import Outcome, decide
from strategies.guards import Verdict

LISTINGS = Listing.__table__  # type: ignore[attr-defined]
PLAN_CHUNK = 2_000
_STATUS = {
    Verdict.SEND: ActionStatus.PLANNED,
    Verdict.HOLD: ActionStatus.HELD,
    Verdict.BLOCKED: ActionStatus.BLOCKED,
}


@dataclass
class PricePlan:
    """Action rows to record and listing decision digests to remember, for one channel."""

    actions: list[dict[str, Any]]
    digests: list[dict[str, Any]]
    counts: dict[str, int]


def digest(outcome: Outcome) -> str:
    """A short fingerprint of a decision, to record an unchanged hold or block only once."""
    text = f"{outcome.verdict}|{outcome.rule}|{outcome.reason}|{outcome.price}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def plan_prices(
    rows: Sequence[Any],
    *,
    channel: str,
    pass_id: str,
    now: datetime,
    pricing: PricingSettings,
    observations: Mapping[str, OfferObservation],
    on_hand: Mapping[str, int],
) -> PricePlan:
    """Decide every listing; SEND becomes a planned intent, a changed hold/block is recorded."""
    actions: list[dict[str, Any]] = []
    digests: list[dict[str, Any]] = []
    counts: dict[str, int] = dict.fromkeys(Verdict, 0)
    rules, guards = pricing.rules, pricing.guards
    with gc_paused():
        for row in rows:
            snapshot = make_snapshot(
                row,
                channel=channel,
                now=now,
                observation=observations.get(row.sku),
                on_hand=on_hand.get(row.sku),
            )
            outcome = decide(snapshot, rules, guards)
            counts[outcome.verdict] += 1
            # A send is always recorded; a hold or block only when it differs from the last one.
            fingerprint = None if outcome.verdict is Verdict.SEND else digest(outcome)
            if fingerprint is not None and fingerprint == row.last_decision:
                continue  # the same hold/block as last time: already explained in the log
            if fingerprint != row.last_decision:
                digests.append({"b_sku": row.sku, "b_digest": fingerprint})
            actions.append(
                action_row(
                    outcome,
                    channel=channel,
                    sku=row.sku,
                    pass_id=pass_id,
                    now=now,
                    old_price=row.price,
                    currency=row.currency,
                )
            )
    return PricePlan(actions, digests, counts)


def action_row(
    outcome: Outcome,
    *,
    channel: str,
    sku: str,
    pass_id: str,
    now: datetime,
    old_price: Any,
    currency: str,
) -> dict[str, Any]:
    """The ``action`` row for one decision."""
    return {
        "pass_id": pass_id,
        "kind": ActionKind.PRICE.value,
        "channel": channel,
        "sku": sku,
        "status": _STATUS[outcome.verdict].value,
        "old_price": old_price,
        "new_price": outcome.price,
        "currency": currency,
        "floor": outcome.guards.floor,
        "ceiling": outcome.guards.ceiling,
        "old_quantity": None,
        "new_quantity": None,
        "strategy": outcome.strategy,
        "rule": outcome.rule,
        "reason": outcome.reason[:1000],
        "trace": [step.as_dict() for step in outcome.decision.trace],
        "guard_verdicts": [step.as_dict() for step in outcome.guards.steps],
        "idempotency_key": new_idempotency_key(),
        "attempts": 0,
        "created_at": now,
    }


async def plan_and_record(
    outbox: Outbox,
    rows: Sequence[Any],
    *,
    channel: str,
    pass_id: str,
    now: datetime,
    pricing: PricingSettings,
    observations: Mapping[str, OfferObservation],
    on_hand: Mapping[str, int],
) -> dict[str, int]:
    """Decide every row and record the resulting actions; return counts per verdict.

    Works chunk by chunk: deciding is CPU work on the event loop, so between chunks the loop
    answers webhooks and health checks (a chunk takes tens of milliseconds). Deciding in a
    worker thread was measured slower: the driver thread needs the GIL for every row it binds
    and convoys behind the deciding thread.
    """
    counts = {verdict.value: 0 for verdict in Verdict}
    counts["recorded"] = 0
    # The collector stays paused across the awaits too: the pass keeps 100,000 rows alive,
    # and each full collection would re-scan all of them (see daemon.bulk).
    with gc_paused():
        for start in range(0, len(rows), PLAN_CHUNK):
            plan = plan_prices(
                rows[start : start + PLAN_CHUNK],
                channel=channel,
                pass_id=pass_id,
                now=now,
                pricing=pricing,
                observations=observations,
                on_hand=on_hand,
            )
            for verdict, count in plan.counts.items():
                counts[verdict] += count
            counts["recorded"] += await outbox.record(
                plan.actions, also=_digest_writer(outbox.db, channel, plan)
            )
    return counts


def _digest_writer(
    db: Database, channel: str, plan: PricePlan
) -> Callable[[AsyncConnection], Awaitable[None]]:
    async def write(conn: AsyncConnection) -> None:
        await remember_digests(db, conn, channel, plan.digests)

    return write


async def remember_digests(
    db: Database, conn: AsyncConnection, channel: str, digests: Sequence[dict[str, Any]]
) -> None:
    """Store each listing's latest decision fingerprint (inside the caller's transaction)."""
    statement = (
        sa.update(LISTINGS)
        .where(
            LISTINGS.c.channel == sa.bindparam("b_channel"), LISTINGS.c.sku == sa.bindparam("b_sku")
        )
        .values(last_decision=sa.bindparam("b_digest"))
    )
    await db.execute_many(conn, statement, [{**d, "b_channel": channel} for d in digests])
