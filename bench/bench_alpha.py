"""The Alpha cycle on 500 candidates x 730 days: the core without Dagster, then the whole flow_production run
(issue 4), with min-variance and HRP timed against PyPortfolioOpt and skfolio on the same returns matrix.

Targets on 2 cores: core (snapshot, gate, HTR, five profiles) <= 5 s; flow_production through Dagster <= 20 s.
Sizes: small = 60 candidates x 400 days (smoke), large = 500 x 730. The lakehouse is prepared with the pure
DataOps functions (simulated exchange, ingestion, features) outside the timed region.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from common import peak_rss_mb, timed, write_results
from dagster import DagsterEventType, DagsterInstance

from alpha_assets.alpha import pipeline
from alpha_assets.alpha.covariance import CovarianceMethod, estimate_covariance
from alpha_assets.alpha.optimization_params import OptimizationParams, Profile
from alpha_assets.alpha.optimize import optimize_profile
from alpha_assets.alpha.returns import compute_returns_matrix
from alpha_assets.alpha.snapshot import freeze_run, load_frozen_run, take_snapshot
from alpha_assets.definitions import build_definitions
from alpha_assets.defs import names
from alpha_assets.defs.resources import LakehouseResource, ManifestResource
from alpha_assets.features.backfill import backfill_features
from alpha_assets.lakehouse.jsonio import write_json_atomic
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.manifest import load_profile
from alpha_assets.orchestration.runner import ensure_run_partition, run_link
from alpha_assets.sources.ingest import ingest_symbols
from alpha_assets.sources.params import IngestionParams
from alpha_assets.sources.simulated import SimulatedExchange

SIZES = {"small": (60, 400), "large": (500, 730)}
NOW = pd.Timestamp("2026-11-25T12:00:00Z")
RUN_ID = "BENCH_ALPHA"


def prepare_lakehouse(paths: LakehousePaths, n_assets: int, n_days: int) -> None:
    """Bars and features of ``n_assets`` simulated USDT pairs, and a validated export naming them."""
    exchange = SimulatedExchange(now=NOW, n_symbols=n_assets + 40)
    markets = [
        m
        for m in exchange.load_markets()
        if m.quote == "USDT" and m.active and m.symbol_key not in {"SIM_PUMPUSDT", "SIM_FRZNUSDT", "SIM_HOLEUSDT"}
    ][:n_assets]
    ingest_symbols(exchange, markets, paths, now=NOW, params=IngestionParams(history_days=n_days, warmup_days=0))
    backfill_features(paths, [m.symbol_key for m in markets])
    candidates = [{"symbol_key": m.symbol_key, "sector": m.sector} for m in markets]
    write_json_atomic(
        {
            "run_id": RUN_ID,
            "as_of": NOW.isoformat(),
            "exchange": "SIM",
            "symbols": [c["symbol_key"] for c in candidates],
            "candidates": candidates,
            "rejected": {},
        },
        paths.candidates_validated_file(RUN_ID),
    )


def alpha_core(paths: LakehousePaths, manifest: Path) -> dict[str, float]:
    """Each stage of the cycle timed on its own: snapshot and freeze, gate, selection, five profiles."""
    profile = load_profile(manifest, "crypto", sections=pipeline.ALPHA_SECTIONS)
    times = {}
    times["snapshot_s"], snapshot = timed(lambda: take_snapshot(paths, RUN_ID))
    times["returns_s"], trimmed = timed(lambda: compute_returns_matrix(snapshot.closes, profile.sections["returns"]))
    times["freeze_s"], _ = timed(
        lambda: (freeze_run(paths, snapshot, trimmed, profile.document), load_frozen_run(paths, RUN_ID))
    )
    frozen = load_frozen_run(paths, RUN_ID)
    params = pipeline.alpha_params(frozen.manifest)
    times["gate_s"], verdicts = timed(lambda: pipeline.evaluate_gate(frozen, params["gate"]))
    assert all(v.passed for v in verdicts), [v.message for v in verdicts if not v.passed]
    times["selection_s"], selection = timed(lambda: pipeline.run_selection(frozen, params["selection"]))
    times["optimization_s"], (results, _, _) = timed(
        lambda: pipeline.run_optimization(frozen, selection.to_json_dict(), params["optimization"])
    )
    assert all(r.status == "optimal" for r in results.values()), {p: r.reason for p, r in results.items()}
    times["core_total_s"] = sum(times.values())
    times["n_assets"], times["n_observations"] = frozen.returns.shape[1], frozen.returns.shape[0]
    times["atoms"] = len(selection.winners)
    return times


def flow_production_run(root: Path, paths: LakehousePaths, manifest: Path) -> dict[str, float]:
    """The whole flow_production job through Dagster (in-process, on-disk instance), with per-step times."""
    (root / "home").mkdir(exist_ok=True)
    instance = DagsterInstance.local_temp(tempdir=str(root / "home"))
    defs = build_definitions(
        {
            "lakehouse": LakehouseResource(data_dir=str(paths.root)),
            "manifest": ManifestResource(path=str(manifest), profile="crypto"),
        }
    )
    ensure_run_partition(instance, RUN_ID)
    config = {"ops": {"returns_matrix": {"config": {"refreeze": True}}}}
    wall, link = timed(lambda: run_link(defs, instance, names.PRODUCTION_JOB, partition_key=RUN_ID, run_config=config))
    steps = {}
    for kind in (DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS):
        for record in instance.get_records_for_run(link.dagster_run_id, of_type=kind).records:
            steps.setdefault(record.event_log_entry.step_key, []).append(record.event_log_entry.timestamp)
    instance.dispose()
    return {"flow_production_s": wall, **{f"step_{k}_s": v[1] - v[0] for k, v in sorted(steps.items())}}


def peers(paths: LakehousePaths) -> dict[str, float]:
    """Min variance and HRP, ours vs PyPortfolioOpt and skfolio, on the frozen returns (no caps, Ledoit-Wolf)."""
    from pypfopt import EfficientFrontier, HRPOpt
    from skfolio.optimization import HierarchicalRiskParity, MeanRisk

    returns = load_frozen_run(paths, RUN_ID).returns
    values = returns.to_numpy()
    one_cluster = np.zeros(values.shape[1], dtype=np.int64)
    params = OptimizationParams(covariance=CovarianceMethod.LEDOIT_WOLF, cap_clusters=False, periods_per_year=365)
    symbols = list(returns.columns)
    figures = {}
    figures["ours_min_variance_s"], ours_mv = timed(
        lambda: optimize_profile(values, one_cluster, Profile.MIN_VARIANCE, params, symbols=symbols)
    )
    cov = pd.DataFrame(estimate_covariance(values, CovarianceMethod.LEDOIT_WOLF) * 365, index=symbols, columns=symbols)
    figures["pypfopt_min_variance_s"], pypfopt_mv = timed(
        lambda: EfficientFrontier(None, cov, weight_bounds=(0, 1)).min_volatility()
    )
    figures["min_variance_max_weight_diff_vs_pypfopt"] = float(
        np.abs(ours_mv.weights - np.array([pypfopt_mv[s] for s in symbols])).max()
    )
    figures["skfolio_min_variance_s"], _ = timed(lambda: MeanRisk().fit(returns))
    figures["ours_hrp_s"], _ = timed(
        lambda: optimize_profile(values, one_cluster, Profile.HRP, params, symbols=symbols)
    )
    figures["pypfopt_hrp_s"], _ = timed(lambda: HRPOpt(returns).optimize(linkage_method="single"))
    figures["skfolio_hrp_s"], _ = timed(lambda: HierarchicalRiskParity().fit(returns))
    for peer in ("pypfopt", "skfolio"):
        for profile in ("min_variance", "hrp"):
            figures[f"ratio_{peer}_over_ours_{profile}"] = figures[f"{peer}_{profile}_s"] / figures[f"ours_{profile}_s"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    size = parser.parse_args().size
    n_assets, n_days = SIZES[size]
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = LakehousePaths(root / "data")
        manifest = root / "manifest.json"
        manifest.write_text(
            json.dumps(
                {
                    "defaults": {"gate": {"min_assets": 5}},
                    "profiles": {"crypto": {"returns": {"min_history": 90}, "optimization": {"periods_per_year": 365}}},
                }
            )
        )
        prepare_s, _ = timed(lambda: prepare_lakehouse(paths, n_assets, n_days))
        core = alpha_core(paths, manifest)
        dagster_run = flow_production_run(root, paths, manifest)
        peer = peers(paths)
    print(f"prepared lakehouse in {prepare_s:.1f} s (not timed below)")
    print(
        f"alpha core      {core['n_assets']} assets x {core['n_observations']} days -> {core['atoms']} atoms: "
        f"{core['core_total_s']:.2f} s (target <= 5 s)"
    )
    for name in ("snapshot_s", "returns_s", "freeze_s", "gate_s", "selection_s", "optimization_s"):
        print(f"  {name[:-2]:<14} {core[name]:.3f} s")
    print(f"flow_production {dagster_run['flow_production_s']:.2f} s through Dagster (target <= 20 s)")
    for name, value in dagster_run.items():
        if name.startswith("step_"):
            print(f"  {name[5:-2]:<20} {value:.2f} s")
    print(
        f"min variance    ours {peer['ours_min_variance_s']:.3f} s, PyPortfolioOpt x"
        f"{peer['ratio_pypfopt_over_ours_min_variance']:.2f}, "
        f"skfolio x{peer['ratio_skfolio_over_ours_min_variance']:.2f}"
        f" (peer time / ours); max |w - w_pypfopt| {peer['min_variance_max_weight_diff_vs_pypfopt']:.1e}"
    )
    print(
        f"HRP             ours {peer['ours_hrp_s']:.3f} s, PyPortfolioOpt x{peer['ratio_pypfopt_over_ours_hrp']:.2f}, "
        f"skfolio x{peer['ratio_skfolio_over_ours_hrp']:.2f}"
    )
    print(f"peak memory     {peak_rss_mb():.0f} MiB")
    write_results(
        "alpha",
        size,
        {
            "prepare_s": prepare_s,
            "core": core,
            "flow_production": dagster_run,
            "peers": peer,
            "peak_rss_mb": peak_rss_mb(),
        },
    )


if __name__ == "__main__":
    main()
