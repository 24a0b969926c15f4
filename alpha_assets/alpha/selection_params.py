"""Parameter dataclasses of the Alpha cycle, resolved from a manifest profile.

Every field carries ``metadata={"doc": ..., "min": ..., "max": ...}`` (bounds inclusive, ``None`` meaning
unbounded) so that the manifest loader can refuse unknown keys, wrong types, out-of-range values and
unknown enum choices with one message shape. Options are ``str`` enums with lowercase values.

The feature column names the selection reads are kept in :data:`FEATURE_COLUMNS` and the named constants
below it; change them here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from alpha_assets.alpha.clustering import ClusterMethod
from alpha_assets.lakehouse.features_store import STATISTIC_COLUMNS

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


class SelectionMethod(StrEnum):
    """Whether the HTR loop runs (``htr``) or every symbol becomes a LONG atom in one cluster (``all``)."""

    ALL = "all"
    HTR = "htr"


@dataclass(frozen=True)
class ReturnsParams:
    """Trimming thresholds of the returns matrix, applied in the order of the fields."""

    min_history: int = field(
        default=252,
        metadata={
            "doc": "Minimum number of bars (non-NaN closes) a symbol needs; 90 in the crypto profile.",
            "min": 2,
            "max": None,
        },
    )
    max_abs_return: float = field(
        default=5.0,
        metadata={
            "doc": "A symbol with any |daily simple return| above this fraction is dropped (5.0 = +500 %).",
            "min": 0.0,
            "max": None,
        },
    )
    max_missing_fraction: float = field(
        default=0.10,
        metadata={
            "doc": "A symbol missing more than this fraction of the return rows of the grid is dropped.",
            "min": 0.0,
            "max": 1.0,
        },
    )


@dataclass(frozen=True)
class GateParams:
    """Thresholds of the blocking foundation gate."""

    max_abs_return: float = field(
        default=5.0,
        metadata={
            "doc": "The gate passes when max |return| is strictly below this fraction.",
            "min": 0.0,
            "max": None,
        },
    )
    min_assets: int = field(
        default=5,
        metadata={
            "doc": "Minimum number of symbols (columns) left in the returns matrix.",
            "min": 1,
            "max": None,
        },
    )
    min_observations: int = field(
        default=60,
        metadata={"doc": "Minimum number of dates (rows) left in the returns matrix.", "min": 2, "max": None},
    )


@dataclass(frozen=True)
class InferenceParams:
    """Weights of the per-feature rank probabilities in the score."""

    feature_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_FEATURE_WEIGHTS),
        metadata={
            "doc": "Feature name -> weight in the weighted geometric mean; a negative weight means lower "
            "is better, 0 ignores the feature. Names are feature columns (FEATURE_COLUMNS).",
            "min": None,
            "max": None,
        },
    )


@dataclass(frozen=True)
class ClusteringParams:
    """Correlation distance windows and the clustering method with its bounds."""

    method: ClusterMethod = field(
        default=ClusterMethod.WARD,
        metadata={
            "doc": "ward (hierarchical, cut at the largest gap in merge heights) or hdbscan.",
            "min": None,
            "max": None,
        },
    )
    windows: tuple[int, ...] = field(
        default=(60, 120, 0),
        metadata={
            "doc": "Trailing windows (rows) whose correlation distances are averaged; each 0 (the full "
            "sample) or >= 2; a window longer than the sample is the full sample.",
            "min": 0,
            "max": None,
        },
    )
    min_clusters: int = field(
        default=2,
        metadata={"doc": "Lower bound on the number of clusters.", "min": 1, "max": None},
    )
    max_clusters: int = field(
        default=25,
        metadata={"doc": "Upper bound on the number of clusters.", "min": 1, "max": None},
    )
    hdbscan_min_cluster_size: int = field(
        default=3,
        metadata={"doc": "HDBSCAN min_cluster_size (hdbscan method only).", "min": 2, "max": None},
    )


@dataclass(frozen=True)
class PolicyParams:
    """Vetoes, winners per cluster and the relaxation stages of the HTR loop."""

    max_kurtosis: float | None = field(
        default=20.0,
        metadata={"doc": f"Veto when {KURTOSIS_FEATURE} is above; null disables.", "min": 0.0, "max": None},
    )
    max_volatility: float | None = field(
        default=1.5,
        metadata={
            "doc": f"Veto when {VOLATILITY_FEATURE} (annualised fraction) is above; null disables.",
            "min": 0.0,
            "max": None,
        },
    )
    min_efficiency: float | None = field(
        default=0.05,
        metadata={"doc": f"Veto when {EFFICIENCY_FEATURE} is below; null disables.", "min": 0.0, "max": 1.0},
    )
    top_n_per_cluster: int = field(
        default=3,
        metadata={"doc": "Winners kept per cluster, best scores first.", "min": 1, "max": None},
    )
    min_winners: int = field(
        default=10,
        metadata={
            "doc": "Relaxation goes on, stage by stage, until at least this many winners.",
            "min": 1,
            "max": None,
        },
    )
    relax_fraction: float = field(
        default=0.20,
        metadata={
            "doc": "Stage 1 multiplies max thresholds by 1 + f and min thresholds by 1 - f.",
            "min": 0.0,
            "max": 1.0,
        },
    )


@dataclass(frozen=True)
class SelectionParams:
    """Everything the selection step reads from the manifest."""

    method: SelectionMethod = field(
        default=SelectionMethod.HTR,
        metadata={
            "doc": "htr runs the HTR loop; all makes every symbol a LONG atom in one cluster.",
            "min": None,
            "max": None,
        },
    )
    inference: InferenceParams = field(
        default_factory=InferenceParams,
        metadata={"doc": "Score weights.", "min": None, "max": None},
    )
    clustering: ClusteringParams = field(
        default_factory=ClusteringParams,
        metadata={"doc": "Distance and clustering.", "min": None, "max": None},
    )
    policy: PolicyParams = field(
        default_factory=PolicyParams,
        metadata={"doc": "Vetoes, top N per cluster and relaxation.", "min": None, "max": None},
    )
