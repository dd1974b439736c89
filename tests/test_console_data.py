"""The console's loaders: exact chart series, Buy Box shares and problems from a small history."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from daemon.console.data import BuyBoxTracker, load_overview, load_problems, load_sku_page
from daemon.console.series import Count, Point, Share
from daemon.db.engine import Database
from daemon.db.models import (
    Action,
    Listing,
    OfferSnapshot,
    PassSuccess,
    Product,
    StockEvent,
)
from daemon.settings import PricingSettings
from domain.clock import ManualClock
from strategies.offers import CompetitorFilters
from tests.status_fixtures import delivery

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
START = NOW - timedelta(days=30)
AMAZON, SHOP = "amazon-us", "shopify"
_keys = itertools.count(1)


def t(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def day(d: int, hour: int = 0) -> datetime:
    return datetime(2026, 2 if d > 2 else 3, d, hour, tzinfo=UTC)


def D(text: str) -> Decimal:
    return Decimal(text)


async def insert(db: Database, model: Any, **values: Any) -> int:
    """One row; return its id (or 0 for a table without one)."""
    table = model.__table__
    async with db.write() as conn:
        result = await conn.execute(sa.insert(table).values(**values))
        key = result.inserted_primary_key
        return int(key[0]) if key and isinstance(key[0], int) else 0


async def product(db: Database, sku: str, **money: str | None) -> None:
    values = {k: None if v is None else D(v) for k, v in money.items()}
    await insert(
        db,
        Product,
        sku=sku,
        tags=[],
        kit_components={},
        created_at=t(days=60),
        updated_at=t(days=60),
        **values,
    )


async def listing(db: Database, channel: str, sku: str, price: str, quantity: int) -> None:
    await insert(
        db,
        Listing,
        channel=channel,
        sku=sku,
        price=D(price),
        quantity=quantity,
        external_ids={},
        discovered_at=t(days=60),
        updated_at=t(days=10),
    )


async def action(db: Database, at: datetime, status: str, **values: Any) -> int:
    done = values.pop("done", None)
    values.setdefault("kind", "price")
    values.setdefault("channel", AMAZON)
    values.setdefault("sku", "MUG-1")
    values.setdefault("guard_verdicts", [])
    if values["kind"] == "price":
        values.setdefault("floor", D("10.00"))
        values.setdefault("ceiling", D("30.00"))
    return await insert(
        db,
        Action,
        pass_id="p",
        status=status,
        trace=[],
        idempotency_key=f"k{next(_keys)}",
        created_at=at,
        completed_at=done,
        **values,
    )


def offer(seller: str, price: str, **kw: Any) -> dict[str, Any]:
    return {
        "seller_id": seller,
        "price": price,
        "shipping": kw.get("shipping", "0"),
        "fulfillment": kw.get("fulfillment", "fbm"),
        "rating_pct": kw.get("rating", 95),
        "rating_count": 100,
        "buy_box": kw.get("box", False),
        "own": seller == "ME",
    }


async def snapshot(
    db: Database, sku: str, at: datetime, winner: str, box: str, offers: list[Any]
) -> None:
    await insert(
        db,
        OfferSnapshot,
        channel=AMAZON,
        sku=sku,
        source="poll",
        buy_box_price=D(box),
        buy_box_seller=winner,
        offers=offers,
        observed_at=at,
    )


async def event(db: Database, sku: str, kind: str, delta: int, at: datetime, **kw: Any) -> int:
    return await insert(
        db,
        StockEvent,
        sku=sku,
        kind=kind,
        delta=delta,
        external_ref=f"ref{next(_keys)}",
        occurred_at=at,
        recorded_at=at,
        **kw,
    )


async def history(db: Database) -> dict[str, int]:
    """The shared story: MUG-1 on two channels with a month of decisions, offers and stock."""
    await product(db, "MUG-1", cost="5", min_price="10", max_price="30")
    await product(db, "NOFLOOR", max_price="20")
    await product(db, "NOCEIL", min_price="5")
    await listing(db, AMAZON, "MUG-1", "19.00", 7)
    await listing(db, SHOP, "MUG-1", "21.00", 7)
    await listing(db, AMAZON, "NOFLOOR", "15.00", 1)
    await listing(db, AMAZON, "NOCEIL", "15.00", 1)
    await listing(db, AMAZON, "GHOST", "15.00", 1)
    ids = {
        "first": await action(
            db,
            t(days=5),
            "confirmed",
            old_price=D("20.00"),
            new_price=D("19.50"),
            done=t(days=5, minutes=-1),
        ),
        "blocked": await action(
            db,
            t(days=3),
            "blocked",
            old_price=D("19.50"),
            reason="circuit breaker: 80% moved",
            guard_verdicts=[{"step": "guard:breaker", "verdict": "blocked", "detail": "80%"}],
        ),
        "held": await action(
            db, t(days=2), "held", old_price=D("19.50"), ceiling=D("28.00"), reason="at target"
        ),
        "failed": await action(
            db,
            t(hours=3),
            "failed",
            old_price=D("19.50"),
            new_price=D("1.00"),
            response_code="INVALID_PRICE",
            response_message="Price too low",
            done=t(hours=3),
        ),
        "not_applied": await action(
            db,
            t(hours=4),
            "failed",
            kind="stock",
            old_quantity=8,
            new_quantity=7,
            response_code="NOT_APPLIED",
            done=t(hours=4),
        ),
        "stock": await action(
            db,
            t(hours=2),
            "confirmed",
            kind="stock",
            old_quantity=8,
            new_quantity=7,
            done=t(hours=2, minutes=-1),
        ),
        "last": await action(
            db,
            t(hours=1),
            "confirmed",
            old_price=D("19.50"),
            new_price=D("19.00"),
            done=t(hours=1, minutes=-1),
        ),
    }
    await snapshot(
        db,
        "MUG-1",
        day(20),
        "ME",
        "19.50",
        [
            offer("ME", "19.50"),
            offer("R1", "20.00"),
            offer("R2", "18.00", shipping="2.00", fulfillment="fba", rating=None),
        ],
    )
    await snapshot(
        db, "MUG-1", day(27, 10), "R1", "18.99", [offer("ME", "19.50"), offer("R1", "18.99")]
    )
    await snapshot(
        db,
        "MUG-1",
        day(2, 6),
        "ME",
        "19.00",
        [offer("ME", "19.00"), offer("R1", "19.50"), offer("R2", "0", fulfillment="fba")],
    )
    await snapshot(db, "NOFLOOR", day(24), "R9", "14.00", [offer("R9", "14.00")])
    ids["count_old"] = await event(db, "MUG-1", "count", 10, t(days=40), counted=10)
    ids["order"] = await event(
        db, "MUG-1", "order", -2, t(days=3), channel=AMAZON, note="order A1: 2 sold"
    )
    ids["cancel"] = await event(db, "MUG-1", "cancel", 1, t(days=2), channel=AMAZON)
    ids["count"] = await event(db, "MUG-1", "count", 1, t(days=1), counted=10)
    return ids


async def test_overview_counts_writes_and_buy_box_share_per_day(db: Database) -> None:
    await history(db)
    clock = ManualClock(NOW)
    tracker = BuyBoxTracker()
    overview = await load_overview(db, clock, [AMAZON, SHOP], tracker=tracker)
    amazon, shop = overview.channels
    assert amazon.status.channel == AMAZON
    assert (amazon.price_changes_24h, amazon.stock_writes_24h) == (1, 1)
    assert (amazon.failed_writes_24h, amazon.not_applied_24h) == (1, 1)
    # "Us" learned from the offers flagged own (seller ME): MUG-1 won, lost on 02-27, won again.
    assert [(s.at, s.won, s.seen) for s in amazon.buy_box_days] == [
        (day(25), 1, 2),
        (day(26), 1, 2),
        (day(27), 1, 2),
        (day(28), 0, 2),
        (day(1), 0, 2),
        (day(2), 0, 2),
        (NOW, 1, 2),
    ]
    assert amazon.buy_box_now == Share(NOW, 1, 2)
    assert amazon.buy_box_now.ratio == D("0.5000")
    assert shop.buy_box_now.ratio is None  # no offer data: no share, not 0 %
    assert (shop.price_changes_24h, shop.stock_writes_24h) == (0, 0)

    # Later loads read only the new snapshots; one dated inside a closed day rebuilds.
    clock.advance(30 * 60)
    await snapshot(db, "NOFLOOR", clock.now() - timedelta(minutes=5), "ME", "14.00", [])
    again = await load_overview(db, clock, [AMAZON], tracker=tracker)
    assert [(s.won, s.seen) for s in again.channels[0].buy_box_days] == [
        (1, 2),
        (1, 2),
        (1, 2),
        (0, 2),
        (0, 2),
        (0, 2),
        (2, 2),
    ]
    # Two loads at once apply a new snapshot once (NOFLOOR lost again a minute ago).
    await snapshot(db, "NOFLOOR", clock.now() - timedelta(minutes=1), "R9", "14.00", [])
    both = await asyncio.gather(
        load_overview(db, clock, [AMAZON], tracker=tracker),
        load_overview(db, clock, [AMAZON], tracker=tracker),
    )
    assert [b.channels[0].buy_box_now for b in both] == [Share(clock.now(), 1, 2)] * 2
    # A late snapshot dated inside a closed day (MUG-1 lost on 02-26 at noon) counts again.
    await snapshot(db, "MUG-1", day(26, 12), "R5", "19.00", [])
    late = await load_overview(db, clock, [AMAZON], tracker=tracker)
    assert [(s.won, s.seen) for s in late.channels[0].buy_box_days] == [
        (1, 2),
        (1, 2),
        (0, 2),
        (0, 2),
        (0, 2),
        (0, 2),
        (1, 2),
    ]
    # Given own ids count with the flagged ones (R9 holds NOFLOOR's Buy Box).
    other = await load_overview(db, clock, [AMAZON], own_seller_ids={"R9"})
    assert other.channels[0].buy_box_days[0] == Share(day(25), 2, 2)


async def test_buy_box_days_closed_by_later_loads_match_a_full_count(db: Database) -> None:
    await history(db)
    clock = ManualClock(NOW)
    tracker = BuyBoxTracker()
    await load_overview(db, clock, [AMAZON], tracker=tracker)
    midnight = datetime(2026, 3, 3, tzinfo=UTC)
    await snapshot(db, "NOFLOOR", day(2, 20), "ME", "14.00", [])
    await snapshot(db, "MUG-1", midnight + timedelta(minutes=30), "R1", "18.00", [])
    clock.advance(13 * 3600)  # 03-03 01:00: 03-02 has ended
    rolled = await load_overview(db, clock, [AMAZON], tracker=tracker)
    counted = await load_overview(db, clock, [AMAZON])  # a new tracker counts from scratch
    assert rolled.channels[0].buy_box_days == counted.channels[0].buy_box_days
    assert [(s.at, s.won, s.seen) for s in rolled.channels[0].buy_box_days] == [
        (day(26), 1, 2),
        (day(27), 1, 2),
        (day(28), 0, 2),
        (day(1), 0, 2),
        (day(2), 0, 2),
        (midnight, 2, 2),  # both won at midnight (NOFLOOR since 20:00)
        (clock.now(), 1, 2),  # MUG-1 lost at 00:30
    ]


async def test_sku_page_series(db: Database) -> None:
    ids = await history(db)
    page = await load_sku_page(db, ManualClock(NOW), "MUG-1")
    assert (page.start, page.end) == (START, NOW)
    amazon, shop = page.prices
    assert amazon.channel == AMAZON
    assert amazon.currency == "USD"
    assert amazon.our_price == (
        Point(START, D("20.00")),
        Point(t(days=5, minutes=-1), D("19.50")),
        Point(t(hours=1, minutes=-1), D("19.00")),
    )
    assert amazon.floor == (Point(t(days=5), D("10.00")),)
    assert amazon.ceiling == (
        Point(t(days=5), D("30.00")),
        Point(t(days=2), D("28.00")),
        Point(t(hours=3), D("30.00")),
    )
    assert amazon.buy_box == (
        Point(day(20), D("19.50")),
        Point(day(27, 10), D("18.99")),
        Point(day(2, 6), D("19.00")),
    )
    # Landed prices, the strategies' scan: own offers and garbage (price 0) left out.
    assert amazon.lowest_competitor == (
        Point(day(20), D("20.00")),
        Point(day(27, 10), D("18.99")),
        Point(day(2, 6), D("19.50")),
    )
    blocked, held = amazon.markers
    assert (blocked.action_id, blocked.status, blocked.price) == (
        ids["blocked"],
        "blocked",
        D("19.50"),
    )
    assert blocked.reason == "circuit breaker: 80% moved"
    assert blocked.verdicts == ("guard:breaker: blocked — 80%",)
    assert (held.action_id, held.status, held.at) == (ids["held"], "held", t(days=2))
    assert shop.our_price == (Point(START, D("21.00")),)
    assert shop.buy_box == shop.lowest_competitor == ()
    assert shop.markers == ()

    assert page.stock.on_hand == (
        Count(START, 10),
        Count(t(days=3), 8),
        Count(t(days=2), 9),
        Count(t(days=1), 10),
    )
    assert page.stock.published == (
        (AMAZON, (Count(START, 8), Count(t(hours=2, minutes=-1), 7))),
        (SHOP, (Count(START, 7),)),  # no write in the window: its quantity throughout
    )
    assert [(e.kind, e.delta, e.event_id) for e in page.stock.events] == [
        ("order", -2, ids["order"]),
        ("cancel", 1, ids["cancel"]),
        ("count", 1, ids["count"]),
    ]
    assert [row.id for row in page.ledger] == [
        ids["count"],
        ids["cancel"],
        ids["order"],
        ids["count_old"],
    ]
    assert page.title is None
    assert [(r["channel"], r["kind"], r["id"]) for r in page.explain] == [
        (AMAZON, "price", ids["last"]),
        (AMAZON, "stock", ids["stock"]),
    ]


async def test_sku_page_uses_the_rules_competitor_filters(db: Database) -> None:
    await history(db)
    page = await load_sku_page(
        db, ManualClock(NOW), "MUG-1", filters=CompetitorFilters(fulfillment=("fba",))
    )
    # Only R2 ships FBA: its landed 18.00 + 2.00, then nobody, then its garbage offer is ignored.
    assert page.prices[0].lowest_competitor == (
        Point(day(20), D("20.00")),
        Point(day(27, 10), None),
    )
    # The rule pricing the listing decides: FBA only on amazon-us, every offer elsewhere.
    rules = PricingSettings.model_validate(
        {
            "rules": [
                {
                    "match": {"channel": AMAZON},
                    "strategy": "lowest_price",
                    "params": {"filters": {"fulfillment": ["fba"]}},
                },
                {"strategy": "cost_plus", "params": {"margin_pct": 10}},
            ]
        }
    ).rules
    by_rule = await load_sku_page(db, ManualClock(NOW), "MUG-1", rules=rules)
    assert by_rule.prices[0].lowest_competitor == page.prices[0].lowest_competitor
    every = await load_sku_page(db, ManualClock(NOW), "MUG-1", rules=rules[1:])
    assert every.prices[0].lowest_competitor[0] == Point(day(20), D("20.00"))
    assert len(every.prices[0].lowest_competitor) == 3


async def test_sku_page_of_an_unknown_sku_is_empty(db: Database) -> None:
    page = await load_sku_page(db, ManualClock(NOW), "NOPE")
    assert page.prices == ()
    assert page.stock.on_hand == (Count(START, 0),)
    assert page.stock.published == ()
    assert page.stock.events == ()
    assert page.ledger == ()
    assert page.explain == ()


async def test_problems(db: Database) -> None:
    ids = await history(db)
    for age, error in ((timedelta(hours=1), "bad signature"), (timedelta(days=2), "too old")):
        await delivery(
            db,
            AMAZON,
            NOW - age,
            processed_at=NOW - age,
            outcome="invalid",
            error=error,
            topic="ANY_OFFER_CHANGED",
        )
    await event(
        db,
        "MUG-2",
        "order",
        0,
        t(days=1),
        channel=SHOP,
        note="order S9: 1 sold; OVERSOLD by 1 (only 0 held)",
    )
    await event(db, "NEG", "adjustment", -3, t(hours=5))
    problems = await load_problems(db, ManualClock(NOW))
    found = [(p.kind, p.channel, p.sku, p.action_id) for p in problems]
    assert found == [
        ("not_catalogued", AMAZON, "GHOST", None),
        ("no_ceiling", AMAZON, "NOCEIL", None),
        ("no_floor", AMAZON, "NOFLOOR", None),
        ("write_failed", AMAZON, "MUG-1", ids["failed"]),
        ("not_applied", AMAZON, "MUG-1", ids["not_applied"]),
        ("stale_offers", AMAZON, None, None),
        ("invalid_webhook", AMAZON, None, None),
        ("oversold", SHOP, "MUG-2", None),
        ("negative_stock", None, "NEG", None),
    ]
    by_kind = {p.kind: p for p in problems}
    assert by_kind["no_floor"].fix == "set min_price or cost in the catalogue"
    assert by_kind["no_ceiling"].fix == "set max_price in the catalogue"
    assert by_kind["write_failed"].detail == "price 19.50 → 1.00: INVALID_PRICE: Price too low"
    assert by_kind["stale_offers"].since == day(2, 6)
    assert by_kind["invalid_webhook"].detail == "ANY_OFFER_CHANGED: bad signature"
    assert by_kind["negative_stock"].detail == "on hand -3 in the ledger"
    # A recent offers pass makes the offer data fresh again.
    await insert(db, PassSuccess, channel=AMAZON, pass_name="offers", last_success_at=t(minutes=2))
    kinds = {p.kind for p in await load_problems(db, ManualClock(NOW))}
    assert "stale_offers" not in kinds
