"""The inbox worker's resolution step: order notifications that carry only an order id are read
from the marketplace (``ResolvesEvents``) before the batch is applied; a marketplace that cannot
answer leaves the delivery unprocessed for a later round, one that refuses marks it invalid."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.mock.channel import MockChannel
from daemon.db.engine import Database
from daemon.ledger import on_hand
from daemon.runtime import Runtime
from domain.clock import ManualClock
from domain.errors import ChannelAuthError, RejectedUpdateError, TransientChannelError
from domain.events import (
    ChannelEvent,
    OrderEvent,
    OrderLine,
    OrderNotice,
    OrderStatus,
    WebhookDelivery,
)
from tests.daemon_fixtures import make_runtime, seed, settings
from tests.test_stock_events import INBOX, StockLoop, order, store

NOTICE = "order_notice"  # a test topic: the notification names the order only


class Marketplace:
    """What the channel's order API answers: the orders it holds, or a failure."""

    def __init__(self) -> None:
        self.orders: dict[str, tuple[OrderLine, ...]] = {}
        self.failure: Exception | None = None
        self.asked: list[str] = []

    def parse(self, original: Any, delivery: WebhookDelivery) -> list[ChannelEvent]:
        if delivery.topic != NOTICE:
            return list(original(delivery))
        body = json.loads(delivery.payload)
        return [OrderNotice(body["order_id"], datetime.fromisoformat(body["at"]))]

    async def resolve(self, events: Sequence[ChannelEvent]) -> list[ChannelEvent]:
        resolved: list[ChannelEvent] = []
        for event in events:
            if not isinstance(event, OrderNotice):
                resolved.append(event)
                continue
            self.asked.append(event.order_id)
            if self.failure is not None:
                raise self.failure
            lines = self.orders[event.order_id]
            resolved.append(OrderEvent(event.order_id, OrderStatus.PLACED, lines, event.updated_at))
        return resolved


def wire(rt: Runtime, monkeypatch: pytest.MonkeyPatch) -> Marketplace:
    """Give channel alpha notices and an order API (``resolve_events``)."""
    alpha = rt.channels["alpha"]
    assert isinstance(alpha, MockChannel)
    market = Marketplace()
    original = alpha.parse_webhook
    monkeypatch.setattr(alpha, "parse_webhook", lambda d: market.parse(original, d), raising=False)
    monkeypatch.setattr(alpha, "resolve_events", market.resolve, raising=False)
    return market


async def rows(db: Database) -> list[tuple[str, str | None, str | None]]:
    async with db.read() as conn:
        found = await conn.execute(
            sa.select(INBOX.c.dedupe_key, INBOX.c.outcome, INBOX.c.error).order_by(INBOX.c.id)
        )
        return [(r.dedupe_key, r.outcome, r.error) for r in found]


def notice(order_id: str, clock: ManualClock) -> dict[str, str]:
    return {"order_id": order_id, "at": clock.now().isoformat()}


async def test_a_notice_is_read_from_the_marketplace_and_moves_every_channel(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = await make_runtime(db, clock, settings())
    await seed(db, clock, rt, [{"sku": "MUG-1", "stock": 5, "live_quantity": 5}])
    market = wire(rt, monkeypatch)
    market.orders["N-1"] = (OrderLine("MUG-1", 2),)
    loop = StockLoop(rt)
    await loop.discover()
    await store(db, clock, "alpha", "d1", NOTICE, notice("N-1", clock))
    await loop.deliver("alpha")
    assert market.asked == ["N-1"]
    async with db.read() as conn:
        assert (await on_hand(conn, ["MUG-1"]))["MUG-1"] == 3
    assert rt.channels["beta"].market.listings["MUG-1"].quantity == 3  # type: ignore[attr-defined]
    assert await rows(db) == [("d1", "applied", None)]
    await rt.close()


@pytest.mark.parametrize(
    "failure",
    [TransientChannelError("getOrder: HTTP 503"), ChannelAuthError("token refused")],
    ids=["unreachable", "auth"],
)
async def test_a_marketplace_that_cannot_answer_leaves_the_delivery_for_a_later_round(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch, failure: Exception
) -> None:
    """The failing read is tried once per round (the connector already retried it); the other
    notices of that round wait without a call; an ordinary order in the batch still applies;
    nothing is marked processed without its effect, and the next round applies the rest."""
    rt = await make_runtime(db, clock, settings())
    await seed(
        db,
        clock,
        rt,
        [
            {"sku": "MUG-1", "stock": 5, "live_quantity": 5},
            {"sku": "TEE-1", "stock": 4, "live_quantity": 4},
        ],
    )
    market = wire(rt, monkeypatch)
    market.orders |= {"N-1": (OrderLine("MUG-1", 2),), "N-2": (OrderLine("MUG-1", 1),)}
    market.failure = failure
    loop = StockLoop(rt)
    await loop.discover()
    await store(db, clock, "alpha", "d1", NOTICE, notice("N-1", clock))
    await store(db, clock, "alpha", "d2", "order", order("P-1", ("TEE-1", 1), at=clock.now()))
    await store(db, clock, "alpha", "d3", NOTICE, notice("N-2", clock))
    assert await loop.worker.process("alpha") == 1  # two deferred rows are not counted
    assert market.asked == ["N-1"]
    assert await rows(db) == [("d1", None, None), ("d2", "applied", None), ("d3", None, None)]
    async with db.read() as conn:
        assert await on_hand(conn, ["MUG-1", "TEE-1"]) == {"MUG-1": 5, "TEE-1": 3}
    assert await loop.worker.process("alpha") == 0  # still down: nothing spins

    market.failure = None  # the marketplace answers again: the sweep's next round applies
    await loop.deliver("alpha")
    assert market.asked == ["N-1", "N-1", "N-1", "N-2"]
    assert [(k, o) for k, o, _ in await rows(db)] == [
        ("d1", "applied"),
        ("d2", "applied"),
        ("d3", "applied"),
    ]
    async with db.read() as conn:
        assert (await on_hand(conn, ["MUG-1"]))["MUG-1"] == 2
    assert rt.channels["beta"].market.listings["MUG-1"].quantity == 2  # type: ignore[attr-defined]
    await rt.close()


async def test_an_order_refused_for_good_or_unreadable_is_marked_invalid(
    db: Database, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal (unknown order, missing scope) is invalid with its reason; a channel without
    an order API cannot resolve a notice either: invalid, never left to clog the inbox."""
    rt = await make_runtime(db, clock, settings())
    market = wire(rt, monkeypatch)
    market.failure = RejectedUpdateError("order N-9: needs the sell.fulfillment scope")
    await store(db, clock, "alpha", "d1", NOTICE, notice("N-9", clock))
    beta = rt.channels["beta"]
    monkeypatch.setattr(
        beta,
        "parse_webhook",
        lambda d: [OrderNotice("N-7", clock.now())],
        raising=False,
    )
    await store(db, clock, "beta", "d2", NOTICE, notice("N-7", clock))
    loop = StockLoop(rt)
    await loop.deliver("alpha", "beta")
    assert await rows(db) == [
        ("d1", "invalid", "RejectedUpdateError: order N-9: needs the sell.fulfillment scope"),
        ("d2", "invalid", "order N-7: the channel cannot read orders by id"),
    ]
    await rt.close()
