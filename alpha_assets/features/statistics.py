"""Rolling statistics the selection step scores on, for one symbol's contiguous daily series.

Every function takes 1-D float64 arrays of shape (n_observations,) ordered by bar (oldest first) and returns
an array of the same shape whose value at bar ``t`` uses bars ``0..t`` only. Windows are counted in stored
bars (a missing calendar day is not filled) and a window must be full: bars before the first full window are
NaN. Each window is reduced on its own (numpy window views, no running sums), so a value depends only on the
bars of its window and is bit-for-bit the same whatever follows. "Daily returns" are simple bar-to-bar
returns ``close[t] / close[t - 1] - 1``, as fractions.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from alpha_assets.features.indicators import rolling_sum
from alpha_assets.typing import FloatArray
from alpha_assets.validation import check_array, check_int, check_same_length

#: A window's variance at or below this fraction of its mean square is rounding noise (equal returns).
_FLAT_TOLERANCE = 1e-12

__all__ = [
    "ReturnMoments",
    "average_traded_value",
    "efficiency_ratio",
    "history_length",
    "max_drawdown",
    "permutation_entropy",
    "rolling_moments",
    "simple_return",
]


def simple_return(close: FloatArray, window: int) -> FloatArray:
    """Compute the simple return over ``window`` bars: ``close[t] / close[t - window] - 1``.

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency, > 0.
    window : int
        Look-back in bars, >= 1 (the features use 20, 60 and 120).

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Fraction (0.05 is +5 %); NaN on the first ``window`` bars.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or ``window`` < 1.
    """
    close = check_array(close, "close")
    window = check_int(window, "window", 1)
    out = np.full_like(close, np.nan)
    if close.size > window:
        out[window:] = close[window:] / close[:-window] - 1.0
    return out


def efficiency_ratio(close: FloatArray, window: int = 20) -> FloatArray:
    """Kaufman efficiency ratio: ``|close[t] - close[t-w]| / sum |close[i] - close[i-1]|`` (net move / path).

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency.
    window : int, default 20
        Look-back ``w`` in bars, >= 1 (the sum runs over the ``w`` moves ending at ``t``).

    Returns
    -------
    ndarray of shape (n_observations,), float64
        In [0, 1]: 1 is a straight line, near 0 is noise. NaN on the first ``window`` bars and where the
        price did not move at all over the window (0 / 0).

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or ``window`` < 1.
    """
    close = check_array(close, "close")
    window = check_int(window, "window", 1)
    moves = np.full_like(close, np.nan)
    moves[1:] = np.abs(np.diff(close))
    out = np.full_like(close, np.nan)
    if close.size > window:
        path = rolling_sum(np.abs(np.diff(close)), window)[window - 1 :]
        net = np.abs(close[window:] - close[:-window])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[window:] = np.where(path > 0.0, net / path, np.nan)
    return out


class ReturnMoments(NamedTuple):
    """Rolling moments of daily returns, each of shape (n_observations,), float64."""

    volatility: FloatArray
    skewness: FloatArray
    kurtosis: FloatArray


def rolling_moments(close: FloatArray, window: int = 60, periods_per_year: float = 365.0) -> ReturnMoments:
    """Annualised volatility, skewness and excess kurtosis of the last ``window`` daily returns.

    With ``mu`` the window's mean return and ``mk`` its k-th central moment: ``volatility = sqrt(m2 * window
    / (window - 1) * periods_per_year)`` (sample standard deviation, ddof 1, annualised); ``skewness = m3 /
    m2 ** 1.5`` and ``kurtosis = m4 / m2 ** 2 - 3`` (moment estimators without bias correction, as
    ``scipy.stats.skew`` and ``kurtosis`` with ``bias=True``; a normal sample gives about 0 for both).

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency, > 0.
    window : int, default 60
        Number of daily returns, >= 3 (the values need ``window + 1`` bars).
    periods_per_year : float, default 365.0
        Bars per year: 365 for crypto trading every day, 252 for exchange-traded assets.

    Returns
    -------
    ReturnMoments
        ``volatility`` (fraction per year, 0.8 is 80 %), ``skewness`` and ``kurtosis`` (unitless), each of
        shape (n_observations,), NaN on the first ``window`` bars. Where the window's variance is below the
        rounding level of its mean square (returns all equal, e.g. a flat price), the volatility is 0 and the
        skewness and kurtosis are NaN (shape undefined).

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array, ``window`` < 3 or ``periods_per_year`` is not positive.

    Notes
    -----
    The central moments come from windowed power sums of the returns (``m2 = S2 / w - mu**2`` and so on),
    which loses only about ``mu**2 / m2`` in relative precision: negligible for daily returns, whose mean is
    far smaller than their dispersion. It avoids a (window, n_observations) matrix of deviations.
    """
    close = check_array(close, "close")
    window = check_int(window, "window", 3)
    if not (isinstance(periods_per_year, int | float) and math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"`periods_per_year` must be a positive finite number, got {periods_per_year!r}")
    volatility = np.full_like(close, np.nan)
    skewness, kurtosis = volatility.copy(), volatility.copy()
    if close.size <= window:
        return ReturnMoments(volatility, skewness, kurtosis)
    returns = close[1:] / close[:-1] - 1.0
    squared = returns * returns
    mu = rolling_sum(returns, window)[window - 1 :] / window
    s2 = rolling_sum(squared, window)[window - 1 :] / window
    s3 = rolling_sum(squared * returns, window)[window - 1 :] / window
    s4 = rolling_sum(squared * squared, window)[window - 1 :] / window
    mu2 = mu * mu
    m2 = s2 - mu2
    m3 = s3 - 3.0 * mu * s2 + 2.0 * mu * mu2
    m4 = s4 - 4.0 * mu * s3 + 6.0 * mu2 * s2 - 3.0 * mu2 * mu2
    flat = m2 <= _FLAT_TOLERANCE * s2
    m2[flat] = 0.0
    volatility[window:] = np.sqrt(m2 * (window / (window - 1) * periods_per_year))
    with np.errstate(invalid="ignore", divide="ignore"):
        skewness[window:] = np.where(flat, np.nan, m3 / m2**1.5)
        kurtosis[window:] = np.where(flat, np.nan, m4 / (m2 * m2) - 3.0)
    return ReturnMoments(volatility, skewness, kurtosis)


def max_drawdown(close: FloatArray, window: int = 252) -> FloatArray:
    """Largest peak-to-trough fall of ``close`` within the last ``window`` bars (a rolling window).

    ``max_{i <= j in window} (1 - close[j] / close[i])``: the peak is taken inside the window only.

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency, > 0.
    window : int, default 252
        Window in bars, >= 2.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Fraction in [0, 1) (0.35 is a 35 % fall); NaN on the first ``window - 1`` bars.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or ``window`` < 2.

    Notes
    -----
    Computed in O(n_observations * log(window)) array operations: the (peak, trough, drawdown) summaries of
    the blocks of 2**k bars starting at every bar are built by doubling, and each window is the left-to-right
    combination of its disjoint power-of-two blocks, with
    ``dd(A + B) = max(dd(A), dd(B), 1 - min(B) / max(A))`` for a block ``A`` followed by ``B``.
    """
    close = check_array(close, "close")
    window = check_int(window, "window", 2)
    out = np.full_like(close, np.nan)
    n_windows = close.size - window + 1
    if n_windows <= 0:
        return out
    # levels[k] summarises the blocks [i, i + 2**k) for every start i that fits.
    levels = [(close, close, np.zeros_like(close))]
    while 2 ** len(levels) <= window:
        peak, trough, drawdown = levels[-1]
        half = 2 ** (len(levels) - 1)
        levels.append(
            _combine_drawdowns(
                (peak[:-half], trough[:-half], drawdown[:-half]),
                (peak[half:], trough[half:], drawdown[half:]),
            )
        )
    offset = 0
    summary = None
    for k in range(len(levels) - 1, -1, -1):
        if window & (1 << k):
            block = tuple(values[offset : offset + n_windows] for values in levels[k])
            summary = block if summary is None else _combine_drawdowns(summary, block)
            offset += 1 << k
    out[window - 1 :] = summary[2]
    return out


def _combine_drawdowns(
    left: tuple[FloatArray, FloatArray, FloatArray], right: tuple[FloatArray, FloatArray, FloatArray]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(peak, trough, drawdown) of block ``left`` followed by block ``right``, element-wise."""
    size = min(left[0].size, right[0].size)
    left_peak, left_trough, left_drawdown = (values[:size] for values in left)
    right_peak, right_trough, right_drawdown = (values[:size] for values in right)
    across = 1.0 - right_trough / left_peak
    return (
        np.maximum(left_peak, right_peak),
        np.minimum(left_trough, right_trough),
        np.maximum(np.maximum(left_drawdown, right_drawdown), across),
    )


