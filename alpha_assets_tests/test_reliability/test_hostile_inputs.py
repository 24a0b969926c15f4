"""Hostile inputs: a corpus of bad exchange answers, bad rows, bad files, bad keys and bad manifests.

Each case is its own test and goes through the real component that meets the input first: the ccxt source
against the local Binance-format server (HTTP faults, malformed bodies and rows, with a recording sleep), the
ingestion into a tmp lakehouse holding stored bars, the row cleaner, the audit, the files source, the path
builder, the manifest loader, and the ``alpha-assets`` command in-process (tmp ``DAGSTER_HOME``, messages read
from the captured streams). Every case asserts a message naming the input and the reason (or a quarantine
record with the reason); every case runs in a sandbox folder checked afterwards for writes outside its data
folder; cases that start from stored bars check that none of them was lost.

Leaves to other modules: kills (test_crash_safety.py), races (test_concurrency.py), secrets (test_secrets.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alpha_assets.cli import main
from alpha_assets.dataops.audit.engine import AuditParams, audit_bars
from alpha_assets.dataops.audit.records import Verdict
from alpha_assets.dataops.candidates import validate_candidates
from alpha_assets.defs.resources import MANIFEST_SECTIONS
from alpha_assets.errors import EmptyUniverseError, ManifestError, UnsafeKeyError
from alpha_assets.lakehouse.jsonio import write_json_atomic
from alpha_assets.lakehouse.ohlcv import bars_from_exchange_rows, clean_bars, read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.manifest import load_profile
from alpha_assets.sources.discovery import discover_candidates
from alpha_assets.sources.exchange import CcxtSource
from alpha_assets.sources.files import FileSource
from alpha_assets.sources.ingest import IngestStatus, ingest_symbol
from alpha_assets.sources.params import DiscoveryParams, IngestionParams
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets_tests.exchange_server import KLINES_PATH, ExchangeServer, Fault
from alpha_assets_tests.test_reliability.conftest import CLOCK, SMALL_MANIFEST, files_outside

NOW = pd.Timestamp(CLOCK)
#: Bars stored before each exchange case: the server then has 20 newer closed bars to offer.
STORED_UNTIL = NOW - pd.Timedelta(days=20)
PAIR = "BTC/USDT"
KEY = "BINANCE_BTCUSDT"
PARAMS = IngestionParams(history_days=120, warmup_days=0)


def case(case_id: str, fault: str, expected: str, *values: object) -> pytest.param:
    """One row of the corpus: the parameters, its id and its line in docs/reliability.md."""
    return pytest.param(*values, id=case_id, marks=pytest.mark.reliability(fault=fault, expected=expected))


# ------------------------------------------------------------------------------------------- fixtures
def _served_bars() -> pd.DataFrame:
    simulated = SimulatedExchange(seed=11, now=NOW, n_symbols=12)
    market = next(m for m in simulated.load_markets() if m.ccxt_symbol == PAIR)
    return simulated.fetch_daily_bars(market, since=NOW - pd.Timedelta(days=400), until=NOW.floor("D"))


@pytest.fixture(scope="module")
def server() -> Iterator[ExchangeServer]:
    with ExchangeServer({PAIR: _served_bars()}) as started:
        yield started


@pytest.fixture(scope="module")
def stored_template(tmp_path_factory, server) -> Path:
    """A data folder whose lakehouse holds BINANCE_BTCUSDT up to ``STORED_UNTIL``, fetched from the server."""
    data = tmp_path_factory.mktemp("template") / "data"
    source = _source(server, now=STORED_UNTIL)
    report = ingest_symbol(source, _market(source), LakehousePaths(data), now=STORED_UNTIL, params=PARAMS)
    assert report.status is IngestStatus.OK
    return data


@dataclass
class Sandbox:
    """A tmp folder: ``data/``, ``dagster_home/`` and ``inputs/``; the code may write nowhere else."""

    root: Path
    stored: pd.DataFrame | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def paths(self) -> LakehousePaths:
        return LakehousePaths(self.data)

    @property
    def inputs(self) -> Path:
        """Where a test puts the hostile inputs it hands to the code (manifests, source files)."""
        return self.root / "inputs"


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Iterator[Sandbox]:
    """The sandbox, with ``DAGSTER_HOME`` in it; afterwards no new path outside ``data/`` and ``dagster_home/``."""
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "inputs").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("ALPHA_ASSETS_DATA_DIR", raising=False)
    box = Sandbox(tmp_path)
    allowed = (box.data, tmp_path / "dagster_home", box.inputs)
    before = files_outside(tmp_path, allowed)
    yield box
    assert files_outside(tmp_path, allowed) - before == set(), "written outside the data folder"


@pytest.fixture
def stored(sandbox, stored_template, server) -> Iterator[Sandbox]:
    """The sandbox with stored bars (copied from the template); afterwards every stored bar is still there."""
    shutil.copytree(stored_template, sandbox.data)
    sandbox.stored = read_ohlcv(sandbox.paths, KEY)
    server.clear_faults()
    server.reset_counts()
    yield sandbox
    server.clear_faults()
    server.set_bars(PAIR, _served_bars())
    _assert_nothing_lost(sandbox)


def _assert_nothing_lost(box: Sandbox) -> None:
    """Every stored bar is still in the symbol's file, with the same values."""
    if box.stored is None or box.stored.empty:
        return
    kept = read_ohlcv(box.paths, KEY).set_index("timestamp")
    stored = box.stored.set_index("timestamp")
    assert stored.index.isin(kept.index).all(), "stored bars were lost"
    assert kept.loc[stored.index, stored.columns].equals(stored), "stored bar values changed"


