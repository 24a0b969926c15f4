"""Tests of incremental ingestion and gap repair (``alpha_assets.sources.ingest``) on tmp_path lakehouses.

Exercised: the first run (history + warm-up bars), a same-day re-run (no request, file hash unchanged), the
next day (one bar, one request), malformed rows quarantined once with reasons, an unreadable or wrong-schema
stored file moved aside and re-ingested, a failing source leaving the stored file byte-identical, gap repair
(filled, unrepairable with its range, retried once a day up to max_repair_attempts, bounded by count, depth
and time), the files source end to end, and argument errors. Sources with scripted behaviour are small
fakes implementing MarketSource; the ccxt source has its own HTTP-server tests.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alpha_assets.errors import SourceError, UnsafeKeyError
from alpha_assets.lakehouse import atomic
from alpha_assets.lakehouse.hashing import file_sha256
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.sources.base import Market, Ticker
from alpha_assets.sources.files import FileSource
from alpha_assets.sources.ingest import IngestStatus, ingest_symbol, ingest_symbols
from alpha_assets.sources.params import IngestionParams
from alpha_assets.sources.simulated import SimulatedExchange

DAY = pd.Timedelta(days=1)
NOW = pd.Timestamp("2026-11-25T21:07:00Z")
TODAY = NOW.floor("D")
SMALL = IngestionParams(history_days=100, warmup_days=20)
MARKET = Market(symbol_key="FAKE_AAAUSDT", ccxt_symbol="AAA/USDT", base="AAA", quote="USDT")


def _series(seed: int = 3, start: pd.Timestamp = TODAY - 400 * DAY, n: int = 410) -> pd.DataFrame:
    """``n`` daily bars from ``start``; by default they run past today, as a live exchange's would."""
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.standard_t(4, n) * 0.02))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq="D", tz="UTC").astype("datetime64[ms, UTC]"),
            "open": close * 0.995,
            "high": close * 1.02,
            "low": close * 0.97,
            "close": close,
            "volume": rng.uniform(1e4, 1e5, n),
        }
    )


class FakeSource:
    """A MarketSource serving one frame, with days it never has, days it lacks only once, or an error."""

    exchange_key = "FAKE"

    def __init__(
        self,
        bars: pd.DataFrame,
        *,
        never=(),
        first_call_missing=(),
        error: Exception | None = None,
        extra_rows: pd.DataFrame | None = None,
        naive: bool = False,
    ) -> None:
        self.bars, self.never, self.first_missing = bars, set(never), set(first_call_missing)
        self.error, self.extra_rows, self.naive = error, extra_rows, naive
        self.requests_made = 0
        self.calls: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def load_markets(self) -> list[Market]:
        self.requests_made += 1
        return [MARKET]

    def fetch_tickers(self) -> dict[str, Ticker]:
        self.requests_made += 1
        return {}

    def fetch_daily_bars(self, market, *, since, until):
        self.requests_made += 1
        self.calls.append((since, until))
        if self.error is not None:
            raise self.error
        ts = self.bars["timestamp"]
        hidden = self.never | (self.first_missing if len(self.calls) == 1 else set())
        frame = self.bars[(ts >= since) & (ts < until) & ~ts.isin(list(hidden))]
        if self.extra_rows is not None:
            frame = pd.concat([frame, self.extra_rows], ignore_index=True)
        if self.naive:
            frame = frame.assign(timestamp=frame["timestamp"].dt.tz_localize(None))
        return frame.reset_index(drop=True)


def _days(*offsets: int) -> list[pd.Timestamp]:
    return [TODAY - k * DAY for k in offsets]


# --- simulated exchange: first run, same-day re-run, next day ----------------------------------------------
@pytest.fixture
def src_sim_markets():
    exchange = SimulatedExchange(now=NOW, n_symbols=10)
    keep = {"SIM_BTCUSDT", "SIM_ETHUSDT", "SIM_NEWBUSDT", "SIM_FRZNUSDT"}
    return [m for m in exchange.load_markets() if m.symbol_key in keep]


