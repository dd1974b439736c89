"""Explain on demand: a price decision's compact inputs, stored instead of its prose trace.

A reprice pass stores, per action row, the snapshot the strategy read (``action.inputs``, money
as exact decimal strings) and the digest of the pricing config it ran under (``action.config``,
the config itself once in ``decision_config``). The strategy and the guards are pure and
deterministic, so ``explain`` re-runs them on those inputs and gets the trace the pass saw,
step for step (``tests/test_explain_on_demand.py`` re-derives every decision of a pass).
The channel, SKU, currency and decision time are the row's own columns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.db.engine import Database
from daemon.db.models import DecisionConfig
from daemon.settings import PricingSettings
from domain.offers import CompetitorOffer
from strategies.base import Snapshot, TraceStep
from strategies.engine import Outcome, decide

CONFIGS = DecisionConfig.__table__  # type: ignore[attr-defined]
_BUY_BOX, _OWN = 1, 2  # offer flag bits


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def encode_inputs(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot's per-listing fields as compact JSON (empty and unknown ones left out).

    Written for 100,000 rows a pass: one dict, filled only with what is known.
    """
    s = snapshot
    fields: dict[str, Any] = {}
    for key, money in (
        ("p", s.current_price),
        ("c", s.cost),
        ("f", s.fees),
        ("lo", s.min_price),
        ("hi", s.max_price),
        ("bb", s.buy_box_price),
        ("r", s.reference_price),
    ):
        if money is not None:
            fields[key] = str(money)
    if s.tags:
        fields["t"] = s.tags
    if s.quantity is not None:
        fields["q"] = s.quantity
    if s.stock_on_hand is not None:
        fields["oh"] = s.stock_on_hand
    if s.offers:
        fields["o"] = [
            (
                o.seller_id,
                str(o.price),
                str(o.shipping),
                o.fulfillment,
                o.rating_pct,
                o.rating_count,
                (_BUY_BOX if o.is_buy_box_winner else 0) | (_OWN if o.is_own else 0),
            )
            for o in s.offers
        ]
    if s.buy_box_seller is not None:
        fields["bs"] = s.buy_box_seller
    if s.reference_source:
        fields["rs"] = s.reference_source
    if s.reference_at is not None:
        fields["ra"] = s.reference_at.isoformat()
    if s.units_sold:
        fields["s"] = s.units_sold
    if s.inventory_age_days is not None:
        fields["age"] = s.inventory_age_days
    if s.recent_prices:
        fields["h"] = [(at.isoformat(), str(price)) for at, price in s.recent_prices]
    if s.peer_prices:
        fields["pp"] = [(channel, str(price)) for channel, price in s.peer_prices]
    return fields


def decode_snapshot(
    inputs: Mapping[str, Any],
    *,
    channel: str,
    sku: str,
    currency: str,
    now: datetime,
    own_seller_ids: frozenset[str],
) -> Snapshot:
    """The snapshot ``encode_inputs`` was made from (``make_snapshot``'s ``last_change_at``)."""
    history = tuple((datetime.fromisoformat(at), Decimal(p)) for at, p in inputs.get("h", ()))
    return Snapshot(
        channel,
        sku,
        currency,
        now,
        _decimal(inputs.get("p")),
        _decimal(inputs.get("c")),
        _decimal(inputs.get("f")),
        _decimal(inputs.get("lo")),
        _decimal(inputs.get("hi")),
        tuple(inputs.get("t", ())),
        inputs.get("q"),
        inputs.get("oh"),
        tuple(
            CompetitorOffer(
                seller_id=seller,
                price=Decimal(price),
                shipping=Decimal(shipping),
                fulfillment=kind,
                rating_pct=pct,
                rating_count=count,
                is_buy_box_winner=bool(flags & _BUY_BOX),
                is_own=bool(flags & _OWN),
            )
            for seller, price, shipping, kind, pct, count, flags in inputs.get("o", ())
        ),
        _decimal(inputs.get("bb")),
        inputs.get("bs"),
        _decimal(inputs.get("r")),
        own_seller_ids,
        tuple((int(days), int(units)) for days, units in inputs.get("s", ())),
        inputs.get("age"),
        history,
        history[-1][0] if history else None,
        tuple((peer, Decimal(p)) for peer, p in inputs.get("pp", ())),
        inputs.get("rs", ""),
        _when(inputs.get("ra")),
    )


def _plain(value: Any) -> Any:
    """A pydantic dump as JSON values that validate back to the same settings."""
    if isinstance(value, BaseModel):
        return _plain(value.model_dump())
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(_plain(item) for item in value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()  # a bare number of seconds is a valid duration
    return value


def config_document(pricing: PricingSettings, own_seller_ids: Collection[str]) -> dict[str, Any]:
    """What a decision ran under besides its snapshot: the rules, the guards, our sellers."""
    return {
        "pricing": _plain(pricing.model_dump()),
        "own_seller_ids": sorted(own_seller_ids),
    }


def config_digest(document: Mapping[str, Any]) -> str:
    """A short stable fingerprint of a config document (the ``decision_config`` key)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def remember_config(
    db: Database, conn: AsyncConnection, digest: str, document: Mapping[str, Any], now: datetime
) -> None:
    """Store a config document once (inside the caller's write transaction)."""
    statement = db.insert(CONFIGS).values(digest=digest, config=dict(document), created_at=now)
    await conn.execute(statement.on_conflict_do_nothing(index_elements=["digest"]))


class Rederiver:
    """Re-runs stored decisions; loads each config once."""

    def __init__(self, configs: Mapping[str, Mapping[str, Any]]) -> None:
        self._documents = configs
        self._settings: dict[str, tuple[PricingSettings, frozenset[str]]] = {}

    @classmethod
    async def load(cls, conn: AsyncConnection, digests: Iterable[str | None]) -> Rederiver:
        """The configs of ``digests`` in one query."""
        wanted = sorted({digest for digest in digests if digest is not None})
        found: dict[str, Mapping[str, Any]] = {}
        if wanted:
            query = sa.select(CONFIGS.c.digest, CONFIGS.c.config).where(
                CONFIGS.c.digest.in_(wanted)
            )
            found = {digest: config for digest, config in (await conn.execute(query)).all()}
        return cls(found)

    def outcome(self, row: Mapping[Any, Any]) -> Outcome | None:
        """The decision of an action row with stored inputs (None without inputs or config)."""
        inputs, digest = row.get("inputs"), row.get("config")
        if inputs is None or digest is None or digest not in self._documents:
            return None
        settings = self._settings.get(digest)
        if settings is None:
            document = self._documents[digest]
            settings = self._settings[digest] = (
                PricingSettings.model_validate(document["pricing"]),
                frozenset(document["own_seller_ids"]),
            )
        pricing, own = settings
        snapshot = decode_snapshot(
            inputs,
            channel=row["channel"],
            sku=row["sku"],
            currency=row["currency"],
            now=row["created_at"],
            own_seller_ids=own,
        )
        return decide(snapshot, pricing.rules, pricing.guards)


def steps_json(steps: Iterable[TraceStep]) -> list[dict[str, str]]:
    """Trace steps as the ``action.trace`` and ``guard_verdicts`` columns hold them."""
    # TraceStep.as_dict, inlined: ~13 steps per row, 100,000 rows per pass.
    return [{"step": step, "verdict": verdict, "detail": detail} for step, verdict, detail in steps]


def trace_of(outcome: Outcome) -> list[dict[str, str]]:
    """The strategy's trace as the ``action.trace`` column stored it."""
    return steps_json(outcome.decision.trace)
