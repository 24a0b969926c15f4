"""The fast paths of ingestion and of the simulated exchange, on tmp_path lakehouses.

Exercised: the daily increment appended to the stored bars gives the same file as a one-shot ingest, a source
re-sending old bars goes through the full merge (revised bars win, only new timestamps count as new), the
simulated exchange's frames equal the pandas construction they replaced, and its fixed clock is floored
once. Leaves the repair bounds and error paths to test_ingest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.sources.base import Market, Ticker
from alpha_assets.sources.ingest import IngestStatus, ingest_symbol, ingest_symbols
from alpha_assets.sources.params import IngestionParams
from alpha_assets.sources.simulated import PLANTED_DEFECTS, SimulatedExchange

DAY = pd.Timedelta(days=1)
NOW = pd.Timestamp("2026-11-25T21:07:00Z")
PARAMS = IngestionParams(history_days=200, warmup_days=50)
MARKET = Market(symbol_key="FAKE_AAAUSDT", ccxt_symbol="AAA/USDT", base="AAA", quote="USDT")


class ResendingSource:
    """A MarketSource that ignores ``since`` and answers the whole series up to ``until``, revised by a factor."""

    exchange_key = "FAKE"

    def __init__(self, bars: pd.DataFrame) -> None:
        self.bars, self.factor, self.requests_made = bars, 1.0, 0

    def load_markets(self) -> list[Market]:
        self.requests_made += 1
        return [MARKET]

    def fetch_tickers(self) -> dict[str, Ticker]:
        self.requests_made += 1
        return {}

    def fetch_daily_bars(self, market: Market, *, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
        self.requests_made += 1
        answer = self.bars.loc[self.bars["timestamp"] < until].copy()
        answer[["open", "high", "low", "close"]] *= self.factor
        return answer.iloc[::-1].reset_index(drop=True)  # newest first, as some exchanges answer


def _series(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 20 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.025))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(NOW.floor("D") - 300 * DAY, periods=n, freq="D", tz="UTC").astype(
                "datetime64[ms, UTC]"
            ),
            "open": close * 0.996,
            "high": close * 1.03,
            "low": close * 0.96,
            "close": close,
            "volume": rng.uniform(1e4, 1e5, n),
        }
    )


@pytest.fixture
def fast_paths(tmp_path) -> LakehousePaths:
    return LakehousePaths(tmp_path / "data")


def _ordinary_markets(source: SimulatedExchange) -> list[Market]:
    """Markets without a planted defect: those anchored on today would differ between days on purpose."""
    return [m for m in source.load_markets() if m.symbol_key not in PLANTED_DEFECTS][:8]


def test_ingest_daily_increments_equal_one_shot_ingest(tmp_path) -> None:
    daily, one_shot = LakehousePaths(tmp_path / "daily"), LakehousePaths(tmp_path / "once")
    days = [NOW + k * DAY for k in range(4)]
    for now in days:
        source = SimulatedExchange(now=now, n_symbols=20)
        reports = ingest_symbols(source, _ordinary_markets(source), daily, now=now, params=PARAMS)
    assert [r.new_bars for r in reports] == [1] * 8 and all(r.requests == 1 for r in reports)
    source = SimulatedExchange(now=days[-1], n_symbols=20)
    markets = _ordinary_markets(source)
    ingest_symbols(source, markets, one_shot, now=days[-1], params=IngestionParams(history_days=203, warmup_days=50))
    for market in markets:
        pd.testing.assert_frame_equal(read_ohlcv(daily, market.symbol_key), read_ohlcv(one_shot, market.symbol_key))


def test_ingest_resent_and_revised_bars_take_full_merge(fast_paths: LakehousePaths) -> None:
    series = _series(3)
    source = ResendingSource(series)
    first = ingest_symbol(source, MARKET, fast_paths, now=NOW - 10 * DAY, params=PARAMS)
    assert first.status is IngestStatus.OK and first.new_bars == first.bars_after == 290
    source.factor = 1.02
    second = ingest_symbol(source, MARKET, fast_paths, now=NOW, params=PARAMS)
    stored = read_ohlcv(fast_paths, MARKET.symbol_key)
    assert second.new_bars == 10 and second.bars_before == 290 and second.bars_after == 300
    expected = series.loc[series["timestamp"] < NOW.floor("D")].reset_index(drop=True)
    expected[["open", "high", "low", "close"]] *= 1.02
    pd.testing.assert_frame_equal(stored, expected)
    assert second.first_bar == expected["timestamp"].iat[0].isoformat()
    assert second.last_bar == (NOW.floor("D") - DAY).isoformat()


def test_ingest_same_answer_again_is_up_to_date(fast_paths: LakehousePaths) -> None:
    source = ResendingSource(_series(4))
    ingest_symbol(source, MARKET, fast_paths, now=NOW, params=PARAMS)
    again = ingest_symbol(source, MARKET, fast_paths, now=NOW + pd.Timedelta(hours=1), params=PARAMS)
    assert again.status is IngestStatus.UP_TO_DATE and again.new_bars == 0 and not again.written


@pytest.mark.parametrize(
    ("since_days", "until_days"),
    [(2000, 0), (30, 0), (1, 0), (0, 0), (500, 400)],
    ids=["whole-history", "month", "one-day", "empty", "old-window"],
)
def test_simulated_fetch_frame_equals_pandas_construction(since_days: int, until_days: int) -> None:
    exchange = SimulatedExchange(now=NOW, n_symbols=12)
    today = NOW.floor("D")
    for market in exchange.load_markets()[:12]:
        frame = exchange.fetch_daily_bars(market, since=today - since_days * DAY, until=today - until_days * DAY)
        days = (frame["timestamp"] - exchange.history_start) / DAY
        assert (days == np.round(days)).all()
        reference = pd.DataFrame(
            {
                "timestamp": (exchange.history_start + pd.to_timedelta(days.to_numpy(), unit="D")).astype(
                    "datetime64[ms, UTC]"
                )
            }
        )
        for column in ("open", "high", "low", "close", "volume"):
            reference[column] = frame[column].to_numpy()
        pd.testing.assert_frame_equal(frame, reference)
        assert len(frame) == 0 or frame["timestamp"].iat[-1] <= today - (until_days + 1) * DAY


def test_simulated_today_fixed_clock_is_floored_once() -> None:
    exchange = SimulatedExchange(now=pd.Timestamp("2026-11-25T23:59:59.999", tz="Europe/Paris"))
    assert exchange.today() == pd.Timestamp("2026-11-25T00:00", tz="UTC")
    assert exchange.today() is exchange.today()
