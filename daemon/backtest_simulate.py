"""``repricerd backtest --simulate``: both configs against the mock market's competitor bots.

For an install without history. Each config gets its own in-memory mock marketplace
(``connectors.mock.channel.MockChannel``, seeded from the catalogue's ``id:<channel>`` rows, the
same seed for both), whose competitors drift and undercut *that config's* price
(``connectors.mock.market.react``) at every pass. Time is a ``ManualClock`` stepped by
``step``: 30 days run in seconds and nothing waits on the real clock. Demand is synthetic and
the same for both configs: each SKU sells a deterministic random 0.5–4 units a day, spread over
the hours, at its catalogue price with the Buy Box, then scaled per config by the market model
(``daemon.backtest_model``); stock is assumed never to run out.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress

from connectors.base import ChannelDeps
from connectors.mock.channel import MockChannel
from connectors.mock.const import OWN_SELLER_ID
from connectors.mock.models import MockSettings
from daemon.backtest import (
    BacktestRequest,
    ChannelResult,
    Ledger,
    Replay,
    Timeline,
    grid,
    most_changed,
)
from daemon.backtest_model import competition, lowest_rival
from daemon.catalog_csv import read_catalog
from daemon.settings import Settings
from daemon.snapshots import ListingRow
from domain.clock import ManualClock


def catalog_rows(catalog: Path, channel: str, currency: str) -> list[ListingRow]:
    """The catalogue's products listed on ``channel`` as listing rows (read and validated as
    ``repricerd import`` does; stock is not read)."""
    _layout, items, _data = read_catalog(catalog, currency, None)
    rows = []
    for item in items:
        if channel not in item.ids:
            continue
        product = item.product
        rows.append(
            ListingRow(
                item.sku,
                product.get("currency") or currency,
                None,
                None,
                None,
                product.get("cost"),
                product.get("fees"),
                product.get("min_price"),
                product.get("max_price"),
                tuple(product.get("tags") or ()),
            )
        )
    return sorted(rows)


def _demand(rows: Sequence[ListingRow], channel: str, start: datetime, hours: int) -> Ledger:
    """Synthetic orders, the same for both configs (see the module doc)."""
    events: list[tuple[str, datetime, str, int, str | None]] = []
    for row in rows:
        rng = random.Random(f"demand:{channel}:{row.sku}")
        per_hour = rng.uniform(0.5, 4) / 24
        # Enough stock that it never runs out: stock is not what is being compared.
        events.append((row.sku, start - timedelta(days=1), "count", 1_000_000, None))
        for hour in range(hours):
            if rng.random() < per_hour:
                events.append(
                    (row.sku, start + timedelta(hours=hour, minutes=30), "order", -1, channel)
                )
    return Ledger(events)


async def _simulate_channel(
    settings: Settings, request: BacktestRequest, channel: str, bar: Progress | None
) -> ChannelResult | None:
    catalog = settings.catalog.import_on_start
    if catalog is None or not catalog.exists():
        return None
    rows = catalog_rows(catalog, channel, settings.catalog.currency)
    if isinstance(request.selection, str):
        from fnmatch import fnmatchcase

        rows = [row for row in rows if fnmatchcase(row.sku, request.selection)]
    if not rows:
        return None
    start = request.since
    times = list(grid(start, request.until, request.step))
    clock = ManualClock(start)
    own = frozenset({OWN_SELLER_ID}) | request.own_seller_ids
    async with httpx.AsyncClient() as http:
        mock = MockSettings(kind="mock", seed_catalog=catalog, currency=settings.catalog.currency)
        markets = [
            MockChannel(channel, mock, ChannelDeps(http=http, clock=clock)) for _ in range(2)
        ]
    prices = {sku: item.price for sku, item in markets[0].market.listings.items()}
    rows = [row._replace(price=prices[row.sku]) for row in rows if row.sku in prices]
    ledger = _demand(rows, channel, start, len(times) * int(request.step.total_seconds() // 3600))
    replays = [
        Replay(
            channel=channel,
            rows=rows,
            configs=[(label, pricing)],
            recorded=Timeline(prices),
            peers={},
            ledger=ledger,
            own_seller_ids=own,
            start=start,
            elasticity=request.elasticity,
            resume_after=request.resume_after,
        )
        for label, pricing in zip(
            request.labels, (request.baseline, request.candidate), strict=True
        )
    ]
    rivals: dict[str, list[tuple[datetime, Decimal | None]]] = {row.sku: [] for row in rows}
    task = bar.add_task(f"simulating {channel}", total=len(times)) if bar else None
    skus = [row.sku for row in rows]
    for at in times:
        for index, (replay, market) in enumerate(zip(replays, markets, strict=True)):
            run = replay.runs[0]
            for sku in skus:
                listing = market.market.listings[sku]
                listing.price = run.prices[sku] or listing.price
            for observation in await market.fetch_competitor_offers(skus):
                replay.observe(observation)
                if index == 0:
                    lowest = lowest_rival(competition(observation, own))
                    rivals[observation.sku].append((at, lowest))
            replay.tick(at)
        clock.advance(request.step.total_seconds())
        if bar is not None and task is not None:
            bar.update(task, advance=1)
    end = times[-1] + request.step if times else start
    for replay in replays:
        replay.finish(end)
    result = ChannelResult(
        channel,
        rows[0].currency,
        start,
        end,
        (replays[0].runs[0], replays[1].runs[0]),
        len(times),
    )
    result.competition = {sku: rivals[sku] for sku in most_changed(result)}
    return result


def simulate_channels(
    settings: Settings, request: BacktestRequest, console: Console | None = None
) -> list[ChannelResult]:
    """Simulate every requested channel that the catalogue lists products on."""

    async def go() -> list[ChannelResult]:
        found = []
        with Progress(console=console, disable=console is None, transient=True) as bar:
            for channel in request.channels:
                result = await _simulate_channel(settings, request, channel, bar)
                if result is not None:
                    found.append(result)
        return found

    return asyncio.run(go())
