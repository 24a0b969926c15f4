"""Benchmark of the optimisation profiles against PyPortfolioOpt and skfolio on the same matrix, same run.

Usage: ``.venv/bin/python bench/bench_optimize.py --size small|large``. Sizes: small 50 assets x 500 days, large 500
assets x 1,000 days, seeded factor-model returns. Before timing, our min_variance and HRP weights are checked
against PyPortfolioOpt's (skfolio's difference is printed). Only the call is timed (best and median of ``--repeat``
rounds that call every contender once, in turn); peak memory is tracemalloc's peak during one extra call. Ours
includes the covariance estimate and input validation; PyPortfolioOpt's min_volatility is handed a ready covariance.
``ours_solve`` is our min variance handed the same ready covariance (the optimiser's internal entry point after the
estimate), so ``pypfopt/ours_solve`` compares the two optimisers on the same matrix.
Writes ``bench/results/optimize_<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tracemalloc
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from pypfopt import EfficientFrontier, HRPOpt

from alpha_assets.alpha import optimize
from alpha_assets.alpha.covariance import CovarianceMethod, estimate_covariance
from alpha_assets.alpha.optimization_params import OptimizationParams, Profile
from alpha_assets.alpha.optimize import optimize_profile

SIZES = {"small": (50, 500), "large": (500, 1000)}
SEED = 20240611
PPY = 252

try:
    from skfolio import RiskMeasure
    from skfolio.optimization import HierarchicalRiskParity, MeanRisk
    from skfolio.prior import EmpiricalPrior
except ImportError:
    MeanRisk = None


def factor_returns(n_assets: int, n_observations: int) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    factors = rng.normal(3e-4, 0.01, size=(n_observations, 5))
    loadings = rng.normal(0.8, 0.4, size=(n_assets, 5)) / 5
    noise = rng.normal(0.0, 1.0, size=(n_observations, n_assets)) * rng.uniform(0.01, 0.03, n_assets)
    return factors @ loadings.T + noise


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    """Best wall time over ``repeat`` calls, and tracemalloc peak (MiB) of one more call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - start)
    return best, peak_mib(call), out


def peak_mib(call: Callable[[], object]) -> float:
    """Tracemalloc's peak (MiB) during one call."""
    tracemalloc.start()
    call()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def timed_interleaved(calls: dict[str, Callable[[], object]], repeat: int) -> dict[str, dict[str, float]]:
    """Best and median wall time of each call over ``repeat`` rounds that call each once, in turn.

    Rounds rather than one contender's repeats in a row: on a shared machine the load changes within seconds,
    and each round gives every contender the same conditions.
    """
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeat):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - start)
    return {
        name: {"seconds": min(times), "median_seconds": float(np.median(times)), "peak_mib": peak_mib(calls[name])}
        for name, times in seconds.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--task", choices=("all", "min_variance", "hrp"), default="all", help="one comparison only, no profile list"
    )
    args = parser.parse_args()
    n_assets, n_observations = SIZES[args.size]
    returns = factor_returns(n_assets, n_observations)
    symbols = [f"A{i:03d}" for i in range(n_assets)]
    clusters = np.zeros(n_assets, dtype=np.int64)
    params = OptimizationParams(cap_clusters=False, covariance=CovarianceMethod.SAMPLE, periods_per_year=PPY)
    frame = pd.DataFrame(returns, columns=symbols)
    mu = pd.Series(returns.mean(axis=0) * PPY, index=symbols)
    cov = pd.DataFrame(estimate_covariance(returns, CovarianceMethod.SAMPLE) * PPY, index=symbols, columns=symbols)

    def ours(profile: Profile) -> Callable[[], np.ndarray]:
        return lambda: optimize_profile(returns, clusters, profile, params, symbols=symbols).weights

    # EfficientFrontier gets our mu and covariance (its constructor is part of a user's call, so it is timed);
    # HRPOpt and skfolio take the returns and estimate the same ddof=1 sample covariance themselves.
    # The same covariance PyPortfolioOpt gets, through the step optimize_profile takes after its estimate.
    ready = optimize._Problem(mu.to_numpy(), cov.to_numpy(), clusters, None, params, tuple(symbols))
    contenders: dict[str, dict[str, Callable[[], np.ndarray]]] = {
        "min_variance": {
            "ours": ours(Profile.MIN_VARIANCE),
            "ours_solve": lambda: optimize._run_profile(Profile.MIN_VARIANCE, ready).weights,
            "pypfopt": lambda: pd.Series(EfficientFrontier(mu, cov, weight_bounds=(0, 1)).min_volatility())[
                symbols
            ].to_numpy(),
        },
        "hrp": {
            "ours": ours(Profile.HRP),
            "pypfopt": lambda: pd.Series(HRPOpt(returns=frame).optimize())[symbols].to_numpy(),
        },
    }
    if MeanRisk is not None:
        contenders["min_variance"]["skfolio"] = lambda: (
            MeanRisk(risk_measure=RiskMeasure.VARIANCE, prior_estimator=EmpiricalPrior()).fit(returns).weights_
        )
        contenders["hrp"]["skfolio"] = lambda: (
            HierarchicalRiskParity(risk_measure=RiskMeasure.VARIANCE).fit(returns).weights_
        )

    results: dict[str, object] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for task, calls in contenders.items():
            if args.task not in ("all", task):
                continue
            reference = calls["ours"]()
            agreement = {name: float(np.max(np.abs(call() - reference))) for name, call in calls.items()}
            if agreement["pypfopt"] > 1e-4:
                raise SystemExit(f"{task}: weights differ from PyPortfolioOpt by {agreement['pypfopt']:.3g}")
            timings = timed_interleaved(calls, args.repeat)
            for name in timings:
                timings[name]["max_abs_diff_vs_ours"] = agreement[name]
            ratios = {f"{name}/ours": timings[name]["seconds"] / timings["ours"]["seconds"] for name in timings}
            if "ours_solve" in timings:
                ratios["pypfopt/ours_solve"] = timings["pypfopt"]["seconds"] / timings["ours_solve"]["seconds"]
            results[task] = {"timings": timings, "ratios": ratios}
            print(
                f"{task:13s}",
                "  ".join(
                    f"{n} {t['seconds']:.4f}s (median {t['median_seconds']:.4f}s, {t['peak_mib']:.1f} MiB)"
                    for n, t in timings.items()
                ),
            )
            print(
                f"{'':13s}",
                "  ".join(f"{k} {v:.2f}x" for k, v in ratios.items() if k != "ours/ours"),
                " max |dw|:",
                {k: f"{v['max_abs_diff_vs_ours']:.1e}" for k, v in timings.items() if k != "ours"},
            )
        profiles = {}
        for profile in Profile if args.task == "all" else ():
            seconds, peak, _ = timed(ours(profile), args.repeat)
            profiles[profile.value] = {"seconds": seconds, "peak_mib": peak}
            print(f"ours {profile.value:13s} {seconds:.4f}s  peak {peak:.1f} MiB")
        results["profiles"] = profiles

    packages = ["numpy", "scipy", "cvxpy", "clarabel", "osqp", "scikit-learn", "pyportfolioopt", "skfolio"]
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    out = {
        "benchmark": "optimize",
        "size": args.size,
        "n_assets": n_assets,
        "n_observations": n_observations,
        "seed": SEED,
        "repeat": args.repeat,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "versions": versions,
        "results": results,
    }
    path = Path(__file__).resolve().parent / "results" / f"optimize_{args.size}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
