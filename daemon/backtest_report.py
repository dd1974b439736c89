"""The backtest's outputs: a summary (table, CSV, JSON) and a self-contained HTML report.

The HTML has inline CSS and inline SVG charts (``daemon.console.charts``), no script and no
external resource, so it can be mailed or archived and opened offline.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any, Literal

import orjson
from rich.console import Console
from rich.table import Table

from daemon.backtest import ChannelResult, SkuStats, most_changed
from daemon.console.charts import line_chart
from daemon.console.series import Point

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
# (key, label, how it is compared)
METRICS: tuple[tuple[str, str], ...] = (
    ("buy_box_share_pct", "Buy Box share %"),
    ("units", "units (est.)"),
    ("revenue", "revenue (est.)"),
    ("margin", "margin (est.)"),
    ("average_price", "average price"),
    ("price_changes", "price changes"),
    ("guard_blocks", "guard blocks"),
    ("breaker_blocks", "breaker-blocked changes"),
    ("below_competition_pct", "time below competition %"),
    ("above_competition_pct", "time above competition %"),
)
COLOURS = {
    "baseline": "var(--chart-our, #3b82f6)",
    "candidate": "var(--chart-buy-box, #f59e0b)",
    "competition": "var(--chart-rival, #a855f7)",
}


def _pct(part: float, whole: float) -> Decimal | None:
    if whole <= 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(TENTH)


def _add(total: SkuStats, stats: SkuStats) -> None:
    for name, value in vars(stats).items():
        setattr(total, name, getattr(total, name) + value)


def metrics(stats: SkuStats) -> dict[str, Decimal | int | None]:
    """The reported figures of one SKU (or of a sum of SKUs) under one config."""
    average = None
    if stats.priced_seconds > 0:
        average = (stats.price_seconds / Decimal(stats.priced_seconds)).quantize(CENT)
    return {
        "buy_box_share_pct": _pct(stats.buy_box_seconds, stats.judged_seconds),
        "units": stats.units.quantize(TENTH),
        "revenue": stats.revenue.quantize(CENT),
        "margin": stats.margin.quantize(CENT),
        "average_price": average,
        "price_changes": stats.changes,
        "guard_blocks": stats.guard_blocks,
        "breaker_blocks": stats.breaker_blocks,
        "below_competition_pct": _pct(stats.below_seconds, stats.compared_seconds),
        "above_competition_pct": _pct(stats.above_seconds, stats.compared_seconds),
    }


def _compare(base: SkuStats, cand: SkuStats) -> dict[str, dict[str, Any]]:
    b, c = metrics(base), metrics(cand)
    out = {}
    for key, _ in METRICS:
        x, y = b[key], c[key]
        diff = None if x is None or y is None else y - x
        out[key] = {"baseline": x, "candidate": y, "difference": diff}
    return out


def summarise(results: Sequence[ChannelResult]) -> dict[str, Any]:
    """Per SKU and in total: each metric for both configs and the difference; breaker trips."""
    totals = (SkuStats(), SkuStats())
    skus = []
    trips: dict[str, list[dict[str, str]]] = {"baseline": [], "candidate": []}
    for result in results:
        base, cand = result.runs
        for sku in base.stats:
            _add(totals[0], base.stats[sku])
            _add(totals[1], cand.stats[sku])
            skus.append(
                {
                    "channel": result.channel,
                    "sku": sku,
                    **_compare(base.stats[sku], cand.stats[sku]),
                }
            )
        for name, run in zip(("baseline", "candidate"), result.runs, strict=True):
            trips[name] += [
                {"channel": result.channel, "at": at.isoformat(), "reason": reason}
                for at, reason in run.trips
            ]
    total = _compare(*totals)
    total["breaker_trips"] = {
        "baseline": len(trips["baseline"]),
        "candidate": len(trips["candidate"]),
        "difference": len(trips["candidate"]) - len(trips["baseline"]),
    }
    return {
        "window": {
            "start": min((r.start for r in results), default=None),
            "end": max((r.end for r in results), default=None),
            "passes": sum(r.ticks for r in results),
            "channels": [r.channel for r in results],
        },
        "total": total,
        "skus": skus,
        "breaker_trips": trips,
    }


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


def _signed(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal | int) and value > 0:
        return f"+{_text(value)}"
    return _text(value)


def _csv_rows(summary: dict[str, Any]) -> Iterable[dict[str, Any]]:
    rows = [{"channel": "*", "sku": "TOTAL", **summary["total"]}, *summary["skus"]]
    # Breaker trips are a channel's, not a SKU's: on the TOTAL row only, as in the table.
    keys = [key for key, _ in METRICS] + ["breaker_trips"]
    for row in rows:
        flat = {"channel": row["channel"], "sku": row["sku"]}
        for key in keys:
            for side in ("baseline", "candidate", "difference"):
                value = row.get(key, {}).get(side)
                flat[f"{key}_{side}"] = "" if value is None else _text(value)
        yield flat


def render_summary(
    summary: dict[str, Any], console: Console, fmt: Literal["table", "csv", "json"] = "table"
) -> None:
    """Print the comparison: a table, CSV (one row per SKU, TOTAL first) or JSON."""
    if fmt == "json":
        console.file.write(orjson.dumps(summary, default=str).decode() + "\n")
        return
    if fmt == "csv":
        buffer = io.StringIO()
        rows = list(_csv_rows(summary))
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        console.file.write(buffer.getvalue())
        return
    window = summary["window"]
    console.print(
        f"backtest {', '.join(window['channels']) or '(no channel)'}: "
        f"{_when(window['start'])} → {_when(window['end'])}, {window['passes']} passes"
    )
    table = Table("metric", "baseline", "candidate", "difference")
    for key, label in (*METRICS, ("breaker_trips", "breaker trips")):
        row = summary["total"][key]
        table.add_row(
            label, _text(row["baseline"]), _text(row["candidate"]), _signed(row["difference"])
        )
    console.print(table)
    console.print("units, revenue and margin are estimates (see README, Backtest: market model)")


# -- HTML -------------------------------------------------------------------------------------


def _cumulative(results: Sequence[ChannelResult], index: int) -> list[Point]:
    steps = sorted((p.at, p.margin) for r in results for p in r.runs[index].series)
    total, points = Decimal(0), []
    for at, margin in steps:
        total += margin
        points.append(Point(at, total.quantize(CENT)))
    return points


def _share(results: Sequence[ChannelResult], index: int) -> list[Point]:
    by_time: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    for result in results:
        for point in result.runs[index].series:
            by_time[point.at][0] += point.buy_box
            by_time[point.at][1] += point.judged
    return [
        Point(at, (Decimal(bb * 100) / judged).quantize(TENTH) if judged else None)
        for at, (bb, judged) in sorted(by_time.items())
    ]


def _path(result: ChannelResult, index: int, sku: str) -> list[Point]:
    run = result.runs[index]
    points = [Point(result.start, run.start_prices[sku])]
    points += [Point(at, price) for at, price in run.sent(sku)]
    return points


def render_html(results: Sequence[ChannelResult], summary: dict[str, Any], *, title: str) -> str:
    """The whole report as one HTML document (inline CSS and SVG, nothing fetched)."""
    window = summary["window"]
    start, end = window["start"], window["end"]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='window'>{escape(', '.join(window['channels']))}: "
        f"{escape(_when(start))} → {escape(_when(end))} · {window['passes']} passes · "
        "units, revenue and margin are model estimates (recorded sales scaled by price "
        "elasticity and Buy Box)</p>",
        "<h2>Summary</h2><table class='summary'><thead><tr><th>metric</th><th>baseline</th>"
        "<th>candidate</th><th>difference</th></tr></thead><tbody>",
    ]
    for key, label in (*METRICS, ("breaker_trips", "breaker trips")):
        row = summary["total"][key]
        parts.append(
            f"<tr><td>{escape(label)}</td><td>{_text(row['baseline'])}</td>"
            f"<td>{_text(row['candidate'])}</td><td>{_signed(row['difference'])}</td></tr>"
        )
    parts.append("</tbody></table>")
    if start is not None and end is not None:
        lines = [
            (name, name, COLOURS[name], pts)
            for name, pts in (
                ("baseline", _cumulative(results, 0)),
                ("candidate", _cumulative(results, 1)),
            )
        ]
        parts.append("<h2>Cumulative margin</h2>")
        parts.append(
            line_chart("margin-chart", "cumulative margin", "margin", lines, start=start, end=end)
        )
        shares = [
            (name, name, COLOURS[name], pts)
            for name, pts in (("baseline", _share(results, 0)), ("candidate", _share(results, 1)))
        ]
        parts.append("<h2>Buy Box share</h2>")
        parts.append(
            line_chart(
                "buy-box-chart", "Buy Box share", "%", shares, start=start, end=end, floor_zero=True
            )
        )
        parts.append("<h2>Most-changed SKUs: both price paths against the competition</h2>")
        for result in results:
            for sku in most_changed(result):
                series = [
                    ("baseline", "baseline", COLOURS["baseline"], _path(result, 0, sku)),
                    ("candidate", "candidate", COLOURS["candidate"], _path(result, 1, sku)),
                    (
                        "competition",
                        "lowest competitor (landed)",
                        COLOURS["competition"],
                        [Point(at, v) for at, v in result.competition.get(sku, [])],
                    ),
                ]
                parts.append(f"<h3>{escape(result.channel)} · {escape(sku)}</h3>")
                parts.append(
                    line_chart(
                        "price-path-chart",
                        f"{result.channel} {sku}: price paths",
                        result.currency,
                        series,
                        start=result.start,
                        end=result.end,
                    )
                )
    parts.append(_sku_table(summary))
    parts.append("</body></html>")
    return "".join(parts)


def _when(at: datetime | None) -> str:
    return "—" if at is None else at.strftime("%Y-%m-%d %H:%M UTC")


def _sku_table(summary: dict[str, Any]) -> str:
    keys = ("buy_box_share_pct", "margin", "average_price", "price_changes", "guard_blocks")
    head = "".join(f"<th colspan='2'>{escape(dict(METRICS)[k])}</th>" for k in keys)
    rows = []
    for row in summary["skus"]:
        cells = "".join(
            f"<td>{_text(row[k]['baseline'])}</td><td>{_text(row[k]['candidate'])}</td>"
            for k in keys
        )
        rows.append(
            f"<tr><td>{escape(row['channel'])}</td><td>{escape(row['sku'])}</td>{cells}</tr>"
        )
    sub = "<th>base</th><th>cand</th>" * len(keys)
    return (
        "<h2>Per SKU</h2><table class='skus'><thead>"
        f"<tr><th rowspan='2'>channel</th><th rowspan='2'>SKU</th>{head}</tr><tr>{sub}</tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:980px;padding:0 16px;
color:#1f2937;background:#fff}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}h3{font-size:14px;margin:18px 0 4px}
.window{color:#4b5563}
table{border-collapse:collapse;margin:8px 0}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 10px;text-align:right}
th:first-child,td:first-child,.skus td:nth-child(2){text-align:left}
.summary td:last-child{font-weight:600}
svg.chart{max-width:100%;height:auto;display:block}
"""
