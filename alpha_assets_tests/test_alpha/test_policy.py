"""Tests of alpha.policy.apply_policy: vetoes with observed values, top N per cluster, each relaxation stage.

Constructed cases of 12 symbols in 3 clusters of 4, scores decreasing with the symbol number.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from alpha_assets.alpha.policy import (
    STAGE_FILL,
    STAGE_ONE_PER_CLUSTER,
    STAGE_RELAXED,
    STAGE_STRICT,
    VETO_MAX_VOLATILITY,
    VETO_MISSING_FEATURE,
    VETO_MISSING_FEATURE_ROW,
    VETO_MISSING_METADATA,
    VetoRecord,
    apply_policy,
)
from alpha_assets.alpha.selection_params import PolicyParams

SYMBOLS = [f"BINANCE_S{i:02d}USDT" for i in range(1, 13)]
CLUSTER_0, CLUSTER_1, CLUSTER_2 = SYMBOLS[:4], SYMBOLS[4:8], SYMBOLS[8:]
PARAMS = PolicyParams(
    max_kurtosis=20.0,
    max_volatility=1.5,
    min_efficiency=0.05,
    top_n_per_cluster=2,
    min_winners=6,
    relax_fraction=0.2,
)


@pytest.fixture()
def sel_case():
    scores = pd.Series(1.0 - np.arange(12) / 20.0, index=SYMBOLS)
    labels = pd.Series(np.repeat([0, 1, 2], 4), index=SYMBOLS)
    features = pd.DataFrame(
        {
            "symbol": SYMBOLS,
            "kurtosis_60d": 1.0,
            "volatility_60d": 0.5,
            "efficiency_ratio_20d": 0.3,
            "recommend_all": 0.5,
        }
    )
    return scores, labels, features


def _set(features, symbols, **values):
    out = features.copy()
    for column, value in values.items():
        out.loc[out["symbol"].isin(symbols), column] = value
    return out


def test_apply_policy_clean_case_stops_at_strict_stage(sel_case):
    scores, labels, features = sel_case
    result = apply_policy(scores, labels, features, PARAMS)
    assert result.stage_reached == STAGE_STRICT and result.met_minimum
    assert result.winners == (*CLUSTER_0[:2], *CLUSTER_1[:2], *CLUSTER_2[:2])
    assert result.vetoes == [] and result.winners_per_stage == {0: 6}


def test_apply_policy_vetoes_within_twenty_percent_reach_relaxed_stage(sel_case):
    scores, labels, features = sel_case
    features = _set(features, CLUSTER_1 + CLUSTER_2, volatility_60d=1.6)
    result = apply_policy(scores, labels, features, PARAMS)
    assert result.stage_reached == STAGE_RELAXED
    assert result.winners_per_stage == {0: 2, 1: 6}
    assert result.admitted_at[CLUSTER_0[0]] == STAGE_STRICT and result.admitted_at[CLUSTER_2[0]] == STAGE_RELAXED
    strict = [v for v in result.vetoes if v.stage == STAGE_STRICT]
    assert len(strict) == 8 and {v.reason for v in strict} == {VETO_MAX_VOLATILITY}
    assert strict[0] == VetoRecord(CLUSTER_1[0], 0, VETO_MAX_VOLATILITY, "volatility_60d", 1.6, 1.5)
    assert not [v for v in result.vetoes if v.stage == STAGE_RELAXED]


def test_apply_policy_cluster_without_survivor_reaches_one_per_cluster(sel_case):
    scores, labels, features = sel_case
    features = _set(_set(features, CLUSTER_1, volatility_60d=1.6), CLUSTER_2, volatility_60d=3.0)
    result = apply_policy(scores, labels, features, replace(PARAMS, min_winners=5))
    assert result.stage_reached == STAGE_ONE_PER_CLUSTER
    assert result.winners == (*CLUSTER_0[:2], *CLUSTER_1[:2], CLUSTER_2[0])
    assert result.admitted_at[CLUSTER_2[0]] == STAGE_ONE_PER_CLUSTER
    relaxed = [v for v in result.vetoes if v.stage == STAGE_RELAXED]
    assert [v.symbol for v in relaxed] == CLUSTER_2
    assert all(v.threshold == pytest.approx(1.8) and v.observed == 3.0 for v in relaxed)


def test_apply_policy_too_few_after_one_per_cluster_fills_by_score(sel_case):
    scores, labels, features = sel_case
    features = _set(_set(features, CLUSTER_1, volatility_60d=1.6), CLUSTER_2, volatility_60d=3.0)
    result = apply_policy(scores, labels, features, replace(PARAMS, min_winners=7))
    assert result.stage_reached == STAGE_FILL and result.met_minimum
    assert result.winners_per_stage == {0: 2, 1: 4, 2: 5, 3: 7}
    assert {s for s, stage in result.admitted_at.items() if stage == STAGE_FILL} == set(CLUSTER_0[2:])


def test_apply_policy_missing_data_never_admitted_and_minimum_unmet(sel_case):
    scores, labels, features = sel_case
    features = _set(features, CLUSTER_2[2:], kurtosis_60d=np.nan)
    features = features[features["symbol"] != CLUSTER_1[3]]
    result = apply_policy(
        scores,
        labels,
        features,
        replace(PARAMS, min_winners=20),
        metadata_symbols=set(SYMBOLS) - {CLUSTER_0[0]},
        required_features=["recommend_all"],
    )
    assert result.stage_reached == STAGE_FILL and not result.met_minimum
    excluded = {CLUSTER_0[0], CLUSTER_1[3], *CLUSTER_2[2:]}
    assert set(result.winners) == set(SYMBOLS) - excluded
    reasons = {(v.symbol, v.reason, v.feature) for v in result.vetoes}
    assert reasons == {
        (CLUSTER_1[3], VETO_MISSING_FEATURE_ROW, None),
        (CLUSTER_2[2], VETO_MISSING_FEATURE, "kurtosis_60d"),
        (CLUSTER_2[3], VETO_MISSING_FEATURE, "kurtosis_60d"),
        (CLUSTER_0[0], VETO_MISSING_METADATA, None),
    }


def test_apply_policy_equal_scores_broken_by_symbol_and_none_disables_threshold(sel_case):
    scores, labels, features = sel_case
    scores = scores.copy()
    scores[CLUSTER_0[1]] = scores[CLUSTER_0[0]]
    features = _set(features, SYMBOLS, volatility_60d=9.0)
    params = replace(PARAMS, max_volatility=None, top_n_per_cluster=1, min_winners=3)
    result = apply_policy(scores.iloc[::-1], labels, features, params)
    assert result.stage_reached == STAGE_STRICT
    assert result.winners == (CLUSTER_0[0], CLUSTER_1[0], CLUSTER_2[0])


def test_apply_policy_winners_ordered_by_score_then_symbol(sel_case):
    scores, labels, features = sel_case
    scores = pd.Series(np.random.default_rng(1).permutation(12) / 12.0, index=SYMBOLS)
    result = apply_policy(scores, labels, features, PARAMS)
    ordered = sorted(result.winners, key=lambda s: (-scores[s], s))
    assert list(result.winners) == ordered


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (
            lambda s, lab, f, p: (s.to_numpy(), lab, f, p),
            TypeError,
            "`scores` and `labels` must be pandas Series",
        ),
        (lambda s, lab, f, p: (s.iloc[1:], lab, f, p), ValueError, "same unique symbol index"),
        (lambda s, lab, f, p: (s, lab, f.drop(columns="symbol"), p), ValueError, "`symbol` column"),
        (lambda s, lab, f, p: (s, lab, pd.concat([f, f.iloc[:1]]), p), ValueError, "one row per symbol"),
        (lambda s, lab, f, p: (s, lab, f.to_numpy(), p), TypeError, "`features` must be a pandas DataFrame"),
        (lambda s, lab, f, p: (s, lab, f, {"min_winners": 3}), TypeError, "`params` must be a PolicyParams"),
    ],
    ids=["ndarray-scores", "mismatch", "no-symbol", "duplicate", "ndarray-features", "params"],
)
def test_apply_policy_bad_arguments_raise(sel_case, mutate, error, match):
    with pytest.raises(error, match=match):
        apply_policy(*mutate(*sel_case, PARAMS))
