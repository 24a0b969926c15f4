"""The five profiles of ``alpha.optimize``: textbook parity, invariants on random constraints, fallbacks.

Exercises parity with PyPortfolioOpt (min_variance, max_sharpe), with an independent coordinate-descent ERC
solver and skfolio's RiskBudgeting (risk_parity), the closed-form equal weight under caps, failures reported
as failed profiles, every recorded solver attempt, input validation and ``OptimizationParams`` validation.
HRP's own algorithm is tested in ``test_hrp.py``.
"""

from __future__ import annotations

from dataclasses import replace

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
from pypfopt import EfficientFrontier

from alpha_assets.alpha import optimize as optimize_module
from alpha_assets.alpha.covariance import CovarianceMethod, estimate_covariance
from alpha_assets.alpha.optimization_params import OptimizationParams, Profile, Solver
from alpha_assets.alpha.optimize import optimize_all, optimize_profile
from alpha_assets.alpha.weights import validate_weights
from alpha_assets.errors import ParameterError

UNCAPPED = OptimizationParams(periods_per_year=365, cap_clusters=False)


def opt_factor_returns(
    rng: np.random.Generator, n_observations: int, n_assets: int, n_factors: int = 3, drift: float = 4e-4
) -> np.ndarray:
    """Daily simple returns of a factor model: 1-3% daily volatility, Student-t idiosyncratic noise."""
    factors = rng.normal(drift, 0.01, size=(n_observations, n_factors))
    loadings = rng.normal(1.0, 0.5, size=(n_assets, n_factors)) / n_factors
    noise = rng.standard_t(5, size=(n_observations, n_assets)) * rng.uniform(0.008, 0.025, n_assets)
    return factors @ loadings.T + noise + rng.normal(drift, 3e-4, n_assets)


@pytest.fixture(scope="module")
def opt_market() -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(20240611)
    returns = opt_factor_returns(rng, 500, 30)
    clusters = np.repeat(np.arange(5), 6)
    rng.shuffle(clusters)
    return returns, clusters, [f"BINANCE_A{i:02d}USDT" for i in range(30)]


def _pypfopt_inputs(returns: np.ndarray, symbols: list[str], method: CovarianceMethod, ppy: int):
    mu = pd.Series(returns.mean(axis=0) * ppy, index=symbols)
    cov = pd.DataFrame(estimate_covariance(returns, method) * ppy, index=symbols, columns=symbols)
    return mu, cov


@pytest.mark.parametrize("method", list(CovarianceMethod), ids=[m.value for m in CovarianceMethod])
def test_optimize_profile_min_variance_uncapped_matches_pypfopt(opt_market, method):
    returns, clusters, symbols = opt_market
    params = OptimizationParams(cap_clusters=False, covariance=method, periods_per_year=252)
    result = optimize_profile(returns, clusters, Profile.MIN_VARIANCE, params, symbols=symbols)
    mu, cov = _pypfopt_inputs(returns, symbols, method, 252)
    reference = pd.Series(EfficientFrontier(mu, cov, weight_bounds=(0, 1)).min_volatility())[symbols]
    assert result.status == "optimal" and result.solver == "OSQP"
    np.testing.assert_allclose(result.weights, reference.to_numpy(), atol=1e-4)
    assert result.objective == pytest.approx(result.weights @ cov.to_numpy() @ result.weights)


def _assert_long_only_min_variance_optimality(weights: np.ndarray, cov: np.ndarray, tol: float) -> None:
    """KKT conditions of min w'Sw s.t. sum(w) = 1, w >= 0: (S w)_i equals the multiplier where w_i > 0, and is
    at least the multiplier where w_i = 0 (moving weight there would add variance)."""
    marginal = cov @ weights
    held = weights > 0
    level = float(np.mean(marginal[held]))
    assert np.max(np.abs(marginal[held] - level)) <= tol * level
    assert np.min(marginal[~held]) >= level * (1 - tol)


