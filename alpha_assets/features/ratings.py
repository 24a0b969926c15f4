"""TradingView's technical rating (v3): 15 moving-average votes, 11 oscillator votes and their aggregation.

Every vote is a float64 array of shape (n_observations,) holding +1 (buy), -1 (sell), 0 (neutral) or NaN when
the vote cannot be computed at that bar (an input, or an input's previous bar, is still in its warm-up). The
rules are those of ``docs/features.md`` and the project guide ``technical-ratings.md``; a vote at bar ``t``
uses the indicator values at ``t`` and earlier only.
"""

from __future__ import annotations

import numpy as np

from alpha_assets.features.indicators import lag
from alpha_assets.typing import FloatArray
from alpha_assets.validation import check_array, check_same_length

__all__ = [
    "LABEL_BUY",
    "LABEL_NEUTRAL",
    "LABEL_SELL",
    "LABEL_STRONG_BUY",
    "LABEL_STRONG_SELL",
    "adx_vote",
    "ao_vote",
    "bbpower_vote",
    "cci_vote",
    "ichimoku_vote",
    "ma_vote",
    "macd_vote",
    "mom_vote",
    "rating_label",
    "recommend",
    "rsi_vote",
    "stoch_vote",
    "stochrsi_vote",
    "uo_vote",
    "willr_vote",
]

LABEL_STRONG_SELL = -2.0
LABEL_SELL = -1.0
LABEL_NEUTRAL = 0.0
LABEL_BUY = 1.0
LABEL_STRONG_BUY = 2.0


def _check(**arrays: FloatArray) -> None:
    for name, values in arrays.items():
        check_array(values, name)
    check_same_length(**arrays)


def _vote(buy: np.ndarray, sell: np.ndarray, *inputs: FloatArray) -> FloatArray:
    """+1 where ``buy``, else -1 where ``sell``, else 0; NaN where any of ``inputs`` is NaN."""
    out = np.where(buy, 1.0, np.where(sell, -1.0, 0.0))
    missing = np.isnan(inputs[0])
    for values in inputs[1:]:
        missing |= np.isnan(values)
    out[missing] = np.nan
    return out


def ma_vote(close: FloatArray, average: FloatArray) -> FloatArray:
    """Moving-average vote ``sign(close - average)``: +1 above, -1 below, 0 equal.

    Parameters
    ----------
    close : ndarray of shape (n_observations,), float64
        Closes, quote currency.
    average : ndarray of shape (n_observations,), float64
        The moving average (SMA, EMA, Hull, VWMA), quote currency; NaN in its warm-up.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where ``average`` or ``close`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When an input is not a 1-D float64 array or the shapes differ.
    """
    _check(close=close, average=average)
    return np.sign(close - average)


def ichimoku_vote(
    close: FloatArray, conversion: FloatArray, base: FloatArray, lead1: FloatArray, lead2: FloatArray
) -> FloatArray:
    """Ichimoku vote on the lines as displayed at the bar (``lead1``/``lead2`` computed 26 bars earlier).

    Buy when ``lead1 > lead2 and base > lead1 and conversion > base and close > conversion``; sell when every
    comparison is reversed; 0 otherwise.

    Parameters
    ----------
    close, conversion, base, lead1, lead2 : ndarray of shape (n_observations,), float64
        Quote currency; the lines NaN in their warm-up.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where any line is NaN.

    Raises
    ------
    TypeError, ValueError
        When an input is not a 1-D float64 array or the shapes differ.
    """
    _check(close=close, conversion=conversion, base=base, lead1=lead1, lead2=lead2)
    buy = (lead1 > lead2) & (base > lead1) & (conversion > base) & (close > conversion)
    sell = (lead1 < lead2) & (base < lead1) & (conversion < base) & (close < conversion)
    return _vote(buy, sell, close, conversion, base, lead1, lead2)


def rsi_vote(rsi: FloatArray) -> FloatArray:
    """RSI vote: buy ``rsi < 30 and rsi > rsi[1]``, sell ``rsi > 70 and rsi < rsi[1]``.

    Parameters
    ----------
    rsi : ndarray of shape (n_observations,), float64
        RSI 14 in [0, 100].

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where ``rsi`` or ``rsi[1]`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When ``rsi`` is not a 1-D float64 array.
    """
    _check(rsi=rsi)
    previous = lag(rsi, 1)
    return _vote((rsi < 30) & (rsi > previous), (rsi > 70) & (rsi < previous), rsi, previous)


def stoch_vote(k: FloatArray, d: FloatArray) -> FloatArray:
    """Stochastic vote: buy ``k < 20 and d < 20 and k > d``, sell ``k > 80 and d > 80 and k < d``.

    Parameters
    ----------
    k, d : ndarray of shape (n_observations,), float64
        Slow %K and %D (14, 3, 3) in [0, 100].

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where ``k`` or ``d`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When an input is not a 1-D float64 array or the shapes differ.
    """
    _check(k=k, d=d)
    return _vote((k < 20) & (d < 20) & (k > d), (k > 80) & (d > 80) & (k < d), k, d)


