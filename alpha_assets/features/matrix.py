"""All the features of one symbol, per daily bar, in the long form stored in ``features_matrix``.

One call per symbol: the symbol's bars are turned into contiguous float64 arrays once, then every
indicator, vote and statistic is one call into TA-Lib or numpy over the series. ``FEATURE_COLUMNS`` fixes the
order of the feature columns; ``docs/features.md`` gives each column's window, formula and meaning.

``compute_features(..., start=s)`` returns only the bars from ``s`` on (the rows an incremental update
appends), equal to the full computation there: the TA-Lib indicators whose value depends on every earlier
bar (EMA and Wilder seeds, TA-Lib's running sums) still run over the whole history (a few microseconds
each), while the window indicators (momentum, Williams %R, Ichimoku, the RSI's stochastic), the numpy window
features, votes and statistics run over the ``TAIL_LOOKBACK`` bars before ``s`` and the bars after it only.
``compute_features_many`` does the same for many symbols with the window part in one pass over their tails
laid end to end (what the daily update of a batch of symbols uses).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from alpha_assets.features import indicators as ind
from alpha_assets.features import ratings
from alpha_assets.features import statistics as stats
from alpha_assets.lakehouse.features_store import STATISTIC_COLUMNS
from alpha_assets.lakehouse.keys import validate_symbol_key
from alpha_assets.typing import FloatArray
from alpha_assets.validation import check_array, check_same_length

__all__ = [
    "FEATURES_VERSION",
    "FEATURE_COLUMNS",
    "FEATURE_DESCRIPTIONS",
    "MA_VOTE_COLUMNS",
    "OHLCV_INPUT_COLUMNS",
    "DISCRETE_COLUMNS",
    "OTHER_VOTE_COLUMNS",
    "TAIL_LOOKBACK",
    "compute_features",
    "compute_features_many",
    "compute_symbol_features",
]

MA_LENGTHS = (10, 20, 30, 50, 100, 200)

#: Version of the feature formulas. Bump it whenever a value could change (a formula, a window, a column):
#: stored files record it, and the backfill recomputes every symbol whose file carries another version.
FEATURES_VERSION = 1

#: Bars before ``start`` that ``compute_features(..., start=start)`` feeds its window computations: the
#: longest window among the numpy features (``max_drawdown_252d``: 252 bars, i.e. 251 bars before the current
#: one), which also covers the votes' two previous bars and every shorter window.
TAIL_LOOKBACK = 251

#: The 15 moving-average votes, in the order of the rating's moving-average group.
MA_VOTE_COLUMNS: tuple[str, ...] = (
    *(f"vote_sma_{n}" for n in MA_LENGTHS),
    *(f"vote_ema_{n}" for n in MA_LENGTHS),
    "vote_hma_9",
    "vote_vwma_20",
    "vote_ichimoku",
)

#: The 11 oscillator votes, in the order of the rating's oscillator group.
OTHER_VOTE_COLUMNS: tuple[str, ...] = (
    "vote_rsi_14",
    "vote_stoch",
    "vote_cci_20",
    "vote_adx_14",
    "vote_ao",
    "vote_mom_10",
    "vote_macd",
    "vote_stochrsi",
    "vote_willr_14",
    "vote_bbpower",
    "vote_uo",
)

RATING_COLUMNS: tuple[str, ...] = ("recommend_ma", "recommend_other", "recommend_all", "rating")

INDICATOR_COLUMNS: tuple[str, ...] = (
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "stoch_k",
    "stoch_d",
    "cci_20",
    "adx_14",
    "plus_di_14",
    "minus_di_14",
    "ao",
    "mom_10",
    "willr_14",
    "uo",
    "stochrsi_k",
    "stochrsi_d",
    "bull_power_13",
    "bear_power_13",
    "bbpower",
    *(f"sma_{n}" for n in MA_LENGTHS),
    *(f"ema_{n}" for n in MA_LENGTHS),
    "hma_9",
    "vwma_20",
    "ichimoku_conversion",
    "ichimoku_base",
    "ichimoku_lead1",
    "ichimoku_lead2",
)


#: Every feature column of ``features_matrix``, in stored order (after ``date`` and ``symbol``).
FEATURE_COLUMNS: tuple[str, ...] = (
    *MA_VOTE_COLUMNS,
    *OTHER_VOTE_COLUMNS,
    *RATING_COLUMNS,
    *INDICATOR_COLUMNS,
    *STATISTIC_COLUMNS,
)

_VOTE = "+1 buy, -1 sell, 0 neutral; NaN while the history is too short"
_INDICATOR_TEXT = {
    "rsi_14": "RSI 14, Wilder smoothing (TA-Lib), 0-100",
    "macd": "MACD line EMA12 - EMA26 (TA-Lib), quote currency",
    "macd_signal": "MACD signal: EMA 9 of the MACD line",
    "macd_hist": "MACD line - signal",
    "stoch_k": "Stochastic %K 14, smoothed by SMA 3 (TA-Lib STOCH), 0-100",
    "stoch_d": "Stochastic %D: SMA 3 of %K, 0-100",
    "cci_20": "Commodity Channel Index 20 of the typical price (TA-Lib)",
    "adx_14": "Average Directional Index 14 (TA-Lib), 0-100",
    "plus_di_14": "+DI 14 (TA-Lib PLUS_DI), 0-100",
    "minus_di_14": "-DI 14 (TA-Lib MINUS_DI), 0-100",
    "ao": "Awesome Oscillator SMA5(hl2) - SMA34(hl2), quote currency",
    "mom_10": "Momentum: close - close 10 bars earlier",
    "willr_14": "Williams %R 14 (TA-Lib), -100 to 0",
    "uo": "Ultimate Oscillator 7/14/28 (TA-Lib ULTOSC), 0-100",
    "stochrsi_k": "Stochastic RSI k: SMA 3 of the RSI 14's position in its 14-bar range, 0-100",
    "stochrsi_d": "Stochastic RSI d: SMA 3 of k",
    "bull_power_13": "Bull power: high - EMA 13 of close",
    "bear_power_13": "Bear power: low - EMA 13 of close",
    "bbpower": "Bull Bear Power: bull power + bear power",
    "hma_9": "Hull moving average 9 of close",
    "vwma_20": "Volume-weighted moving average 20 of close; NaN when the 20 bars traded nothing",
    "ichimoku_conversion": "Ichimoku conversion line: (max high + min low) / 2 over 9 bars",
    "ichimoku_base": "Ichimoku base line: (max high + min low) / 2 over 26 bars",
    "ichimoku_lead1": "Ichimoku leading span A as displayed at the bar (computed 26 bars earlier)",
    "ichimoku_lead2": "Ichimoku leading span B as displayed at the bar (52-bar midpoint, 26 bars earlier)",
    "return_20d": "Simple return over 20 bars, close[t] / close[t-20] - 1",
    "return_60d": "Simple return over 60 bars",
    "return_120d": "Simple return over 120 bars",
    "volatility_60d": "Annualised standard deviation (ddof 1) of the last 60 daily returns",
    "efficiency_ratio_20d": "Kaufman efficiency ratio over 20 bars: 1 a straight line, ~0 noise",
    "skewness_60d": "Skewness of the last 60 daily returns (moment estimator)",
    "kurtosis_60d": "Excess kurtosis of the last 60 daily returns (moment estimator)",
    "max_drawdown_252d": "Largest fall from a peak within the last 252 bars, a fraction in [0, 1)",
    "history_length": "Number of stored bars up to this one",
    "avg_traded_value_20d": "Mean close x volume over 20 bars, quote currency per bar",
    "permutation_entropy_120d": "Normalised permutation entropy (order 3) of the closes over 120 bars, 0-1",
    **{f"sma_{n}": f"Simple moving average {n} of close (TA-Lib)" for n in MA_LENGTHS},
    **{f"ema_{n}": f"Exponential moving average {n} of close (TA-Lib)" for n in MA_LENGTHS},
}
_RATING_TEXT = {
    "recommend_ma": "Mean of the available moving-average votes, in [-1, 1]; NaN when none",
    "recommend_other": "Mean of the available oscillator votes, in [-1, 1]; NaN when none",
    "recommend_all": "(recommend_ma + recommend_other) / 2, or the one that exists",
    "rating": "Label of recommend_all: -2 strong sell, -1 sell, 0 neutral, 1 buy, 2 strong buy",
}

#: Feature column -> one-line description (the UI's column schema; docs/features.md gives the rules in full).
FEATURE_DESCRIPTIONS: dict[str, str] = {
    **{
        name: f"Moving-average vote: sign(close - {name.removeprefix('vote_').replace('_', ' ').upper()}); {_VOTE}"
        for name in MA_VOTE_COLUMNS
        if name != "vote_ichimoku"
    },
    "vote_ichimoku": f"Ichimoku cloud vote; {_VOTE}",
    **{
        name: f"Oscillator vote of {name.removeprefix('vote_')} (rules in docs/features.md); {_VOTE}"
        for name in OTHER_VOTE_COLUMNS
    },
    **_RATING_TEXT,
    **_INDICATOR_TEXT,
}

#: The feature columns taking a handful of values (votes in {-1, 0, 1}, rating labels in {-2, ..., 2}, NaN).
DISCRETE_COLUMNS: tuple[str, ...] = (*MA_VOTE_COLUMNS, *OTHER_VOTE_COLUMNS, "rating")

#: The columns :func:`compute_symbol_features` reads from a symbol's bars.
OHLCV_INPUT_COLUMNS: tuple[str, ...] = ("timestamp", "open", "high", "low", "close", "volume")


def compute_features(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    volume: FloatArray,
    *,
    periods_per_year: float = 365.0,
    start: int = 0,
) -> FloatArray:
    """Every feature of one symbol at every bar from ``start`` on, from that bar and the bars before it only.

    Parameters
    ----------
    high, low, close : ndarray of shape (n_observations,), float64
        Daily bar prices, quote currency, oldest bar first, finite and > 0. Bars are used as stored: a
        missing calendar day is not filled, so every window counts stored bars.
    volume : ndarray of shape (n_observations,), float64
        Base-currency volume, finite and >= 0 (zero-volume bars allowed).
    periods_per_year : float, default 365.0
        Bars per year for ``volatility_60d`` (365 for crypto, 252 for exchange-traded assets).
    start : int, default 0
        First bar returned, in ``[0, n_observations]``. The values are those of the full computation on those
        bars, bit for bit: an incremental update computes only the bars it appends.

    Returns
    -------
    ndarray of shape (n_features, n_observations - start), float64
        Row ``i`` is the feature ``FEATURE_COLUMNS[i]`` at bars ``start..n_observations-1`` (feature-major,
        so each feature is contiguous and ``.T`` is the (n_observations - start, n_features) table without a
        copy). NaN where a feature is not defined yet (its warm-up) or undefined (documented per column);
        never inf.

    Raises
    ------
    TypeError, ValueError
        When an input is not 1-D float64, the shapes differ, a value is not finite, a price is <= 0, a volume
        is negative, ``periods_per_year`` is not positive, or ``start`` is not an integer in
        ``[0, n_observations]``.

    Notes
    -----
    The TA-Lib indicators with running state always run over the whole series (EMA and Wilder smoothing depend
    on every bar since their seed, and TA-Lib's running sums carry rounding from the first bar). The window
    indicators (window maxima, minima, differences) and the numpy window features (VWMA, the votes, the rating
    and every statistic) reduce each window on its own, so they are computed on the ``TAIL_LOOKBACK`` bars
    before ``start`` and the bars after it only.
    """
    high, low, close, volume = _check_bars(high=high, low=low, close=close, volume=volume)
    start = _check_start(start, close.size)
    # The window computations run on bars ``first..``; rows before ``start`` are their warm-up, dropped below.
    first = max(0, start - TAIL_LOOKBACK)
    f = {name: values[first:] for name, values in _whole_history_indicators(high, low, close).items()}
    f = _window_features(f, high[first:], low[first:], close[first:], volume[first:], periods_per_year)
    f["history_length"] = stats.history_length(close.size)[first:]
    return np.stack([f[name][start - first :] for name in FEATURE_COLUMNS])


def compute_features_many(
    series: Sequence[tuple[FloatArray, FloatArray, FloatArray, FloatArray]],
    starts: Sequence[int],
    *,
    periods_per_year: float = 365.0,
) -> list[FloatArray]:
    """:func:`compute_features` for many symbols at once, equal to one call per symbol bit for bit.

    The TA-Lib indicators still run per symbol over its whole history. The numpy window features, votes and
    statistics (most of the cost of a short tail: about a hundred small numpy calls) run once over the
    concatenation of every symbol's last ``TAIL_LOOKBACK`` bars before its ``start`` and the bars after it.
    A value at bar ``t`` depends on bars ``t - TAIL_LOOKBACK .. t`` only (the tail property), so the rows kept,
    ``start`` on in each segment, never see another symbol's bars. A symbol with fewer than ``TAIL_LOOKBACK``
    bars before ``start`` is computed on its own.

    Parameters
    ----------
    series : sequence of (high, low, close, volume)
        Each symbol's bars, as :func:`compute_features` takes them.
    starts : sequence of int
        Each symbol's first bar returned, in ``[0, n_observations]``.
    periods_per_year : float, default 365.0
        As :func:`compute_features`.

    Returns
    -------
    list of ndarray of shape (n_features, n_observations - start), float64
        One per symbol, in order.

    Raises
    ------
    ValueError
        As :func:`compute_features` (naming the first offending input), or when ``series`` and ``starts``
        differ in length.
    """
    if len(series) != len(starts):
        raise ValueError(f"`series` and `starts` must have the same length, got {len(series)} and {len(starts)}")
    results: list[FloatArray | None] = [None] * len(series)
    segments: list[tuple[int, int, int, dict[str, FloatArray], tuple[FloatArray, ...]]] = []
    for i, ((high, low, close, volume), start) in enumerate(zip(series, starts, strict=True)):
        high, low, close, volume = _check_bars(high=high, low=low, close=close, volume=volume)
        start = _check_start(start, close.size)
        first = start - TAIL_LOOKBACK
        if first < 0:
            results[i] = compute_features(high, low, close, volume, periods_per_year=periods_per_year, start=start)
            continue
        f = {name: values[first:] for name, values in _whole_history_indicators(high, low, close).items()}
        segments.append((i, first, close.size, f, (high[first:], low[first:], close[first:], volume[first:])))
    if segments:
        joined = {name: np.concatenate([segment[3][name] for segment in segments]) for name in segments[0][3]}
        bars = [np.concatenate([segment[4][k] for segment in segments]) for k in range(4)]
        f = _window_features(joined, *bars, periods_per_year)
        # Only the rows returned are gathered (a daily update keeps one row of each ~250-row segment): stacking
        # every feature over the whole tails first cost more than computing them.
        n_bars = np.array([segment[2] for segment in segments])
        lengths = n_bars - np.array([segment[1] for segment in segments])
        kept = lengths - TAIL_LOOKBACK
        within = _ranges(kept)  # each kept row's place among its segment's kept rows
        rows = np.repeat(np.cumsum(lengths) - kept, kept) + within
        f["history_length"] = (np.repeat(n_bars - kept, kept) + within + 1).astype(np.float64)
        table = np.stack([f[name] if name == "history_length" else f[name][rows] for name in FEATURE_COLUMNS])
        for (i, *_), stop, n_kept in zip(segments, np.cumsum(kept), kept, strict=True):
            results[i] = table[:, stop - n_kept : stop]
    return results


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """``0..n-1`` for each ``n`` of ``lengths``, end to end (e.g. ``[2, 3]`` -> ``[0, 1, 0, 1, 2]``)."""
    total = int(lengths.sum())
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total) - starts


def _check_start(start: object, n_observations: int) -> int:
    if isinstance(start, bool) or not isinstance(start, int | np.integer) or not 0 <= start <= n_observations:
        raise ValueError(f"`start` must be an integer in [0, {n_observations}] (n_observations), got {start!r}")
    return int(start)


def _whole_history_indicators(high: FloatArray, low: FloatArray, close: FloatArray) -> dict[str, FloatArray]:
    """The indicators whose value depends on every earlier bar (TA-Lib seeds and running sums)."""
    f: dict[str, FloatArray] = {}
    f["rsi_14"] = ind.rsi(close, 14)
    f["macd"], f["macd_signal"], f["macd_hist"] = ind.macd(close, 12, 26, 9)
    f["stoch_k"], f["stoch_d"] = ind.stoch(high, low, close, 14, 3, 3)
    f["cci_20"] = ind.cci(high, low, close, 20)
    f["plus_di_14"], f["minus_di_14"], f["adx_14"] = ind.dmi(high, low, close, 14)
    f["ao"] = ind.awesome_oscillator(high, low, 5, 34)
    f["uo"] = ind.ultimate_oscillator(high, low, close, 7, 14, 28)
    f["bull_power_13"], f["bear_power_13"] = ind.bull_bear_power(high, low, close, 13)
    f["bbpower"] = f["bull_power_13"] + f["bear_power_13"]
    for n in MA_LENGTHS:
        f[f"sma_{n}"] = ind.sma(close, n)
        f[f"ema_{n}"] = ind.ema(close, n)
    f["hma_9"] = ind.hull_ma(close, 9)
    return f


def _window_features(
    f: dict[str, FloatArray],
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    volume: FloatArray,
    periods_per_year: float,
) -> dict[str, FloatArray]:
    """Add the window indicators and features, votes, rating and statistics to ``f`` (all but history_length).

    Each value at bar ``t`` reads bars ``t - TAIL_LOOKBACK .. t`` only, so the series may be a tail, or several
    symbols' tails end to end.
    """
    # Window indicators: window maxima, minima, differences and sums of the window's bars only (no running state
    # carried from the first bar), so equal on a tail.
    f["mom_10"] = ind.momentum(close, 10)
    f["willr_14"] = ind.williams_r(high, low, close, 14)
    f["stochrsi_k"], f["stochrsi_d"] = ind.rsi_stochastic(f["rsi_14"], 3, 3, 14)
    lines = ind.ichimoku(high, low, 9, 26, 52, 26)
    f["ichimoku_conversion"], f["ichimoku_base"], f["ichimoku_lead1"], f["ichimoku_lead2"] = lines
    f["vwma_20"] = ind.vwma(close, volume, 20)

    # Votes and the rating.
    for n in MA_LENGTHS:
        f[f"vote_sma_{n}"] = ratings.ma_vote(close, f[f"sma_{n}"])
        f[f"vote_ema_{n}"] = ratings.ma_vote(close, f[f"ema_{n}"])
    f["vote_hma_9"] = ratings.ma_vote(close, f["hma_9"])
    f["vote_vwma_20"] = ratings.ma_vote(close, f["vwma_20"])
    f["vote_ichimoku"] = ratings.ichimoku_vote(close, *lines)
    f["vote_rsi_14"] = ratings.rsi_vote(f["rsi_14"])
    f["vote_stoch"] = ratings.stoch_vote(f["stoch_k"], f["stoch_d"])
    f["vote_cci_20"] = ratings.cci_vote(f["cci_20"])
    f["vote_adx_14"] = ratings.adx_vote(f["adx_14"], f["plus_di_14"], f["minus_di_14"])
    f["vote_ao"] = ratings.ao_vote(f["ao"])
    f["vote_mom_10"] = ratings.mom_vote(f["mom_10"])
    f["vote_macd"] = ratings.macd_vote(f["macd"], f["macd_signal"])
    f["vote_stochrsi"] = ratings.stochrsi_vote(close, f["ema_50"], f["stochrsi_k"], f["stochrsi_d"])
    f["vote_willr_14"] = ratings.willr_vote(f["willr_14"])
    f["vote_bbpower"] = ratings.bbpower_vote(close, f["ema_50"], f["bull_power_13"], f["bear_power_13"])
    f["vote_uo"] = ratings.uo_vote(f["uo"])
    # Stacked feature-major then transposed: a (n_observations, n_votes) view without strided writes.
    ma_votes = np.stack([f[name] for name in MA_VOTE_COLUMNS]).T
    other_votes = np.stack([f[name] for name in OTHER_VOTE_COLUMNS]).T
    f["recommend_ma"], f["recommend_other"], f["recommend_all"] = ratings.recommend(ma_votes, other_votes)
    f["rating"] = ratings.rating_label(f["recommend_all"])

    # Statistics.
    for n in (20, 60, 120):
        f[f"return_{n}d"] = stats.simple_return(close, n)
    f["volatility_60d"], f["skewness_60d"], f["kurtosis_60d"] = stats.rolling_moments(close, 60, periods_per_year)
    f["efficiency_ratio_20d"] = stats.efficiency_ratio(close, 20)
    f["max_drawdown_252d"] = stats.max_drawdown(close, 252)
    f["avg_traded_value_20d"] = stats.average_traded_value(close, volume, 20)
    f["permutation_entropy_120d"] = stats.permutation_entropy(close, 3, 120)
    return f


def compute_symbol_features(bars: pd.DataFrame, symbol_key: str, *, periods_per_year: float = 365.0) -> pd.DataFrame:
    """Compute the long-form feature rows of one symbol: one row per stored daily bar.

    Parameters
    ----------
    bars : DataFrame of shape (n_observations, 6)
        The symbol's daily bars: ``timestamp`` (bar open time, tz-aware UTC, strictly increasing) and
        float64 ``open``, ``high``, ``low``, ``close`` (quote currency, finite, > 0) and ``volume`` (finite,
        >= 0). Calendar gaps are allowed and are not filled.
    symbol_key : str
        The symbol key written in every row, e.g. ``"BINANCE_BTCUSDT"``.
    periods_per_year : float, default 365.0
        Bars per year for ``volatility_60d``.

    Returns
    -------
    DataFrame of shape (n_observations, 2 + n_features)
        Columns ``date`` (``datetime64[ns, UTC]``, the bar's open time), ``symbol`` (str) then
        ``FEATURE_COLUMNS`` (float64, NaN where undefined); sorted by ``date``, unique, index ``0..n-1``.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid symbol key.
    ValueError
        When ``bars`` lacks a column, its timestamps are not tz-aware UTC or not strictly increasing, or a
        value breaks the rules above.
    TypeError
        When ``bars`` is not a DataFrame.
    """
    symbol_key = validate_symbol_key(symbol_key)
    if not isinstance(bars, pd.DataFrame):
        raise TypeError(f"`bars` must be a pandas DataFrame, got {type(bars).__name__}")
    missing = [c for c in OHLCV_INPUT_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"`bars` of {symbol_key} must have columns {list(OHLCV_INPUT_COLUMNS)}, missing {missing}")
    timestamps = bars["timestamp"]
    if not isinstance(timestamps.dtype, pd.DatetimeTZDtype) or str(timestamps.dtype.tz) != "UTC":
        raise ValueError(f"`bars.timestamp` of {symbol_key} must be tz-aware UTC, got dtype {timestamps.dtype}")
    dates = pd.DatetimeIndex(timestamps).as_unit("ns")
    if len(dates) > 1 and not (np.diff(dates.asi8) > 0).all():
        raise ValueError(f"`bars.timestamp` of {symbol_key} must be strictly increasing (sorted, unique)")
    arrays = {c: bars[c].to_numpy(dtype=np.float64) for c in ("high", "low", "close", "volume")}
    values = compute_features(**arrays, periods_per_year=periods_per_year)
    frame = pd.DataFrame(values.T, columns=list(FEATURE_COLUMNS), copy=False)
    frame.insert(0, "symbol", np.full(len(dates), symbol_key, dtype=object))
    frame.insert(0, "date", dates)
    return frame


def _check_bars(**arrays: FloatArray) -> tuple[FloatArray, ...]:
    arrays = {name: check_array(values, name, finite=True) for name, values in arrays.items()}
    check_same_length(**arrays)
    for name in ("high", "low", "close"):
        if (arrays[name] <= 0).any():
            raise ValueError(f"`{name}` must be > 0, got minimum {arrays[name].min()}")
    if (arrays["volume"] < 0).any():
        raise ValueError(f"`volume` must be >= 0, got minimum {arrays['volume'].min()}")
    return tuple(arrays[name] for name in ("high", "low", "close", "volume"))