def _source(server: ExchangeServer, *, now: pd.Timestamp = NOW, **options: object) -> CcxtSource:
    sleeps: list[float] = []
    source = CcxtSource(
        "binance",
        base_url=server.base_url,
        now=lambda: now,
        sleep=sleeps.append,
        rate_limit_ms=0,
        max_retries=2,
        **options,
    )
    source.sleeps = sleeps  # the waits the backoff asked for, for the assertions
    return source


def _market(source: CcxtSource):
    return next(m for m in source.load_markets() if m.symbol_key == KEY)


def _ingest(box: Sandbox, source: CcxtSource):
    return ingest_symbol(source, _market(source), box.paths, now=NOW, params=PARAMS)


def _quarantine(box: Sandbox) -> list[dict]:
    path = box.paths.quarantine_file(KEY)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# ------------------------------------------------------------------------------ exchange answers (HTTP)
@pytest.mark.parametrize(
    ("fault", "error_words"),
    [
        case(
            "klines_truncated_json",
            "malformed exchange JSON: klines body cut in half (HTTP 200)",
            "symbol FAILED with an error naming the symbol and 'not valid JSON'; stored bars untouched",
            Fault.TRUNCATED_JSON,
            "not valid JSON",
        ),
        case(
            "klines_html_body",
            "malformed exchange JSON: an HTML proxy page instead of klines (HTTP 200)",
            "symbol FAILED with an error naming the symbol and 'not valid JSON'; stored bars untouched",
            Fault.NOT_JSON,
            "not valid JSON",
        ),
        case(
            "http_429_persistent",
            "HTTP 429 on every klines request",
            "retried with exponential backoff (2 waits), then FAILED naming the symbol and DDoSProtection",
            Fault.RATE_LIMITED,
            "DDoSProtection",
        ),
        case(
            "http_500_persistent",
            "HTTP 500 on every klines request",
            "retried with backoff, then FAILED naming the symbol and the ccxt error",
            Fault.SERVER_ERROR,
            "failed after 3 tries",
        ),
        case(
            "http_502_persistent",
            "HTTP 502 on every klines request",
            "retried with backoff, then FAILED naming the symbol and the ccxt error",
            Fault.BAD_GATEWAY,
            "failed after 3 tries",
        ),
        case(
            "http_503_persistent",
            "HTTP 503 on every klines request",
            "retried with backoff, then FAILED naming the symbol and ExchangeNotAvailable",
            Fault.UNAVAILABLE,
            "ExchangeNotAvailable",
        ),
    ],
)
def test_ingest_exchange_keeps_failing_reports_the_symbol_and_keeps_stored_bars(stored, server, fault, error_words):
    server.inject(fault, times=None, path=KLINES_PATH)
    source = _source(server)
    report = _ingest(stored, source)
    assert report.status is IngestStatus.FAILED
    assert report.error.startswith(f"{KEY}: SourceError") and error_words in report.error
    assert "BTC/USDT" in report.error, "the message names the market asked for"
    assert not report.written
    if fault not in (Fault.TRUNCATED_JSON, Fault.NOT_JSON):
        assert len(source.sleeps) == 2 and source.sleeps[1] > source.sleeps[0], "exponential backoff"