def cci_vote(cci: FloatArray) -> FloatArray:
    """CCI vote: buy ``cci < -100 and cci > cci[1]``, sell ``cci > 100 and cci < cci[1]``.

    Parameters
    ----------
    cci : ndarray of shape (n_observations,), float64
        CCI 20, unitless.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where ``cci`` or ``cci[1]`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When ``cci`` is not a 1-D float64 array.
    """
    _check(cci=cci)
    previous = lag(cci, 1)
    return _vote((cci < -100) & (cci > previous), (cci > 100) & (cci < previous), cci, previous)


def adx_vote(adx: FloatArray, plus_di: FloatArray, minus_di: FloatArray) -> FloatArray:
    """ADX/DMI vote: with ``adx > 20 and adx > adx[1]``, buy when ``+DI > -DI``, sell when ``+DI < -DI``.

    Parameters
    ----------
    adx, plus_di, minus_di : ndarray of shape (n_observations,), float64
        ADX 14, +DI 14 and -DI 14 in [0, 100].

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where any input or ``adx[1]`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When an input is not a 1-D float64 array or the shapes differ.
    """
    _check(adx=adx, plus_di=plus_di, minus_di=minus_di)
    previous = lag(adx, 1)
    trending = (adx > 20) & (adx > previous)
    return _vote(trending & (plus_di > minus_di), trending & (plus_di < minus_di), adx, previous, plus_di, minus_di)


def ao_vote(ao: FloatArray) -> FloatArray:
    """Awesome Oscillator vote: a zero cross or a saucer.

    Buy when ``ao`` crosses above 0 (``ao > 0 and ao[1] <= 0``) or on a bullish saucer
    (``ao > 0 and ao[1] > 0 and ao > ao[1] and ao[2] > ao[1]``); sell on the mirror image.

    Parameters
    ----------
    ao : ndarray of shape (n_observations,), float64
        Awesome Oscillator, quote currency.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where ``ao``, ``ao[1]`` or ``ao[2]`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When ``ao`` is not a 1-D float64 array.
    """
    _check(ao=ao)
    one, two = lag(ao, 1), lag(ao, 2)
    buy = ((ao > 0) & (one <= 0)) | ((ao > 0) & (one > 0) & (ao > one) & (two > one))
    sell = ((ao < 0) & (one >= 0)) | ((ao < 0) & (one < 0) & (ao < one) & (two < one))
    return _vote(buy, sell, ao, one, two)


def mom_vote(mom: FloatArray) -> FloatArray:
    """Momentum vote: buy ``mom > mom[1]``, sell ``mom < mom[1]``.

    Parameters
    ----------
    mom : ndarray of shape (n_observations,), float64
        Momentum 10, quote currency.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where ``mom`` or ``mom[1]`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When ``mom`` is not a 1-D float64 array.
    """
    _check(mom=mom)
    previous = lag(mom, 1)
    return _vote(mom > previous, mom < previous, mom, previous)


def macd_vote(macd: FloatArray, signal: FloatArray) -> FloatArray:
    """MACD vote: buy ``macd > signal``, sell ``macd < signal``.

    Parameters
    ----------
    macd, signal : ndarray of shape (n_observations,), float64
        MACD line and signal (12, 26, 9), quote currency.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where an input is NaN.

    Raises
    ------
    TypeError, ValueError
        When an input is not a 1-D float64 array or the shapes differ.
    """
    _check(macd=macd, signal=signal)
    return _vote(macd > signal, macd < signal, macd, signal)


def stochrsi_vote(close: FloatArray, ema50: FloatArray, k: FloatArray, d: FloatArray) -> FloatArray:
    """Stochastic RSI vote, filtered by the trend of ``close`` against its EMA 50.

    Buy ``close < ema50 and k < 20 and d < 20 and k > d``; sell ``close > ema50 and k > 80 and d > 80 and
    k < d``.

    Parameters
    ----------
    close, ema50 : ndarray of shape (n_observations,), float64
        Closes and their EMA 50, quote currency.
    k, d : ndarray of shape (n_observations,), float64
        Stochastic RSI (3, 3, 14, 14) lines in [0, 100].

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where an input is NaN.

    Raises
    ------
    TypeError, ValueError
        When an input is not a 1-D float64 array or the shapes differ.
    """
    _check(close=close, ema50=ema50, k=k, d=d)
    buy = (close < ema50) & (k < 20) & (d < 20) & (k > d)
    sell = (close > ema50) & (k > 80) & (d > 80) & (k < d)
    return _vote(buy, sell, close, ema50, k, d)


def willr_vote(willr: FloatArray) -> FloatArray:
    """Williams %R vote: buy ``wr < -80 and wr > wr[1]``, sell ``wr > -20 and wr < wr[1]``.

    Parameters
    ----------
    willr : ndarray of shape (n_observations,), float64
        Williams %R 14 in [-100, 0].

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where ``willr`` or ``willr[1]`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When ``willr`` is not a 1-D float64 array.
    """
    _check(willr=willr)
    previous = lag(willr, 1)
    return _vote((willr < -80) & (willr > previous), (willr > -20) & (willr < previous), willr, previous)


