"""Real daily equity data shipped in packages, written as files-source files (``<EXCHANGE>_<SYMBOL>_1d.csv``).

- ``arch.data.sp500`` and ``arch.data.nasdaq``: real daily OHLCV of the S&P 500 and NASDAQ Composite indices,
  1999-01-04 to 2018-12-31 (Yahoo Finance), every row an NYSE session.
- ``skfolio.datasets.load_sp500_dataset``: real daily closes of 20 S&P 500 stocks, 1990-01-02 to 2022-12-28.
  It has no open, high, low or volume: the helper derives them from the closes (open = previous close, high
  and low the larger and smaller of the two, volume a seeded log-normal day-to-day noise that rises with the
  absolute return), which keeps every real date and close and gives bars that pass the OHLC sanity rules.

Prices are written with ``repr(float)`` so the parsed value is the package's float exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_bars_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write daily bars (naive date index, OHLCV columns) as a files-source CSV with exact float text."""
    stamps = pd.DatetimeIndex(frame.index).tz_localize("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = ["timestamp,open,high,low,close,volume"]
    columns = [frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")]
    lines += [",".join([stamp, *(repr(float(c[i])) for c in columns)]) for i, stamp in enumerate(stamps)]
    path.write_text("\n".join(lines) + "\n")


def index_bars(name: str) -> pd.DataFrame:
    """The real OHLCV of ``sp500`` or ``nasdaq`` from ``arch``: naive date index, lower-case columns."""
    from arch.data import nasdaq, sp500

    raw = {"sp500": sp500, "nasdaq": nasdaq}[name].load()
    return raw.loc[:, ["Open", "High", "Low", "Close", "Volume"]].rename(columns=str.lower).astype(np.float64)


def stock_bars(ticker: str) -> pd.DataFrame:
    """Bars of one skfolio S&P 500 stock: its real dates and closes, OHLV derived from the closes."""
    from skfolio.datasets import load_sp500_dataset

    prices = load_sp500_dataset()
    close = prices[ticker].astype(np.float64)
    open_ = close.shift(1).fillna(close.iloc[0])
    change = (close / open_ - 1.0).abs()
    noise = np.random.default_rng(list(prices.columns).index(ticker)).normal(0.0, 0.3, len(close))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": 1e6 * np.exp(noise) * (1.0 + 5.0 * change),
        }
    )


def stock_tickers() -> list[str]:
    """The 20 tickers of skfolio's S&P 500 dataset."""
    from skfolio.datasets import load_sp500_dataset

    return [str(c) for c in load_sp500_dataset().columns]


def write_equity_files(
    folder: Path, *, exchange: str, first: str, last: str, indices: bool = True, stocks: int = 0
) -> list[str]:
    """Write the real index files (and the first ``stocks`` skfolio stocks) for ``first..last``; return keys."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = {}
    if indices:
        frames |= {"SPX": index_bars("sp500"), "IXIC": index_bars("nasdaq")}
    frames |= {ticker: stock_bars(ticker) for ticker in stock_tickers()[:stocks]}
    keys = []
    for symbol, frame in frames.items():
        write_bars_csv(frame.loc[first:last], folder / f"{exchange}_{symbol}_1d.csv")
        keys.append(f"{exchange}_{symbol}")
    return keys