@pytest.mark.parametrize(
    "fault",
    [
        case(
            "http_429_twice",
            "HTTP 429 on two klines requests, then normal answers",
            "retried after two backoff waits; the 20 new bars are stored",
            Fault.RATE_LIMITED,
        ),
        case(
            "http_503_twice",
            "HTTP 503 on two klines requests, then normal answers",
            "retried after two backoff waits; the 20 new bars are stored",
            Fault.UNAVAILABLE,
        ),
    ],
)
def test_ingest_transient_http_errors_are_retried_and_succeed(stored, server, fault):
    server.inject(fault, times=2, path=KLINES_PATH)
    source = _source(server)
    report = _ingest(stored, source)
    assert report.status is IngestStatus.OK and report.new_bars == 20
    assert len(source.sleeps) == 2


@pytest.mark.reliability(
    fault="exchange stalls past the client timeout on every klines request",
    expected="each try times out (RequestTimeout), retried, then FAILED naming the symbol; stored bars untouched",
)
def test_ingest_stalled_exchange_times_out_and_reports_the_symbol(stored, server):
    server.inject(Fault.STALL, times=None, path=KLINES_PATH, stall_s=2.0)
    source = _source(server, timeout_ms=250)
    report = _ingest(stored, source)
    assert report.status is IngestStatus.FAILED
    assert KEY in report.error and "RequestTimeout" in report.error


@pytest.mark.reliability(
    fault="exchange ignores `since` and always answers from its first bar",
    expected="the pager stops after the page that brings nothing new; no endless loop; new bars stored",
)
def test_ingest_exchange_ignoring_since_does_not_loop(stored, server):
    server.inject(Fault.IGNORE_START_TIME, times=None, path=KLINES_PATH)
    report = _ingest(stored, _source(server))
    assert report.status is IngestStatus.OK and report.new_bars == 20
    assert server.request_count(KLINES_PATH) <= 2


# -------------------------------------------------------------------------------- exchange rows
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        case(
            "row_nulls",
            "kline row with null open and close",
            "row quarantined: 'null, NaN or infinite value'; other new bars stored",
            Fault.NULL_VALUES,
            "null, NaN or infinite value",
        ),
        case(
            "row_negative_price",
            "kline row with a negative close",
            "row quarantined: 'price <= 0'",
            Fault.NEGATIVE_PRICE,
            "price <= 0",
        ),
        case(
            "row_high_below_low",
            "kline row with high < low",
            "row quarantined: 'high < low'",
            Fault.HIGH_BELOW_LOW,
            "high < low",
        ),
        case(
            "row_duplicate",
            "the same kline timestamp sent twice with different volumes",
            "later row kept, the other quarantined: 'duplicate timestamp (later row kept)'",
            Fault.DUPLICATE_ROWS,
            "duplicate timestamp (later row kept)",
        ),
    ],
)
def test_ingest_malformed_rows_are_quarantined_with_the_reason(stored, server, fault, reason):
    server.inject(fault, times=1, path=KLINES_PATH)
    report = _ingest(stored, _source(server))
    records = _quarantine(stored)
    assert [r["reason"] for r in records] == [reason]
    assert records[0]["symbol_key"] == KEY and records[0]["timestamp"] is not None
    assert report.status is IngestStatus.OK and report.quarantine_reasons == {reason: 1}
    stamps = read_ohlcv(stored.paths, KEY)["timestamp"]
    assert stamps.is_monotonic_increasing and stamps.is_unique


