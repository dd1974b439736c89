"""Build the frozen snapshots strategies read, from the database and fresh competitor data."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from daemon.bulk import gc_paused
from daemon.db.engine import Database
from daemon.db.models import Listing, OfferSnapshot, Product
from daemon.db.types import money_value
from domain.offers import CompetitorOffer, OfferObservation

LISTINGS = Listing.__table__  # type: ignore[attr-defined]
PRODUCTS = Product.__table__  # type: ignore[attr-defined]
OFFERS = OfferSnapshot.__table__  # type: ignore[attr-defined]


SkuSelection = str | frozenset[str] | None
"""Which SKUs a pass covers: a glob (``MUG-*``), an explicit set, or ``None`` for all."""


def sku_clause(column: sa.ColumnElement[str], selection: SkuSelection) -> sa.ColumnElement[bool]:
    """A WHERE clause restricting ``column`` to the selection."""
    if selection is None:
        return sa.true()
    if isinstance(selection, str):
        return column.like(glob_to_like(selection), escape=LIKE_ESCAPE)
    return column.in_(sorted(selection))


LIKE_ESCAPE = "\\"


def glob_to_like(glob: str) -> str:
    """Translate a SKU glob (``*`` any run, ``?`` one character) into a LIKE pattern.

    LIKE's own wildcards and the escape character are escaped, so ``A_1%`` matches only itself.
    """
    special = {
        LIKE_ESCAPE: LIKE_ESCAPE * 2,
        "%": LIKE_ESCAPE + "%",
        "_": LIKE_ESCAPE + "_",
        "*": "%",
        "?": "_",
    }
    return "".join(special.get(ch, ch) for ch in glob)


class ListingRow(NamedTuple):
    """One listing joined with its product, as loaded for a reprice pass."""

    sku: str
    currency: str
    price: Decimal | None
    quantity: int | None
    last_decision: str | None
    cost: Decimal | None
    fees: Decimal | None
    min_price: Decimal | None
    max_price: Decimal | None
    tags: tuple[str, ...]
    price_changed_at: datetime | None = None


async def load_listing_rows(
    db: Database, channel: str, selection: SkuSelection = None
) -> list[ListingRow]:
    """Active listings of ``channel`` joined with their product (cost, bounds, tags)."""
    raw = sa.String()  # read money and tags undecoded: converted below, in bulk
    query = (
        sa.select(
            LISTINGS.c.sku,
            LISTINGS.c.currency,
            sa.type_coerce(LISTINGS.c.price, raw),
            LISTINGS.c.quantity,
            LISTINGS.c.last_decision,
            *(sa.type_coerce(PRODUCTS.c[name], raw) for name in _MONEY_COLUMNS),
            sa.cast(PRODUCTS.c.tags, sa.Text),
            LISTINGS.c.price_changed_at,
        )
        .select_from(LISTINGS.outerjoin(PRODUCTS, PRODUCTS.c.sku == LISTINGS.c.sku))
        .where(
            LISTINGS.c.channel == channel,
            LISTINGS.c.status == "active",
            sku_clause(LISTINGS.c.sku, selection),
        )
        .order_by(LISTINGS.c.sku)
    )
    # Plain named tuples, converted here in one loop: SQLAlchemy's per-column result processing
    # and Row attribute access cost more than the query itself at 100,000 rows. The collector
    # is paused for the fetch too: it allocates 100,000 rows (see daemon.bulk).
    parse = functools.lru_cache(maxsize=4096)(_parse_tags)
    with gc_paused():
        async with db.read() as conn:
            result = (await conn.execute(query)).all()
        return [
            ListingRow(
                sku,
                currency,
                money_value(price),
                quantity,
                last,
                money_value(cost),
                money_value(fees),
                money_value(low),
                money_value(high),
                parse(tags),
                changed,
            )
            for sku, currency, price, quantity, last, cost, fees, low, high, tags, changed in result
        ]


_MONEY_COLUMNS = ("cost", "fees", "min_price", "max_price")


def _parse_tags(raw: str | None) -> tuple[str, ...]:
    return tuple(json.loads(raw)) if raw else ()


def _offer_json(offer: CompetitorOffer) -> dict[str, Any]:
    return {
        "seller_id": offer.seller_id,
        "price": str(offer.price),
        "shipping": str(offer.shipping),
        "fulfillment": offer.fulfillment,
        "rating_pct": offer.rating_pct,
        "rating_count": offer.rating_count,
        "buy_box": offer.is_buy_box_winner,
        "own": offer.is_own,
    }


async def store_observations(
    db: Database, channel: str, observations: Sequence[OfferObservation]
) -> None:
    """Append offer snapshots (one row per listing observation) with a set-based insert."""
    if observations:
        async with db.write() as conn:
            await insert_observations(conn, db, channel, observations)


async def insert_observations(
    conn: AsyncConnection, db: Database, channel: str, observations: Sequence[OfferObservation]
) -> None:
    """``store_observations`` inside the caller's write transaction (the inbox's batch)."""
    rows = [
        {
            "channel": channel,
            "sku": obs.sku,
            "source": obs.source,
            "observed_at": obs.observed_at,
            "buy_box_price": obs.buy_box_price,
            "buy_box_seller": obs.buy_box_seller,
            "reference_price": obs.reference_price,
            "offers": [_offer_json(o) for o in obs.offers],
            "fingerprint": competition_fingerprint(obs),
        }
        for obs in observations
    ]
    for start in range(0, len(rows), 5000):
        await db.insert_many(conn, OFFERS, rows[start : start + 5000])


def competition_fingerprint(obs: OfferObservation) -> str:
    """What an offer change means for repricing: the Buy Box, the reference price and the
    competitors' landed prices (our own offers excluded), as a short stable hash."""
    rivals = sorted(f"{o.seller_id}={o.landed_price}" for o in obs.offers if not o.is_own)
    text = f"{obs.buy_box_price}|{obs.buy_box_seller}|{obs.reference_price}|{'|'.join(rivals)}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


