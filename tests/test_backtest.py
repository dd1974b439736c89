"""``repricerd backtest``: replay recorded history through a baseline and a candidate config."""

from __future__ import annotations

import asyncio
import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner
from rich.console import Console

from daemon.backtest import BacktestRequest, ChannelResult, backtest_channel
from daemon.backtest_model import competition, estimated_units, holds_buy_box
from daemon.backtest_report import render_html, render_summary, summarise
from daemon.backtest_simulate import simulate_channels
from daemon.cli import main
from daemon.db.engine import Database
from daemon.db.migrate import upgrade
from daemon.db.models import ActionStatus, Listing, OfferSnapshot, Product, StockEvent
from daemon.passes import run_named_pass
from daemon.settings import PricingSettings
from domain.clock import ManualClock
from domain.offers import CompetitorOffer, OfferObservation
from tests.daemon_fixtures import actions, make_runtime, seed, settings

D = Decimal
T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
OWN = frozenset({"ME"})
LISTINGS = Listing.__table__  # type: ignore[attr-defined]
PRODUCTS = Product.__table__  # type: ignore[attr-defined]
OFFERS = OfferSnapshot.__table__  # type: ignore[attr-defined]
EVENTS = StockEvent.__table__  # type: ignore[attr-defined]
LISTED = D("16.00")


def pricing(**guards: Any) -> PricingSettings:
    """A buy_box (beat by a cent) config with the given guards."""
    return PricingSettings.model_validate(
        {
            "guards": {"max_step_pct": 10, **guards},
            "rules": [{"strategy": "buy_box", "params": {"position": "beat", "by_amount": "0.01"}}],
        }
    )


def request(baseline: PricingSettings, candidate: PricingSettings, hours: int) -> BacktestRequest:
    return BacktestRequest(
        channels=("alpha",),
        baseline=baseline,
        candidate=candidate,
        since=T0,
        until=T0 + HOUR * (hours - 1),
        own_seller_ids=OWN,
    )


async def craft(
    db: Database, skus: list[str], rival: Decimal, hours: int, price: Decimal = LISTED
) -> None:
    """A recorded history: products at cost 10, listed at ``price``, one rival at ``rival``
    every hour, and one order an hour each."""
    async with db.write() as conn:
        for sku in skus:
            await conn.execute(
                sa.insert(PRODUCTS).values(
                    sku=sku,
                    currency="USD",
                    cost=D("10"),
                    fees=D("0"),
                    min_price=None,
                    max_price=D("20"),
                    tags=[],
                    kit_components={},
                    created_at=T0 - HOUR,
                    updated_at=T0 - HOUR,
                )
            )
            await conn.execute(
                sa.insert(LISTINGS).values(
                    channel="alpha",
                    sku=sku,
                    currency="USD",
                    price=price,
                    status="active",
                    external_ids={},
                    discovered_at=T0 - HOUR,
                    updated_at=T0 - HOUR,
                )
            )
            for hour in range(hours):
                at = T0 + HOUR * hour
                offers = [
                    {
                        "seller_id": "RIVAL",
                        "price": str(rival),
                        "shipping": "0",
                        "fulfillment": "fbm",
                        "buy_box": True,
                    },
                    {
                        "seller_id": "ME",
                        "price": str(price),
                        "shipping": "0",
                        "fulfillment": "fbm",
                        "own": True,
                    },
                ]
                await conn.execute(
                    sa.insert(OFFERS).values(
                        channel="alpha",
                        sku=sku,
                        source="poll",
                        buy_box_price=rival,
                        buy_box_seller="RIVAL",
                        offers=offers,
                        fingerprint=f"{hour}",
                        observed_at=at,
                    )
                )
                await conn.execute(
                    sa.insert(EVENTS).values(
                        sku=sku,
                        kind="order",
                        delta=-1,
                        external_ref=f"o:{sku}:{hour}",
                        channel="alpha",
                        occurred_at=at + timedelta(minutes=30),
                        recorded_at=at + timedelta(minutes=30),
                    )
                )


