"""Tests of alpha.returns: simple returns on the date grid, trimming order and reasons, input validation.

Uses the simulated sector market of conftest.py with planted bad symbols; no file or network I/O.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alpha_assets.alpha.returns import (
    STAGE_MAX_ABS_RETURN,
    STAGE_MAX_MISSING,
    STAGE_MIN_HISTORY,
    STAGE_ROW_NAN,
    STAGE_ZERO_VARIANCE,
    compute_returns_matrix,
    toxic_return_drops,
)
from alpha_assets.alpha.selection_params import ReturnsParams


@pytest.fixture()
def sel_planted(sel_market):
    """The clean market plus five planted symbols: short history, jump, flat, holey, and a short gap."""
    closes = sel_market.closes.copy()
    n_dates = len(closes)
    rng = np.random.default_rng(3)
    base = closes.iloc[:, 0].to_numpy()
    short = base.copy()
    short[: n_dates - 100] = np.nan
    jump = base.copy()
    jump[200] *= 8.0  # +700 % then -87.5 %
    holey = base.copy()
    holey[rng.choice(np.arange(1, n_dates), size=int(0.08 * n_dates), replace=False)] = np.nan
    gap = closes.iloc[:, 1].to_numpy().copy()
    gap[300:303] = np.nan
    planted = pd.DataFrame(
        {
            "BINANCE_SHORTUSDT": short,
            "BINANCE_JUMPUSDT": jump,
            "BINANCE_FLATUSDT": np.full(n_dates, 42.0),
            "BINANCE_HOLEYUSDT": holey,
            "BINANCE_GAPUSDT": gap,
        },
        index=closes.index,
    )
    return pd.concat([closes, planted], axis=1)


def test_compute_returns_matrix_clean_market_keeps_every_symbol_and_row(sel_market):
    result = compute_returns_matrix(sel_market.closes, ReturnsParams())
    assert result.drops == []
    assert result.returns.shape == (len(sel_market.closes) - 1, sel_market.closes.shape[1])
    expected = sel_market.closes.pct_change(fill_method=None).iloc[1:]
    np.testing.assert_allclose(result.returns.to_numpy(), expected.to_numpy(), rtol=1e-12)
    assert str(result.returns.index.tz) == "UTC"


def test_compute_returns_matrix_planted_bad_symbols_dropped_with_their_reasons(sel_planted):
    result = compute_returns_matrix(sel_planted, ReturnsParams())
    symbol_drops = {d.key: d for d in result.drops if d.axis == "symbol"}
    assert {k: d.stage for k, d in symbol_drops.items()} == {
        "BINANCE_SHORTUSDT": STAGE_MIN_HISTORY,
        "BINANCE_JUMPUSDT": STAGE_MAX_ABS_RETURN,
        "BINANCE_FLATUSDT": STAGE_ZERO_VARIANCE,
        "BINANCE_HOLEYUSDT": STAGE_MAX_MISSING,
    }
    assert symbol_drops["BINANCE_SHORTUSDT"].observed == 100.0
    assert symbol_drops["BINANCE_SHORTUSDT"].threshold == 252.0
    jump = sel_planted["BINANCE_JUMPUSDT"]
    assert symbol_drops["BINANCE_JUMPUSDT"].observed == pytest.approx(jump.iloc[200] / jump.iloc[199] - 1.0)
    assert symbol_drops["BINANCE_JUMPUSDT"].observed > 6.0
    assert "BINANCE_JUMPUSDT" in symbol_drops["BINANCE_JUMPUSDT"].reason
    holey_missing = sel_planted["BINANCE_HOLEYUSDT"].pct_change(fill_method=None).iloc[1:].isna().mean()
    assert symbol_drops["BINANCE_HOLEYUSDT"].observed == pytest.approx(holey_missing)
    assert symbol_drops["BINANCE_HOLEYUSDT"].observed > 0.10
    assert "BINANCE_GAPUSDT" in result.returns.columns
    assert list(result.drops_frame().columns) == ["axis", "key", "stage", "reason", "observed", "threshold"]


def test_compute_returns_matrix_toxic_drop_names_the_day_and_signed_value(sel_planted):
    result = compute_returns_matrix(sel_planted, ReturnsParams())
    jump_day = sel_planted.index[200]
    closes = sel_planted["BINANCE_JUMPUSDT"]
    value = closes.iloc[200] / closes.iloc[199] - 1.0
    (jump,) = [d for d in result.drops if d.key == "BINANCE_JUMPUSDT"]
    assert jump.at == jump_day.isoformat()
    assert f"{value:+.6g} ({value:+.0%}) on {jump_day.date()}" in jump.reason
    assert "threshold 5 (500%)" in jump.reason
    assert all(d.at is None for d in result.drops if d.stage != STAGE_MAX_ABS_RETURN)
    stored = [d.to_json_dict() for d in result.drops]
    assert toxic_return_drops(stored) == [
        {
            "symbol": "BINANCE_JUMPUSDT",
            "date": str(jump_day.date()),
            "abs_return": pytest.approx(value),
            "threshold": 5.0,
            "reason": jump.reason,
        }
    ]
    # A limit of 8 keeps the +700 % day: the stage reads the live parameter, not a constant.
    loose = compute_returns_matrix(sel_planted, ReturnsParams(max_abs_return=8.0))
    assert toxic_return_drops([d.to_json_dict() for d in loose.drops]) == []


def test_toxic_return_drops_of_a_run_frozen_before_dates_were_recorded():
    old = {
        "axis": "symbol",
        "key": "X",
        "stage": STAGE_MAX_ABS_RETURN,
        "reason": "r",
        "observed": 6.0,
        "threshold": 5.0,
    }
    assert toxic_return_drops([old])[0]["date"] is None


def test_compute_returns_matrix_short_and_flat_symbol_dropped_once_at_first_stage(sel_market):
    closes = sel_market.closes.copy()
    flat_short = np.full(len(closes), 5.0)
    flat_short[:-50] = np.nan
    closes["BINANCE_BOTHUSDT"] = flat_short
    result = compute_returns_matrix(closes, ReturnsParams())
    assert [(d.key, d.stage) for d in result.drops] == [("BINANCE_BOTHUSDT", STAGE_MIN_HISTORY)]


def test_compute_returns_matrix_crypto_min_history_lets_young_symbol_reach_missing_stage(sel_planted):
    result = compute_returns_matrix(sel_planted, ReturnsParams(min_history=90))
    short = [d for d in result.drops if d.key == "BINANCE_SHORTUSDT"]
    assert len(short) == 1 and short[0].stage == STAGE_MAX_MISSING
    assert short[0].observed == pytest.approx((len(sel_planted) - 1 - 99) / (len(sel_planted) - 1))


def test_compute_returns_gap_in_one_symbol_gives_nan_not_jump():
    index = pd.date_range("2024-01-01", periods=8, freq="D", tz="UTC")
    closes = pd.DataFrame(
        {
            "BINANCE_AAAUSDT": [100.0, 101.0, np.nan, np.nan, 130.0, 131.0, 130.0, 132.0],
            "BINANCE_BBBUSDT": [50.0, 51.0, 50.0, 52.0, 53.0, 52.0, 54.0, 55.0],
        },
        index=index,
    )
    result = compute_returns_matrix(closes, ReturnsParams(min_history=2, max_missing_fraction=0.5))
    # Rows 2, 3 (NaN close) and 4 (no previous close) are dropped; 130/101 - 1 never appears.
    assert list(result.returns.index) == [index[1], index[5], index[6], index[7]]
    assert not np.isclose(result.returns["BINANCE_AAAUSDT"], 130.0 / 101.0 - 1.0).any()
    np.testing.assert_allclose(result.returns["BINANCE_AAAUSDT"], [0.01, 131 / 130 - 1, 130 / 131 - 1, 132 / 130 - 1])
    row_drops = [d for d in result.drops if d.axis == "row"]
    assert [d.key for d in row_drops] == [index[i].isoformat() for i in (2, 3, 4)]
    assert all(d.stage == STAGE_ROW_NAN and d.observed == 1.0 and "BINANCE_AAAUSDT" in d.reason for d in row_drops)


def test_compute_returns_matrix_never_mixes_symbols(sel_planted):
    result = compute_returns_matrix(sel_planted, ReturnsParams())
    own = sel_planted.pct_change(fill_method=None).loc[result.returns.index, result.returns.columns]
    np.testing.assert_allclose(result.returns.to_numpy(), own.to_numpy(), rtol=1e-12)


def _closes(index):
    return pd.DataFrame({"BINANCE_AAAUSDT": np.linspace(1.0, 2.0, len(index))}, index=index)


@pytest.mark.parametrize(
    ("closes", "error", "match"),
    [
        ([1.0, 2.0], TypeError, "`closes` must be a pandas DataFrame"),
        (_closes(pd.date_range("2024-01-01", periods=3, freq="D")), ValueError, "tz-aware UTC"),
        (
            _closes(pd.date_range("2024-01-01", periods=3, freq="D", tz="Europe/Paris")),
            ValueError,
            "tz-aware UTC",
        ),
        (
            _closes(pd.DatetimeIndex(["2024-01-02", "2024-01-01"], tz="UTC")),
            ValueError,
            "strictly increasing",
        ),
        (_closes(pd.DatetimeIndex(["2024-01-01 12:00"], tz="UTC")), ValueError, "UTC midnights"),
        (
            pd.DataFrame([[1.0, 2.0]], columns=["A", "A"], index=pd.DatetimeIndex(["2024-01-01"], tz="UTC")),
            ValueError,
            "duplicates",
        ),
        (
            pd.DataFrame({"A": [1.0, -2.0]}, index=pd.date_range("2024-01-01", periods=2, tz="UTC")),
            ValueError,
            "positive and finite",
        ),
        (
            pd.DataFrame({"A": ["x", "y"]}, index=pd.date_range("2024-01-01", periods=2, tz="UTC")),
            TypeError,
            "numeric",
        ),
    ],
    ids=["not-frame", "naive", "paris", "unsorted", "noon", "dup-columns", "negative", "strings"],
)
def test_compute_returns_matrix_bad_closes_raise(closes, error, match):
    with pytest.raises(error, match=match):
        compute_returns_matrix(closes, ReturnsParams())


def test_compute_returns_matrix_bad_params_raise(sel_market):
    with pytest.raises(TypeError, match="`params` must be a ReturnsParams"):
        compute_returns_matrix(sel_market.closes, {"min_history": 10})
