"""Demand forecast accuracy against a known truth, and speed at 100,000 SKUs (issue 16).

The generator draws four kinds of series over 449 days: smooth with a weekly profile (35 %),
trending (25 %: linear growth or decline, weekly profile), intermittent (25 %: rare sales of
steady size) and lumpy (15 %: rare sales of very variable size); 20 % of all series get one to
three stock-outs of 7–30 days, on which nothing sells though demand goes on. The latent demand
is the truth forecasts are scored against, so censoring is scored too.

Accuracy: rolling origin, three origins 28 days apart, a 28-day horizon from each; MASE =
mean absolute error over the horizon ÷ the in-sample mean absolute lag-7 difference (observed
pairs only), averaged over series and origins, for the forecast and for the seasonal-naive
baseline (each weekday's last in-stock value). Targets: ≥ 10 % lower MASE overall, not higher
on intermittent series. Speed: ``forecast`` over ``listings`` SKUs (default 100,000) in blocks
of 10,000 generated outside the timer; target ≤ 10 minutes on 2 cores.
"""

from __future__ import annotations

import os
import resource
import time
from datetime import date
from typing import Any

import numpy as np

from inventory.forecast import ForecastSettings, History, forecast, seasonal_naive, weekdays

START = date(2025, 9, 1)
DAYS = 365 + 84
HORIZON = 28
ORIGINS = (DAYS - 84, DAYS - 56, DAYS - 28)
CLASSES = ("smooth", "trending", "intermittent", "lumpy")
SHARES = (0.35, 0.25, 0.25, 0.15)
STOCK_OUT_SHARE = 0.2
ACCURACY_ROWS = 8_000
BLOCK = 10_000


def generate(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observed sales, in-stock flags, latent demand and class label of ``rows`` series."""
    rng = np.random.default_rng(seed)
    label = rng.choice(len(CLASSES), size=rows, p=SHARES)
    t = np.arange(DAYS)[None, :]
    wd = weekdays(START, DAYS)
    pattern = rng.normal(size=(rows, 7)) * rng.uniform(0.0, 0.35, size=(rows, 1))
    profile = np.clip(1.0 + pattern, 0.2, None)
    profile /= profile.mean(axis=1, keepdims=True)
    level = rng.lognormal(mean=1.5, sigma=1.0, size=(rows, 1))
    # A slow random drift of the level, as real demand wanders.
    drift = np.exp(np.cumsum(rng.normal(0.0, 0.01, size=(rows, DAYS)), axis=1))
    growth = rng.uniform(-0.6, 1.5, size=(rows, 1))
    trend = np.where(label[:, None] == 1, np.clip(1.0 + growth * t / DAYS, 0.05, None), 1.0)
    rate = level * drift * trend * profile[:, wd]
    # Over-dispersed counts: Poisson on a gamma-noised rate (shape 8).
    continuous = rng.poisson(rate * rng.gamma(8.0, 1.0 / 8.0, size=(rows, DAYS)))
    p_sale = np.where(label == 2, rng.uniform(0.05, 0.35, rows), rng.uniform(0.03, 0.25, rows))
    occurs = rng.random((rows, DAYS)) < p_sale[:, None]
    steady = 1 + rng.poisson(rng.uniform(0.5, 3.0, size=(rows, 1)), size=(rows, DAYS))
    lumpy = np.ceil(rng.lognormal(1.0, 0.9, size=(rows, DAYS)))
    sizes = np.where(label[:, None] == 2, steady, lumpy)
    demand = np.where(label[:, None] >= 2, np.where(occurs, sizes, 0), continuous).astype(float)
    in_stock = np.ones((rows, DAYS), dtype=bool)
    for row in np.flatnonzero(rng.random(rows) < STOCK_OUT_SHARE):
        for _ in range(rng.integers(1, 4)):
            length = int(rng.integers(7, 31))
            begin = int(rng.integers(0, DAYS - length))
            in_stock[row, begin : begin + length] = False
    sales = np.where(in_stock, demand, 0.0)
    return sales, in_stock, demand, label


def mase_scale(history: History) -> np.ndarray:
    """In-sample mean absolute lag-7 difference per row, over pairs observed on both days."""
    both = history.in_stock[:, 7:] & history.in_stock[:, :-7]
    diff = np.abs(history.sales[:, 7:] - history.sales[:, :-7])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(both, diff, 0.0).sum(axis=1) / both.sum(axis=1))


def accuracy(rows: int, seed: int) -> dict[str, Any]:
    """Rolling-origin MASE of the forecast and of seasonal-naive, overall and per class."""
    sales, in_stock, demand, label = generate(rows, seed)
    settings = ForecastSettings(horizon_days=HORIZON)
    ours: list[np.ndarray] = []
    naive: list[np.ndarray] = []
    classes: list[np.ndarray] = []
    for origin in ORIGINS:
        history = History(START, sales[:, :origin], in_stock[:, :origin])
        actual = demand[:, origin : origin + HORIZON]
        scale = mase_scale(history)
        usable = np.isfinite(scale) & (scale > 0)
        predicted = forecast(history, settings).mean
        baseline = seasonal_naive(history, HORIZON)
        ours.append((np.abs(predicted - actual).mean(axis=1) / scale)[usable])
        naive.append((np.abs(baseline - actual).mean(axis=1) / scale)[usable])
        classes.append(label[usable])
    mase, base, kind = np.concatenate(ours), np.concatenate(naive), np.concatenate(classes)
    out: dict[str, Any] = {}
    for name, mask in [("overall", np.ones_like(kind, dtype=bool))] + [
        (c, kind == i) for i, c in enumerate(CLASSES)
    ]:
        m, b = float(mase[mask].mean()), float(base[mask].mean())
        out[name] = {
            "series_x_origins": int(mask.sum()),
            "mase": round(m, 4),
            "mase_seasonal_naive": round(b, 4),
            "improvement_pct": round(100 * (1 - m / b), 1),
        }
    stocked_out = ~in_stock.all(axis=1)
    out["series_with_stock_outs_pct"] = round(100 * float(stocked_out.mean()), 1)
    return out


def speed(skus: int, seed: int) -> dict[str, Any]:
    """Wall and CPU seconds to forecast ``skus`` series, generated in blocks outside the timer."""
    wall = cpu = 0.0
    done = 0
    while done < skus:
        rows = min(BLOCK, skus - done)
        sales, in_stock, _, _ = generate(rows, seed + done)
        history = History(START, sales, in_stock)
        t0, c0 = time.perf_counter(), time.process_time()
        forecast(history)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        done += rows
    return {"skus": skus, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


async def main(listings: int = 100_000) -> dict[str, Any]:
    """Score accuracy on 8,000 series, then time 10,000 and ``listings`` SKUs."""
    load_before = os.getloadavg()
    result: dict[str, Any] = {"accuracy": accuracy(ACCURACY_ROWS, seed=16)}
    result["speed_10k"] = speed(min(10_000, listings), seed=1_000)
    result["speed"] = speed(listings, seed=2_000_000)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    return result
