"""lakehouse.features_store on a tmp lakehouse: new-wins merge, write only on change, append after the last
stored row (stored rows copied bit for bit), the footer's provenance record, atomic replace under a per-file
lock (two processes upserting the same symbol), as-of lookups, and input validation.

Lives with the feature tests because the store is part of the feature backfill; it touches only tmp_path.
"""

from __future__ import annotations

import multiprocessing
import shutil

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.features_store import (
    DELTA_LIMIT_MIN,
    DELTA_LIMIT_SPREAD,
    delta_limit,
    features_schema,
    last_feature_date,
    open_symbol_features,
    read_features,
    read_features_asof,
    read_symbol_row_asof,
    symbol_feature_files,
    upsert_symbol_features,
)
from alpha_assets.lakehouse.hashing import file_sha256
from alpha_assets.lakehouse.paths import LakehousePaths

KEY = "BINANCE_ETHUSDT"
COLUMNS = ("alpha", "beta", "gamma")


def _frame(start: str, n: int, seed: int, key: str = KEY) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, len(COLUMNS)))
    values[: min(n, 3), 0] = np.nan  # warm-up NaN must survive the round trip
    frame = pd.DataFrame(values, columns=list(COLUMNS))
    frame.insert(0, "symbol", key)
    frame.insert(0, "date", pd.date_range(start, periods=n, tz="UTC"))
    return frame


@pytest.fixture
def paths(tmp_path) -> LakehousePaths:
    return LakehousePaths(tmp_path)


def test_upsert_new_symbol_writes_every_row(paths):
    result = upsert_symbol_features(paths, KEY, _frame("2024-01-01", 50, 1))
    assert (result.rows_written, result.rows_changed, result.changed) == (50, 50, True)
    stored = read_features(paths, [KEY])
    pd.testing.assert_frame_equal(stored, _frame("2024-01-01", 50, 1), check_exact=True)
    assert pq.read_schema(paths.features_file(KEY)).equals(features_schema(COLUMNS))


def test_upsert_same_rows_does_not_rewrite_the_file(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 50, 1))
    before = paths.features_file(KEY).stat().st_mtime_ns
    result = upsert_symbol_features(paths, KEY, _frame("2024-01-01", 50, 1))
    assert (result.rows_written, result.rows_changed, result.changed) == (0, 0, False)
    assert paths.features_file(KEY).stat().st_mtime_ns == before


def test_upsert_overlap_new_values_win_and_old_dates_are_kept(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 40, 1))
    newer = _frame("2024-01-31", 20, 2)  # overlaps the last 10 stored days, adds 10
    result = upsert_symbol_features(paths, KEY, newer)
    assert (result.rows_written, result.rows_changed) == (50, 20)
    stored = read_features(paths, [KEY])
    assert stored["date"].is_unique and stored["date"].is_monotonic_increasing
    pd.testing.assert_frame_equal(stored.iloc[30:].reset_index(drop=True), newer, check_exact=True)
    pd.testing.assert_frame_equal(stored.iloc[:30], _frame("2024-01-01", 40, 1).iloc[:30], check_exact=True)


def test_upsert_one_changed_value_counts_one_row(paths):
    frame = _frame("2024-01-01", 30, 1)
    upsert_symbol_features(paths, KEY, frame)
    frame.loc[7, "beta"] += 1e-12
    assert upsert_symbol_features(paths, KEY, frame).rows_changed == 1


def test_upsert_other_feature_columns_replace_the_file(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    renamed = _frame("2024-02-01", 5, 2).rename(columns={"gamma": "delta"})
    result = upsert_symbol_features(paths, KEY, renamed)
    assert (result.rows_written, result.rows_changed) == (5, 5)
    assert list(read_features(paths, [KEY]).columns) == ["date", "symbol", "alpha", "beta", "delta"]


def _hammer(root: str, offset: int) -> None:
    paths = LakehousePaths(root)
    for i in range(12):
        upsert_symbol_features(
            paths,
            KEY,
            _frame(str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=offset + 3 * i)), 10, seed=offset + i),
        )


def test_upsert_concurrent_processes_never_lose_or_duplicate_rows(paths):
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_hammer, args=(str(paths.root), offset)) for offset in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    stored = read_features(paths, [KEY])
    expected_dates = pd.date_range("2024-01-01", periods=1 + 3 * 11 + 10, tz="UTC")
    assert stored["date"].is_unique
    assert list(stored["date"]) == list(expected_dates)


