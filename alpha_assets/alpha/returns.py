"""Closes -> the trimmed matrix of daily simple returns, every drop recorded with its reason.

A universe mixing calendars (crypto trading 24/7, equities on their exchange's sessions) is first aligned
by :func:`align_closes`: the returns are taken on the exchange sessions, each 24/7 member compounded over
the days in between, so every row is one synchronous period for every member (see its Notes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alpha_assets.alpha.selection_params import ReturnsParams
from alpha_assets.lakehouse.calendars import CONTINUOUS, TradingCalendar, day_to_timestamp, periods_per_year
from alpha_assets.typing import FloatArray

#: Trimming stages, in the order they run.
STAGE_MIN_HISTORY = "min_history"
STAGE_MAX_ABS_RETURN = "max_abs_return"
STAGE_ZERO_VARIANCE = "zero_variance"
STAGE_MAX_MISSING = "max_missing_fraction"
STAGE_ROW_NAN = "row_nan"


@dataclass(frozen=True)
class DropRecord:
    """One symbol (column) or one date (row) removed from the returns matrix.

    Attributes
    ----------
    axis : {"symbol", "row"}
        What was dropped.
    key : str
        The symbol key, or the row's date in ISO format (``2024-03-05T00:00:00+00:00``).
    stage : str
        The trimming stage, one of the ``STAGE_*`` constants.
    reason : str
        A sentence naming the key, the observed value and the threshold.
    observed : float
        The value that failed (bar count, max |return|, standard deviation, missing fraction, NaN count).
    threshold : float
        The limit it was compared with.
    at : str or None
        The date (ISO, UTC midnight) of the observation that failed, for a symbol dropped at the
        ``max_abs_return`` stage: the day of its largest |return|. None for the other stages.
    """

    axis: str
    key: str
    stage: str
    reason: str
    observed: float
    threshold: float
    at: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict (python floats)."""
        out = asdict(self)
        out["observed"] = float(self.observed)
        out["threshold"] = float(self.threshold)
        return out


@dataclass(frozen=True)
class ReturnsMatrix:
    """The trimmed returns and the log of what trimming removed.

    Attributes
    ----------
    returns : pandas.DataFrame of shape (n_observations, n_assets)
        Daily simple returns as fractions (0.01 = +1 %), float64, no NaN. Index: the tz-aware UTC-midnight
        dates of the close grid (the return on date t is close_t / close_{t-1} - 1, t-1 being the previous
        row of the grid); columns: symbol keys in the order of ``closes``.
    drops : list of DropRecord
        Symbols first, in stage order, then rows, in date order.
    """

    returns: pd.DataFrame
    drops: list[DropRecord] = field(default_factory=list)

    def drops_frame(self) -> pd.DataFrame:
        """Return the drops as a frame with columns axis, key, stage, reason, observed, threshold."""
        columns = ["axis", "key", "stage", "reason", "observed", "threshold"]
        return pd.DataFrame([d.to_json_dict() for d in self.drops], columns=columns)


@dataclass(frozen=True)
class AlignedCloses:
    """Closes on the grid of a universe's calendars, and how to annualise their returns.

    Attributes
    ----------
    closes : pandas.DataFrame of shape (n_dates, n_assets)
        The closes on the grid (UTC midnights), NaN where a member has no bar on one of its sessions.
    grid : str
        ``24/7`` (every day: a crypto-only universe) or the exchange calendars whose sessions are the rows,
        joined by ``+`` (``XNYS``, ``XLON+XNYS``).
    periods_per_year : int
        Rows per year of the grid (365 for ``24/7``, 252 for ``XNYS``): the annualisation of the returns.
    calendars : dict
        Symbol key -> its calendar, for every column.
    """

    closes: pd.DataFrame
    grid: str
    periods_per_year: int
    calendars: dict[str, str]