def test_optimize_profile_min_variance_500_assets_is_the_textbook_optimum():
    """At the benchmark's size (bench/bench_optimize.py): the optimality conditions hold, PyPortfolioOpt and
    CLARABEL (interior point, an independent algorithm) land on the same weights."""
    rng = np.random.default_rng(7)
    returns = opt_factor_returns(rng, 1000, 500, n_factors=5)
    clusters = np.zeros(500, dtype=np.int64)
    symbols = [f"BINANCE_A{i:03d}USDT" for i in range(500)]
    params = OptimizationParams(cap_clusters=False, covariance=CovarianceMethod.SAMPLE, periods_per_year=252)
    result = optimize_profile(returns, clusters, Profile.MIN_VARIANCE, params, symbols=symbols)
    mu, cov = _pypfopt_inputs(returns, symbols, CovarianceMethod.SAMPLE, 252)
    assert result.status == "optimal" and result.solver == "OSQP"
    assert 0 < np.count_nonzero(result.weights) < 500  # a real active set: some assets held, some not
    _assert_long_only_min_variance_optimality(result.weights, cov.to_numpy(), tol=1e-7)
    reference = pd.Series(EfficientFrontier(mu, cov, weight_bounds=(0, 1)).min_volatility())[symbols]
    np.testing.assert_allclose(result.weights, reference.to_numpy(), atol=1e-8)
    interior = optimize_profile(
        returns, clusters, Profile.MIN_VARIANCE, replace(params, solvers=(Solver.CLARABEL,)), symbols=symbols
    )
    assert interior.solver == "CLARABEL"
    np.testing.assert_allclose(interior.weights, result.weights, atol=1e-5)


@pytest.mark.parametrize("method", list(CovarianceMethod), ids=[m.value for m in CovarianceMethod])
def test_optimize_profile_max_sharpe_uncapped_matches_pypfopt(opt_market, method):
    returns, clusters, symbols = opt_market
    params = OptimizationParams(periods_per_year=365, cap_clusters=False, covariance=method)
    result = optimize_profile(returns, clusters, Profile.MAX_SHARPE, params, symbols=symbols)
    mu, cov = _pypfopt_inputs(returns, symbols, method, 365)
    reference = pd.Series(EfficientFrontier(mu, cov, weight_bounds=(0, 1)).max_sharpe(risk_free_rate=0.0))[symbols]
    assert result.status == "optimal"
    np.testing.assert_allclose(result.weights, reference.to_numpy(), atol=1e-4)
    w = result.weights
    assert result.objective == pytest.approx(mu.to_numpy() @ w / np.sqrt(w @ cov.to_numpy() @ w))


def _reference_erc(cov: np.ndarray) -> np.ndarray:
    """ERC by cyclical coordinate descent (Griveau-Billion, Richard, Roncalli 2013), no cvxpy.

    Each step solves S_ii y_i^2 + (S y)_{-i} y_i - 1/n = 0 for y_i > 0, the first-order condition of
    0.5 y'Sy - mean(log y); w = y / sum(y).
    """
    n_assets = cov.shape[0]
    scaled = cov / np.mean(np.diag(cov))
    diag = np.diag(scaled)
    y = 1.0 / np.sqrt(diag)
    for _ in range(2000):
        previous = y.copy()
        for i in range(n_assets):
            others = scaled[i] @ y - diag[i] * y[i]
            y[i] = (-others + np.sqrt(others**2 + 4.0 * diag[i] / n_assets)) / (2.0 * diag[i])
        if np.max(np.abs(y - previous)) < 1e-14:
            break
    return y / y.sum()


def test_optimize_profile_risk_parity_uncapped_matches_reference_erc_and_equal_contributions(opt_market):
    returns, clusters, symbols = opt_market
    result = optimize_profile(returns, clusters, Profile.RISK_PARITY, UNCAPPED, symbols=symbols)
    cov = estimate_covariance(returns, CovarianceMethod.LEDOIT_WOLF)
    np.testing.assert_allclose(result.weights, _reference_erc(cov), atol=1e-4)
    np.testing.assert_allclose(result.risk_contributions, 1.0 / len(symbols), atol=1e-4)


def test_optimize_profile_risk_parity_uncapped_matches_skfolio_risk_budgeting(opt_market):
    skfolio_opt = pytest.importorskip("skfolio.optimization")
    from skfolio import RiskMeasure

    returns, clusters, symbols = opt_market
    params = OptimizationParams(periods_per_year=365, cap_clusters=False, covariance=CovarianceMethod.SAMPLE)
    result = optimize_profile(returns, clusters, Profile.RISK_PARITY, params, symbols=symbols)
    model = skfolio_opt.RiskBudgeting(risk_measure=RiskMeasure.VARIANCE).fit(returns)
    np.testing.assert_allclose(result.weights, model.weights_, atol=1e-4)


