"""Inference: one score per symbol from its point-in-time features, by rank probabilities."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def _validate_features(features: pd.DataFrame) -> None:
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"`features` must be a pandas DataFrame (n_assets, n_features), got {type(features).__name__}")
    if "symbol" not in features.columns:
        raise ValueError("`features` must have a `symbol` column (one row per symbol)")
    duplicated = features["symbol"][features["symbol"].duplicated()]
    if len(duplicated):
        raise ValueError(f"`features` must hold one row per symbol, got duplicates {sorted(set(duplicated))[:10]}")


def score_symbols(features: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series:
    """Score symbols by the weighted geometric mean of per-feature rank probabilities.

    Parameters
    ----------
    features : pandas.DataFrame of shape (n_assets, 1 + n_features)
        One row per symbol at the as-of date: column ``symbol`` (unique str) and numeric feature columns.
        Other columns (``date``, unused features) are ignored.
    weights : mapping of str to float
        Feature name -> weight. A positive weight means a higher value is better, a negative weight means a
        lower value is better (e.g. volatility), 0 drops the feature. Every name must be a column.

    Returns
    -------
    pandas.Series of shape (n_assets,)
        Scores in (0, 1), float64, named ``score``, indexed by symbol in ascending symbol order. NaN only
        for a symbol whose every weighted feature is NaN.

    Raises
    ------
    TypeError
        If ``features`` is not a DataFrame or a weighted column is not numeric.
    ValueError
        If ``symbol`` is missing or duplicated, if a weight names no column, if a weight is not finite, or if
        every weight is 0.

    Notes
    -----
    For each feature with weight w, the non-NaN values are ranked (1 = worst, average rank for ties) among
    the n_f symbols that have the feature, and the probability is ``rank / (n_f + 1)``, in (0, 1). The score
    is ``exp(sum_f |w_f| log p_f / sum_f |w_f|)`` over the features the symbol has: a NaN feature is left
    out and the remaining weights renormalised. The policy vetoes symbols with missing features, so this only
    keeps the score defined. Ties give equal scores; callers order by (score descending, symbol ascending).
    """
    _validate_features(features)
    if not isinstance(weights, Mapping):
        raise TypeError(f"`weights` must be a mapping feature -> float, got {type(weights).__name__}")
    unknown = sorted(set(weights) - set(features.columns))
    if unknown:
        raise ValueError(f"`weights` names feature(s) {unknown} absent from `features` columns")
    bad = {k: v for k, v in weights.items() if not np.isfinite(float(v))}
    if bad:
        raise ValueError(f"`weights` must be finite, got {bad}")
    active = sorted(name for name, w in weights.items() if float(w) != 0.0)
    if not active:
        raise ValueError("`weights` must hold at least one non-zero weight, got all zero")
    non_numeric = [c for c in active if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise TypeError(f"`features` columns {non_numeric} must be numeric")

    table = features.set_index(features["symbol"].astype(str)).sort_index()
    # A negative weight flips the values so that rank 1 is always the worst.
    signs = np.array([np.sign(float(weights[c])) for c in active])
    abs_w = np.array([abs(float(weights[c])) for c in active])
    oriented = table[active].astype(np.float64) * signs
    ranks = oriented.rank(axis=0, method="average", na_option="keep").to_numpy()
    counts = oriented.notna().sum(axis=0).to_numpy()
    probs = ranks / (counts + 1.0)
    present = ~np.isnan(probs)
    log_sum = np.where(present, np.log(np.where(present, probs, 1.0)) * abs_w, 0.0).sum(axis=1)
    weight_sum = (present * abs_w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.exp(log_sum / weight_sum)
    return pd.Series(np.where(weight_sum > 0, score, np.nan), index=table.index, name="score", dtype=np.float64)