def test_ingest_first_run_writes_history_plus_warmup(src_paths, src_sim_markets, monkeypatch):
    exchange = SimulatedExchange(now=NOW, n_symbols=10)
    synced = []
    real_fsync_directory = atomic._fsync_directory
    monkeypatch.setattr(atomic, "_fsync_directory", lambda d: synced.append(d) or real_fsync_directory(d))
    reports = ingest_symbols(exchange, src_sim_markets, src_paths, now=NOW, params=IngestionParams())
    # Four symbol files (and their ingest logs) renamed: each directory synced once, after them all.
    assert src_paths.ohlcv_file("SIM_BTCUSDT").parent in synced
    assert len(synced) == len(set(synced)), synced
    by_key = {r.symbol_key: r for r in reports}
    btc = by_key["SIM_BTCUSDT"]
    assert (btc.status, btc.bars_before, btc.bars_after, btc.new_bars, btc.requests) == (
        IngestStatus.OK,
        0,
        1095 + 300,
        1095 + 300,
        1,
    )
    assert btc.first_bar == (TODAY - 1395 * DAY).isoformat() and btc.last_bar == (TODAY - DAY).isoformat()
    assert by_key["SIM_NEWBUSDT"].bars_after == 60
    stored = read_ohlcv(src_paths, "SIM_BTCUSDT")
    expected = exchange.fetch_daily_bars(src_sim_markets[0], since=TODAY - 1395 * DAY, until=TODAY)
    pd.testing.assert_frame_equal(stored, expected)
    json.dumps([r.to_json_dict() for r in reports])


def test_ingest_same_day_rerun_makes_no_request_and_changes_nothing(src_paths, src_sim_markets):
    ingest_symbols(
        SimulatedExchange(now=NOW, n_symbols=10),
        src_sim_markets,
        src_paths,
        now=NOW,
        params=IngestionParams(),
    )
    hashes = {m.symbol_key: file_sha256(src_paths.ohlcv_file(m.symbol_key)) for m in src_sim_markets}
    again = SimulatedExchange(now=NOW + pd.Timedelta(hours=1), n_symbols=10)
    reports = ingest_symbols(
        again, src_sim_markets, src_paths, now=NOW + pd.Timedelta(hours=1), params=IngestionParams()
    )
    assert again.requests_made == 0
    assert {r.status for r in reports} == {IngestStatus.UP_TO_DATE}
    assert all(not r.written and r.new_bars == 0 for r in reports)
    assert hashes == {m.symbol_key: file_sha256(src_paths.ohlcv_file(m.symbol_key)) for m in src_sim_markets}


def test_ingest_next_day_adds_one_bar_with_one_request(src_paths, src_sim_markets):
    ingest_symbols(
        SimulatedExchange(now=NOW, n_symbols=10),
        src_sim_markets,
        src_paths,
        now=NOW,
        params=IngestionParams(),
    )
    before = read_ohlcv(src_paths, "SIM_ETHUSDT")
    tomorrow = SimulatedExchange(now=NOW + DAY, n_symbols=10)
    reports = ingest_symbols(tomorrow, src_sim_markets, src_paths, now=NOW + DAY, params=IngestionParams())
    assert [(r.requests, r.new_bars, r.status) for r in reports] == [(1, 1, IngestStatus.OK)] * len(reports)
    after = read_ohlcv(src_paths, "SIM_ETHUSDT")
    pd.testing.assert_frame_equal(after.iloc[:-1], before)
    assert after["timestamp"].iat[-1] == TODAY


def test_ingest_simulated_hole_reports_unrepairable_gaps(src_paths):
    exchange = SimulatedExchange(now=NOW, n_symbols=10)
    hole = next(m for m in exchange.load_markets() if m.symbol_key == "SIM_HOLEUSDT")
    report = ingest_symbol(exchange, hole, src_paths, now=NOW, params=IngestionParams())
    assert report.gaps_found >= 5 and report.gaps_repaired == 0
    assert len(report.unrepaired) == report.gaps_found
    assert all(g.missing_bars == 3 and g.attempts == 1 for g in report.unrepaired)
    assert report.requests == 1 + report.gaps_found


