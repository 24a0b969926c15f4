"""Standard readers open every dataset of a lakehouse written by a real flow_data, idle and while a cycle writes.

The readers are the ones a quant points at the data folder. A parquet dataset directory (``symbols.parquet/``) is
read with ``pandas.read_parquet(dir)``, ``pyarrow.dataset.dataset(dir)``, ``polars.scan_parquet(f"{dir}/*.parquet")``
and DuckDB ``read_parquet('dir/*.parquet')``; the Delta tables (``features_matrix/``, ``features_provenance/``) with
each engine's Delta reader: pandas and pyarrow through ``deltalake.DeltaTable`` (on pyarrow's own local file
system), ``polars.scan_delta`` and DuckDB ``delta_scan`` (the ``delta`` extension from its wheel). The daily bars
(``lakehouse/*_1d.parquet``, files in a folder that also holds JSON folders) are read by glob.

Leaves to other modules: the contents of each dataset (test_symbols.py, test_features_store.py), concurrent
writers of the features table (test_features_store.py, test_reliability/test_concurrency.py).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from alpha_assets.lakehouse import atomic, features_store
from alpha_assets.lakehouse.duckdb_views import load_delta_extension
from alpha_assets.lakehouse.features_store import read_features, stored_features, upsert_symbol_features
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.symbols import upsert_symbol_metadata
from alpha_assets.orchestration.runner import run_flow_data
from alpha_assets_tests.test_defs.conftest import NEXT_DAY_CLOCK, FlowEnv, make_flow_env

FIRST_RUN = "RUN_READERS_1"
SECOND_RUN = "RUN_READERS_2"


def _pandas(directory: Path) -> pd.DataFrame:
    if _is_delta(directory):
        return DeltaTable(str(directory)).to_pandas(filesystem=_local(directory))
    return pd.read_parquet(directory)


def _pyarrow(directory: Path) -> pd.DataFrame:
    if _is_delta(directory):
        return DeltaTable(str(directory)).to_pyarrow_dataset(filesystem=_local(directory)).to_table().to_pandas()
    return ds.dataset(directory, format="parquet").to_table().to_pandas()


def _polars(directory: Path) -> pd.DataFrame:
    if _is_delta(directory):
        return pl.scan_delta(str(directory)).collect().to_pandas()
    return pl.scan_parquet(f"{directory}/*.parquet").collect().to_pandas()


def _duckdb(directory: Path) -> pd.DataFrame:
    with duckdb.connect() as connection:
        if _is_delta(directory):
            load_delta_extension(connection)
            return connection.execute(f"select * from delta_scan('{directory}')").df()
        return connection.execute(f"select * from read_parquet('{directory}/*.parquet')").df()


def _is_delta(directory: Path) -> bool:
    return (directory / "_delta_log").is_dir()


def _local(directory: Path) -> pafs.FileSystem:
    """pyarrow's own file system rooted at the table (deltalake's default is a Python shim over delta-rs)."""
    return pafs.SubTreeFileSystem(str(directory), pafs.LocalFileSystem())


READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "pandas (read_parquet / DeltaTable.to_pandas)": _pandas,
    "pyarrow (dataset / DeltaTable.to_pyarrow_dataset)": _pyarrow,
    "polars (scan_parquet / scan_delta)": _polars,
    "duckdb (read_parquet / delta_scan)": _duckdb,
}

#: The columns that identify a row of each dataset: each must occur once in what a reader returns.
ROW_KEYS = {
    "features_matrix": ["symbol", "date"],
    "features_provenance": ["symbol"],
    "symbols.parquet": ["symbol_key", "valid_from"],
}


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> FlowEnv:
    env = make_flow_env(tmp_path_factory.mktemp("readers"))
    run_flow_data(env.defs(), env.instance, env.paths, FIRST_RUN, progress=lambda _: None)
    yield env
    env.instance.dispose()


def _dataset_dirs(paths: LakehousePaths) -> list[Path]:
    """The parquet dataset directories and the Delta tables of ``lakehouse/``."""
    return sorted(
        p for p in paths.lakehouse_dir.iterdir() if p.is_dir() and (p.name.endswith(".parquet") or _is_delta(p))
    )


def _validated(paths: LakehousePaths, run_id: str) -> list[str]:
    return list(read_json(paths.candidates_validated_file(run_id))["symbols"])


def _expected_rows(paths: LakehousePaths) -> dict[str, int]:
    """Rows of each dataset as the project's own readers count them."""
    symbol_keys = [p.name.removesuffix("_1d.parquet") for p in paths.lakehouse_dir.glob("*_1d.parquet")]
    return {
        "features_matrix": len(read_features(paths, symbol_keys)),
        "features_provenance": len(stored_features(paths, symbol_keys)),
        "symbols.parquet": sum(pq.read_metadata(p).num_rows for p in paths.symbols_dir.glob("*.parquet")),
    }


