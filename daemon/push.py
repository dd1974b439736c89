"""One batch to a marketplace: the claimed intents (marked ``sent`` and committed) become the
connector's typed updates, the channel answers with a ``PushResult`` per key, and each result
becomes a ``Completion`` written onto its row."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.base import Channel
from daemon import action_status
from daemon.action_status import Completion, completion
from daemon.db.engine import Database
from daemon.db.models import ActionKind, ActionStatus, Listing
from daemon.intents import ClaimedWrite
from daemon.metrics import Metrics
from daemon.reports import DispatchReport
from domain.errors import RejectedUpdateError
from domain.writes import PriceUpdate, PushResult, PushStatus, StockUpdate

LISTINGS = Listing.__table__  # type: ignore[attr-defined]
log = structlog.get_logger("repricerd.outbox")


async def push(
    channel: Channel, kind: ActionKind, batch: Sequence[ClaimedWrite], metrics: Metrics
) -> list[PushResult]:
    """Call the marketplace with intents the outbox claimed; one result per idempotency key.

    An error of the whole call is every row's result: a refusal fails them, anything else
    (transient, auth, unexpected) leaves them to be retried with the same keys.
    """
    started = time.perf_counter()
    try:
        if kind is ActionKind.PRICE:
            return list(await channel.push_prices([price_update(write) for write in batch]))
        return list(await channel.push_stock([stock_update(write) for write in batch]))
    except RejectedUpdateError as err:
        return [
            PushResult(w.idempotency_key, PushStatus.REJECTED, err.code, str(err)) for w in batch
        ]
    except Exception as err:
        # Not applied as far as we know; the same keys go out again on the next round
        # (retries stop at MAX_ATTEMPTS).
        log.warning(
            "push_failed", channel=channel.name, kind=kind.value, error=str(err), batch=len(batch)
        )
        code = getattr(err, "code", None) or type(err).__name__
        return [PushResult(w.idempotency_key, PushStatus.RETRY, code, str(err)) for w in batch]
    finally:
        metrics.push_seconds.labels(channel.name, kind.value).observe(time.perf_counter() - started)


async def record_outcomes(
    db: Database,
    now: datetime,
    metrics: Metrics,
    channel: str,
    batch: Sequence[ClaimedWrite],
    results: Sequence[PushResult],
    report: DispatchReport,
    fence: sa.ColumnElement[bool] | None = None,
) -> list[Completion]:
    """Write each claimed row's outcome (and the listing's new value once applied); ``fence``:
    the channel's lease (``daemon.leases``), when several replicas share the database."""
    by_key = {result.idempotency_key: result for result in results}
    completions: list[Completion] = []
    applied: list[ClaimedWrite] = []
    for write in batch:
        result = by_key.get(write.idempotency_key) or PushResult(
            write.idempotency_key, PushStatus.RETRY, "NO_RESULT", "the channel returned no result"
        )
        done = completion(write.id, write.attempts, result, now)
        completions.append(done)
        counter = _REPORTED[done.status]
        setattr(report, counter, getattr(report, counter) + 1)
        metrics.actions.labels(channel, write.kind.value, done.status.value).inc()
        # An accepted write (Amazon, Walmart feeds: applied within minutes) counts as the
        # listing's value too, or every pass would send it again; reconcile verifies it and
        # puts the live value back on the listing if it never landed.
        if done.applied:
            applied.append(write)
        if done.status is ActionStatus.FAILED:
            log.warning(
                "push_rejected",
                channel=channel,
                sku=write.sku,
                kind=write.kind.value,
                code=result.code,
                message=result.message,
            )
    async with db.write() as conn:
        await action_status.complete(conn, completions, fence)
        for kind in ActionKind:
            values = [(w.sku, w.value) for w in applied if w.kind is kind]
            if values:
                await _set_listing_values(conn, channel, kind, values, now)
    return completions


async def _set_listing_values(
    conn: AsyncConnection,
    channel: str,
    kind: ActionKind,
    values: Sequence[tuple[str, Decimal | int | None]],
    now: datetime,
) -> None:
    """The listing row holds the last confirmed (or accepted) value: the "old" of the next
    decision."""
    column = LISTINGS.c.price if kind is ActionKind.PRICE else LISTINGS.c.quantity
    values_set: dict[str, sa.BindParameter[object]] = {
        column.name: sa.bindparam("b_value"),
        "updated_at": sa.bindparam("b_now"),
    }
    if kind is ActionKind.PRICE:
        values_set["price_changed_at"] = sa.bindparam("b_now")
    await conn.execute(
        sa.update(LISTINGS)
        .where(
            LISTINGS.c.channel == sa.bindparam("b_channel"),
            LISTINGS.c.sku == sa.bindparam("b_sku"),
        )
        .values(values_set),
        [
            {"b_channel": channel, "b_sku": sku, "b_now": now, "b_value": value}
            for sku, value in values
        ],
    )


# The DispatchReport counter each completed status adds to (a sent row was accepted).
_REPORTED = {
    ActionStatus.CONFIRMED: "confirmed",
    ActionStatus.FAILED: "failed",
    ActionStatus.PLANNED: "retry",
    ActionStatus.SENT: "accepted",
}


def price_update(write: ClaimedWrite) -> PriceUpdate:
    """The connector's price update for a claimed price intent."""
    if write.new_price is None:
        raise ValueError(f"price intent {write.id} has no price")
    return PriceUpdate(
        sku=write.sku,
        price=write.new_price,
        currency=write.currency or "USD",
        idempotency_key=write.idempotency_key,
        floor=write.floor,
        ceiling=write.ceiling,
        external_id=write.external_id,
    )


def stock_update(write: ClaimedWrite) -> StockUpdate:
    """The connector's stock update for a claimed stock intent."""
    if write.new_quantity is None:
        raise ValueError(f"stock intent {write.id} has no quantity")
    return StockUpdate(
        sku=write.sku,
        quantity=write.new_quantity,
        idempotency_key=write.idempotency_key,
        # First send: compare against the value we published. A retry lets the connector compare
        # against what it last read live (a stale compare-and-set re-reads), so a re-drive does
        # not fail on the same stale value forever; it is still never a blind overwrite.
        expected=write.old_quantity if write.attempts == 0 else None,
        external_id=write.external_id,
    )
