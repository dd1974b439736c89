"""Server-rendered SVG charts for the console: pure functions from series to an inline ``<svg>``.

No script and no library: the page stays readable with JavaScript off and nothing is fetched
from a CDN. Colours are CSS variables with mid-tone fallbacks (readable on dark and light
themes); axes and text use ``currentColor``. Every drawn point carries ``class="point"`` and a
``data-series`` name, markers ``class="marker"`` and events ``class="event"``, so a browser test
can count them. Every text is escaped: SKUs, reasons and notes are user or marketplace data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Final

from daemon.console.series import Count, Marker, Point, PriceSeries, StockMark, StockSeries

WIDTH: Final = 720
HEIGHT: Final = 260
LEFT: Final = 64
RIGHT: Final = 16
TOP: Final = 34
LEGEND_ROW: Final = 16
BOTTOM: Final = 40
TICKS: Final = 5
COLOURS: Final = {
    "our-price": "var(--chart-our, #3b82f6)",
    "buy-box": "var(--chart-buy-box, #f59e0b)",
    "lowest-competitor": "var(--chart-rival, #a855f7)",
    "band": "var(--chart-band, #22c55e)",
    "blocked": "var(--chart-blocked, #ef4444)",
    "held": "var(--chart-held, #94a3b8)",
    "on-hand": "var(--chart-on-hand, #14b8a6)",
}
# Published quantities, one colour per channel in turn.
CHANNEL_COLOURS: Final = (
    "var(--chart-c1, #3b82f6)",
    "var(--chart-c2, #f59e0b)",
    "var(--chart-c3, #a855f7)",
    "var(--chart-c4, #ec4899)",
    "var(--chart-c5, #84cc16)",
)
EVENT_COLOURS: Final = {
    "order": "var(--chart-order, #ef4444)",
    "cancel": "var(--chart-cancel, #f59e0b)",
    "count": "var(--chart-count, #3b82f6)",
}
OTHER_EVENT_COLOUR: Final = "var(--chart-event, #94a3b8)"


def decision_link(action_id: int) -> str:
    """Where a marker links to: the decision in the console's actions log."""
    return f"/console/actions?id={action_id}"


def price_chart(
    series: PriceSeries,
    *,
    start: datetime,
    end: datetime,
    link: Callable[[int], str] = decision_link,
) -> str:
    """One channel's price chart: our price (steps), Buy Box, lowest qualifying competitor,
    the floor–ceiling band and markers for blocked and held decisions."""
    lines = (
        ("our-price", "our price", series.our_price),
        ("buy-box", "Buy Box", series.buy_box),
        ("lowest-competitor", "lowest competitor", series.lowest_competitor),
    )
    values = [
        p.value
        for group in (*(pts for _, _, pts in lines), series.floor, series.ceiling)
        for p in group
        if p.value is not None
    ] + [m.price for m in series.markers if m.price is not None]
    legend = [(COLOURS[name], label, "line") for name, label, _ in lines]
    legend += [
        (COLOURS["band"], "floor–ceiling", "band"),
        (COLOURS["blocked"], "blocked", "cross"),
        (COLOURS["held"], "held", "ring"),
    ]
    key, top = _legend(legend)
    frame = _Frame(start, end, [float(v) for v in values], top=top)
    unit = series.currency
    parts = [
        _open("price-chart", f"{series.channel}: price ({unit})", series.channel),
        frame.axes(unit, _money_label),
        _band(frame, series.floor, series.ceiling),
    ]
    for name, _, points in lines:
        parts.append(_step_series(frame, name, COLOURS[name], points, unit))
    parts += [_markers(frame, series.markers, link, unit), key, "</svg>"]
    return "".join(parts)


def stock_chart(series: StockSeries, *, start: datetime, end: datetime) -> str:
    """A SKU's stock chart: on-hand from the ledger, each channel's published quantity (steps)
    and the ledger's orders, cancels and counts as events along the bottom."""
    values = [c.value for c in series.on_hand] + [
        c.value for _, steps in series.published for c in steps
    ]
    colours = [CHANNEL_COLOURS[i % len(CHANNEL_COLOURS)] for i in range(len(series.published))]
    legend = [(COLOURS["on-hand"], "on hand", "line")]
    legend += [
        (colour, f"{channel} published", "dash")
        for colour, (channel, _) in zip(colours, series.published, strict=True)
    ]
    legend += [(EVENT_COLOURS[k], k, "tick") for k in ("order", "cancel", "count")]
    key, top = _legend(legend)
    frame = _Frame(start, end, [float(v) for v in values], top=top, floor_zero=True)
    parts = [
        _open("stock-chart", "stock (units)", None),
        frame.axes("units", _count_label),
        _step_series(frame, "on-hand", COLOURS["on-hand"], _points(series.on_hand), "units"),
    ]
    for colour, (channel, steps) in zip(colours, series.published, strict=True):
        parts.append(
            _step_series(
                frame, "published", colour, _points(steps), "units", channel=channel, dashed=True
            )
        )
    parts += [_events(frame, series.events), key, "</svg>"]
    return "".join(parts)