def _assert_rows_once(frame: pd.DataFrame, directory: Path, reader: str) -> None:
    keys = ROW_KEYS[directory.name]
    repeated = frame[frame.duplicated(keys, keep=False)]
    assert repeated.empty, f"{reader} on {directory.name} saw rows twice: {repeated[keys].head().to_dict('records')}"


def test_every_dataset_directory_holds_parquet_files_only_and_the_tables_their_log(env) -> None:
    dirs = _dataset_dirs(env.paths)
    assert [d.name for d in dirs] == ["features_matrix", "features_provenance", "symbols.parquet"]
    for directory in dirs:
        strays = [p.name for p in directory.iterdir() if not p.name.endswith(".parquet") and p.name != "_delta_log"]
        assert strays == [], f"{directory.name} holds files that are not parquet: {strays}"
    assert any(env.paths.locks_dir.rglob("*.lock")), "the flow's locks live in lakehouse/_locks/"
    assert not (env.paths.locks_dir / "features_matrix").exists(), "the features table takes no lock file"


@pytest.mark.parametrize("reader", READERS)
def test_each_reader_opens_each_dataset_whole(env, reader) -> None:
    paths = env.paths
    expected = _expected_rows(paths)
    for directory in _dataset_dirs(paths):
        frame = READERS[reader](directory)
        assert len(frame) == expected[directory.name], f"{reader} on {directory.name}"
        _assert_rows_once(frame, directory, reader)


def test_readers_ignore_the_data_files_of_a_commit_that_has_not_landed(env, tmp_path, monkeypatch) -> None:
    """A writer writes its data files first and commits them last: readers run in between (and after a killed
    writer left such files) see the previous version whole, never the files' rows."""
    shutil.copytree(env.paths.root, tmp_path / "data")
    paths = LakehousePaths(tmp_path / "data")
    key = _validated(paths, FIRST_RUN)[0]
    before = _expected_rows(paths)["features_matrix"]
    # What a writer killed before its commit leaves: a complete data file the log does not name (here a copy of
    # one the log names, so a reader that took it would see its rows twice).
    committed = sorted(paths.features_table_dir.glob("*.parquet"))[0]
    shutil.copyfile(committed, paths.features_table_dir / "part-00000-uncommitted-c000.snappy.parquet")
    seen: list[str] = []
    real_write = features_store.write_deltalake

    def read_then_commit(table, data, **kwargs):
        for name, read in READERS.items():
            frame = read(paths.features_table_dir)
            _assert_rows_once(frame, paths.features_table_dir, name)
            assert len(frame) == before, name
            seen.append(name)
        real_write(table, data, **kwargs)

    monkeypatch.setattr(features_store, "write_deltalake", read_then_commit)
    features = read_features(paths, [key])
    features.iloc[-1, 2] += 1.0  # a changed row: the symbol's rows are replaced in one commit
    upsert_symbol_features(paths, key, features)
    assert seen == list(READERS) * 2, "before the features commit and before the provenance commit"
    for name, read in READERS.items():
        frame = read(paths.features_table_dir)
        _assert_rows_once(frame, paths.features_table_dir, name)
        assert len(frame) == before, name