def history_length(n_observations: int) -> FloatArray:
    """Bars stored so far, the current one included: 1, 2, ..., ``n_observations``.

    Parameters
    ----------
    n_observations : int
        Number of bars, >= 0.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Bar counts.

    Raises
    ------
    ValueError
        When ``n_observations`` is negative or not an integer.
    """
    return np.arange(1, check_int(n_observations, "n_observations", 0) + 1, dtype=np.float64)


def average_traded_value(close: FloatArray, volume: FloatArray, window: int = 20) -> FloatArray:
    """Mean daily traded value ``close * volume`` over the last ``window`` bars.

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency per unit of base.
    volume : ndarray of shape (n_observations,), float64
        Volume, units of base, >= 0.
    window : int, default 20
        Window in bars, >= 1.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Quote currency per bar; NaN on the first ``window - 1`` bars.

    Raises
    ------
    TypeError, ValueError
        When an input is not a 1-D float64 array, the shapes differ or ``window`` < 1.
    """
    close, volume = check_array(close, "close"), check_array(volume, "volume")
    check_same_length(close=close, volume=volume)
    window = check_int(window, "window", 1)
    return rolling_sum(close * volume, window) / window


def permutation_entropy(close: FloatArray, order: int = 3, window: int = 120) -> FloatArray:
    """Normalised permutation entropy of the ordinal patterns of ``close`` within the last ``window`` bars.

    Each bar ``t >= order - 1`` gets the ordinal pattern of ``close[t - order + 1 .. t]`` (one of ``order!``;
    equal prices rank the earlier bar lower). Over the ``window - order + 1`` patterns that fit in the window,
    ``H = -sum p log p / log(order!)``. 1 means every ordering is equally likely (no structure, a random
    walk); lower values mean some orderings dominate (persistent trends, or flat stretches).

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes (any monotone transform gives the same value).
    order : int, default 3
        Pattern length in bars, 2 to 6.
    window : int, default 120
        Window in bars, >= ``order + 1``.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        In [0, 1]; NaN on the first ``window - 1`` bars.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array, ``order`` is outside [2, 6] or ``window`` <= ``order``.
    """
    close = check_array(close, "close")
    order = check_int(order, "order", 2)
    if order > 6:
        raise ValueError(f"`order` must be an integer in [2, 6], got {order}")
    window = check_int(window, "window", order + 1)
    out = np.full_like(close, np.nan)
    if close.size < window:
        return out
    n_patterns = math.factorial(order)
    codes = _ordinal_patterns(sliding_window_view(close, order))
    # Integer counts through a cumulative sum are exact, so each window's counts do not depend on the rest.
    counts = np.zeros((codes.size + 1, n_patterns), dtype=np.int64)
    counts[np.arange(1, codes.size + 1), codes] = 1
    np.cumsum(counts, axis=0, out=counts)
    per_window = window - order + 1
    in_window = counts[per_window:] - counts[:-per_window]
    probability = in_window / per_window
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(in_window > 0, probability * np.log(probability), 0.0)
    out[window - 1 :] = -terms.sum(axis=1) / math.log(n_patterns)
    return out


def _ordinal_patterns(view: np.ndarray) -> np.ndarray:
    """Lehmer code of each row's ordering, ties broken by position; shape (n_rows,), int64 in [0, order!)."""
    order = view.shape[1]
    codes = np.zeros(view.shape[0], dtype=np.int64)
    # Loops over the pattern positions (order <= 6), never over bars.
    for i in range(order):
        smaller_after = np.zeros(view.shape[0], dtype=np.int64)
        for j in range(i + 1, order):
            smaller_after += view[:, j] < view[:, i]
        codes += smaller_after * math.factorial(order - 1 - i)
    return codes