# --- malformed rows --------------------------------------------------------------------------------------
def test_ingest_malformed_rows_are_quarantined_with_reasons(src_paths):
    good = _series(n=200, start=TODAY - 200 * DAY)
    bad = good.iloc[[100, 110, 120, 130, 140]].copy()
    bad.loc[bad.index[0], "close"] = np.nan
    bad.loc[bad.index[1], "open"] = -1.0
    bad.loc[bad.index[2], ["high", "low"]] = [1.0, 2.0]
    bad.loc[bad.index[3], "timestamp"] = TODAY + 2 * DAY
    bad.loc[bad.index[4], "volume"] = -5.0
    duplicate = good.iloc[[150]].assign(close=good["close"].iat[150] * 1.001)
    shuffled = good.sample(frac=1.0, random_state=1)
    source = FakeSource(shuffled, extra_rows=pd.concat([bad, duplicate]))
    report = ingest_symbol(source, MARKET, src_paths, now=NOW, params=SMALL)
    assert report.status is IngestStatus.OK
    assert report.quarantine_reasons == {
        "null, NaN or infinite value": 1,
        "price <= 0": 1,
        "high < low": 1,
        "bar not closed yet or in the future": 1,
        "negative volume": 1,
        "duplicate timestamp (later row kept)": 1,
    }
    stored = read_ohlcv(src_paths, "FAKE_AAAUSDT")
    assert len(stored) == 120 and stored["timestamp"].is_monotonic_increasing
    assert stored["timestamp"].iat[-1] == TODAY - DAY
    lines = src_paths.quarantine_file("FAKE_AAAUSDT").read_text().splitlines()
    assert len(lines) == report.quarantined
    assert all(json.loads(line)["symbol_key"] == "FAKE_AAAUSDT" for line in lines)
    # The same bad rows sent again are not recorded twice.
    src_paths.ohlcv_file("FAKE_AAAUSDT").unlink()
    ingest_symbol(source, MARKET, src_paths, now=NOW, params=SMALL)
    assert src_paths.quarantine_file("FAKE_AAAUSDT").read_text().splitlines() == lines


def test_ingest_naive_timestamps_from_source_fail_without_writing(src_paths):
    report = ingest_symbol(FakeSource(_series(), naive=True), MARKET, src_paths, now=NOW, params=SMALL)
    assert report.status is IngestStatus.FAILED
    assert "FAKE_AAAUSDT" in report.error and "timezone-aware" in report.error
    assert not src_paths.ohlcv_file("FAKE_AAAUSDT").exists()


# --- stored file problems and failing sources ---------------------------------------------------------------
def _store(src_paths, bars: pd.DataFrame) -> None:
    ingest_symbol(FakeSource(bars), MARKET, src_paths, now=NOW, params=SMALL)


@pytest.mark.parametrize("damage", ["garbage", "wrong-schema"])
def test_ingest_unreadable_stored_file_is_moved_aside_and_reingested(src_paths, damage):
    path = src_paths.ohlcv_file("FAKE_AAAUSDT")
    path.parent.mkdir(parents=True)
    if damage == "garbage":
        path.write_bytes(b"PAR1 half a file")
    else:
        pq.write_table(pa.table({"timestamp": [1, 2], "price": [1.0, 2.0]}), path)
    original = path.read_bytes()
    report = ingest_symbol(FakeSource(_series()), MARKET, src_paths, now=NOW, params=SMALL)
    assert report.status is IngestStatus.OK and report.bars_after == 120
    moved = src_paths.quarantine_dir / f"FAKE_AAAUSDT_1d.{NOW.strftime('%Y%m%dT%H%M%SZ')}.parquet"
    assert report.moved_aside == str(moved)
    assert moved.read_bytes() == original
    record = json.loads(src_paths.quarantine_file("FAKE_AAAUSDT").read_text().splitlines()[0])
    assert record["reason"].startswith("stored file unreadable") and str(moved) in record["reason"]
    assert len(read_ohlcv(src_paths, "FAKE_AAAUSDT")) == 120


