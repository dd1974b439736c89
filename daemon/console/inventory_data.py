"""The console's inventory loaders: the Inventory page (restock list, health table, FBA audit
cases, the pass's last run) and the SKU page's inventory section (days of cover, forecast vs
actual). Read-only: the plans are what the inventory pass stored; only one SKU's forecast is
recomputed for its charts (one row, milliseconds).

Bounded at any catalogue size: the page reads the first ``RESTOCK_ROWS`` restock rows and the
worst ``HEALTH_ROWS`` health rows (the CSV export has every restock row); a SKU's section reads
its own ``inventory_day`` rows by the primary key's leading ``product_id``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from decimal import Decimal
from typing import Any, Final

import numpy as np
import sqlalchemy as sa

from daemon.config import LoadedConfig
from daemon.console.series import DayValue, SkuInventory
from daemon.db.engine import Database
from daemon.fba_audit import LEDGER, amazon_channels, audit_stored
from daemon.inventory_pass import DAYS, HEALTH, PRODUCTS, RESTOCK, RUN, Series, build_history
from daemon.inventory_report import fetch_restock
from domain.clock import Clock
from inventory.fba_audit import AuditReport
from inventory.forecast import ForecastSettings, History, forecast

RESTOCK_ROWS: Final = 200
HEALTH_ROWS: Final = 200
# Audit cases drawn on the page (claimable first); `repricerd audit fba` lists every one.
AUDIT_CASES: Final = 50
# The FBA audit's window on the page (the CLI's --since default).
AUDIT_DAYS: Final = 90
# The SKU charts: this many days back, and the forecast's horizon forward.
CHART_DAYS: Final = 60
HORIZON_DAYS: Final = 28
# The health table's orders: the costliest or most at risk first.
HEALTH_ORDERS: Final[Mapping[str, tuple[Any, ...]]] = {
    "fee": (HEALTH.c.storage_fee_3m.desc().nulls_last(), HEALTH.c.excess_units.desc()),
    "excess": (HEALTH.c.excess_units.desc(), HEALTH.c.storage_fee_3m.desc().nulls_last()),
    "aged": (HEALTH.c.age_365_plus.desc(), HEALTH.c.age_271_365.desc()),
    "stranded": (HEALTH.c.stranded_units.desc(), HEALTH.c.on_hand.desc()),
    "sell_through": (HEALTH.c.sell_through.asc().nulls_last(), HEALTH.c.on_hand.desc()),
}


@dataclass(frozen=True, slots=True)
class InventoryPage:
    """What the Inventory page shows."""

    last_run: Mapping[str, Any] | None  # inventory_run: finished_at, skus, seconds, ...
    supplier: str | None
    suppliers: tuple[str, ...]
    restock: tuple[Mapping[str, Any], ...]
    restock_total: int
    sort: str
    health: tuple[Mapping[str, Any], ...]
    health_total: int
    audit_channels: tuple[str, ...]
    audit: AuditReport | None  # None: no Amazon channel configured


async def load_inventory_page(
    db: Database,
    clock: Clock,
    config: LoadedConfig,
    *,
    supplier: str | None = None,
    sort: str = "fee",
) -> InventoryPage:
    """The Inventory page: restock (optionally one supplier's), health in ``sort`` order, and
    the FBA audit of the stored reports over the last ``AUDIT_DAYS`` days."""
    to_order = RESTOCK.c.order_quantity > 0
    mine = to_order if supplier is None else sa.and_(to_order, RESTOCK.c.supplier == supplier)
    async with db.read() as conn:
        run = (await conn.execute(sa.select(RUN).where(RUN.c.id == 1))).mappings().first()
        total = (await conn.execute(sa.select(sa.func.count()).where(mine))).scalar_one()
        suppliers = [
            s
            for (s,) in await conn.execute(
                sa.select(RESTOCK.c.supplier)
                .where(to_order, RESTOCK.c.supplier.is_not(None))
                .distinct()
                .order_by(RESTOCK.c.supplier)
            )
        ]
        health_total = (
            await conn.execute(sa.select(sa.func.count()).select_from(HEALTH))
        ).scalar_one()
        health = [
            dict(r)
            for r in (
                await conn.execute(
                    sa.select(HEALTH)
                    .order_by(*HEALTH_ORDERS[sort], HEALTH.c.sku, HEALTH.c.pool)
                    .limit(HEALTH_ROWS)
                )
            ).mappings()
        ]
        # The configured Amazon channels, and any other configured channel with stored FBA
        # reports (the demo's in-memory stand-in for Amazon): audit what is stored.
        stored = {c for (c,) in await conn.execute(sa.select(LEDGER.c.channel).distinct())}
    restock = await fetch_restock(db, supplier, limit=RESTOCK_ROWS)
    names = amazon_channels(config.settings)
    names += sorted(c for c in stored if c in config.settings.channels and c not in names)
    report = None
    if names:
        today = clock.now().astimezone(UTC).date()
        report = await audit_stored(
            db,
            config.settings,
            names,
            since=today - timedelta(days=AUDIT_DAYS),
            today=today,
        )
    return InventoryPage(
        last_run=dict(run) if run is not None else None,
        supplier=supplier,
        suppliers=tuple(suppliers),
        restock=tuple(restock),
        restock_total=int(total),
        sort=sort,
        health=tuple(health),
        health_total=int(health_total),
        audit_channels=tuple(names),
        audit=report,
    )


async def load_sku_inventory(
    db: Database,
    clock: Clock,
    sku: str,
    *,
    history_days: int,
    thresholds: Sequence[int],
) -> SkuInventory | None:
    """One SKU's cover and demand by day (None: not in the catalogue, or no aggregate yet)."""
    today = clock.now().astimezone(UTC).date()
    async with db.read() as conn:
        product_id = (
            await conn.execute(sa.select(PRODUCTS.c.id).where(PRODUCTS.c.sku == sku))
        ).scalar()
        if product_id is None:
            return None
        rows = (
            await conn.execute(
                sa.select(DAYS.c.pool, DAYS.c.day, DAYS.c.sold, DAYS.c.received, DAYS.c.on_hand)
                .where(DAYS.c.product_id == product_id, DAYS.c.day <= today)
                .order_by(DAYS.c.pool, DAYS.c.day)
            )
        ).all()
    if not rows:
        return None
    return sku_inventory(sku, rows, today=today, history_days=history_days, thresholds=thresholds)


def sku_inventory(
    sku: str,
    rows: Sequence[Any],
    *,
    today: date,
    history_days: int,
    thresholds: Sequence[int],
    chart_days: int = CHART_DAYS,
    horizon: int = HORIZON_DAYS,
) -> SkuInventory:
    """The inventory section from one SKU's ``(pool, day, sold, received, on_hand)`` rows
    (ordered by pool and day): the pass's own history and forecast, for one row."""
    pools: dict[str, Series] = {}
    for pool, day, units_sold, received, on_hand in rows:
        pools.setdefault(pool, Series(pool)).rows.append((day, units_sold, received, on_hand))
    # As the pass: complete days up to yesterday are history; today's rows count for stock.
    start = today - timedelta(days=history_days)
    history, pools_oh = build_history([list(pools.values())], start, history_days)
    settings = ForecastSettings(fit_days=history_days, horizon_days=horizon)
    current = forecast(history, settings)
    mean = current.mean[0]
    daily = float(current.daily()[0])
    # The forecast as it stood ``horizon`` days ago, over the days since.
    cut = max(history_days - horizon, 1)
    past = forecast(
        History(start, history.sales[:, :cut], history.in_stock[:, :cut]), settings
    ).mean[0]
    origin = start + timedelta(days=cut)
    on_hand = sum(s.rows[-1][3] for s in pools.values())
    held = np.zeros(history_days)
    known = np.zeros(history_days, dtype=bool)
    for units in pools_oh[0].values():
        known |= ~np.isnan(units)
        held += np.nan_to_num(units)
    # The last ``chart_days`` days, from the first a pool knew the SKU (a new SKU's chart
    # does not open on weeks of nothing).
    seen = np.flatnonzero(known)
    first = max(history_days - chart_days, int(seen[0]) if seen.size else history_days, 0)
    cover: list[DayValue] = []
    sold: list[DayValue] = []
    censored: list[date] = []
    for i in range(first, history_days):
        day = start + timedelta(days=i)
        cover.append(DayValue(day, _ratio(held[i], daily)))
        sold.append(DayValue(day, Decimal(int(history.sales[0, i]))))
        if not history.in_stock[0, i]:
            censored.append(day)
    projected: list[DayValue] = []
    left = float(on_hand)
    for t in range(horizon):
        projected.append(DayValue(today + timedelta(days=t), _ratio(left, daily)))
        if left <= 0:
            break
        left = max(left - float(mean[t]), 0.0)
    return SkuInventory(
        sku=sku,
        start=min(start + timedelta(days=first), origin, today),
        today=today,
        end=today + timedelta(days=horizon),
        on_hand=on_hand,
        daily_demand=_units(daily),
        days_of_supply=_ratio(float(on_hand), daily),
        thresholds=tuple(sorted(thresholds, reverse=True)),
        cover=tuple(cover),
        projected_cover=tuple(projected),
        sold=tuple(sold),
        censored=tuple(censored),
        past_origin=origin,
        forecast_past=tuple(
            DayValue(origin + timedelta(days=t), _units(float(v))) for t, v in enumerate(past)
        ),
        forecast=tuple(
            DayValue(today + timedelta(days=t), _units(float(v))) for t, v in enumerate(mean)
        ),
    )


def _ratio(units: float, daily: float) -> Decimal | None:
    """Days of cover to a tenth (None without demand: cover is unbounded)."""
    if daily <= 0:
        return None
    return Decimal(repr(float(units) / daily)).quantize(Decimal("0.1"))


def _units(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal("0.01"))
