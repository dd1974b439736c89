"""One batch to a marketplace: call the channel with the rows the outbox claimed (marked
``sent`` and committed), then write each outcome onto the same rows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog

from connectors.base import Channel
from daemon import action_status
from daemon.action_status import Completion, completion
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus, Listing
from daemon.metrics import Metrics
from domain.clock import Clock
from domain.errors import RejectedUpdateError
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate

LISTINGS = Listing.__table__  # type: ignore[attr-defined]
log = structlog.get_logger("repricerd.outbox")


@dataclass
class DispatchReport:
    """What one dispatch round did for one channel and kind."""

    sent: int = 0
    confirmed: int = 0
    accepted: int = 0
    failed: int = 0
    retry: int = 0
    superseded: int = 0
    blocked_reason: str | None = None


async def send_batch(
    db: Database,
    clock: Clock,
    metrics: Metrics,
    channel: Channel,
    kind: ActionKind,
    rows: Sequence[Any],
    report: DispatchReport,
) -> None:
    """Call the marketplace with rows ``_claim`` marked sent, then record each outcome."""
    started = time.perf_counter()
    try:
        if kind is ActionKind.PRICE:
            results = await channel.push_prices([_price_update(row) for row in rows])
        else:
            results = await channel.push_stock([_stock_update(row) for row in rows])
    except RejectedUpdateError as err:
        results = [
            PushResult(row.idempotency_key, PushStatus.REJECTED, err.code, str(err)) for row in rows
        ]
    except Exception as err:
        # Transient, auth or an unexpected error: not applied as far as we know; the same
        # keys go out again on the next round (retries stop at MAX_ATTEMPTS).
        results = [
            PushResult(
                row.idempotency_key,
                PushStatus.RETRY,
                getattr(err, "code", None) or type(err).__name__,
                str(err),
            )
            for row in rows
        ]
        log.warning(
            "push_failed",
            channel=channel.name,
            kind=kind.value,
            error=str(err),
            batch=len(rows),
        )
    finally:
        metrics.push_seconds.labels(channel.name, kind.value).observe(time.perf_counter() - started)
    await _complete(db, clock, metrics, channel.name, kind, rows, results, report)


async def _complete(
    db: Database,
    clock: Clock,
    metrics: Metrics,
    channel: str,
    kind: ActionKind,
    rows: Sequence[Any],
    results: Sequence[PushResult],
    report: DispatchReport,
) -> None:
    by_key = {result.idempotency_key: result for result in results}
    now = clock.now()
    completions: list[Completion] = []
    applied: list[dict[str, Any]] = []
    for row in rows:
        result = by_key.get(row.idempotency_key) or PushResult(
            row.idempotency_key, PushStatus.RETRY, "NO_RESULT", "the channel returned no result"
        )
        done = completion(row.id, row.attempts, result, now)
        completions.append(done)
        counter = _REPORTED[done.status]
        setattr(report, counter, getattr(report, counter) + 1)
        metrics.actions.labels(channel, kind.value, done.status.value).inc()
        # An accepted write (Amazon, Walmart feeds: applied within minutes) counts as the
        # listing's value too, or every pass would send it again; reconcile verifies it and
        # puts the live value back on the listing if it never landed.
        if done.applied:
            applied.append(
                {
                    "b_channel": channel,
                    "b_sku": row.sku,
                    "b_now": now,
                    "b_value": row.new_price if kind is ActionKind.PRICE else row.new_quantity,
                }
            )
        if done.status is ActionStatus.FAILED:
            log.warning(
                "push_rejected",
                channel=channel,
                sku=row.sku,
                kind=kind.value,
                code=result.code,
                message=result.message,
            )
    column = LISTINGS.c.price if kind is ActionKind.PRICE else LISTINGS.c.quantity
    async with db.write() as conn:
        await action_status.complete(conn, completions)
        if applied:
            # The listing row holds the last confirmed (or accepted) value: the "old" of the
            # next decision.
            await conn.execute(
                sa.update(LISTINGS)
                .where(
                    LISTINGS.c.channel == sa.bindparam("b_channel"),
                    LISTINGS.c.sku == sa.bindparam("b_sku"),
                )
                .values(
                    {column.name: sa.bindparam("b_value"), "updated_at": sa.bindparam("b_now")}
                    | (
                        {"price_changed_at": sa.bindparam("b_now")}
                        if kind is ActionKind.PRICE
                        else {}
                    )
                ),
                applied,
            )


# The DispatchReport counter each completed status adds to (a sent row was accepted).
_REPORTED = {
    ActionStatus.CONFIRMED: "confirmed",
    ActionStatus.FAILED: "failed",
    ActionStatus.PLANNED: "retry",
    ActionStatus.SENT: "accepted",
}


def _price_update(row: Any) -> PriceUpdate:
    return PriceUpdate(
        sku=row.sku,
        price=row.new_price,
        currency=row.currency or "USD",
        idempotency_key=row.idempotency_key,
        floor=row.floor,
        ceiling=row.ceiling,
        external_id=row.external_id,
    )


def _stock_update(row: Any) -> StockUpdate:
    return StockUpdate(
        sku=row.sku,
        quantity=row.new_quantity,
        idempotency_key=row.idempotency_key,
        # First send: compare against the value we published. A retry lets the connector compare
        # against what it last read live (a stale compare-and-set re-reads), so a re-drive does
        # not fail on the same stale value forever; it is still never a blind overwrite.
        expected=row.old_quantity if row.attempts == 0 else None,
        external_id=row.external_id,
    )
