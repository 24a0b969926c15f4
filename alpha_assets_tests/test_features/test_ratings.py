"""Votes and aggregation of alpha_assets.features.ratings on hand-checked bars (golden values), edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from alpha_assets.features import ratings

NAN = np.nan


def a(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_ma_vote_sign_of_close_minus_average_nan_in_warmup():
    np.testing.assert_array_equal(ratings.ma_vote(a(1, 2, 3, 4), a(NAN, 1, 3, 5)), a(NAN, 1, 0, -1))


def test_rsi_vote_oversold_and_rising_buys_overbought_and_falling_sells():
    # bar 1: 25 > 20 and < 30 -> buy; bar 2: falls while oversold -> 0; bar 4: 75 < 80 and > 70 -> sell
    np.testing.assert_array_equal(ratings.rsi_vote(a(20, 25, 22, 80, 75, 76)), a(NAN, 1, 0, 0, -1, 0))


def test_stoch_vote_needs_both_lines_beyond_threshold_and_crossed():
    k, d = a(15, 19, 85, 85, 50), a(10, 21, 90, 80, 40)
    np.testing.assert_array_equal(ratings.stoch_vote(k, d), a(1, 0, -1, 0, 0))


def test_cci_vote_directional_beyond_100():
    np.testing.assert_array_equal(ratings.cci_vote(a(-150, -120, -130, 150, 120)), a(NAN, 1, 0, 0, -1))


def test_adx_vote_requires_rising_adx_above_20():
    adx = a(18, 22, 25, 24, 30)
    plus, minus = a(30, 30, 10, 30, 30), a(10, 10, 30, 10, 10)
    np.testing.assert_array_equal(ratings.adx_vote(adx, plus, minus), a(NAN, 1, -1, 0, 1))


def test_ao_vote_zero_cross_and_saucer():
    # bar 1 crosses 0 but ao[2] is missing (n/a); bar 3 is a bullish saucer; bar 4 crosses below 0
    ao = a(-1, 0.5, 0.4, 0.6, -0.1, -0.3, -0.2)
    np.testing.assert_array_equal(ratings.ao_vote(ao), a(NAN, NAN, 0, 1, -1, 0, 0))
    saucer_sell = a(-0.5, -0.8, -0.6, -0.9)  # -0.9 < -0.6 and -0.8 < -0.6: bearish saucer
    np.testing.assert_array_equal(ratings.ao_vote(saucer_sell), a(NAN, NAN, 0, -1))


def test_mom_vote_rising_momentum_buys():
    np.testing.assert_array_equal(ratings.mom_vote(a(1, 2, 2, -1)), a(NAN, 1, 0, -1))


def test_macd_vote_line_against_signal():
    np.testing.assert_array_equal(ratings.macd_vote(a(1, 0, -1, NAN), a(0, 0, 0, 0)), a(1, 0, -1, NAN))


def test_stochrsi_vote_filtered_by_ema50_trend():
    close, ema50 = a(9, 11, 11, 9), a(10, 10, 10, 10)
    k, d = a(15, 15, 90, 90), a(10, 10, 95, 95)
    # buy needs a downtrend, sell an uptrend
    np.testing.assert_array_equal(ratings.stochrsi_vote(close, ema50, k, d), a(1, 0, -1, 0))


def test_willr_vote_turning_from_extremes():
    np.testing.assert_array_equal(ratings.willr_vote(a(-95, -85, -90, -10, -15)), a(NAN, 1, 0, 0, -1))


def test_bbpower_vote_filtered_by_ema50_trend():
    close, ema50 = a(11, 11, 9, 9), a(10, 10, 10, 10)
    bull, bear = a(2, 2, 3, 2), a(-3, -2, -1, -1)
    np.testing.assert_array_equal(ratings.bbpower_vote(close, ema50, bull, bear), a(NAN, 1, 0, -1))


def test_uo_vote_thresholds():
    np.testing.assert_array_equal(ratings.uo_vote(a(71, 70, 30, 29, NAN)), a(1, 0, 0, -1, NAN))


def test_ichimoku_vote_full_bullish_and_bearish_stack():
    close = a(14, 4, 10, 14)
    conversion, base, lead1, lead2 = a(13, 5, 13, 13), a(12, 6, 12, 12), a(11, 7, 11, NAN), a(10, 8, 12, 10)
    np.testing.assert_array_equal(ratings.ichimoku_vote(close, conversion, base, lead1, lead2), a(1, -1, 0, NAN))


def test_recommend_means_available_votes_and_falls_back_to_one_group():
    ma = np.array([[1, 1, -1], [NAN, NAN, NAN], [NAN, NAN, NAN], [1, 0, NAN]], dtype=float)
    other = np.array([[1, 0], [1, -1], [NAN, NAN], [-1, -1]], dtype=float)
    recommend_ma, recommend_other, recommend_all = ratings.recommend(ma, other)
    np.testing.assert_allclose(recommend_ma, [1 / 3, NAN, NAN, 0.5])
    np.testing.assert_allclose(recommend_other, [0.5, 0.0, NAN, -1.0])
    np.testing.assert_allclose(recommend_all, [(1 / 3 + 0.5) / 2, 0.0, NAN, -0.25])


def test_rating_label_boundaries_follow_tradingview():
    values = a(-1, -0.51, -0.5, -0.1, -0.09, 0.1, 0.11, 0.5, 0.51, NAN)
    np.testing.assert_array_equal(ratings.rating_label(values), a(-2, -2, -1, 0, 0, 0, 1, 1, 2, NAN))


def test_vote_input_not_1d_float_raises_value_error():
    with pytest.raises(ValueError, match=r"`rsi` must be 1-D \(n_observations,\), got shape \(2, 2\)"):
        ratings.rsi_vote(np.ones((2, 2)))


def test_vote_inputs_of_different_lengths_raise_value_error():
    with pytest.raises(ValueError, match=r"`macd` and `signal` must share the shape \(n_observations,\)"):
        ratings.macd_vote(np.ones(3), np.ones(4))


def test_recommend_votes_not_2d_raise_value_error():
    with pytest.raises(ValueError, match=r"`ma_votes` must be 2-D \(n_observations, n_votes\), got shape \(3,\)"):
        ratings.recommend(np.ones(3), np.ones((3, 2)))


def test_recommend_row_counts_differ_raise_value_error():
    with pytest.raises(ValueError, match="must have the same n_observations, got 3 and 4"):
        ratings.recommend(np.ones((3, 2)), np.ones((4, 2)))
