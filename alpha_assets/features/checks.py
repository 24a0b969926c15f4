"""Health predicates over stored feature rows: infinities, coverage of the last bar, point-in-time spot check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from alpha_assets.features.matrix import FEATURE_COLUMNS, compute_symbol_features

#: Stored and recomputed values may differ by floating-point summation order only.
POINT_IN_TIME_RTOL = 1e-9


def infinite_cells_by_symbol(features: pd.DataFrame) -> pd.Series:
    """How many cells of the feature columns are +inf or -inf (NaN is allowed), per symbol.

    Parameters
    ----------
    features : DataFrame of shape (n_rows, 2 + n_features)
        Long-form feature rows (``date``, ``symbol``, feature columns) of any number of symbols.

    Returns
    -------
    Series of int64
        Indexed by the symbols that have rows. Counted column by column over every row at once, never a
        symbol at a time (a daily run checks thousands of symbols) nor as one copied matrix.
    """
    if not len(features):
        return pd.Series(dtype="int64")
    per_row = np.zeros(len(features), dtype=np.int64)
    for column in (c for c in FEATURE_COLUMNS if c in features.columns):
        per_row += np.isinf(features[column].to_numpy(dtype="float64"))
    return pd.Series(per_row, index=features["symbol"].to_numpy()).groupby(level=0, sort=False).sum()


def point_in_time_mismatches(
    bars: pd.DataFrame, stored: pd.DataFrame, symbol_key: str, *, cut: int, periods_per_year: float = 365.0
) -> list[str]:
    """Feature columns whose stored values differ from a recomputation on the first ``cut`` bars only.

    Parameters
    ----------
    bars : DataFrame of shape (n_observations, 6)
        The symbol's stored daily bars (``timestamp`` and OHLCV).
    stored : DataFrame of shape (n_rows, 2 + n_features)
        The symbol's stored feature rows (``date``, ``symbol``, feature columns).
    symbol_key : str
        The symbol.
    cut : int
        Number of leading bars kept; every stored row dated on or before the last kept bar must equal the
        recomputation (NaN equals NaN) if nothing looks ahead.
    periods_per_year : float, default 365.0
        The symbol's annualisation, as the backfill used it
        (:func:`~alpha_assets.features.backfill.symbol_periods_per_year`).

    Raises
    ------
    ValueError
        When ``cut`` is not in ``[1, n_observations]``.
    """
    if not 1 <= cut <= len(bars):
        raise ValueError(f"`cut` must be in [1, {len(bars)}] (n_observations), got {cut}")
    truncated = compute_symbol_features(
        bars.iloc[:cut].reset_index(drop=True), symbol_key, periods_per_year=periods_per_year
    )
    last_kept = truncated["date"].iloc[-1]
    past = stored[stored["date"] <= last_kept]
    recomputed = truncated.set_index("date").reindex(pd.DatetimeIndex(past["date"]))
    mismatched = []
    for column in FEATURE_COLUMNS:
        a = past[column].to_numpy(dtype="float64")
        b = recomputed[column].to_numpy(dtype="float64")
        if not np.allclose(a, b, rtol=POINT_IN_TIME_RTOL, atol=0.0, equal_nan=True):
            mismatched.append(column)
    return mismatched
