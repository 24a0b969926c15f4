"""Rolling statistics of alpha_assets.features.statistics against naive per-window references and scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from alpha_assets.features import statistics as stats


@pytest.fixture
def close(make_bars) -> np.ndarray:
    return make_bars(11, 420)["close"].to_numpy()


def test_simple_return_over_window_bars(close):
    out = stats.simple_return(close, 20)
    assert np.isnan(out[:20]).all()
    np.testing.assert_allclose(out[20:], close[20:] / close[:-20] - 1.0, rtol=1e-12)


def test_rolling_moments_match_scipy_and_sample_std(close):
    moments = stats.rolling_moments(close, 60, periods_per_year=365.0)
    returns = close[1:] / close[:-1] - 1.0
    for t in range(60, close.size):
        window = returns[t - 60 : t]
        if np.ptp(window) == 0.0:
            assert np.isnan(moments.skewness[t]) and moments.volatility[t] == 0.0
            continue
        assert moments.volatility[t] == pytest.approx(window.std(ddof=1) * math.sqrt(365.0), rel=1e-9)
        assert moments.skewness[t] == pytest.approx(scipy.stats.skew(window), rel=1e-7)
        assert moments.kurtosis[t] == pytest.approx(scipy.stats.kurtosis(window), rel=1e-7)
    assert np.isnan(moments.volatility[:60]).all()


def test_rolling_moments_flat_price_window_is_nan_shape_zero_volatility():
    close = np.r_[np.linspace(10, 12, 30), np.full(80, 12.0)]
    moments = stats.rolling_moments(close, 60)
    assert moments.volatility[-1] == 0.0
    assert np.isnan(moments.skewness[-1]) and np.isnan(moments.kurtosis[-1])


def test_efficiency_ratio_straight_line_is_one_and_flat_is_nan():
    line = np.linspace(10, 20, 50)
    np.testing.assert_allclose(stats.efficiency_ratio(line, 20)[20:], 1.0)
    assert np.isnan(stats.efficiency_ratio(np.full(30, 5.0), 20)[20:]).all()


def test_efficiency_ratio_matches_naive_definition(close):
    out = stats.efficiency_ratio(close, 20)
    for t in (20, 100, 250, 419):
        path = np.abs(np.diff(close[t - 20 : t + 1])).sum()
        expected = abs(close[t] - close[t - 20]) / path if path > 0 else np.nan
        np.testing.assert_allclose(out[t], expected, rtol=1e-12)
    assert np.isnan(out[:20]).all()


def test_max_drawdown_matches_naive_rolling_peak(close):
    out = stats.max_drawdown(close, 252)
    assert np.isnan(out[:251]).all()
    for t in range(251, close.size, 7):
        window = close[t - 251 : t + 1]
        expected = 1.0 - (window / np.maximum.accumulate(window)).min()
        assert out[t] == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("window", [2, 3, 5, 64, 100], ids=lambda w: f"w{w}")
def test_max_drawdown_any_window_matches_naive(window):
    close = 100 * np.exp(np.cumsum(np.random.default_rng(window).normal(0, 0.05, 300)))
    out = stats.max_drawdown(close, window)
    expected = [
        1.0 - (close[t - window + 1 : t + 1] / np.maximum.accumulate(close[t - window + 1 : t + 1])).min()
        for t in range(window - 1, 300)
    ]
    np.testing.assert_allclose(out[window - 1 :], expected, rtol=1e-12, atol=1e-15)


def test_history_length_counts_bars_so_far():
    np.testing.assert_array_equal(stats.history_length(4), [1.0, 2.0, 3.0, 4.0])


def test_average_traded_value_is_rolling_mean_of_close_times_volume(make_bars):
    bars = make_bars(5, 200)
    close, volume = bars["close"].to_numpy(), bars["volume"].to_numpy()
    expected = pd.Series(close * volume).rolling(20).mean().to_numpy()
    out = stats.average_traded_value(close, volume, 20)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected, rtol=1e-9)


def _naive_permutation_entropy(window: np.ndarray, order: int) -> float:
    patterns = [tuple(np.argsort(window[i : i + order], kind="stable")) for i in range(window.size - order + 1)]
    _, counts = np.unique(np.array(patterns), axis=0, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(math.factorial(order)))


@pytest.mark.parametrize("order", [3, 4], ids=["order3", "order4"])
def test_permutation_entropy_matches_naive_ordinal_patterns(close, order):
    out = stats.permutation_entropy(close, order=order, window=120)
    assert np.isnan(out[:119]).all()
    for t in (119, 200, 300, 419):
        assert out[t] == pytest.approx(_naive_permutation_entropy(close[t - 119 : t + 1], order), rel=1e-12)


def test_permutation_entropy_monotone_trend_is_zero_and_noise_near_one():
    assert stats.permutation_entropy(np.linspace(1, 2, 200), 3, 120)[-1] == 0.0
    noise = np.random.default_rng(0).random(5000)
    assert stats.permutation_entropy(noise, 3, 5000)[-1] > 0.99


def test_statistics_input_not_1d_float_raises_value_error():
    with pytest.raises(ValueError, match=r"`close` must be 1-D \(n_observations,\), got shape \(2, 2\)"):
        stats.max_drawdown(np.ones((2, 2)), 2)


def test_window_too_small_raises_value_error():
    with pytest.raises(ValueError, match="`window` must be an integer >= 3, got 2"):
        stats.rolling_moments(np.ones(10), 2)


def test_periods_per_year_not_positive_raises_value_error():
    with pytest.raises(ValueError, match="`periods_per_year` must be a positive finite number, got 0"):
        stats.rolling_moments(np.ones(10), 5, periods_per_year=0)


def test_permutation_entropy_order_out_of_range_raises_value_error():
    with pytest.raises(ValueError, match=r"`order` must be an integer in \[2, 6\], got 7"):
        stats.permutation_entropy(np.ones(100), order=7, window=50)


def test_average_traded_value_shapes_differ_raise_value_error():
    with pytest.raises(ValueError, match="`close` and `volume` must share the shape"):
        stats.average_traded_value(np.ones(5), np.ones(4), 2)
