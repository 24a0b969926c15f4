"""The Alpha cycle's stages over a frozen run: gate, selection, optimisation, flattened portfolio.

Each stage is a plain function of the frozen inputs and the resolved parameters, so the Dagster assets,
the command line and the benchmark run exactly the same code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pandas as pd

from alpha_assets.alpha.foundation_gate import GateVerdict, run_gate
from alpha_assets.alpha.optimization_params import OptimizationParams, Profile
from alpha_assets.alpha.optimize import OptimizationResult, optimize_all
from alpha_assets.alpha.portfolio import build_portfolio_document
from alpha_assets.alpha.selection import SelectionResult, select
from alpha_assets.alpha.selection_params import FEATURE_COLUMNS, GateParams, ReturnsParams, SelectionParams
from alpha_assets.alpha.snapshot import FrozenRun
from alpha_assets.alpha.synthesis import atoms_from_selection
from alpha_assets.lakehouse.paths import RunDataFile
from alpha_assets.parameters import parse_section

#: The manifest sections the Alpha cycle owns.
ALPHA_SECTIONS: dict[str, type] = {
    "returns": ReturnsParams,
    "gate": GateParams,
    "selection": SelectionParams,
    "optimization": OptimizationParams,
}


def alpha_params(manifest_document: Mapping[str, Any]) -> dict[str, Any]:
    """The Alpha sections of a resolved (frozen) manifest document, as parameter dataclasses."""
    sections = manifest_document["sections"]
    return {name: parse_section(cls, sections.get(name, {}), where=name) for name, cls in ALPHA_SECTIONS.items()}


def evaluate_gate(frozen: FrozenRun, params: GateParams) -> list[GateVerdict]:
    """Every foundation-gate verdict of the run (none short-circuits)."""
    return run_gate(frozen.returns, frozen.features, params, required_columns=FEATURE_COLUMNS)


def gate_document(run_id: str, verdicts: list[GateVerdict]) -> dict[str, Any]:
    """``gate_verdict.json``: whether the gate passed and each check's verdict."""
    return {
        "run_id": run_id,
        "passed": all(v.passed for v in verdicts),
        "checks": {
            v.name: {
                "passed": v.passed,
                "message": v.message,
                "observed": v.observed,
                "threshold": v.threshold,
            }
            for v in verdicts
        },
    }


def run_selection(frozen: FrozenRun, params: SelectionParams) -> SelectionResult:
    """The HTR selection (or every symbol, with ``method = all``) on the frozen returns and features."""
    return select(frozen.returns, frozen.features, frozen.metadata, params)


def run_optimization(
    frozen: FrozenRun, selection: Mapping[str, Any], params: OptimizationParams
) -> tuple[dict[Profile, OptimizationResult], pd.DataFrame, pd.DataFrame]:
    """Optimise every profile over exactly the atoms of the selection (symbols, directions, clusters).

    Parameters
    ----------
    frozen : FrozenRun
        The run's frozen returns and features.
    selection : Mapping
        The ``selection.json`` document; its ``atoms`` are optimised as they are, nothing is re-decided.
    params : OptimizationParams
        Profiles, covariance, bounds and caps; ``periods_per_year`` None takes the returns' calendar
        (:func:`returns_periods_per_year`).

    Returns
    -------
    results : dict of Profile to OptimizationResult
    atoms : DataFrame of shape (n_atoms, 5)
        ``symbol``, ``direction``, ``cluster``, ``market``, ``sector``.
    atom_returns : DataFrame of shape (n_observations, n_atoms)
        The atoms' return streams the optimiser saw (SHORT streams negated and clipped).

    Raises
    ------
    ValueError
        If the selection belongs to another RUN_ID or its atoms are malformed or not in the frozen returns.
    """
    if selection.get("run_id", frozen.run_id) != frozen.run_id:
        raise ValueError(f"`selection` is of run {selection['run_id']!r}, not of the frozen run {frozen.run_id!r}")
    if params.periods_per_year is None:
        params = dataclasses.replace(params, periods_per_year=returns_periods_per_year(frozen))
    atoms = atoms_from_selection(frozen.returns, selection["atoms"])
    table = atoms.table.merge(frozen.metadata, on="symbol", how="left")
    results = optimize_all(
        atoms.returns.to_numpy(dtype="float64"),
        table["cluster"].to_numpy(dtype="int64"),
        params,
        symbols=list(table["symbol"]),
    )
    return results, table.loc[:, ["symbol", "direction", "cluster", "market", "sector"]], atoms.returns


def returns_periods_per_year(frozen: FrozenRun) -> int:
    """Periods per year of the run's returns: its grid's sessions per year, as frozen in ``snapshot.json``.

    A run frozen before calendars were recorded was a crypto universe on every day: 365.
    """
    return int(frozen.snapshot.get("calendar", {}).get("periods_per_year", 365))


def portfolio_document(
    frozen: FrozenRun, results: Mapping[Profile, OptimizationResult], atoms: pd.DataFrame
) -> dict[str, Any]:
    """``portfolio_flattened.json`` of the run: rows per profile, clusters, reports and fingerprints."""
    fingerprints = {
        **frozen.snapshot["inputs"],
        **{f"frozen/{k}": v for k, v in frozen.snapshot["frozen"].items()},
    }
    return build_portfolio_document(
        run_id=frozen.run_id,
        as_of=frozen.as_of.strftime("%Y-%m-%d"),
        manifest_sha256=frozen.snapshot["frozen"][RunDataFile.MANIFEST],
        input_fingerprints=fingerprints,
        atoms=atoms,
        results=results,
        cluster_registry=None,
    )
