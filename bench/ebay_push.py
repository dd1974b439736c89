"""10,000 price changes to the mock eBay at its real limits, through the real connector and outbox.

Real clock, real sockets: the mock eBay (``connectors.mock.ebay``, OAS-validated bodies, its
25 calls/s burst-50 Inventory bucket, 250 revisions per listing per UTC day) serves loopback; the
daemon's ``Outbox`` dispatches action rows from SQLite to the real ``EbayChannel`` (httpx, token
buckets, retries, revision budget). The catalogue is seeded straight into the database with
each listing's offerId (what discovery would have stored): discovering 10,000 SKUs costs one
``getOffers`` per SKU, 400 s at the same limits, and is not what is measured.

Rounds on the same 10,000 listings:

1. every listing moves 1-5 %: 400 ``bulkUpdatePriceQuantity`` calls of 25 is the least possible,
   (400 − 50 burst) / 25 per s = 14 s the lower bound (at the mock's bucket: ours is
   25/s with a burst of 40, see ``connectors.ebay.const``); target ≤ 1.2× and no 429;
2. 1,000 listings are near their daily revision cap (spent earlier today, set on the connector's
   budget and the mock's counters alike): 500 with 20 revisions left (< 10 %: only moves of
   2 % or more go) get alternately 1 % and 5 % moves, 500 with 4 left (≤ ``stock_reserve``: kept
   for stock) get 5 % moves; the other 9,000 move 0.5-5 %;
3. every listing moves 3 % again: the intents round 2 deferred are superseded by these (newest
   wins: the move is coalesced, never sent twice).

Reported per round: wall time, bulk calls, all calls, 429s, the lower bound and the ratio, how
many updates were sent, deferred (by code) and superseded, and which moves went first inside
each push (mean relative move of the first vs the last bulk call of a push).
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from connectors.base import ChannelDeps
from connectors.ebay import EbayChannel, EbaySettings
from connectors.ebay.const import BULK_UPDATE_PATH, MAX_BULK_REQUESTS, QUOTA_INVENTORY
from connectors.mock.ebay.app import TOKEN_PATH, start
from connectors.mock.ebay.state import EbayMockState
from connectors.mock.market import MockListing, MockMarket
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import Action, ActionKind, ActionStatus, Listing
from daemon.intents import PlannedWrite, new_idempotency_key
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from domain.clock import SystemClock

ACTIONS = Action.__table__  # type: ignore[attr-defined]
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
CHANNEL = "ebay"
CHANGES = 10_000
CENT = Decimal("0.01")
LOW, RESERVED = 500, 500  # listings with 20 and with 4 revisions left before round 2


def _sku(i: int) -> str:
    return f"EB-{i:05d}"


def _offer(i: int) -> str:
    return str(5_000_000_000 + i)


def _start_price(i: int) -> Decimal:
    return Decimal(20 + i % 50) + Decimal(i % 100) / 100


class Recorder:
    """Every bulk request body in the order sent, and eBay's per-line errorIds (httpx hooks)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # of each body's answer (calls are sequential)
        self.line_errors: Counter[int] = Counter()

    async def request(self, request: httpx.Request) -> None:
        if request.url.path == BULK_UPDATE_PATH:
            self.bodies.append(json.loads(request.content))

    async def response(self, response: httpx.Response) -> None:
        if response.request.url.path == BULK_UPDATE_PATH:
            self.statuses.append(response.status_code)
        if response.request.url.path == BULK_UPDATE_PATH and response.status_code == 207:
            await response.aread()
            for line in response.json().get("responses", []):
                for error in line.get("errors") or []:
                    self.line_errors[int(error["errorId"])] += 1


async def _seed(db: Database, listings: int) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "channel": CHANNEL,
            "sku": _sku(i),
            "external_id": _offer(i),
            "external_ids": {"offer_id": _offer(i)},
            "fulfillment": "merchant",
            "currency": "USD",
            "price": _start_price(i),
            "quantity": 10,
            "status": "active",
            "discovered_at": now,
            "updated_at": now,
        }
        for i in range(listings)
    ]
    async with db.write() as conn:
        for start in range(0, len(rows), 5_000):
            await conn.execute(sa.insert(LISTINGS), rows[start : start + 5_000])


