"""Concurrency: writers racing over the same symbols while readers read, and two flow_data sharing an instance.

Three processes start together on one lakehouse: two feature backfills over overlapping symbol sets (several
rounds each) and an ingestion that walks the clock forward day by day (rewriting every OHLCV file each day),
while this process keeps reading the lakehouse with DuckDB (``read_parquet`` over the globs) and pyarrow. Then
two ``alpha-assets flow-data`` commands run at once on one ``DAGSTER_HOME`` (sqlite) and one data folder.

Every test runs once per data-directory backend: ``[local]`` (a folder: ``flock`` and atomic renames) and ``[s3]``
(a bucket on the tests' moto server: lease objects written with conditional puts, one PUT per file, Delta commits
as conditional puts). The plain pyarrow path reads of the figures are ranged reads of the object on ``[s3]``;
DuckDB's are too, and DuckDB fails a query whose object was replaced between two of them, so its queries go
through ``duckdb_views.fetch_all``, which runs such a query again (as the views' refresh does).

Leaves to other modules: kills (test_crash_safety.py), bad inputs (test_hostile_inputs.py).
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from alpha_assets.errors import LakehouseReadError
from alpha_assets.features.backfill import backfill_features
from alpha_assets.lakehouse.duckdb_views import fetch_all, load_delta_extension, load_s3_access
from alpha_assets.lakehouse.features_store import read_features
from alpha_assets.lakehouse.hashing import file_sha256
from alpha_assets.lakehouse.parquet import read_table
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.storage import DataPath, is_object_store
from alpha_assets.sources.ingest import IngestStatus, ingest_symbols
from alpha_assets.sources.params import IngestionParams
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets_tests.test_reliability.conftest import CLOCK, flow_data_command

SEED = 7
N_SYMBOLS = 12
PARAMS = IngestionParams(history_days=300, warmup_days=100)
START = pd.Timestamp(CLOCK)
#: The ingestion's clocks: one day later each round, so every round appends a bar to every file.
DAYS_AHEAD = 6
BACKFILL_ROUNDS = 4


def _markets(now: pd.Timestamp, keys: list[str]) -> tuple[SimulatedExchange, list]:
    source = SimulatedExchange(seed=SEED, now=now, n_symbols=N_SYMBOLS)
    return source, [m for m in source.load_markets() if m.symbol_key in keys]


def _ingest_days(data_dir: str, keys: list[str], days: list[int]) -> list[str]:
    """Ingest ``keys`` at ``START + day`` for each day in turn; the statuses seen (a process of its own)."""
    statuses = []
    for day in days:
        now = START + pd.Timedelta(days=day)
        source, markets = _markets(now, keys)
        reports = ingest_symbols(source, markets, LakehousePaths(data_dir), now=now, params=PARAMS)
        statuses += [f"{r.symbol_key}: {r.status.value} {r.error or ''}".strip() for r in reports]
    return statuses


def _backfill_rounds(data_dir: str, keys: list[str], rounds: int) -> list[str]:
    """Backfill ``keys`` ``rounds`` times in a row; the failures seen (a process of its own)."""
    failures = []
    for _ in range(rounds):
        report = backfill_features(LakehousePaths(data_dir), keys, workers=1)
        failures += [f"{s.symbol_key}: {s.error}" for s in report.failed]
    return failures


def _duckdb_reading(lakehouse: DataPath) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reads ``lakehouse``'s parquet files and Delta tables, local or in a bucket."""
    connection = duckdb.connect()
    load_delta_extension(connection)
    if is_object_store(lakehouse):
        load_s3_access(connection)
    return connection


def _read_by_path(path: DataPath) -> None:
    """A plain pyarrow read given the file's path (footer and pages read separately), local or through s3fs."""
    if is_object_store(path):
        pq.read_table(path.path, filesystem=path.fs)
    else:
        pq.read_table(path)


