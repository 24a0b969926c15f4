"""Technical indicators on one symbol's contiguous daily series, one function per indicator.

Every function takes 1-D float64 arrays of shape (n_observations,) ordered by bar (oldest first) and returns
arrays of the same shape. A value at bar ``t`` uses bars ``0..t`` only (no look-ahead); bars before the
indicator's first defined bar are NaN. Inputs must be finite: TA-Lib's running sums would carry a NaN in the
middle of a series into every later bar.

TA-Lib is called for the indicators it has (RSI, MACD, STOCH, CCI, ADX, PLUS_DI, MINUS_DI, MOM, WILLR,
ULTOSC, SMA, EMA, and WMA, MAX, MIN as building blocks), so those values are TA-Lib's exactly. The others
(Hull MA, VWMA, Ichimoku, Awesome Oscillator, Bull Bear Power, Stochastic RSI) follow TradingView's
definitions and are built from TA-Lib primitives and numpy window views, without a Python loop over bars.
Bars are counted as they are stored: a calendar gap (missing day) is not filled, so "20 bars" is 20 stored
bars.
"""

from __future__ import annotations

import types

import numpy as np
import talib
from numpy.lib.stride_tricks import as_strided

from alpha_assets.typing import FloatArray
from alpha_assets.validation import check_array, check_int, check_same_length

#: An RSI range at or below this many points is rounding noise of a flat price, treated as zero.
_FLAT_RSI_RANGE = 1e-10

__all__ = [
    "awesome_oscillator",
    "bull_bear_power",
    "cci",
    "dmi",
    "ema",
    "hull_ma",
    "ichimoku",
    "lag",
    "lagged_windows",
    "macd",
    "momentum",
    "rolling_sum",
    "rsi",
    "rsi_stochastic",
    "sma",
    "stoch",
    "stoch_rsi",
    "ultimate_oscillator",
    "vwma",
    "williams_r",
]


# TA-Lib exports each function wrapped for pandas/polars input (functools.wraps); on numpy arrays the wrapper
# only adds ~10 us a call, as much as the indicator itself on a one-day tail. Call the compiled functions.
_TA = types.SimpleNamespace(
    **{
        name: getattr(getattr(talib, name), "__wrapped__", getattr(talib, name))
        for name in (
            "ADX",
            "CCI",
            "EMA",
            "MACD",
            "MAX",
            "MIN",
            "MINUS_DI",
            "MOM",
            "PLUS_DI",
            "RSI",
            "SMA",
            "STOCH",
            "ULTOSC",
            "WILLR",
            "WMA",
        )
    }
)


def lag(values: FloatArray, periods: int) -> FloatArray:
    """``values`` shifted ``periods`` bars forward in time: ``out[t] = values[t - periods]``.

    Parameters
    ----------
    values : ndarray of shape (n_observations,), float64
        Series, oldest bar first.
    periods : int
        Bars to look back, >= 0.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        NaN on the first ``periods`` bars.

    Raises
    ------
    TypeError, ValueError
        When ``values`` is not a 1-D float64 array or ``periods`` is negative.
    """
    values = check_array(values, "values")
    periods = check_int(periods, "periods", 0)
    out = np.full_like(values, np.nan)
    if periods < values.size:
        out[periods:] = values[: values.size - periods]
    return out


def lagged_windows(values: FloatArray, length: int) -> np.ndarray:
    """Read-only view of shape (length, n_windows): column ``j`` holds ``values[j : j + length]``.

    The window in column ``j`` ends at bar ``j + length - 1``; ``n_windows = n_observations - length + 1``.
    Reducing over axis 0 adds whole rows in a fixed order, so a window's value is computed the same way
    whatever the length of the series (exact prefix invariance) and runs as contiguous vector operations.

    Parameters
    ----------
    values : ndarray of shape (n_observations,), float64
        Series, oldest bar first; n_observations >= ``length``.
    length : int
        Window in bars, >= 1.

    Returns
    -------
    ndarray of shape (length, n_observations - length + 1), float64
        A strided view of ``values`` (no copy).

    Raises
    ------
    TypeError, ValueError
        When ``values`` is not a 1-D float64 array, or ``length`` < 1 or longer than ``values``.
    """
    values = check_array(values, "values")
    length = check_int(length, "length", 1)
    if length > values.size:
        raise ValueError(f"`length` must be <= n_observations ({values.size}), got {length}")
    # as_strided directly: sliding_window_view's argument handling costs ~25 us a call, more than the sum of a
    # short tail's windows. Read-only, each row a shifted view of the contiguous series.
    step = values.strides[0]
    return as_strided(values, shape=(length, values.size - length + 1), strides=(step, step), writeable=False)


