"""The HTR selection loop (Hierarchical Threshold Relaxation): inference, clustering, policy, synthesis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alpha_assets.alpha.clustering import cluster_assets, correlation_distance, ward_linkage
from alpha_assets.alpha.inference import score_symbols
from alpha_assets.alpha.policy import VetoRecord, apply_policy
from alpha_assets.alpha.selection_params import RATING_FEATURE, SelectionMethod, SelectionParams
from alpha_assets.alpha.synthesis import synthesize_atoms
from alpha_assets.typing import FloatArray
from alpha_assets.validation import check_returns_frame, json_float


@dataclass(frozen=True)
class SelectionResult:
    """Everything the selection decided, with the numbers behind it.

    Attributes
    ----------
    method : SelectionMethod
        ``HTR`` or ``ALL``.
    scores : pandas.Series of shape (n_assets,)
        Inference scores in (0, 1), float64, indexed by symbol (ascending); NaN for a symbol without any
        weighted feature.
    labels : pandas.Series of shape (n_assets,)
        int64 cluster labels (canonical, see :func:`~alpha_assets.alpha.clustering.cluster_assets`), indexed
        by symbol (ascending).
    linkage : ndarray of shape (n_assets - 1, 4) or None
        Ward linkage of the correlation distance, leaves in ascending symbol order, for a dendrogram;
        None with ``ALL``.
    vetoes : list of VetoRecord
        Every veto with its stage, reason, feature, observed value and threshold (empty with ``ALL``).
    stage_reached : int
        0 strict, 1 relaxed, 2 one per cluster, 3 fill (see :func:`~alpha_assets.alpha.policy.apply_policy`);
        0 with ``ALL``.
    met_minimum : bool
        Whether at least ``min_winners`` were selected (always True with ``ALL``).
    winners_per_stage : dict of int to int
        Stage -> winners at the end of that stage.
    winners : tuple of str
        Selected symbols, score descending then symbol ascending (ascending symbol with ``ALL``).
    admitted_at : dict of str to int
        Winner -> the relaxation stage that admitted it (0 for every symbol with ``ALL``).
    atoms : pandas.DataFrame of shape (n_atoms, 3)
        Columns symbol, direction (``"LONG"``/``"SHORT"``), cluster; one row per winner, same order.
    atom_returns : pandas.DataFrame of shape (n_observations, n_atoms)
        Daily simple returns (fractions) of the atoms, SHORT streams already negated and clipped; no NaN.
    """

    method: SelectionMethod
    scores: pd.Series
    labels: pd.Series
    linkage: FloatArray | None
    vetoes: list[VetoRecord]
    stage_reached: int
    met_minimum: bool
    winners_per_stage: dict[int, int]
    winners: tuple[str, ...]
    admitted_at: dict[str, int]
    atoms: pd.DataFrame
    atom_returns: pd.DataFrame

    @property
    def n_clusters(self) -> int:
        """Number of distinct cluster labels."""
        return int(self.labels.nunique())

    def to_json_dict(self) -> dict[str, Any]:
        """Return a deterministic JSON-ready dict for ``data/selection.json``.

        Returns
        -------
        dict
            Keys sorted at every level, floats as python floats, NaN as None, symbols in ascending order
            for the per-symbol maps. ``atom_returns`` is left out (the returns matrix is frozen apart).
        """
        payload = {
            "method": self.method.value,
            "n_assets": len(self.scores),
            "n_clusters": self.n_clusters,
            "scores": {str(s): json_float(v) for s, v in self.scores.items()},
            "clusters": {str(s): int(v) for s, v in self.labels.items()},
            "linkage": None if self.linkage is None else [[json_float(x) for x in row] for row in self.linkage],
            "vetoes": [v.to_json_dict() for v in self.vetoes],
            "stage_reached": int(self.stage_reached),
            "met_minimum": bool(self.met_minimum),
            "winners_per_stage": {str(k): int(v) for k, v in sorted(self.winners_per_stage.items())},
            "winners": list(self.winners),
            "admitted_at": {str(k): int(v) for k, v in self.admitted_at.items()},
            "atoms": [
                {"symbol": str(r.symbol), "direction": str(r.direction), "cluster": int(r.cluster)}
                for r in self.atoms.itertuples(index=False)
            ],
        }
        return _sorted_keys(payload)


def _sorted_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _sorted_keys(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [_sorted_keys(v) for v in obj]
    return obj


def _validate(returns: pd.DataFrame, features: pd.DataFrame, metadata: pd.DataFrame | None, params: Any) -> None:
    check_returns_frame(returns)
    if not np.isfinite(returns.to_numpy(dtype=np.float64)).all():
        raise ValueError("`returns` must be finite (no NaN, no inf); run the foundation gate first")
    if not isinstance(features, pd.DataFrame) or "symbol" not in features.columns:
        raise ValueError("`features` must be a DataFrame with a `symbol` column (one row per symbol)")
    if metadata is not None and (not isinstance(metadata, pd.DataFrame) or "symbol" not in metadata.columns):
        raise ValueError("`metadata` must be None or a DataFrame with a `symbol` column")
    if not isinstance(params, SelectionParams):
        raise TypeError(f"`params` must be a SelectionParams, got {type(params).__name__}")


def select(
    returns: pd.DataFrame,
    features: pd.DataFrame,
    metadata: pd.DataFrame | None,
    params: SelectionParams,
) -> SelectionResult:
    """Select the atoms of the portfolio from the returns and the as-of features.

    Parameters
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        The gated returns matrix: daily simple returns (fractions), float64, no NaN; index tz-aware UTC
        dates; columns unique symbol keys (processed in ascending order whatever their order here).
    features : pandas.DataFrame of shape (n_rows, 1 + n_features)
        One row per symbol at the as-of date: column ``symbol`` plus feature columns named as in
        :data:`~alpha_assets.alpha.selection_params.FEATURE_COLUMNS` (``recommend_all``, ``kurtosis_60d``, ...); other
        columns such as ``date`` are ignored, as are rows of symbols not in ``returns``.
    metadata : pandas.DataFrame or None
        One row per symbol with column ``symbol`` (and e.g. market, sector). When given, a symbol without a
        row is vetoed; None skips that veto.
    params : SelectionParams
        Method, inference weights, clustering and policy parameters.

    Returns
    -------
    SelectionResult

    Raises
    ------
    TypeError
        If ``returns`` is not a DataFrame or ``params`` not a SelectionParams.
    ValueError
        If ``returns`` is too small, has duplicate columns or NaN/inf; if ``features`` or ``metadata`` lack
        ``symbol``; as the steps raise (unknown weighted feature, bad clustering bounds, missing rating of
        a winner).

    Notes
    -----
    ``HTR``: scores (:func:`~alpha_assets.alpha.inference.score_symbols`) from the features of the symbols
    of ``returns``; correlation distance over ``params.clustering.windows``; clusters and the Ward linkage;
    policy (:func:`~alpha_assets.alpha.policy.apply_policy`) with the weighted features and the rating as
    required features; LONG/SHORT atoms by the rating's sign.

    ``ALL``: no HTR, for comparison with textbook optimisers: every symbol is a LONG atom, all in one
    cluster (label 0) so that cluster caps bind nothing; no vetoes, no clustering, no linkage. Scores are
    still computed when the weighted features are present, else they are NaN.
    """
    _validate(returns, features, metadata, params)
    symbols = sorted(str(c) for c in returns.columns)
    returns = returns.set_axis(returns.columns.astype(str), axis=1)[symbols]
    rows = features.assign(symbol=features["symbol"].astype(str))
    rows = rows[rows["symbol"].isin(symbols)]
    weights = params.inference.feature_weights

    if params.method is SelectionMethod.ALL:
        has_weighted = len(rows) > 0 and set(weights) <= set(rows.columns)
        scores = score_symbols(rows, weights) if has_weighted else pd.Series(dtype=np.float64, name="score")
        scores = scores.reindex(symbols)
        labels = pd.Series(np.zeros(len(symbols), dtype=np.int64), index=symbols, name="cluster")
        atoms = synthesize_atoms(returns, symbols, dict.fromkeys(symbols, 0.0), labels)
        return SelectionResult(
            method=params.method,
            scores=scores,
            labels=labels,
            linkage=None,
            vetoes=[],
            stage_reached=0,
            met_minimum=True,
            winners_per_stage={0: len(symbols)},
            winners=tuple(symbols),
            admitted_at=dict.fromkeys(symbols, 0),
            atoms=atoms.table,
            atom_returns=atoms.returns,
        )

    scores = score_symbols(rows, weights).reindex(symbols)
    cp = params.clustering
    distance = correlation_distance(returns, cp.windows)
    label_values = cluster_assets(distance, cp.method, cp.min_clusters, cp.max_clusters, cp.hdbscan_min_cluster_size)
    labels = pd.Series(label_values, index=symbols, name="cluster")
    required = sorted({name for name, w in weights.items() if float(w) != 0.0} | {RATING_FEATURE})
    metadata_symbols = None if metadata is None else set(metadata["symbol"].astype(str))
    outcome = apply_policy(
        scores, labels, rows, params.policy, metadata_symbols=metadata_symbols, required_features=required
    )
    # Winners always have a rating (it is a required feature); the default only serves an empty selection.
    ratings = rows.set_index("symbol").get(RATING_FEATURE, pd.Series(dtype=np.float64))
    atoms = synthesize_atoms(returns, outcome.winners, ratings, labels)
    return SelectionResult(
        method=params.method,
        scores=scores,
        labels=labels,
        linkage=ward_linkage(distance),
        vetoes=outcome.vetoes,
        stage_reached=outcome.stage_reached,
        met_minimum=outcome.met_minimum,
        winners_per_stage=outcome.winners_per_stage,
        winners=outcome.winners,
        admitted_at=outcome.admitted_at,
        atoms=atoms.table,
        atom_returns=atoms.returns,
    )