def _random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, OptimizationParams]:
    """A feasible draw of sizes, cluster sizes, bounds and a cap that often binds."""
    while True:
        n_assets = int(rng.integers(6, 25))
        n_clusters = int(rng.integers(2, 6))
        clusters = rng.integers(0, n_clusters, n_assets)
        sizes = np.bincount(clusters)
        sizes = sizes[sizes > 0]
        min_weight = float(rng.choice([0.0, rng.uniform(0.0, 0.5 / n_assets)]))
        max_weight = float(rng.uniform(1.5 / n_assets, 0.6))
        cap = float(rng.uniform(1.0 / sizes.size, 0.7))
        if np.minimum(cap, sizes * max_weight).sum() >= 1.0 and sizes.max() * min_weight <= cap:
            params = OptimizationParams(
                periods_per_year=365, min_weight=min_weight, max_weight=max_weight, cluster_cap=cap
            )
            return opt_factor_returns(rng, 300, n_assets, drift=1e-3), clusters, params


@pytest.mark.parametrize("seed", range(8))
def test_optimize_all_random_bounds_and_caps_hold_for_every_profile(seed):
    rng = np.random.default_rng(seed)
    returns, clusters, params = _random_case(rng)
    symbols = [f"S{i}" for i in range(returns.shape[1])]
    results = optimize_all(returns, clusters, params, symbols=symbols)
    assert list(results) == list(Profile)
    for profile, result in results.items():
        if profile is Profile.MAX_SHARPE and result.status == "failed":
            assert "positive expected excess return" in result.reason
            continue
        assert result.status == "optimal", (profile, result.reason, result.attempts)
        assert np.isfinite(result.weights).all()
        assert result.weights.sum() == pytest.approx(1.0, abs=1e-9)
        validate_weights(
            result.weights,
            clusters=clusters,
            cap=params.cluster_cap,
            min_weight=params.min_weight,
            max_weight=params.max_weight,
            tol=1e-6,
        )
        assert result.risk_contributions.sum() == pytest.approx(1.0)


def test_optimize_profile_min_variance_capped_costs_variance_and_holds_cap(opt_market):
    returns, clusters, symbols = opt_market
    free = optimize_profile(returns, clusters, Profile.MIN_VARIANCE, UNCAPPED, symbols=symbols)
    capped_params = OptimizationParams(periods_per_year=365, cluster_cap=0.22)
    capped = optimize_profile(returns, clusters, Profile.MIN_VARIANCE, capped_params, symbols=symbols)
    totals = np.bincount(clusters, weights=capped.weights)
    assert np.bincount(clusters, weights=free.weights).max() > 0.22  # the cap must bind for this test to mean anything
    assert totals.max() <= 0.22 + 1e-6
    assert capped.objective >= free.objective
    assert capped.cluster_cap == 0.22


def test_optimize_profile_risk_parity_binding_cap_gives_capped_cluster_less_risk(opt_market):
    returns, clusters, symbols = opt_market
    free = optimize_profile(returns, clusters, Profile.RISK_PARITY, UNCAPPED, symbols=symbols)
    heaviest = int(np.argmax(np.bincount(clusters, weights=free.weights)))
    cap = float(np.bincount(clusters, weights=free.weights)[heaviest]) - 0.03
    result = optimize_profile(
        returns,
        clusters,
        Profile.RISK_PARITY,
        OptimizationParams(periods_per_year=365, cluster_cap=cap),
        symbols=symbols,
    )
    assert np.bincount(clusters, weights=result.weights).max() <= cap + 1e-6
    risk = np.bincount(clusters, weights=result.risk_contributions)
    assert risk[heaviest] < np.bincount(clusters, weights=free.risk_contributions)[heaviest]


def test_optimize_profile_default_cap_is_max_quarter_or_one_over_n_clusters(opt_market):
    returns, _, symbols = opt_market
    two_clusters = np.arange(30) % 2
    result = optimize_profile(
        returns, two_clusters, Profile.EQUAL_WEIGHT, OptimizationParams(periods_per_year=365), symbols=symbols
    )
    assert result.cluster_cap == 0.5
    five = optimize_profile(
        returns, np.arange(30) % 5, Profile.EQUAL_WEIGHT, OptimizationParams(periods_per_year=365), symbols=symbols
    )
    assert five.cluster_cap == 0.25
    assert optimize_profile(returns, np.arange(30) % 5, Profile.HRP, UNCAPPED, symbols=symbols).cluster_cap is None


