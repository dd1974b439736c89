"""``repricerd simulate``: the plan of one reprice pass, from stored data; nothing is sent.

Competitor offers come from the newest stored offer snapshot of each listing (the last poll or
webhook), so a simulation makes no marketplace call at all. No action row is written.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import orjson
from rich.console import Console
from rich.table import Table

from daemon.db.engine import Database
from daemon.intents import PlannedWrite
from daemon.pricing import PLAN_CHUNK, apply_breaker, load_inputs, plan_prices
from daemon.settings import Settings
from daemon.snapshots import latest_observations, load_listing_rows

OUTCOME = {"planned": "change", "held": "hold", "blocked": "blocked"}


@dataclass(frozen=True)
class ChannelPlan:
    """One channel's simulated pass."""

    channel: str
    rows: list[PlannedWrite]
    breaker: str | None


async def simulate(
    db: Database,
    settings: Settings,
    *,
    channels: Sequence[str],
    sku_glob: str | None,
    now: datetime,
    own_seller_ids: frozenset[str],
) -> list[ChannelPlan]:
    """Decide every listing of the selected channels as a pass would, without writing."""
    result = []
    for channel in channels:
        rows = await load_listing_rows(db, channel, sku_glob)
        inputs = await load_inputs(
            db,
            channel=channel,
            now=now,
            pricing=settings.pricing,
            observations=await latest_observations(db, channel),
            own_seller_ids=own_seller_ids,
        )
        plans = [
            plan_prices(
                rows[start : start + PLAN_CHUNK],
                channel=channel,
                pass_id="simulate",  # noqa: S106  (a label, not a secret)
                pricing=settings.pricing,
                inputs=inputs,
                every_decision=True,
            )
            for start in range(0, len(rows), PLAN_CHUNK)
        ]
        tripped = apply_breaker(plans, total=len(rows), pricing=settings.pricing)
        result.append(ChannelPlan(channel, [a for p in plans for a in p.actions], tripped))
    return result


def _row(action: PlannedWrite) -> dict[str, Any]:
    old, new = action.old_price, action.new_price
    change = None
    if old and new is not None:
        change = ((new - old) / old * 100).quantize(Decimal("0.1"))
    verdicts = [
        f"{v['step'].removeprefix('guard:')}={v['verdict']}"
        for v in action.guard_verdicts
        if v["verdict"] not in ("ok",)
    ]
    return {
        "channel": action.channel,
        "sku": action.sku,
        "outcome": OUTCOME.get(action.status, action.status.value),
        "old": None if old is None else str(old),
        "new": None if new is None else str(new),
        "change_pct": None if change is None else str(change),
        "strategy": action.strategy,
        "rule": action.rule,
        "reason": action.reason,
        "guards": " ".join(verdicts),
    }


def render_plan(
    plans: Sequence[ChannelPlan], console: Console, fmt: Literal["table", "csv", "json"] = "table"
) -> None:
    """Print the plan: one line per listing, counts per outcome, breaker verdicts."""
    rows = [_row(a) for plan in plans for a in plan.rows]
    counts = Counter(row["outcome"] for row in rows)
    if fmt == "json":
        summary = {"counts": dict(counts), "breaker": {p.channel: p.breaker for p in plans}}
        console.print_json(orjson.dumps({"plan": rows, **summary}).decode())
        return
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["sku"])
        writer.writeheader()
        writer.writerows(rows)
        console.file.write(buffer.getvalue())
        return
    table = Table(
        "channel",
        "sku",
        "outcome",
        "old → new",
        "Δ %",
        "rule / strategy",
        "reason",
        "guards",
        show_lines=False,
    )
    for row in rows:
        table.add_row(
            row["channel"],
            row["sku"],
            row["outcome"],
            f"{row['old'] or '—'} → {row['new'] or '—'}",
            row["change_pct"] or "",
            f"{row['rule']} / {row['strategy']}",
            row["reason"],
            row["guards"],
        )
    console.print(table)
    console.print(
        "  ".join(f"{name}: {counts.get(name, 0)}" for name in ("change", "hold", "blocked"))
    )
    for plan in plans:
        if plan.breaker:
            console.print(
                f"[bold red]circuit breaker would trip on {plan.channel}:[/] {plan.breaker}"
            )
    console.print("simulation only: nothing was sent and nothing was recorded")
