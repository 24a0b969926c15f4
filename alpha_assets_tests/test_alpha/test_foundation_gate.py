"""Tests of alpha.foundation_gate: each gate predicate passes on clean returns, fails naming culprits on bad ones.

Pure predicates only; the blocking Dagster checks built on them are tested under test_defs.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from alpha_assets.alpha.foundation_gate import (
    CHECK_DENSITY,
    CHECK_FEATURES_PRESENT,
    CHECK_INDEX_UTC_INCREASING,
    CHECK_MAX_ABS_RETURN,
    CHECK_NO_NAN,
    check_density,
    check_features_present,
    check_index_utc_increasing,
    check_max_abs_return,
    check_no_nan,
    run_gate,
)
from alpha_assets.alpha.selection_params import FEATURE_COLUMNS, GateParams


@pytest.fixture()
def sel_clean(sel_market):
    return sel_market.returns.copy()


def test_run_gate_clean_inputs_every_verdict_passes_in_order(sel_clean, sel_market):
    verdicts = run_gate(sel_clean, sel_market.features, GateParams(), FEATURE_COLUMNS)
    assert [v.name for v in verdicts] == [
        CHECK_NO_NAN,
        CHECK_MAX_ABS_RETURN,
        CHECK_INDEX_UTC_INCREASING,
        CHECK_DENSITY,
        CHECK_FEATURES_PRESENT,
    ]
    assert all(v.passed for v in verdicts), [v.message for v in verdicts if not v.passed]
    json.dumps([v.to_json_dict() for v in verdicts], allow_nan=False)


def test_check_no_nan_one_nan_fails_naming_symbol_and_date(sel_clean):
    symbol, date = sel_clean.columns[3], sel_clean.index[17]
    sel_clean.loc[date, symbol] = np.nan
    verdict = check_no_nan(sel_clean)
    assert not verdict.passed
    assert verdict.observed["n_nan"] == 1
    assert verdict.observed["symbols"] == [symbol] and verdict.observed["dates"] == [date.isoformat()]
    assert symbol in verdict.message and date.isoformat() in verdict.message


def test_check_max_abs_return_large_return_fails_naming_cell(sel_clean):
    assert check_max_abs_return(sel_clean, 5.0).passed
    symbol, date = sel_clean.columns[5], sel_clean.index[100]
    sel_clean.loc[date, symbol] = 1570.0  # the +157,000 % leak of the ancestor design
    verdict = check_max_abs_return(sel_clean, 5.0)
    assert not verdict.passed
    assert verdict.observed["max_abs_return"] == 1570.0
    assert verdict.observed["offenders"] == [{"symbol": symbol, "date": date.isoformat(), "value": 1570.0}]
    assert symbol in verdict.message and "1570" in verdict.message


def test_check_max_abs_return_value_at_limit_fails(sel_clean):
    sel_clean.iloc[0, 0] = -5.0
    assert not check_max_abs_return(sel_clean, 5.0).passed


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda r: r.tz_localize(None), "tz is None"),
        (lambda r: r.tz_convert("America/New_York"), "America/New_York"),
        (lambda r: r.iloc[[0, 2, 1, 3]], "not strictly after"),
        (lambda r: r.iloc[[0, 1, 1, 2]], "not strictly after"),
        (lambda r: r.reset_index(drop=True), "not DatetimeIndex"),
    ],
    ids=["naive", "new-york", "unsorted", "duplicate", "range-index"],
)
def test_check_index_utc_increasing_bad_index_fails(sel_clean, mutate, fragment):
    verdict = check_index_utc_increasing(mutate(sel_clean.iloc[:4]))
    assert not verdict.passed
    assert fragment in verdict.message


def test_check_index_utc_increasing_names_offending_date(sel_clean):
    swapped = sel_clean.iloc[[0, 2, 1, 3]]
    verdict = check_index_utc_increasing(swapped)
    assert verdict.observed["violations"] == [sel_clean.index[1].isoformat()]
    assert check_index_utc_increasing(sel_clean).passed


def test_check_density_too_few_assets_and_rows_fails_with_numbers(sel_clean):
    verdict = check_density(sel_clean.iloc[:30, :4], min_assets=5, min_observations=60)
    assert not verdict.passed
    assert verdict.observed == {"n_assets": 4, "n_observations": 30}
    assert "4 symbol(s) < 5" in verdict.message and "30 observation(s) < 60" in verdict.message
    assert check_density(sel_clean, min_assets=5, min_observations=60).passed


def test_check_features_present_stale_symbol_fails_naming_latest_date(sel_clean, sel_market):
    rows = sel_market.features.copy()
    stale = rows["symbol"].iloc[2]
    rows.loc[2, "date"] = rows.loc[2, "date"] - pd.Timedelta(days=1)
    as_of = sel_clean.index[-1]
    verdict = check_features_present(rows, sel_clean.columns, as_of)
    assert not verdict.passed
    assert verdict.observed["missing_symbols"] == [stale]
    day_before = (as_of - pd.Timedelta(days=1)).isoformat()
    assert verdict.observed["stale_dates"] == {stale: day_before}
    assert stale in verdict.message and day_before in verdict.message


def test_check_features_present_absent_symbol_and_column_fail(sel_clean, sel_market):
    rows = sel_market.features.drop(index=[0]).drop(columns=["kurtosis_60d"])
    verdict = check_features_present(rows, sel_clean.columns, sel_clean.index[-1], ["kurtosis_60d"])
    assert not verdict.passed
    assert verdict.observed["missing_symbols"] == [sel_market.features["symbol"].iloc[0]]
    assert verdict.observed["missing_columns"] == ["kurtosis_60d"]
    assert "kurtosis_60d" in verdict.message


def test_run_gate_empty_returns_fails_density_and_features(sel_market):
    empty = sel_market.returns.iloc[:0]
    verdicts = {v.name: v for v in run_gate(empty, sel_market.features, GateParams())}
    assert not verdicts[CHECK_DENSITY].passed
    assert not verdicts[CHECK_FEATURES_PRESENT].passed
    assert "no as-of date" in verdicts[CHECK_FEATURES_PRESENT].message
    assert verdicts[CHECK_NO_NAN].passed and verdicts[CHECK_MAX_ABS_RETURN].passed


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r, f: check_no_nan(r.to_numpy()), TypeError, "`returns` must be a pandas DataFrame"),
        (lambda r, f: check_max_abs_return(r, 0.0), ValueError, "`limit` must be a positive"),
        (lambda r, f: check_density(r, 0, 10), ValueError, "`min_assets` must be an integer >= 1"),
        (
            lambda r, f: check_features_present(f.drop(columns="date"), r.columns, r.index[-1]),
            ValueError,
            "missing \\['date'\\]",
        ),
        (
            lambda r, f: check_features_present(f.assign(date=f["date"].dt.tz_localize(None)), r.columns, r.index[-1]),
            ValueError,
            "tz-aware UTC timestamps",
        ),
        (
            lambda r, f: check_features_present(f, r.columns, r.index[-1].tz_localize(None)),
            ValueError,
            "`as_of`",
        ),
        (lambda r, f: run_gate(r, f, {"min_assets": 1}), TypeError, "`params` must be a GateParams"),
    ],
    ids=["ndarray", "limit", "min-assets", "no-date", "naive-date", "naive-as-of", "params"],
)
def test_gate_predicates_bad_arguments_raise(sel_clean, sel_market, call, error, match):
    with pytest.raises(error, match=match):
        call(sel_clean, sel_market.features)