def test_ingest_source_error_leaves_stored_file_identical(src_paths):
    _store(src_paths, _series())
    before = src_paths.ohlcv_file("FAKE_AAAUSDT").read_bytes()
    failing = FakeSource(_series(), error=SourceError("binance: HTTP 503 after 5 retries"))
    report = ingest_symbol(failing, MARKET, src_paths, now=NOW + DAY, params=SMALL)
    assert report.status is IngestStatus.FAILED and not report.written
    assert report.error == "FAKE_AAAUSDT: SourceError: binance: HTTP 503 after 5 retries"
    assert (report.bars_before, report.bars_after, report.requests) == (120, 120, 1)
    assert src_paths.ohlcv_file("FAKE_AAAUSDT").read_bytes() == before


def test_ingest_symbols_one_failure_does_not_stop_the_others(src_paths):
    exchange = SimulatedExchange(now=NOW, n_symbols=10)
    markets = exchange.load_markets()[:2]
    stranger = Market(symbol_key="SIM_NOPEUSDT", ccxt_symbol="NOPE/USDT", base="NOPE", quote="USDT")
    reports = ingest_symbols(exchange, [markets[0], stranger, markets[1]], src_paths, now=NOW, params=SMALL)
    assert [r.status for r in reports] == [IngestStatus.OK, IngestStatus.FAILED, IngestStatus.OK]
    assert "does not list market" in reports[1].error


def test_ingest_symbols_unsafe_key_stops_before_writing(src_paths):
    exchange = SimulatedExchange(now=NOW, n_symbols=10)
    evil = Market(symbol_key="SIM_../../ETC", ccxt_symbol="X/USDT", base="X", quote="USDT")
    with pytest.raises(UnsafeKeyError, match=r"symbol key 'SIM_\.\./\.\./ETC' is refused"):
        ingest_symbols(exchange, [exchange.load_markets()[0], evil], src_paths, now=NOW, params=SMALL)
    assert not src_paths.lakehouse_dir.exists()


# --- gap repair ---------------------------------------------------------------------------------------------
def test_ingest_repair_fills_a_gap_the_source_can_serve(src_paths):
    source = FakeSource(_series(), first_call_missing=_days(30, 29, 28))
    report = ingest_symbol(source, MARKET, src_paths, now=NOW, params=SMALL)
    assert (report.gaps_found, report.gaps_repaired, report.unrepaired, report.requests) == (1, 1, (), 2)
    assert source.calls[1] == (TODAY - 30 * DAY, TODAY - 27 * DAY)
    assert len(read_ohlcv(src_paths, "FAKE_AAAUSDT")) == 120
    assert not src_paths.repair_log_file("FAKE_AAAUSDT").exists()


def test_ingest_unrepairable_gap_is_reported_and_retried_at_most_max_attempts(src_paths):
    bars = _series(n=510, start=TODAY - 500 * DAY)
    params = IngestionParams(history_days=100, warmup_days=20, max_repair_attempts=2)
    requests = []
    for day in range(4):
        now = NOW + day * DAY
        source = FakeSource(bars, never=_days(50, 49))
        report = ingest_symbol(source, MARKET, src_paths, now=now, params=params)
        rerun = ingest_symbol(source, MARKET, src_paths, now=now + pd.Timedelta(minutes=5), params=params)
        requests.append((report.requests, rerun.requests))
        gap = report.unrepaired[0]
        assert (gap.first_missing, gap.last_missing, gap.missing_bars) == (
            (TODAY - 50 * DAY).isoformat(),
            (TODAY - 49 * DAY).isoformat(),
            2,
        )
        assert report.gaps_repaired == 0 and rerun.status is IngestStatus.UP_TO_DATE
    # day 0: first fetch + one repair try; day 1: the new bar + the second try; then only the new bar.
    assert requests == [(2, 0), (2, 0), (1, 0), (1, 0)]
    assert report.unrepaired[0].attempts == 2
    assert report.unrepaired[0].reason.startswith("unrepairable: still missing at the source after 2 attempt(s)")
    log = read_json(src_paths.repair_log_file("FAKE_AAAUSDT"))
    assert log["gaps"][0]["attempts"] == 2 and log["gaps"][0]["first_missing"] == (TODAY - 50 * DAY).isoformat()


