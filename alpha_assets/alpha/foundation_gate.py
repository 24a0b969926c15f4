"""Foundation gate predicates: each returns a verdict with observed numbers; bad data fails, never raises."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alpha_assets.alpha.selection_params import GateParams
from alpha_assets.validation import check_frame

#: Verdict names, one per gate check.
CHECK_NO_NAN = "no_nan"
CHECK_MAX_ABS_RETURN = "max_abs_return"
CHECK_INDEX_UTC_INCREASING = "index_utc_increasing"
CHECK_DENSITY = "density"
CHECK_FEATURES_PRESENT = "features_present"

#: How many offending symbols or dates a message names before "and N more".
_MAX_NAMED = 10


@dataclass(frozen=True)
class GateVerdict:
    """The outcome of one gate predicate.

    Attributes
    ----------
    name : str
        One of the ``CHECK_*`` constants.
    passed : bool
        True when the data is healthy.
    observed : dict
        JSON-ready observed numbers (python scalars, lists of str).
    threshold : dict
        JSON-ready thresholds the observation was compared with.
    message : str
        One sentence; on failure it names the offending symbols or dates and the numbers.
    """

    name: str
    passed: bool
    observed: dict[str, Any]
    threshold: dict[str, Any]
    message: str

    def to_json_dict(self) -> dict[str, Any]:
        """Return the verdict as a JSON-ready dict."""
        return {
            "name": self.name,
            "passed": self.passed,
            "observed": self.observed,
            "threshold": self.threshold,
            "message": self.message,
        }


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMED])
    return shown + (f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else "")


def _date_label(value: Any) -> str:
    return value.isoformat() if isinstance(value, pd.Timestamp) else str(value)


def check_no_nan(returns: pd.DataFrame) -> GateVerdict:
    """Check that the returns matrix holds no NaN.

    Parameters
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        Daily simple returns (fractions); index dates, columns symbol keys.

    Returns
    -------
    GateVerdict
        ``observed``: ``n_nan``, ``symbols`` and ``dates`` holding NaN (all of them, sorted).

    Raises
    ------
    TypeError
        If ``returns`` is not a DataFrame.
    """
    check_frame(returns, "returns")
    mask = np.isnan(returns.to_numpy(dtype=np.float64))
    n_nan = int(mask.sum())
    symbols = sorted(str(c) for c in returns.columns[mask.any(axis=0)])
    dates = [_date_label(d) for d in returns.index[mask.any(axis=1)]]
    passed = n_nan == 0
    message = (
        "no NaN in the returns matrix"
        if passed
        else f"{n_nan} NaN return(s) vs 0 allowed, in symbols {_named(symbols)} on dates {_named(dates)}"
    )
    return GateVerdict(
        CHECK_NO_NAN, passed, {"n_nan": n_nan, "symbols": symbols, "dates": dates}, {"max_nan": 0}, message
    )


def check_max_abs_return(returns: pd.DataFrame, limit: float = 5.0) -> GateVerdict:
    """Check that every |return| is strictly below ``limit``.

    Parameters
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        Daily simple returns (fractions). NaN is ignored here (see :func:`check_no_nan`); +-inf fails.
    limit : float, default 5.0
        Exclusive upper bound on |return| (5.0 = 500 %).

    Returns
    -------
    GateVerdict
        ``observed``: ``max_abs_return`` (0.0 for an empty matrix) and the ``offenders``, one
        ``{"symbol", "date", "value"}`` per cell at or above the limit (at most 10, largest first).

    Raises
    ------
    TypeError
        If ``returns`` is not a DataFrame.
    ValueError
        If ``limit`` is not a positive finite number.
    """
    check_frame(returns, "returns")
    if not np.isfinite(limit) or limit <= 0:
        raise ValueError(f"`limit` must be a positive finite fraction, got {limit!r}")
    values = np.abs(returns.to_numpy(dtype=np.float64))
    max_abs = float(np.fmax.reduce(values, axis=None, initial=0.0)) if values.size else 0.0
    rows, cols = np.nonzero(np.nan_to_num(values, nan=0.0) >= limit)
    order = np.argsort(-values[rows, cols], kind="stable")[:_MAX_NAMED]
    offenders = [
        {
            "symbol": str(returns.columns[cols[k]]),
            "date": _date_label(returns.index[rows[k]]),
            "value": float(returns.iat[rows[k], cols[k]]),
        }
        for k in order
    ]
    passed = len(rows) == 0
    message = (
        f"max |return| {max_abs:.6g} < {limit:.6g}"
        if passed
        else f"{len(rows)} return(s) with |r| >= {limit:.6g} (max {max_abs:.6g}): "
        + _named([f"{o['symbol']} on {o['date']} ({o['value']:.6g})" for o in offenders])
    )
    return GateVerdict(
        CHECK_MAX_ABS_RETURN,
        passed,
        {"max_abs_return": max_abs, "n_offending": int(len(rows)), "offenders": offenders},
        {"limit": float(limit)},
        message,
    )


def check_index_utc_increasing(returns: pd.DataFrame) -> GateVerdict:
    """Check that the index is a tz-aware UTC DatetimeIndex, strictly increasing.

    Parameters
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        The returns matrix; only its index is read.

    Returns
    -------
    GateVerdict
        ``observed``: ``index_type``, ``tz`` and ``violations`` (the first dates, at most 10, that are not
        after the date before them).

    Raises
    ------
    TypeError
        If ``returns`` is not a DataFrame.
    """
    check_frame(returns, "returns")
    index = returns.index
    is_dt = isinstance(index, pd.DatetimeIndex)
    tz = str(index.tz) if is_dt and index.tz is not None else None
    violations: list[str] = []
    if is_dt and len(index) > 1:
        steps = np.diff(index.asi8)
        violations = [_date_label(index[i + 1]) for i in np.nonzero(steps <= 0)[0][:_MAX_NAMED]]
    problems = []
    if not is_dt:
        problems.append(f"index is {type(index).__name__}, not DatetimeIndex")
    elif tz != "UTC":
        problems.append(f"index tz is {tz}, not UTC")
    if violations:
        problems.append(f"dates not strictly after their predecessor: {_named(violations)}")
    passed = not problems
    message = "index is tz-aware UTC and strictly increasing" if passed else "; ".join(problems)
    return GateVerdict(
        CHECK_INDEX_UTC_INCREASING,
        passed,
        {"index_type": type(index).__name__, "tz": tz, "violations": violations},
        {"tz": "UTC", "strictly_increasing": True},
        message,
    )


def check_density(returns: pd.DataFrame, min_assets: int, min_observations: int) -> GateVerdict:
    """Check that the matrix keeps at least ``min_assets`` columns and ``min_observations`` rows.

    Parameters
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        The trimmed returns matrix.
    min_assets : int
        Minimum number of symbols (columns), >= 1.
    min_observations : int
        Minimum number of dates (rows), >= 1.

    Returns
    -------
    GateVerdict
        ``observed``: ``n_assets`` and ``n_observations``.

    Raises
    ------
    TypeError
        If ``returns`` is not a DataFrame.
    ValueError
        If ``min_assets`` or ``min_observations`` is below 1.
    """
    check_frame(returns, "returns")
    for name, value in (("min_assets", min_assets), ("min_observations", min_observations)):
        if int(value) != value or value < 1:
            raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    n_observations, n_assets = returns.shape
    problems = []
    if n_assets < min_assets:
        problems.append(f"{n_assets} symbol(s) < {min_assets} required")
    if n_observations < min_observations:
        problems.append(f"{n_observations} observation(s) < {min_observations} required")
    passed = not problems
    message = (
        f"{n_assets} symbols >= {min_assets} and {n_observations} observations >= {min_observations}"
        if passed
        else "; ".join(problems)
    )
    return GateVerdict(
        CHECK_DENSITY,
        passed,
        {"n_assets": int(n_assets), "n_observations": int(n_observations)},
        {"min_assets": int(min_assets), "min_observations": int(min_observations)},
        message,
    )


def check_features_present(
    feature_rows: pd.DataFrame,
    symbols: Sequence[str],
    as_of: pd.Timestamp | None,
    required_columns: Sequence[str] = (),
) -> GateVerdict:
    """Check that every symbol has a feature row dated exactly at the as-of date.

    Parameters
    ----------
    feature_rows : pandas.DataFrame of shape (n_rows, 2 + n_features)
        Columns ``symbol`` (str), ``date`` (tz-aware UTC timestamps) and feature columns (float64).
        Usually one row per symbol, looked up at the as-of date; extra rows are ignored.
    symbols : sequence of str
        The symbols that need features: the columns of the returns matrix.
    as_of : pandas.Timestamp or None
        The as-of date: the last date of the returns index (tz-aware UTC). None (no usable index) fails.
    required_columns : sequence of str, default ()
        Feature columns that must exist in ``feature_rows`` (their values may be NaN; the selection policy
        vetoes those symbols).

    Returns
    -------
    GateVerdict
        ``observed``: ``as_of``, ``missing_symbols`` (no row with ``date == as_of``), ``stale_dates``
        (symbol -> the latest date it has instead, for at most 10 missing symbols) and ``missing_columns``.

    Raises
    ------
    TypeError
        If ``feature_rows`` is not a DataFrame.
    ValueError
        If ``feature_rows`` lacks the ``symbol`` or ``date`` column, or its dates or ``as_of`` are not
        tz-aware UTC.

    Notes
    -----
    "At the as-of date" means equality of timestamps: a row dated the day before ``as_of`` does not count,
    so stale features cannot pass for current ones.
    """
    check_frame(feature_rows, "feature_rows", ("n_rows", "2 + n_features"))
    absent = [c for c in ("symbol", "date") if c not in feature_rows.columns]
    if absent:
        raise ValueError(f"`feature_rows` must have columns symbol and date, missing {absent}")
    dates = feature_rows["date"]
    if not isinstance(dates.dtype, pd.DatetimeTZDtype) or str(dates.dt.tz) != "UTC":
        raise ValueError(f"`feature_rows['date']` must be tz-aware UTC timestamps, got dtype {dates.dtype}")
    if as_of is not None and (not isinstance(as_of, pd.Timestamp) or as_of.tz is None or str(as_of.tz) != "UTC"):
        raise ValueError(f"`as_of` must be a tz-aware UTC pandas Timestamp or None, got {as_of!r}")

    wanted = sorted(str(s) for s in symbols)
    missing_columns = sorted(set(required_columns) - set(feature_rows.columns))
    if as_of is None:
        missing = wanted
        stale: dict[str, str] = {}
    else:
        present = set(feature_rows.loc[dates == as_of, "symbol"].astype(str))
        missing = [s for s in wanted if s not in present]
        latest = feature_rows[feature_rows["symbol"].isin(missing[:_MAX_NAMED])].groupby("symbol")["date"].max()
        stale = {str(s): _date_label(d) for s, d in latest.items()}
    as_of_label = _date_label(as_of) if as_of is not None else None
    problems = []
    if as_of is None:
        problems.append("no as-of date: the returns index is empty or not tz-aware UTC")
    elif missing:
        latest_note = ", ".join(f"{s} latest {d}" for s, d in sorted(stale.items()))
        problems.append(
            f"{len(missing)} of {len(wanted)} symbol(s) have no feature row at {as_of_label}: "
            + _named(missing)
            + (f" ({latest_note})" if latest_note else "")
        )
    if missing_columns:
        problems.append(f"feature columns missing: {missing_columns}")
    passed = not problems
    message = f"all {len(wanted)} symbols have features at {as_of_label}" if passed else "; ".join(problems)
    return GateVerdict(
        CHECK_FEATURES_PRESENT,
        passed,
        {
            "as_of": as_of_label,
            "n_symbols": len(wanted),
            "missing_symbols": missing,
            "stale_dates": stale,
            "missing_columns": missing_columns,
        },
        {"date_equals_as_of": True, "required_columns": sorted(required_columns)},
        message,
    )


def run_gate(
    returns: pd.DataFrame,
    feature_rows: pd.DataFrame,
    params: GateParams,
    required_columns: Sequence[str] = (),
) -> list[GateVerdict]:
    """Run every gate predicate, in a fixed order, and return all verdicts (none short-circuits).

    Parameters
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        The trimmed returns matrix (fractions), index tz-aware UTC dates, columns symbol keys.
    feature_rows : pandas.DataFrame of shape (n_rows, 2 + n_features)
        The feature rows looked up for the run: columns ``symbol``, ``date`` and feature columns.
    params : GateParams
        Thresholds.
    required_columns : sequence of str, default ()
        Feature columns that must exist (see :func:`check_features_present`).

    Returns
    -------
    list of GateVerdict
        In order: no_nan, max_abs_return, index_utc_increasing, density, features_present. The gate passes
        when every verdict passed.

    Raises
    ------
    TypeError
        If ``returns`` or ``feature_rows`` is not a DataFrame, or ``params`` is not a GateParams.
    ValueError
        As the predicates raise on malformed arguments.

    Notes
    -----
    The as-of date is the last (latest) date of the returns index; when the index is empty or not tz-aware
    UTC datetime, the features check fails with a message instead of guessing a date.
    """
    if not isinstance(params, GateParams):
        raise TypeError(f"`params` must be a GateParams, got {type(params).__name__}")
    check_frame(returns, "returns")
    index = returns.index
    as_of = (
        index.max()
        if isinstance(index, pd.DatetimeIndex) and len(index) and index.tz is not None and str(index.tz) == "UTC"
        else None
    )
    return [
        check_no_nan(returns),
        check_max_abs_return(returns, params.max_abs_return),
        check_index_utc_increasing(returns),
        check_density(returns, params.min_assets, params.min_observations),
        check_features_present(feature_rows, list(returns.columns), as_of, required_columns),
    ]