@pytest.mark.reliability(
    fault="klines page sent newest first (unsorted timestamps)",
    expected="sorted on the way in, nothing quarantined; stored file sorted and unique",
)
def test_ingest_unsorted_rows_are_sorted_not_lost(stored, server):
    server.inject(Fault.UNSORTED_ROWS, times=1, path=KLINES_PATH)
    report = _ingest(stored, _source(server))
    assert report.status is IngestStatus.OK and report.new_bars == 20 and report.quarantined == 0
    stamps = read_ohlcv(stored.paths, KEY)["timestamp"]
    assert stamps.is_monotonic_increasing and stamps.is_unique


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        case(
            "price_nan",
            "a NaN close from the exchange",
            "row quarantined: 'null, NaN or infinite value'",
            "close",
            np.nan,
            "null, NaN or infinite value",
        ),
        case(
            "price_inf",
            "an infinite high from the exchange",
            "row quarantined: 'null, NaN or infinite value'",
            "high",
            np.inf,
            "null, NaN or infinite value",
        ),
        case("price_zero", "a zero open from the exchange", "row quarantined: 'price <= 0'", "open", 0.0, "price <= 0"),
        case(
            "volume_negative",
            "a negative volume from the exchange",
            "row quarantined: 'negative volume'",
            "volume",
            -5.0,
            "negative volume",
        ),
    ],
)
def test_ingest_bad_values_are_quarantined_with_the_reason(stored, server, column, value, reason):
    bars = _served_bars()
    day = NOW.floor("D") - pd.Timedelta(days=5)
    bars.loc[bars["timestamp"] == day, column] = value
    server.set_bars(PAIR, bars)
    report = _ingest(stored, _source(server))
    records = _quarantine(stored)
    assert [(r["reason"], r["timestamp"]) for r in records] == [(reason, day.isoformat())]
    assert report.new_bars == 19 and day not in set(read_ohlcv(stored.paths, KEY)["timestamp"])


@pytest.mark.reliability(
    fault="rows of the wrong length and with non-numeric cells (ccxt-style rows)",
    expected="each becomes a quarantine record ('missing or malformed timestamp' / 'null, NaN or infinite value')",
)
def test_clean_bars_malformed_rows_are_quarantined():
    day = int(pd.Timestamp("2026-11-20", tz="UTC").value // 1_000_000)
    rows = [[day, 1, 2, 0.5, 1.5, 10], [day + 86_400_000, "abc", 2, 0.5, 1.5, 10], [day, 1, 2], "garbage"]
    cleaned = clean_bars(bars_from_exchange_rows(rows), symbol_key=KEY, now=NOW)
    assert sorted(r.reason for r in cleaned.quarantined) == [
        "missing or malformed timestamp",
        "missing or malformed timestamp",
        "null, NaN or infinite value",
    ]
    assert len(cleaned.bars) == 1


@pytest.mark.reliability(
    fault="timezone-naive timestamps in a batch of bars",
    expected="the batch is refused with ValueError naming the symbol and 'timezone-aware UTC'",
)
def test_clean_bars_naive_timestamps_are_refused_naming_the_symbol():
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2026-11-20", "2026-11-21"]),
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 3.0,
        }
    )
    with pytest.raises(ValueError, match=f"bars of {KEY}: `timestamp` must be timezone-aware UTC"):
        clean_bars(frame, symbol_key=KEY, now=NOW)


@pytest.mark.reliability(
    fault="bars from the future and the still-forming bar of today",
    expected="quarantined: 'bar not closed yet or in the future'",
)
def test_clean_bars_future_timestamps_are_quarantined():
    stamps = pd.to_datetime(["2026-11-24", "2026-11-25", "2027-01-01"], utc=True)
    frame = pd.DataFrame({"timestamp": stamps, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 3.0})
    cleaned = clean_bars(frame, symbol_key=KEY, now=NOW)
    assert [r.reason for r in cleaned.quarantined] == ["bar not closed yet or in the future"] * 2
    assert list(cleaned.bars["timestamp"]) == [stamps[0]]


# ---------------------------------------------------------------------------------------------- audit
def _clean_history(n: int = 200, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    stamps = pd.date_range(end=NOW.floor("D") - pd.Timedelta(days=1), periods=n, freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": stamps,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.lognormal(10, 0.3, n),
        }
    )