def rolling_sum(values: FloatArray, length: int) -> FloatArray:
    """Sum of the last ``length`` bars, each window summed on its own.

    Unlike TA-Lib's running sum, a NaN in the middle of ``values`` (e.g. Stochastic RSI on a flat RSI) makes
    only the windows that contain it NaN, a window of zeros sums to exactly zero, and no rounding error
    carries over from one window to the next.

    Parameters
    ----------
    values : ndarray of shape (n_observations,), float64
        Series, oldest bar first; NaN allowed.
    length : int
        Window in bars, >= 1.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Same units as ``values``; NaN on the first ``length - 1`` bars and on windows holding a NaN.

    Raises
    ------
    TypeError, ValueError
        When ``values`` is not a 1-D float64 array or ``length`` < 1.
    """
    values = check_array(values, "values")
    length = check_int(length, "length", 1)
    out = np.full_like(values, np.nan)
    if values.size >= length:
        out[length - 1 :] = lagged_windows(values, length).sum(axis=0)
    return out


def sma(close: FloatArray, length: int) -> FloatArray:
    """Compute the simple moving average of ``close`` over ``length`` bars (TA-Lib ``SMA``).

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency, finite.
    length : int
        Window in bars, >= 2.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Quote currency; NaN on the first ``length - 1`` bars.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or ``length`` < 2.
    """
    return _TA.SMA(check_array(close, "close"), timeperiod=check_int(length, "length", 2))


def ema(close: FloatArray, length: int) -> FloatArray:
    """Compute the EMA, ``alpha = 2 / (length + 1)``, seeded with the SMA of the first ``length`` bars.

    TA-Lib ``EMA`` (the seeding TradingView uses too).

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency, finite.
    length : int
        Span in bars, >= 2.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Quote currency; NaN on the first ``length - 1`` bars.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or ``length`` < 2.
    """
    return _TA.EMA(check_array(close, "close"), timeperiod=check_int(length, "length", 2))


def rsi(close: FloatArray, length: int = 14) -> FloatArray:
    """Relative Strength Index with Wilder smoothing (TA-Lib ``RSI``).

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, finite.
    length : int, default 14
        Wilder period in bars, >= 2.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        In [0, 100]; NaN on the first ``length`` bars. TA-Lib gives 0 when nothing moved over the seed.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or ``length`` < 2.
    """
    return _TA.RSI(check_array(close, "close"), timeperiod=check_int(length, "length", 2))


