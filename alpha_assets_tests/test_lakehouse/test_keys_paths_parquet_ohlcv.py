"""The lakehouse file contract: keys, paths, atomic parquet/JSON I/O and OHLCV cleaning, merging and gaps.

Exercises alpha_assets.lakehouse.keys, .paths, .parquet and .ohlcv on real files under tmp_path: unsafe keys
and RUN_IDs refused before any path exists, atomic writes that leave the old file and no temporary file
when they fail, schema-checked reads naming the file, every quarantine reason of clean_bars, merges that
never lose stored rows, and gap ranges. Leaves the sources that feed these functions to test_sources.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alpha_assets.errors import DiskFullError, LakehouseReadError, UnsafeKeyError
from alpha_assets.lakehouse import atomic
from alpha_assets.lakehouse.atomic import directory_syncs_batched, write_bytes_atomic
from alpha_assets.lakehouse.hashing import file_sha256
from alpha_assets.lakehouse.jsonio import encode_json, read_json, write_json_atomic
from alpha_assets.lakehouse.keys import (
    make_symbol_key,
    new_run_id,
    normalize_exchange_id,
    split_symbol_key,
    validate_run_id,
    validate_symbol_key,
)
from alpha_assets.lakehouse.locks import exclusive_lock
from alpha_assets.lakehouse.ohlcv import (
    BarArrays,
    Gap,
    bars_from_exchange_rows,
    clean_bars,
    empty_bars,
    find_gaps,
    merge_bar_arrays,
    read_ohlcv,
    wide_closes,
    write_ohlcv,
)
from alpha_assets.lakehouse.parquet import read_table, read_table_and_sha256, write_table_atomic
from alpha_assets.lakehouse.paths import DATA_DIR_ENV, LakehousePaths, resolve_data_dir
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA

KEY = "BINANCE_BTCUSDT"
NOW = pd.Timestamp("2024-07-01T06:00", tz="UTC")

UNSAFE_KEYS = [
    "../x",
    "/etc/passwd",
    "BINANCE_BTC/USDT",
    "BINANCE_BTC\x00USDT",
    "B" * 100 + "_" + "C" * 99,
    "binance_btcusdt",
    "",
    "BINANCE_BTCUSDT\n",
    "BINANCE",
    "_BTCUSDT",
    "BINANCE_BTC.USDT",
    None,
    42,
]
UNSAFE_KEY_IDS = [
    "parent",
    "absolute",
    "slash",
    "nul",
    "200-chars",
    "lowercase",
    "empty",
    "newline",
    "no-symbol",
    "no-exchange",
    "dot",
    "none",
    "int",
]


def _bars(seed: int, n_bars: int = 30, last_day: str = "2024-06-30") -> pd.DataFrame:
    """Closed daily bars of a seeded geometric random walk, UTC midnight timestamps."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n_bars)))
    open_ = np.concatenate(([100.0], close[:-1]))
    timestamps = pd.date_range(end=last_day, periods=n_bars, freq="D", tz="UTC")
    return pd.DataFrame(
        {
            "timestamp": timestamps.astype("datetime64[ms, UTC]"),
            "open": open_,
            "high": np.maximum(open_, close) * 1.01,
            "low": np.minimum(open_, close) * 0.99,
            "close": close,
            "volume": np.exp(rng.normal(10.0, 0.3, n_bars)),
        }
    )


@pytest.fixture
def aud_lake(tmp_path) -> LakehousePaths:
    return LakehousePaths(tmp_path / "data")


# --- keys ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", UNSAFE_KEYS, ids=UNSAFE_KEY_IDS)
def test_validate_symbol_key_unsafe_key_raises_naming_it(key: object) -> None:
    with pytest.raises(UnsafeKeyError, match=r"symbol key .* is refused: expected EXCHANGE_SYMBOL"):
        validate_symbol_key(key)


@pytest.mark.parametrize("key", ["BINANCE_BTCUSDT", "SIM_A", "GATEIO_1INCH_USDT", "X" * 32 + "_" + "Y" * 64])
def test_validate_symbol_key_safe_key_is_returned(key: str) -> None:
    assert validate_symbol_key(key) == key


def test_unsafe_key_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"'\.\./x' is refused"):
        validate_symbol_key("../x")


