"""Trading calendars on real data: sessions, gaps, staleness and repair of real NYSE index bars.

Exercises ``lakehouse/calendars.py``, the session-aware gap finder of ``lakehouse/ohlcv.py``, the audit's
``gaps`` and ``staleness`` checks, market classification (``sources/markets.py``) and the repair step of
``sources/ingest.py`` on the real S&P 500 bars bundled with ``arch`` (every row an NYSE session, checked against
``exchange_calendars``). Left untouched: the Alpha side's alignment (test_alpha/test_calendar_alignment.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from alpha_assets.dataops.audit.engine import AuditParams, audit_bars, expected_last_bar
from alpha_assets.dataops.audit.records import CHECK_GAPS, CHECK_STALENESS, Verdict
from alpha_assets.errors import ParameterError
from alpha_assets.lakehouse.calendars import (
    CONTINUOUS,
    KNOWN_EXCHANGES,
    ExchangeMarket,
    TradingCalendar,
    periods_per_year,
)
from alpha_assets.lakehouse.ohlcv import find_session_gaps
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.sources.files import FileSource
from alpha_assets.sources.ingest import ingest_symbol
from alpha_assets.sources.markets import classify_markets
from alpha_assets.sources.params import IngestionParams, MarketParams
from alpha_assets_tests.equity_data import index_bars, write_equity_files

KEY = "NYSE_SPX"


def _days(index: pd.Index) -> np.ndarray:
    return pd.DatetimeIndex(index).values.astype("datetime64[D]").view(np.int64)


def _frame(bars: pd.DataFrame) -> pd.DataFrame:
    frame = bars.reset_index(drop=True)
    frame.insert(0, "timestamp", pd.DatetimeIndex(bars.index).tz_localize("UTC").astype("datetime64[ms, UTC]"))
    return frame


@pytest.fixture(scope="module")
def spx() -> pd.DataFrame:
    return index_bars("sp500")


def test_real_sp500_dates_are_exactly_the_xnys_sessions(spx):
    import exchange_calendars

    sessions = exchange_calendars.get_calendar("XNYS", start="1999-01-04", end="2018-12-31").sessions
    assert pd.DatetimeIndex(spx.index).equals(pd.DatetimeIndex(sessions))
    calendar = TradingCalendar.of("XNYS")
    assert calendar.is_session(_days(spx.index)).all()
    assert np.array_equal(calendar.sessions(_days(spx.index)[0], _days(spx.index)[-1]), _days(spx.index))


def test_periods_per_year_come_from_the_calendar():
    assert TradingCalendar.of(CONTINUOUS).periods_per_year == 365
    assert TradingCalendar.of("XNYS").periods_per_year == 252
    # A mixed universe is sampled on the exchange sessions: crypto members do not add days.
    assert periods_per_year(["24/7", "XNYS"]) == 252
    assert periods_per_year(["24/7"]) == 365


def test_find_session_gaps_real_sp500_none_on_xnys_every_weekend_on_24_7(spx):
    days = _days(spx.index)
    assert find_session_gaps(days, TradingCalendar.of("XNYS")) == []
    weekend_gaps = find_session_gaps(days)
    assert len(weekend_gaps) > 1000  # what the audit used to report: every weekend and holiday


def test_find_session_gaps_a_dropped_session_is_one_gap_of_one_session(spx):
    days = _days(spx.loc["2018-06-01":"2018-07-31"].drop(pd.Timestamp("2018-07-05")).index)
    (gap,) = find_session_gaps(days, TradingCalendar.of("XNYS"))
    # 2018-07-04 is Independence Day: the gap is the one session of Thursday 5th, not 4th-5th.
    assert (gap.first_missing, gap.last_missing, gap.missing_bars) == (
        pd.Timestamp("2018-07-05", tz="UTC"),
        pd.Timestamp("2018-07-05", tz="UTC"),
        1,
    )


@pytest.mark.parametrize(
    ("as_of", "behind", "verdict"),
    [
        ("2018-12-24T12:00:00Z", 0, Verdict.OK),  # Monday: Friday's bar is the last closed session
        ("2018-12-26T12:00:00Z", 1, Verdict.OK),  # Christmas is no session: only Monday 24th is missing
        ("2018-12-27T12:00:00Z", 2, Verdict.STALE),
    ],
    ids=["monday", "after-christmas", "two-sessions"],
)
def test_audit_real_sp500_ending_friday_counts_sessions_behind(spx, as_of, behind, verdict):
    bars = _frame(spx.loc["2014-01-01":"2018-12-21"])
    result = audit_bars(bars, symbol_key=KEY, as_of=pd.Timestamp(as_of), params=AuditParams(), calendar="XNYS")
    assert result.checks[CHECK_STALENESS].observed["sessions_behind"] == behind
    assert result.checks[CHECK_GAPS].passed and result.checks[CHECK_GAPS].observed["n_gaps"] == 0
    assert result.verdict is verdict, result.reasons


def test_audit_real_sp500_as_24_7_is_what_the_issue_reported(spx):
    bars = _frame(spx.loc["2014-01-01":"2018-12-21"])
    result = audit_bars(bars, symbol_key=KEY, as_of=pd.Timestamp("2018-12-24T12:00:00Z"), params=AuditParams())
    assert result.verdict is Verdict.TOXIC
    assert result.checks[CHECK_GAPS].observed["missing_fraction"] > 0.3


def test_audit_weekend_bar_of_an_xnys_symbol_is_degraded_and_named(spx):
    bars = _frame(spx.loc["2018-01-01":"2018-12-21"])
    saturday = bars.iloc[[-1]].assign(timestamp=pd.Timestamp("2018-12-15", tz="UTC").as_unit("ms"))
    bars = pd.concat([bars, saturday]).sort_values("timestamp", ignore_index=True)
    result = audit_bars(
        bars, symbol_key=KEY, as_of=pd.Timestamp("2018-12-24T12:00:00Z"), params=AuditParams(), calendar="XNYS"
    )
    assert result.verdict is Verdict.DEGRADED
    assert result.checks[CHECK_GAPS].observed["off_session_bars"] == 1
    assert "1 bars on days that are no XNYS session (first 2018-12-15)" in result.reasons[0]


def test_expected_last_bar_on_monday_is_friday_for_xnys_and_sunday_for_crypto():
    monday = pd.Timestamp("2018-12-24T12:00:00Z")
    assert expected_last_bar(monday, "XNYS") == pd.Timestamp("2018-12-21", tz="UTC")
    assert expected_last_bar(monday) == pd.Timestamp("2018-12-23", tz="UTC")


class _RecordingSource(FileSource):
    """The files source, recording every range of bars asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def fetch_daily_bars(self, market, *, since, until):
        self.asked.append((pd.Timestamp(since), pd.Timestamp(until)))
        return super().fetch_daily_bars(market, since=since, until=until)