@pytest.mark.parametrize(
    ("column", "factor", "words"),
    [
        case(
            "volume_spike",
            "an absurd volume spike (x10,000 on one day)",
            "audit verdict TOXIC, reason names the volume z-score",
            "volume",
            1e4,
            "volume",
        ),
        case(
            "return_spike",
            "a one-day return of +800 %",
            "audit verdict TOXIC, reason names the daily return",
            "close",
            9.0,
            "daily return",
        ),
    ],
)
def test_audit_spikes_make_the_symbol_toxic_with_the_reason(column, factor, words):
    bars = _clean_history()
    bars.loc[150, column] *= factor
    if column == "close":
        bars.loc[150, ["open", "high"]] = bars.loc[150, "close"] * 1.01
    assert audit_bars(_clean_history(), symbol_key=KEY, as_of=NOW, params=AuditParams()).verdict is Verdict.OK
    verdict = audit_bars(bars, symbol_key=KEY, as_of=NOW, params=AuditParams())
    assert verdict.verdict is Verdict.TOXIC
    assert any(words in reason for reason in verdict.reasons), verdict.reasons


# ------------------------------------------------------------------------------------ lakehouse files
@pytest.mark.parametrize(
    "damage",
    [
        case(
            "truncated_parquet",
            "a truncated OHLCV parquet file in the lakehouse",
            "moved aside into lakehouse/quarantine/ (bytes kept), quarantine record 'stored file unreadable', "
            "symbol re-ingested",
            "truncate",
        ),
        case(
            "wrong_schema_parquet",
            "an OHLCV parquet file with other columns in the lakehouse",
            "moved aside, record names the missing columns, symbol re-ingested",
            "schema",
        ),
        case(
            "naive_timestamp_parquet",
            "an OHLCV parquet file with timezone-naive timestamps",
            "moved aside, record names the wrong column type, symbol re-ingested",
            "naive",
        ),
    ],
)
def test_ingest_damaged_stored_file_is_moved_aside_and_reingested(stored, server, damage):
    path = stored.paths.ohlcv_file(KEY)
    original = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(original[: len(original) // 2])
    elif damage == "schema":
        pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), path)
    else:
        frame = stored.stored.assign(timestamp=stored.stored["timestamp"].dt.tz_localize(None))
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    damaged = path.read_bytes()
    stored.stored = None  # what is stored now is the damaged file: its bytes must survive, checked below
    report = _ingest(stored, _source(server))
    assert report.status is IngestStatus.OK and report.moved_aside is not None
    moved = Path(report.moved_aside)
    assert moved.parent == stored.paths.quarantine_dir and moved.read_bytes() == damaged
    reason = _quarantine(stored)[0]["reason"]
    assert reason.startswith("stored file unreadable") and str(moved) in reason
    assert {"truncate": "not a readable parquet file", "schema": "missing columns", "naive": "wrong column types"}[
        damage
    ] in reason
    assert len(read_ohlcv(stored.paths, KEY)) == 120, "re-ingested from scratch"


# ------------------------------------------------------------------------------------ keys and paths
_KIND = {"ohlcv_file": "symbol key", "symbol_metadata_file": "symbol key", "export_dir": "RUN_ID", "run_dir": "RUN_ID"}
UNSAFE_KEYS = {
    "dotdot": "../../escape",
    "absolute": "/tmp/alpha_assets_escape",
    "nul": "SIM_BTC\x00USDT",
    "long": "SIM_" + "A" * 300,
}


@pytest.mark.parametrize(
    ("builder", "bad"),
    [
        case(
            f"{builder}_{name}",
            f"path traversal in a {_KIND[builder]} ({name}: {value[:24]!r}) given to LakehousePaths.{builder}",
            "UnsafeKeyError naming the key and the allowed pattern; no path returned",
            builder,
            value,
        )
        for builder in ("ohlcv_file", "symbol_metadata_file", "export_dir", "run_dir")
        for name, value in UNSAFE_KEYS.items()
    ],
)
def test_lakehouse_paths_unsafe_key_is_refused(sandbox, builder, bad):
    with pytest.raises(UnsafeKeyError, match="is refused: expected") as caught:
        getattr(sandbox.paths, builder)(bad)
    assert repr(bad)[:40] in str(caught.value)


