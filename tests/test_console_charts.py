"""The console's SVG charts: well-formed XML, one point per value, escaped text, edge cases."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from daemon.console.charts import price_chart, sparkline, stock_chart
from daemon.console.series import Count, Marker, Point, PriceSeries, StockMark, StockSeries

NS = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 8, tzinfo=UTC)
END = START + timedelta(days=30)


def at(days: float) -> datetime:
    return START + timedelta(days=days)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output, not untrusted input)


def points(root: ET.Element, series: str, cls: str = "point") -> list[ET.Element]:
    return [
        e
        for e in root.iter()
        if cls in (e.get("class") or "").split() and e.get("data-series") == series
    ]


def prices(**changes: object) -> PriceSeries:
    base: dict[str, object] = {
        "channel": "amazon-us",
        "currency": "USD",
        "our_price": (Point(at(0), Decimal("20.00")), Point(at(10), Decimal("19.50"))),
        "buy_box": (
            Point(at(0), Decimal("19.99")),
            Point(at(5), None),
            Point(at(6), Decimal("19.40")),
        ),
        "lowest_competitor": (Point(at(1), Decimal("19.45")),),
        "floor": (Point(at(0), Decimal("15.00")),),
        "ceiling": (Point(at(0), Decimal("30.00")), Point(at(20), Decimal("28.00"))),
        "markers": (
            Marker(
                at(12),
                41,
                "blocked",
                "no ceiling",
                ("guard:ceiling: blocked — no max_price",),
                None,
            ),
            Marker(at(13), 42, "held", "at target", (), Decimal("19.50")),
        ),
    }
    base.update(changes)
    return PriceSeries(**base)  # type: ignore[arg-type]


def test_price_chart_draws_every_series_point_marker_and_band() -> None:
    root = parse(price_chart(prices(), start=START, end=END))
    assert root.tag == f"{NS}svg"
    assert len(points(root, "our-price")) == 2
    assert len(points(root, "buy-box")) == 2  # the gap (None) draws no point
    assert len(points(root, "lowest-competitor")) == 1
    assert len(points(root, "blocked", "marker")) == 1
    assert len(points(root, "held", "marker")) == 1
    assert len(points(root, "band", "band")) == 2  # ceiling changed once
    links = [a.get("href") for a in root.iter(f"{NS}a")]
    assert links == ["/console/actions?id=41", "/console/actions?id=42"]
    blocked = points(root, "blocked", "marker")[0]
    title = blocked.find(f"{NS}title")
    assert title is not None
    assert "no ceiling" in (title.text or "")
    assert "guard:ceiling: blocked" in (title.text or "")
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "USD" in texts
    assert "UTC" in texts
    assert "Nov 08" in texts  # a UTC day tick
    assert {"our price", "Buy Box", "lowest competitor", "floor–ceiling", "blocked", "held"} <= set(
        texts
    )
    # A step line: horizontal then vertical moves, broken by the gap.
    buy_box = next(g for g in root.iter(f"{NS}g") if g.get("data-series") == "buy-box")
    path = buy_box.find(f"{NS}path")
    assert path is not None
    assert (path.get("d") or "").count("M") == 2


def test_text_is_escaped() -> None:
    nasty = "<script>alert(\"x\")</script> & 'q'"
    svg = price_chart(
        prices(
            channel=nasty,
            markers=(Marker(at(2), 7, "blocked", nasty, (nasty,), Decimal("20")),),
        ),
        start=START,
        end=END,
        link=lambda i: f"/console/actions?id={i}&sku=<x>",
    )
    root = parse(svg)  # would raise on an unescaped < or &
    assert "<script>" not in svg
    assert root.get("data-channel") == nasty
    marker = points(root, "blocked", "marker")[0]
    title = marker.find(f"{NS}title")
    assert title is not None
    assert nasty in (title.text or "")
    anchor = next(iter(root.iter(f"{NS}a")))
    assert anchor.get("href") == "/console/actions?id=7&sku=<x>"
    events = StockSeries((), (), (StockMark(at(1), 3, "order", -1, nasty, nasty),))
    stock = parse(stock_chart(events, start=START, end=END))
    event = points(stock, "order", "event")[0]
    title = event.find(f"{NS}title")
    assert title is not None
    assert nasty in (title.text or "")


def test_empty_series_still_draw_axes_and_legend() -> None:
    empty = prices(our_price=(), buy_box=(), lowest_competitor=(), floor=(), ceiling=(), markers=())
    root = parse(price_chart(empty, start=START, end=END))
    assert not [e for e in root.iter() if e.get("class") == "point"]
    assert [t for t in root.iter(f"{NS}text") if t.get("class") == "y-tick"]
    stock = parse(stock_chart(StockSeries((), (), ()), start=START, end=END))
    assert not [e for e in stock.iter() if e.get("class") == "point"]
    assert "no data" in sparkline([], label="Buy Box")


def test_a_single_point_and_equal_min_max_sit_inside_the_plot() -> None:
    flat = prices(
        our_price=(Point(at(3), Decimal("20")),),
        buy_box=(Point(at(4), Decimal("20")),),
        lowest_competitor=(),
        floor=(),
        ceiling=(),
        markers=(),
    )
    root = parse(price_chart(flat, start=START, end=END))
    (dot,) = points(root, "our-price")
    y = float(dot.get("cy") or "nan")
    assert 34 < y < 260 - 40  # strictly inside: the scale was widened around the one value
    ticks = [t.text for t in root.iter(f"{NS}text") if t.get("class") == "y-tick"]
    assert len(set(ticks)) == len(ticks) >= 2
    line = parse(sparkline([(at(1), Decimal("50"))], label="Buy Box"))
    assert len(points(line, "sparkline")) == 1
    same = parse(sparkline([(at(1), Decimal("50")), (at(2), Decimal("50"))], label="Buy Box"))
    ys = {p.get("cy") for p in points(same, "sparkline")}
    assert len(ys) == 1


def test_stock_chart_counts_on_hand_published_and_events() -> None:
    series = StockSeries(
        on_hand=(Count(at(0), 10), Count(at(2), 8), Count(at(3), 9), Count(at(4), 0)),
        published=(
            ("amazon-us", (Count(at(0), 10), Count(at(2), 8))),
            ("shopify", (Count(at(1), 5),)),
        ),
        events=(
            StockMark(at(2), 1, "order", -2, "amazon-us", "order A: 2 sold"),
            StockMark(at(3), 2, "cancel", 1, "amazon-us", None),
            StockMark(at(4), 3, "count", -9, None, "counted 0"),
        ),
    )
    root = parse(stock_chart(series, start=START, end=END))
    assert len(points(root, "on-hand")) == 4
    published = points(root, "published")
    assert [p.get("data-channel") for p in published] == ["amazon-us", "amazon-us", "shopify"]
    assert [len(points(root, k, "event")) for k in ("order", "cancel", "count")] == [1, 1, 1]
    zero = min(float(t.text or "1") for t in root.iter(f"{NS}text") if t.get("class") == "y-tick")
    assert zero == 0  # the unit axis starts at zero
    assert "units" in [t.text for t in root.iter(f"{NS}text")]


def test_sparkline_breaks_at_a_missing_day() -> None:
    values = [(at(d), None if d == 2 else Decimal(d * 10)) for d in range(5)]
    root = parse(sparkline(values, label="Buy Box share"))
    assert len(points(root, "sparkline")) == 4
    path = next(e for e in root.iter(f"{NS}path") if e.get("class") == "line")
    assert (path.get("d") or "").count("M") == 2
    title = root.find(f"{NS}title")
    assert title is not None
    assert "—%" in (title.text or "")


def test_a_long_legend_wraps_and_the_plot_starts_below_it() -> None:
    channels = ("amazon-us", "walmart-us", "ebay-us", "shopify")
    series = StockSeries(
        on_hand=(Count(at(0), 3),),
        published=tuple((c, (Count(at(0), 2),)) for c in channels),
        events=(),
    )
    root = parse(stock_chart(series, start=START, end=END))
    legend = next(g for g in root.iter(f"{NS}g") if g.get("class") == "legend")
    labels = [(float(t.get("x") or 0), float(t.get("y") or 0)) for t in legend.iter(f"{NS}text")]
    assert len(labels) == 1 + len(channels) + 3
    assert all(x < 720 - 16 for x, _ in labels)
    rows = sorted({y for _, y in labels})
    assert len(rows) == 2
    unit = next(t for t in root.iter(f"{NS}text") if t.get("class") == "y-unit")
    assert float(unit.get("y") or 0) > rows[-1]  # the plot and its unit sit below the legend
