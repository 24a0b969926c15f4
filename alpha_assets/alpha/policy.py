"""Policy of the HTR loop: vetoes, top N per cluster, and staged relaxation down to a minimum of winners."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alpha_assets.alpha.selection_params import EFFICIENCY_FEATURE, KURTOSIS_FEATURE, VOLATILITY_FEATURE, PolicyParams

#: Relaxation stages, in the order they are tried.
STAGE_STRICT = 0
STAGE_RELAXED = 1
STAGE_ONE_PER_CLUSTER = 2
STAGE_FILL = 3

#: Veto reasons.
VETO_MISSING_FEATURE_ROW = "missing_feature_row"
VETO_MISSING_FEATURE = "missing_feature"
VETO_MISSING_METADATA = "missing_metadata"
VETO_MAX_KURTOSIS = "max_kurtosis"
VETO_MAX_VOLATILITY = "max_volatility"
VETO_MIN_EFFICIENCY = "min_efficiency"


@dataclass(frozen=True)
class VetoRecord:
    """One symbol vetoed at one stage.

    Attributes
    ----------
    symbol : str
        The vetoed symbol.
    stage : int
        0 (strict thresholds) or 1 (relaxed); missing data vetoes are recorded once, at stage 0, and hold
        at every stage.
    reason : str
        One of the ``VETO_*`` constants.
    feature : str or None
        The feature column compared (None for a missing row or missing metadata).
    observed : float or None
        The symbol's value; None when missing.
    threshold : float or None
        The limit in force at that stage; None for missing data.
    """

    symbol: str
    stage: int
    reason: str
    feature: str | None
    observed: float | None
    threshold: float | None

    def to_json_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict (python floats, None for missing)."""
        return {
            "symbol": self.symbol,
            "stage": int(self.stage),
            "reason": self.reason,
            "feature": self.feature,
            "observed": None if self.observed is None else float(self.observed),
            "threshold": None if self.threshold is None else float(self.threshold),
        }


@dataclass(frozen=True)
class PolicyResult:
    """What the policy kept and why the others went.

    Attributes
    ----------
    winners : tuple of str
        Selected symbols, ordered by score descending then symbol ascending.
    admitted_at : dict of str to int
        Winner -> the stage that admitted it.
    stage_reached : int
        The first stage whose winners numbered at least ``min_winners``, or 3 when none did.
    met_minimum : bool
        Whether ``len(winners) >= min_winners``.
    winners_per_stage : dict of int to int
        Stage -> number of winners at the end of that stage, for the stages tried.
    vetoes : list of VetoRecord
        Missing-data vetoes (no row, each missing feature, no metadata), then threshold vetoes of stage 0
        rule by rule, then those of stage 1 when it ran; symbols ascending within each group.
    """

    winners: tuple[str, ...]
    admitted_at: dict[str, int]
    stage_reached: int
    met_minimum: bool
    winners_per_stage: dict[int, int]
    vetoes: list[VetoRecord]


def _threshold_rules(params: PolicyParams, relax: float) -> list[tuple[str, str, str, float]]:
    """(reason, feature, "max"|"min", threshold) for the enabled rules, thresholds relaxed by ``relax``."""
    rules = [
        (VETO_MAX_KURTOSIS, KURTOSIS_FEATURE, "max", params.max_kurtosis),
        (VETO_MAX_VOLATILITY, VOLATILITY_FEATURE, "max", params.max_volatility),
        (VETO_MIN_EFFICIENCY, EFFICIENCY_FEATURE, "min", params.min_efficiency),
    ]
    return [
        (reason, feature, kind, float(limit) * (1.0 + relax if kind == "max" else 1.0 - relax))
        for reason, feature, kind, limit in rules
        if limit is not None
    ]


def _threshold_vetoes(
    table: pd.DataFrame, candidates: np.ndarray, params: PolicyParams, stage: int, relax: float
) -> tuple[np.ndarray, list[VetoRecord]]:
    vetoed = np.zeros(len(table), dtype=bool)
    records = []
    for reason, feature, kind, limit in _threshold_rules(params, relax):
        values = table[feature].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            failed = candidates & ((values > limit) if kind == "max" else (values < limit))
        vetoed |= failed
        records += [
            VetoRecord(str(sym), stage, reason, feature, float(val), limit)
            for sym, val in zip(table.index[failed], values[failed], strict=True)
        ]
    return vetoed, records


def _missing_data_vetoes(
    symbols: np.ndarray, with_row: set[str], table: pd.DataFrame, metadata_symbols: Collection[str] | None
) -> tuple[np.ndarray, list[VetoRecord]]:
    """Mask of symbols with every required datum, and one record per missing datum (never relaxed)."""
    has_row = np.array([s in with_row for s in symbols], dtype=bool)
    missing_any = ~has_row
    vetoes = [VetoRecord(s, STAGE_STRICT, VETO_MISSING_FEATURE_ROW, None, None, None) for s in symbols[~has_row]]
    for feature in table.columns:
        missing = has_row & table[feature].isna().to_numpy()
        missing_any |= missing
        vetoes += [VetoRecord(s, STAGE_STRICT, VETO_MISSING_FEATURE, feature, None, None) for s in symbols[missing]]
    if metadata_symbols is not None:
        known = {str(s) for s in metadata_symbols}
        no_meta = np.array([s not in known for s in symbols], dtype=bool)
        missing_any |= no_meta
        vetoes += [VetoRecord(s, STAGE_STRICT, VETO_MISSING_METADATA, None, None, None) for s in symbols[no_meta]]
    return ~missing_any, vetoes


