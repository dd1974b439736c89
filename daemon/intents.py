"""The typed write path: what is recorded before a marketplace call, and what a dispatch claims.

A ``PlannedWrite`` is one decision about one listing (an intent to write, or a hold or block
recorded to explain why not); ``insert_row`` is its ``action`` row, the one conversion on the way
to the database. A ``ClaimedWrite`` is an open intent as the outbox reads it back and marks it
``sent``; ``daemon.push`` turns it into the connector's ``PriceUpdate``/``StockUpdate`` and its
``PushResult`` into a ``daemon.action_status.Completion`` on the same row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

import sqlalchemy as sa

from daemon.db.models import ActionKind, ActionStatus


def new_idempotency_key() -> str:
    """A fresh key; retries of the same intent reuse the key stored on its row."""
    return idempotency_keys(1)[0]


def idempotency_keys(count: int) -> list[str]:
    """``count`` fresh keys: 48 bits of milliseconds, then 80 random bits (32 hex digits).

    Time first, like UUIDv7: keys made together sort together, so the unique index on them
    grows at its right edge (random keys dirtied most of its pages on every 2,000-row commit
    of a reprice pass). 80 random bits per millisecond keep them unique.
    """
    prefix = f"{time.time_ns() // 1_000_000 & 0xFFFFFFFFFFFF:012x}"
    noise = os.urandom(10 * count).hex()  # one read of the OS's randomness for the batch
    return [prefix + noise[20 * i : 20 * i + 20] for i in range(count)]


TraceSteps = Sequence[Mapping[str, str]]
"""``[{"step": …, "verdict": …, "detail": …}, …]``: how a decision was reached (JSON column)."""


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    """One recorded decision: a ``planned`` intent, or a ``blocked``/``held`` decision."""

    pass_id: str
    kind: ActionKind
    channel: str
    sku: str
    status: ActionStatus
    idempotency_key: str
    created_at: datetime
    reason: str | None = None
    old_price: Decimal | None = None
    new_price: Decimal | None = None
    currency: str | None = None
    floor: Decimal | None = None
    ceiling: Decimal | None = None
    old_quantity: int | None = None
    new_quantity: int | None = None
    strategy: str | None = None
    rule: str | None = None
    trace: TraceSteps = ()
    guard_verdicts: TraceSteps = ()
    # A price decision's compact inputs and config digest: ``trace`` re-derived on demand.
    inputs: Mapping[str, Any] | None = None
    config: str | None = None

    def insert_row(self) -> dict[str, object]:
        """Its ``action`` row (every row has the same keys: one INSERT for a whole batch)."""
        return {
            "pass_id": self.pass_id,
            "kind": self.kind.value,
            "channel": self.channel,
            "sku": self.sku,
            "status": self.status.value,
            "old_price": self.old_price,
            "new_price": self.new_price,
            "currency": self.currency,
            "floor": self.floor,
            "ceiling": self.ceiling,
            "old_quantity": self.old_quantity,
            "new_quantity": self.new_quantity,
            "strategy": self.strategy,
            "rule": self.rule,
            "reason": self.reason,
            "trace": self.trace,
            # A send stored with its inputs is explained on demand; holds and blocks keep their
            # verdicts in the column (the console marks them on its price chart).
            "guard_verdicts": (
                []
                if self.inputs is not None and self.status is ActionStatus.PLANNED
                else self.guard_verdicts
            ),
            "inputs": self.inputs,
            "config": self.config,
            "idempotency_key": self.idempotency_key,
            "attempts": 0,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class ClaimedWrite:
    """An open intent read back by the outbox: what its marketplace call needs."""

    id: int
    idempotency_key: str
    kind: ActionKind
    sku: str
    status: ActionStatus  # planned, or sent without an answer (only a re-drive sends those)
    attempts: int  # before this claim
    external_id: str | None = None  # the marketplace's id of the listing, if known
    new_price: Decimal | None = None
    currency: str | None = None
    floor: Decimal | None = None
    ceiling: Decimal | None = None
    old_quantity: int | None = None
    new_quantity: int | None = None

    @property
    def value(self) -> Decimal | int | None:
        """The value the write puts on the listing (its price or its quantity)."""
        return self.new_price if self.kind is ActionKind.PRICE else self.new_quantity


CLAIMED_COLUMNS: Final = (
    "id",
    "idempotency_key",
    "kind",
    "sku",
    "status",
    "attempts",
    "new_price",
    "currency",
    "floor",
    "ceiling",
    "old_quantity",
    "new_quantity",
)
"""The ``action`` columns a ``ClaimedWrite`` is read from (plus the listing's ``external_id``)."""


_KINDS: Final = {kind.value: kind for kind in ActionKind}
_STATUSES: Final = {status.value: status for status in ActionStatus}


def claimed(row: sa.Row[*tuple[Any, ...]]) -> ClaimedWrite:
    """A ``ClaimedWrite`` from a row of ``CLAIMED_COLUMNS`` and ``external_id``."""
    return ClaimedWrite(
        id=row.id,
        idempotency_key=row.idempotency_key,
        kind=_KINDS[row.kind],
        sku=row.sku,
        status=_STATUSES[row.status],
        attempts=row.attempts,
        external_id=row.external_id,
        new_price=row.new_price,
        currency=row.currency,
        floor=row.floor,
        ceiling=row.ceiling,
        old_quantity=row.old_quantity,
        new_quantity=row.new_quantity,
    )