@pytest.mark.parametrize(
    "run_id",
    ["", "../x", "a/b", "a b", "r" * 65, "run\n", "..", "run.1", "/etc/passwd", "run\x00", None],
    ids=["empty", "parent", "slash", "space", "65-chars", "newline", "dots", "dot", "absolute", "nul", "none"],
)
def test_validate_run_id_unsafe_raises(run_id: object) -> None:
    with pytest.raises(UnsafeKeyError, match=r"RUN_ID .* is refused: expected 1 to 64 characters"):
        validate_run_id(run_id)


@pytest.mark.parametrize("run_id", ["20261125T210700Z", "a", "my-run_2", "r" * 64])
def test_validate_run_id_safe_is_returned(run_id: str) -> None:
    assert validate_run_id(run_id) == run_id


def test_new_run_id_is_utc_and_sortable() -> None:
    paris = datetime(2026, 11, 25, 22, 7, 0, tzinfo=timezone(timedelta(hours=1)))
    assert new_run_id(paris) == "20261125T210700Z"
    assert validate_run_id(new_run_id(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))) == "20260102T030405Z"


def test_new_run_id_naive_time_raises() -> None:
    match = r"`now` must be timezone-aware \(UTC\), got naive 2026-11-25T21:07:00"
    with pytest.raises(ValueError, match=match):
        new_run_id(datetime(2026, 11, 25, 21, 7))


def test_make_and_split_symbol_key_round_trip() -> None:
    assert normalize_exchange_id("gate.io") == "GATEIO"
    key = make_symbol_key("binance", "btc", "usdt")
    assert key == "BINANCE_BTCUSDT"
    assert split_symbol_key("GATEIO_1INCH_USDT") == ("GATEIO", "1INCH_USDT")


def test_make_symbol_key_unsafe_base_raises() -> None:
    with pytest.raises(UnsafeKeyError, match=r"'BINANCE_BTC/USDT' is refused"):
        make_symbol_key("binance", "BTC/", "USDT")


def test_normalize_exchange_id_without_letters_raises() -> None:
    with pytest.raises(UnsafeKeyError, match=r"exchange id '\.\.\./' gives no usable key prefix"):
        normalize_exchange_id(".../")


# --- paths -----------------------------------------------------------------------------------------------


def test_lakehouse_paths_follow_the_contract(aud_lake: LakehousePaths) -> None:
    root = aud_lake.root
    assert aud_lake.ohlcv_file(KEY) == root / "lakehouse" / "BINANCE_BTCUSDT_1d.parquet"
    assert aud_lake.symbol_metadata_file(KEY) == root / "lakehouse" / "symbols.parquet" / f"{KEY}.parquet"
    assert aud_lake.candidates_file("R1") == root / "export" / "R1" / "candidates.json"
    assert aud_lake.candidates_validated_file("R1") == root / "export" / "R1" / "candidates_validated.json"
    assert aud_lake.run_data_file("R1", "snapshot.json") == (
        root / "artifacts" / "summaries" / "runs" / "R1" / "data" / "snapshot.json"
    )


@pytest.mark.parametrize("key", UNSAFE_KEYS[:8], ids=UNSAFE_KEY_IDS[:8])
@pytest.mark.parametrize(
    "builder",
    ["ohlcv_file", "symbol_metadata_file", "quarantine_file", "repair_log_file"],
)
def test_lakehouse_paths_unsafe_symbol_key_refused_and_nothing_created(
    aud_lake: LakehousePaths, builder: str, key: str
) -> None:
    with pytest.raises(UnsafeKeyError, match="is refused"):
        getattr(aud_lake, builder)(key)
    assert not aud_lake.root.exists()


@pytest.mark.parametrize(
    "builder", ["export_dir", "candidates_file", "audit_report_file", "run_dir", "run_data_dir", "run_report_dir"]
)
@pytest.mark.parametrize("run_id", ["../x", "/etc/passwd", "a/b", ""], ids=["parent", "absolute", "slash", "empty"])
def test_lakehouse_paths_unsafe_run_id_refused(aud_lake: LakehousePaths, builder: str, run_id: str) -> None:
    with pytest.raises(UnsafeKeyError, match=r"RUN_ID .* is refused"):
        getattr(aud_lake, builder)(run_id)


