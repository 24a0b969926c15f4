"""A run's documents built by the real pure Alpha pipeline on a seeded market (prefix ``rep_``).

The market comes from the selection tests' simulator (correlated, fat-tailed sectors); a young symbol is
dropped by the real returns trimming; gate, selection, optimisation and the flattened portfolio are the real
functions. ``max_sharpe`` is replaced by the result of an infeasible run (weight cap too low), so the
documents hold a failed profile with its reason, as a real run can.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alpha_assets.alpha.foundation_gate import run_gate
from alpha_assets.alpha.optimization_params import OptimizationParams, Profile
from alpha_assets.alpha.optimize import optimize_all
from alpha_assets.alpha.pipeline import gate_document
from alpha_assets.alpha.portfolio import build_portfolio_document, encode_portfolio_json
from alpha_assets.alpha.returns import compute_returns_matrix
from alpha_assets.alpha.selection import SelectionResult, select
from alpha_assets.alpha.selection_params import FEATURE_COLUMNS, GateParams, ReturnsParams, SelectionParams
from alpha_assets_tests.test_alpha.conftest import sel_simulate_market

REP_RUN_ID = "20240210T000000Z"
REP_SHA = "ab" * 32
REP_FAILED_PROFILE = "max_sharpe"


@dataclass(frozen=True)
class RepRun:
    """The documents of one run, as the Alpha cycle writes them (JSON round-tripped)."""

    returns: pd.DataFrame  # (n_observations, n_assets): the trimmed returns matrix
    selection: SelectionResult
    selection_doc: dict[str, Any]
    gate_doc: dict[str, Any]
    drops: list[dict[str, Any]]
    portfolio_doc: dict[str, Any]


def _json_roundtrip(document: Any) -> Any:
    return json.loads(json.dumps(document, sort_keys=True, allow_nan=False))


def rep_build_run(seed: int = 5) -> RepRun:
    """Simulate 3 sectors (17 symbols) over 400 days, make one symbol young, run the pure pipeline."""
    market = sel_simulate_market(seed, sector_sizes=(6, 6, 5), n_days=400, start="2023-01-07")
    closes = market.closes.copy()
    young = closes.columns[0]
    closes.iloc[:340, 0] = np.nan  # 60 bars of history: dropped by the min-history trim
    trimmed = compute_returns_matrix(closes, ReturnsParams())
    returns = trimmed.returns
    features = market.features[market.features["symbol"] != young].reset_index(drop=True)
    metadata = pd.DataFrame(
        {
            "symbol": list(returns.columns),
            "market": "BINANCE",
            "sector": [f"sector{market.sectors[s]}" for s in returns.columns],
        }
    )
    as_of = returns.index[-1]
    verdicts = run_gate(returns, features, GateParams(), required_columns=FEATURE_COLUMNS)
    selection = select(returns, features, metadata, SelectionParams())
    atoms = selection.atoms.merge(metadata, on="symbol", how="left")
    atom_values = selection.atom_returns[list(atoms["symbol"])].to_numpy(dtype=np.float64)
    clusters = atoms["cluster"].to_numpy(dtype=np.int64)
    results = optimize_all(
        atom_values, clusters, OptimizationParams(periods_per_year=365), symbols=list(atoms["symbol"])
    )
    infeasible = OptimizationParams(
        periods_per_year=365, profiles=(Profile.MAX_SHARPE,), cap_clusters=False, max_weight=0.01
    )
    results[Profile.MAX_SHARPE] = optimize_all(atom_values, clusters, infeasible, symbols=list(atoms["symbol"]))[
        Profile.MAX_SHARPE
    ]
    document = build_portfolio_document(
        run_id=REP_RUN_ID,
        as_of=as_of.strftime("%Y-%m-%d"),
        manifest_sha256=REP_SHA,
        input_fingerprints={"frozen/returns_matrix.parquet": "cd" * 32},
        atoms=atoms,
        results=results,
        cluster_registry=None,
    )
    drops = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in dataclasses.asdict(d).items()}
        for d in trimmed.drops
    ]
    return RepRun(
        returns=returns,
        selection=selection,
        selection_doc=_json_roundtrip(
            {"run_id": REP_RUN_ID, "as_of": as_of.strftime("%Y-%m-%d"), **selection.to_json_dict()}
        ),
        gate_doc=_json_roundtrip(gate_document(REP_RUN_ID, verdicts)),
        drops=_json_roundtrip(drops),
        portfolio_doc=json.loads(encode_portfolio_json(document)),
    )


@pytest.fixture(scope="session")
def rep_run() -> RepRun:
    """One run's documents (seed 5): 16 assets after the trim, one failed profile."""
    return rep_build_run()