def test_read_features_sorted_by_symbol_then_date_missing_symbols_absent(paths):
    upsert_symbol_features(paths, "BINANCE_BBB", _frame("2024-01-01", 5, 1, "BINANCE_BBB"))
    upsert_symbol_features(paths, "BINANCE_AAA", _frame("2024-01-03", 5, 2, "BINANCE_AAA"))
    frame = read_features(paths, ["BINANCE_BBB", "BINANCE_AAA", "BINANCE_NONE"])
    assert frame["symbol"].tolist() == ["BINANCE_AAA"] * 5 + ["BINANCE_BBB"] * 5
    assert str(frame["date"].dtype) == "datetime64[ns, UTC]"
    assert read_features(paths, ["BINANCE_NONE"]).empty


def test_read_features_asof_latest_row_not_after_cutoff(paths):
    upsert_symbol_features(paths, "BINANCE_AAA", _frame("2024-01-01", 10, 1, "BINANCE_AAA"))
    upsert_symbol_features(paths, "BINANCE_BBB", _frame("2024-01-08", 10, 2, "BINANCE_BBB"))
    as_of = pd.Timestamp("2024-01-05 12:00", tz="UTC")
    rows = read_features_asof(paths, ["BINANCE_AAA", "BINANCE_BBB"], as_of)
    assert rows["symbol"].tolist() == ["BINANCE_AAA"]  # BBB starts after as_of
    assert rows["date"].iat[0] == pd.Timestamp("2024-01-05", tz="UTC")
    expected = _frame("2024-01-01", 10, 1, "BINANCE_AAA").iloc[4]
    np.testing.assert_array_equal(rows.iloc[0][list(COLUMNS)].to_numpy(float), expected[list(COLUMNS)].to_numpy(float))


def test_last_feature_date_none_without_file_else_max_date(paths):
    assert last_feature_date(paths, KEY) is None
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 10, 1))
    assert last_feature_date(paths, KEY) == pd.Timestamp("2024-01-10", tz="UTC")


def test_read_features_corrupt_file_raises_lakehouse_read_error(paths):
    paths.features_dir.mkdir(parents=True)
    paths.features_file(KEY).write_bytes(b"not parquet")
    with pytest.raises(LakehouseReadError, match="BINANCE_ETHUSDT.parquet"):
        read_features(paths, [KEY])
    with pytest.raises(LakehouseReadError, match="BINANCE_ETHUSDT.parquet"):
        upsert_symbol_features(paths, KEY, _frame("2024-01-01", 3, 1))


def test_upsert_wrong_symbol_raises_value_error(paths):
    with pytest.raises(ValueError, match="`frame.symbol` must equal 'BINANCE_ETHUSDT' on every row"):
        upsert_symbol_features(paths, KEY, _frame("2024-01-01", 3, 1, "BINANCE_OTHER"))


def test_upsert_unsorted_dates_raise_value_error(paths):
    with pytest.raises(ValueError, match="strictly increasing"):
        upsert_symbol_features(paths, KEY, _frame("2024-01-01", 5, 1).iloc[::-1])


def test_upsert_naive_dates_raise_value_error(paths):
    frame = _frame("2024-01-01", 5, 1)
    frame["date"] = frame["date"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="`frame.date` must be tz-aware UTC"):
        upsert_symbol_features(paths, KEY, frame)


def test_upsert_inf_value_raises_value_error(paths):
    frame = _frame("2024-01-01", 5, 1)
    frame.loc[2, "gamma"] = np.inf
    with pytest.raises(ValueError, match="feature column `gamma` holds inf"):
        upsert_symbol_features(paths, KEY, frame)


def test_upsert_non_float_column_raises_type_error(paths):
    frame = _frame("2024-01-01", 5, 1).assign(gamma=1)
    with pytest.raises(TypeError, match="feature column `gamma` must be float64, got int64"):
        upsert_symbol_features(paths, KEY, frame)


def test_upsert_missing_key_columns_raise_value_error(paths):
    with pytest.raises(ValueError, match=r"`frame` must have columns \['date', 'symbol', <features>...\]"):
        upsert_symbol_features(paths, KEY, _frame("2024-01-01", 5, 1).drop(columns="symbol"))


def test_features_schema_reserved_name_raises_value_error():
    with pytest.raises(ValueError, match="must be non-empty, unique and exclude"):
        features_schema(["date", "x"])


def test_read_features_asof_naive_timestamp_raises_value_error(paths):
    with pytest.raises(ValueError, match="`as_of` must be a tz-aware pandas Timestamp"):
        read_features_asof(paths, [KEY], pd.Timestamp("2024-01-01"))