def test_optimize_profile_equal_weight_uncapped_is_one_over_n(opt_market):
    returns, clusters, symbols = opt_market
    result = optimize_profile(returns, clusters, Profile.EQUAL_WEIGHT, UNCAPPED, symbols=symbols)
    np.testing.assert_allclose(result.weights, 1.0 / 30)
    assert result.solver == "closed_form" and result.attempts == ()


def test_optimize_profile_equal_weight_binding_cap_is_equal_within_cluster():
    rng = np.random.default_rng(3)
    returns = opt_factor_returns(rng, 200, 10)
    # Cluster 0 holds 6 of 10 assets: 0.6 > cap 0.4, so each of its assets gets 0.4 / 6, the rest 0.6 / 4.
    clusters = np.array([0, 0, 0, 0, 0, 0, 1, 1, 2, 2])
    result = optimize_profile(
        returns,
        clusters,
        Profile.EQUAL_WEIGHT,
        OptimizationParams(periods_per_year=365, cluster_cap=0.4),
        symbols=list("ABCDEFGHIJ"),
    )
    np.testing.assert_allclose(result.weights, [0.4 / 6] * 6 + [0.15] * 4)


def test_optimize_profile_equal_weight_cap_and_max_weight_exactly_full_capacity():
    rng = np.random.default_rng(4)
    returns = opt_factor_returns(rng, 200, 8)
    # Cap 0.4 holds cluster 0 (5 assets) at 0.08 each; max_weight 0.2 holds the other three assets at 0.2:
    # capacity is exactly 1, so every bound and cap binds at once.
    clusters = np.array([0, 0, 0, 0, 0, 1, 1, 2])
    params = OptimizationParams(periods_per_year=365, cluster_cap=0.4, max_weight=0.2)
    result = optimize_profile(returns, clusters, Profile.EQUAL_WEIGHT, params, symbols=list("ABCDEFGH"))
    np.testing.assert_allclose(result.weights, [0.08] * 5 + [0.2, 0.2, 0.2])


@pytest.mark.parametrize("profile", list(Profile), ids=[p.value for p in Profile])
def test_optimize_profile_too_few_assets_for_max_weight_fails_without_weights(opt_market, profile):
    returns, clusters, symbols = opt_market
    params = OptimizationParams(periods_per_year=365, cap_clusters=False, max_weight=0.03)  # 30 * 0.03 = 0.9 < 1
    result = optimize_profile(returns, clusters, profile, params, symbols=symbols)
    assert result.status == "failed" and result.weights is None and result.risk_contributions is None
    assert "n_assets * max_weight" in result.reason


def test_optimize_profile_caps_too_tight_fails_with_reason(opt_market):
    returns, _, symbols = opt_market
    clusters = np.arange(30) % 3
    result = optimize_profile(
        returns,
        clusters,
        Profile.MIN_VARIANCE,
        OptimizationParams(periods_per_year=365, cluster_cap=0.3),
        symbols=symbols,
    )
    assert result.status == "failed"
    assert "cluster caps too tight" in result.reason


def test_optimize_profile_max_sharpe_no_positive_excess_fails_with_reason(opt_market):
    returns, clusters, symbols = opt_market
    losing = returns - 0.01  # about -365% a year for every asset
    result = optimize_profile(losing, clusters, Profile.MAX_SHARPE, UNCAPPED, symbols=symbols)
    assert result.status == "failed" and result.weights is None
    assert "no asset has a positive expected excess return" in result.reason


def test_optimize_profile_qp_only_solver_on_risk_parity_records_every_attempt_then_fails(opt_market):
    returns, clusters, symbols = opt_market
    params = OptimizationParams(
        periods_per_year=365, cap_clusters=False, solvers=(Solver.OSQP,), shrinkage_steps=(0.2, 0.5)
    )
    result = optimize_profile(returns, clusters, Profile.RISK_PARITY, params, symbols=symbols)
    assert result.status == "failed" and result.weights is None
    assert [(a.solver, a.shrinkage, a.outcome) for a in result.attempts] == [
        ("OSQP", 0.0, "unsupported"),
        ("OSQP", 0.2, "unsupported"),
        ("OSQP", 0.5, "unsupported"),
    ]
    assert "OSQP solves quadratic programs only" in result.attempts[0].message
    assert "every solver and shrinkage step failed (3 attempts)" in result.reason