def test_lakehouse_paths_unknown_run_artifact_raises(aud_lake: LakehousePaths) -> None:
    with pytest.raises(ValueError, match=r"run artifact name must be one of .*, got '\.\./weights\.json'"):
        aud_lake.run_data_file("R1", "../weights.json")


def test_resolve_data_dir_explicit_then_env_then_default(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "from_env"))
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir() == tmp_path / "from_env"
    monkeypatch.delenv(DATA_DIR_ENV)
    monkeypatch.chdir(tmp_path)
    assert resolve_data_dir() == tmp_path / "data"


# --- atomic writes ----------------------------------------------------------------------------------------


def test_write_table_atomic_round_trips(aud_lake: LakehousePaths) -> None:
    table = pa.Table.from_pandas(_bars(1), schema=OHLCV_SCHEMA, preserve_index=False)
    path = aud_lake.ohlcv_file(KEY)
    write_table_atomic(table, path)
    assert read_table(path, OHLCV_SCHEMA).equals(table)
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_write_bytes_atomic_failure_keeps_old_file_and_no_temp(tmp_path, monkeypatch, failing: str) -> None:
    path = tmp_path / "file.json"
    write_bytes_atomic(b"old", path)

    def fail(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, failing, fail)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(b"new" * 1000, path)
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


@pytest.fixture
def directory_syncs(monkeypatch) -> list[Path]:
    """Every directory fsync of ``write_bytes_atomic`` from now on, in order (the fsync still happens)."""
    synced: list[Path] = []
    real = atomic._fsync_directory
    monkeypatch.setattr(atomic, "_fsync_directory", lambda directory: synced.append(directory) or real(directory))
    return synced


def test_directory_syncs_batched_syncs_each_directory_once_after_the_files(tmp_path, directory_syncs) -> None:
    (tmp_path / "a").mkdir()
    write_bytes_atomic(b"alone", tmp_path / "a" / "alone.bin")
    assert directory_syncs == [tmp_path / "a"]  # outside a batch: one fsync per file
    with directory_syncs_batched():
        for i in range(5):
            write_bytes_atomic(b"x" * i, tmp_path / "a" / f"{i}.bin")
        write_bytes_atomic(b"y", tmp_path / "b" / "y.bin")
        write_bytes_atomic(b"z", tmp_path / "a" / "z.bin", sync_directory=False)
        with directory_syncs_batched():  # an inner batch leaves them to the outer one
            write_bytes_atomic(b"w", tmp_path / "b" / "w.bin")
        assert directory_syncs == [tmp_path / "a"]
        assert (tmp_path / "a" / "4.bin").read_bytes() == b"xxxx"  # renamed in place already
    assert directory_syncs == [tmp_path / "a", tmp_path / "a", tmp_path / "b"]


def test_directory_syncs_batched_still_syncs_when_the_block_raises(tmp_path, directory_syncs) -> None:
    with pytest.raises(RuntimeError, match="symbol 3 failed"), directory_syncs_batched():
        write_bytes_atomic(b"1", tmp_path / "1.bin")
        raise RuntimeError("symbol 3 failed")
    assert directory_syncs == [tmp_path]
    write_bytes_atomic(b"2", tmp_path / "2.bin")  # the batch is over: per file again
    assert directory_syncs == [tmp_path, tmp_path]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT], ids=["no_space", "quota"])
def test_write_bytes_atomic_full_disk_raises_disk_full_error_naming_the_file(tmp_path, monkeypatch, code) -> None:
    path = tmp_path / "file.json"
    write_bytes_atomic(b"old", path)

    def full(*args: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskFullError, match=rf"disk full: no space left on the file system holding {path}"):
        write_bytes_atomic(b"new", path)
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["file.json"]


def test_write_ohlcv_failed_replace_keeps_stored_bars(aud_lake: LakehousePaths, monkeypatch) -> None:
    write_ohlcv(aud_lake, KEY, _bars(1))
    before = file_sha256(aud_lake.ohlcv_file(KEY))

    def fail(*args: object) -> None:
        raise OSError("killed mid-write")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="killed mid-write"):
        write_ohlcv(aud_lake, KEY, _bars(2, n_bars=5))
    monkeypatch.undo()
    assert file_sha256(aud_lake.ohlcv_file(KEY)) == before
    pd.testing.assert_frame_equal(read_ohlcv(aud_lake, KEY), _bars(1))


