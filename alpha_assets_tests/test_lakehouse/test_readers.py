"""Standard readers open every dataset of a lakehouse written by a real flow_data, idle and while a cycle writes.

The readers are the ones a quant points at the data folder: ``pandas.read_parquet(dir)``,
``pyarrow.dataset.dataset(dir)``, ``polars.scan_parquet(f"{dir}/*.parquet")`` and DuckDB
``read_parquet('dir/*.parquet')``. A dataset directory is any ``*.parquet`` directory of ``lakehouse/``; the
daily bars (``lakehouse/*_1d.parquet``, files in a folder that also holds JSON folders) are read by glob.

Leaves to other modules: the contents of each dataset (test_symbols.py, test_features_store.py), the project's
own readers under a writer's lock (test_features_store.py).
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
import pyarrow.parquet as pq
import pytest

from alpha_assets.lakehouse import atomic
from alpha_assets.lakehouse.features_store import read_features, upsert_symbol_features
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.symbols import upsert_symbol_metadata
from alpha_assets.orchestration.runner import run_flow_data
from alpha_assets_tests.test_defs.conftest import NEXT_DAY_CLOCK, FlowEnv, make_flow_env

FIRST_RUN = "RUN_READERS_1"
SECOND_RUN = "RUN_READERS_2"


def _pandas(directory: Path) -> pd.DataFrame:
    return pd.read_parquet(directory)


def _pyarrow(directory: Path) -> pd.DataFrame:
    return ds.dataset(directory, format="parquet").to_table().to_pandas()


def _polars(directory: Path) -> pd.DataFrame:
    return pl.scan_parquet(f"{directory}/*.parquet").collect().to_pandas()


def _duckdb(directory: Path) -> pd.DataFrame:
    with duckdb.connect() as connection:
        return connection.execute(f"select * from read_parquet('{directory}/*.parquet')").df()


READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    "pandas.read_parquet(dir)": _pandas,
    "pyarrow.dataset.dataset(dir)": _pyarrow,
    "polars.scan_parquet(dir/*.parquet)": _polars,
    "duckdb read_parquet('dir/*.parquet')": _duckdb,
}

#: The columns that identify a row of each dataset: each must occur once in what a reader returns.
ROW_KEYS = {
    "features_matrix.parquet": ["symbol", "date"],
    "symbols.parquet": ["symbol_key", "valid_from"],
}


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> FlowEnv:
    env = make_flow_env(tmp_path_factory.mktemp("readers"))
    run_flow_data(env.defs(), env.instance, env.paths, FIRST_RUN, progress=lambda _: None)
    yield env
    env.instance.dispose()


def _dataset_dirs(paths: LakehousePaths) -> list[Path]:
    return sorted(p for p in paths.lakehouse_dir.iterdir() if p.is_dir() and p.name.endswith(".parquet"))


def _validated(paths: LakehousePaths, run_id: str) -> list[str]:
    return list(read_json(paths.candidates_validated_file(run_id))["symbols"])


def _expected_rows(paths: LakehousePaths) -> dict[str, int]:
    """Rows of each dataset as the project's own readers count them."""
    feature_keys = sorted({p.name.split(".")[0] for p in paths.features_dir.glob("*.parquet")})
    return {
        "features_matrix.parquet": len(read_features(paths, feature_keys)),
        "symbols.parquet": sum(pq.read_metadata(p).num_rows for p in paths.symbols_dir.glob("*.parquet")),
    }


def _assert_rows_once(frame: pd.DataFrame, directory: Path, reader: str) -> None:
    keys = ROW_KEYS[directory.name]
    repeated = frame[frame.duplicated(keys, keep=False)]
    assert repeated.empty, f"{reader} on {directory.name} saw rows twice: {repeated[keys].head().to_dict('records')}"


def test_every_dataset_directory_holds_parquet_files_only(env) -> None:
    dirs = _dataset_dirs(env.paths)
    assert [d.name for d in dirs] == ["features_matrix.parquet", "symbols.parquet"]
    for directory in dirs:
        strays = [p.name for p in directory.iterdir() if not p.name.endswith(".parquet")]
        assert strays == [], f"{directory.name} holds files that are not parquet: {strays}"
    assert any(env.paths.locks_dir.rglob("*.lock")), "the flow's locks live in lakehouse/_locks/"


@pytest.mark.parametrize("reader", READERS)
def test_each_reader_opens_each_dataset_whole(env, reader) -> None:
    paths = env.paths
    expected = _expected_rows(paths)
    for directory in _dataset_dirs(paths):
        frame = READERS[reader](directory)
        assert len(frame) == expected[directory.name], f"{reader} on {directory.name}"
        _assert_rows_once(frame, directory, reader)


def test_glob_readers_open_the_daily_bars(env) -> None:
    pattern = env.paths.lakehouse_dir / "*_1d.parquet"
    n_bars = sum(pq.read_metadata(p).num_rows for p in env.paths.lakehouse_dir.glob("*_1d.parquet"))
    assert n_bars > 0
    assert pl.scan_parquet(str(pattern)).select(pl.len()).collect().item() == n_bars
    with duckdb.connect() as connection:
        assert connection.execute(f"select count(*) from read_parquet('{pattern}')").fetchone()[0] == n_bars


def test_readers_see_no_temporary_file_while_a_file_is_replaced(env, tmp_path, monkeypatch) -> None:
    """Run every reader at the instant a write has its complete temporary file next to the target."""
    shutil.copytree(env.paths.root, tmp_path / "data")  # the flow's lakehouse stays as the flow left it
    paths = LakehousePaths(tmp_path / "data")
    key = _validated(paths, FIRST_RUN)[0]
    # Lock files where versions before lakehouse/_locks/ left them: the writers remove them.
    legacy_locks = [paths.symbol_metadata_file(key), paths.features_file(key)]
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
    features = read_features(paths, [key])
    features.iloc[-1, 2] += 1.0  # a changed row: the base file is rewritten
    upsert_symbol_features(paths, key, features)
    assert {(name, directory) for name, directory, _ in seen} == {
        (name, directory) for name in READERS for directory in ROW_KEYS
    }
    assert not any(path.with_name(path.name + ".lock").exists() for path in legacy_locks)


def test_readers_open_every_dataset_while_a_flow_data_cycle_writes(env) -> None:
    """Readers loop in a thread while the next day's flow_data appends bars, deltas and symbol versions."""
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
    assert after["features_matrix.parquet"] > before["features_matrix.parquet"], "the cycle appended feature rows"
    assert any(paths.features_dir.glob("*.1.parquet")), "the cycle wrote delta files"
    for name, read in READERS.items():
        for directory in _dataset_dirs(paths):
            assert len(read(directory)) == after[directory.name], f"{name} on {directory.name}"