@pytest.mark.parametrize(
    ("command", "bad"),
    [
        case(
            f"{command}_{name}",
            f"path traversal in `alpha-assets {command} --run-id` ({name})",
            "exit code 2, 'RUN_ID ... is refused' on stderr, no traceback, nothing written in the data folder",
            command,
            value,
        )
        for command in ("flow-data", "flow-production")
        for name, value in {**UNSAFE_KEYS, "long": "R" * 65}.items()
    ],
)
def test_cli_unsafe_run_id_is_refused_before_anything_is_written(sandbox, capsys, command, bad):
    code = main([command, "--run-id", bad, "--data-dir", str(sandbox.data)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"alpha-assets: error: RUN_ID {bad!r} is refused") and "Traceback" not in err
    assert not sandbox.data.exists()
    assert not Path("/tmp/alpha_assets_escape").exists()


def _validated_document(run_id: str, symbols: list[str]) -> dict:
    return {
        "run_id": run_id,
        "as_of": CLOCK,
        "exchange": "SIM",
        "symbols": symbols,
        "candidates": [{"symbol_key": s} for s in symbols],
        "rejected": {},
    }


@pytest.mark.reliability(
    fault="candidates_validated.json naming a path-traversal symbol key ('../../escape')",
    expected="flow-production exits 2 with the key and 'is refused' on stderr; nothing written outside data",
)
def test_cli_flow_production_candidates_with_unsafe_key_is_refused(sandbox, capsys):
    write_json_atomic(
        _validated_document("HOSTILE", ["../../escape"]), sandbox.paths.candidates_validated_file("HOSTILE")
    )
    code = main(["flow-production", "--run-id", "HOSTILE", "--data-dir", str(sandbox.data)])
    err = capsys.readouterr().err
    assert code == 2 and "'../../escape' is refused" in err


@pytest.mark.reliability(
    fault="candidates_validated.json naming symbols that the lakehouse does not have",
    expected="flow-production exits 2, stderr names the unknown symbols' files; no weights written",
)
def test_cli_flow_production_candidates_with_unknown_symbols_fails_naming_them(sandbox, capsys):
    write_json_atomic(
        _validated_document("UNKNOWN", ["SIM_NOPEUSDT", "SIM_NADAUSDT"]),
        sandbox.paths.candidates_validated_file("UNKNOWN"),
    )
    code = main(["flow-production", "--run-id", "UNKNOWN", "--data-dir", str(sandbox.data)])
    err = capsys.readouterr().err
    assert code == 2 and "SIM_NOPEUSDT" in err and "does not exist" in err
    assert not sandbox.paths.run_data_file("UNKNOWN", "portfolio_flattened.json").exists()


# --------------------------------------------------------------------------------------- files source
@pytest.mark.reliability(
    fault="files-source folder with hostile file names (traversal-like, lower case, over-long, wrong suffix)",
    expected="each is skipped with a reason naming the file; only the well-named file becomes a market",
)
def test_files_source_hostile_names_are_skipped_with_reasons(sandbox):
    folder = sandbox.inputs
    good = "timestamp,open,high,low,close,volume\n2026-11-20T00:00:00Z,1,2,0.5,1.5,10\n"
    names = [
        "BINANCE_BTCUSDT_1d.csv",
        "BINANCE_..__1d.csv",
        "binance_ethusdt_1d.csv",
        "BINANCE_" + "X" * 120 + "_1d.csv",
        "BINANCE_SOLUSDT_1d.txt",
    ]
    for name in names:
        (folder / name).write_text(good)
    source = FileSource(folder, now=NOW)
    assert [m.symbol_key for m in source.load_markets()] == ["BINANCE_BTCUSDT"]
    assert sorted(s.name for s in source.skipped) == sorted(names[1:])
    assert all(s.reason for s in source.skipped)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        case(
            "csv_missing_column",
            "files-source CSV without a `volume` column",
            "symbol FAILED, error names the file and the missing column",
            b"timestamp,open,high,low,close\n2026-11-20T00:00:00Z,1,2,0.5,1.5\n",
            "volume",
        ),
        case(
            "csv_naive_timestamps",
            "files-source CSV with timezone-naive timestamps",
            "symbol FAILED, error names the file and the missing time zone",
            b"timestamp,open,high,low,close,volume\n2026-11-20 00:00:00,1,2,0.5,1.5,10\n",
            "zone",
        ),
        case(
            "parquet_garbage",
            "files-source .parquet file that is not parquet",
            "symbol FAILED, error names the file",
            b"this is not parquet",
            "BINANCE_BTCUSDT_1d",
        ),
        case(
            "csv_empty",
            "files-source CSV that is empty",
            "symbol FAILED, error names the file",
            b"",
            "BINANCE_BTCUSDT_1d",
        ),
    ],
)
def test_files_source_bad_file_fails_the_symbol_naming_the_file(stored, content, words):
    folder = stored.inputs
    suffix = "parquet" if content.startswith(b"this") else "csv"
    (folder / f"{KEY}_1d.{suffix}").write_bytes(content)
    source = FileSource(folder, now=NOW)
    market = next(m for m in source.load_markets() if m.symbol_key == KEY)
    report = ingest_symbol(source, market, stored.paths, now=NOW, params=PARAMS)
    assert report.status is IngestStatus.FAILED
    assert report.error.startswith(f"{KEY}: SourceError") and words in report.error, report.error


