"""Tests of alpha.inference.score_symbols: rank probabilities, direction by sign, weighted geometric mean.

Hand-checked golden values on small frames, invariants on the simulated market's features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alpha_assets.alpha.inference import score_symbols


def _frame(**columns):
    symbols = columns.pop("symbol", ["C", "A", "B"])
    return pd.DataFrame({"symbol": symbols, **columns})


def test_score_symbols_one_feature_gives_rank_over_n_plus_one():
    scores = score_symbols(_frame(return_60d=[0.3, 0.1, 0.2]), {"return_60d": 2.0})
    assert list(scores.index) == ["A", "B", "C"]
    np.testing.assert_allclose(scores.to_numpy(), [0.25, 0.5, 0.75])
    assert scores.name == "score"


def test_score_symbols_negative_weight_means_lower_is_better():
    scores = score_symbols(_frame(volatility_60d=[0.3, 0.1, 0.2]), {"volatility_60d": -1.0})
    np.testing.assert_allclose(scores.to_numpy(), [0.75, 0.5, 0.25])


def test_score_symbols_two_features_weighted_geometric_mean():
    frame = _frame(return_60d=[0.3, 0.1, 0.2], volatility_60d=[0.9, 0.5, 0.1])
    scores = score_symbols(frame, {"return_60d": 1.0, "volatility_60d": -3.0})
    # Rows are C, A, B. A: p=(1/4, 2/4), B: (2/4, 3/4), C: (3/4, 1/4)
    expected = [(0.25 * 0.5**3) ** 0.25, (0.5 * 0.75**3) ** 0.25, (0.75 * 0.25**3) ** 0.25]
    np.testing.assert_allclose(scores.to_numpy(), expected, rtol=1e-12)


def test_score_symbols_ties_get_equal_scores():
    scores = score_symbols(_frame(return_60d=[0.2, 0.2, 0.1]), {"return_60d": 1.0})
    assert scores["B"] == 0.25 and scores["A"] == scores["C"] == 0.625


def test_score_symbols_nan_feature_left_out_and_weights_renormalised():
    frame = _frame(return_60d=[0.3, np.nan, 0.2], volatility_60d=[0.9, 0.5, 0.1])
    scores = score_symbols(frame, {"return_60d": 1.0, "volatility_60d": -1.0})
    # Rows are C, A, B. return_60d is ranked among the 2 symbols that have it: B p=1/3, C p=2/3.
    # Volatility (lower is better): B 3/4, A 2/4, C 1/4. A has only volatility.
    assert scores["A"] == pytest.approx(0.5)
    assert scores["B"] == pytest.approx(np.sqrt(1 / 3 * 3 / 4))
    assert scores["C"] == pytest.approx(np.sqrt(2 / 3 * 1 / 4))


def test_score_symbols_all_features_nan_gives_nan_score():
    scores = score_symbols(_frame(return_60d=[0.3, np.nan, 0.2]), {"return_60d": 1.0})
    assert np.isnan(scores["A"]) and scores.notna().sum() == 2


def test_score_symbols_row_order_does_not_matter(sel_market):
    weights = {"recommend_all": 1.0, "return_60d": 1.0, "volatility_60d": -0.5, "kurtosis_60d": -0.25}
    shuffled = sel_market.features.sample(frac=1.0, random_state=np.random.RandomState(5))
    a = score_symbols(sel_market.features, weights)
    b = score_symbols(shuffled, weights)
    pd.testing.assert_series_equal(a, b)
    assert a.between(0.0, 1.0, inclusive="neither").all()
    assert a.index.is_monotonic_increasing


@pytest.mark.parametrize(
    ("features", "weights", "error", "match"),
    [
        (np.zeros((3, 2)), {"x": 1.0}, TypeError, "`features` must be a pandas DataFrame"),
        (pd.DataFrame({"x": [1.0]}), {"x": 1.0}, ValueError, "`symbol` column"),
        (_frame(symbol=["A", "A", "B"], x=[1.0, 2.0, 3.0]), {"x": 1.0}, ValueError, "duplicates \\['A'\\]"),
        (_frame(x=[1.0, 2.0, 3.0]), {"y": 1.0}, ValueError, "absent from `features`"),
        (_frame(x=[1.0, 2.0, 3.0]), {"x": 0.0}, ValueError, "at least one non-zero"),
        (_frame(x=[1.0, 2.0, 3.0]), {"x": float("nan")}, ValueError, "must be finite"),
        (_frame(x=["a", "b", "c"]), {"x": 1.0}, TypeError, "must be numeric"),
        (_frame(x=[1.0, 2.0, 3.0]), [("x", 1.0)], TypeError, "`weights` must be a mapping"),
    ],
    ids=["ndarray", "no-symbol", "duplicate", "unknown", "all-zero", "nan-weight", "strings", "list"],
)
def test_score_symbols_bad_arguments_raise(features, weights, error, match):
    with pytest.raises(error, match=match):
        score_symbols(features, weights)
