"""Fixtures of the selection tests (prefix ``sel_``): a seeded market of correlated, fat-tailed sectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from scipy.signal import lfilter

from alpha_assets.alpha.selection_params import FEATURE_COLUMNS


@dataclass(frozen=True)
class SelMarket:
    """Closes of a simulated market, the true sector of each symbol and the as-of feature rows."""

    closes: pd.DataFrame  # (n_dates, n_assets), UTC midnights, no NaN
    sectors: pd.Series  # symbol -> true sector id
    features: pd.DataFrame  # one row per symbol at the last date: symbol, date, FEATURE_COLUMNS

    @property
    def returns(self) -> pd.DataFrame:
        return self.closes.pct_change(fill_method=None).iloc[1:]


def _student_t(rng: np.random.Generator, df: float, size: tuple[int, ...]) -> np.ndarray:
    """Student-t draws scaled to unit variance."""
    return rng.standard_t(df, size=size) / np.sqrt(df / (df - 2.0))


def _clustered_vol(rng: np.random.Generator, n_days: int, n_series: int, base: float) -> np.ndarray:
    """Stochastic volatility: log-vol AR(1) with persistence 0.97 gives volatility clustering."""
    shocks = rng.normal(0.0, 0.15, size=(n_days, n_series))
    log_vol = lfilter([1.0], [1.0, -0.97], shocks, axis=0)
    return base * np.exp(log_vol - log_vol.mean(axis=0))


def sel_simulate_market(
    seed: int, sector_sizes: tuple[int, ...] = (10, 12, 8, 14), n_days: int = 500, start: str = "2023-01-01"
) -> SelMarket:
    """Market factor + sector factors + idiosyncratic noise, all Student-t(4) with clustered volatility."""
    rng = np.random.default_rng(seed)
    n_assets = sum(sector_sizes)
    sector_of = np.repeat(np.arange(len(sector_sizes)), sector_sizes)
    market = _clustered_vol(rng, n_days, 1, 0.008) * _student_t(rng, 4.0, (n_days, 1))
    sector = _clustered_vol(rng, n_days, len(sector_sizes), 0.018) * _student_t(rng, 4.0, (n_days, len(sector_sizes)))
    idio = _clustered_vol(rng, n_days, n_assets, 0.010) * _student_t(rng, 4.0, (n_days, n_assets))
    beta = rng.uniform(0.7, 1.3, size=n_assets)
    rets = np.clip(market * beta + sector[:, sector_of] + idio + 0.0003, -0.6, 3.0)
    # Shuffled names so that sector membership is not the alphabetical order.
    codes = rng.permutation(n_assets) + 100
    symbols = [f"BINANCE_A{c}USDT" for c in codes]
    index = pd.date_range(start, periods=n_days + 1, freq="D", tz="UTC")
    closes = 100.0 * np.vstack([np.ones(n_assets), np.cumprod(1.0 + rets, axis=0)])
    closes_df = pd.DataFrame(closes, index=index, columns=symbols)
    sectors = pd.Series(sector_of, index=symbols, name="sector")
    return SelMarket(closes_df, sectors, sel_features_from_closes(closes_df, rng))


def sel_features_from_closes(closes: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Plausible as-of feature rows: statistics from the closes, ratings and liquidity drawn at random."""
    rets = closes.pct_change(fill_method=None).iloc[1:]
    last60 = rets.iloc[-60:]
    n = closes.shape[1]
    change20 = (closes.iloc[-1] - closes.iloc[-21]).abs()
    path20 = closes.diff().iloc[-20:].abs().sum()
    values = {
        "recommend_all": rng.uniform(-1.0, 1.0, n),
        "recommend_ma": rng.uniform(-1.0, 1.0, n),
        "recommend_other": rng.uniform(-1.0, 1.0, n),
        "return_20d": (closes.iloc[-1] / closes.iloc[-21] - 1.0).to_numpy(),
        "return_60d": (closes.iloc[-1] / closes.iloc[-61] - 1.0).to_numpy(),
        "return_120d": (closes.iloc[-1] / closes.iloc[-121] - 1.0).to_numpy(),
        "volatility_60d": (last60.std() * np.sqrt(365.0)).to_numpy(),
        "efficiency_ratio_20d": (change20 / path20).to_numpy(),
        "skewness_60d": last60.skew().to_numpy(),
        "kurtosis_60d": last60.kurt().to_numpy(),
        "max_drawdown_252d": (closes.iloc[-252:] / closes.iloc[-252:].cummax() - 1.0).min().to_numpy(),
        "history_length": np.full(n, float(len(closes))),
        "avg_traded_value_20d": rng.lognormal(15.0, 1.0, n),
        "permutation_entropy_120d": rng.uniform(0.35, 0.65, n),
    }
    frame = pd.DataFrame({"symbol": list(closes.columns), "date": closes.index[-1]})
    for name in FEATURE_COLUMNS:
        frame[name] = np.asarray(values[name], dtype=np.float64)
    return frame


@pytest.fixture(scope="session")
def sel_market() -> SelMarket:
    """Four sectors of 10, 12, 8 and 14 symbols over 501 daily closes (seed 7)."""
    return sel_simulate_market(7)


@pytest.fixture(scope="session")
def sel_simulate():
    """The market simulator itself, for tests that need another seed or size."""
    return sel_simulate_market