async def _prices(db: Database) -> dict[str, Decimal]:
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(LISTINGS.c.sku, LISTINGS.c.price).where(LISTINGS.c.channel == CHANNEL)
            )
        ).all()
    return {row.sku: Decimal(row.price) for row in rows}


async def _record(
    outbox: Outbox, pass_id: str, moves: dict[str, Decimal], old: dict[str, Decimal]
) -> None:
    now = datetime.now(UTC)
    rows = [
        PlannedWrite(
            pass_id=pass_id,
            kind=ActionKind.PRICE,
            channel=CHANNEL,
            sku=sku,
            status=ActionStatus.PLANNED,
            old_price=old[sku],
            new_price=new,
            currency="USD",
            reason="bench",
            idempotency_key=new_idempotency_key(),
            created_at=now,
        )
        for sku, new in moves.items()
    ]
    await outbox.record(rows)


async def _outcomes(db: Database, pass_id: str) -> dict[str, int]:
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(ACTIONS.c.status, ACTIONS.c.response_code).where(
                    ACTIONS.c.pass_id == pass_id
                )
            )
        ).all()
    counts = Counter(
        f"{row.status}:{row.response_code}" if row.status == "planned" else row.status
        for row in rows
    )
    return dict(sorted(counts.items()))


def _first_vs_last(bodies: list[dict[str, Any]], old: dict[str, Decimal]) -> dict[str, Any]:
    """Mean relative move of the first and the last bulk call of each push (≤ 10 calls)."""
    by_offer = {_offer(i): _sku(i) for i in range(len(old))}
    per_call = []
    for body in bodies:
        moves = []
        for entry in body["requests"]:
            offer = entry["offers"][0]
            before = old[by_offer[offer["offerId"]]]
            moves.append(abs(Decimal(offer["price"]["value"]) - before) / before)
        per_call.append(sum(moves) / len(moves))
    pushes = [per_call[i : i + 10] for i in range(0, len(per_call), 10)]
    full = [p for p in pushes if len(p) > 1]
    if not full:
        return {}
    return {
        "first_call_mean_move_pct": round(float(sum(p[0] for p in full) / len(full)) * 100, 2),
        "last_call_mean_move_pct": round(float(sum(p[-1] for p in full) / len(full)) * 100, 2),
    }


async def _round(
    name: str,
    moves: dict[str, Decimal],
    *,
    db: Database,
    outbox: Outbox,
    channel: EbayChannel,
    state: EbayMockState,
    recorder: Recorder,
) -> dict[str, Any]:
    old = await _prices(db)
    await _record(outbox, name, moves, old)
    # Let both buckets (ours and the mock's) refill, so every round starts from a full burst.
    limit = state.rate_limits["sell.inventory"]
    await asyncio.sleep(limit.burst / limit.rate + 0.1)
    calls0, bulk0 = channel.client.calls, len(recorder.bodies)
    throttled0, mock0 = state.throttled["sell.inventory"], state.calls["sell.inventory"]
    started = time.perf_counter()
    report = await outbox.dispatch(channel, ActionKind.PRICE)
    wall = time.perf_counter() - started
    answered = list(zip(recorder.bodies[bulk0:], recorder.statuses[bulk0:], strict=True))
    bodies = [body for body, status in answered if status != 429]
    sent = sum(len(b["requests"]) for b in bodies)
    least_calls = math.ceil(sent / MAX_BULK_REQUESTS)
    bound = state.rate_limits["sell.inventory"].lower_bound_s(least_calls)  # the server's
    return {
        "intents": len(moves),
        "updates_sent": sent,
        "wall_s": round(wall, 2),
        "bulk_calls": len(answered),  # 429s included
        "least_bulk_calls": least_calls,
        "http_calls": channel.client.calls - calls0,
        "mock_inventory_calls": state.calls["sell.inventory"] - mock0,
        "http_429": state.throttled["sell.inventory"] - throttled0,
        "lower_bound_s": round(bound, 2),
        "ratio_to_bound": round(wall / bound, 3) if bound else None,
        "outcomes": await _outcomes(db, name),
        "superseded_earlier_intents": report.superseded,
        "order_inside_pushes": _first_vs_last(bodies, old),
    }


