"""Explain on demand: a pass stores each decision's inputs; ``explain`` re-derives its trace.

The audit trail must stay exact: every decision of a varied pass is re-derived from what was
stored and compared with the trace the pass itself computed (the one the old code stored).
"""

from __future__ import annotations

import io
import random
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from rich.console import Console

from bench.buy_box_pass import offers_for
from bench.reprice_pass import CHANNEL, build
from daemon.db.engine import Database
from daemon.db.models import Action
from daemon.decision_inputs import (
    config_digest,
    config_document,
    decode_snapshot,
    encode_inputs,
    trace_of,
)
from daemon.history import fetch_explain, render_explain
from daemon.metrics import Metrics
from daemon.outbox import Outbox
from daemon.pricing import load_inputs, make_snapshot, plan_and_record
from daemon.settings import PricingSettings
from daemon.snapshots import load_listing_rows
from domain.clock import ManualClock
from domain.offers import CompetitorOffer, OfferObservation
from strategies.engine import decide

ACTIONS: sa.Table = Action.__table__  # type: ignore[attr-defined]
PRICING = PricingSettings.model_validate(
    {
        "guards": {
            "min_margin_pct": 5,
            "max_step_pct": 10,
            "reference_band_pct": 30,
            "breaker": {"share_pct": 100},
        },
        "rules": [
            {
                "match": {"sku": "CLEAR-*"},
                "strategy": "cost_plus",
                "params": {"margin_pct": 10},
                "rounding": {"mode": "charm"},
            },
            # Decided in columns (strategies.batch) where the listing has no history.
            {"match": {"sku": "SKU-00002*"}, "strategy": "cost_plus", "params": {"margin_pct": 20}},
            {
                "match": {"sku": "SKU-00000[0-4]*"},
                "strategy": "lowest_price",
                "params": {"position": "above", "by_pct": "1.5"},
            },
            {
                "match": {"sku": "SKU-00001*"},
                "strategy": "buy_box",
                "params": {"when_winning": "probe", "probe_step_pct": 2},
                "max_price": "60",
            },
            {
                "strategy": "buy_box",
                "params": {
                    "position": "beat",
                    "by_amount": "0.01",
                    "filters": {"fulfillment": ["fba", "fbm"], "min_rating_pct": 90},
                },
            },
        ],
    }
)
OWN = frozenset({"SELF"})


def _varied(observations: dict[str, OfferObservation]) -> dict[str, OfferObservation]:
    """Garbage offers, our own offers (flagged or by seller id), Buy Box flags, ties, references."""
    rng = random.Random(3)
    varied = {}
    for index, (sku, obs) in enumerate(sorted(observations.items())):
        offers = list(obs.offers)
        kind = index % 7
        if kind == 1:
            offers.append(CompetitorOffer("SELF", Decimal("19.99"), is_own=True))
        elif kind == 2:
            offers[0] = replace(offers[0], price=Decimal("NaN"))
            offers[1] = replace(offers[1], shipping=Decimal("-1"))
        elif kind == 3:
            offers.append(replace(offers[rng.randrange(20)], seller_id="S99"))  # a tie
            offers.append(CompetitorOffer("SELF", Decimal("9.50"), is_buy_box_winner=True))
        elif kind == 4:
            offers[5] = replace(offers[5], is_buy_box_winner=True, fulfillment="FBA")
        elif kind == 5:
            offers = []
        reference = Decimal(rng.randint(5, 90)) if index % 5 == 0 else None
        varied[sku] = replace(
            obs,
            offers=tuple(offers),
            reference_price=reference,
            source="OFFER_UNPUBLISHED" if index % 10 == 0 else "poll",
            buy_box_seller=None if kind == 6 else obs.buy_box_seller,
        )
    return varied