def _top_n(ranked: pd.DataFrame, eligible: np.ndarray, n: int) -> list[str]:
    return list(ranked[eligible].groupby("cluster", sort=False).head(n).index)


def apply_policy(
    scores: pd.Series,
    labels: pd.Series,
    features: pd.DataFrame,
    params: PolicyParams,
    *,
    metadata_symbols: Collection[str] | None = None,
    required_features: Sequence[str] = (),
) -> PolicyResult:
    """Veto, keep the top N per cluster, and relax stage by stage until ``min_winners`` are selected.

    Parameters
    ----------
    scores : pandas.Series of shape (n_assets,)
        Scores from :func:`~alpha_assets.alpha.inference.score_symbols`, indexed by symbol; NaN sorts last.
    labels : pandas.Series of shape (n_assets,)
        Integer cluster labels, indexed by the same symbols.
    features : pandas.DataFrame of shape (n_rows, 1 + n_features)
        Column ``symbol`` plus feature columns, one row per symbol at the as-of date. Symbols of ``scores``
        without a row are vetoed; rows of other symbols are ignored.
    params : PolicyParams
        Thresholds, top N, minimum of winners and relaxation fraction.
    metadata_symbols : collection of str, optional
        Symbols that have metadata (market, sector); when given, the others are vetoed. None skips the veto.
    required_features : sequence of str, default ()
        Feature columns a symbol must have (non-NaN); the columns of the enabled thresholds are always
        required.

    Returns
    -------
    PolicyResult

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        If ``scores`` and ``labels`` do not share the same unique index, or ``features`` lacks ``symbol`` or
        repeats a symbol.

    Notes
    -----
    A symbol is *available* unless it misses data (no feature row, a NaN or absent required feature, or
    metadata when metadata is given); missing data is never relaxed. Candidates are ranked by score
    descending, then symbol ascending. The stages, stopping at the first with >= ``min_winners`` winners:

    0. strict: available symbols within every threshold; top ``top_n_per_cluster`` per cluster;
    1. relaxed: as 0 with max thresholds times (1 + ``relax_fraction``) and min thresholds times
       (1 - ``relax_fraction``);
    2. one per cluster: the stage-1 winners, plus, for every cluster left without a winner, its best-ranked
       available symbol even if it breaks the relaxed thresholds;
    3. fill: the stage-2 winners, plus the best-ranked remaining available symbols of any cluster until
       ``min_winners`` (or until none is left, then ``met_minimum`` is False).
    """
    if not isinstance(scores, pd.Series) or not isinstance(labels, pd.Series):
        raise TypeError("`scores` and `labels` must be pandas Series indexed by symbol")
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"`features` must be a pandas DataFrame, got {type(features).__name__}")
    if not isinstance(params, PolicyParams):
        raise TypeError(f"`params` must be a PolicyParams, got {type(params).__name__}")
    if not scores.index.is_unique or set(scores.index) != set(labels.index):
        raise ValueError("`scores` and `labels` must share the same unique symbol index")
    if "symbol" not in features.columns:
        raise ValueError("`features` must have a `symbol` column (one row per symbol)")

    symbols = np.array(sorted(str(s) for s in scores.index), dtype=object)
    score = scores.reindex(symbols).to_numpy(dtype=np.float64)
    order = np.lexsort((symbols, -np.nan_to_num(score, nan=-np.inf)))
    needed = sorted(set(required_features) | {feature for _, feature, _, _ in _threshold_rules(params, 0.0)})
    rows = features.assign(symbol=features["symbol"].astype(str))
    if rows["symbol"].duplicated().any():
        raise ValueError("`features` must hold one row per symbol, got duplicated symbols")
    table = rows.set_index("symbol").reindex(index=symbols, columns=needed).astype(np.float64)
    available, vetoes = _missing_data_vetoes(symbols, set(rows["symbol"]), table, metadata_symbols)

    ranked = pd.DataFrame({"cluster": labels.reindex(symbols).to_numpy()}, index=symbols).iloc[order]
    available_ranked = available[order]
    winners_per_stage: dict[int, int] = {}
    admitted: dict[str, int] = {}

    def finish(stage: int) -> PolicyResult:
        winners = tuple(s for s in ranked.index if s in admitted)
        return PolicyResult(
            winners,
            dict(sorted(admitted.items())),
            stage,
            len(winners) >= params.min_winners,
            winners_per_stage,
            vetoes,
        )

    for stage, relax in ((STAGE_STRICT, 0.0), (STAGE_RELAXED, params.relax_fraction)):
        vetoed, records = _threshold_vetoes(table, available, params, stage, relax)
        vetoes += records
        picked = _top_n(ranked, (available & ~vetoed)[order], params.top_n_per_cluster)
        # Relaxing can let a better-scored symbol displace a strict winner, so stage 1 re-picks from scratch.
        admitted = {s: admitted.get(s, stage) for s in picked}
        winners_per_stage[stage] = len(admitted)
        if len(admitted) >= params.min_winners:
            return finish(stage)

    covered = set(ranked.loc[list(admitted), "cluster"])
    uncovered = available_ranked & ~ranked["cluster"].isin(covered).to_numpy()
    admitted.update({s: STAGE_ONE_PER_CLUSTER for s in _top_n(ranked, uncovered, 1)})
    winners_per_stage[STAGE_ONE_PER_CLUSTER] = len(admitted)
    if len(admitted) >= params.min_winners:
        return finish(STAGE_ONE_PER_CLUSTER)

    remaining = [s for s in ranked.index[available_ranked] if s not in admitted]
    admitted.update({s: STAGE_FILL for s in remaining[: params.min_winners - len(admitted)]})
    winners_per_stage[STAGE_FILL] = len(admitted)
    return finish(STAGE_FILL)
