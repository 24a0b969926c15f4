"""Parameter classes of the Alpha cycle's returns, gate and selection, resolved from a manifest profile.

Each field is declared once with :func:`~alpha_assets.parameters.param` (default and bounds) and documented by
the docstring under it; :func:`~alpha_assets.parameters.parameters` validates it from Python and from the
manifest alike. Options are ``str`` enums with lowercase values.

The feature column names the selection reads are kept in :data:`FEATURE_COLUMNS` and the named constants
below it; change them here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

from alpha_assets.alpha.clustering import ClusterMethod
from alpha_assets.lakehouse.features_store import STATISTIC_COLUMNS
from alpha_assets.parameters import bounded, param, parameters

#: The feature columns of ``features_matrix`` the selection may read, one row per symbol at the as-of date.
FEATURE_COLUMNS: tuple[str, ...] = ("recommend_all", "recommend_ma", "recommend_other", *STATISTIC_COLUMNS)
#: Technical rating in [-1, 1] whose sign makes an atom LONG or SHORT.
RATING_FEATURE = "recommend_all"
#: Rolling kurtosis over 60 bars (the features' convention, excess kurtosis), compared with ``max_kurtosis``.
KURTOSIS_FEATURE = "kurtosis_60d"
#: Annualised volatility over 60 bars, as a fraction (0.8 = 80 %/year), compared with ``max_volatility``.
VOLATILITY_FEATURE = "volatility_60d"
#: Kaufman efficiency ratio over 20 bars, in [0, 1], compared with ``min_efficiency``.
EFFICIENCY_FEATURE = "efficiency_ratio_20d"

#: Default inference weights: a negative weight means lower values score better.
DEFAULT_FEATURE_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "recommend_all": 1.0,
        "return_60d": 1.0,
        "efficiency_ratio_20d": 0.5,
        "avg_traded_value_20d": 0.5,
        "volatility_60d": -0.5,
        "kurtosis_60d": -0.25,
    }
)


#: A correlation window, in rows: 0 is the full sample.
WindowLength = bounded(int, ge=0)


class SelectionMethod(StrEnum):
    """Whether the HTR loop runs (``htr``) or every symbol becomes a LONG atom in one cluster (``all``)."""

    ALL = "all"
    HTR = "htr"


@parameters
class ReturnsParams:
    """Trimming thresholds of the returns matrix, applied in the order of the fields."""

    min_history: int = param(252, ge=2)
    """Minimum number of bars (non-NaN closes) a symbol needs; 90 in the crypto profile."""
    max_abs_return: float = param(5.0, ge=0.0)
    """A symbol with any |daily simple return| above this fraction is dropped (5.0 = +500 %)."""
    max_missing_fraction: float = param(0.10, ge=0.0, le=1.0)
    """A symbol missing more than this fraction of the return rows of the grid is dropped."""


@parameters
class GateParams:
    """Thresholds of the blocking foundation gate."""

    max_abs_return: float = param(5.0, ge=0.0)
    """The gate passes when max |return| is strictly below this fraction."""
    min_assets: int = param(5, ge=1)
    """Minimum number of symbols (columns) left in the returns matrix."""
    min_observations: int = param(60, ge=2)
    """Minimum number of dates (rows) left in the returns matrix."""


@parameters
class InferenceParams:
    """Weights of the per-feature rank probabilities in the score."""

    feature_weights: Mapping[str, float] = param(default_factory=lambda: dict(DEFAULT_FEATURE_WEIGHTS))
    """Feature name -> weight in the weighted geometric mean; a negative weight means lower is better, 0 ignores
    the feature. Names are feature columns (FEATURE_COLUMNS)."""


@parameters
class ClusteringParams:
    """Correlation distance windows and the clustering method with its bounds."""

    method: ClusterMethod = param(ClusterMethod.WARD)
    """ward (hierarchical, cut at the largest gap in merge heights) or hdbscan."""
    windows: tuple[WindowLength, ...] = param((60, 120, 0))
    """Trailing windows (rows) whose correlation distances are averaged; each 0 (the full sample) or >= 2; a
    window longer than the sample is the full sample."""
    min_clusters: int = param(2, ge=1)
    """Lower bound on the number of clusters."""
    max_clusters: int = param(25, ge=1)
    """Upper bound on the number of clusters."""
    hdbscan_min_cluster_size: int = param(3, ge=2)
    """HDBSCAN min_cluster_size (hdbscan method only)."""


@parameters
class PolicyParams:
    """Vetoes, winners per cluster and the relaxation stages of the HTR loop."""

    max_kurtosis: float | None = param(20.0, ge=0.0)
    """Veto when kurtosis_60d (excess kurtosis over 60 bars) is above; null disables."""
    max_volatility: float | None = param(1.5, ge=0.0)
    """Veto when volatility_60d (annualised, as a fraction) is above; null disables."""
    min_efficiency: float | None = param(0.05, ge=0.0, le=1.0)
    """Veto when efficiency_ratio_20d (Kaufman, in [0, 1]) is below; null disables."""
    top_n_per_cluster: int = param(3, ge=1)
    """Winners kept per cluster, best scores first."""
    min_winners: int = param(10, ge=1)
    """Relaxation goes on, stage by stage, until at least this many winners."""
    relax_fraction: float = param(0.20, ge=0.0, le=1.0)
    """Stage 1 multiplies max thresholds by 1 + f and min thresholds by 1 - f."""


@parameters
class SelectionParams:
    """Everything the selection step reads from the manifest."""

    method: SelectionMethod = param(SelectionMethod.HTR)
    """htr runs the HTR loop; all makes every symbol a LONG atom in one cluster."""
    inference: InferenceParams = param(default_factory=InferenceParams)
    """Score weights."""
    clustering: ClusteringParams = param(default_factory=ClusteringParams)
    """Distance and clustering."""
    policy: PolicyParams = param(default_factory=PolicyParams)
    """Vetoes, top N per cluster and relaxation."""