async def _near_budget(channel: EbayChannel, state: EbayMockState, listings: int) -> None:
    """Listings 0..999 revised earlier today: 500 with 20 left, 500 with 4 left (both sides)."""
    day = channel.budget.day()
    for i in range(min(listings, LOW + RESERVED)):
        used = 230 if i < LOW else 246
        ref = channel.refs[_sku(i)]
        await channel.budget.ledger.raise_to(channel.name, day, ref.budget_key, used)
        listing_id = state.offers_of(_sku(i))[0].listing_id
        while state.revisions_today(listing_id) < used:
            state.revise(listing_id)


async def main(listings: int = CHANGES) -> dict[str, Any]:
    """Three rounds of price changes (see the module doc); ``listings`` caps the count."""
    count = min(listings, CHANGES)
    market = MockMarket()
    for i in range(count):
        market.listings[_sku(i)] = MockListing(_sku(i), _offer(i), _start_price(i), "USD", 10)
    state = EbayMockState(market=market)
    runner, base_url = await start(state)
    recorder = Recorder()
    settings = EbaySettings.model_validate(
        {
            "kind": "ebay",
            "endpoint": base_url,
            "auth_endpoint": base_url + TOKEN_PATH,
            "client_id": state.client_id,
            "client_secret": state.client_secret.get_secret_value(),
            "refresh_token": state.refresh_token.get_secret_value(),
        }
    )
    results: dict[str, Any] = {
        "listings": count,
        "mock_rate_limit": str(state.rate_limits["sell.inventory"]),
        "client_rate_limit": str(settings.rate_limits[QUOTA_INVENTORY]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        await upgrade(db)
        await _seed(db, count)
        outbox = Outbox(db, SystemClock(), Metrics())
        async with httpx.AsyncClient(
            event_hooks={"request": [recorder.request], "response": [recorder.response]}
        ) as http:
            channel = EbayChannel(CHANNEL, settings, ChannelDeps(http=http, clock=SystemClock()))
            await channel.open()
            run = {
                "db": db,
                "outbox": outbox,
                "channel": channel,
                "state": state,
                "recorder": recorder,
            }
            try:
                prices = await _prices(db)
                first = {
                    sku: (p * (1 + Decimal(1 + i % 5) / 100)).quantize(CENT)
                    for i, (sku, p) in enumerate(sorted(prices.items()))
                }
                results["round1_every_listing_moves"] = await _round("round-1", first, **run)
                await _near_budget(channel, state, count)
                prices = await _prices(db)
                second = {}
                for i, (sku, p) in enumerate(sorted(prices.items())):
                    if i < LOW:
                        pct = Decimal(1 if i % 2 else 5)
                    elif i < LOW + RESERVED:
                        pct = Decimal(5)
                    else:
                        pct = Decimal(5 + i % 46) / 10
                    second[sku] = (p * (1 - pct / 100)).quantize(CENT)
                results["round2_some_listings_near_cap"] = await _round("round-2", second, **run)
                prices = await _prices(db)
                third = {sku: (p * Decimal("1.03")).quantize(CENT) for sku, p in prices.items()}
                results["round3_same_listings_again"] = await _round("round-3", third, **run)
                revisions = Counter(
                    state.revisions_today(o.listing_id) for o in state.offers.values()
                )
                results["mock_revisions_today_count_of_listings"] = dict(sorted(revisions.items()))
                results["ebay_line_errors"] = dict(recorder.line_errors)  # 25019 = over the cap
            finally:
                await channel.close()
        await db.dispose()
    await runner.cleanup()
    return results


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main()), indent=2, default=str))
