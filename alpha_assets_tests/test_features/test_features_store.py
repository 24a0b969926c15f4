"""lakehouse.features_store on a tmp lakehouse: the features_matrix Delta table and its provenance table.

New-wins merge, commit only on change, appends that keep stored rows bit for bit and replace rather than duplicate,
one commit for several symbols, time travel to a recorded version (what a RUN_ID freezes), vacuum keeping the
versions frozen runs recorded, two processes writing the same symbol, a writer killed mid-commit, the migration
refusal for a lakehouse still in the per-symbol layout, and input validation.

Lives with the feature tests because the store is part of the feature backfill; it touches only tmp_path.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse import features_store
from alpha_assets.lakehouse.features_store import (
    FeatureRows,
    features_schema,
    features_table_version,
    frozen_table_versions,
    last_feature_date,
    maintain_features_table,
    read_features,
    read_features_asof,
    stored_features,
    upsert_symbol_features,
    write_features,
)
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


def _rows(frame: pd.DataFrame, provenance: dict | None, *, append: bool) -> FeatureRows:
    dates = pd.DatetimeIndex(frame["date"]).as_unit("ms").asi8
    values = np.ascontiguousarray(frame[list(COLUMNS)].to_numpy().T)
    return FeatureRows(str(frame["symbol"].iat[0]), dates, values, provenance, append=append)


@pytest.fixture
def paths(tmp_path) -> LakehousePaths:
    return LakehousePaths(tmp_path)


def test_upsert_new_symbol_writes_every_row(paths):
    result = upsert_symbol_features(paths, KEY, _frame("2024-01-01", 50, 1))
    assert (result.rows_written, result.rows_changed, result.changed) == (50, 50, True)
    stored = read_features(paths, [KEY])
    pd.testing.assert_frame_equal(stored, _frame("2024-01-01", 50, 1), check_exact=True)
    # A real Delta table, readable by delta-rs without our code.
    table = DeltaTable(paths.features_table_uri)
    assert [f.name for f in table.schema().fields] == features_schema(COLUMNS).names


def test_upsert_same_rows_commits_nothing(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 50, 1))
    version = features_table_version(paths)
    result = upsert_symbol_features(paths, KEY, _frame("2024-01-01", 50, 1))
    assert (result.rows_written, result.rows_changed, result.changed) == (0, 0, False)
    assert features_table_version(paths) == version


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


def test_upsert_other_feature_columns_raise_value_error_naming_the_table(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    renamed = _frame("2024-02-01", 5, 2).rename(columns={"gamma": "delta"})
    with pytest.raises(ValueError, match="`feature_columns` must equal the columns of .*features_matrix"):
        upsert_symbol_features(paths, KEY, renamed)


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


def _hammer(root: str, offset: int) -> None:
    paths = LakehousePaths(root)
    for i in range(12):
        upsert_symbol_features(
            paths,
            KEY,
            _frame(str(pd.Timestamp("2024-01-01") + pd.Timedelta(days=offset + 3 * i)), 10, seed=offset + i),
        )


def test_upsert_concurrent_processes_never_lose_or_duplicate_rows(paths):
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(str(paths.root), offset)) for offset in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
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


def test_read_features_asof_latest_row_not_after_cutoff_and_the_version_read(paths):
    upsert_symbol_features(paths, "BINANCE_AAA", _frame("2024-01-01", 10, 1, "BINANCE_AAA"))
    upsert_symbol_features(paths, "BINANCE_BBB", _frame("2024-01-08", 10, 2, "BINANCE_BBB"))
    # CCC's last row is older than the as-of window: found by the unbounded second read.
    upsert_symbol_features(paths, "BINANCE_CCC", _frame("2023-06-01", 5, 3, "BINANCE_CCC"))
    as_of = pd.Timestamp("2024-01-05 12:00", tz="UTC")
    rows, version = read_features_asof(paths, ["BINANCE_AAA", "BINANCE_BBB", "BINANCE_CCC"], as_of)
    assert version == features_table_version(paths) == 3  # version 0 is the empty table's creation
    assert rows.column("symbol").to_pylist() == ["BINANCE_AAA", "BINANCE_CCC"]  # BBB starts after as_of
    frame = rows.to_pandas()
    assert frame["date"].tolist() == [pd.Timestamp("2024-01-05", tz="UTC"), pd.Timestamp("2023-06-05", tz="UTC")]
    assert rows.schema.field("date").type == features_schema(COLUMNS).field("date").type
    expected = _frame("2024-01-01", 10, 1, "BINANCE_AAA").iloc[4]
    np.testing.assert_array_equal(frame.iloc[0][list(COLUMNS)].to_numpy(float), expected[list(COLUMNS)].to_numpy(float))


def test_read_features_asof_at_a_recorded_version_ignores_later_commits(paths):
    """What a RUN_ID records: the rows of that version come back after appends, merges and a compaction."""
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    as_of = pd.Timestamp("2024-02-15", tz="UTC")
    frozen, version = read_features_asof(paths, [KEY], as_of)
    changed = _frame("2024-01-01", 60, 9)  # every row rewritten, 30 more
    upsert_symbol_features(paths, KEY, changed)
    maintain_features_table(paths, force=True)
    assert not read_features_asof(paths, [KEY], as_of)[0].equals(frozen)
    again, same_version = read_features_asof(paths, [KEY], as_of, version=version)
    assert same_version == version and again.equals(frozen)


def _freeze(paths: LakehousePaths, run_id: str, version: int) -> None:
    path = paths.run_data_file(run_id, "snapshot.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run_id": run_id, "features_table_version": version}))


def test_vacuum_keeps_the_versions_frozen_runs_recorded(paths, monkeypatch):
    monkeypatch.setattr(features_store, "VACUUM_RETENTION_HOURS", 0)
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    kept = features_table_version(paths)
    _freeze(paths, "RUN_KEPT", kept)
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 2))
    lost = features_table_version(paths)
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 3))
    assert frozen_table_versions(paths) == [kept]
    report = maintain_features_table(paths, force=True)
    assert report["kept_versions"] == [kept] and report["vacuumed"] >= 1
    pd.testing.assert_frame_equal(read_features(paths, [KEY], version=kept), _frame("2024-01-01", 30, 1))
    with pytest.raises(LakehouseReadError, match="features_matrix"):
        read_features(paths, [KEY], version=lost)  # its files are gone: only recorded versions are kept


def test_write_features_several_symbols_is_one_commit(paths):
    first = [_rows(_frame("2024-01-01", 20, i, f"BINANCE_S{i}"), {"n": 20}, append=True) for i in range(5)]
    write_features(paths, first, COLUMNS)
    version = features_table_version(paths)
    day = [_rows(_frame("2024-01-21", 1, 10 + i, f"BINANCE_S{i}"), {"n": 21}, append=True) for i in range(5)]
    results = write_features(paths, day, COLUMNS)
    assert {r.rows_changed for r in results.values()} == {1} and {r.rows_written for r in results.values()} == {21}
    assert features_table_version(paths) == version + 1
    history = DeltaTable(paths.features_table_uri).history(1)[0]
    assert history["operationMetrics"]["num_added_rows"] == 5
    assert {k: v.provenance for k, v in stored_features(paths, [f"BINANCE_S{i}" for i in range(5)]).items()} == {
        f"BINANCE_S{i}": {"n": 21} for i in range(5)
    }


def test_append_after_a_lost_provenance_commit_replaces_instead_of_duplicating(paths, monkeypatch):
    """A writer stopped between the rows' commit and the provenance's: the next append finds its rows again."""
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 10, 1))
    day = _frame("2024-01-11", 1, 5)
    monkeypatch.setattr(features_store, "_commit_provenance", lambda *args: None)
    write_features(paths, [_rows(day, {"n": 11}, append=True)], COLUMNS)
    monkeypatch.undo()
    assert stored_features(paths, [KEY])[KEY].n_rows == 10  # the record lags behind the rows
    write_features(paths, [_rows(day, {"n": 11}, append=True)], COLUMNS)
    stored = read_features(paths, [KEY])
    assert stored["date"].is_unique and len(stored) == 11
    assert stored_features(paths, [KEY])[KEY].n_rows == 11


def _append_forever(root: str) -> None:
    paths = LakehousePaths(root)
    for i in range(10_000):
        frame = _frame(str(pd.Timestamp("2025-01-01") + pd.Timedelta(days=i))[:10], 1, i)
        write_features(paths, [_rows(frame, {"n": i}, append=True)], COLUMNS)


def test_writer_killed_mid_commit_leaves_whole_versions_only(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 30, 1))
    writer = multiprocessing.get_context("spawn").Process(target=_append_forever, args=(str(paths.root),))
    writer.start()
    try:
        deadline = pd.Timestamp.now() + pd.Timedelta(seconds=60)
        while (features_table_version(paths) or 0) < 4 and pd.Timestamp.now() < deadline:
            pass
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(10)
    stored = read_features(paths, [KEY])
    assert features_table_version(paths) >= 4
    assert stored["date"].is_unique and stored["date"].is_monotonic_increasing
    # Version 0 creates the table empty, version 1 holds the first 30 rows and each later version one day:
    # nothing of the killed commit shows.
    appended = stored["date"].iloc[30:]
    assert len(appended) == features_table_version(paths) - 1
    assert list(appended) == list(pd.date_range("2025-01-01", periods=len(appended), tz="UTC"))
    # The next writer carries on from the rows the table holds.
    next_day = stored["date"].iat[-1] + pd.Timedelta(days=1)
    write_features(paths, [_rows(_frame(str(next_day)[:10], 1, 99), {"n": -1}, append=True)], COLUMNS)
    assert read_features(paths, [KEY])["date"].is_unique


def test_last_feature_date_none_without_rows_else_max_date(paths):
    assert last_feature_date(paths, KEY) is None
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 10, 1))
    assert last_feature_date(paths, KEY) == pd.Timestamp("2024-01-10", tz="UTC")


def test_legacy_layout_is_refused_with_a_message_until_migrated(paths):
    paths.legacy_features_dir.mkdir(parents=True)
    (paths.legacy_features_dir / f"{KEY}.parquet").write_bytes(b"PAR1")
    with pytest.raises(LakehouseReadError, match="per-symbol feature files of before the Delta table.*backfill"):
        read_features(paths, [KEY])


def test_unreadable_table_raises_lakehouse_read_error(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 10, 1))
    for data_file in paths.features_table_dir.glob("*.parquet"):
        data_file.write_bytes(b"PAR1 truncated")
    with pytest.raises(LakehouseReadError, match="features_matrix"):
        read_features(paths, [KEY])


def test_append_date_not_after_last_stored_raises_value_error(paths):
    upsert_symbol_features(paths, KEY, _frame("2024-01-01", 10, 1))
    with pytest.raises(ValueError, match="`dates` must all be after the last stored date of BINANCE_ETHUSDT"):
        write_features(paths, [_rows(_frame("2024-01-10", 2, 2), {}, append=True)], COLUMNS)


def test_write_features_repeated_symbol_raises_value_error(paths):
    rows = _rows(_frame("2024-01-01", 2, 2), {}, append=True)
    with pytest.raises(ValueError, match="`rows` must hold one entry per symbol"):
        write_features(paths, [rows, rows], COLUMNS)


def test_write_features_values_of_wrong_shape_raise_value_error(paths):
    rows = _rows(_frame("2024-01-01", 4, 2), {}, append=True)
    bad = FeatureRows(rows.symbol_key, rows.dates, rows.values[:, :2], None, append=True)
    with pytest.raises(ValueError, match=r"`values` must be float64 of shape \(n_features, n_observations\)"):
        write_features(paths, [bad], COLUMNS)
