"""Issue 12 items 1-2 end to end: the real daemon against the mock eBay, which enforces the
per-listing daily revision limit with eBay's refusal. A tight ``daily_revision_limit`` and one-cent
cost changes, pass after pass: prices stop at ``limit - stock_reserve``, every stock change still
lands, and the count holds across separate ``run --once`` runtimes over the same database.

Both sides run on one ManualClock at noon Pacific, so the eBay day cannot roll over mid-test.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from daemon.app import run_once, start_runtime
from daemon.catalog import import_catalog
from daemon.logging import SecretRedactor
from domain.clock import ManualClock
from tests.e2e.ebay_env import (
    BUFFER,
    CENT,
    Daemon,
    Env,
    action_rows,
    catalog_rows,
    make_env,
    sent_entries,
    write_catalog,
)

SKUS = ("E00", "E01", "E02")
NOON_PACIFIC = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # 12:00 PST


def limits(limit: int, reserve: int) -> str:
    """Channel config lines for the revision limit and the stock reserve."""
    return f"    daily_revision_limit: {limit}\n    stock_reserve: {reserve}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON_PACIFIC)


async def env_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: ManualClock, extra: str
) -> AsyncIterator[Env]:
    """Three listings; the mock on the test's clock, without its short-term rate limits (a
    frozen clock never refills a bucket; eBay's daily revision cap is what is tested)."""
    async for env in make_env(tmp_path, monkeypatch, extra, skus=len(SKUS)):
        env.state.clock = clock
        env.state.enforce_rate_limits = False
        # eBay's cap at the configured limit: a revision past it would be refused (25019).
        env.state.revisions_per_day = env.loaded().settings.channels["ebay"].daily_revision_limit
        yield env


def costs_at(round_: int) -> dict[str, str]:
    """Every listing's cost, one cent up per round."""
    return {sku: str(cost + round_ * CENT) for sku, cost, *_ in catalog_rows(count=len(SKUS))}


def revisions_per_kind(env: Env) -> dict[str, Counter[str]]:
    """Bulk entries sent per SKU, by kind (an entry is one revision of its listing)."""
    kinds: dict[str, Counter[str]] = {sku: Counter() for sku in SKUS}
    for entry in sent_entries(env):
        if "shipToLocationAvailability" in entry:
            kinds[entry["sku"]]["stock"] += 1
        else:
            offer = entry["offers"][0]["offerId"]
            sku = next(s for s, *_, o, _p in catalog_rows(count=len(SKUS)) if o == offer)
            kinds[sku]["price"] += 1
    return kinds


def count_at_last_price(env: Env, sku: str) -> int:
    """The listing's revision count right after its last price entry went out."""
    offer = next(o for s, *_, o, _p in catalog_rows(count=len(SKUS)) if s == sku)
    count = at_last = 0
    for entry in sent_entries(env):
        if entry.get("sku") == sku and "shipToLocationAvailability" in entry:
            count += 1
        elif "shipToLocationAvailability" not in entry and entry["offers"][0]["offerId"] == offer:
            count += 1
            at_last = count
    return at_last


def refusals(env: Env) -> list[dict[str, object]]:
    """Lines the mock refused with eBay's 'Cannot revise listing' (25019)."""
    return [
        line
        for call in env.bulk_calls()
        for line in (call.answer or {}).get("responses", [])
        if line.get("errors") and line["errors"][0]["errorId"] == 25019
    ]