def _reader(lakehouse: DataPath, stop: threading.Event, outcome: dict) -> None:
    """Read every file and both globs until ``stop``; count reads, keep every error (none ends the loop)."""
    connection = _duckdb_reading(lakehouse)
    sources = [
        f"read_parquet('{lakehouse.as_posix()}/*_1d.parquet', filename = true)",
        f"delta_scan('{lakehouse.as_posix()}/features_matrix')",
    ]
    while not stop.is_set():
        for source in sources:
            try:
                if list(lakehouse.glob("*_1d.parquet")) and (lakehouse / "features_matrix" / "_delta_log").is_dir():
                    # fetch_all re-runs a query whose object a writer replaced between DuckDB's ranged reads.
                    fetch_all(connection, f"select count(*) from {source}")
                    outcome["duckdb_reads"] += 1
            except Exception as err:  # noqa: BLE001 - every failure is counted; none may end the thread
                outcome["errors"].append(f"duckdb {source}: {type(err).__name__}: {str(err)[:300]}")
        try:
            if (lakehouse / "features_matrix" / "_delta_log").is_dir():
                read_features(LakehousePaths(lakehouse.parent), ["SIM_NONE"])
                outcome["pyarrow_reads"] += 1
        except Exception as err:  # noqa: BLE001 - as above
            outcome["errors"].append(f"read_features: {type(err).__name__}: {err}")
        for path in lakehouse.glob("*_1d.parquet"):
            try:
                read_table(path)
                outcome["pyarrow_reads"] += 1
            except LakehouseReadError as err:
                if "does not exist" not in err.reason:  # listed, then replaced by a rename
                    outcome["errors"].append(f"read_table {path.name}: {err.reason}")
            except Exception as err:  # noqa: BLE001 - as above
                outcome["errors"].append(f"read_table {path.name}: {type(err).__name__}: {err}")
            try:
                _read_by_path(path)
            except FileNotFoundError:
                pass
            except Exception as err:  # noqa: BLE001 - counted, see test_concurrent_readers_never_see_a_half_written_file
                outcome["path_reader_errors"].append(f"{path.name}: {err}")
    outcome["reader_stopped_when_told"] = True


@pytest.fixture(scope="module")
def race(data_backend):
    """Seed a lakehouse, race two backfills and an ingestion against readers; return what happened."""
    data, reference = LakehousePaths(data_backend.fresh("race")).root, data_backend.fresh("reference")
    keys = [m.symbol_key for m in SimulatedExchange(seed=SEED, now=START, n_symbols=N_SYMBOLS).load_markets()][:8]
    _ingest_days(str(data), keys, [0])
    outcome = {
        "duckdb_reads": 0,
        "pyarrow_reads": 0,
        "errors": [],
        "path_reader_errors": [],
        "reader_stopped_when_told": False,
    }
    stop = threading.Event()
    reader = threading.Thread(target=_reader, args=(data / "lakehouse", stop, outcome), daemon=True)
    reader.start()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=3, mp_context=context) as pool:
        first = pool.submit(_backfill_rounds, str(data), keys[:6], BACKFILL_ROUNDS)
        second = pool.submit(_backfill_rounds, str(data), keys[2:], BACKFILL_ROUNDS)
        ingestion = pool.submit(_ingest_days, str(data), keys, list(range(1, DAYS_AHEAD + 1)))
        results = {"first": first.result(), "second": second.result(), "ingestion": ingestion.result()}
    stop.set()
    reader.join(timeout=30)
    final = backfill_features(LakehousePaths(data), keys, workers=1)
    # The same ingestion without any race (the planted defects are anchored on the clock: same days).
    _ingest_days(reference, keys, list(range(DAYS_AHEAD + 1)))
    return {
        "paths": LakehousePaths(data),
        "reference": LakehousePaths(reference),
        "keys": keys,
        "results": results,
        "outcome": outcome,
        "final": final,
    }


@pytest.mark.reliability(
    fault="two feature backfills over overlapping symbols and an ingestion of the same symbols, in three "
    "processes at once",
    expected="no writer fails; every OHLCV file ends byte-identical to the same ingestion run alone (no lost or "
    "duplicated bar)",
)
def test_concurrent_writers_lose_and_duplicate_no_bar(race, reliability_figures):
    results, paths, reference = race["results"], race["paths"], race["reference"]
    assert results["first"] == [] and results["second"] == []
    assert all(": ok" in s or ": up_to_date" in s for s in results["ingestion"]), results["ingestion"]
    assert IngestStatus.OK.value in " ".join(results["ingestion"])
    for key in race["keys"]:
        assert file_sha256(paths.ohlcv_file(key)) == file_sha256(reference.ohlcv_file(key)), key
    outcome = race["outcome"]
    reliability_figures(
        "Concurrency (writers racing readers)",
        [
            f"2 feature backfills x {BACKFILL_ROUNDS} rounds (symbols 1-6 and 3-8) and an ingestion of 8 symbols "
            f"over {DAYS_AHEAD} days, in 3 processes at once.",
            f"Reads during the race: {outcome['duckdb_reads']} DuckDB glob scans and {outcome['pyarrow_reads']} reads "
            f"through `lakehouse.parquet.read_table`: {len(outcome['errors'])} errors.",
            f"The same files read with a plain `pyarrow.parquet.read_table(path)`: "
            f"{len(outcome['path_reader_errors'])} transient errors ('Unexpected end of stream'): "
            "given a path, pyarrow opens the file once for the footer and again for the pages, "
            "and a rename in between pairs the old footer with the new pages. Writes are atomic; "
            "readers outside the project should read the bytes once (as `read_table` does) or use DuckDB.",
        ],
    )


