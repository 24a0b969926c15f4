"""Tests of the ``files`` source (``alpha_assets.sources.files``) on real CSV and parquet files in tmp_path.

Exercised: listing and key validation of file names (bad names skipped and reported, never used as paths),
several exchanges in one folder and the exchange filter, base/quote split, real-world formats (Yahoo with BOM,
CRLF, quotes and Adj Close; yfinance and TradingView zoned days; a headerless Binance kline dump), prices equal
bit for bit to ``float(text)``, epoch seconds/milliseconds/microseconds/nanoseconds, intraday files refused,
the clock (past and future), a bad cell refusing its row only, every refused file reported with its reason,
and batched reading. Left untouched: ingestion of these bars (test_ingest.py) and the command through Dagster
(test_defs/test_flow_files.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alpha_assets.errors import SourceError, UnsafeKeyError
from alpha_assets.sources.base import Market, MarketSource
from alpha_assets.sources.files import FileSource

NOW = pd.Timestamp("2026-11-25T21:07:00Z")
DAY = pd.Timedelta(days=1)


def _bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    timestamps = pd.date_range(end=NOW.floor("D"), periods=n + 1, freq="D", tz="UTC")[:-1]
    return pd.DataFrame(
        {
            "timestamp": timestamps,
            "open": close * 0.99,
            "high": close * 1.02,
            "low": close * 0.97,
            "close": close,
            "volume": rng.uniform(1e3, 1e4, n),
        }
    )


def _write_csv_iso(frame: pd.DataFrame, path) -> None:
    out = frame.copy()
    out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)


def _market(source: FileSource, key: str) -> Market:
    return next(m for m in source.load_markets() if m.symbol_key == key)


@pytest.fixture
def src_folder(tmp_path):
    folder = tmp_path / "bars"
    folder.mkdir()
    _write_csv_iso(_bars(40, 1), folder / "MYEX_BTCUSDT_1d.csv")
    epoch = _bars(30, 2)
    epoch["timestamp"] = epoch["timestamp"].astype("int64") // 10**6
    epoch.to_csv(folder / "MYEX_ETHBTC_1d.csv", index=False)
    _bars(20, 3).assign(extra="x").to_parquet(folder / "MYEX_SOLUSDT_1d.parquet")
    _write_csv_iso(_bars(10, 4), folder / "MYEX_WEIRD_1d.csv")
    for name in ("README.md", "myex_btcusdt_1d.csv", "MYEX_BTC-USDT_1d.csv", "MYEX_BTCUSDT_4h.csv"):
        (folder / name).write_text("timestamp,open\n")
    return folder


def test_file_source_lists_valid_files_and_reports_skipped(src_folder):
    source = FileSource(src_folder, now=NOW)
    assert isinstance(source, MarketSource)
    assert source.exchange_key == "MYEX"
    markets = {m.symbol_key: m for m in source.load_markets()}
    assert sorted(markets) == ["MYEX_BTCUSDT", "MYEX_ETHBTC", "MYEX_SOLUSDT", "MYEX_WEIRD"]
    assert (markets["MYEX_ETHBTC"].base, markets["MYEX_ETHBTC"].quote) == ("ETH", "BTC")
    assert (markets["MYEX_WEIRD"].base, markets["MYEX_WEIRD"].quote, markets["MYEX_WEIRD"].ccxt_symbol) == (
        "WEIRD",
        "",
        "WEIRD",
    )
    skipped = {s.name: s.reason for s in source.skipped}
    assert set(skipped) == {"README.md", "myex_btcusdt_1d.csv", "MYEX_BTC-USDT_1d.csv", "MYEX_BTCUSDT_4h.csv"}
    assert "refused" in skipped["myex_btcusdt_1d.csv"]
    assert skipped["README.md"] == "name is not <EXCHANGE>_<SYMBOL>_1d.csv or .parquet"
    assert source.skipped[0].to_json_dict() == {"name": source.skipped[0].name, "reason": source.skipped[0].reason}


def test_file_source_reads_iso_epoch_and_parquet_alike(src_folder):
    source = FileSource(src_folder, now=NOW)
    for key, seed, n in (("MYEX_BTCUSDT", 1, 40), ("MYEX_ETHBTC", 2, 30), ("MYEX_SOLUSDT", 3, 20)):
        got = source.fetch_daily_bars(_market(source, key), since=NOW - 1000 * DAY, until=NOW)
        expected = _bars(n, seed)
        assert str(got["timestamp"].dtype) == "datetime64[ms, UTC]"
        assert list(got.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
        pd.testing.assert_series_equal(got["timestamp"], expected["timestamp"].astype("datetime64[ms, UTC]"))
        np.testing.assert_allclose(got["close"], expected["close"], rtol=1e-12)


def test_file_source_range_is_half_open_and_drops_forming_bar(tmp_path):
    frame = _bars(10, 5)
    forming = frame.iloc[[-1]].assign(timestamp=NOW.floor("D"))
    _write_csv_iso(pd.concat([frame, forming]), tmp_path / "MYEX_AAAUSDT_1d.csv")
    source = FileSource(tmp_path, now=NOW)
    market = _market(source, "MYEX_AAAUSDT")
    assert source.fetch_daily_bars(market, since=NOW - 100 * DAY, until=NOW + 5 * DAY)["timestamp"].max() == (
        NOW.floor("D") - DAY
    )
    window = source.fetch_daily_bars(market, since=frame["timestamp"].iat[2], until=frame["timestamp"].iat[5])
    assert list(window["timestamp"]) == list(frame["timestamp"].iloc[2:5])


def test_file_source_tickers_from_last_bar(src_folder):
    source = FileSource(src_folder, now=NOW)
    source.load_markets()
    ticker = source.fetch_tickers()["MYEX_BTCUSDT"]
    last = _bars(40, 1).iloc[-1]
    assert ticker.last == pytest.approx(last["close"])
    assert ticker.quote_volume == pytest.approx(last["close"] * last["volume"])
    assert source.requests_made == 2


def test_file_source_zoned_offsets_are_converted_to_utc(tmp_path):
    (tmp_path / "MYEX_AAAUSDT_1d.csv").write_text(
        "timestamp,open,high,low,close,volume\n2024-01-02T02:00:00+02:00,1,2,0.5,1.5,10\n"
    )
    source = FileSource(tmp_path, now=NOW)
    bars = source.fetch_daily_bars(_market(source, "MYEX_AAAUSDT"), since=NOW - 5000 * DAY, until=NOW)
    assert bars["timestamp"].iat[0] == pd.Timestamp("2024-01-02T00:00:00Z")


def test_file_source_unparseable_timestamp_is_kept_for_quarantine(tmp_path):
    (tmp_path / "MYEX_AAAUSDT_1d.csv").write_text(
        "timestamp,open,high,low,close,volume\n2024-01-02T00:00:00Z,1,2,0.5,1.5,10\nnot-a-dateZ,1,2,0.5,1.5,10\n"
    )
    source = FileSource(tmp_path, now=NOW)
    bars = source.fetch_daily_bars(_market(source, "MYEX_AAAUSDT"), since=NOW - 10 * DAY, until=NOW)
    assert len(bars) == 1 and bars["timestamp"].isna().all()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_file_source_naive_timestamps_raise_naming_file(tmp_path, fmt):
    frame = _bars(5, 6)
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    path = tmp_path / f"MYEX_AAAUSDT_1d.{fmt}"
    if fmt == "csv":  # a naive date-time; a bare date (2024-01-02) is a day and is read
        frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    source = FileSource(tmp_path, now=NOW)
    with pytest.raises(SourceError, match=rf"MYEX_AAAUSDT_1d\.{fmt}: timezone-naive timestamp"):
        source.fetch_daily_bars(_market(source, "MYEX_AAAUSDT"), since=NOW - 10 * DAY, until=NOW)


def test_file_source_missing_column_raises_naming_file(tmp_path):
    _bars(5, 7).drop(columns=["volume"]).to_parquet(tmp_path / "MYEX_AAAUSDT_1d.parquet")
    source = FileSource(tmp_path, now=NOW)
    with pytest.raises(SourceError, match=r"MYEX_AAAUSDT_1d\.parquet lacks columns \['volume'\]"):
        source.fetch_daily_bars(_market(source, "MYEX_AAAUSDT"), since=NOW - 10 * DAY, until=NOW)


def test_file_source_unreadable_file_raises_and_gets_no_ticker(tmp_path):
    (tmp_path / "MYEX_AAAUSDT_1d.parquet").write_bytes(b"PAR1 definitely not parquet")
    _write_csv_iso(_bars(5, 8), tmp_path / "MYEX_BBBUSDT_1d.csv")
    source = FileSource(tmp_path, now=NOW)
    with pytest.raises(SourceError, match=r"cannot read MYEX_AAAUSDT_1d\.parquet"):
        source.fetch_daily_bars(_market(source, "MYEX_AAAUSDT"), since=NOW - 10 * DAY, until=NOW)
    assert set(source.fetch_tickers()) == {"MYEX_BBBUSDT"}
    assert any(s.name == "MYEX_AAAUSDT_1d.parquet" for s in source.skipped)


def test_file_source_csv_and_parquet_for_one_key_are_both_refused(tmp_path):
    _write_csv_iso(_bars(5, 9), tmp_path / "MYEX_AAAUSDT_1d.csv")
    _bars(5, 9).to_parquet(tmp_path / "MYEX_AAAUSDT_1d.parquet")
    source = FileSource(tmp_path, now=NOW)
    assert source.load_markets() == []
    assert {s.reason for s in source.skipped} == {"both .csv and .parquet exist for MYEX_AAAUSDT: keep one"}


def test_file_source_serves_every_exchange_of_the_folder_and_exchange_key_filters(tmp_path):
    _write_csv_iso(_bars(5, 10), tmp_path / "AAA_XUSDT_1d.csv")
    _write_csv_iso(_bars(5, 11), tmp_path / "BBB_XUSDT_1d.csv")
    both = FileSource(tmp_path, now=NOW)
    assert [m.symbol_key for m in both.load_markets()] == ["AAA_XUSDT", "BBB_XUSDT"]
    assert both.exchange_keys == ("AAA", "BBB") and both.exchange_key == "AAA+BBB"
    assert set(both.fetch_tickers()) == {"AAA_XUSDT", "BBB_XUSDT"}
    source = FileSource(tmp_path, "BBB", now=NOW)
    assert [m.symbol_key for m in source.load_markets()] == ["BBB_XUSDT"]
    assert {s.name: s.reason for s in source.skipped} == {"AAA_XUSDT_1d.csv": "exchange AAA is not BBB"}


def test_file_source_unknown_market_raises(tmp_path):
    source = FileSource(tmp_path, now=NOW)
    assert source.exchange_key == "FILES"
    stranger = Market(symbol_key="FILES_XUSDT", ccxt_symbol="X/USDT", base="X", quote="USDT")
    with pytest.raises(SourceError, match="no file for market 'FILES_XUSDT'"):
        source.fetch_daily_bars(stranger, since=NOW - DAY, until=NOW)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"exchange_key": "my-ex"},
            UnsafeKeyError,
            r"`exchange_key` must be 1 to 32 characters in \[A-Z0-9\]",
        ),
        ({"now": pd.Timestamp("2026-01-01")}, ValueError, "`now` must be timezone-aware"),
    ],
    ids=["bad-exchange-key", "naive-now"],
)
def test_file_source_bad_arguments_raise(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        FileSource(tmp_path, **kwargs)


def test_file_source_missing_directory_raises(tmp_path):
    with pytest.raises(ValueError, match="`directory` must be an existing directory"):
        FileSource(tmp_path / "nope")


# --- real-world files -----------------------------------------------------------------------------------------
HEADER = "timestamp,open,high,low,close,volume\n"


def _read(folder, key="MYEX_AAAUSDT", now=NOW) -> pd.DataFrame:
    source = FileSource(folder, now=now)
    return source.fetch_daily_bars(_market(source, key), since=pd.Timestamp("2000-01-01", tz="UTC"), until=now)


def _price_texts(n: int, seed: int) -> list[str]:
    """Prices as real exports print them: half as exchanges quote them (2 to 8 decimals), half as yfinance and
    Yahoo CSVs write them, the float64 digits of a float32 price (``185.63999938964844``, up to 17 digits)."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(1, 9.99, n) * 10.0 ** rng.integers(-3, 5, n)
    quoted = [f"{v:.{d}f}" for v, d in zip(values[: n // 2], rng.integers(2, 9, n // 2), strict=True)]
    yahoo = [repr(float(np.float32(round(v, 2)))) for v in values[n // 2 :]]
    return quoted + yahoo


def test_prices_parse_bit_for_bit_as_python_float(tmp_path):
    n = 5_000
    texts = _price_texts(n, 1)
    days = pd.date_range("2010-01-01", periods=n, freq="D", tz="UTC").strftime("%Y-%m-%d")
    lines = [f"{d},{t},{t},{t},{t},{t}" for d, t in zip(days, texts, strict=True)]
    (tmp_path / "MYEX_AAAUSDT_1d.csv").write_text(HEADER + "\n".join(lines) + "\n")
    bars = _read(tmp_path)
    expected = np.array([float(t) for t in texts])
    for column in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(bars[column].to_numpy(), expected), column
    # The set discriminates: pandas' default C parser gets some of these prices wrong by one ulp.
    default = pd.read_csv(tmp_path / "MYEX_AAAUSDT_1d.csv")["close"].to_numpy()
    assert np.count_nonzero(default != expected) > 0


@pytest.mark.parametrize(("unit", "factor"), [("s", 1), ("ms", 10**3), ("us", 10**6), ("ns", 10**9)])
def test_epoch_seconds_milliseconds_microseconds_nanoseconds_are_told_apart(tmp_path, unit, factor):
    frame = _bars(30, 12)
    frame["timestamp"] = frame["timestamp"].astype("int64") // 10**9 * factor
    frame.to_csv(tmp_path / "MYEX_AAAUSDT_1d.csv", index=False)
    bars = _read(tmp_path)
    assert list(bars["timestamp"]) == list(_bars(30, 12)["timestamp"]), unit


def test_epoch_number_too_small_to_tell_its_unit_is_a_row_for_quarantine(tmp_path):
    (tmp_path / "MYEX_AAAUSDT_1d.csv").write_text(HEADER + "1704153600,1,2,0.5,1.5,10\n86400,1,2,0.5,1.5,10\n")
    bars = _read(tmp_path)
    assert bars["timestamp"].iat[0] == pd.Timestamp("2024-01-02", tz="UTC")
    assert pd.isna(bars["timestamp"].iat[1])


def test_yahoo_export_with_bom_crlf_quotes_adj_close_and_blank_lines(tmp_path):
    text = (
        "\ufeffDate,Open,High,Low,Close,Adj Close,Volume\r\n"
        '2024-01-02,"472.16","473.67",470.49,472.65,466.34,123623700\r\n'
        "2024-01-03,470.43,471.19,468.17,468.79,462.53,103585900\r\n"
        "2024-01-05,467.49,470.44,466.43,467.92,461.67,86118900\r\n\r\n\r\n"
    )
    (tmp_path / "NYSEARCA_SPY_1d.csv").write_bytes(text.encode("utf-8"))
    bars = _read(tmp_path, "NYSEARCA_SPY")
    assert list(bars["timestamp"].dt.strftime("%Y-%m-%d")) == ["2024-01-02", "2024-01-03", "2024-01-05"]
    assert list(bars["close"]) == [472.65, 468.79, 467.92]  # Close, not Adj Close
    assert list(bars["open"]) == [472.16, 470.43, 467.49]


def test_zoned_daily_bars_take_the_date_they_write(tmp_path):
    """yfinance writes US equity days at local midnight, TradingView at the session open in UTC."""
    (tmp_path / "NASDAQ_AAPL_1d.csv").write_text(
        "Datetime,Open,High,Low,Close,Volume\n"
        "2024-01-02 00:00:00-05:00,187.15,188.44,183.89,185.64,82488700\n"
        "2024-01-03T14:30:00Z,184.22,185.88,183.43,184.25,58414500\n"
    )
    bars = _read(tmp_path, "NASDAQ_AAPL")
    assert list(bars["timestamp"]) == list(pd.to_datetime(["2024-01-02", "2024-01-03"], utc=True))


def test_headerless_binance_kline_dump_in_microseconds(tmp_path):
    rows = [
        "1735689600000000,93576.00000000,95151.15000000,92888.00000000,94591.79000000,10373.32613000,"
        "1735775999999999,975444623.18840300,1767849,5197.69698000,488737298.38785050,0",
        "1735776000000000,94591.78000000,97839.50000000,94392.00000000,96984.79000000,21970.48948000,"
        "1735862399999999,2118282382.25425590,3255163,11280.40059000,1087639591.07542160,0",
    ]
    (tmp_path / "BINANCE_BTCUSDT_1d.csv").write_text("\n".join(rows) + "\n")
    bars = _read(tmp_path, "BINANCE_BTCUSDT")
    assert list(bars["timestamp"]) == list(pd.to_datetime(["2025-01-01", "2025-01-02"], utc=True))
    assert list(bars["close"]) == [94591.79, 96984.79] and list(bars["volume"]) == [10373.32613, 21970.48948]


def test_one_minute_bars_in_a_daily_file_are_refused_not_taken_as_days(tmp_path):
    minutes = pd.date_range("2026-11-01", periods=3 * 1440, freq="min", tz="UTC")
    frame = pd.DataFrame({"timestamp": minutes.astype("int64") // 10**6, "open": 1.0, "high": 2.0, "low": 0.5})
    frame.assign(close=1.5, volume=3.0).to_csv(tmp_path / "MYEX_AAAUSDT_1d.csv", index=False)
    _write_csv_iso(_bars(10, 13), tmp_path / "MYEX_BBBUSDT_1d.csv")
    source = FileSource(tmp_path, now=NOW)
    with pytest.raises(SourceError, match=r"MYEX_AAAUSDT_1d\.csv: intraday bars \(typical step 0 days 00:01:00"):
        source.fetch_daily_bars(_market(source, "MYEX_AAAUSDT"), since=NOW - 100 * DAY, until=NOW)
    assert set(source.fetch_tickers()) == {"MYEX_BBBUSDT"}
    assert "intraday bars" in {s.name: s.reason for s in source.skipped}["MYEX_AAAUSDT_1d.csv"]


def test_the_clock_decides_which_bars_are_closed(tmp_path):
    _write_csv_iso(_bars(40, 14), tmp_path / "MYEX_AAAUSDT_1d.csv")
    past = NOW - 10 * DAY
    source = FileSource(tmp_path, now=past)
    assert _read(tmp_path, now=past)["timestamp"].max() == past.floor("D") - DAY
    last = _bars(40, 14).set_index("timestamp").loc[past.floor("D") - DAY]
    assert source.fetch_tickers()["MYEX_AAAUSDT"].last == pytest.approx(last["close"])


def test_a_clock_in_the_future_never_serves_bars_after_the_wall_clock(tmp_path):
    wall_day = pd.Timestamp.now(tz="UTC").floor("D")
    days = pd.date_range(wall_day - 5 * DAY, wall_day + 5 * DAY, freq="D", tz="UTC")
    frame = pd.DataFrame({"timestamp": days, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0})
    _write_csv_iso(frame, tmp_path / "MYEX_AAAUSDT_1d.csv")
    future = wall_day + 30 * DAY
    bars = FileSource(tmp_path, now=future).fetch_daily_bars(
        Market("MYEX_AAAUSDT", "AAA/USDT", "AAA", "USDT"), since=wall_day - 10 * DAY, until=future
    )
    assert bars["timestamp"].max() < pd.Timestamp.now(tz="UTC").floor("D") + DAY
    assert len(bars) >= 5


def test_a_bad_cell_makes_its_row_unreadable_and_other_rows_and_files_go_on(tmp_path):
    (tmp_path / "MYEX_AAAUSDT_1d.csv").write_text(
        HEADER + "2024-01-02,1,2,0.5,1.5,10\n2024-01-03,abc,2,0.5,1.5,10\n2024-01-04,1,2,0.5,1e400,10\n"
        "99999999999999999999,1,2,0.5,1.5,10\n2024-01-06,1,2,0.5\n2024-01-07,1,2,0.5,1.5,\n2024-01-08,1,2,0.5,1.5,10\n"
    )
    _write_csv_iso(_bars(5, 15), tmp_path / "MYEX_BBBUSDT_1d.csv")
    bars = _read(tmp_path)
    assert len(bars) == 7
    readable = bars[bars["timestamp"].notna() & np.isfinite(bars.iloc[:, 1:]).all(axis=1)]
    assert list(readable["timestamp"].dt.strftime("%d")) == ["02", "08"]
    assert np.isinf(bars["close"]).sum() == 1 and bars["timestamp"].isna().sum() == 2
    source = FileSource(tmp_path, now=NOW)
    assert set(source.fetch_tickers()) == {"MYEX_AAAUSDT", "MYEX_BBBUSDT"}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("timestamp;open;high;low;close;volume\n2024-01-02;1,5;2;1;1,5;10\n", "semicolon-separated"),
        ("timestamp,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n", "lacks columns ['volume']"),
        (HEADER + '2024-01-02,"1,234.50",1300,1200,1250,10\n', "'1,234.50' on data row 1 has a thousands separator"),
        ("Date,Time,Open,High,Low,Close,Volume\n2024-01-02,00:00,1,2,0.5,1.5,10\n", "several timestamp columns"),
        (HEADER + "01/02/2024,1,2,0.5,1.5,10\n", "timestamps in an unknown format"),
        (HEADER + "2024-01-02 00:00:00,1,2,0.5,1.5,10\n", "timezone-naive timestamp"),
        ("1704153600000,1,2,0.5,1.5,10\n", "no header row"),
        ("", "empty file"),
    ],
    ids=["semicolons", "no-volume", "thousands", "date-and-time", "us-dates", "naive", "headerless", "empty"],
)
def test_refused_files_are_reported_with_their_reason(tmp_path, content, reason):
    (tmp_path / "MYEX_AAAUSDT_1d.csv").write_text(content)
    _write_csv_iso(_bars(5, 16), tmp_path / "MYEX_BBBUSDT_1d.csv")
    source = FileSource(tmp_path, now=NOW)
    assert set(source.fetch_tickers()) == {"MYEX_BBBUSDT"}
    skipped = {s.name: s.reason for s in source.skipped}
    assert reason in skipped["MYEX_AAAUSDT_1d.csv"], skipped
    assert skipped["MYEX_AAAUSDT_1d.csv"].startswith(("MYEX_AAAUSDT_1d.csv", "cannot read MYEX_AAAUSDT_1d.csv"))


def test_csv_is_read_in_batches_with_the_same_bars(tmp_path, monkeypatch):
    from alpha_assets.sources import files

    frame = _bars(3000, 17)
    _write_csv_iso(frame, tmp_path / "MYEX_AAAUSDT_1d.csv")
    whole = _read(tmp_path)
    monkeypatch.setattr(files, "CSV_BLOCK_BYTES", 4096)
    batches = list(files._daily_batches(tmp_path / "MYEX_AAAUSDT_1d.csv"))
    assert len(batches) > 20 and max(len(stamps) for stamps, _ in batches) < 100
    pd.testing.assert_frame_equal(_read(tmp_path), whole)
    assert len(whole) == 3000
