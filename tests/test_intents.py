"""The typed write path: intents to rows, claimed rows to updates, stock plans, reports."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from daemon.db.models import Action, ActionKind, ActionStatus
from daemon.intents import ClaimedWrite, PlannedWrite, idempotency_keys
from daemon.push import price_update, stock_update
from daemon.reports import (
    DispatchReport,
    Failed,
    NoListings,
    ReconcileReport,
    Skipped,
    StockReport,
    as_json,
)
from daemon.settings import InventorySettings
from daemon.stock import Kits
from daemon.stock_pass import StockListing, StockView, plan_stock

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ACTIONS = Action.__table__  # type: ignore[attr-defined]
# Filled in later in an action's life, or by the database.
NOT_RECORDED = {"id", "response_code", "response_message", "marketplace_ref"}
NOT_RECORDED |= {"sent_at", "completed_at"}


def price_write(**changes: object) -> PlannedWrite:
    """A planned price intent."""
    write = PlannedWrite(
        pass_id="p1",
        kind=ActionKind.PRICE,
        channel="alpha",
        sku="A",
        status=ActionStatus.PLANNED,
        idempotency_key="k1",
        created_at=NOW,
        old_price=Decimal("20.00"),
        new_price=Decimal("18.00"),
        currency="EUR",
    )
    return dataclasses.replace(write, **changes)  # type: ignore[arg-type]


def test_an_intent_is_frozen_and_its_row_has_every_recorded_column() -> None:
    write = price_write()
    with pytest.raises(dataclasses.FrozenInstanceError):
        write.sku = "B"  # type: ignore[misc]
    row = write.insert_row()
    assert set(row) == {c.name for c in ACTIONS.columns} - NOT_RECORDED
    assert (row["kind"], row["status"], row["attempts"]) == ("price", "planned", 0)
    assert (row["new_price"], row["currency"], row["new_quantity"]) == (
        Decimal("18.00"),
        "EUR",
        None,
    )
    # Every row has the same keys: one INSERT statement serves a mixed batch.
    stock = dataclasses.replace(write, kind=ActionKind.STOCK, new_price=None, new_quantity=3)
    assert list(stock.insert_row()) == list(row)


def test_keys_made_together_are_unique_and_sort_together() -> None:
    keys = idempotency_keys(1000)
    assert len(set(keys)) == 1000
    assert {len(key) for key in keys} == {32}
    assert len({key[:12] for key in keys}) == 1  # one millisecond prefix for the batch


def claimed(**changes: object) -> ClaimedWrite:
    """An open intent as the outbox reads it back."""
    write = ClaimedWrite(
        id=7,
        idempotency_key="k7",
        kind=ActionKind.PRICE,
        sku="A",
        status=ActionStatus.PLANNED,
        attempts=0,
        external_id="X-1",
        new_price=Decimal("18.00"),
        floor=Decimal("10"),
        ceiling=Decimal("30"),
    )
    return dataclasses.replace(write, **changes)  # type: ignore[arg-type]


def test_a_claimed_price_becomes_the_connectors_price_update() -> None:
    update = price_update(claimed())
    assert update.price == Decimal("18.00")
    assert update.currency == "USD"  # a row recorded without a currency
    assert (update.floor, update.ceiling, update.external_id) == (
        Decimal("10"),
        Decimal("30"),
        "X-1",
    )
    assert update.idempotency_key == "k7"
    with pytest.raises(ValueError, match="no price"):
        price_update(claimed(new_price=None))


def test_a_claimed_stock_write_compares_against_our_value_only_on_its_first_send() -> None:
    first = claimed(kind=ActionKind.STOCK, new_price=None, old_quantity=4, new_quantity=2)
    assert claimed(kind=ActionKind.STOCK, new_quantity=2).value == 2
    assert (stock_update(first).quantity, stock_update(first).expected) == (2, 4)
    retry = dataclasses.replace(first, attempts=1)
    assert stock_update(retry).expected is None  # the connector's own live re-read decides
    with pytest.raises(ValueError, match="no quantity"):
        stock_update(claimed(kind=ActionKind.STOCK, new_quantity=None))


def view(*listings: StockListing, stock: dict[str, int], waiting: dict[str, int]) -> StockView:
    """A stock view of channel alpha."""
    return StockView(
        listings={"alpha": list(listings)},
        kits=Kits({"KIT": {"A": 2}}),
        stock=stock,
        waiting={"alpha": waiting},
    )


def test_plan_stock_turns_each_changed_allocation_into_one_intent() -> None:
    seen = view(
        StockListing("alpha", "A", 1, "merchant"),  # 5 available: publish 5
        StockListing("alpha", "B", 3, "merchant"),  # unchanged, but a stale retry waits for 9
        StockListing("alpha", "C", 0, "merchant"),  # never counted: nothing published
        StockListing("alpha", "D", 2, "marketplace"),  # the marketplace counts these
        StockListing("alpha", "E", 0, "merchant"),  # the same target is already queued
        StockListing("alpha", "KIT", 0, "merchant"),
        stock={"A": 5, "B": 3, "D": 7, "E": 4, "KIT": 2},
        waiting={"B": 9, "E": 4},
    )
    plan = plan_stock(seen, channel="alpha", pass_id="p1", inventory=InventorySettings(), now=NOW)
    assert [(w.sku, w.old_quantity, w.new_quantity) for w in plan.intents] == [
        ("A", 1, 5),
        ("KIT", 0, 2),
    ]
    assert (plan.never_counted, plan.outdated) == (1, ["B"])
    kit = plan.intents[1]
    assert kit.status is ActionStatus.PLANNED
    assert kit.kind is ActionKind.STOCK
    assert kit.reason == "available 2 (kit: its scarcest component) → publish 2"
    assert [step["step"] for step in kit.trace] == ["allocation"]
    assert len({w.idempotency_key for w in plan.intents}) == 2


def test_reports_keep_their_json_keys() -> None:
    stock = StockReport(
        listings=3, intents=1, restock_waits_for_price=0, never_counted=1, dispatch=DispatchReport()
    )
    answer = as_json(ReconcileReport(live=3, new=0, drift=0, verified={}, stock=stock))
    assert list(answer) == ["live", "new", "drift", "verified", "stock"]
    assert list(answer["stock"]) == [
        "listings",
        "intents",
        "restock_waits_for_price",
        "never_counted",
        "dispatch",
    ]
    assert answer["stock"]["dispatch"]["sent"] == 0
    assert as_json(NoListings()) == {"listings": 0}
    assert as_json(Skipped("paused")) == {"skipped": "paused"}
    assert as_json(Failed("ChannelError: down")) == {"error": "ChannelError: down"}