def test_optimize_profile_missing_solver_is_skipped_and_recorded(opt_market):
    if "ECOS" in cp.installed_solvers():
        pytest.skip("ECOS is installed here")
    returns, clusters, symbols = opt_market
    params = OptimizationParams(periods_per_year=365, cap_clusters=False, solvers=(Solver.ECOS, Solver.CLARABEL))
    result = optimize_profile(returns, clusters, Profile.MIN_VARIANCE, params, symbols=symbols)
    assert [(a.solver, a.outcome) for a in result.attempts] == [
        ("ECOS", "not_installed"),
        ("CLARABEL", "optimal"),
    ]
    assert result.solver == "CLARABEL"


@pytest.mark.parametrize("profile", [Profile.MIN_VARIANCE, Profile.MAX_SHARPE])
def test_optimize_profile_osqp_and_clarabel_fallback_agree(opt_market, profile):
    returns, clusters, symbols = opt_market
    osqp = optimize_profile(returns, clusters, profile, UNCAPPED, symbols=symbols)
    params = OptimizationParams(periods_per_year=365, cap_clusters=False, solvers=(Solver.CLARABEL,))
    clarabel = optimize_profile(returns, clusters, profile, params, symbols=symbols)
    assert (osqp.solver, clarabel.solver) == ("OSQP", "CLARABEL")
    np.testing.assert_allclose(osqp.weights, clarabel.weights, atol=1e-5)


def test_optimize_profile_risk_parity_skips_osqp_and_solves_with_clarabel(opt_market):
    returns, clusters, symbols = opt_market
    result = optimize_profile(returns, clusters, Profile.RISK_PARITY, UNCAPPED, symbols=symbols)
    assert [(a.solver, a.outcome) for a in result.attempts] == [("OSQP", "unsupported"), ("CLARABEL", "optimal")]
    assert result.solver == "CLARABEL"


def test_optimize_profile_unsolvable_first_pass_falls_back_to_shrinkage(opt_market, monkeypatch):
    returns, clusters, symbols = opt_market
    original = optimize_module._BUILDERS[Profile.MIN_VARIANCE]
    calls = []

    def infeasible_until_shrunk(cov, prob):
        problem, extract = original(cov, prob)
        calls.append(cov)
        if len(calls) == 1:  # the unshrunk pass gets a contradictory constraint, as a stand-in for a bad matrix
            problem = cp.Problem(problem.objective, [*problem.constraints, cp.sum(problem.variables()[0]) == 2])
        return problem, extract

    monkeypatch.setitem(optimize_module._BUILDERS, Profile.MIN_VARIANCE, infeasible_until_shrunk)
    params = OptimizationParams(periods_per_year=365, cap_clusters=False, solvers=(Solver.CLARABEL, Solver.SCS))
    result = optimize_profile(returns, clusters, Profile.MIN_VARIANCE, params, symbols=symbols)
    assert [(a.solver, a.shrinkage) for a in result.attempts] == [
        ("CLARABEL", 0.0),
        ("SCS", 0.0),
        ("CLARABEL", 0.1),
    ]
    assert [a.outcome[:10] for a in result.attempts] == ["infeasible", "infeasible", "optimal"]
    assert result.status == "optimal" and result.solver == "CLARABEL"
    assert np.trace(calls[1]) == pytest.approx(np.trace(calls[0]))


