"""Tests of the ``files`` source (``alpha_assets.sources.files``) on real CSV and parquet files in tmp_path.

Exercised: listing and key validation of file names (bad names skipped and reported, never used as paths),
base/quote split, ISO-8601 and epoch-millisecond timestamps, tickers from the last bar, the half-open range
and the still-forming bar, and SourceError naming the file for naive timestamps, missing columns and
unreadable files. Left untouched: ingestion of these bars (test_ingest.py).
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
    assert source.skipped[0].to_json() == {"name": source.skipped[0].name, "reason": source.skipped[0].reason}


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
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
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


def test_file_source_exchange_key_selects_files(tmp_path):
    _write_csv_iso(_bars(5, 10), tmp_path / "AAA_XUSDT_1d.csv")
    _write_csv_iso(_bars(5, 11), tmp_path / "BBB_XUSDT_1d.csv")
    with pytest.raises(ValueError, match=r"several exchange prefixes \['AAA', 'BBB'\]; pass `exchange_key`"):
        FileSource(tmp_path)
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