def sparkline(
    points: Sequence[tuple[datetime, Decimal | None]],
    *,
    label: str,
    unit: str = "%",
    width: int = 120,
    height: int = 28,
) -> str:
    """A small line of a few values (a Buy Box share per day): no axes, a tooltip per point and
    the whole series in the ``<title>``; gaps where a value is None."""
    known = [(at, v) for at, v in points if v is not None]
    title = f"{label}: " + (
        ", ".join(f"{_day(at)} {'—' if v is None else _plain(v)}{unit}" for at, v in points)
        if points
        else "no data"
    )
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="sparkline" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )
    if not known:
        return head + (
            f'<text class="empty" x="{width / 2:.1f}" y="{height / 2 + 4:.1f}" '
            f'text-anchor="middle" font-size="10" fill="currentColor" opacity="0.6">'
            "no data</text></svg>"
        )
    low = min(float(v) for _, v in known)
    high = max(float(v) for _, v in known)
    if high == low:
        low, high = low - 1, high + 1
    pad = 3
    count = len(points)

    def xy(index: int, value: Decimal) -> tuple[float, float]:
        x = pad + (width - 2 * pad) * (index / (count - 1) if count > 1 else 0.5)
        y = pad + (height - 2 * pad) * (1 - (float(value) - low) / (high - low))
        return x, y

    path: list[str] = []
    dots: list[str] = []
    pen_down = False
    for index, (at, value) in enumerate(points):
        if value is None:
            pen_down = False
            continue
        x, y = xy(index, value)
        path.append(f"{'L' if pen_down else 'M'}{x:.1f} {y:.1f}")
        pen_down = True
        dots.append(
            f'<circle class="point" data-series="sparkline" cx="{x:.1f}" cy="{y:.1f}" r="1.8" '
            f'fill="currentColor"><title>{escape(f"{_day(at)}: {_plain(value)}{unit}")}'
            "</title></circle>"
        )
    line = (
        f'<path class="line" d="{" ".join(path)}" fill="none" stroke="currentColor" '
        'stroke-width="1.5"/>'
    )
    return head + line + "".join(dots) + "</svg>"


# -- frame: scales and axes -------------------------------------------------------------------


class _Frame:
    """The plot area's scales: time to x, value to y, with 'nice' value ticks."""

    def __init__(
        self,
        start: datetime,
        end: datetime,
        values: list[float],
        *,
        top: float = TOP,
        floor_zero: bool = False,
    ) -> None:
        self.top = top
        if end <= start:
            end = start + timedelta(hours=1)
        self.start, self.end = start, end
        low = min(values, default=0.0)
        high = max(values, default=1.0)
        if floor_zero:
            low = min(low, 0.0)
        if high == low:
            # One value (or one point): a band around it, so it sits mid-chart.
            spread = abs(high) * 0.05 or 1.0
            low, high = (low if floor_zero and low == 0 else low - spread), high + spread
        self.ticks = _nice_ticks(low, high)
        self.low, self.high = self.ticks[0], self.ticks[-1]

    def x(self, at: datetime) -> float:
        """Horizontal position of a time (clamped to the window)."""
        span = (self.end - self.start).total_seconds()
        offset = (min(max(at, self.start), self.end) - self.start).total_seconds()
        return LEFT + (WIDTH - LEFT - RIGHT) * offset / span

    def y(self, value: float) -> float:
        """Vertical position of a value."""
        share = 1 - (value - self.low) / (self.high - self.low)
        return self.top + (HEIGHT - self.top - BOTTOM) * share

    def axes(self, unit: str, label: Callable[[float, float], str]) -> str:
        """Grid, value ticks with their unit, and UTC date ticks."""
        step = self.ticks[1] - self.ticks[0] if len(self.ticks) > 1 else 1.0
        out = ['<g class="axes" fill="currentColor" font-size="11">']
        for value in self.ticks:
            y = self.y(value)
            out.append(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                'stroke="currentColor" stroke-opacity="0.15"/>'
                f'<text class="y-tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{escape(label(value, step))}</text>"
            )
        out.append(f'<text class="y-unit" x="{LEFT - 6}" y="{self.top - 8}" text-anchor="end">')
        out.append(f"{escape(unit)}</text>")
        base = HEIGHT - BOTTOM
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" '
            'stroke="currentColor" stroke-opacity="0.5"/>'
        )
        for at, text in _time_ticks(self.start, self.end):
            x = self.x(at)
            out.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{base}" y2="{base + 4}" '
                'stroke="currentColor" stroke-opacity="0.5"/>'
                f'<text class="x-tick" x="{x:.1f}" y="{base + 16}" text-anchor="middle">'
                f"{escape(text)}</text>"
            )
        out.append(
            f'<text class="x-unit" x="{WIDTH - RIGHT}" y="{base + 32}" text-anchor="end">'
            "UTC</text></g>"
        )
        return "".join(out)