@pytest.mark.reliability(
    fault="files-source CSV with text in a price column and a malformed timestamp",
    expected="those rows quarantined with their reasons, the good rows stored",
)
def test_files_source_bad_cells_are_quarantined(sandbox):
    folder = sandbox.inputs
    (folder / f"{KEY}_1d.csv").write_text(
        "timestamp,open,high,low,close,volume\n2026-11-20T00:00:00Z,1,2,0.5,1.5,10\n"
        "2026-11-21T00:00:00Z,abc,2,0.5,1.5,10\nnot-a-date,1,2,0.5,1.5,10\n"
    )
    source = FileSource(folder, now=NOW)
    market = next(m for m in source.load_markets() if m.symbol_key == KEY)
    report = ingest_symbol(source, market, sandbox.paths, now=NOW, params=PARAMS)
    assert report.quarantine_reasons == {"null, NaN or infinite value": 1, "missing or malformed timestamp": 1}
    assert len(read_ohlcv(sandbox.paths, KEY)) == 1


# ------------------------------------------------------------------------------------------ manifests
MANIFEST_CASES = [
    ("wrong_type", {"discovery": {"top_n": "12"}}, "manifest key 'discovery.top_n' must be an integer, got '12'"),
    ("unknown_key", {"discovery": {"topn": 12}}, "manifest key 'discovery.topn' is unknown; allowed keys"),
    ("out_of_range_low", {"discovery": {"top_n": 0}}, "manifest key 'discovery.top_n' must be >= 1, got 0"),
    (
        "out_of_range_negative",
        {"discovery": {"min_traded_value_24h": -1}},
        "manifest key 'discovery.min_traded_value_24h' must be >= 0.0",
    ),
    ("unknown_section", {"discovry": {}}, "unknown section 'discovry'"),
    ("bool_for_int", {"ingestion": {"history_days": True}}, "'ingestion.history_days' must be an integer, got True"),
]


def _manifest(box: Sandbox, profile_body: dict) -> Path:
    document = json.loads(json.dumps(SMALL_MANIFEST))
    document["profiles"]["reliability"].update(profile_body)
    path = box.inputs / "manifest.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        case(
            f"load_profile_{name}",
            f"manifest with {name.replace('_', ' ')}: {json.dumps(body)}",
            "ManifestError naming the key, the expectation and what came",
            body,
            message,
        )
        for name, body, message in MANIFEST_CASES
    ],
)
def test_load_profile_bad_manifest_names_the_key(sandbox, body, message):
    sections = {"discovery": DiscoveryParams, "ingestion": IngestionParams}
    with pytest.raises(ManifestError) as caught:
        load_profile(_manifest(sandbox, body), "reliability", sections=sections, known=MANIFEST_SECTIONS)
    assert message in str(caught.value)