def macd(
    close: FloatArray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal line and histogram (TA-Lib ``MACD``).

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency, finite.
    fast, slow, signal : int, default 12, 26, 9
        EMA spans in bars, each >= 2.

    Returns
    -------
    macd, signal, hist : ndarray of shape (n_observations,), float64
        Quote currency; NaN on the first ``slow + signal - 2`` bars.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or a span < 2.
    """
    return _TA.MACD(
        check_array(close, "close"),
        fastperiod=check_int(fast, "fast", 2),
        slowperiod=check_int(slow, "slow", 2),
        signalperiod=check_int(signal, "signal", 2),
    )


def stoch(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    k_length: int = 14,
    k_smooth: int = 3,
    d_smooth: int = 3,
) -> tuple[FloatArray, FloatArray]:
    """Slow stochastic: %K over ``k_length`` bars smoothed by SMA ``k_smooth``, %D its SMA ``d_smooth``.

    TA-Lib ``STOCH`` with SMA smoothing (TA-Lib gives a raw %K of 0 when the range is zero).

    Parameters
    ----------
    high, low, close : ndarray of shape (n_observations,), float64
        Bar prices, quote currency, finite.
    k_length, k_smooth, d_smooth : int, default 14, 3, 3
        Windows in bars, each >= 1.

    Returns
    -------
    k, d : ndarray of shape (n_observations,), float64
        In [0, 100]; NaN during the warm-up (``k_length + k_smooth + d_smooth - 3`` bars).

    Raises
    ------
    TypeError, ValueError
        When a series is not 1-D float64, the shapes differ, or a window < 1.
    """
    high, low, close = check_array(high, "high"), check_array(low, "low"), check_array(close, "close")
    check_same_length(high=high, low=low, close=close)
    return _TA.STOCH(
        high,
        low,
        close,
        fastk_period=check_int(k_length, "k_length", 1),
        slowk_period=check_int(k_smooth, "k_smooth", 1),
        slowk_matype=talib.MA_Type.SMA,
        slowd_period=check_int(d_smooth, "d_smooth", 1),
        slowd_matype=talib.MA_Type.SMA,
    )


def cci(high: FloatArray, low: FloatArray, close: FloatArray, length: int = 20) -> FloatArray:
    """Commodity Channel Index of the typical price ``(high + low + close) / 3`` (TA-Lib ``CCI``).

    Parameters
    ----------
    high, low, close : ndarray of shape (n_observations,), float64
        Bar prices, quote currency, finite.
    length : int, default 20
        Window in bars, >= 2.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Unitless; NaN on the first ``length - 1`` bars.

    Raises
    ------
    TypeError, ValueError
        When a series is not 1-D float64, the shapes differ, or ``length`` < 2.
    """
    high, low, close = check_array(high, "high"), check_array(low, "low"), check_array(close, "close")
    check_same_length(high=high, low=low, close=close)
    return _TA.CCI(high, low, close, timeperiod=check_int(length, "length", 2))


def dmi(
    high: FloatArray, low: FloatArray, close: FloatArray, length: int = 14
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Directional movement: +DI, -DI and ADX, Wilder smoothing (TA-Lib ``PLUS_DI``, ``MINUS_DI``, ``ADX``).

    Parameters
    ----------
    high, low, close : ndarray of shape (n_observations,), float64
        Bar prices, quote currency, finite.
    length : int, default 14
        Wilder period in bars for the DI and the ADX, >= 2.

    Returns
    -------
    plus_di, minus_di, adx : ndarray of shape (n_observations,), float64
        In [0, 100]; the DI are NaN on the first ``length`` bars, the ADX on the first ``2 * length - 1``.

    Raises
    ------
    TypeError, ValueError
        When a series is not 1-D float64, the shapes differ, or ``length`` < 2.
    """
    high, low, close = check_array(high, "high"), check_array(low, "low"), check_array(close, "close")
    check_same_length(high=high, low=low, close=close)
    length = check_int(length, "length", 2)
    return (
        _TA.PLUS_DI(high, low, close, timeperiod=length),
        _TA.MINUS_DI(high, low, close, timeperiod=length),
        _TA.ADX(high, low, close, timeperiod=length),
    )


def momentum(close: FloatArray, length: int = 10) -> FloatArray:
    """Momentum ``close[t] - close[t - length]`` (TA-Lib ``MOM``).

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency, finite.
    length : int, default 10
        Look-back in bars, >= 1.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Quote currency; NaN on the first ``length`` bars.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or ``length`` < 1.
    """
    return _TA.MOM(check_array(close, "close"), timeperiod=check_int(length, "length", 1))


def williams_r(high: FloatArray, low: FloatArray, close: FloatArray, length: int = 14) -> FloatArray:
    """Williams %R over ``length`` bars (TA-Lib ``WILLR``).

    Parameters
    ----------
    high, low, close : ndarray of shape (n_observations,), float64
        Bar prices, quote currency, finite.
    length : int, default 14
        Window in bars, >= 2.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        In [-100, 0]; NaN on the first ``length - 1`` bars.

    Raises
    ------
    TypeError, ValueError
        When a series is not 1-D float64, the shapes differ, or ``length`` < 2.
    """
    high, low, close = check_array(high, "high"), check_array(low, "low"), check_array(close, "close")
    check_same_length(high=high, low=low, close=close)
    return _TA.WILLR(high, low, close, timeperiod=check_int(length, "length", 2))


def ultimate_oscillator(
    high: FloatArray, low: FloatArray, close: FloatArray, short: int = 7, medium: int = 14, long: int = 28
) -> FloatArray:
    """Ultimate Oscillator: buying pressure over true range, three windows weighted 4:2:1 (TA-Lib ``ULTOSC``).

    Parameters
    ----------
    high, low, close : ndarray of shape (n_observations,), float64
        Bar prices, quote currency, finite.
    short, medium, long : int, default 7, 14, 28
        Windows in bars, each >= 1.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        In [0, 100]; NaN on the first ``long`` bars.

    Raises
    ------
    TypeError, ValueError
        When a series is not 1-D float64, the shapes differ, or a window < 1.
    """
    high, low, close = check_array(high, "high"), check_array(low, "low"), check_array(close, "close")
    check_same_length(high=high, low=low, close=close)
    return _TA.ULTOSC(
        high,
        low,
        close,
        timeperiod1=check_int(short, "short", 1),
        timeperiod2=check_int(medium, "medium", 1),
        timeperiod3=check_int(long, "long", 1),
    )


def awesome_oscillator(high: FloatArray, low: FloatArray, fast: int = 5, slow: int = 34) -> FloatArray:
    """Awesome Oscillator: ``SMA(hl2, fast) - SMA(hl2, slow)`` with ``hl2 = (high + low) / 2``.

    Parameters
    ----------
    high, low : ndarray of shape (n_observations,), float64
        Bar prices, quote currency, finite.
    fast, slow : int, default 5, 34
        SMA windows in bars, each >= 2.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Quote currency; NaN on the first ``slow - 1`` bars.

    Raises
    ------
    TypeError, ValueError
        When a series is not 1-D float64, the shapes differ, or a window < 2.
    """
    high, low = check_array(high, "high"), check_array(low, "low")
    check_same_length(high=high, low=low)
    hl2 = (high + low) / 2.0
    return _TA.SMA(hl2, timeperiod=check_int(fast, "fast", 2)) - _TA.SMA(hl2, timeperiod=check_int(slow, "slow", 2))


def bull_bear_power(
    high: FloatArray, low: FloatArray, close: FloatArray, length: int = 13
) -> tuple[FloatArray, FloatArray]:
    """Elder's bull power ``high - EMA(close, length)`` and bear power ``low - EMA(close, length)``.

    Parameters
    ----------
    high, low, close : ndarray of shape (n_observations,), float64
        Bar prices, quote currency, finite.
    length : int, default 13
        EMA span in bars, >= 2.

    Returns
    -------
    bull, bear : ndarray of shape (n_observations,), float64
        Quote currency; NaN on the first ``length - 1`` bars. TradingView's single "Bull Bear Power" line
        is ``bull + bear``.

    Raises
    ------
    TypeError, ValueError
        When a series is not 1-D float64, the shapes differ, or ``length`` < 2.
    """
    high, low, close = check_array(high, "high"), check_array(low, "low"), check_array(close, "close")
    check_same_length(high=high, low=low, close=close)
    average = _TA.EMA(close, timeperiod=check_int(length, "length", 2))
    return high - average, low - average


def stoch_rsi(
    close: FloatArray, k_smooth: int = 3, d_smooth: int = 3, rsi_length: int = 14, stoch_length: int = 14
) -> tuple[FloatArray, FloatArray]:
    """Stochastic RSI as TradingView defines it: ``k = SMA(stoch(rsi), k_smooth)``, ``d = SMA(k, d_smooth)``.

    ``stoch(rsi) = 100 * (rsi - min(rsi, stoch_length)) / (max(rsi, stoch_length) - min(rsi, stoch_length))``
    on the Wilder RSI of ``close`` (TA-Lib). This is not TA-Lib's ``STOCHRSI``, which smooths differently.

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, finite.
    k_smooth, d_smooth, rsi_length, stoch_length : int, default 3, 3, 14, 14
        Windows in bars (``rsi_length`` >= 2, the others >= 1).

    Returns
    -------
    k, d : ndarray of shape (n_observations,), float64
        In [0, 100]. NaN during the warm-up (``rsi_length + stoch_length + k_smooth + d_smooth - 3``
        bars) and, as in Pine where a division by zero gives ``na``, where the RSI range of the window is
        zero: at most ``1e-10`` RSI points, since a flat price leaves the Wilder RSI constant up to rounding.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or a window is out of range.
    """
    strength = _TA.RSI(check_array(close, "close"), timeperiod=check_int(rsi_length, "rsi_length", 2))
    return rsi_stochastic(strength, k_smooth, d_smooth, stoch_length)


def rsi_stochastic(
    strength: FloatArray, k_smooth: int = 3, d_smooth: int = 3, stoch_length: int = 14
) -> tuple[FloatArray, FloatArray]:
    """The stochastic part of :func:`stoch_rsi`, on an RSI series already computed.

    Each value reads the last ``stoch_length + k_smooth + d_smooth - 2`` RSI values only (window maxima, minima
    and sums, no running state), so it can run on a tail of the RSI and give the same values there.

    Parameters
    ----------
    strength : ndarray of shape (n_observations,), float64
        An RSI series in [0, 100]; NaN where it is not defined (its warm-up).
    k_smooth, d_smooth, stoch_length : int, default 3, 3, 14
        Windows in bars, >= 1.

    Returns
    -------
    k, d : ndarray of shape (n_observations,), float64
        As :func:`stoch_rsi`; NaN wherever a window holds a NaN RSI value.

    Raises
    ------
    TypeError, ValueError
        When ``strength`` is not a 1-D float64 array or a window is out of range.
    """
    strength = check_array(strength, "strength")
    stoch_length = check_int(stoch_length, "stoch_length", 1)
    k_smooth, d_smooth = check_int(k_smooth, "k_smooth", 1), check_int(d_smooth, "d_smooth", 1)
    highest = _TA.MAX(strength, timeperiod=stoch_length) if stoch_length > 1 else strength
    lowest = _TA.MIN(strength, timeperiod=stoch_length) if stoch_length > 1 else strength
    span = highest - lowest
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(span > _FLAT_RSI_RANGE, 100.0 * (strength - lowest) / span, np.nan)
    k = rolling_sum(raw, k_smooth) / k_smooth
    return k, rolling_sum(k, d_smooth) / d_smooth


def hull_ma(close: FloatArray, length: int = 9) -> FloatArray:
    """Hull moving average ``WMA(2 * WMA(close, length // 2) - WMA(close, length), floor(sqrt(length)))``.

    Built from TA-Lib ``WMA`` (linear weights), as TradingView's ``ta.hma``.

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency, finite.
    length : int, default 9
        Length in bars, >= 4 (so that every inner WMA has at least 2 bars).

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Quote currency; NaN on the first ``length + floor(sqrt(length)) - 2`` bars.

    Raises
    ------
    TypeError, ValueError
        When ``close`` is not a 1-D float64 array or ``length`` < 4.
    """
    close = check_array(close, "close")
    length = check_int(length, "length", 4)
    raw = 2.0 * _TA.WMA(close, timeperiod=length // 2) - _TA.WMA(close, timeperiod=length)
    return _TA.WMA(raw, timeperiod=int(np.floor(np.sqrt(length))))


def vwma(close: FloatArray, volume: FloatArray, length: int = 20) -> FloatArray:
    """Volume-weighted moving average ``sum(close * volume) / sum(volume)`` over ``length`` bars.

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency, finite.
    volume : ndarray of shape (n_observations,), float64
        Base-currency volume, finite, >= 0.
    length : int, default 20
        Window in bars, >= 1.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Quote currency; NaN on the first ``length - 1`` bars and where the window's volume is zero (Pine
        gives ``na`` there too). Each window is summed on its own, so an all-zero window is exactly zero.

    Raises
    ------
    TypeError, ValueError
        When a series is not 1-D float64, the shapes differ, or ``length`` < 1.
    """
    close, volume = check_array(close, "close"), check_array(volume, "volume")
    check_same_length(close=close, volume=volume)
    length = check_int(length, "length", 1)
    weighted = rolling_sum(close * volume, length)
    total = rolling_sum(volume, length)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0.0, weighted / total, np.nan)


def ichimoku(
    high: FloatArray,
    low: FloatArray,
    conversion: int = 9,
    base: int = 26,
    span_b: int = 52,
    displacement: int = 26,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Ichimoku lines as displayed at each bar: conversion, base, and the two leading spans.

    ``donchian(n) = (max(high, n) + min(low, n)) / 2``; conversion and base are ``donchian(conversion)``
    and ``donchian(base)``; the spans computed at bar ``s`` are ``(conversion + base) / 2`` and
    ``donchian(span_b)``, and are displayed ``displacement`` bars later, so the value at bar ``t`` is the span
    computed at ``t - displacement`` (shifted forward in time, never backward).

    Parameters
    ----------
    high, low : ndarray of shape (n_observations,), float64
        Bar prices, quote currency, finite.
    conversion, base, span_b : int, default 9, 26, 52
        Donchian windows in bars, each >= 2.
    displacement : int, default 26
        Forward shift of the spans in bars, >= 0.

    Returns
    -------
    conversion_line, base_line, lead1, lead2 : ndarray of shape (n_observations,), float64
        Quote currency; NaN on the first ``conversion - 1``, ``base - 1``, ``base - 1 + displacement`` and
        ``span_b - 1 + displacement`` bars respectively.

    Raises
    ------
    TypeError, ValueError
        When a series is not 1-D float64, the shapes differ, or a window is out of range.
    """
    high, low = check_array(high, "high"), check_array(low, "low")
    check_same_length(high=high, low=low)
    displacement = check_int(displacement, "displacement", 0)

    def donchian(window: int) -> FloatArray:
        return (_TA.MAX(high, timeperiod=window) + _TA.MIN(low, timeperiod=window)) / 2.0

    conversion_line = donchian(check_int(conversion, "conversion", 2))
    base_line = donchian(check_int(base, "base", 2))
    lead1 = lag((conversion_line + base_line) / 2.0, displacement)
    lead2 = lag(donchian(check_int(span_b, "span_b", 2)), displacement)
    return conversion_line, base_line, lead1, lead2