async def latest_fingerprints(
    db: Database, channel: str, skus: Sequence[str] | None = None
) -> dict[str, str | None]:
    """The competition fingerprint of every listing's (or of ``skus``') newest snapshot."""
    newest = (
        sa.select(sa.func.max(OFFERS.c.id))
        .where(
            OFFERS.c.channel == channel,
            sa.true() if skus is None else OFFERS.c.sku.in_(sorted(skus)),
        )
        .group_by(OFFERS.c.sku)
        .scalar_subquery()
    )
    query = sa.select(OFFERS.c.sku, OFFERS.c.fingerprint).where(OFFERS.c.id.in_(newest))
    async with db.read() as conn:
        return {sku: fingerprint for sku, fingerprint in (await conn.execute(query)).all()}


async def latest_observations(db: Database, channel: str) -> dict[str, OfferObservation]:
    """The newest stored offer snapshot of every listing of ``channel``."""
    newest = (
        sa.select(OFFERS.c.sku, sa.func.max(OFFERS.c.id).label("id"))
        .where(OFFERS.c.channel == channel)
        .group_by(OFFERS.c.sku)
        .subquery()
    )
    query = sa.select(OFFERS).join(newest, newest.c.id == OFFERS.c.id)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return {row.sku: observation_of(row) for row in rows}


async def recent_observations(
    db: Database, channel: str, since: datetime, skus: Collection[str] | None = None
) -> dict[str, OfferObservation]:
    """The newest stored snapshot of each listing (of ``skus``) observed at or after ``since``.

    A snapshot is stored only when the competition changed, so its ``observed_at`` is when it
    was last *seen changed*: a snapshot this young is at least as fresh as its time says.
    """
    query = sa.select(OFFERS).where(OFFERS.c.channel == channel, OFFERS.c.observed_at >= since)
    if skus is not None:
        query = query.where(OFFERS.c.sku.in_(sorted(skus)))
    async with db.read() as conn:
        rows = (await conn.execute(query.order_by(OFFERS.c.observed_at, OFFERS.c.id))).all()
    return {row.sku: observation_of(row) for row in rows}  # the newest comes last and wins


class MarketReference(NamedTuple):
    """A listing's marketplace reference price, where it came from and when it was reported."""

    price: Decimal
    source: str
    observed_at: datetime


async def marketplace_references(
    conn: AsyncConnection, channel: str, since: datetime, skus: Collection[str] | None = None
) -> dict[str, MarketReference]:
    """The newest marketplace reference of each listing (of ``skus``) reported since ``since``.

    The reference lives on the offer snapshot that carried it (Amazon's CompetitivePriceThreshold
    and PRICING_HEALTH, Walmart's OFFER_UNPUBLISHED ``referencePrice``); later snapshots without
    one (a Walmart insights poll has none) do not erase it.
    """
    query = sa.select(OFFERS.c.sku, sa.func.max(OFFERS.c.id).label("id")).where(
        OFFERS.c.channel == channel,
        OFFERS.c.reference_price.is_not(None),
        OFFERS.c.observed_at >= since,
    )
    if skus is not None:
        query = query.where(OFFERS.c.sku.in_(sorted(skus)))
    newest = query.group_by(OFFERS.c.sku).subquery()
    rows = await conn.execute(
        sa.select(
            OFFERS.c.sku, OFFERS.c.reference_price, OFFERS.c.source, OFFERS.c.observed_at
        ).join(newest, newest.c.id == OFFERS.c.id)
    )
    return {
        sku: MarketReference(price, source, at)
        for sku, price, source, at in rows.all()
        if price is not None
    }


def observation_of(row: Any) -> OfferObservation:
    offers = tuple(
        CompetitorOffer(
            seller_id=o["seller_id"],
            price=Decimal(o["price"]),
            shipping=Decimal(o["shipping"]),
            fulfillment=o["fulfillment"],
            rating_pct=o.get("rating_pct"),
            rating_count=o.get("rating_count"),
            is_buy_box_winner=bool(o.get("buy_box")),
            is_own=bool(o.get("own")),
        )
        for o in row.offers
    )
    return OfferObservation(
        sku=row.sku,
        observed_at=row.observed_at,
        offers=offers,
        source=row.source,
        buy_box_price=row.buy_box_price,
        buy_box_seller=row.buy_box_seller,
        reference_price=row.reference_price,
    )


def by_sku(observations: Sequence[OfferObservation]) -> Mapping[str, OfferObservation]:
    """Index observations by SKU (the newest wins)."""
    return {obs.sku: obs for obs in sorted(observations, key=lambda o: o.observed_at)}