def totals(result: ChannelResult, metric: str) -> Any:
    return summarise([result])["total"][metric]


async def test_replaying_the_current_config_reproduces_the_recorded_decisions(
    db: Database, clock: ManualClock
) -> None:
    """A demo history recorded by real reprice passes (mock market bots reacting, breaker,
    guards, drift) is replayed with the same config: every sent price at the same time."""
    config = settings(
        channels={"alpha": {"kind": "mock", "competitors": 3}},
        pricing={
            "guards": {
                "max_step_pct": 5,
                "max_daily_move_pct": 12,
                "breaker": {"share_pct": 90, "move_pct": 30},
            },
            "rules": [
                {  # stock-driven: reads the ledger (on hand, sales windows) at each pass
                    "match": {"sku": "C*"},
                    "strategy": "excess_inventory",
                    "params": {
                        "target_days_of_cover": 6,
                        "short_cover_days": 3,
                        "window_days": 1,
                        "cadence": "2h",
                    },
                },
                {"strategy": "buy_box", "params": {"position": "beat", "by_amount": "0.05"}},
            ],
        },
    )
    rt = await make_runtime(db, clock, config)
    products = [
        {
            "sku": f"{'C' if i < 4 else 'S'}{i:02d}",
            "cost": D("8"),
            "min_price": D("9"),
            "max_price": D("40"),
            "price": D("20") + i,
            "stock": 30,
        }
        for i in range(12)
    ]
    await seed(db, clock, rt, products, listed_on=("alpha",))
    await run_named_pass(rt, "reconcile", "r0")
    clock.advance(60)
    start = clock.now()
    passes = 30
    for index in range(passes):
        await run_named_pass(rt, "reprice", f"p{index}")
        clock.advance(3600)
        async with db.write() as conn:  # a burst of orders now and then, between passes
            for n in range(4 if index % 7 < 2 else 0):
                await conn.execute(
                    sa.insert(EVENTS).values(
                        sku=f"C{index % 4:02d}",
                        kind="order",
                        delta=-1,
                        external_ref=f"order:{index}:{n}",
                        channel="alpha",
                        occurred_at=clock.now() - timedelta(minutes=10),
                        recorded_at=clock.now() - timedelta(minutes=10),
                    )
                )
    await rt.close()
    recorded: dict[str, list[tuple[datetime, Decimal]]] = {}
    for row in await actions(db, kind="price", status=ActionStatus.CONFIRMED.value):
        recorded.setdefault(row.sku, []).append((row.completed_at, row.new_price))
    assert sum(len(v) for v in recorded.values()) > 30  # the bots kept it busy
    assert {"C00", "S04"} <= set(recorded)  # both rules moved prices
    own = rt.own_seller_ids()
    replay = BacktestRequest(
        channels=("alpha",),
        baseline=rt.settings.pricing,
        candidate=rt.settings.pricing,
        since=start,
        until=start + HOUR * (passes - 1),
        own_seller_ids=own,
    )
    result = await backtest_channel(db, replay, "alpha")
    assert result is not None
    assert result.ticks == passes
    for run in result.runs:
        replayed = {sku: run.sent(sku) for sku in run.stats if run.sent(sku)}
        assert replayed == recorded


async def test_a_lower_floor_wins_more_buy_box_for_less_margin(db: Database) -> None:
    """A rival at 10.50 against cost 10: the baseline's 50 % margin floor (15) never beats it,
    the candidate's 0 % floor does, at a margin of cents."""
    skus = ["A", "B"]
    await craft(db, skus, rival=D("10.50"), hours=48)
    result = await backtest_channel(
        db, request(pricing(min_margin_pct=50), pricing(min_margin_pct=0), 48), "alpha"
    )
    assert result is not None
    share = totals(result, "buy_box_share_pct")
    assert share["candidate"] > share["baseline"] == 0
    margin = totals(result, "margin")
    assert margin["candidate"] < margin["baseline"]
    assert totals(result, "units")["candidate"] > totals(result, "units")["baseline"]
    base, cand = result.runs
    assert {p for _, p in base.sent("A")} == {D("15.00")}
    assert cand.sent("A")[-1][1] == D("10.49")


