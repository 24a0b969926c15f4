"""Indicators of alpha_assets.features.indicators: TA-Lib parity, TradingView definitions, input validation.

TA-Lib indicators are compared with direct TA-Lib calls (parameters, MA types); the others with independent
pandas / numpy references, on realistic series (trends, a crash, a flat stretch, zero-volume days). No I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from alpha_assets.features import indicators as ind

SEEDS = (1, 2, 3)


def _arrays(make_bars, seed: int, n: int = 600) -> tuple[np.ndarray, ...]:
    bars = make_bars(seed, n)
    return tuple(bars[c].to_numpy() for c in ("high", "low", "close", "volume"))


def _assert_same(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-9, atol: float = 0.0) -> None:
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


TALIB_CASES = {
    "rsi_14": (lambda h, lo, c, v: ind.rsi(c, 14), lambda h, lo, c, v: talib.RSI(c, 14)),
    "macd": (
        lambda h, lo, c, v: np.stack(ind.macd(c)),
        lambda h, lo, c, v: np.stack(talib.MACD(c, 12, 26, 9)),
    ),
    "stoch": (
        lambda h, lo, c, v: np.stack(ind.stoch(h, lo, c)),
        lambda h, lo, c, v: np.stack(talib.STOCH(h, lo, c, 14, 3, talib.MA_Type.SMA, 3, talib.MA_Type.SMA)),
    ),
    "cci_20": (lambda h, lo, c, v: ind.cci(h, lo, c, 20), lambda h, lo, c, v: talib.CCI(h, lo, c, 20)),
    "dmi": (
        lambda h, lo, c, v: np.stack(ind.dmi(h, lo, c, 14)),
        lambda h, lo, c, v: np.stack(
            [talib.PLUS_DI(h, lo, c, 14), talib.MINUS_DI(h, lo, c, 14), talib.ADX(h, lo, c, 14)]
        ),
    ),
    "mom_10": (lambda h, lo, c, v: ind.momentum(c, 10), lambda h, lo, c, v: talib.MOM(c, 10)),
    "willr_14": (
        lambda h, lo, c, v: ind.williams_r(h, lo, c, 14),
        lambda h, lo, c, v: talib.WILLR(h, lo, c, 14),
    ),
    "uo": (
        lambda h, lo, c, v: ind.ultimate_oscillator(h, lo, c),
        lambda h, lo, c, v: talib.ULTOSC(h, lo, c, 7, 14, 28),
    ),
    "sma_200": (lambda h, lo, c, v: ind.sma(c, 200), lambda h, lo, c, v: talib.SMA(c, 200)),
    "ema_50": (lambda h, lo, c, v: ind.ema(c, 50), lambda h, lo, c, v: talib.EMA(c, 50)),
}


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
@pytest.mark.parametrize("name", list(TALIB_CASES), ids=list(TALIB_CASES))
def test_talib_indicator_realistic_series_equals_talib(make_bars, name, seed):
    arrays = _arrays(make_bars, seed)
    ours, reference = TALIB_CASES[name]
    _assert_same(ours(*arrays), reference(*arrays))


def test_ema_seed_is_simple_average_of_first_bars():
    close = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    out = ind.ema(close, 3)
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx(2.0)  # SMA of the first three, not the first value
    assert out[3] == pytest.approx(2.0 + 0.5 * (4.0 - 2.0))


def _wma(x: np.ndarray, n: int) -> np.ndarray:
    weights = np.arange(1, n + 1, dtype=float)
    return pd.Series(x).rolling(n).apply(lambda w: np.dot(w, weights) / weights.sum(), raw=True).to_numpy()


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_hull_ma_realistic_series_matches_wma_definition(make_bars, seed):
    _, _, close, _ = _arrays(make_bars, seed, 300)
    expected = _wma(2 * _wma(close, 4) - _wma(close, 9), 3)
    _assert_same(ind.hull_ma(close, 9), expected)


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_vwma_zero_volume_window_gives_nan_else_weighted_mean(make_bars, seed):
    _, _, close, volume = _arrays(make_bars, seed)
    total = pd.Series(volume).rolling(20).sum()
    expected = (pd.Series(close * volume).rolling(20).sum() / total).where(total > 0).to_numpy()
    out = ind.vwma(close, volume, 20)
    _assert_same(out, expected, rtol=1e-9)
    assert np.isnan(out[20:]).any(), "the flat, volume-less stretch must make some windows NaN"


def test_vwma_all_zero_volume_window_is_nan_not_inf():
    close = np.linspace(10.0, 20.0, 30)
    volume = np.ones(30)
    volume[5:28] = 0.0
    out = ind.vwma(close, volume, 20)
    assert np.isnan(out[24:28]).all() and np.isfinite(out[28:]).all()


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_ichimoku_leads_are_spans_computed_26_bars_earlier(make_bars, seed):
    high, low, _, _ = _arrays(make_bars, seed)
    h, lo = pd.Series(high), pd.Series(low)

    def donchian(n: int) -> pd.Series:
        return (h.rolling(n).max() + lo.rolling(n).min()) / 2

    conversion, base, lead1, lead2 = ind.ichimoku(high, low)
    _assert_same(conversion, donchian(9).to_numpy())
    _assert_same(base, donchian(26).to_numpy())
    _assert_same(lead1, ((donchian(9) + donchian(26)) / 2).shift(26).to_numpy())
    _assert_same(lead2, donchian(52).shift(26).to_numpy())
    assert np.isnan(lead2[: 51 + 26]).all() and not np.isnan(lead2[51 + 26])


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_awesome_oscillator_is_sma5_minus_sma34_of_hl2(make_bars, seed):
    high, low, _, _ = _arrays(make_bars, seed)
    hl2 = pd.Series((high + low) / 2)
    expected = (hl2.rolling(5).mean() - hl2.rolling(34).mean()).to_numpy()
    # A difference of two averages: its error scales with the price, not with the (possibly zero) difference.
    _assert_same(ind.awesome_oscillator(high, low), expected, atol=1e-9 * hl2.abs().max())


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_stoch_rsi_matches_tradingview_definition(make_bars, seed):
    _, _, close, _ = _arrays(make_bars, seed)
    strength = pd.Series(talib.RSI(close, 14))
    lowest, highest = strength.rolling(14).min(), strength.rolling(14).max()
    raw = (100 * (strength - lowest) / (highest - lowest)).where(highest - lowest > 1e-10)
    k = raw.rolling(3).mean()
    d = k.rolling(3).mean()
    out_k, out_d = ind.stoch_rsi(close)
    # pandas' running sums leave ~1e-14 where the exact window mean is ~0: compare on the 0-100 scale.
    _assert_same(out_k, k.to_numpy(), atol=1e-9)
    _assert_same(out_d, d.to_numpy(), atol=1e-9)
    assert np.nanmin(out_k) >= 0.0 and np.nanmax(out_k) <= 100.0


def test_bull_bear_power_is_extremes_minus_ema13(make_bars):
    high, low, close, _ = _arrays(make_bars, 4)
    bull, bear = ind.bull_bear_power(high, low, close)
    _assert_same(bull, high - talib.EMA(close, 13))
    _assert_same(bear, low - talib.EMA(close, 13))


def test_lag_shifts_forward_in_time_with_leading_nan():
    out = ind.lag(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    np.testing.assert_array_equal(out, [np.nan, np.nan, 1.0, 2.0])
    assert np.isnan(ind.lag(np.array([1.0]), 3)).all()


def test_rolling_sum_nan_stays_inside_its_windows():
    values = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0])
    np.testing.assert_array_equal(ind.rolling_sum(values, 2), [np.nan, 3.0, np.nan, np.nan, 9.0, 11.0, 13.0])


def test_lagged_windows_columns_are_the_windows():
    view = ind.lagged_windows(np.arange(5.0), 3)
    assert view.shape == (3, 3)
    np.testing.assert_array_equal(view[:, 1], [1.0, 2.0, 3.0])


def test_indicators_shorter_series_than_window_give_all_nan():
    close = np.linspace(1.0, 2.0, 10)
    for out in (
        ind.sma(close, 20),
        ind.vwma(close, np.ones(10), 20),
        ind.hull_ma(close, 9)[:10],
        ind.ichimoku(close, close)[3],
        ind.stoch_rsi(close)[1],
        ind.rolling_sum(close, 11),
    ):
        assert out.shape == (10,) and np.isnan(out).all()


def test_series_not_ndarray_raises_type_error():
    with pytest.raises(TypeError, match=r"`close` must be a numpy ndarray of shape \(n_observations,\), got list"):
        ind.rsi([1.0, 2.0, 3.0])


def test_series_2d_raises_value_error_naming_shape():
    with pytest.raises(ValueError, match=r"`close` must be 1-D \(n_observations,\), got shape \(3, 2\)"):
        ind.ema(np.ones((3, 2)), 2)


def test_series_wrong_dtype_raises_type_error():
    with pytest.raises(TypeError, match="`close` must have dtype float64, got int64"):
        ind.sma(np.arange(5), 2)


def test_series_different_lengths_raise_value_error():
    with pytest.raises(
        ValueError,
        match=r"`high`, `low` and `close` must share the shape \(n_observations,\), got "
        r"\{'high': \(5,\), 'low': \(5,\), 'close': \(4,\)\}",
    ):
        ind.cci(np.ones(5), np.ones(5), np.ones(4))


@pytest.mark.parametrize("length", [1, 0, 2.5, True], ids=["one", "zero", "float", "bool"])
def test_length_out_of_range_raises_value_error(length):
    with pytest.raises(ValueError, match="`length` must be an integer >= 2"):
        ind.sma(np.ones(5), length)


def test_lagged_windows_longer_than_series_raises_value_error():
    with pytest.raises(ValueError, match=r"`length` must be <= n_observations \(3\), got 4"):
        ind.lagged_windows(np.ones(3), 4)