@pytest.mark.reliability(
    fault="unknown manifest profile given to load_profile",
    expected="ManifestError listing the allowed profiles",
)
def test_load_profile_unknown_profile_lists_the_allowed_ones(sandbox):
    with pytest.raises(ManifestError, match=r"unknown profile 'nope'; allowed profiles: \['reliability'\]"):
        load_profile(_manifest(sandbox, {}), "nope", sections={}, known=MANIFEST_SECTIONS)


@pytest.mark.reliability(fault="manifest file that is not JSON", expected="ManifestError naming the file")
def test_load_profile_not_json_names_the_file(sandbox):
    path = sandbox.inputs / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match=f"manifest {path} is not valid JSON"):
        load_profile(path, None, sections={})


@pytest.mark.parametrize(
    ("profile", "body", "message"),
    [
        case(
            "cli_unknown_profile",
            "`alpha-assets flow-data --profile nope`",
            "exit code 2, stderr names the profile and the allowed ones; no traceback",
            "nope",
            {},
            "unknown profile 'nope'",
        ),
        case(
            "cli_wrong_type",
            '`alpha-assets flow-data` with a manifest holding top_n: "12"',
            "exit code 2, stderr names the key and the type; no traceback",
            "reliability",
            {"discovery": {"top_n": "12"}},
            "'discovery.top_n' must be an integer",
        ),
        case(
            "cli_out_of_range",
            "`alpha-assets flow-data` with a manifest holding history_days: -5",
            "exit code 2, stderr names the key and the bound; no traceback",
            "reliability",
            {"ingestion": {"history_days": -5}},
            "'ingestion.history_days' must be >=",
        ),
    ],
)
def test_cli_bad_manifest_exits_with_a_message(sandbox, capfd, profile, body, message):
    code = main(
        [
            "flow-data",
            "--clock",
            CLOCK,
            "--run-id",
            "BAD_MANIFEST",
            "--data-dir",
            str(sandbox.data),
            "--manifest",
            str(_manifest(sandbox, body)),
            "--profile",
            profile,
        ]
    )
    err = capfd.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("alpha-assets: error:") and message in last, last


# ------------------------------------------------------------------------------------ empty universe
@pytest.mark.reliability(
    fault="discovery filters everything out (minimum traded value above every market)",
    expected="EmptyUniverseError saying how many markets were dropped by which filter",
)
def test_discover_candidates_empty_universe_says_why():
    simulated = SimulatedExchange(seed=7, now=NOW, n_symbols=12)
    with pytest.raises(EmptyUniverseError, match=r"discovery kept no candidate out of \d+ markets \(.*traded"):
        discover_candidates(
            simulated.load_markets(), simulated.fetch_tickers(), DiscoveryParams(min_traded_value_24h=1e30)
        )


@pytest.mark.reliability(
    fault="`alpha-assets flow-data` whose discovery keeps no candidate",
    expected="exit code 2, the EmptyUniverseError message on the last stderr line; no candidate file",
)
def test_cli_flow_data_empty_universe_exits_with_the_reason(sandbox, capfd):
    manifest = _manifest(sandbox, {"discovery": {"min_traded_value_24h": 1e30}})
    code = main(
        [
            "flow-data",
            "--clock",
            CLOCK,
            "--run-id",
            "EMPTY",
            "--data-dir",
            str(sandbox.data),
            "--manifest",
            str(manifest),
        ]
    )
    last = capfd.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "discovery kept no candidate" in last, last
    assert not sandbox.paths.candidates_file("EMPTY").exists()


@pytest.mark.reliability(
    fault="every candidate rejected by the audit",
    expected="EmptyUniverseError with the count of each verdict",
)
def test_validate_candidates_all_rejected_counts_the_verdicts():
    candidates = {
        "run_id": "R",
        "as_of": CLOCK,
        "candidates": [{"symbol_key": "SIM_AUSDT"}, {"symbol_key": "SIM_BUSDT"}],
    }
    verdicts = [
        {"symbol_key": "SIM_AUSDT", "verdict": "TOXIC", "reasons": ["x"]},
        {"symbol_key": "SIM_BUSDT", "verdict": "STALE", "reasons": ["y"]},
    ]
    expected = r"none of 2 candidates passed the audit \(\{'TOXIC': 1, 'STALE': 1\}\)"
    with pytest.raises(EmptyUniverseError, match=expected):
        validate_candidates(candidates, verdicts)
