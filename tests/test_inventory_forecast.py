"""The demand forecast: censored stock-outs, weekly seasonality, intermittent series, classes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from inventory.forecast import (
    DemandClass,
    ForecastSettings,
    History,
    classify,
    forecast,
    seasonal_naive,
    weekdays,
)

START = date(2025, 12, 1)  # a Monday
WEEK = np.array([0.7, 0.8, 1.0, 1.0, 1.1, 1.5, 0.9])  # Monday … Sunday


def seasonal(rows: int, days: int, level: float, seed: int) -> np.ndarray:
    """Poisson sales around ``level`` × the weekly profile."""
    rng = np.random.default_rng(seed)
    return rng.poisson(level * WEEK[weekdays(START, days)], size=(rows, days)).astype(float)


def test_a_two_week_stock_out_does_not_drag_the_forecast_down() -> None:
    sales = seasonal(200, 365, 10.0, seed=1)
    in_stock = np.ones_like(sales, dtype=bool)
    # The last two weeks out of stock: nothing sold because nothing could be.
    sales[:, -14:] = 0.0
    in_stock[:, -14:] = False
    censored = forecast(History(START, sales, in_stock)).daily()
    as_zero_demand = forecast(History(START, sales, np.ones_like(in_stock))).daily()
    truth = 10.0 * WEEK.mean()
    assert abs(censored.mean() - truth) / truth < 0.05
    assert np.all(censored > 0.8 * truth)
    # Read as zero demand, the same days would have cut the forecast by far more.
    assert as_zero_demand.mean() < 0.5 * truth


def test_a_stock_out_mid_history_leaves_the_level_alone() -> None:
    sales = seasonal(100, 200, 20.0, seed=2)
    in_stock = np.ones_like(sales, dtype=bool)
    sales[:, 120:150] = 0.0
    in_stock[:, 120:150] = False
    daily = forecast(History(START, sales, in_stock)).daily()
    truth = 20.0 * WEEK.mean()
    assert abs(daily.mean() - truth) / truth < 0.05


def test_weekly_seasonality_is_recovered() -> None:
    days = 364
    sales = seasonal(300, days, 30.0, seed=3)
    result = forecast(History(START, sales, np.ones_like(sales, dtype=bool)))
    ahead = weekdays(result.start, 7)
    shape = result.mean[:, :7] / result.mean[:, :7].mean(axis=1, keepdims=True)
    truth = WEEK[ahead] / WEEK.mean()
    np.testing.assert_allclose(shape.mean(axis=0), truth, atol=0.03)
    assert np.all(result.demand_class == DemandClass.SMOOTH)
    # sigma is the daily deviation around the forecast: about √mean for Poisson demand.
    assert 0.8 < result.sigma.mean() / np.sqrt(30.0) < 1.3


def test_a_trend_is_followed() -> None:
    days = 365
    trend = np.linspace(5.0, 25.0, days)
    rng = np.random.default_rng(4)
    sales = rng.poisson(trend * WEEK[weekdays(START, days)], size=(200, days)).astype(float)
    daily = forecast(History(START, sales, np.ones_like(sales, dtype=bool))).daily()
    # Damped, so below the straight line's 25+, but above the last quarter's average (~22.5).
    assert 23.0 < daily.mean() / WEEK.mean() < 28.0


def test_intermittent_series_are_no_worse_than_seasonal_naive() -> None:
    rng = np.random.default_rng(5)
    rows, days, horizon = 400, 365 + 28, 28
    occurs = rng.random((rows, days)) < 0.15
    sizes = 1.0 + rng.poisson(2.0, size=(rows, days))
    sales = np.where(occurs, sizes, 0.0)
    in_stock = np.ones_like(sales, dtype=bool)
    history = History(START, sales[:, :-horizon], in_stock[:, :-horizon])
    actual = sales[:, -horizon:]
    result = forecast(history, ForecastSettings(horizon_days=horizon))
    assert np.isin(result.demand_class, [DemandClass.INTERMITTENT, DemandClass.LUMPY]).all()
    ours = np.abs(result.mean - actual).mean()
    naive = np.abs(seasonal_naive(history, horizon) - actual).mean()
    assert ours <= naive
    # And the level is right: the mean demand is 0.15 × 3 = 0.45 a day.
    assert abs(result.daily().mean() - 0.45) < 0.05


def test_classes_rows_without_sales_and_short_histories() -> None:
    sales = np.zeros((4, 60))
    in_stock = np.ones_like(sales, dtype=bool)
    sales[1] = 5.0  # smooth
    sales[2, ::10] = 3.0  # intermittent
    in_stock[3, :-5] = False  # only five observed days
    sales[3, -5:] = [2, 4, 2, 4, 3]
    kinds = classify(sales, in_stock)
    assert list(kinds[:3]) == [DemandClass.NONE, DemandClass.SMOOTH, DemandClass.INTERMITTENT]
    result = forecast(History(START, sales, in_stock), ForecastSettings(horizon_days=7))
    assert result.mean.shape == (4, 7)
    assert np.all(result.mean[0] == 0.0)
    assert result.sigma[0] == 0.0
    assert result.mean[1] == pytest.approx(np.full(7, 5.0))
    np.testing.assert_allclose(result.mean[3], 3.0)  # the observed mean of a short history
    assert result.start == date(2026, 1, 30)


def test_seasonal_naive_repeats_each_weekdays_last_in_stock_value() -> None:
    sales = np.arange(14, dtype=float)[None, :]
    in_stock = np.ones_like(sales, dtype=bool)
    in_stock[0, 13] = False  # the last Sunday was out of stock: the Sunday before stands
    naive = seasonal_naive(History(START, sales, in_stock), 7)
    assert list(naive[0]) == [7, 8, 9, 10, 11, 12, 6]


def test_history_shapes_must_match() -> None:
    with pytest.raises(ValueError, match="must be one 2-D shape"):
        History(START, np.zeros((2, 5)), np.ones((2, 4), dtype=bool))


def test_any_mix_of_sales_and_stock_outs_gives_finite_non_negative_forecasts() -> None:
    rng = np.random.default_rng(6)
    rows, days = 300, 120
    sales = np.where(rng.random((rows, days)) < 0.3, rng.poisson(4.0, (rows, days)), 0.0)
    in_stock = rng.random((rows, days)) < rng.uniform(0.0, 1.0, size=(rows, 1))
    in_stock[:5] = False  # never in stock: nothing known, zero forecast
    sales = np.where(in_stock, sales, 0.0)
    result = forecast(History(START, sales, in_stock), ForecastSettings(horizon_days=14))
    assert np.isfinite(result.mean).all()
    assert np.isfinite(result.sigma).all()
    assert (result.mean >= 0).all()
    assert (result.sigma >= 0).all()
    assert (result.mean[:5] == 0).all()
    assert (result.demand_class[:5] == DemandClass.NONE).all()