async def test_explain_rederives_every_decision_of_a_pass(db: Database, clock: ManualClock) -> None:
    """Each action row of a pass explains with exactly the trace the pass computed."""
    await build(db, 300)
    now = clock.now()
    rows = await load_listing_rows(db, CHANNEL)
    observations = _varied(offers_for(rows, now - timedelta(minutes=3)))
    inputs = await load_inputs(
        db,
        channel=CHANNEL,
        now=now,
        pricing=PRICING,
        observations=observations,
        own_seller_ids=OWN,
    )
    # Some listings with a price history (drift anchor, own median reference).
    history = {
        row.sku: (
            (now - timedelta(days=2), Decimal("12.34")),
            (now - timedelta(hours=3), row.price),
        )
        for row in rows[::4]
        if row.price is not None
    }
    inputs = replace(inputs, history=history)
    outbox = Outbox(db, clock, Metrics())
    await plan_and_record(
        outbox, rows, channel=CHANNEL, pass_id="p1", pricing=PRICING, inputs=inputs
    )
    expected = {}
    for row in rows:
        outcome = decide(make_snapshot(row, CHANNEL, inputs), PRICING.rules, PRICING.guards)
        expected[row.sku] = outcome
    async with db.read() as conn:
        stored = (await conn.execute(sa.select(ACTIONS).where(ACTIONS.c.pass_id == "p1"))).all()
    assert len(stored) == len(rows)
    strategies = set()
    for action in stored:
        assert action.trace == []  # not stored: re-derived
        if action.status == "planned":
            assert action.guard_verdicts == []
        else:  # holds and blocks keep theirs in the row (the console's chart markers read them)
            assert action.guard_verdicts == [s._asdict() for s in expected[action.sku].guards.steps]
        assert action.inputs is not None
        (record,) = await fetch_explain(db, action.sku, channel=CHANNEL)
        outcome = expected[action.sku]
        strategies.add(outcome.strategy)
        assert record["trace"] == trace_of(outcome), action.sku
        assert record["trace"]
        assert record["guard_verdicts"] == [step._asdict() for step in outcome.guards.steps]
        assert record["reason"] == outcome.reason[:1000]
        assert (record["new"], record["status"]) == (outcome.price, action.status)
        assert (
            action.status
            == {"send": "planned", "hold": "held", "blocked": "blocked"}[outcome.verdict]
        )
    assert strategies == {"cost_plus", "lowest_price", "buy_box"}


async def test_explain_output_is_unchanged_and_old_rows_keep_their_trace(
    tmp_path: Any, clock: ManualClock
) -> None:
    """The rendered explanation of a re-derived row equals the one of its stored trace."""
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    from daemon.db.migrate import upgrade

    await upgrade(db)
    try:
        await build(db, 20)
        rows = await load_listing_rows(db, CHANNEL)
        inputs = await load_inputs(
            db,
            channel=CHANNEL,
            now=clock.now(),
            pricing=PRICING,
            observations=offers_for(rows, clock.now()),
            own_seller_ids=OWN,
        )
        outbox = Outbox(db, clock, Metrics())
        await plan_and_record(
            outbox, rows, channel=CHANNEL, pass_id="p1", pricing=PRICING, inputs=inputs
        )
        sku = rows[7].sku
        (derived,) = await fetch_explain(db, sku)
        outcome = decide(make_snapshot(rows[7], CHANNEL, inputs), PRICING.rules, PRICING.guards)
        # The same decision stored the old way: trace inline, no inputs.
        async with db.write() as conn:
            await conn.execute(
                sa.update(ACTIONS)
                .where(ACTIONS.c.sku == sku)
                .values(
                    trace=trace_of(outcome),
                    guard_verdicts=[step._asdict() for step in outcome.guards.steps],
                    inputs=None,
                    config=None,
                )
            )
        (old,) = await fetch_explain(db, sku)
        assert old == derived

        def text(record: dict[str, Any]) -> str:
            console = Console(file=io.StringIO(), width=200, color_system=None)
            render_explain([record], console)
            out = console.file.getvalue()
            assert isinstance(out, str)
            return out

        assert text(derived) == text(old)
        assert "competitors: qualifying" in text(derived)
    finally:
        await db.dispose()


def test_inputs_and_config_round_trip() -> None:
    """Encoded inputs decode to the same snapshot; the config validates back to the same."""
    from datetime import UTC, datetime

    now = datetime(2026, 3, 2, 12, 0, 0, 123456, tzinfo=UTC)
    obs = _varied(offers_for([_Row(f"SKU-{i}") for i in range(14)], now))
    for sku, observation in obs.items():
        snapshot = make_snapshot(
            _listing(sku),
            CHANNEL,
            replace(_EMPTY_INPUTS, now=now, observations={sku: observation}, own_seller_ids=OWN),
        )
        back = decode_snapshot(
            encode_inputs(snapshot),
            channel=CHANNEL,
            sku=sku,
            currency="USD",
            now=now,
            own_seller_ids=OWN,
        )
        assert repr(back) == repr(snapshot)  # NaN offers: repr, as NaN != NaN
    document = config_document(PRICING, OWN)
    again = PricingSettings.model_validate(document["pricing"])
    assert again == PRICING
    assert config_digest(config_document(again, OWN)) == config_digest(document)


class _Row:
    def __init__(self, sku: str) -> None:
        self.sku = sku
        self.price = Decimal("20.00")


def _listing(sku: str) -> Any:
    from daemon.snapshots import ListingRow

    return ListingRow(
        sku,
        "USD",
        Decimal("20.00"),
        3,
        None,
        Decimal("8.5"),
        Decimal("1.25"),
        Decimal("9"),
        Decimal("40.0000"),
        ("a", "b"),
        None,
    )


def _empty_inputs() -> Any:
    from datetime import UTC, datetime

    from daemon.pricing import PassInputs

    return PassInputs(now=datetime(2026, 1, 1, tzinfo=UTC))


_EMPTY_INPUTS = _empty_inputs()