def align_closes(closes: pd.DataFrame, calendars: Mapping[str, str]) -> AlignedCloses:
    """Put the closes of a universe on one grid of dates: the alignment rule of returns and gate.

    Parameters
    ----------
    closes : pandas.DataFrame of shape (n_dates, n_assets)
        Daily closes on the union of the members' bar dates (UTC-midnight index, symbol-key columns, NaN
        where a member has no bar), as :func:`~alpha_assets.lakehouse.ohlcv.wide_closes` builds them.
    calendars : Mapping[str, str]
        Symbol key -> trading calendar (``24/7`` or an ``exchange_calendars`` name); a column left out is
        ``24/7``.

    Returns
    -------
    AlignedCloses
        The closes on the grid, the grid's name and its periods per year.

    Raises
    ------
    ValueError
        When a calendar is unknown, or as :func:`compute_returns_matrix` validates ``closes``.

    Notes
    -----
    - Every member ``24/7`` (crypto only): unchanged, one row per day, 365 periods a year.
    - Otherwise the rows are the sessions of the members' exchange calendars (their union) between the
      first and the last date of ``closes``. A 24/7 member is sampled at those dates, so its return on a
      Monday is Friday's close to Monday's: the weekend compounded into one period, the period the equities
      move over. Its weekend bars are not lost data, they are inside that return. An exchange member on a
      row that is not one of its own sessions (another exchange's session, its own holiday) keeps its
      previous row's close: its return there is 0 (no trading, no price change) and its next session's
      return runs from its last session, so nothing is double counted or dropped. A missing bar on one of
      its own sessions stays NaN (a gap, never filled). Why not every calendar day with equities at 0 on
      weekends: the zeros would be fake observations (a quarter of the rows), understating equity volatility
      per row, biasing correlations to crypto towards 0 and turning every weekend into a run of zero
      returns. Why not drop rows where an equity has no bar: Monday's return would vanish with the
      weekend.
    - The gate judges exactly this matrix, and every member's features are read at its last row
      (:func:`last_grid_date`): a crypto pair is judged on Friday's features next to the equities on a
      Monday. Annualisation (covariance, Sharpe) uses the grid's periods per
      year (:func:`~alpha_assets.lakehouse.calendars.periods_per_year`).
    """
    _validate_closes(closes)
    by_column = {str(c): calendars.get(str(c), CONTINUOUS) for c in closes.columns}
    exchanges = sorted(set(by_column.values()) - {CONTINUOUS})
    ppy = periods_per_year(list(by_column.values()))
    if not exchanges or closes.empty:
        return AlignedCloses(closes, "+".join(exchanges) or CONTINUOUS, ppy, by_column)
    days = closes.index.values.astype("datetime64[D]").view(np.int64)
    grid_days = np.unique(np.concatenate([TradingCalendar.of(c).sessions(days[0], days[-1]) for c in exchanges]))
    grid = pd.DatetimeIndex(grid_days.astype("datetime64[D]")).tz_localize("UTC").astype(closes.index.dtype)
    on_grid = closes.reindex(grid)
    values = on_grid.to_numpy(dtype=np.float64, copy=True)
    rows = np.arange(len(grid))
    for j, column in enumerate(on_grid.columns):  # a loop over members; each is vectorised over the rows
        calendar = by_column[str(column)]
        if calendar == CONTINUOUS:
            continue
        own = TradingCalendar.of(calendar).is_session(grid_days)
        # Each row takes the close of the member's latest own session on or before it (NaN before its first).
        last_own = np.maximum.accumulate(np.where(own, rows, -1))
        values[:, j] = np.where(last_own >= 0, values[np.maximum(last_own, 0), j], np.nan)
    aligned = pd.DataFrame(values, index=grid, columns=on_grid.columns)
    aligned.index.name = closes.index.name
    return AlignedCloses(aligned, "+".join(exchanges), ppy, by_column)