def test_ingest_xnys_repairs_only_sessions_and_asks_nothing_on_a_sunday(tmp_path):
    folder = tmp_path / "files"
    write_equity_files(folder, exchange="NYSE", first="2016-01-01", last="2018-12-21")
    paths = LakehousePaths(tmp_path / "data")
    params = IngestionParams(history_days=400, warmup_days=0)
    monday = pd.Timestamp("2018-12-24T12:00:00Z")
    source = _RecordingSource(folder, "NYSE", now=monday)
    markets = {m.symbol_key: m for m in classify_markets(source.load_markets(), MarketParams())}
    market = markets[KEY]
    assert (market.asset_class, market.calendar, market.base, market.quote) == ("equity", "XNYS", "SPX", "USD")

    first = ingest_symbol(source, market, paths, now=monday, params=params)
    calendar = TradingCalendar.of("XNYS")

    # 400 calendar days back from Monday 24th (as for crypto: a mixed universe starts together): the
    # sessions from Monday 2017-11-20 on, no weekend counted as missing.
    assert first.first_bar == "2017-11-20T00:00:00+00:00" and first.gaps_found == 0
    assert first.bars_after == len(calendar.sessions(_days([first.first_bar])[0], _days(["2018-12-21"])[0]))

    # A session lost in the store is re-fetched alone; the weekends around it are never asked for.
    stored = pd.read_parquet(paths.ohlcv_file(KEY))
    lost = pd.Timestamp("2018-07-05", tz="UTC")
    stored[stored["timestamp"] != lost].to_parquet(paths.ohlcv_file(KEY), index=False)
    source.asked.clear()
    repaired = ingest_symbol(source, market, paths, now=monday, params=params)
    assert (repaired.gaps_found, repaired.gaps_repaired, repaired.new_bars) == (1, 1, 1)
    assert source.asked == [(lost, lost + pd.Timedelta(days=1))]
    asked_days = [int(since.value // 86_400_000_000_000) for since, _ in source.asked]
    assert calendar.is_session(np.array(asked_days)).all()

    # Sunday 30th after ingesting Friday 28th: no session closed since, so no request at all.
    sunday = pd.Timestamp("2018-12-30T12:00:00Z")
    source_sunday = _RecordingSource(folder, "NYSE", now=sunday)
    write_equity_files(folder, exchange="NYSE", first="2016-01-01", last="2018-12-28")
    ingest_symbol(source_sunday, market, paths, now=pd.Timestamp("2018-12-29T12:00:00Z"), params=params)
    source_sunday.asked.clear()
    report = ingest_symbol(source_sunday, market, paths, now=sunday, params=params)
    assert source_sunday.asked == [] and report.status == "up_to_date"
    assert report.last_bar == "2018-12-28T00:00:00+00:00"


def test_classify_markets_equity_without_quote_gets_the_exchange_currency(tmp_path):
    folder = tmp_path / "files"
    write_equity_files(folder, exchange="NYSE", first="2018-12-01", last="2018-12-21")
    markets = classify_markets(FileSource(folder, "NYSE").load_markets(), MarketParams())
    assert {(m.symbol_key, m.quote, m.calendar) for m in markets} == {
        ("NYSE_SPX", "USD", "XNYS"),
        ("NYSE_IXIC", "USD", "XNYS"),
    }
    custom = MarketParams(exchanges={"NYSE": dataclasses.replace(KNOWN_EXCHANGES["NYSE"], currency="EUR")})
    assert {m.quote for m in classify_markets(FileSource(folder, "NYSE").load_markets(), custom)} == {"EUR"}


def test_market_params_unknown_calendar_is_refused_naming_the_key():
    with pytest.raises(ParameterError, match=r"MarketParams is refused: exchanges\.NYSE\.calendar: .* got 'NYSEX'"):
        MarketParams(exchanges={"NYSE": ExchangeMarket("equity", "NYSEX", "USD")})


def test_classify_markets_symbol_entry_wins_over_its_exchange(tmp_path):
    folder = tmp_path / "files"
    write_equity_files(folder, exchange="MIX", first="2018-12-01", last="2018-12-21")
    (folder / "MIX_SPX_1d.csv").rename(folder / "MIX_BTCUSDT_1d.csv")
    params = MarketParams(
        exchanges={"MIX": ExchangeMarket("equity", "XNYS", "USD")},
        symbols={"MIX_BTCUSDT": ExchangeMarket("crypto", "24/7")},
    )
    markets = {m.symbol_key: m for m in classify_markets(FileSource(folder, "MIX").load_markets(), params)}
    assert (markets["MIX_BTCUSDT"].calendar, markets["MIX_BTCUSDT"].quote) == ("24/7", "USDT")
    assert (markets["MIX_IXIC"].calendar, markets["MIX_IXIC"].quote) == ("XNYS", "USD")