async def test_a_candidate_that_would_trip_the_breaker_shows_the_trip(db: Database) -> None:
    """Every listing asked to fall far at once: the candidate's pass is stopped, nothing sent."""
    skus = [f"S{i:02d}" for i in range(12)]
    await craft(db, skus, rival=D("11"), hours=6)
    calm = PricingSettings.model_validate(
        {
            "guards": {"breaker": {"share_pct": 50, "move_pct": 20}},
            "rules": [{"strategy": "cost_plus", "params": {"margin_pct": 60}}],  # 16.00: holds
        }
    )
    jumpy = pricing(max_step_pct=40, breaker={"share_pct": 50, "move_pct": 20})
    result = await backtest_channel(db, request(calm, jumpy, 6), "alpha")
    assert result is not None
    base, cand = result.runs
    assert base.trips == []
    assert len(cand.trips) == 1
    at, reason = cand.trips[0]
    assert at == T0
    assert "would move 12 of 12 listings" in reason
    assert all(cand.sent(sku) == [] for sku in skus)  # stopped until the operator resumes
    trips = totals(result, "breaker_trips")
    assert (trips["baseline"], trips["candidate"]) == (0, 1)
    assert totals(result, "breaker_blocks")["candidate"] == 12
    out = io.StringIO()
    render_summary(summarise([result]), Console(file=out), "csv")
    header, total, *_ = out.getvalue().splitlines()
    row = dict(zip(header.split(","), total.split(","), strict=True))
    # The CSV carries the table's figures, the breaker's trips included (on the TOTAL row).
    assert (row["breaker_trips_baseline"], row["breaker_trips_candidate"]) == ("0", "1")


async def test_guards_cannot_be_bypassed_in_a_backtest(db: Database) -> None:
    """A rival at 1.00: the candidate chases it, but never under the floor nor faster than
    max_step, exactly as live."""
    await craft(db, ["A"], rival=D("1.00"), hours=24)
    result = await backtest_channel(
        db, request(pricing(), pricing(min_margin_pct=5, max_step_pct=10), 24), "alpha"
    )
    assert result is not None
    cand = result.runs[1]
    previous = D("16.00")
    for _, price in cand.sent("A"):
        assert price >= D("10.50")  # cost 10 × 1.05
        assert abs(price - previous) <= previous * D("0.10")
        previous = price
    assert previous == D("12.00")  # and no faster than the 25 % a day of the drift guard
    assert cand.stats["A"].guard_blocks == 0
    assert cand.stats["A"].changes == 3


def test_market_model_tie_rules_and_elasticity() -> None:
    """Ties go to the incumbent, then to marketplace fulfilment; units follow price ** −1.5."""
    observation = OfferObservation(
        sku="A",
        observed_at=T0,
        offers=(
            CompetitorOffer("R", D("10"), fulfillment="fbm", is_buy_box_winner=True),
            CompetitorOffer("ME", D("11"), is_own=True),
        ),
    )
    market = competition(observation, OWN)
    assert not holds_buy_box(market, D("10"))  # a tie: the incumbent keeps it
    assert holds_buy_box(market, D("9.99"))
    units = estimated_units(10, D("10"), True, D("11"), True)
    assert units.quantize(D("0.01")) == D("8.67")
    assert estimated_units(10, D("10"), True, D("10"), False) == D("2")
    assert estimated_units(0, D("10"), True, D("5"), True) == 0


