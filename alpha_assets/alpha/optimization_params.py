"""Parameters of the optimisation step: profiles, covariance estimator, bounds, caps and the solver chain.

Each field is declared once with :func:`~alpha_assets.parameters.param` (default and bounds) and documented by
the docstring under it; it is validated from Python and from the manifest alike. Options are enums whose values
are the lowercase strings the manifest uses.
"""

from __future__ import annotations

from enum import StrEnum

from alpha_assets.alpha.covariance import CovarianceMethod
from alpha_assets.alpha.hrp import Linkage
from alpha_assets.parameters import bounded, param, parameters


class Profile(StrEnum):
    """A portfolio construction rule; each one gives one set of target weights."""

    EQUAL_WEIGHT = "equal_weight"
    MIN_VARIANCE = "min_variance"
    MAX_SHARPE = "max_sharpe"
    RISK_PARITY = "risk_parity"
    HRP = "hrp"


class Solver(StrEnum):
    """A cvxpy solver; ``value.upper()`` is the cvxpy name.

    Solvers not installed are skipped and recorded, and so are QP-only solvers (OSQP) on a problem with cones.
    """

    CLARABEL = "clarabel"
    OSQP = "osqp"
    SCS = "scs"
    ECOS = "ecos"


#: How far a covariance is shrunk toward the scaled identity: 1 is the identity itself.
ShrinkageIntensity = bounded(float, gt=0.0, le=1.0)


@parameters
class OptimizationParams:
    """Parameters of :func:`alpha_assets.alpha.optimize.optimize_all`.

    Cluster caps: with ``cap_clusters=True`` the weights of the assets of each cluster sum to at most
    ``cluster_cap``, or to at most ``max(0.25, 1 / n_clusters)`` when ``cluster_cap`` is None;
    ``cap_clusters=False`` disables the caps (the textbook, uncapped optima).
    """

    profiles: tuple[Profile, ...] = param(tuple(Profile), min_items=1)
    """Profiles to compute, in this order, each once."""
    covariance: CovarianceMethod = param(CovarianceMethod.LEDOIT_WOLF)
    """Covariance estimator."""
    periods_per_year: int | None = param(None, ge=1, le=366)
    """Periods per year to annualise mean and covariance; null (default): the sessions per year of the returns'
    calendar (365 for a 24/7 crypto universe, 252 on NYSE sessions), a number overrides."""
    min_weight: float = param(0.0, ge=0.0, le=1.0)
    """Lower bound of every asset's weight (fraction)."""
    max_weight: float = param(1.0, gt=0.0, le=1.0)
    """Upper bound of every asset's weight (fraction, at least min_weight)."""
    cap_clusters: bool = param(True)
    """Cap the total weight of each cluster; false gives uncapped optima."""
    cluster_cap: float | None = param(None, gt=0.0, le=1.0)
    """Cap of each cluster's total weight (fraction); null: max(0.25, 1 / n_clusters)."""
    risk_free_rate: float = param(0.0, ge=-1.0, le=1.0)
    """Annual risk-free rate (fraction) used by max_sharpe."""
    solvers: tuple[Solver, ...] = param((Solver.OSQP, Solver.CLARABEL, Solver.SCS, Solver.ECOS), min_items=1)
    """cvxpy solvers tried in order; missing ones are skipped, and so is OSQP for risk_parity (OSQP solves
    quadratic programs only)."""
    shrinkage_steps: tuple[ShrinkageIntensity, ...] = param((0.1, 0.3, 0.6))
    """Strictly increasing shrinkage toward the scaled identity tried after every solver failed."""
    hrp_linkage: Linkage = param(Linkage.SINGLE)
    """Linkage of the HRP tree (single, as PyPortfolioOpt)."""

    def __post_init__(self) -> None:
        """Refuse what no single field's bounds express."""
        if len(set(self.profiles)) != len(self.profiles):
            raise ValueError(f"profiles must not repeat a profile, got {[p.value for p in self.profiles]}")
        if self.min_weight > self.max_weight:
            raise ValueError(f"min_weight ({self.min_weight}) must not exceed max_weight ({self.max_weight})")
        steps = self.shrinkage_steps
        if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError(f"shrinkage_steps must be strictly increasing, got {list(steps)}")
