"""Realistic daily OHLCV for the feature tests: trends, flat stretches, zero-volume days, calendar gaps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

BarsFactory = Callable[..., pd.DataFrame]


def realistic_bars(seed: int, n_observations: int, *, calendar_gaps: bool = False) -> pd.DataFrame:
    """Daily bars with a bull trend, a crash, a dead flat stretch, zero-volume days and a noisy range.

    Parameters
    ----------
    seed : int
        Seed of ``np.random.default_rng``.
    n_observations : int
        Number of bars.
    calendar_gaps : bool
        Drop a few whole days from the calendar (bars stay as they are, timestamps jump).
    """
    rng = np.random.default_rng(seed)
    drift = np.zeros(n_observations)
    segments = np.array_split(np.arange(n_observations), 5)
    drift[segments[0]] = 0.004  # bull trend
    drift[segments[1]] = -0.006  # crash
    drift[segments[3]] = 0.001
    sigma = np.full(n_observations, 0.03)
    sigma[segments[3]] = 0.05
    log_returns = drift + sigma * rng.standard_t(4, n_observations) / np.sqrt(2)
    flat = segments[2][: max(1, len(segments[2]) // 2)]  # a dead market: price pinned, no trades
    log_returns[flat] = 0.0
    close = 50.0 * np.exp(np.cumsum(log_returns))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0.0, 0.012, n_observations))
    high = np.maximum(open_, close) * (1.0 + spread)
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.012, n_observations)))
    volume = rng.lognormal(12.0, 0.8, n_observations)
    high[flat], low[flat], open_[flat], volume[flat] = close[flat], close[flat], close[flat], 0.0
    zero_volume = rng.choice(n_observations, size=n_observations // 40, replace=False)
    volume[zero_volume] = 0.0
    days = np.arange(n_observations)
    if calendar_gaps:
        days = days + np.cumsum(rng.random(n_observations) < 0.03)
    timestamps = pd.Timestamp("2019-01-01", tz="UTC") + pd.to_timedelta(days, unit="D")
    return pd.DataFrame(
        {
            "timestamp": pd.DatetimeIndex(timestamps).astype("datetime64[ms, UTC]"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )


@pytest.fixture
def make_bars() -> BarsFactory:
    return realistic_bars