async def test_report_formats_and_self_contained_html(db: Database, tmp_path: Path) -> None:
    """CSV, JSON and table outputs; the HTML has its charts inline and fetches nothing."""
    await craft(db, ["A", "B"], rival=D("10.50"), hours=12)
    result = await backtest_channel(
        db, request(pricing(min_margin_pct=50), pricing(min_margin_pct=0), 12), "alpha"
    )
    assert result is not None
    summary = summarise([result])
    out = io.StringIO()
    render_summary(summary, Console(file=out, width=200), "json")
    data = json.loads(out.getvalue())
    assert data["total"]["price_changes"]["candidate"] > 0
    assert {row["sku"] for row in data["skus"]} == {"A", "B"}
    out = io.StringIO()
    render_summary(summary, Console(file=out, width=200), "csv")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("channel,sku,buy_box_share_pct_baseline")
    assert lines[1].startswith("*,TOTAL,")
    assert len(lines) == 4
    out = io.StringIO()
    render_summary(summary, Console(file=out, width=200), "table")
    assert "Buy Box share %" in out.getvalue()
    html = render_html([result], summary, title="backtest")
    for chart in ("margin-chart", "buy-box-chart", "price-path-chart"):
        assert f"chart {chart}" in html
    assert "<script" not in html
    assert "<link" not in html
    assert "url(" not in html
    urls = set(re.findall(r"https?://[^\"' )]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}


def test_cli_backtest_reads_the_database_and_writes_the_report(tmp_path: Path) -> None:
    """`repricerd backtest --candidate ... --report ... --format json` on a recorded history."""
    url = f"sqlite:///{tmp_path / 'history.db'}"

    async def record() -> None:
        db = Database(url)
        await upgrade(db)
        await craft(db, ["A"], rival=D("10.50"), hours=6)
        await db.dispose()

    asyncio.run(record())
    base = tmp_path / "base.yaml"
    rules = '  rules: [{strategy: buy_box, params: {position: beat, by_amount: "0.01"}}]\n'
    channels = "channels:\n  alpha: {kind: mock}\n"
    base.write_text(
        f"database: {url}\n{channels}pricing:\n  guards: {{min_margin_pct: 50}}\n{rules}"
    )
    cand = tmp_path / "cand.yaml"
    cand.write_text(
        f"database: {url}\n{channels}pricing:\n  guards: {{min_margin_pct: 0}}\n{rules}"
    )
    report = tmp_path / "out.html"
    args = ["backtest", "-c", str(base), "--candidate", str(cand), "--since", "366d"]
    result = CliRunner().invoke(main, [*args, "--report", str(report), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.splitlines()[-1])
    assert data["window"]["channels"] == ["alpha"]
    assert data["total"]["buy_box_share_pct"]["candidate"] is not None
    assert "price-path-chart" in report.read_text()
    same = CliRunner().invoke(main, [*args, "--baseline", str(cand), "--format", "csv"])
    assert same.exit_code == 0, same.output
    total = same.stdout.splitlines()[1].split(",")
    assert total[2] == total[3]  # the candidate against itself: the same Buy Box share
    one = CliRunner().invoke(main, [*args, "--baseline", str(cand), "--format", "csv", "-j", "1"])
    assert one.exit_code == 0, one.output
    assert one.stdout == same.stdout  # one process or two (auto): the same figures
    refusals = (
        ("--elasticity", "nan"),
        ("--elasticity", "-inf"),
        ("--jobs", "0"),
        ("--report", str(tmp_path / "no-such-dir" / "out.html")),  # refused before the replay
    )
    for option, value in refusals:
        refused = CliRunner().invoke(main, [*args, option, value])
        assert refused.exit_code == 2, refused.output
        assert option in refused.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"database: {url}\n{channels}pricing:\n  rules: []\n")
    failed = CliRunner().invoke(main, ["backtest", "-c", str(base), "--candidate", str(bad)])
    assert failed.exit_code == 1
    assert "bad.yaml" in failed.output


def test_simulate_runs_both_configs_against_the_mock_bots(tmp_path: Path) -> None:
    """No history: each config against its own mock market, on a manual clock, same report."""
    catalog = tmp_path / "catalog.csv"
    rows = ["sku,currency,cost,fees,min_price,max_price,stock,tags,id:alpha,price:alpha"]
    rows += [f"S{i},USD,10,0,,40,5,,A{i},{20 + i}" for i in range(12)]
    catalog.write_text("\n".join(rows) + "\n")
    config = settings(
        channels={"alpha": {"kind": "mock"}}, catalog={"import_on_start": str(catalog)}
    )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    req = BacktestRequest(
        channels=("alpha",),
        baseline=pricing(min_margin_pct=50),
        candidate=pricing(min_margin_pct=0),
        since=start,
        until=start + timedelta(days=2),
    )
    results = simulate_channels(config, req)
    assert [r.ticks for r in results] == [49]
    share = summarise(results)["total"]["buy_box_share_pct"]
    assert share["candidate"] > share["baseline"]
    assert "price-path-chart" in render_html(results, summarise(results), title="simulated")
    again = summarise(simulate_channels(config, req))
    assert again == summarise(results)  # deterministic: seeded bots, synthetic demand


def _observation(sku: str, at: datetime, rival: Decimal) -> OfferObservation:
    return OfferObservation(
        sku, at, (CompetitorOffer("RIVAL", rival, fulfillment="fbm", rating_pct=95),)
    )


def _replay(sku: str) -> Any:
    """An in-memory replay of one listing (cost 10, listed at 16.00) for two buy_box configs."""
    from daemon.backtest import Ledger, Replay, Timeline
    from daemon.snapshots import ListingRow

    row = ListingRow(sku, "USD", D("16.00"), None, None, D("10"), D("0"), None, D("20"), ())
    return Replay(
        channel="alpha",
        rows=[row],
        configs=[("baseline", pricing()), ("candidate", pricing())],
        recorded=Timeline({sku: D("16.00")}),
        peers={},
        ledger=Ledger([]),
        own_seller_ids=OWN,
        start=T0,
    )


def test_a_period_is_judged_against_the_competition_live_during_it() -> None:
    """The hour after a pass competes with the snapshot that pass saw, not the next one: a
    rival's cut observed at the next pass cannot reach back and cost the hour before it."""
    replay = _replay("A")
    replay.observe(_observation("A", T0, D("15.00")))
    replay.tick(T0)  # beats 15.00 by a cent: 14.99
    assert replay.runs[0].prices["A"] == D("14.99")
    replay.observe(_observation("A", T0 + HOUR, D("14.00")))  # the rival cut, seen at 01:00
    replay.tick(T0 + HOUR)
    replay.finish(T0 + 2 * HOUR)
    stats = replay.runs[0].stats["A"]
    # (00:00, 01:00] at 14.99 against 15.00: held and below; (01:00, 02:00] at the new price.
    assert stats.buy_box_seconds == 2 * 3600
    assert stats.below_seconds == 2 * 3600


def _outcome(result: ChannelResult) -> list[Any]:
    return [
        (run.name, run.stats, run.trips, run.series, run.points, run.prices) for run in result.runs
    ]


async def test_two_processes_give_the_same_results_as_one(db: Database) -> None:
    """``jobs=2`` replays the candidate in a spawned process: the same paths, trips, stats
    and series as the sequential replay of both configs."""
    skus = [f"S{i:02d}" for i in range(6)]
    await craft(db, skus, rival=D("11"), hours=8)
    jumpy = pricing(max_step_pct=40, breaker={"share_pct": 50, "move_pct": 20})
    asked = request(pricing(min_margin_pct=5), jumpy, 8)
    one = await backtest_channel(db, asked, "alpha")
    two = await backtest_channel(db, asked, "alpha", jobs=2)
    assert one is not None
    assert two is not None
    assert _outcome(two) == _outcome(one)
    # The two paths differ: the candidate's own path came back from the other process.
    assert one.runs[1].sent("S00") != one.runs[0].sent("S00")
    assert (two.start, two.end, two.ticks, two.competition) == (
        one.start,
        one.end,
        one.ticks,
        one.competition,
    )


def test_the_guards_window_keeps_a_recorded_change_s_own_old_price() -> None:
    """Stored as points, the 30-day window still starts at the old price of its first change:
    a recorded one's own (a change made elsewhere), a replayed one's the previous price."""
    from daemon.backtest import Change, ConfigRun, _window

    before = T0 - timedelta(days=40)
    recorded = [Change(before, D("9.00"), D("12.00")), Change(T0 - HOUR, D("13.00"), D("14.00"))]
    run = ConfigRun(
        "baseline",
        pricing(),
        {"A": D("14.00")},
        {"A": T0 - HOUR},
        {"A": recorded},
        replay_start={"A": 2},
    )
    cutoff = T0 - timedelta(days=30)
    assert _window(run, "A", cutoff) == ((cutoff, D("13.00")), (T0 - HOUR, D("14.00")))
    run.record("A", T0, D("15.00"))
    run.record("A", T0 + HOUR, D("15.00"))
    assert run.sent("A") == [(T0, D("15.00")), (T0 + HOUR, D("15.00"))]
    assert run.sent("A")[0][1] is run.sent("A")[1][1]  # one object per price
    later = T0 - timedelta(minutes=30)  # the window of a pass 30 days on
    assert _window(run, "A", later) == (
        (later, D("14.00")),
        (T0, D("15.00")),
        (T0 + HOUR, D("15.00")),
    )
    assert run.old_price("A", 3) == D("15.00")


def test_the_ledger_is_read_as_of_each_pass_by_when_rows_were_recorded() -> None:
    """A pass sees the ledger rows recorded by then, as the live pass's queries did: an order
    that occurred at 00:30 but was recorded at 01:30 is not sold yet at 01:00, and before its
    first event a SKU's stock is unknown (None), not zero."""
    from daemon.backtest import Ledger

    half = timedelta(minutes=30)
    ledger = Ledger(
        [
            ("A", T0 - 2 * HOUR, "receipt", 5, None, T0 - 2 * HOUR),
            ("A", T0 + half, "order", -1, "alpha", T0 + 3 * half),
            ("A", T0 - 3 * HOUR, "order", -1, "alpha", T0 - 3 * HOUR),
            ("B", T0, "order", -1, "alpha", T0 + 2 * HOUR),
        ]
    )
    assert ledger.on_hand("A", T0 - 4 * HOUR) is None
    assert ledger.on_hand("A", T0 - 3 * HOUR) == -1
    assert ledger.on_hand("A", T0 + HOUR) == 4
    assert ledger.on_hand("A", T0 + 2 * HOUR) == 3
    assert ledger.sold("A", T0 + HOUR) == ((1, 1), (7, 1), (30, 1))
    assert ledger.sold("A", T0 + 2 * HOUR) == ((1, 2), (7, 2), (30, 2))
    assert ledger.sold("B", T0 + HOUR) is None
    assert ledger.on_hand("B", T0 + HOUR) is None
    assert ledger.sold("B", T0 + 2 * HOUR) == ((1, 1), (7, 1), (30, 1))
    assert ledger.age("A", T0 - 3 * HOUR) is None
    assert ledger.units("A", "alpha", T0, T0 + HOUR) == 1  # the market model: what really sold


def test_buy_box_share_counts_only_time_with_a_snapshot_to_judge() -> None:
    """Before a SKU's first snapshot nobody knows who held the Buy Box: that time is neither
    won nor lost (it is not in the share's denominator)."""
    from daemon.backtest_report import metrics

    replay = _replay("B")
    replay.tick(T0)  # no snapshot of B yet
    replay.observe(_observation("B", T0 + HOUR, D("15.00")))
    replay.tick(T0 + HOUR)
    replay.finish(T0 + 2 * HOUR)
    stats = replay.runs[0].stats["B"]
    assert metrics(stats)["buy_box_share_pct"] == D("100.0")
    assert [p.judged for p in replay.runs[0].series] == [0, 1]


async def test_the_html_report_escapes_skus(db: Database) -> None:
    """A SKU is user data: in headings, chart titles and the table it is text, never markup."""
    sku = "<b onclick='x'>A&B</b>"
    await craft(db, [sku], rival=D("10.50"), hours=4)
    result = await backtest_channel(
        db, request(pricing(min_margin_pct=50), pricing(min_margin_pct=0), 4), "alpha"
    )
    assert result is not None
    html = render_html([result], summarise([result]), title="<i>t</i>")
    assert "<b onclick" not in html
    assert "<i>" not in html
    assert "&lt;b onclick=&#x27;x&#x27;&gt;A&amp;B&lt;/b&gt;" in html