def test_glob_readers_open_the_daily_bars(env) -> None:
    pattern = env.paths.lakehouse_dir / "*_1d.parquet"
    n_bars = sum(pq.read_metadata(p).num_rows for p in env.paths.lakehouse_dir.glob("*_1d.parquet"))
    assert n_bars > 0
    assert pl.scan_parquet(str(pattern)).select(pl.len()).collect().item() == n_bars
    with duckdb.connect() as connection:
        assert connection.execute(f"select count(*) from read_parquet('{pattern}')").fetchone()[0] == n_bars


def test_readers_see_no_temporary_file_while_a_file_is_replaced(env, tmp_path, monkeypatch) -> None:
    """Run every reader at the instant a write has its complete temporary file next to the target (files written
    by our own atomic replace; the Delta tables' commits are exercised in the next two tests)."""
    shutil.copytree(env.paths.root, tmp_path / "data")  # the flow's lakehouse stays as the flow left it
    paths = LakehousePaths(tmp_path / "data")
    key = _validated(paths, FIRST_RUN)[0]
    # A lock file where versions before lakehouse/_locks/ left it: the writer removes it.
    legacy_locks = [paths.symbol_metadata_file(key)]
    for path in legacy_locks:
        path.with_name(path.name + ".lock").touch()
    seen: list[tuple[str, str, int]] = []
    real_replace = os.replace

    def replace_after_reading(source: str, target: str) -> None:
        directory = Path(target).parent
        if directory.name in ROW_KEYS and not any(directory.glob("*.lock")):
            assert any(p.name.endswith(".tmp") for p in directory.iterdir()), "the temporary file is in place"
            for name, read in READERS.items():
                frame = read(directory)
                _assert_rows_once(frame, directory, name)
                seen.append((name, directory.name, len(frame)))
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", replace_after_reading)
    record = pq.read_table(paths.symbol_metadata_file(key)).to_pylist()[-1]
    record = {k: v for k, v in record.items() if k not in ("valid_from", "valid_to")}
    upsert_symbol_metadata(paths, key, {**record, "status": "halted"}, now=pd.Timestamp("2026-11-30", tz="UTC"))
    assert {(name, directory) for name, directory, _ in seen} == {(name, "symbols.parquet") for name in READERS}
    assert not any(path.with_name(path.name + ".lock").exists() for path in legacy_locks)


def test_readers_open_every_dataset_while_a_flow_data_cycle_writes(env) -> None:
    """Readers loop in a thread while the next day's flow_data appends bars, feature rows and symbol versions."""
    paths = env.paths
    stop = threading.Event()
    failures: list[str] = []
    reads = {name: 0 for name in READERS}

    def read_until_stopped() -> None:
        while not stop.is_set():
            for name, read in READERS.items():
                for directory in _dataset_dirs(paths):
                    try:
                        frame = read(directory)
                        _assert_rows_once(frame, directory, name)
                    except Exception as err:  # noqa: BLE001 - every failure of a reader is the finding
                        failures.append(f"{name} on {directory.name}: {type(err).__name__}: {err}")
                    reads[name] += 1

    reader = threading.Thread(target=read_until_stopped)
    before = _expected_rows(paths)
    reader.start()
    try:
        run_flow_data(env.defs(clock=NEXT_DAY_CLOCK), env.instance, paths, SECOND_RUN, progress=lambda _: None)
    finally:
        stop.set()
        reader.join(60)
    assert failures == []
    assert min(reads.values()) >= 2, f"each reader ran during the cycle: {reads}"
    after = _expected_rows(paths)
    assert after["features_matrix"] > before["features_matrix"], "the cycle appended feature rows"
    for name, read in READERS.items():
        for directory in _dataset_dirs(paths):
            assert len(read(directory)) == after[directory.name], f"{name} on {directory.name}"