@pytest.mark.reliability(
    fault="DuckDB `read_parquet` over the lakehouse globs and pyarrow reads (lakehouse.parquet.read_table) while "
    "the writers replace files",
    expected="no reader ever sees a half-written file: zero read errors (plain pyarrow path reads: see figures)",
)
def test_concurrent_readers_never_see_a_half_written_file(race):
    outcome = race["outcome"]
    assert outcome["reader_stopped_when_told"], outcome
    assert outcome["errors"] == []
    assert outcome["duckdb_reads"] >= 4 and outcome["pyarrow_reads"] >= 16, outcome


@pytest.mark.reliability(
    fault="feature store after racing backfills and an ingestion, then one final backfill",
    expected="exactly one feature row per (symbol, date) and one per stored OHLCV bar",
)
def test_features_after_the_race_cover_every_bar_once(race):
    assert race["final"].failed == ()
    lakehouse = race["paths"].lakehouse_dir.as_posix()
    features = f"delta_scan('{race['paths'].features_table_uri}')"
    connection = _duckdb_reading(race["paths"].lakehouse_dir)
    duplicated = connection.sql(
        f"select symbol, date, count(*) from {features} group by symbol, date having count(*) > 1"
    ).fetchall()
    assert duplicated == []
    uncovered = connection.sql(
        f"select o.filename, count(*) from read_parquet('{lakehouse}/*_1d.parquet', filename = true) o "
        f"anti join {features} f "
        "on f.date = o.timestamp and o.filename like '%/' || f.symbol || '_1d.parquet' group by 1"
    ).fetchall()
    assert uncovered == []
    extra = connection.sql(
        f"select count(*) from {features} f anti join "
        f"read_parquet('{lakehouse}/*_1d.parquet', filename = true) o "
        "on f.date = o.timestamp and o.filename like '%/' || f.symbol || '_1d.parquet'"
    ).fetchall()[0][0]
    assert extra == 0


def _flow_data(data_dir: str, home: Path, manifest: Path, run_id: str) -> subprocess.Popen:
    command = flow_data_command(data_dir, manifest, run_id)
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DAGSTER_HOME": str(home)},
    )


@pytest.mark.reliability(
    fault="two `alpha-assets flow-data` at once on one DAGSTER_HOME (sqlite) and one data directory, different "
    "RUN_IDs (on a fresh bucket too: both find no features table)",
    expected="both exit 0 with their summaries; no 'database is locked' anywhere in their output; each feature row "
    "stored once; in a bucket, every lease object released",
)
def test_two_flow_data_sharing_an_instance_both_succeed(tmp_path, small_manifest, data_dir):
    home = tmp_path / "dagster_home"
    home.mkdir()
    runs = {run_id: _flow_data(data_dir, home, small_manifest, run_id) for run_id in ("TWIN_A", "TWIN_B")}
    outputs = {run_id: process.communicate(timeout=600) for run_id, process in runs.items()}
    for run_id, (out, err) in outputs.items():
        assert "database is locked" not in (out + err).lower(), f"{run_id}: {err[-2000:]}"
        assert runs[run_id].returncode == 0, f"{run_id}: {err[-2000:]}"
        assert f"RUN_ID {run_id}" in out
    paths = LakehousePaths(data_dir)
    for run_id in runs:
        assert paths.candidates_validated_file(run_id).exists()
    bars = sorted(p.name.removesuffix("_1d.parquet") for p in paths.lakehouse_dir.glob("*_1d.parquet"))
    assert len(bars) == 12
    rows = read_features(paths, bars)
    assert not rows.empty
    assert not rows.duplicated(subset=["symbol", "date"]).any(), "no feature row stored twice"
    if paths.in_object_store:
        assert list((paths.lakehouse_dir / "_locks").rglob("*")) == [], "every lease was released"