def test_optimize_all_equals_optimize_profile_per_profile(opt_market):
    returns, clusters, symbols = opt_market
    params = OptimizationParams(periods_per_year=365, profiles=(Profile.HRP, Profile.MIN_VARIANCE))
    results = optimize_all(returns, clusters, params, symbols=symbols)
    assert list(results) == [Profile.HRP, Profile.MIN_VARIANCE]
    for profile, result in results.items():
        single = optimize_profile(returns, clusters, profile, params, symbols=symbols)
        np.testing.assert_array_equal(result.weights, single.weights)
        assert result.symbols == tuple(symbols)


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda r, c, s: (r[:, 0], c, s), ValueError, r"`returns` must be 2-D \(n_observations, n_assets\)"),
        (lambda r, c, s: (np.where(r > 0.05, np.nan, r), c, s), ValueError, "`returns` must be finite"),
        (lambda r, c, s: (r.tolist(), c, s), TypeError, "`returns` must be a numpy ndarray"),
        (lambda r, c, s: (r, c[:-1], s), ValueError, r"`clusters` must have shape \(n_assets,\)"),
        (lambda r, c, s: (r, c.astype(float), s), TypeError, "`clusters` must be an integer ndarray"),
        (lambda r, c, s: (r, c, s[:-1]), ValueError, "`symbols` must be 30 distinct str"),
        (lambda r, c, s: (r, c, "ABC"), TypeError, "`symbols` must be a sequence of str"),
        (lambda r, c, s: (np.column_stack([r[:, :-1], np.zeros(len(r))]), c, s), ValueError, "zero-variance"),
    ],
    ids=["1d", "nan", "list", "clusters-shape", "clusters-float", "symbols-short", "symbols-str", "zero-var"],
)
def test_optimize_profile_bad_input_raises_naming_argument(opt_market, mutate, error, match):
    returns, clusters, symbols = mutate(*opt_market)
    with pytest.raises(error, match=match):
        optimize_profile(returns, clusters, Profile.MIN_VARIANCE, UNCAPPED, symbols=symbols)


def test_optimize_profile_bad_profile_or_params_raises(opt_market):
    returns, clusters, symbols = opt_market
    with pytest.raises(TypeError, match="`profile` must be a Profile"):
        optimize_profile(returns, clusters, "hrp", UNCAPPED, symbols=symbols)
    with pytest.raises(TypeError, match="`params` must be an OptimizationParams"):
        optimize_all(returns, clusters, {"profiles": ["hrp"]}, symbols=symbols)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"profiles": ()}, r"OptimizationParams\.profiles must hold at least 1 item\(s\), got 0"),
        ({"profiles": (Profile.HRP, Profile.HRP)}, r"profiles must not repeat a profile, got \['hrp', 'hrp'\]"),
        ({"covariance": "sample"}, r"OptimizationParams\.covariance must be a CovarianceMethod member, got 'sample'"),
        ({"hrp_linkage": "ward"}, r"OptimizationParams\.hrp_linkage must be a Linkage member, got 'ward'"),
        ({"periods_per_year": 0}, r"OptimizationParams\.periods_per_year must be >= 1, got 0"),
        ({"periods_per_year": 367}, r"OptimizationParams\.periods_per_year must be <= 366, got 367"),
        ({"min_weight": 0.5, "max_weight": 0.4}, r"min_weight \(0\.5\) must not exceed max_weight \(0\.4\)"),
        ({"max_weight": 0.0}, r"OptimizationParams\.max_weight must be > 0\.0, got 0\.0"),
        ({"cluster_cap": 0.0}, r"OptimizationParams\.cluster_cap must be > 0\.0, got 0\.0"),
        ({"risk_free_rate": 2.0}, r"OptimizationParams\.risk_free_rate must be <= 1\.0, got 2\.0"),
        ({"solvers": ("CLARABEL",)}, r"OptimizationParams\.solvers\[0\] must be a Solver member, got 'CLARABEL'"),
        ({"shrinkage_steps": (0.5, 0.3)}, r"shrinkage_steps must be strictly increasing, got \[0\.5, 0\.3\]"),
        ({"shrinkage_steps": (0.0, 0.3)}, r"OptimizationParams\.shrinkage_steps\[0\] must be > 0\.0, got 0\.0"),
    ],
    ids=lambda v: str(v)[:30] if isinstance(v, dict) else "",
)
def test_optimization_params_out_of_range_raises_naming_field(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        OptimizationParams(**kwargs)


def test_optimize_profile_unresolved_periods_per_year_raises():
    returns = np.random.default_rng(3).normal(0.0, 0.01, size=(120, 4))
    with pytest.raises(ValueError, match=r"`params.periods_per_year` is None: resolve it from the returns' calendar"):
        optimize_profile(returns, np.arange(4), Profile.MIN_VARIANCE, OptimizationParams(), symbols=list("ABCD"))


def test_optimization_params_defaults():
    assert OptimizationParams().solvers[:2] == (Solver.OSQP, Solver.CLARABEL)
    # Annualisation comes from the returns' calendar unless the manifest sets it.
    assert OptimizationParams().periods_per_year is None
    assert [p.value for p in OptimizationParams().profiles] == [
        "equal_weight",
        "min_variance",
        "max_sharpe",
        "risk_parity",
        "hrp",
    ]
