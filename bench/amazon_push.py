"""Push 10,000 price changes to the mock SP-API over loopback, at Amazon's published limits.

The daemon's own write path does the work: 10,000 ``planned`` price intents are recorded in the
outbox, then one ``dispatch`` hands them to the real ``AmazonChannel``, which sends them as one
``JSON_LISTINGS_FEED`` (past ``patch_max_batch``): createFeedDocument → presigned upload →
createFeed → getFeed polls → getFeedDocument → report download. Everything runs on the real clock.
The mock runs in its own process (``bench.mock_process``), so its CPU work is not
the client's wall time, and it enforces the default usage plans (429 ``QuotaExceeded`` past them);
it applies the feed while IN_PROGRESS and reports DONE ``FEED_PROCESSING_S`` after createFeed.
Its counters (calls, 429s, applied effects, feeds) are read from ``GET /_mock/state``.

The feed processing delay is an assumption, not a published figure: Amazon documents no processing
time for listings feeds (**unconfirmed**; anecdotally one to a few minutes for small feeds). 60 s
is the low end of that; a longer delay moves the lower bound and the wall time alike.

Lower bound: the calls this work needs at least (one of each feed operation, one getFeed), each
against its own bucket from full (``RateLimit.lower_bound_s``), plus the processing delay. The
alternative, 10,000 single PATCHes at 5/s burst 5, is reported for comparison and not run.
Target: wall time within 1.2× of the lower bound, zero 429s.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.mock_process import mock_process
from connectors.amazon import AmazonChannel, AmazonSettings
from connectors.amazon.const import (
    CREATE_FEED,
    CREATE_FEED_DOCUMENT,
    FEED_DOWNLOAD,
    FEED_UPLOAD,
    GET_FEED,
    GET_FEED_DOCUMENT,
    PATCH_LISTING,
    RATE_LIMITS,
)
from connectors.base import ChannelDeps
from connectors.mock.amazon import AmazonMockState
from connectors.mock.amazon.app import start
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import Action, ActionKind, ActionStatus, Listing
from daemon.intents import PlannedWrite, new_idempotency_key
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from domain.clock import SystemClock

CHANNEL = "amazon-bench"
CHANGES = 10_000
FEED_PROCESSING_S = 60.0
# How often the connector looks at the feed: getFeed allows 2/s (burst 15); every 5 s is 12
# calls a minute and overshoots the end of processing by at most 5 s.
POLL_INTERVAL_S = 5.0
SELLER = "A3BENCHSELLER"
MARKET = "ATVPDKIKX0DER"
ACTIONS = Action.__table__  # type: ignore[attr-defined]
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
# The minimum number of calls of each operation the feed path needs (client view).
FEED_CALLS = {
    CREATE_FEED_DOCUMENT: 1,
    FEED_UPLOAD: 1,
    CREATE_FEED: 1,
    GET_FEED: 1,
    GET_FEED_DOCUMENT: 1,
    FEED_DOWNLOAD: 1,
}


def _operation(request: httpx.Request) -> str:
    """Name the operation of one outgoing request (the client-side call count)."""
    path, method = request.url.path, request.method
    if path == "/auth/o2/token":
        return "lwaToken"
    if path.startswith("/_s3/upload/"):
        return FEED_UPLOAD
    if path.startswith("/_s3/download/"):
        return FEED_DOWNLOAD
    if path == "/feeds/2021-06-30/documents":
        return CREATE_FEED_DOCUMENT
    if path.startswith("/feeds/2021-06-30/documents/"):
        return GET_FEED_DOCUMENT
    if path == "/feeds/2021-06-30/feeds":
        return CREATE_FEED
    if path.startswith("/feeds/2021-06-30/feeds/"):
        return GET_FEED
    if path.startswith("/listings/2021-08-01/items/"):
        return PATCH_LISTING if method == "PATCH" else "searchListingsItems"
    return f"{method} {path}"


def lower_bound_s(calls: dict[str, int], processing_s: float) -> float:
    """Least wall time the published limits allow: each phase from a full bucket, in sequence."""
    paced = sum(RATE_LIMITS[op].lower_bound_s(n) for op, n in calls.items() if op in RATE_LIMITS)
    return paced + processing_s


def _catalogue(path: Path, changes: int) -> Path:
    """The mock's seed: one listing per SKU at $20.00 (``id:``/``price:`` columns)."""
    lines = [f"sku,id:{CHANNEL},price:{CHANNEL}"]
    lines += [f"SKU-{i:06d},B{i:09d},20.00" for i in range(changes)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def _record(db: Database, outbox: Outbox, changes: int) -> None:
    """The catalogue's listings and one planned price intent each (what a reprice pass records)."""
    now = datetime.now(UTC)
    listings, intents = [], []
    for i in range(changes):
        sku = f"SKU-{i:06d}"
        listings.append(
            {
                "channel": CHANNEL,
                "sku": sku,
                "external_id": f"B{i:09d}",
                "external_ids": {"asin": f"B{i:09d}"},
                "fulfillment": "merchant",
                "currency": "USD",
                "price": Decimal("20.00"),
                "quantity": 5,
                "status": "active",
                "discovered_at": now,
                "updated_at": now,
            }
        )
        intents.append(
            PlannedWrite(
                pass_id="bench",
                kind=ActionKind.PRICE,
                channel=CHANNEL,
                sku=sku,
                status=ActionStatus.PLANNED,
                old_price=Decimal("20.00"),
                new_price=Decimal("19.00") + Decimal(i % 100) / 100,
                currency="USD",
                floor=Decimal("15.00"),
                ceiling=Decimal("30.00"),
                reason="bench",
                idempotency_key=new_idempotency_key(),
                created_at=now,
            )
        )
    async with db.write() as conn:
        for start_at in range(0, changes, 5_000):
            await conn.execute(sa.insert(LISTINGS), listings[start_at : start_at + 5_000])
    await outbox.record(intents)


async def main(listings: int = CHANGES, processing_s: float = FEED_PROCESSING_S) -> dict[str, Any]:
    """Record ``min(listings, 10,000)`` price intents and time one dispatch through the feed."""
    changes = min(listings, CHANGES)
    defaults = AmazonMockState()  # the mock's well-known test credentials
    sent: Counter[str] = Counter()

    async def count(request: httpx.Request) -> None:
        sent[_operation(request)] += 1

    with tempfile.TemporaryDirectory() as tmp:
        catalogue = _catalogue(Path(tmp) / "catalogue.csv", changes)
        async with mock_process(
            start,
            AmazonMockState,
            catalogue,
            channel=CHANNEL,
            competitors=0,
            seller_id=SELLER,
            feed_processing_s=processing_s,
        ) as base_url:
            db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
            await upgrade(db)
            clock = SystemClock()
            outbox = Outbox(db, clock, Metrics())
            t0 = time.perf_counter()
            await _record(db, outbox, changes)
            record_s = time.perf_counter() - t0
            settings = AmazonSettings.model_validate(
                {
                    "kind": "amazon",
                    "endpoint": base_url,
                    "auth_endpoint": f"{base_url}/auth/o2/token",
                    "marketplace_id": MARKET,
                    "seller_id": SELLER,
                    "credentials": {
                        "client_id": defaults.client_id,
                        "client_secret": defaults.client_secret,
                        "refresh_token": defaults.refresh_token,
                    },
                    "feed_poll_interval_s": POLL_INTERVAL_S,
                }
            )
            hooks = {"request": [count]}
            async with httpx.AsyncClient(timeout=60.0, event_hooks=hooks) as http:
                channel = AmazonChannel(CHANNEL, settings, ChannelDeps(http=http, clock=clock))
                await channel.open()
                opened = Counter(sent)
                t1 = time.perf_counter()
                report = await outbox.dispatch(channel, ActionKind.PRICE)
                wall_s = time.perf_counter() - t1
            async with httpx.AsyncClient(timeout=60.0) as http:
                mock = (await http.get(f"{base_url}/_mock/state")).json()
            async with db.read() as conn:
                outcomes = Counter(
                    f"{row.status}/{row.response_code}"
                    for row in (
                        await conn.execute(sa.select(ACTIONS.c.status, ACTIONS.c.response_code))
                    ).all()
                )
            await db.dispose()
    push_calls = dict(sent - opened)
    bound = lower_bound_s(FEED_CALLS, processing_s)
    prices = {k: v for k, v in mock["applied"].items() if "|price|" in k}
    return {
        "changes": changes,
        "record_intents_s": round(record_s, 2),
        "dispatch_wall_s": round(wall_s, 2),
        "feed_processing_s": processing_s,
        "poll_interval_s": POLL_INTERVAL_S,
        "lower_bound_s": round(bound, 2),
        "ratio_to_lower_bound": round(wall_s / bound, 3),
        "target_ratio": 1.2,
        "calls_per_operation": push_calls,
        "calls_to_open": dict(opened),
        "throttled_429": mock["throttled"],
        "throttled_total": mock["throttled_total"],
        "mock_calls": mock["calls"],
        "dispatch": vars(report),
        "action_outcomes": dict(outcomes),
        "mock_prices_applied_once": sum(1 for n in prices.values() if n == 1),
        "mock_prices_applied_more_than_once": sum(1 for n in prices.values() if n > 1),
        "feeds": mock["feeds"],
        "patch_path_lower_bound_s": round(RATE_LIMITS[PATCH_LISTING].lower_bound_s(changes), 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(asyncio.run(main()), indent=2, default=str))
