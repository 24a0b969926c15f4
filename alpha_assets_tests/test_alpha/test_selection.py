"""Tests of alpha.selection.select (the HTR loop end to end) and alpha.synthesis (LONG/SHORT atoms, clipping).

Runs on the simulated sector market; checks atoms, JSON determinism and the ``all`` method. No file I/O.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from alpha_assets.alpha.clustering import ClusterMethod
from alpha_assets.alpha.policy import VETO_MISSING_METADATA
from alpha_assets.alpha.selection import select
from alpha_assets.alpha.selection_params import ClusteringParams, PolicyParams, SelectionMethod, SelectionParams
from alpha_assets.alpha.synthesis import Direction, synthesize_atoms


@pytest.fixture(scope="module")
def sel_result(sel_market):
    return select(sel_market.returns, sel_market.features, None, SelectionParams())


def test_select_htr_sector_market_clusters_and_atoms_consistent(sel_market, sel_result):
    symbols = sorted(sel_market.returns.columns)
    assert list(sel_result.scores.index) == symbols and list(sel_result.labels.index) == symbols
    assert adjusted_rand_score(sel_market.sectors[symbols], sel_result.labels) >= 0.9
    assert sel_result.linkage.shape == (len(symbols) - 1, 4)
    assert sel_result.met_minimum and len(sel_result.winners) >= SelectionParams().policy.min_winners
    assert list(sel_result.atoms["symbol"]) == list(sel_result.winners)
    ratings = sel_market.features.set_index("symbol")["recommend_all"]
    expected_direction = np.where(ratings[list(sel_result.winners)] >= 0, "LONG", "SHORT")
    np.testing.assert_array_equal(sel_result.atoms["direction"], expected_direction)
    np.testing.assert_array_equal(sel_result.atoms["cluster"], sel_result.labels[list(sel_result.winners)])
    assert sel_result.atom_returns.shape == (len(sel_market.returns), len(sel_result.winners))
    assert np.isfinite(sel_result.atom_returns.to_numpy()).all()


def test_select_htr_short_atoms_carry_negated_returns(sel_market, sel_result):
    shorts = sel_result.atoms.loc[sel_result.atoms["direction"] == "SHORT", "symbol"]
    assert len(shorts) > 0
    np.testing.assert_allclose(sel_result.atom_returns[shorts], -sel_market.returns[shorts].clip(upper=1.0))


def test_synthesize_atoms_short_clips_returns_above_one_and_zero_rating_is_long():
    index = pd.date_range("2024-01-01", periods=4, freq="D", tz="UTC")
    returns = pd.DataFrame({"A": [0.1, 2.5, -0.3, 1.0], "B": [0.2, -0.1, 0.0, 3.0]}, index=index)
    atoms = synthesize_atoms(returns, ["B", "A"], {"A": -0.4, "B": 0.0}, {"A": 1, "B": 0})
    assert atoms.table.to_dict("list") == {
        "symbol": ["B", "A"],
        "direction": ["LONG", "SHORT"],
        "cluster": [0, 1],
    }
    np.testing.assert_allclose(atoms.returns["A"], [-0.1, -1.0, 0.3, -1.0])
    np.testing.assert_allclose(atoms.returns["B"], returns["B"])
    assert Direction.SHORT.value == "SHORT"


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((["A", "A"], {"A": 1.0}, {"A": 0}), "must be unique"),
        ((["C"], {"C": 1.0}, {"C": 0}), "not columns of `returns`"),
        ((["A"], {"A": np.nan}, {"A": 0}), "finite rating .* \\['A'\\]"),
        ((["A"], {"A": 1.0}, {}), "label for every winner"),
    ],
    ids=["duplicate", "unknown", "nan-rating", "no-cluster"],
)
def test_synthesize_atoms_bad_arguments_raise(args, match):
    returns = pd.DataFrame({"A": [0.1, 0.2], "B": [0.0, 0.1]})
    with pytest.raises(ValueError, match=match):
        synthesize_atoms(returns, *args)


def test_select_same_inputs_shuffled_give_identical_json(sel_market, sel_result):
    rng = np.random.default_rng(21)
    columns = list(rng.permutation(sel_market.returns.columns))
    features = sel_market.features.iloc[rng.permutation(len(sel_market.features))]
    again = select(sel_market.returns[columns], features, None, SelectionParams())
    first, second = sel_result.to_json_dict(), again.to_json_dict()
    assert first == second
    text = json.dumps(first, allow_nan=False)
    assert text == json.dumps(json.loads(text), sort_keys=True)
    assert set(first) >= {"scores", "clusters", "vetoes", "stage_reached", "winners", "atoms", "linkage"}


def test_select_hdbscan_runs_and_recovers_sectors(sel_market):
    params = SelectionParams(clustering=ClusteringParams(method=ClusterMethod.HDBSCAN))
    result = select(sel_market.returns, sel_market.features, None, params)
    symbols = sorted(sel_market.returns.columns)
    assert adjusted_rand_score(sel_market.sectors[symbols], result.labels) >= 0.9


def test_select_metadata_missing_symbol_is_vetoed(sel_market, sel_result):
    dropped = sel_result.winners[0]
    metadata = pd.DataFrame({"symbol": [s for s in sel_market.returns.columns if s != dropped], "sector": "x"})
    result = select(sel_market.returns, sel_market.features, metadata, SelectionParams())
    assert dropped not in result.winners
    assert any(v.symbol == dropped and v.reason == VETO_MISSING_METADATA for v in result.vetoes)


def test_select_tight_thresholds_reach_a_later_stage(sel_market):
    strict = PolicyParams(max_volatility=0.05, max_kurtosis=0.1, min_efficiency=0.99, min_winners=6)
    result = select(sel_market.returns, sel_market.features, None, replace(SelectionParams(), policy=strict))
    assert result.stage_reached >= 2 and len(result.winners) >= 6
    assert len(set(result.atoms["cluster"])) == result.n_clusters


def test_select_all_method_every_symbol_long_in_one_cluster(sel_market):
    result = select(sel_market.returns, sel_market.features, None, SelectionParams(method=SelectionMethod.ALL))
    symbols = sorted(sel_market.returns.columns)
    assert result.winners == tuple(symbols) and result.vetoes == [] and result.linkage is None
    assert set(result.atoms["direction"]) == {"LONG"} and set(result.labels) == {0}
    pd.testing.assert_frame_equal(result.atom_returns, sel_market.returns[symbols])
    assert result.to_json_dict()["method"] == "all"


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (
            lambda r, f: (r.to_numpy(), f, None, SelectionParams()),
            TypeError,
            "`returns` must be a pandas DataFrame",
        ),
        (lambda r, f: (r.where(r < 0.1), f, None, SelectionParams()), ValueError, "must be finite"),
        (lambda r, f: (r.iloc[:1], f, None, SelectionParams()), ValueError, ">= 2 observations"),
        (lambda r, f: (r, f.drop(columns="symbol"), None, SelectionParams()), ValueError, "`symbol` column"),
        (
            lambda r, f: (r, f, pd.DataFrame({"x": [1]}), SelectionParams()),
            ValueError,
            "`metadata` must be None",
        ),
        (lambda r, f: (r, f, None, PolicyParams()), TypeError, "`params` must be a SelectionParams"),
    ],
    ids=["ndarray", "nan", "one-row", "no-symbol", "bad-metadata", "params"],
)
def test_select_bad_arguments_raise(sel_market, mutate, error, match):
    with pytest.raises(error, match=match):
        select(*mutate(sel_market.returns, sel_market.features))