def test_ingest_repair_bounded_by_count_depth_and_time(tmp_path):
    bars = _series(n=510, start=TODAY - 500 * DAY)
    missing = _days(90, 60, 30)

    def run(name: str, **bounds) -> object:
        paths = LakehousePaths(tmp_path / name)
        return ingest_symbol(
            FakeSource(bars, never=missing),
            MARKET,
            paths,
            now=NOW,
            params=IngestionParams(history_days=100, warmup_days=20, **bounds),
        )

    by_count = run("count", max_gaps_per_symbol=1)
    assert by_count.requests == 2 and by_count.gaps_found == 3
    assert [g.reason for g in by_count.unrepaired][:2] == ["over the limit of 1 gaps re-fetched per run"] * 2
    assert by_count.unrepaired[2].attempts == 1

    by_depth = run("depth", max_gap_repair_depth_days=45)
    assert by_depth.requests == 2
    assert [g.reason for g in by_depth.unrepaired][:2] == ["older than the repair depth of 45 days"] * 2

    by_time = run("time", repair_time_budget_s=0.0)
    assert by_time.requests == 1
    assert {g.reason for g in by_time.unrepaired} == {"repair time budget of 0.0 s spent"}
    assert not by_time.unrepaired[0].attempts


def test_ingest_never_forward_fills(src_paths):
    source = FakeSource(_series(), never=_days(10))
    ingest_symbol(source, MARKET, src_paths, now=NOW, params=SMALL)
    stored = read_ohlcv(src_paths, "FAKE_AAAUSDT")
    assert (TODAY - 10 * DAY) not in set(stored["timestamp"])
    assert len(stored) == 119


# --- files source end to end --------------------------------------------------------------------------------
def test_ingest_from_files_source_quarantines_bad_rows(tmp_path, src_paths):
    folder = tmp_path / "bars"
    folder.mkdir()
    frame = _series(n=30, start=TODAY - 30 * DAY)
    text = frame.assign(timestamp=frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(index=False)
    text += "garbageZ,1,1,1,1,1\n" + f"{(TODAY - 3 * DAY).strftime('%Y-%m-%dT%H:%M:%SZ')},1,0.5,2,1,1\n"
    (folder / "MYEX_AAAUSDT_1d.csv").write_text(text)
    source = FileSource(folder, now=NOW)
    report = ingest_symbols(source, source.load_markets(), src_paths, now=NOW, params=SMALL)[0]
    assert report.quarantine_reasons == {"missing or malformed timestamp": 1, "high < low": 1}
    assert report.bars_after == 30


# --- arguments ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"now": pd.Timestamp("2026-11-25")}, ValueError, "`now` must be timezone-aware"),
        ({"params": {"history_days": 3}}, TypeError, "`params` must be an IngestionParams, got dict"),
        ({"paths": "data"}, TypeError, "`paths` must be a LakehousePaths, got str"),
        ({"market": "FAKE_AAAUSDT"}, TypeError, "`market` must be a Market, got str"),
        (
            {"market": Market("OTHER_AAAUSDT", "AAA/USDT", "AAA", "USDT")},
            ValueError,
            "market OTHER_AAAUSDT is not of source exchange 'FAKE'",
        ),
        ({"source": object()}, TypeError, "`source` must implement MarketSource, got object"),
    ],
    ids=["naive-now", "params-dict", "paths-str", "market-str", "other-exchange", "not-a-source"],
)
def test_ingest_symbol_bad_arguments_raise(src_paths, change, error, match):
    kwargs = {
        "source": FakeSource(_series()),
        "market": MARKET,
        "paths": src_paths,
        "now": NOW,
        "params": SMALL,
    }
    kwargs.update(change)
    with pytest.raises(error, match=match):
        ingest_symbol(kwargs.pop("source"), kwargs.pop("market"), kwargs.pop("paths"), **kwargs)