def _nice_ticks(low: float, high: float) -> list[float]:
    """About ``TICKS`` round values covering [low, high] (steps of 1, 2 or 5 × 10ⁿ)."""
    raw = (high - low) / (TICKS - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [first]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(first + step * len(ticks))
    return [round(t, 10) for t in ticks]


def _time_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Day ticks at UTC midnights (every n days, at most 8), or hour ticks within two days."""
    span = end - start
    if span <= timedelta(days=2):
        hours = max(1, math.ceil(span.total_seconds() / 3600 / 8))
        at = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        ticks = []
        while at <= end:
            if at >= start and at.hour % hours == 0:
                ticks.append((at, at.strftime("%H:%M")))
            at += timedelta(hours=1)
        return ticks
    days = max(1, math.ceil(span.days / 7))
    at = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if at < start:
        at += timedelta(days=1)
    ticks = []
    while at <= end:
        ticks.append((at, at.strftime("%b %d")))
        at += timedelta(days=days)
    return ticks


def _money_label(value: float, step: float) -> str:
    places = 0 if step >= 1 else 2
    return f"{value:,.{places}f}"


def _count_label(value: float, step: float) -> str:
    return f"{value:,.0f}" if step >= 1 else f"{value:,.1f}"


# -- drawing ----------------------------------------------------------------------------------


def _open(kind: str, label: str, channel: str | None) -> str:
    data = "" if channel is None else f' data-channel="{escape(channel)}"'
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" role="img"{data} '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>'
    )


def _points(counts: Sequence[Count]) -> tuple[Point, ...]:
    return tuple(Point(c.at, Decimal(c.value)) for c in counts)


def _step_series(
    frame: _Frame,
    name: str,
    colour: str,
    points: Sequence[Point],
    unit: str,
    *,
    channel: str | None = None,
    dashed: bool = False,
) -> str:
    """A step line (each value holds until the next point, the last until the end) with a dot
    and a tooltip at every point; a None value breaks the line."""
    data = f' data-series="{name}"' + (
        "" if channel is None else f' data-channel="{escape(channel)}"'
    )
    path: list[str] = []
    dots: list[str] = []
    for index, point in enumerate(points):
        if point.value is None or point.at > frame.end:
            continue
        x = frame.x(point.at)
        y = frame.y(float(point.value))
        following = points[index + 1].at if index + 1 < len(points) else frame.end
        connected = index > 0 and points[index - 1].value is not None
        path.append(f"{'V' if connected else f'M{x:.1f}'} {y:.1f} H{frame.x(following):.1f}")
        who = f"{channel} " if channel else ""
        tip = f"{_stamp(point.at)} — {who}{name.replace('-', ' ')}: {_plain(point.value)} {unit}"
        dots.append(
            f'<circle class="point"{data} cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
            f"<title>{escape(tip)}</title></circle>"
        )
    dash = ' stroke-dasharray="5 3"' if dashed else ""
    return (
        f'<g class="series"{data} style="color:{colour}" fill="currentColor">'
        f'<path class="line" d="{" ".join(path)}" fill="none" stroke="currentColor" '
        f'stroke-width="2"{dash}/>' + "".join(dots) + "</g>"
    )


def _band(frame: _Frame, floors: Sequence[Point], ceilings: Sequence[Point]) -> str:
    """The floor–ceiling band: one shaded rectangle per interval where both are known."""
    times = sorted({p.at for p in (*floors, *ceilings)})
    rects = []
    for index, at in enumerate(times):
        low, high = _value_at(floors, at), _value_at(ceilings, at)
        if low is None or high is None:
            continue
        until = times[index + 1] if index + 1 < len(times) else frame.end
        x0, x1 = frame.x(at), frame.x(until)
        y0, y1 = frame.y(float(high)), frame.y(float(low))
        tip = f"from {_stamp(at)}: floor {_plain(low)}, ceiling {_plain(high)}"
        rects.append(
            f'<rect class="band" data-series="band" x="{x0:.1f}" y="{min(y0, y1):.1f}" '
            f'width="{max(x1 - x0, 0.5):.1f}" height="{max(abs(y1 - y0), 0.5):.1f}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    return (
        f'<g class="band-series" data-series="band" style="color:{COLOURS["band"]}" '
        f'fill="currentColor" fill-opacity="0.15">' + "".join(rects) + "</g>"
    )


def _value_at(points: Sequence[Point], at: datetime) -> Decimal | None:
    """The step value in effect at ``at`` (None before the first point)."""
    value = None
    for point in points:
        if point.at > at:
            break
        value = point.value
    return value


def _markers(
    frame: _Frame, markers: Sequence[Marker], link: Callable[[int], str], unit: str
) -> str:
    """Blocked decisions as crosses, held ones as rings, each a link to the decision with its
    reason and guard verdicts as the tooltip (at the top edge when it had no price)."""
    out = ['<g class="markers">']
    for marker in markers:
        if marker.at > frame.end:
            continue
        x = frame.x(marker.at)
        y = frame.top + 4 if marker.price is None else frame.y(float(marker.price))
        blocked = marker.status == "blocked"
        name = "blocked" if blocked else "held"
        price = "" if marker.price is None else f" at {_plain(marker.price)} {unit}"
        tip = "\n".join(
            [f"{_stamp(marker.at)} — {marker.status}{price}: {marker.reason}", *marker.verdicts]
        )
        shape = (
            f'd="M{x - 4:.1f} {y - 4:.1f} L{x + 4:.1f} {y + 4:.1f} '
            f'M{x - 4:.1f} {y + 4:.1f} L{x + 4:.1f} {y - 4:.1f}" stroke-width="2.5"'
            if blocked
            else f'd="M{x - 4:.1f} {y:.1f} a4 4 0 1 0 8 0 a4 4 0 1 0 -8 0" stroke-width="2"'
        )
        out.append(
            f'<a href="{escape(link(marker.action_id))}">'
            f'<path class="marker marker-{name}" data-series="{name}" '
            f'data-action-id="{marker.action_id}" {shape} fill="none" '
            f'style="stroke:{COLOURS[name]}"><title>{escape(tip)}</title></path></a>'
        )
    out.append("</g>")
    return "".join(out)


def _events(frame: _Frame, events: Sequence[StockMark]) -> str:
    """Ledger events as ticks along the bottom of the plot, one colour per kind."""
    base = HEIGHT - BOTTOM
    out = ['<g class="events">']
    for event in events:
        if event.at > frame.end:
            continue
        x = frame.x(event.at)
        colour = EVENT_COLOURS.get(event.kind, OTHER_EVENT_COLOUR)
        where = f" on {event.channel}" if event.channel else ""
        note = f": {event.note}" if event.note else ""
        tip = f"{_stamp(event.at)} — {event.kind} {event.delta:+d}{where}{note}"
        out.append(
            f'<path class="event event-{escape(event.kind)}" data-series="{escape(event.kind)}" '
            f'data-event-id="{event.event_id}" d="M{x:.1f} {base - 10} V{base - 2}" '
            f'stroke-width="3" style="stroke:{colour}"><title>{escape(tip)}</title></path>'
        )
    out.append("</g>")
    return "".join(out)


def _legend(items: Sequence[tuple[str, str, str]]) -> tuple[str, float]:
    """The legend across the top, wrapped onto more rows when it does not fit (a swatch in each
    series' style, then its name); returns it and where the plot may begin below it."""
    out = ['<g class="legend" font-size="11" fill="currentColor">']
    x, row = float(LEFT), 0
    for colour, label, kind in items:
        # Width of the label at ~6.2 px a character in the 11 px font, plus the swatch.
        width = 18 + 6.2 * len(label)
        if x > LEFT and x + width > WIDTH - RIGHT:
            x, row = float(LEFT), row + 1
        y = 14 + LEGEND_ROW * row
        swatch = {
            "line": f'<path d="M{x:.1f} {y} h14" stroke-width="2"/>',
            "dash": f'<path d="M{x:.1f} {y} h14" stroke-width="2" stroke-dasharray="4 2"/>',
            "band": f'<rect x="{x:.1f}" y="{y - 5}" width="14" height="10" fill-opacity="0.3" '
            'fill="currentColor" stroke="none"/>',
            "cross": f'<path d="M{x + 3:.1f} {y - 4} l8 8 m-8 0 l8 -8" stroke-width="2"/>',
            "ring": f'<circle cx="{x + 7:.1f}" cy="{y}" r="4" fill="none" stroke-width="2"/>',
            "tick": f'<path d="M{x + 7:.1f} {y - 5} v10" stroke-width="3"/>',
        }[kind]
        out.append(
            f'<g class="legend-item" style="color:{colour}" stroke="currentColor">{swatch}</g>'
            f'<text x="{x + 18:.1f}" y="{y + 4}">{escape(label)}</text>'
        )
        x += width + 12
    out.append("</g>")
    return "".join(out), TOP + LEGEND_ROW * row


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%b %d")


def _plain(value: Decimal | float | int) -> str:
    """A value as text without float noise (Decimals as they are)."""
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)
