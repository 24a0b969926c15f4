"""Lineage of the numbers: the optimised portfolio holds exactly the atoms ``selection.json`` decided.

A property over many seeded runs: random sector markets (sizes, lengths, ratings), random selection and
optimisation parameters, the selection written and read back as JSON exactly as the assets do, then
``pipeline.run_optimization`` and ``pipeline.portfolio_document``. Every (symbol, direction) of every profile
must be an atom of the selection, with its cluster; ``method = all`` must give long-only portfolios whatever
the ratings say. A selection edited by hand (directions against the ratings) is followed as written.
Leaves the optimisers' numbers to test_optimize.py / test_portfolio.py and the files to test_defs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from alpha_assets.alpha import pipeline
from alpha_assets.alpha.optimization_params import OptimizationParams, Profile
from alpha_assets.alpha.selection_params import ClusteringParams, PolicyParams, SelectionMethod, SelectionParams
from alpha_assets.alpha.snapshot import FrozenRun

#: Seeded runs of the property; each one draws its own universe and parameters.
SEEDS = range(16)
RUN_ID = "LINEAGE_RUN"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _frozen(market, seed: int) -> FrozenRun:
    returns = market.returns
    symbols = list(returns.columns)
    metadata = pd.DataFrame({"symbol": symbols, "market": "BINANCE", "sector": [f"S{s}" for s in market.sectors]})
    return FrozenRun(
        run_id=RUN_ID,
        as_of=returns.index[-1],
        returns=returns,
        features=market.features,
        metadata=metadata,
        manifest={},
        snapshot={
            "inputs": {"export/candidates.json": _digest(str(seed))},
            "frozen": {"manifest_resolved.json": _digest("m")},
        },
    )


def _random_params(rng: np.random.Generator) -> tuple[SelectionParams, OptimizationParams]:
    method = SelectionMethod.ALL if rng.random() < 0.4 else SelectionMethod.HTR
    selection = SelectionParams(
        method=method,
        clustering=ClusteringParams(min_clusters=int(rng.integers(2, 4)), max_clusters=int(rng.integers(4, 9))),
        policy=replace(PolicyParams(), top_n_per_cluster=int(rng.integers(1, 5)), min_winners=int(rng.integers(3, 12))),
    )
    # ``all`` puts every atom in cluster 0, where any explicit cap below 1 is infeasible by construction.
    capped = method is SelectionMethod.HTR and rng.random() < 0.5
    optimization = OptimizationParams(cluster_cap=float(rng.uniform(0.5, 1.0)) if capped else None)
    return selection, optimization


def _run(frozen: FrozenRun, selection_params: SelectionParams, optimization: OptimizationParams):
    result = pipeline.run_selection(frozen, selection_params)
    # Through JSON, as selection.json is written by one asset and read by the next.
    document = json.loads(json.dumps({"run_id": frozen.run_id, **result.to_json_dict()}))
    results, atoms, _ = pipeline.run_optimization(frozen, document, optimization)
    return document, pipeline.portfolio_document(frozen, results, atoms)


def _assert_rows_are_atoms(selection_doc: dict, portfolio_doc: dict) -> int:
    atoms = {a["symbol"]: (a["direction"], a["cluster"]) for a in selection_doc["atoms"]}
    checked = 0
    for name, profile in portfolio_doc["profiles"].items():
        for row in profile["rows"]:
            assert row["Symbol"] in atoms, (name, row["Symbol"])
            direction, cluster = atoms[row["Symbol"]]
            assert row["Direction"] in (direction, "FLAT"), (name, row)
            assert row["Cluster_ID"] == cluster, (name, row)
            sign = -1.0 if direction == "SHORT" else 1.0
            assert row["Net_Weight"] == pytest.approx(sign * row["Weight"]), (name, row)
            checked += 1
        if profile["status"] == "optimal":
            assert {row["Symbol"] for row in profile["rows"]} == set(atoms), name
    return checked


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}" for s in SEEDS])
def test_portfolio_rows_are_atoms_of_the_selection_over_random_runs(sel_simulate, seed):
    rng = np.random.default_rng(1000 + seed)
    sizes = tuple(int(n) for n in rng.integers(2, 7, size=int(rng.integers(2, 5))))
    market = sel_simulate(seed, sector_sizes=sizes, n_days=int(rng.integers(260, 420)))
    selection_params, optimization = _random_params(rng)
    frozen = _frozen(market, seed)
    selection_doc, portfolio_doc = _run(frozen, selection_params, optimization)

    assert _assert_rows_are_atoms(selection_doc, portfolio_doc) > 0
    assert any(p["status"] == "optimal" for p in portfolio_doc["profiles"].values())
    if selection_params.method is SelectionMethod.ALL:
        for name, profile in portfolio_doc["profiles"].items():
            assert {row["Direction"] for row in profile["rows"]} <= {"LONG", "FLAT"}, name
            assert all(row["Net_Weight"] >= 0.0 for row in profile["rows"]), name


def test_method_all_is_long_only_even_when_every_rating_is_negative(sel_market):
    features = sel_market.features.assign(recommend_all=-0.9)
    frozen = replace(_frozen(sel_market, 0), features=features)
    selection_doc, portfolio_doc = _run(frozen, SelectionParams(method=SelectionMethod.ALL), OptimizationParams())
    assert {a["direction"] for a in selection_doc["atoms"]} == {"LONG"}
    for name, profile in portfolio_doc["profiles"].items():
        assert profile["status"] == "optimal", name
        assert {row["Direction"] for row in profile["rows"]} <= {"LONG", "FLAT"}, name
        assert {row["Cluster_ID"] for row in profile["rows"]} == {0}, name


def test_run_optimization_follows_a_selection_edited_against_the_ratings(sel_market):
    frozen = _frozen(sel_market, 0)
    symbols = sorted(sel_market.returns.columns)[:6]
    ratings = sel_market.features.set_index("symbol")["recommend_all"]
    # Each direction the opposite of what the rating's sign would give, clusters chosen freely.
    atoms = [
        {"symbol": s, "direction": "LONG" if ratings[s] < 0 else "SHORT", "cluster": i % 2}
        for i, s in enumerate(symbols)
    ]
    document = {"run_id": RUN_ID, "atoms": atoms, "winners": symbols, "clusters": dict.fromkeys(symbols, 7)}
    params = OptimizationParams(profiles=(Profile.EQUAL_WEIGHT, Profile.MIN_VARIANCE))
    results, table, atom_returns = pipeline.run_optimization(frozen, document, params)
    assert table[["symbol", "direction", "cluster"]].to_dict("records") == atoms
    for atom in atoms:
        raw = sel_market.returns[atom["symbol"]]
        expected = -raw.clip(upper=1.0) if atom["direction"] == "SHORT" else raw
        np.testing.assert_array_equal(atom_returns[atom["symbol"]].to_numpy(), expected.to_numpy())
    _assert_rows_are_atoms({"atoms": atoms}, pipeline.portfolio_document(frozen, results, table))


@pytest.mark.parametrize(
    ("document", "match"),
    [
        ({"run_id": "OTHER_RUN", "atoms": []}, "of run 'OTHER_RUN', not of the frozen run"),
        ({"atoms": [{"symbol": "NOPE", "direction": "LONG", "cluster": 0}]}, "not columns of `returns`"),
        ({"atoms": [{"symbol": "X", "direction": "FLAT", "cluster": 0}]}, "must be LONG or SHORT"),
        ({"atoms": [{"symbol": "X", "direction": "LONG"}]}, "missing \\['cluster'\\]"),
        ({"atoms": [{"symbol": "X", "direction": "LONG", "cluster": 1.5}]}, "must be an integer"),
    ],
    ids=["other-run", "unknown-symbol", "bad-direction", "no-cluster", "float-cluster"],
)
def test_run_optimization_bad_selection_raises(sel_market, document, match):
    frozen = _frozen(sel_market, 0)
    symbol = sorted(sel_market.returns.columns)[0]
    for atom in document["atoms"]:
        atom["symbol"] = symbol if atom["symbol"] == "X" else atom["symbol"]
    with pytest.raises(ValueError, match=match):
        pipeline.run_optimization(frozen, document, OptimizationParams())