def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(dates in int64 ms, feature-major values) of a ``_frame``."""
    dates = pd.DatetimeIndex(frame["date"]).as_unit("ms").asi8
    return dates, np.ascontiguousarray(frame[list(COLUMNS)].to_numpy().T)


def test_append_keeps_stored_rows_and_records_provenance(paths):
    with open_symbol_features(paths, KEY) as features:
        assert features.stored() is None
        features.upsert(*_arrays(_frame("2024-01-01", 40, 1)), COLUMNS, {"source": "a"})
    before = paths.features_file(KEY).read_bytes()
    with open_symbol_features(paths, KEY) as features:
        stored = features.stored()
        assert (stored.n_rows, stored.feature_columns, stored.provenance) == (40, COLUMNS, {"source": "a"})
        result = features.append(*_arrays(_frame("2024-02-10", 3, 2)), COLUMNS, {"source": "b"})
    assert (result.rows_written, result.rows_changed, result.changed) == (43, 3, True)
    frame = read_features(paths, [KEY])
    expected = pd.concat([_frame("2024-01-01", 40, 1), _frame("2024-02-10", 3, 2)], ignore_index=True)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    # The appended rows went to a delta file; the base file was not touched.
    assert paths.features_file(KEY).read_bytes() == before
    assert pq.read_table(paths.features_delta_file(KEY, 1)).num_rows == 3
    with open_symbol_features(paths, KEY) as features:
        assert features.stored().provenance == {"source": "b"}
        assert features.stored().n_rows == 43


def _append_days(paths: LakehousePaths, start: str, n_appends: int, seed: int) -> pd.DataFrame:
    """Append one row per call, ``n_appends`` times from ``start``; return the rows appended."""
    frames = []
    for i in range(n_appends):
        frame = _frame(str(pd.Timestamp(start) + pd.Timedelta(days=i))[:10], 1, seed + i)
        with open_symbol_features(paths, KEY) as features:
            features.append(*_arrays(frame), COLUMNS, {"appends": i + 1})
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _delta_count(paths: LakehousePaths) -> int:
    return len(list(paths.features_dir.glob(f"{KEY}.*.parquet")))


def test_appends_fill_delta_files_up_to_the_limit_then_compact_into_the_base(paths):
    limit = delta_limit(KEY)
    assert DELTA_LIMIT_MIN <= limit < DELTA_LIMIT_MIN + DELTA_LIMIT_SPREAD
    base = _frame("2024-01-01", 30, 1)
    upsert_symbol_features(paths, KEY, base)
    appended = _append_days(paths, "2024-01-31", limit, seed=10)
    assert _delta_count(paths) == limit
    base_bytes = paths.features_file(KEY).read_bytes()
    expected = pd.concat([base, appended], ignore_index=True)
    pd.testing.assert_frame_equal(read_features(paths, [KEY]), expected, check_exact=True)
    # DuckDB over the glob sees every row once.
    glob = str(paths.features_dir / "*.parquet")
    counts = duckdb.sql(f"select count(*), count(distinct date) from read_parquet('{glob}')").fetchall()[0]
    assert counts == (30 + limit, 30 + limit)

    next_day = str(pd.Timestamp("2024-01-31") + pd.Timedelta(days=limit))[:10]
    one_more = _frame(next_day, 1, 99)
    with open_symbol_features(paths, KEY) as features:
        features.append(*_arrays(one_more), COLUMNS, {"appends": limit + 1})
    expected = pd.concat([expected, one_more], ignore_index=True)
    assert _delta_count(paths) == 0
    assert paths.features_file(KEY).read_bytes() != base_bytes
    assert pq.read_metadata(paths.features_file(KEY)).num_rows == 31 + limit
    pd.testing.assert_frame_equal(read_features(paths, [KEY]), expected, check_exact=True)
    with open_symbol_features(paths, KEY) as features:
        assert features.stored().provenance == {"appends": limit + 1}


def test_compaction_interrupted_before_removing_deltas_is_recovered(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    _append_days(paths, "2024-01-31", 3, seed=10)
    deltas = {path: path.read_bytes() for path in sorted(paths.features_dir.glob(f"{KEY}.*.parquet"))}
    expected = read_features(paths, [KEY])
    # A merge compacts (base rewritten with every row, deltas removed); put the deltas back as a crash
    # between the rewrite and the removals would have left them.
    expected.loc[0, "beta"] += 1.0
    upsert_symbol_features(paths, KEY, expected.iloc[:1])
    assert _delta_count(paths) == 0
    for path, data in deltas.items():
        path.write_bytes(data)
    pd.testing.assert_frame_equal(read_features(paths, [KEY]), expected, check_exact=True)
    assert symbol_feature_files(paths, KEY) == [paths.features_file(KEY)]
    with open_symbol_features(paths, KEY) as features:
        assert features.stored().n_rows == 33
    assert _delta_count(paths) == 0  # the writer removed the leftovers


def test_delta_files_without_a_base_file_are_removed_by_the_next_writer(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 5, 1))
    _append_days(paths, "2024-01-06", 2, seed=10)
    paths.features_file(KEY).unlink()
    assert read_features(paths, [KEY]).empty
    upsert_symbol_features(paths, KEY, _frame("2024-02-01", 4, 2))
    assert _delta_count(paths) == 0
    pd.testing.assert_frame_equal(read_features(paths, [KEY]), _frame("2024-02-01", 4, 2), check_exact=True)


def test_delta_that_does_not_continue_the_rows_raises_lakehouse_read_error(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    _append_days(paths, "2024-01-31", 2, seed=10)
    paths.features_delta_file(KEY, 1).unlink()
    paths.features_delta_file(KEY, 2).rename(paths.features_delta_file(KEY, 1))
    with pytest.raises(LakehouseReadError, match=r"BINANCE_ETHUSDT\.1\.parquet.*starts after 31 rows but 30 rows"):
        read_features(paths, [KEY])


def test_row_asof_reads_newest_file_first_and_hashes_what_it_read(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    appended = _append_days(paths, "2024-01-31", 2, seed=10)
    row, hashes = read_symbol_row_asof(paths, KEY, pd.Timestamp("2024-02-01", tz="UTC"))
    assert row.num_rows == 1 and row.column("date")[0].as_py() == pd.Timestamp("2024-02-01", tz="UTC")
    assert list(hashes) == [paths.features_delta_file(KEY, 2)]
    assert hashes[paths.features_delta_file(KEY, 2)] == file_sha256(paths.features_delta_file(KEY, 2))
    row, hashes = read_symbol_row_asof(paths, KEY, pd.Timestamp("2024-01-15 12:00", tz="UTC"))
    assert row.column("date")[0].as_py() == pd.Timestamp("2024-01-15", tz="UTC")
    assert list(hashes) == [
        paths.features_delta_file(KEY, 2),
        paths.features_delta_file(KEY, 1),
        paths.features_file(KEY),
    ]
    row, _ = read_symbol_row_asof(paths, KEY, pd.Timestamp("2023-12-31", tz="UTC"))
    assert row.num_rows == 0
    assert last_feature_date(paths, KEY) == appended["date"].iloc[-1]


def test_append_nothing_with_same_provenance_does_not_rewrite(paths):
    with open_symbol_features(paths, KEY) as features:
        features.upsert(*_arrays(_frame("2024-01-01", 10, 1)), COLUMNS, {"source": "a"})
    mtime = paths.features_file(KEY).stat().st_mtime_ns
    empty = _frame("2024-03-01", 0, 1)
    with open_symbol_features(paths, KEY) as features:
        result = features.append(*_arrays(empty), COLUMNS, {"source": "a"})
    assert (result.rows_written, result.changed) == (0, False)
    assert paths.features_file(KEY).stat().st_mtime_ns == mtime


def test_upsert_same_rows_new_provenance_rewrites_without_changed_rows(paths):
    with open_symbol_features(paths, KEY) as features:
        features.upsert(*_arrays(_frame("2024-01-01", 10, 1)), COLUMNS, {"v": 1})
    with open_symbol_features(paths, KEY) as features:
        same = features.upsert(*_arrays(_frame("2024-01-01", 10, 1)), COLUMNS, {"v": 1})
        renewed = features.upsert(*_arrays(_frame("2024-01-01", 10, 1)), COLUMNS, {"v": 2})
    assert (same.changed, renewed.changed, renewed.rows_changed) == (False, True, 0)


def test_upsert_frame_with_changed_rows_drops_the_provenance(paths):
    with open_symbol_features(paths, KEY) as features:
        features.upsert(*_arrays(_frame("2024-01-01", 10, 1)), COLUMNS, {"v": 1})
    upsert_symbol_features(paths, KEY, _frame("2024-01-05", 10, 2))
    with open_symbol_features(paths, KEY) as features:
        assert features.stored().provenance is None and features.stored().n_rows == 14


def test_append_date_not_after_last_stored_raises_value_error(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 10, 1))
    with (
        open_symbol_features(paths, KEY) as features,
        pytest.raises(ValueError, match="`dates` must all be after the last stored date of BINANCE_ETHUSDT"),
    ):
        features.append(*_arrays(_frame("2024-01-10", 2, 2)), COLUMNS, {})


def test_append_other_feature_columns_raises_value_error(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 10, 1))
    with (
        open_symbol_features(paths, KEY) as features,
        pytest.raises(ValueError, match="`feature_columns` must equal the stored columns of BINANCE_ETHUSDT"),
    ):
        features.append(*_arrays(_frame("2024-02-01", 2, 2)), ("alpha", "beta", "delta"), {})


def test_append_values_of_wrong_shape_raise_value_error(paths):
    dates, values = _arrays(_frame("2024-01-01", 5, 1))
    with (
        open_symbol_features(paths, KEY) as features,
        pytest.raises(ValueError, match=r"`values` must be float64 of shape \(n_features, n_observations\) = \(3, 5\)"),
    ):
        features.append(dates, values.T.copy(), COLUMNS, {})


def test_append_dates_not_int64_raise_value_error(paths):
    dates, values = _arrays(_frame("2024-01-01", 5, 1))
    with (
        open_symbol_features(paths, KEY) as features,
        pytest.raises(ValueError, match="`dates` must be a 1-D int64 array of milliseconds"),
    ):
        features.append(dates.astype(float), values, COLUMNS, {})


def test_append_unsorted_dates_raise_value_error(paths):
    dates, values = _arrays(_frame("2024-01-01", 5, 1))
    with (
        open_symbol_features(paths, KEY) as features,
        pytest.raises(ValueError, match="`dates` must be strictly increasing"),
    ):
        features.append(dates[::-1].copy(), values, COLUMNS, {})


def test_open_symbol_features_corrupt_file_raises_lakehouse_read_error(paths):
    paths.features_dir.mkdir(parents=True)
    paths.features_file(KEY).write_bytes(b"not parquet")
    with (
        open_symbol_features(paths, KEY) as features,
        pytest.raises(LakehouseReadError, match="BINANCE_ETHUSDT.parquet"),
    ):
        features.stored()


def test_upsert_no_rows_without_file_writes_nothing(paths):
    result = upsert_symbol_features(paths, KEY, _frame("2024-01-01", 0, 1))
    assert (result.rows_written, result.changed) == (0, False)
    assert not paths.features_file(KEY).exists()


def test_copied_store_keeps_its_deltas_live(paths, tmp_path):
    """A copy has new inodes, so deltas no longer name their base's identity: the row offsets decide."""
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    appended = _append_days(paths, "2024-01-31", 2, seed=10)
    copy = LakehousePaths(tmp_path / "copy")
    shutil.copytree(paths.features_dir, copy.features_dir)
    expected = pd.concat([_frame("2024-01-01", 30, 1), appended], ignore_index=True)
    pd.testing.assert_frame_equal(read_features(copy, [KEY]), expected, check_exact=True)
    with open_symbol_features(copy, KEY) as features:
        assert features.stored().n_rows == 32 and features.stored().provenance == {"appends": 2}
    assert len(symbol_feature_files(copy, KEY)) == 3


