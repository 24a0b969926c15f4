"""Long-only, fully invested portfolio profiles under per-asset bounds and per-cluster caps.

Profiles (:class:`~alpha_assets.alpha.optimization_params.Profile`):

- ``equal_weight``: ``1 / n_assets``. When a cap or bound binds, the Euclidean projection of ``1 / n_assets``
  onto the constraint set, which is equal within each cluster: every asset holds ``min(t, u_c)`` with
  ``u_c = min(max_weight, cap / n_c)`` and the level ``t`` chosen so the weights sum to 1 (water-filling).
  When ``n_assets * max_weight < 1`` no fully invested portfolio exists and the profile fails.
- ``min_variance``: ``min w' S w`` subject to the linear constraints.
- ``max_sharpe``: the convex homogeneous reformulation ``min y' S y`` s.t. ``(mu - rf)' y = 1``, ``y >= 0``,
  bounds and caps multiplied by ``k = sum(y)``; ``w = y / k``. Fails when no asset has ``mu - rf > 0``.
- ``risk_parity`` (equal risk contribution): ``min y' S y`` s.t.
  ``(1 / n_assets) sum(log y) >= log(1 / n_assets)`` and the homogenised bounds and caps,
  ``w = y / sum(y)``, the risk-budgeting form skfolio uses. With no binding constraint its optimum is the
  exact ERC portfolio (every asset carries ``1 / n_assets`` of the variance). When a cap or bound binds, the
  result is the minimum-variance point of that log-barrier level set inside the constraints: the capped
  cluster carries less than its equal share of risk, the rest is spread over the other assets, and the
  contributions are no longer exactly equal.
- ``hrp``: :func:`alpha_assets.alpha.hrp.hrp_weights`.

``mu`` is the mean per-period return times ``periods_per_year``, ``S`` the covariance estimate times
``periods_per_year``. Convex profiles are solved with cvxpy: each solver of ``params.solvers`` in turn (OSQP first:
it solves the quadratic programs, min variance and max Sharpe, in a few factorisations of the dense covariance where
the interior-point CLARABEL needs one per iteration; risk parity has cones and goes to CLARABEL), then again with
the covariance shrunk by each of ``params.shrinkage_steps``; every attempt is recorded (a solver not installed, or
QP-only on a problem with cones, as a skipped attempt). An attempt succeeds when the status is optimal or
optimal_inaccurate, the variable has a finite value, and the cleaned weights (clipped into the bounds, renormalised)
pass :func:`~alpha_assets.alpha.weights.validate_weights` within 1e-6. A profile whose attempts all fail is
``failed`` with no weights, never partial weights.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from alpha_assets.alpha.covariance import estimate_covariance, shrink
from alpha_assets.alpha.hrp import hrp_weights
from alpha_assets.alpha.optimization_params import OptimizationParams, Profile, Solver
from alpha_assets.alpha.weights import infeasibility_reason, validate_weights
from alpha_assets.errors import SolverFailedError
from alpha_assets.typing import FloatArray, IntArray
from alpha_assets.validation import check_returns_array

if TYPE_CHECKING:
    import cvxpy as cp

#: Tolerance of the final verification of every emitted portfolio.
WEIGHT_TOLERANCE = 1e-6
#: Weights below this are set to 0 when ``min_weight`` is 0 (solver noise, e.g. 3e-11).
_ZERO_SNAP = 1e-10
# OSQP: ADMM to 1e-7, then a polish on the active set it found (cvxpy turns polishing on), which solves the
# quadratic program's optimality conditions exactly: min variance on 500 assets lands on PyPortfolioOpt's weights
# within 1e-16. OSQP's own defaults (1e-3) move weights by ~1e-2 when the polish fails. 1e-9 would add a
# refactorisation of the dense matrix (OSQP's adaptive step). The iteration cap bounds a hard problem to seconds
# before the chain moves on to CLARABEL. CLARABEL's default gaps (1e-8) stop min variance on 500 assets 2.5e-7
# (relative) above the optimum, 2.6e-5 away in weights; 1e-10 costs two more iterations and lands 1.4e-9 above it.
_SOLVER_OPTIONS: dict[Solver, dict[str, float | int | bool]] = {
    Solver.CLARABEL: {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
    Solver.OSQP: {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iter": 20_000},
    Solver.SCS: {"eps_abs": 1e-8, "eps_rel": 1e-8, "max_iters": 200_000},
    Solver.ECOS: {},
}
#: Solvers that take quadratic programs only (risk parity's log barrier needs exponential cones).
_QP_ONLY = frozenset({Solver.OSQP})


class SolveAttempt(NamedTuple):
    """One try of the fallback chain.

    ``outcome`` is a cvxpy status (``optimal``, ``optimal_inaccurate``, ``infeasible``, ...) or ``error``,
    ``no_value``, ``rejected`` (weights failed verification), ``not_installed`` or ``unsupported`` (a QP-only
    solver on a problem with cones).
    """

    solver: str
    shrinkage: float
    outcome: str
    message: str


@dataclass(frozen=True)
class OptimizationResult:
    """The outcome of one profile.

    Attributes
    ----------
    profile : Profile
        The profile.
    status : str
        ``"optimal"`` or ``"failed"``.
    symbols : tuple of str, length n_assets
        Asset names, in the column order of the returns matrix.
    weights : ndarray of shape (n_assets,), float64, or None
        Long-only weights summing to 1 within 1e-6, inside bounds and caps; None when failed.
    solver : str or None
        The cvxpy solver that solved (``"CLARABEL"``, ...), ``"closed_form"`` for equal_weight,
        ``"bisection"`` for hrp; None when failed.
    objective : float or None
        Annualised Sharpe ratio for max_sharpe; annualised portfolio variance for every other profile.
        Computed on the unshrunk covariance estimate. None when failed.
    risk_contributions : ndarray of shape (n_assets,), float64, or None
        ``w_i (S w)_i / (w' S w)``: fraction of the portfolio variance per asset, summing to 1 (unshrunk S).
    attempts : tuple of SolveAttempt
        Every solver try in order; empty for closed-form profiles.
    reason : str or None
        Why the profile failed; None when optimal.
    cluster_cap : float or None
        The cap applied to each cluster's total weight; None when caps are disabled.
    """

    profile: Profile
    status: str
    symbols: tuple[str, ...]
    weights: FloatArray | None
    solver: str | None
    objective: float | None
    risk_contributions: FloatArray | None
    attempts: tuple[SolveAttempt, ...]
    reason: str | None
    cluster_cap: float | None


@dataclass(frozen=True)
class _Problem:
    """Annualised inputs and constraints shared by the profiles of one run."""

    mu: FloatArray
    cov: FloatArray
    clusters: IntArray
    cap: float | None
    params: OptimizationParams
    symbols: tuple[str, ...]


def _validate(
    returns: object, clusters: object, params: object, symbols: object
) -> tuple[FloatArray, IntArray, tuple[str, ...]]:
    values = check_returns_array(returns)
    n_assets = values.shape[1]
    if not isinstance(clusters, np.ndarray) or not np.issubdtype(clusters.dtype, np.integer):
        raise TypeError(
            f"`clusters` must be an integer ndarray (n_assets,), got {getattr(clusters, 'dtype', clusters)!r}"
        )
    if clusters.shape != (n_assets,):
        raise ValueError(f"`clusters` must have shape (n_assets,) = ({n_assets},), got {clusters.shape}")
    if not isinstance(params, OptimizationParams):
        raise TypeError(f"`params` must be an OptimizationParams, got {type(params).__name__}")
    if isinstance(symbols, str) or not isinstance(symbols, Sequence):
        raise TypeError(f"`symbols` must be a sequence of str (n_assets,), got {type(symbols).__name__}")
    names = tuple(symbols)
    if len(names) != n_assets or not all(isinstance(s, str) for s in names) or len(set(names)) != n_assets:
        raise ValueError(f"`symbols` must be {n_assets} distinct str (n_assets,), got {len(names)} items")
    if (values.std(axis=0) == 0).any():
        raise ValueError(
            f"`returns` has zero-variance assets: {[names[i] for i in np.flatnonzero(values.std(axis=0) == 0)]}"
        )
    return values, clusters.astype(np.int64), names


def _prepare(returns: FloatArray, clusters: IntArray, params: OptimizationParams, symbols: tuple[str, ...]) -> _Problem:
    n_clusters = np.unique(clusters).size
    cap = None
    if params.cap_clusters:
        cap = params.cluster_cap if params.cluster_cap is not None else max(0.25, 1.0 / n_clusters)
    ppy = params.periods_per_year
    if ppy is None:
        raise ValueError(
            "`params.periods_per_year` is None: resolve it from the returns' calendar first "
            "(alpha.pipeline.run_optimization does) or set it"
        )
    cov = estimate_covariance(returns, params.covariance) * ppy
    return _Problem(returns.mean(axis=0) * ppy, cov, clusters, cap, params, symbols)


def _cleanup(weights: FloatArray, prob: _Problem) -> FloatArray:
    """Clip into the bounds, drop solver noise, renormalise, verify (raises ValueError)."""
    lo, hi = prob.params.min_weight, prob.params.max_weight
    w = np.clip(weights, lo, hi)
    if lo == 0.0:
        w[w < _ZERO_SNAP] = 0.0
    w = w / w.sum()
    validate_weights(w, clusters=prob.clusters, cap=prob.cap, min_weight=lo, max_weight=hi, tol=WEIGHT_TOLERANCE)
    return w


def _constraints(y: cp.Variable, k: cp.Expression, prob: _Problem) -> list[cp.Constraint]:
    """Bounds and caps on ``y``, homogenised by ``k`` (k = 1 for plain weights); only those that can bind."""
    lo, hi, cap = prob.params.min_weight, prob.params.max_weight, prob.cap
    out = [y >= lo * k] if lo > 0.0 else [y >= 0]
    if hi < 1.0:
        out.append(y <= hi * k)
    if cap is not None and cap < 1.0:
        labels = np.unique(prob.clusters)
        membership = (labels[:, None] == prob.clusters[None, :]).astype(np.float64)
        out.append(membership @ y <= cap * k)
    return out


#: Mean variance of the covariance the solvers see (a 32 % annual volatility).
_SOLVER_MEAN_VARIANCE = 0.1


def _scaled(cov: FloatArray) -> FloatArray:
    # Weights do not depend on the covariance scale; a fixed one keeps solver tolerances meaningful. At 0.1, OSQP's
    # default step (rho 0.1) takes 50 iterations on 500 assets where unit variance took 150-450; setting rho
    # instead would cost OSQP a second factorisation of the dense matrix at setup.
    return cov * (_SOLVER_MEAN_VARIANCE / np.mean(np.diag(cov)))


def _min_variance(cov: FloatArray, prob: _Problem) -> tuple[cp.Problem, Callable[[], FloatArray | None]]:
    # cvxpy is imported where a problem is built: ~0.7 s of CPU that every process loading the code location (each
    # Dagster run, whatever it materialises) would otherwise pay.
    import cvxpy as cp

    w = cp.Variable(cov.shape[0])
    problem = cp.Problem(
        cp.Minimize(cp.quad_form(w, cp.psd_wrap(_scaled(cov)))), [cp.sum(w) == 1, *_constraints(w, 1.0, prob)]
    )
    return problem, lambda: w.value


def _max_sharpe(cov: FloatArray, prob: _Problem) -> tuple[cp.Problem, Callable[[], FloatArray | None]]:
    import cvxpy as cp  # deferred, see _min_variance

    y = cp.Variable(cov.shape[0])
    k = cp.sum(y)
    excess = prob.mu - prob.params.risk_free_rate
    problem = cp.Problem(
        cp.Minimize(cp.quad_form(y, cp.psd_wrap(_scaled(cov)))), [excess @ y == 1, *_constraints(y, k, prob)]
    )
    return problem, lambda: None if y.value is None else y.value / y.value.sum()


def _risk_parity(cov: FloatArray, prob: _Problem) -> tuple[cp.Problem, Callable[[], FloatArray | None]]:
    import cvxpy as cp  # deferred, see _min_variance

    n_assets = cov.shape[0]
    y = cp.Variable(n_assets)
    k = cp.sum(y)
    # The level log(1 / n_assets) puts sum(y) near 1, which keeps the exponential cones well scaled.
    budget = cp.sum(cp.log(y)) / n_assets >= np.log(1.0 / n_assets)
    problem = cp.Problem(cp.Minimize(cp.quad_form(y, cp.psd_wrap(_scaled(cov)))), [budget, *_constraints(y, k, prob)])
    return problem, lambda: None if y.value is None else y.value / y.value.sum()


_BUILDERS = {
    Profile.MIN_VARIANCE: _min_variance,
    Profile.MAX_SHARPE: _max_sharpe,
    Profile.RISK_PARITY: _risk_parity,
}


def _solve_once(problem: cp.Problem, extract: Callable[[], FloatArray | None], solver: Solver) -> FloatArray:
    """Solve with one solver; raise SolverFailedError(outcome, message) unless a finite value comes back."""
    import cvxpy as cp  # deferred, see _min_variance

    name = solver.value.upper()
    if name not in cp.installed_solvers():
        raise SolverFailedError("not_installed", f"{name} is not installed")
    if solver in _QP_ONLY and not problem.is_qp():
        raise SolverFailedError("unsupported", f"{name} solves quadratic programs only; this problem has cones")
    try:
        with warnings.catch_warnings():
            # cvxpy warns on optimal_inaccurate; the status is recorded in the attempt instead.
            warnings.simplefilter("ignore", UserWarning)
            # The problems hold constants, no Parameter: DPP's parameter tensors would only cost compile time
            # (40 % of min variance on 500 assets).
            problem.solve(solver=name, ignore_dpp=True, **_SOLVER_OPTIONS[solver])
    except (cp.error.SolverError, ValueError, ArithmeticError) as err:
        raise SolverFailedError("error", f"{name}: {err}".strip()) from err
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise SolverFailedError(str(problem.status), f"{name} returned status {problem.status}")
    weights = extract()
    if weights is None or not np.isfinite(weights).all():
        raise SolverFailedError("no_value", f"{name} returned status {problem.status} but no finite value")
    return np.asarray(weights, dtype=np.float64)


def _solve_chain(profile: Profile, prob: _Problem) -> tuple[FloatArray | None, str | None, tuple[SolveAttempt, ...]]:
    attempts: list[SolveAttempt] = []
    for intensity in (0.0, *prob.params.shrinkage_steps):
        problem, extract = _BUILDERS[profile](shrink(prob.cov, intensity), prob)
        for solver in prob.params.solvers:
            name = solver.value.upper()
            try:
                raw = _solve_once(problem, extract, solver)
            except SolverFailedError as err:
                outcome, message = err.args
                attempts.append(SolveAttempt(name, intensity, outcome, message))
                continue
            try:
                weights = _cleanup(raw, prob)
            except ValueError as err:
                attempts.append(SolveAttempt(name, intensity, "rejected", str(err)))
                continue
            attempts.append(SolveAttempt(name, intensity, str(problem.status), ""))
            return weights, name, tuple(attempts)
    return None, None, tuple(attempts)


def _equal_weight(prob: _Problem) -> FloatArray:
    """Water-filling: ``min(t, u_c)`` per asset with ``sum = 1`` (see the module docstring)."""
    labels, inverse, sizes = np.unique(prob.clusters, return_inverse=True, return_counts=True)
    hi = prob.params.max_weight
    upper = np.full(labels.size, hi) if prob.cap is None else np.minimum(hi, prob.cap / sizes)
    order = np.argsort(upper, kind="stable")
    u_sorted, n_sorted = upper[order], sizes[order]
    # Level t_j when the j clusters of smallest u are saturated; the first t_j <= u_j is the answer.
    fixed_weight = np.concatenate([[0.0], np.cumsum(u_sorted * n_sorted)[:-1]])
    free_count = sizes.sum() - np.concatenate([[0], np.cumsum(n_sorted)[:-1]])
    levels = (1.0 - fixed_weight) / free_count
    fits = np.flatnonzero(levels <= u_sorted + 1e-15)
    level = levels[fits[0]] if fits.size else u_sorted[-1]
    level = max(level, prob.params.min_weight)
    return np.minimum(level, upper)[inverse]


def _result(
    profile: Profile,
    prob: _Problem,
    weights: FloatArray | None,
    solver: str | None,
    attempts: tuple[SolveAttempt, ...] = (),
    reason: str | None = None,
) -> OptimizationResult:
    if weights is None:
        return OptimizationResult(profile, "failed", prob.symbols, None, None, None, None, attempts, reason, prob.cap)
    marginal = prob.cov @ weights
    variance = float(weights @ marginal)
    objective = variance
    if profile is Profile.MAX_SHARPE:
        objective = float((prob.mu - prob.params.risk_free_rate) @ weights / np.sqrt(variance))
    return OptimizationResult(
        profile,
        "optimal",
        prob.symbols,
        weights,
        solver,
        objective,
        weights * marginal / variance,
        attempts,
        None,
        prob.cap,
    )


def _run_profile(profile: Profile, prob: _Problem) -> OptimizationResult:
    params = prob.params
    reason = infeasibility_reason(
        prob.clusters, cap=prob.cap, min_weight=params.min_weight, max_weight=params.max_weight
    )
    if reason is not None:
        return _result(profile, prob, None, None, reason=reason)
    if profile is Profile.EQUAL_WEIGHT or profile is Profile.HRP:
        if profile is Profile.EQUAL_WEIGHT:
            raw, solver = _equal_weight(prob), "closed_form"
        else:
            raw = hrp_weights(
                prob.cov,
                prob.clusters,
                linkage=params.hrp_linkage,
                min_weight=params.min_weight,
                max_weight=params.max_weight,
                cap=prob.cap,
            )
            solver = "bisection"
        try:
            return _result(profile, prob, _cleanup(raw, prob), solver)
        except ValueError as err:
            return _result(profile, prob, None, None, reason=f"{profile.value} weights failed verification: {err}")
    if profile is Profile.MAX_SHARPE:
        best = float(np.max(prob.mu - params.risk_free_rate))
        if best <= 0.0:
            return _result(
                profile,
                prob,
                None,
                None,
                reason=f"no asset has a positive expected excess return (largest mu - rf = {best:.6g} per year)",
            )
    weights, solver, attempts = _solve_chain(profile, prob)
    if weights is None:
        last = attempts[-1].message if attempts else ""
        reason = f"every solver and shrinkage step failed ({len(attempts)} attempts); last: {last}"
    return _result(profile, prob, weights, solver, attempts, reason)


def optimize_profile(
    returns: FloatArray,
    clusters: IntArray,
    profile: Profile,
    params: OptimizationParams,
    *,
    symbols: Sequence[str],
) -> OptimizationResult:
    """Compute one profile's weights (see the module docstring for each profile and the fallback chain).

    Parameters
    ----------
    returns : ndarray of shape (n_observations, n_assets), float64
        Simple per-period returns (fractions) of the atoms, already trimmed: no NaN, no zero-variance column.
    clusters : ndarray of shape (n_assets,), int
        Cluster label of each atom; the caps apply to each label's total weight.
    profile : Profile
        The profile to compute.
    params : OptimizationParams
        Covariance estimator, annualisation, bounds, caps, solvers, shrinkage steps.
    symbols : sequence of str, length n_assets
        Distinct names of the atoms, in column order.

    Returns
    -------
    OptimizationResult
        ``status="optimal"`` with verified weights, or ``status="failed"`` with ``reason`` and no weights.

    Raises
    ------
    TypeError
        If ``returns`` or ``clusters`` is not an ndarray of the right kind, ``profile`` is not a Profile,
        ``params`` not an OptimizationParams or ``symbols`` not a sequence of str.
    ValueError
        If ``returns`` is not 2-D, has fewer than 2 rows, holds NaN/inf or a zero-variance column, or if
        ``clusters`` or ``symbols`` does not have n_assets entries.
    """
    if not isinstance(profile, Profile):
        raise TypeError(f"`profile` must be a Profile, got {profile!r}")
    values, labels, names = _validate(returns, clusters, params, symbols)
    return _run_profile(profile, _prepare(values, labels, params, names))


def optimize_all(
    returns: FloatArray, clusters: IntArray, params: OptimizationParams, *, symbols: Sequence[str]
) -> dict[Profile, OptimizationResult]:
    """Compute every profile of ``params.profiles`` on one covariance estimate.

    Parameters
    ----------
    returns : ndarray of shape (n_observations, n_assets), float64
        As :func:`optimize_profile`.
    clusters : ndarray of shape (n_assets,), int
        As :func:`optimize_profile`.
    params : OptimizationParams
        As :func:`optimize_profile`; ``params.profiles`` selects and orders the profiles.
    symbols : sequence of str, length n_assets
        As :func:`optimize_profile`.

    Returns
    -------
    dict of Profile to OptimizationResult
        In the order of ``params.profiles``; a failed profile is present with ``status="failed"``.

    Raises
    ------
    TypeError, ValueError
        As :func:`optimize_profile`.
    """
    values, labels, names = _validate(returns, clusters, params, symbols)
    prob = _prepare(values, labels, params, names)
    return {profile: _run_profile(profile, prob) for profile in params.profiles}
