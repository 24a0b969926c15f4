"""compute_symbol_features: no look-ahead (prefix invariance on every column), TA-Lib parity, layout, errors.

Exercises the full per-symbol pass on realistic bars (trends, crash, flat stretch, zero volume, calendar
gaps). The store and the backfill are tested in their own modules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from alpha_assets.errors import UnsafeKeyError
from alpha_assets.features.matrix import (
    FEATURE_COLUMNS,
    MA_VOTE_COLUMNS,
    OTHER_VOTE_COLUMNS,
    compute_features,
    compute_features_many,
    compute_symbol_features,
)

KEY = "BINANCE_BTCUSDT"
REQUIRED = (
    "rsi_14 macd macd_signal macd_hist stoch_k stoch_d cci_20 adx_14 plus_di_14 minus_di_14 ao mom_10 "
    "willr_14 uo "
    "stochrsi_k stochrsi_d bbpower hma_9 vwma_20 ichimoku_conversion ichimoku_base ichimoku_lead1 "
    "ichimoku_lead2 "
    "recommend_ma recommend_other recommend_all rating return_20d return_60d return_120d volatility_60d "
    "efficiency_ratio_20d skewness_60d kurtosis_60d max_drawdown_252d history_length avg_traded_value_20d "
    "permutation_entropy_120d"
).split() + [f"{kind}_{n}" for kind in ("sma", "ema") for n in (10, 20, 30, 50, 100, 200)]


def test_feature_columns_unique_cover_required_and_26_votes():
    assert len(set(FEATURE_COLUMNS)) == len(FEATURE_COLUMNS)
    assert set(REQUIRED) <= set(FEATURE_COLUMNS)
    assert (len(MA_VOTE_COLUMNS), len(OTHER_VOTE_COLUMNS)) == (15, 11)


@pytest.mark.parametrize("seed", [21, 22, 23], ids=["sym21", "sym22", "sym23"])
def test_compute_symbol_features_prefix_of_bars_gives_identical_past_rows(make_bars, seed):
    bars = make_bars(seed, 700, calendar_gaps=True)
    full = compute_symbol_features(bars, KEY)
    for cut in (60, 230, 333, 512, 699):
        for extra in (1, 17, 700 - cut):
            prefix = compute_symbol_features(bars.iloc[: cut + extra], KEY).iloc[:cut]
            past = full.iloc[:cut] if extra == 700 - cut else compute_symbol_features(bars.iloc[:cut], KEY)
            # Exact equality, NaN equal to NaN, on every feature column and the keys.
            pd.testing.assert_frame_equal(prefix, past, check_exact=True)
        pd.testing.assert_frame_equal(compute_symbol_features(bars.iloc[:cut], KEY), full.iloc[:cut], check_exact=True)


TALIB_COLUMNS = {
    "rsi_14": lambda h, lo, c: talib.RSI(c, 14),
    "macd": lambda h, lo, c: talib.MACD(c, 12, 26, 9)[0],
    "macd_signal": lambda h, lo, c: talib.MACD(c, 12, 26, 9)[1],
    "macd_hist": lambda h, lo, c: talib.MACD(c, 12, 26, 9)[2],
    "stoch_k": lambda h, lo, c: talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)[0],
    "stoch_d": lambda h, lo, c: talib.STOCH(h, lo, c, 14, 3, 0, 3, 0)[1],
    "cci_20": lambda h, lo, c: talib.CCI(h, lo, c, 20),
    "adx_14": lambda h, lo, c: talib.ADX(h, lo, c, 14),
    "plus_di_14": lambda h, lo, c: talib.PLUS_DI(h, lo, c, 14),
    "minus_di_14": lambda h, lo, c: talib.MINUS_DI(h, lo, c, 14),
    "mom_10": lambda h, lo, c: talib.MOM(c, 10),
    "willr_14": lambda h, lo, c: talib.WILLR(h, lo, c, 14),
    "uo": lambda h, lo, c: talib.ULTOSC(h, lo, c, 7, 14, 28),
    **{f"sma_{n}": (lambda h, lo, c, n=n: talib.SMA(c, n)) for n in (10, 20, 30, 50, 100, 200)},
    **{f"ema_{n}": (lambda h, lo, c, n=n: talib.EMA(c, n)) for n in (10, 20, 30, 50, 100, 200)},
}


@pytest.mark.parametrize("seed", [31, 32], ids=["sym31", "sym32"])
def test_compute_symbol_features_talib_columns_equal_talib_from_first_defined_bar(make_bars, seed):
    bars = make_bars(seed, 900)
    frame = compute_symbol_features(bars, KEY)
    h, lo, c = (bars[name].to_numpy() for name in ("high", "low", "close"))
    for column, reference in TALIB_COLUMNS.items():
        expected = reference(h, lo, c)
        actual = frame[column].to_numpy()
        first = int(np.argmax(~np.isnan(expected)))
        assert np.isnan(actual[:first]).all(), column
        np.testing.assert_allclose(actual[first:], expected[first:], rtol=1e-9, atol=0, err_msg=column)


def test_compute_symbol_features_layout_sorted_float_utc(make_bars):
    bars = make_bars(41, 400, calendar_gaps=True)
    frame = compute_symbol_features(bars, KEY)
    assert list(frame.columns) == ["date", "symbol", *FEATURE_COLUMNS]
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    assert frame["date"].is_monotonic_increasing and frame["date"].is_unique
    assert (frame["date"].to_numpy() == bars["timestamp"].astype("datetime64[ns, UTC]").to_numpy()).all()
    assert (frame["symbol"] == KEY).all()
    assert all(frame[c].dtype == np.float64 for c in FEATURE_COLUMNS)
    assert not np.isinf(frame[list(FEATURE_COLUMNS)].to_numpy()).any()


def test_compute_symbol_features_votes_rating_consistent(make_bars):
    frame = compute_symbol_features(make_bars(42, 500), KEY)
    votes = frame[list(MA_VOTE_COLUMNS + OTHER_VOTE_COLUMNS)].to_numpy()
    assert set(np.unique(votes[~np.isnan(votes)])) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(np.isnan(frame["rating"]), np.isnan(frame["recommend_all"]))
    assert frame["recommend_all"].abs().max() <= 1.0
    ma_mean = np.nanmean(frame[list(MA_VOTE_COLUMNS)].to_numpy()[300:], axis=1)
    np.testing.assert_allclose(frame["recommend_ma"].to_numpy()[300:], ma_mean)
    # every vote is computable once the longest warm-up (Ichimoku lead2: 52 + 26 bars, SMA 200) is over
    assert not np.isnan(votes[300:]).any()
    assert np.isnan(frame["vote_sma_200"].to_numpy()[:199]).all()


def test_compute_symbol_features_calendar_gaps_are_bar_indexed(make_bars):
    with_gaps = make_bars(43, 300, calendar_gaps=True)
    contiguous = with_gaps.assign(
        timestamp=pd.date_range("2019-01-01", periods=300, tz="UTC").astype("datetime64[ms, UTC]")
    )
    a = compute_symbol_features(with_gaps, KEY).drop(columns="date")
    b = compute_symbol_features(contiguous, KEY).drop(columns="date")
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_compute_features_returns_feature_major_array(make_bars):
    bars = make_bars(44, 250)
    values = compute_features(*(bars[c].to_numpy() for c in ("high", "low", "close", "volume")))
    assert values.shape == (len(FEATURE_COLUMNS), 250) and values.dtype == np.float64


def test_compute_symbol_features_empty_and_short_bars_give_nan_rows(make_bars):
    bars = make_bars(45, 5)
    assert compute_symbol_features(bars.iloc[:0], KEY).shape == (0, 2 + len(FEATURE_COLUMNS))
    frame = compute_symbol_features(bars, KEY)
    assert frame["history_length"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert frame["rsi_14"].isna().all() and frame["rating"].isna().all()


def test_compute_symbol_features_missing_column_raises_value_error(make_bars):
    with pytest.raises(ValueError, match=r"must have columns .* missing \['volume'\]"):
        compute_symbol_features(make_bars(1, 50).drop(columns="volume"), KEY)


def test_compute_symbol_features_naive_timestamps_raise_value_error(make_bars):
    bars = make_bars(1, 50)
    bars["timestamp"] = bars["timestamp"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="`bars.timestamp` of BINANCE_BTCUSDT must be tz-aware UTC"):
        compute_symbol_features(bars, KEY)


def test_compute_symbol_features_unsorted_timestamps_raise_value_error(make_bars):
    bars = make_bars(1, 50).iloc[::-1]
    with pytest.raises(ValueError, match="must be strictly increasing"):
        compute_symbol_features(bars, KEY)


def test_compute_symbol_features_nan_price_raises_value_error(make_bars):
    bars = make_bars(1, 50)
    bars.loc[10, "close"] = np.nan
    with pytest.raises(ValueError, match="`close` must be finite, got 1 NaN or inf values"):
        compute_symbol_features(bars, KEY)


def test_compute_symbol_features_non_positive_price_raises_value_error(make_bars):
    bars = make_bars(1, 50)
    bars.loc[3, "low"] = 0.0
    with pytest.raises(ValueError, match="`low` must be > 0"):
        compute_symbol_features(bars, KEY)


def test_compute_symbol_features_negative_volume_raises_value_error(make_bars):
    bars = make_bars(1, 50)
    bars.loc[3, "volume"] = -1.0
    with pytest.raises(ValueError, match="`volume` must be >= 0"):
        compute_symbol_features(bars, KEY)


def test_compute_symbol_features_unsafe_key_raises_unsafe_key_error(make_bars):
    with pytest.raises(UnsafeKeyError, match="refused"):
        compute_symbol_features(make_bars(1, 50), "../etc")


def test_compute_symbol_features_not_a_frame_raises_type_error():
    with pytest.raises(TypeError, match="`bars` must be a pandas DataFrame, got dict"):
        compute_symbol_features({}, KEY)


def test_compute_features_shapes_differ_raise_value_error():
    with pytest.raises(ValueError, match="must share the shape"):
        compute_features(np.ones(5), np.ones(5), np.ones(5), np.ones(4))


def _arrays(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    return {name: bars[name].to_numpy() for name in ("high", "low", "close", "volume")}


@pytest.mark.parametrize("seed", [31, 32], ids=["sym31_gaps", "sym32"])
@pytest.mark.parametrize("new_bars", [1, 5], ids=["k1", "k5"])
def test_compute_features_tail_equals_full_computation_for_every_column(make_bars, seed, new_bars):
    bars = make_bars(seed, 900, calendar_gaps=seed == 31)
    full = compute_features(**_arrays(bars))
    # Cut points in the warm-ups, around the 252-bar look-back, in the flat stretch and at the end.
    for cut in (0, 1, 30, 150, 250, 251, 252, 253, 400, 460, 777, 900 - new_bars):
        n_bars = cut + new_bars
        tail = compute_features(**_arrays(bars.iloc[:n_bars]), start=cut)
        assert tail.shape == (len(FEATURE_COLUMNS), new_bars)
        expected = full[:, cut:n_bars]
        for i, column in enumerate(FEATURE_COLUMNS):
            np.testing.assert_array_equal(tail[i], expected[i], err_msg=f"{column} at cut {cut}")


def test_compute_features_start_at_end_returns_no_rows(make_bars):
    values = compute_features(**_arrays(make_bars(33, 300)), start=300)
    assert values.shape == (len(FEATURE_COLUMNS), 0)


@pytest.mark.parametrize("start", [-1, 301, 2.0, True], ids=["negative", "past_end", "float", "bool"])
def test_compute_features_bad_start_raises_value_error(make_bars, start):
    with pytest.raises(ValueError, match=r"`start` must be an integer in \[0, 300\] \(n_observations\)"):
        compute_features(**_arrays(make_bars(33, 300)), start=start)


def test_compute_features_many_equals_one_call_per_symbol_bit_for_bit(make_bars):
    """Tails of many symbols computed end to end equal each symbol's own computation, exactly: long and short
    histories (the latter computed alone), one and several new bars, no new bar, a whole history."""
    cases = [
        (41, 900, 899),
        (42, 600, 595),
        (43, 300, 252),
        (44, 300, 251),
        (45, 120, 119),
        (46, 700, 0),
        (47, 500, 500),
        (48, 1000, 990),
    ]
    series = [tuple(_arrays(make_bars(seed, n, calendar_gaps=seed % 2 == 1)).values()) for seed, n, _ in cases]
    starts = [start for _, _, start in cases]
    many = compute_features_many(series, starts)
    for (seed, n, start), values, bars in zip(cases, many, series, strict=True):
        one = compute_features(*bars, start=start)
        assert values.shape == one.shape == (len(FEATURE_COLUMNS), n - start), seed
        np.testing.assert_array_equal(values, one, err_msg=f"seed {seed}, start {start}")


def test_compute_features_many_one_new_day_equals_full_recompute_of_long_and_warming_up_histories(make_bars):
    """The daily update's path: one new bar per symbol, batched, equals the full computation bit for bit.

    Long histories (2,000 bars: EMA-200, Wilder and MACD states from the first bar), and histories whose tail
    starts 0 to 20 bars after their first bar, so the RSI's warm-up NaNs (14 bars) sit inside the batch where
    the window indicators (Williams %R, Ichimoku, the RSI's stochastic) run over the symbols' tails end to end.
    """
    lengths = [2000, 1999, 1500] + [252 + shift for shift in range(21)]
    series = [tuple(_arrays(make_bars(100 + i, n, calendar_gaps=i % 3 == 0)).values()) for i, n in enumerate(lengths)]
    many = compute_features_many(series, [n - 1 for n in lengths])
    for n, bars, values in zip(lengths, series, many, strict=True):
        full = compute_features(*bars)
        assert values.shape == (len(FEATURE_COLUMNS), 1)
        np.testing.assert_array_equal(values, full[:, n - 1 :], err_msg=f"{n} bars")
    # The long histories' one-day values are defined for every column (no warm-up left), so the test is not
    # comparing NaN with NaN.
    assert not np.isnan(np.hstack(many[:3])).any()


def test_compute_features_many_names_the_bad_input(make_bars):
    good = tuple(_arrays(make_bars(41, 300)).values())
    bad = (good[0], good[1], -good[2], good[3])
    with pytest.raises(ValueError, match="`close` must be > 0"):
        compute_features_many([good, bad], [299, 299])
    with pytest.raises(ValueError, match="`series` and `starts` must have the same length, got 1 and 2"):
        compute_features_many([good], [299, 299])