async def test_one_daemon_keeps_the_stock_reserve_over_30_cost_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    """daily_revision_limit 20, stock_reserve 5, 30 one-cent cost changes on three listings,
    stock 5 → 4 → 3 late in the day: no listing passes 20, prices stop at 15, eBay shows the
    allocation at the end (issue 12 item 1: it kept showing 5)."""
    async for env in env_with(tmp_path, monkeypatch, clock, limits(20, 5)):
        config = env.loaded()
        daemon = Daemon(await start_runtime(config, SecretRedactor(config.secrets), clock))
        recount = env.tmp / "recount.csv"
        try:
            for round_ in range(30):
                units = 6 if round_ < 22 else 5 if round_ < 26 else 4
                stock = dict.fromkeys(SKUS, units)
                write_catalog(
                    recount,
                    catalog_rows(cost_bump=costs_at(round_), stock=stock, count=len(SKUS)),
                )
                await import_catalog(
                    daemon.rt.db, recount, clock=daemon.rt.clock, known_channels={"ebay"}
                )
                await daemon.converge()
                clock.advance(60)
        finally:
            await daemon.close()
        kinds = revisions_per_kind(env)
        # The mock starts at the catalogue's stock (3, 4, 5 units): E00 and E01 get a first
        # stock write to the allocation 5, E02 already shows 5.
        first_stock = {"E00": 1, "E01": 1, "E02": 0}
        for sku in SKUS:
            assert env.revisions(sku) <= 20, sku
            # Prices until the listing's 15th revision, then the two late stock changes come
            # from the reserve.
            late = 2
            stock_writes = first_stock[sku] + late
            assert kinds[sku] == Counter(price=15 - first_stock[sku], stock=stock_writes), sku
            assert count_at_last_price(env, sku) == 15, sku
            assert env.revisions(sku) == 17, sku
            assert env.listing(sku)[1:] == (4 - BUFFER,) * 3, sku
            newest = (await action_rows(env, kind="price", sku=sku))[-1]
            assert (newest.status, newest.response_code) == ("planned", "REVISION_BUDGET")
            assert "kept for stock updates" in newest.response_message
        assert refusals(env) == []
        stock_rows = await action_rows(env, kind="stock")
        assert {r.status for r in stock_rows} == {"confirmed"}


async def test_thirteen_run_once_runtimes_share_the_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    """13 separate ``run --once`` runtimes over one database (a cron job): the revision count
    is read from the database each time, so prices stop at limit - reserve (12 - 4 = 8), eBay
    never refuses a revision, and the late stock changes land (issue 12 item 2: each run
    started from zero, eBay refused 54 revisions and the final quantity never landed)."""
    async for env in env_with(tmp_path, monkeypatch, clock, limits(12, 4)):
        for run in range(13):
            units = 6 if run < 9 else 5 if run < 11 else 4
            rows = catalog_rows(
                cost_bump=costs_at(run), stock=dict.fromkeys(SKUS, units), count=len(SKUS)
            )
            write_catalog(env.catalog, rows)  # the config's catalog.import_on_start
            config = env.loaded()
            assert await run_once(config, SecretRedactor(config.secrets), clock) == 0
            clock.advance(300)
        kinds = revisions_per_kind(env)
        first_stock = {"E00": 1, "E01": 1, "E02": 0}  # see the test above
        for sku in SKUS:
            assert kinds[sku] == Counter(price=8 - first_stock[sku], stock=first_stock[sku] + 2)
            assert count_at_last_price(env, sku) == 8, sku
            assert env.revisions(sku) == 10, sku
            assert env.listing(sku)[1:] == (4 - BUFFER,) * 3, sku
        assert refusals(env) == []
        prices = await action_rows(env, kind="price")
        assert Counter(r.status for r in prices)["confirmed"] == 8 * 3 - sum(first_stock.values())
        assert {r.status for r in prices} <= {"confirmed", "superseded", "planned"}


@pytest.mark.slow
async def test_real_run_once_processes_share_the_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two ``python -m daemon run --once`` processes (cron) against the mock eBay, limit 4 and
    reserve 2: the first spends a stock write and a price on each listing, so the second,
    reading the count from the database, holds its prices. (The processes use the system
    clock, as the mock does here.)"""
    async for env in make_env(tmp_path, monkeypatch, limits(4, 2), skus=len(SKUS)):
        env.state.revisions_per_day = 4
        for run in range(2):
            write_catalog(env.catalog, catalog_rows(cost_bump=costs_at(run), count=len(SKUS)))
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "daemon",
                "run",
                "--once",
                "-c",
                str(env.config),
                cwd=tmp_path,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await asyncio.wait_for(proc.communicate(), timeout=120)
            assert proc.returncode == 0, stderr.decode()[-3000:]
        kinds = revisions_per_kind(env)
        assert kinds == {sku: Counter(price=1, stock=1) for sku in SKUS}
        assert {env.revisions(sku) for sku in SKUS} == {2}
        assert refusals(env) == []
        for sku in SKUS:
            newest = (await action_rows(env, kind="price", sku=sku))[-1]
            assert (newest.status, newest.response_code) == ("planned", "REVISION_BUDGET")
