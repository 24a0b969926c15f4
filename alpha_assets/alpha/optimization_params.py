"""Parameters of the optimisation step: profiles, covariance estimator, bounds, caps and the solver chain.

Every field carries ``metadata={"doc", "min", "max"}`` so the manifest loader can validate JSON against it;
options are enums whose values are the lowercase strings the manifest uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from alpha_assets.alpha.covariance import CovarianceMethod
from alpha_assets.alpha.hrp import Linkage


class Profile(StrEnum):
    """A portfolio construction rule; each one gives one set of target weights."""

    EQUAL_WEIGHT = "equal_weight"
    MIN_VARIANCE = "min_variance"
    MAX_SHARPE = "max_sharpe"
    RISK_PARITY = "risk_parity"
    HRP = "hrp"


class Solver(StrEnum):
    """A cvxpy solver; ``value.upper()`` is the cvxpy name. Solvers not installed are skipped and recorded."""

    CLARABEL = "clarabel"
    OSQP = "osqp"
    SCS = "scs"
    ECOS = "ecos"


@dataclass(frozen=True)
class OptimizationParams:
    """Parameters of :func:`alpha_assets.alpha.optimize.optimize_all`.

    Cluster caps: with ``cap_clusters=True`` the weights of the assets of each cluster sum to at most
    ``cluster_cap``, or to at most ``max(0.25, 1 / n_clusters)`` when ``cluster_cap`` is None;
    ``cap_clusters=False`` disables the caps (the textbook, uncapped optima).
    """

    profiles: tuple[Profile, ...] = field(
        default=tuple(Profile),
        metadata={"doc": "Profiles to compute, in this order.", "min": 1, "max": len(Profile)},
    )
    covariance: CovarianceMethod = field(
        default=CovarianceMethod.LEDOIT_WOLF,
        metadata={"doc": "Covariance estimator.", "min": None, "max": None},
    )
    periods_per_year: int | None = field(
        default=None,
        metadata={
            "doc": "Periods per year to annualise mean and covariance; null (default): the sessions per year of "
            "the returns' calendar (365 for a 24/7 crypto universe, 252 on NYSE sessions), a number overrides.",
            "min": 1,
            "max": 366,
        },
    )
    min_weight: float = field(
        default=0.0,
        metadata={"doc": "Lower bound of every asset's weight (fraction).", "min": 0.0, "max": 1.0},
    )
    max_weight: float = field(
        default=1.0,
        metadata={"doc": "Upper bound of every asset's weight (fraction).", "min": 0.0, "max": 1.0},
    )
    cap_clusters: bool = field(
        default=True,
        metadata={
            "doc": "Cap the total weight of each cluster; false gives uncapped optima.",
            "min": None,
            "max": None,
        },
    )
    cluster_cap: float | None = field(
        default=None,
        metadata={
            "doc": "Cap of each cluster's total weight (fraction, > 0); null: max(0.25, 1 / n_clusters).",
            "min": 0.0,
            "max": 1.0,
        },
    )
    risk_free_rate: float = field(
        default=0.0,
        metadata={"doc": "Annual risk-free rate (fraction) used by max_sharpe.", "min": -1.0, "max": 1.0},
    )
    solvers: tuple[Solver, ...] = field(
        default=(Solver.CLARABEL, Solver.OSQP, Solver.SCS, Solver.ECOS),
        metadata={
            "doc": "cvxpy solvers tried in order; missing ones are skipped.",
            "min": 1,
            "max": len(Solver),
        },
    )
    shrinkage_steps: tuple[float, ...] = field(
        default=(0.1, 0.3, 0.6),
        metadata={
            "doc": "Increasing shrinkage toward the scaled identity tried after every solver failed.",
            "min": 0.0,
            "max": 1.0,
        },
    )
    hrp_linkage: Linkage = field(
        default=Linkage.SINGLE,
        metadata={"doc": "Linkage of the HRP tree (single, as PyPortfolioOpt).", "min": None, "max": None},
    )

    def __post_init__(self) -> None:
        """Refuse values outside their documented ranges, naming the field."""
        if not self.profiles or not all(isinstance(p, Profile) for p in self.profiles):
            raise ValueError(f"`profiles` must be a non-empty tuple of Profile, got {self.profiles!r}")
        if len(set(self.profiles)) != len(self.profiles):
            raise ValueError(f"`profiles` must not repeat a profile, got {self.profiles!r}")
        if not isinstance(self.covariance, CovarianceMethod):
            raise TypeError(f"`covariance` must be a CovarianceMethod, got {self.covariance!r}")
        if not isinstance(self.hrp_linkage, Linkage):
            raise TypeError(f"`hrp_linkage` must be a Linkage, got {self.hrp_linkage!r}")
        if self.periods_per_year is not None and not 1 <= self.periods_per_year <= 366:
            raise ValueError(f"`periods_per_year` must be in [1, 366], got {self.periods_per_year}")
        if not 0.0 <= self.min_weight <= self.max_weight <= 1.0:
            raise ValueError(
                "`min_weight` and `max_weight` must satisfy 0 <= min_weight <= max_weight <= 1, "
                f"got {self.min_weight} and {self.max_weight}"
            )
        if self.max_weight <= 0.0:
            raise ValueError(f"`max_weight` must be > 0, got {self.max_weight}")
        if self.cluster_cap is not None and not 0.0 < self.cluster_cap <= 1.0:
            raise ValueError(f"`cluster_cap` must be in (0, 1] or None, got {self.cluster_cap}")
        if not -1.0 <= self.risk_free_rate <= 1.0:
            raise ValueError(f"`risk_free_rate` must be in [-1, 1], got {self.risk_free_rate}")
        if not self.solvers or not all(isinstance(s, Solver) for s in self.solvers):
            raise ValueError(f"`solvers` must be a non-empty tuple of Solver, got {self.solvers!r}")
        steps = self.shrinkage_steps
        if any(not 0.0 < s <= 1.0 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError(f"`shrinkage_steps` must be strictly increasing values in (0, 1], got {steps!r}")