def test_unreadable_delta_file_raises_lakehouse_read_error_naming_it(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    _append_days(paths, "2024-01-31", 2, seed=10)
    paths.features_delta_file(KEY, 2).write_bytes(b"PAR1 truncated")
    with pytest.raises(LakehouseReadError, match=r"BINANCE_ETHUSDT\.2\.parquet.*not a readable parquet file"):
        read_features(paths, [KEY])
    with (
        open_symbol_features(paths, KEY) as features,
        pytest.raises(LakehouseReadError, match=r"BINANCE_ETHUSDT\.2\.parquet"),
    ):
        features.stored()


def test_rewrite_replaces_every_row_and_removes_the_deltas(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    appended = _append_days(paths, "2024-01-31", 3, seed=10)
    whole = pd.concat([_frame("2024-01-01", 30, 1), appended, _frame("2024-02-03", 2, 20)], ignore_index=True)
    with open_symbol_features(paths, KEY) as features:
        assert not features.compaction_due
        result = features.rewrite(*_arrays(whole), COLUMNS, {"rewritten": True})
    assert (result.rows_written, result.rows_changed, result.changed) == (35, 2, True)
    assert _delta_count(paths) == 0
    pd.testing.assert_frame_equal(read_features(paths, [KEY]), whole, check_exact=True)
    with open_symbol_features(paths, KEY) as features:
        assert features.stored().provenance == {"rewritten": True}


def test_compaction_due_once_the_deltas_reach_the_limit(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    _append_days(paths, "2024-01-31", delta_limit(KEY) - 1, seed=10)
    with open_symbol_features(paths, KEY) as features:
        assert not features.compaction_due
    _append_days(paths, "2024-03-31", 1, seed=50)
    with open_symbol_features(paths, KEY) as features:
        assert features.compaction_due