def bbpower_vote(close: FloatArray, ema50: FloatArray, bull: FloatArray, bear: FloatArray) -> FloatArray:
    """Bull Bear Power vote, filtered by the trend of ``close`` against its EMA 50.

    Buy ``close > ema50 and bear < 0 and bear > bear[1]``; sell ``close < ema50 and bull > 0 and
    bull < bull[1]`` (``bull = high - EMA13``, ``bear = low - EMA13``).

    Parameters
    ----------
    close, ema50 : ndarray of shape (n_observations,), float64
        Closes and their EMA 50, quote currency.
    bull, bear : ndarray of shape (n_observations,), float64
        Bull and bear power, quote currency.

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where an input, ``bull[1]`` or ``bear[1]`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When an input is not a 1-D float64 array or the shapes differ.
    """
    _check(close=close, ema50=ema50, bull=bull, bear=bear)
    bull_1, bear_1 = lag(bull, 1), lag(bear, 1)
    buy = (close > ema50) & (bear < 0) & (bear > bear_1)
    sell = (close < ema50) & (bull > 0) & (bull < bull_1)
    return _vote(buy, sell, close, ema50, bull, bear, bull_1, bear_1)


def uo_vote(uo: FloatArray) -> FloatArray:
    """Ultimate Oscillator vote: buy ``uo > 70``, sell ``uo < 30``.

    Parameters
    ----------
    uo : ndarray of shape (n_observations,), float64
        Ultimate Oscillator (7, 14, 28) in [0, 100].

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Votes in {-1, 0, 1}; NaN where ``uo`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When ``uo`` is not a 1-D float64 array.
    """
    _check(uo=uo)
    return _vote(uo > 70, uo < 30, uo)


def recommend(ma_votes: FloatArray, other_votes: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Aggregate the votes into ``recommend_ma``, ``recommend_other`` and ``recommend_all``.

    Parameters
    ----------
    ma_votes : ndarray of shape (n_observations, n_ma_votes), float64
        The moving-average votes (15 in the rating), NaN where not computable.
    other_votes : ndarray of shape (n_observations, n_other_votes), float64
        The oscillator votes (11 in the rating), NaN where not computable.

    Returns
    -------
    recommend_ma, recommend_other, recommend_all : ndarray of shape (n_observations,), float64
        In [-1, 1]. ``recommend_ma`` and ``recommend_other`` are the means of the available votes of their
        group (NaN when none is available); ``recommend_all`` is their average when both exist, else the one
        that exists, else NaN.

    Raises
    ------
    TypeError, ValueError
        When an input is not 2-D float64 or the row counts differ.
    """
    for name, votes in (("ma_votes", ma_votes), ("other_votes", other_votes)):
        check_array(votes, name, dims=("n_observations", "n_votes"))
    if ma_votes.shape[0] != other_votes.shape[0]:
        raise ValueError(
            f"`ma_votes` and `other_votes` must have the same n_observations, got {ma_votes.shape[0]} "
            f"and {other_votes.shape[0]}"
        )
    recommend_ma = _mean_available(ma_votes)
    recommend_other = _mean_available(other_votes)
    both = (recommend_ma + recommend_other) / 2.0
    recommend_all = np.where(
        np.isnan(recommend_ma), recommend_other, np.where(np.isnan(recommend_other), recommend_ma, both)
    )
    return recommend_ma, recommend_other, recommend_all


def _mean_available(votes: FloatArray) -> FloatArray:
    available = ~np.isnan(votes)
    count = available.sum(axis=1)
    total = np.where(available, votes, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def rating_label(recommend_all: FloatArray) -> FloatArray:
    """Map ``recommend_all`` to the rating label as a float code.

    -2 strong sell (``< -0.5``), -1 sell (``[-0.5, -0.1)``), 0 neutral (``[-0.1, 0.1]``), 1 buy
    (``(0.1, 0.5]``), 2 strong buy (``> 0.5``).

    Parameters
    ----------
    recommend_all : ndarray of shape (n_observations,), float64
        The overall recommendation in [-1, 1].

    Returns
    -------
    ndarray of shape (n_observations,), float64
        Codes in {-2, -1, 0, 1, 2}; NaN where ``recommend_all`` is NaN.

    Raises
    ------
    TypeError, ValueError
        When ``recommend_all`` is not a 1-D float64 array.
    """
    _check(recommend_all=recommend_all)
    label = np.select(
        [recommend_all < -0.5, recommend_all < -0.1, recommend_all <= 0.1, recommend_all <= 0.5],
        [LABEL_STRONG_SELL, LABEL_SELL, LABEL_NEUTRAL, LABEL_BUY],
        default=LABEL_STRONG_BUY,
    )
    label[np.isnan(recommend_all)] = np.nan
    return label