def last_grid_date(calendars: Iterable[str], as_of: pd.Timestamp) -> pd.Timestamp:
    """The last row of the :func:`align_closes` grid on or before ``as_of`` (a UTC midnight).

    ``as_of`` itself for a 24/7 universe, else the latest session of the members' exchange calendars on or
    before it: the date at which every member's features are read.

    Raises
    ------
    ValueError
        When a calendar is unknown.
    """
    exchanges = sorted(set(calendars) - {CONTINUOUS})
    if not exchanges:
        return as_of
    day = int(pd.Timestamp(as_of).tz_convert("UTC").value // (86_400 * 10**9))
    return day_to_timestamp(max(TradingCalendar.of(c).last_on_or_before(day) for c in exchanges))


def _validate_closes(closes: pd.DataFrame) -> None:
    if not isinstance(closes, pd.DataFrame):
        raise TypeError(f"`closes` must be a pandas DataFrame (n_dates, n_assets), got {type(closes).__name__}")
    index = closes.index
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None or str(index.tz) != "UTC":
        raise ValueError(
            "`closes` index must be a tz-aware UTC DatetimeIndex, got "
            f"{type(index).__name__} with tz={getattr(index, 'tz', None)}"
        )
    if not (index.is_unique and index.is_monotonic_increasing):
        raise ValueError("`closes` index must be strictly increasing (sorted, no duplicate dates)")
    off_midnight = index[index != index.normalize()]
    if len(off_midnight):
        raise ValueError(f"`closes` index must hold UTC midnights, got {off_midnight[0].isoformat()}")
    if not closes.columns.is_unique:
        duplicated = sorted(set(closes.columns[closes.columns.duplicated()]))
        raise ValueError(f"`closes` columns must be unique symbol keys, got duplicates {duplicated}")
    non_numeric = [c for c, dt in closes.dtypes.items() if not pd.api.types.is_numeric_dtype(dt)]
    if non_numeric:
        raise TypeError(f"`closes` columns must be numeric, got non-numeric {non_numeric}")
    values = closes.to_numpy(dtype=np.float64)
    bad = ~np.isnan(values) & ~(np.isfinite(values) & (values > 0))
    if bad.any():
        cols = sorted({str(closes.columns[j]) for j in np.nonzero(bad)[1]})
        raise ValueError(f"`closes` must be positive and finite where present (NaN = no bar), got bad values in {cols}")


def _symbol_drops(
    symbols: np.ndarray, failed: np.ndarray, observed: np.ndarray, stage: str, threshold: float, what: str
) -> list[DropRecord]:
    return [
        DropRecord(
            axis="symbol",
            key=str(sym),
            stage=stage,
            reason=f"{sym}: {what} {obs:.6g} vs threshold {threshold:.6g}",
            observed=float(obs),
            threshold=float(threshold),
        )
        for sym, obs in zip(symbols[failed], observed[failed], strict=True)
    ]


def _toxic_return_drops(
    symbols: np.ndarray, failed: np.ndarray, rets: FloatArray, dates: pd.DatetimeIndex, threshold: float
) -> list[DropRecord]:
    """Drops of the ``max_abs_return`` stage, each naming the day and the signed value of its largest |return|."""
    if not failed.any():
        return []
    # A failed column has at least one return above the threshold, so it is never all-NaN.
    columns = np.nonzero(failed)[0]
    rows = np.nanargmax(np.abs(rets[:, columns]), axis=0)
    return [
        DropRecord(
            axis="symbol",
            key=str(symbols[j]),
            stage=STAGE_MAX_ABS_RETURN,
            reason=f"{symbols[j]}: daily return {rets[i, j]:+.6g} ({rets[i, j]:+.0%}) on {dates[i].date()}, "
            f"|return| above the threshold {threshold:.6g} ({threshold:.0%})",
            observed=float(abs(rets[i, j])),
            threshold=float(threshold),
            at=dates[i].isoformat(),
        )
        for i, j in zip(rows, columns, strict=True)
    ]


def toxic_return_drops(drops: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The symbols a run's trimming dropped for a toxic daily return, for the report and the warning check.

    Parameters
    ----------
    drops : sequence of mapping
        The run's drop records as stored in ``returns_drops.json`` (:meth:`DropRecord.to_dict`).

    Returns
    -------
    list of dict
        One ``{"symbol", "date", "abs_return", "threshold", "reason"}`` per symbol dropped at the
        ``max_abs_return`` stage, in the order of ``drops``; ``date`` is the day of the largest |return| (YYYY-MM-DD),
        or None for a record frozen before dates were recorded.
    """
    return [
        {
            "symbol": d["key"],
            "date": d["at"][:10] if d.get("at") else None,
            "abs_return": d["observed"],
            "threshold": d["threshold"],
            "reason": d["reason"],
        }
        for d in drops
        if d["axis"] == "symbol" and d["stage"] == STAGE_MAX_ABS_RETURN
    ]


def compute_returns_matrix(closes: pd.DataFrame, params: ReturnsParams) -> ReturnsMatrix:
    """Compute daily simple returns on the aligned date grid and trim bad symbols, then incomplete rows.

    Parameters
    ----------
    closes : pandas.DataFrame of shape (n_dates, n_assets)
        Daily closes, float64, in quote currency. Index: tz-aware UTC-midnight ``DatetimeIndex``, strictly
        increasing (the grid: the union of the symbols' bar dates). Columns: unique symbol keys such as
        ``BINANCE_BTCUSDT``. NaN where a symbol has no bar on that date; present values must be > 0.
    params : ReturnsParams
        Trimming thresholds.

    Returns
    -------
    ReturnsMatrix
        ``returns`` of shape (n_observations, n_assets) with n_observations <= n_dates - 1, and the drops.

    Raises
    ------
    TypeError
        If ``closes`` is not a DataFrame, has non-numeric columns, or ``params`` is not a ReturnsParams.
    ValueError
        If the index is not tz-aware UTC, not strictly increasing or not at midnight, if the columns are not
        unique, or if a close is non-positive or infinite.

    Notes
    -----
    Returns are computed row to row on the grid, column by column: a NaN close (a gap) makes the returns of
    its own row and of the next row NaN, never a jump across the gap, and no value crosses symbols. The first
    row of the grid has no return and is not part of the output. Trimming runs in this order, each stage on
    the survivors of the previous one:

    1. ``min_history``: fewer than ``params.min_history`` non-NaN closes;
    2. ``max_abs_return``: any |return| > ``params.max_abs_return``;
    3. ``zero_variance``: the returns' standard deviation is 0 (or fewer than 2 returns);
    4. ``max_missing_fraction``: more than ``params.max_missing_fraction`` of the n_dates - 1 return rows NaN
       (leading rows before a listing count as missing);
    5. ``row_nan``: rows where any surviving symbol still has a NaN return.
    """
    _validate_closes(closes)
    if not isinstance(params, ReturnsParams):
        raise TypeError(f"`params` must be a ReturnsParams, got {type(params).__name__}")

    symbols = np.asarray(closes.columns.astype(str), dtype=object)
    prices = closes.to_numpy(dtype=np.float64)
    # Row-to-row on the grid: NaN on either side gives NaN, so gaps never turn into jumps.
    rets = prices[1:] / prices[:-1] - 1.0 if len(prices) > 1 else np.empty((0, prices.shape[1]))
    dates = closes.index[1:]
    n_rows = rets.shape[0]
    drops: list[DropRecord] = []
    keep = np.ones(len(symbols), dtype=bool)

    bars = np.sum(~np.isnan(prices), axis=0).astype(np.float64)
    failed = keep & (bars < params.min_history)
    drops += _symbol_drops(symbols, failed, bars, STAGE_MIN_HISTORY, params.min_history, "bars")
    keep &= ~failed

    # fmax skips NaN, so a symbol without any return gets -inf rather than a warning.
    max_abs = np.fmax.reduce(np.abs(rets), axis=0, initial=-np.inf)
    failed = keep & (max_abs > params.max_abs_return)
    drops += _toxic_return_drops(symbols, failed, rets, dates, params.max_abs_return)
    keep &= ~failed

    n_valid = np.sum(~np.isnan(rets), axis=0)
    # Columns with fewer than 2 returns are zeroed first so nanstd never sees an empty slice.
    std = np.where(n_valid >= 2, np.nanstd(np.where(n_valid >= 2, rets, 0.0), axis=0), 0.0)
    failed = keep & (std == 0.0)
    drops += _symbol_drops(symbols, failed, std, STAGE_ZERO_VARIANCE, 0.0, "return std")
    keep &= ~failed

    missing = (n_rows - n_valid) / n_rows if n_rows else np.zeros(len(symbols))
    failed = keep & (missing > params.max_missing_fraction)
    drops += _symbol_drops(symbols, failed, missing, STAGE_MAX_MISSING, params.max_missing_fraction, "missing fraction")
    keep &= ~failed

    kept = rets[:, keep]
    nan_per_row = np.sum(np.isnan(kept), axis=1)
    bad_rows = nan_per_row > 0
    kept_symbols = symbols[keep]
    for i in np.nonzero(bad_rows)[0]:
        missing_syms = kept_symbols[np.isnan(kept[i])]
        shown = ", ".join(missing_syms[:5]) + (f" and {len(missing_syms) - 5} more" if len(missing_syms) > 5 else "")
        drops.append(
            DropRecord(
                axis="row",
                key=dates[i].isoformat(),
                stage=STAGE_ROW_NAN,
                reason=f"{dates[i].date()}: {nan_per_row[i]} NaN return(s) ({shown}) vs threshold 0",
                observed=float(nan_per_row[i]),
                threshold=0.0,
            )
        )

    returns = pd.DataFrame(kept[~bad_rows], index=dates[~bad_rows], columns=pd.Index(kept_symbols.astype(str)))
    returns.index.name = closes.index.name
    returns.columns.name = closes.columns.name
    return ReturnsMatrix(returns=returns, drops=drops)