def test_write_json_atomic_is_deterministic(tmp_path) -> None:
    document = {"b": [1, 2.5], "a": {"z": None, "y": "é"}}
    write_json_atomic(document, tmp_path / "x.json")
    assert (tmp_path / "x.json").read_bytes() == encode_json({"a": {"y": "é", "z": None}, "b": [1, 2.5]})
    assert read_json(tmp_path / "x.json") == document
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        encode_json({"x": float("nan")})


def test_read_json_invalid_or_missing_raises_naming_file(tmp_path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LakehouseReadError, match=r"bad\.json: not valid JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(LakehouseReadError, match=r"none\.json: file does not exist"):
        read_json(tmp_path / "none.json")


def test_file_sha256_matches_hashlib_and_read_hash(tmp_path) -> None:
    path = tmp_path / "bars.parquet"
    write_table_atomic(pa.Table.from_pandas(_bars(3), schema=OHLCV_SCHEMA, preserve_index=False), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == digest
    assert read_table_and_sha256(path, OHLCV_SCHEMA)[1] == digest


def test_exclusive_lock_excludes_a_second_holder(tmp_path) -> None:
    lock = tmp_path / "_locks" / "x.lock"
    with exclusive_lock(lock), open(lock, "a+b") as other:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(lock, "a+b") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on exit


# --- schema-checked reads ----------------------------------------------------------------------------------


def test_read_table_truncated_file_raises_naming_file(tmp_path) -> None:
    path = tmp_path / "BINANCE_BTCUSDT_1d.parquet"
    write_table_atomic(pa.Table.from_pandas(_bars(1), schema=OHLCV_SCHEMA, preserve_index=False), path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(LakehouseReadError, match=r"BINANCE_BTCUSDT_1d\.parquet: not a readable parquet file"):
        read_table(path, OHLCV_SCHEMA)


def test_read_table_missing_file_raises_naming_file(tmp_path) -> None:
    with pytest.raises(LakehouseReadError, match=r"absent\.parquet: file does not exist"):
        read_table(tmp_path / "absent.parquet")


def test_read_table_missing_column_raises(tmp_path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pandas(_bars(1).drop(columns="volume"), preserve_index=False), path)
    with pytest.raises(LakehouseReadError, match=r"x\.parquet: missing columns \['volume'\]"):
        read_table(path, OHLCV_SCHEMA)


@pytest.mark.parametrize(
    ("column", "values", "match"),
    [
        ("timestamp", lambda b: b["timestamp"].dt.tz_localize(None), r"timestamp is timestamp\[ms\], expected"),
        ("timestamp", lambda b: b["timestamp"].astype("int64"), r"timestamp is int64, expected timestamp"),
        ("close", lambda b: b["close"].astype(str), r"close is string, expected double"),
        ("close", lambda b: b["close"].where(b.index != 3), r"non-nullable"),
    ],
    ids=["naive-timestamp", "integer-timestamp", "string-close", "null-close"],
)
def test_read_table_wrong_type_raises_naming_file(tmp_path, column: str, values, match: str) -> None:
    bars = _bars(1)
    bars[column] = values(bars)
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pandas(bars, preserve_index=False), path)
    with pytest.raises(LakehouseReadError, match=rf"x\.parquet: wrong column types \(.*{match}"):
        read_table(path, OHLCV_SCHEMA)


def test_read_table_casts_safe_differences(tmp_path) -> None:
    bars = _bars(1)
    bars["timestamp"] = bars["timestamp"].dt.tz_convert("Asia/Tokyo").astype("datetime64[ns, Asia/Tokyo]")
    bars["volume"] = bars["volume"].round().astype("int64")
    bars["extra"] = 1
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pandas(bars, preserve_index=False), path)
    frame = read_table(path, OHLCV_SCHEMA).to_pandas()
    assert list(frame.columns) == list(OHLCV_SCHEMA.names)
    assert frame["timestamp"].equals(_bars(1)["timestamp"])


def test_read_ohlcv_unsorted_file_raises(aud_lake: LakehousePaths) -> None:
    write_ohlcv(aud_lake, KEY, _bars(1).iloc[::-1])
    with pytest.raises(LakehouseReadError, match=r"BINANCE_BTCUSDT_1d\.parquet: timestamps are not sorted"):
        read_ohlcv(aud_lake, KEY)


# --- clean_bars ------------------------------------------------------------------------------------------


def _planted_rows() -> tuple[pd.DataFrame, dict[int, str]]:
    """Ten clean bars, then one bad row per quarantine reason (by row position -> expected reason)."""
    bars = _bars(5, n_bars=10)
    bad = [
        ({"timestamp": pd.NaT}, "missing or malformed timestamp"),
        ({"close": np.nan}, "null, NaN or infinite value"),
        ({"volume": np.inf}, "null, NaN or infinite value"),
        ({"low": 0.0}, "price <= 0"),
        ({"open": -1.0}, "price <= 0"),
        ({"volume": -3.0}, "negative volume"),
        ({"high": 50.0, "low": 60.0}, "high < low"),
        ({"open": 500.0}, "open or close outside [low, high]"),
        ({"timestamp": pd.Timestamp("2024-05-01T12:00", tz="UTC")}, "daily bar not opening at 00:00 UTC"),
        ({"timestamp": NOW.floor("D")}, "bar not closed yet or in the future"),
        ({"timestamp": pd.Timestamp("2030-01-01", tz="UTC")}, "bar not closed yet or in the future"),
    ]
    rows, reasons = [], {}
    for offset, (change, reason) in enumerate(bad):
        row = {
            "timestamp": pd.Timestamp("2024-04-01", tz="UTC") + pd.Timedelta(days=offset),
            "open": 10.0,
            "high": 11.0,
            "low": 9.0,
            "close": 10.5,
            "volume": 100.0,
            **change,
        }
        rows.append(row)
        reasons[len(bars) + offset] = reason
    planted = pd.DataFrame(rows).astype({"timestamp": "datetime64[ms, UTC]"})
    frame = pd.concat([bars, planted], ignore_index=True)
    return frame, reasons


def test_clean_bars_quarantines_each_bad_row_with_its_reason() -> None:
    frame, reasons = _planted_rows()
    result = clean_bars(frame, symbol_key=KEY, now=NOW)
    assert [q.reason for q in result.quarantined] == list(reasons.values())
    assert all(q.symbol_key == KEY for q in result.quarantined)
    pd.testing.assert_frame_equal(result.bars, _bars(5, n_bars=10))
    assert result.quarantined[2].row["volume"] is None  # infinities become null in the JSON record
    json.dumps([q.to_json_dict() for q in result.quarantined], allow_nan=False)


def test_clean_bars_duplicates_keep_later_row_and_sort() -> None:
    bars = _bars(6, n_bars=5)
    later = bars.iloc[[2]].assign(close=bars["close"].iat[2] * 1.001)
    result = clean_bars(pd.concat([bars.iloc[::-1], later], ignore_index=True), symbol_key=KEY, now=NOW)
    assert [q.reason for q in result.quarantined] == ["duplicate timestamp (later row kept)"]
    assert result.quarantined[0].timestamp == bars["timestamp"].iat[2].isoformat()
    assert result.bars["timestamp"].is_monotonic_increasing and len(result.bars) == 5
    assert result.bars["close"].iat[2] == later["close"].iat[0]


def test_clean_bars_naive_timestamps_refuse_whole_batch() -> None:
    bars = _bars(7, n_bars=3)
    bars["timestamp"] = bars["timestamp"].dt.tz_localize(None)
    with pytest.raises(ValueError, match=rf"bars of {KEY}: `timestamp` must be timezone-aware UTC"):
        clean_bars(bars, symbol_key=KEY, now=NOW)


def test_clean_bars_missing_column_raises() -> None:
    with pytest.raises(ValueError, match=r"bars of .*: missing columns \['volume'\]"):
        clean_bars(_bars(7, n_bars=3).drop(columns="volume"), symbol_key=KEY, now=NOW)


def test_bars_from_exchange_rows_malformed_rows_are_quarantined_not_fatal() -> None:
    day = int(pd.Timestamp("2024-06-01", tz="UTC").timestamp() * 1000)
    rows = [
        [day, 10, 11, 9, 10.5, 100],
        [day + 86_400_000, "x", 11, 9, 10.5, 100],
        [day + 2 * 86_400_000, 10, 11],
        ["when?", 10, 11, 9, 10.5, 100],
        [day + 3 * 86_400_000, None, 11, 9, 10.5, 100],
    ]
    result = clean_bars(bars_from_exchange_rows(rows), symbol_key=KEY, now=NOW)
    assert len(result.bars) == 1
    assert [q.reason for q in result.quarantined] == [
        "null, NaN or infinite value",
        "missing or malformed timestamp",
        "missing or malformed timestamp",
        "null, NaN or infinite value",
    ]


# --- merge_bar_arrays and gaps ------------------------------------------------------------------------------------


def merge_bars(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The frame form of :func:`merge_bar_arrays`, as ingestion calls it."""
    return merge_bar_arrays(BarArrays.from_frame(stored), BarArrays.from_frame(new)).to_frame()


def test_merge_bars_new_wins_and_no_stored_row_is_lost() -> None:
    stored = _bars(8, n_bars=20)
    new = _bars(9, n_bars=5, last_day="2024-07-03")  # 2 overlapping days, 3 new ones
    merged = merge_bars(stored, new)
    assert set(stored["timestamp"]) <= set(merged["timestamp"])
    assert len(merged) == 23 and merged["timestamp"].is_monotonic_increasing
    overlap = merged.set_index("timestamp").loc[new["timestamp"].iloc[:2], "close"]
    assert overlap.tolist() == new["close"].iloc[:2].tolist()


@pytest.mark.parametrize("seed", range(5))
def test_merge_bars_random_subsets_keep_union(seed: int) -> None:
    rng = np.random.default_rng(seed)
    everything = _bars(seed, n_bars=60)
    stored = everything.loc[rng.random(60) < 0.6].reset_index(drop=True)
    new = everything.loc[rng.random(60) < 0.3].reset_index(drop=True)
    merged = merge_bars(stored, new)
    assert set(merged["timestamp"]) == set(stored["timestamp"]) | set(new["timestamp"])
    assert not merged["timestamp"].duplicated().any()


def test_merge_bars_empty_sides() -> None:
    stored = _bars(10, n_bars=4)
    pd.testing.assert_frame_equal(merge_bars(stored, empty_bars()), stored)
    pd.testing.assert_frame_equal(merge_bars(empty_bars(), stored.iloc[::-1]), stored)


def test_find_gaps_returns_missing_ranges() -> None:
    days = pd.to_datetime(
        ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-06", "2024-01-07", "2024-01-11"], utc=True
    )
    gaps = find_gaps(pd.Series(days))
    assert gaps == [
        Gap(pd.Timestamp("2024-01-04", tz="UTC"), pd.Timestamp("2024-01-05", tz="UTC")),
        Gap(pd.Timestamp("2024-01-08", tz="UTC"), pd.Timestamp("2024-01-10", tz="UTC")),
    ]
    assert [g.missing_bars for g in gaps] == [2, 3]
    assert gaps[0].to_json_dict() == {
        "first_missing": "2024-01-04T00:00:00+00:00",
        "last_missing": "2024-01-05T00:00:00+00:00",
        "missing_bars": 2,
    }


def test_find_gaps_contiguous_or_short_series_has_none() -> None:
    assert find_gaps(_bars(11)["timestamp"]) == []
    assert find_gaps(_bars(11, n_bars=1)["timestamp"]) == []


def test_wide_closes_cuts_at_until_and_aligns_days() -> None:
    a, b = _bars(12, n_bars=5), _bars(13, n_bars=3, last_day="2024-06-29")
    closes = wide_closes({"SIM_BUSDT": b, "SIM_AUSDT": a}, until=pd.Timestamp("2024-06-29", tz="UTC"))
    assert list(closes.columns) == ["SIM_AUSDT", "SIM_BUSDT"]
    assert closes.index[-1] == pd.Timestamp("2024-06-29", tz="UTC") and len(closes) == 4
    assert np.isnan(closes["SIM_BUSDT"].iat[0]) and closes["SIM_AUSDT"].iat[-1] == a["close"].iat[3]


def test_write_bytes_atomic_gives_the_mode_open_would_give(tmp_path):
    import os
    import stat

    from alpha_assets.lakehouse.atomic import write_bytes_atomic

    umask = os.umask(0o022)
    os.umask(umask)
    target = tmp_path / "x.json"
    write_bytes_atomic(b"{}", target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
