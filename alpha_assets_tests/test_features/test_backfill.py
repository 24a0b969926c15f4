"""backfill_features on a tmp lakehouse: per-symbol outcomes, isolation of failures, processes equal a single
process, the three paths of an update: skip (OHLCV bytes unchanged: only the provenance is read), append (new
bars only: the tail is computed and appended in one commit, stored rows stay bit-identical) and recompute (a
repaired bar, another feature version, rows without provenance), the compaction of the Delta table, and the
migration of a lakehouse still holding the per-symbol files of before the table."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from alpha_assets.errors import DiskFullError
from alpha_assets.features import backfill
from alpha_assets.features.backfill import SymbolStatus, backfill_features
from alpha_assets.features.matrix import compute_features, compute_features_many, compute_symbol_features
from alpha_assets.lakehouse import features_store
from alpha_assets.lakehouse.features_store import (
    features_table_version,
    read_features,
    upsert_symbol_features,
)
from alpha_assets.lakehouse.ohlcv import write_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths

KEYS = [f"BINANCE_S{i}USDT" for i in range(6)]


@pytest.fixture
def lakehouse(tmp_path, make_bars) -> LakehousePaths:
    paths = LakehousePaths(tmp_path)
    for i, key in enumerate(KEYS):
        write_ohlcv(paths, key, make_bars(100 + i, 260 + 10 * i))
    return paths


def test_backfill_writes_features_equal_to_direct_computation(lakehouse, make_bars):
    report = backfill_features(lakehouse, KEYS, workers=1)
    assert [s.status for s in report.symbols] == [SymbolStatus.WRITTEN] * len(KEYS)
    assert report.symbols[2].rows_written == 280 and report.symbols[2].rows_changed == 280
    assert report.symbols[2].last_date == make_bars(102, 280)["timestamp"].iat[-1]
    stored = read_features(lakehouse, [KEYS[2]])
    pd.testing.assert_frame_equal(stored, compute_symbol_features(make_bars(102, 280), KEYS[2]), check_exact=True)


def test_backfill_missing_and_failing_symbols_do_not_stop_the_others(lakehouse):
    lakehouse.ohlcv_file(KEYS[1]).write_bytes(b"garbage")
    report = backfill_features(lakehouse, ["BINANCE_NOPEUSDT", KEYS[0], KEYS[1], "../x", KEYS[2]], workers=1)
    status = {s.symbol_key: s for s in report.symbols}
    assert status["BINANCE_NOPEUSDT"].status is SymbolStatus.MISSING
    assert status[KEYS[1]].status is SymbolStatus.FAILED and "LakehouseReadError" in status[KEYS[1]].error
    assert status["../x"].status is SymbolStatus.FAILED and "UnsafeKeyError" in status["../x"].error
    assert status[KEYS[0]].status is status[KEYS[2]].status is SymbolStatus.WRITTEN
    assert {s.symbol_key for s in report.failed} == {KEYS[1], "../x"}
    assert [s.symbol_key for s in report.missing] == ["BINANCE_NOPEUSDT"]


def test_backfill_full_disk_stops_with_disk_full_error_instead_of_failing_each_symbol(lakehouse, monkeypatch):
    def full(*args: object, **kwargs: object) -> None:
        # How delta-rs words the OS error of a full disk.
        raise DeltaError("Failed to write parquet: No space left on device (os error 28)")

    monkeypatch.setattr(features_store, "write_deltalake", full)
    with pytest.raises(DiskFullError, match="disk full: no space left on the file system holding .*features_matrix"):
        backfill_features(lakehouse, KEYS, workers=1)
    monkeypatch.undo()
    assert features_table_version(lakehouse) is None


def test_backfill_processes_give_the_same_files_as_one_process(lakehouse, tmp_path, make_bars):
    single = backfill_features(lakehouse, KEYS, workers=1)
    other = LakehousePaths(tmp_path / "other")
    for i, key in enumerate(KEYS):
        write_ohlcv(other, key, make_bars(100 + i, 260 + 10 * i))
    parallel = backfill_features(other, KEYS, workers=2)
    assert parallel.workers == 2
    assert [s.to_json_dict() for s in parallel.symbols] == [s.to_json_dict() for s in single.symbols]
    pd.testing.assert_frame_equal(read_features(other, KEYS), read_features(lakehouse, KEYS), check_exact=True)


def test_backfill_rerun_without_new_bars_writes_nothing(lakehouse):
    backfill_features(lakehouse, KEYS, workers=1)
    report = backfill_features(lakehouse, KEYS, workers=1)
    assert {s.status for s in report.symbols} == {SymbolStatus.UNCHANGED} and report.rows_changed == 0


def test_backfill_one_new_day_changes_exactly_one_row_per_symbol(lakehouse, make_bars):
    bars = make_bars(100, 261)
    write_ohlcv(lakehouse, KEYS[0], bars.iloc[:260])
    backfill_features(lakehouse, KEYS[:2], workers=1)
    before = read_features(lakehouse, [KEYS[0]])
    write_ohlcv(lakehouse, KEYS[0], bars)  # the next day's bar arrives
    report = backfill_features(lakehouse, KEYS[:2], workers=1)
    assert (report.symbols[0].rows_changed, report.symbols[0].rows_written) == (1, 261)
    assert report.symbols[1].status is SymbolStatus.UNCHANGED
    after = read_features(lakehouse, [KEYS[0]])
    pd.testing.assert_frame_equal(after.iloc[:260], before, check_exact=True)


@pytest.mark.parametrize(("other_days", "status"), [(1, SymbolStatus.WRITTEN), (2, SymbolStatus.UNCHANGED)])
def test_backfill_overtaken_by_another_writers_append_plans_again_and_stores_each_row_once(
    lakehouse, make_bars, monkeypatch, other_days, status
):
    """Planned on 260 stored rows to append two days; another writer stores ``other_days`` before the commit."""
    bars = make_bars(100, 262)
    write_ohlcv(lakehouse, KEYS[0], bars.iloc[:260])
    backfill_features(lakehouse, KEYS[:1], workers=1)
    planned_on = backfill.stored_features(lakehouse, KEYS[:1])
    write_ohlcv(lakehouse, KEYS[0], bars.iloc[: 260 + other_days])
    backfill_features(lakehouse, KEYS[:1], workers=1)  # the other writer commits first
    write_ohlcv(lakehouse, KEYS[0], bars)
    reads = []

    def first_read_before_the_other_commit(paths, keys):
        reads.append(list(keys))
        return planned_on if len(reads) == 1 else features_store.stored_features(paths, keys)

    monkeypatch.setattr(backfill, "stored_features", first_read_before_the_other_commit)
    report = backfill_features(lakehouse, KEYS[:1], workers=1)
    assert report.failed == () and report.symbols[0].status is status
    assert reads == [KEYS[:1], KEYS[:1]], "planned again once, on the rows stored at the commit"
    stored = read_features(lakehouse, KEYS[:1])
    pd.testing.assert_frame_equal(stored, compute_symbol_features(bars, KEYS[0]), check_exact=True)


def test_backfill_duplicate_keys_are_done_once(lakehouse):
    report = backfill_features(lakehouse, [KEYS[0], KEYS[0]], workers=1)
    assert len(report.symbols) == 1


def test_backfill_single_str_scope_raises_type_error(lakehouse):
    with pytest.raises(TypeError, match="`symbol_keys` must be a sequence of symbol keys, got the single str"):
        backfill_features(lakehouse, KEYS[0])


@pytest.mark.parametrize("workers", [0, -1, 1.5], ids=["zero", "negative", "float"])
def test_backfill_bad_workers_raises_value_error(lakehouse, workers):
    with pytest.raises(ValueError, match="`workers` must be a positive integer or None"):
        backfill_features(lakehouse, KEYS, workers=workers)


@pytest.fixture
def starts(monkeypatch) -> list[int]:
    """The ``start`` of every symbol the backfill computes (0 = full recompute), batched or not."""
    calls: list[int] = []

    def spy(*args, start=0, **kwargs):
        calls.append(start)
        return compute_features(*args, start=start, **kwargs)

    def spy_many(series, starts, **kwargs):
        calls.extend(starts)
        return compute_features_many(series, starts, **kwargs)

    monkeypatch.setattr(backfill, "compute_features", spy)
    monkeypatch.setattr(backfill, "compute_features_many", spy_many)
    return calls


def test_backfill_unchanged_ohlcv_reads_only_the_provenance_and_writes_nothing(lakehouse, monkeypatch, starts):
    backfill_features(lakehouse, KEYS[:2], workers=1)
    version = features_table_version(lakehouse)

    def fail(*args, **kwargs):
        raise AssertionError("the OHLCV file must not be parsed when its bytes did not change")

    monkeypatch.setattr(backfill, "parse_parquet_bytes", fail)
    report = backfill_features(lakehouse, KEYS[:2], workers=1)
    assert [s.status for s in report.symbols] == [SymbolStatus.UNCHANGED] * 2
    assert report.symbols[0].last_date == pd.Timestamp("2019-01-01", tz="UTC") + pd.Timedelta(days=259)
    assert features_table_version(lakehouse) == version  # no commit
    assert starts == [0, 0]  # the first run only


@pytest.mark.parametrize("new_days", [1, 5], ids=["one_day", "five_days"])
def test_backfill_new_bars_append_the_tail_equal_to_full_computation(lakehouse, make_bars, starts, new_days):
    bars = make_bars(100, 300)
    write_ohlcv(lakehouse, KEYS[0], bars.iloc[:290])
    backfill_features(lakehouse, [KEYS[0]], workers=1)
    before = read_features(lakehouse, [KEYS[0]])
    write_ohlcv(lakehouse, KEYS[0], bars.iloc[: 290 + new_days])
    report = backfill_features(lakehouse, [KEYS[0]], workers=1)
    assert starts == [0, 290]
    assert (report.symbols[0].rows_changed, report.symbols[0].rows_written) == (new_days, 290 + new_days)
    after = read_features(lakehouse, [KEYS[0]])
    pd.testing.assert_frame_equal(after.iloc[:290], before, check_exact=True)
    expected = compute_symbol_features(bars.iloc[: 290 + new_days], KEYS[0])
    pd.testing.assert_frame_equal(after, expected, check_exact=True)


def test_backfill_daily_updates_through_a_compaction_equal_the_full_computation(
    lakehouse, make_bars, starts, monkeypatch
):
    """Day after day, one commit a day appends the tail; the table is compacted when it holds too many files, and
    a repaired bar rewrites the symbol; the stored rows always equal the direct computation."""
    monkeypatch.setattr(features_store, "MAX_TABLE_FILES", 6)
    bars = make_bars(100, 300)
    first = 290
    write_ohlcv(lakehouse, KEYS[0], bars.iloc[:first])
    backfill_features(lakehouse, [KEYS[0]], workers=1)
    versions = [features_table_version(lakehouse)]
    for n_bars in range(first + 1, 301):
        write_ohlcv(lakehouse, KEYS[0], bars.iloc[:n_bars])
        report = backfill_features(lakehouse, [KEYS[0]], workers=1)
        assert (report.symbols[0].rows_changed, report.symbols[0].rows_written) == (1, n_bars)
        versions.append(features_table_version(lakehouse))
    assert starts == [0, *range(first, 300)]  # only the first run computed every row
    operations = [entry["operation"] for entry in DeltaTable(lakehouse.features_table_uri).history()]
    assert "OPTIMIZE" in operations and len(DeltaTable(lakehouse.features_table_uri).file_uris()) <= 6
    expected = compute_symbol_features(bars, KEYS[0])
    pd.testing.assert_frame_equal(read_features(lakehouse, [KEYS[0]]), expected, check_exact=True)

    repaired = bars.copy()
    repaired.loc[150, ["high", "close"]] *= 1.02
    write_ohlcv(lakehouse, KEYS[0], repaired)
    backfill_features(lakehouse, [KEYS[0]], workers=1)
    expected = compute_symbol_features(repaired, KEYS[0])
    pd.testing.assert_frame_equal(read_features(lakehouse, [KEYS[0]]), expected, check_exact=True)


def test_backfill_repaired_bar_mid_history_recomputes_and_rewrites_changed_rows(lakehouse, make_bars, starts):
    bars = make_bars(100, 260)
    backfill_features(lakehouse, [KEYS[0]], workers=1)
    before = read_features(lakehouse, [KEYS[0]])
    repaired = bars.copy()
    repaired.loc[150, ["high", "close"]] *= 1.02  # a corrected print inside the history, no new bar
    write_ohlcv(lakehouse, KEYS[0], repaired)
    report = backfill_features(lakehouse, [KEYS[0]], workers=1)
    assert starts == [0, 0]
    after = read_features(lakehouse, [KEYS[0]])
    pd.testing.assert_frame_equal(after, compute_symbol_features(repaired, KEYS[0]), check_exact=True)
    new, old = after.iloc[:, 2:], before.iloc[:, 2:]
    differs = ~((new == old) | (new.isna() & old.isna())).all(axis=1)
    assert not differs.iloc[:150].any() and differs.iloc[150]
    assert report.symbols[0].rows_changed == int(differs.sum())


def test_backfill_new_feature_version_recomputes_every_symbol(lakehouse, monkeypatch, starts):
    backfill_features(lakehouse, KEYS[:2], workers=1)
    monkeypatch.setattr(backfill, "FEATURES_VERSION", backfill.FEATURES_VERSION + 1)
    report = backfill_features(lakehouse, KEYS[:2], workers=1)
    assert starts == [0, 0, 0, 0]
    # Same formulas here, so no row changes, but the files now record the new version.
    assert [(s.status, s.rows_changed) for s in report.symbols] == [(SymbolStatus.WRITTEN, 0)] * 2
    assert {s.status for s in backfill_features(lakehouse, KEYS[:2], workers=1).symbols} == {SymbolStatus.UNCHANGED}


def test_backfill_file_without_provenance_is_recomputed_then_skipped(lakehouse, make_bars, starts):
    upsert_symbol_features(lakehouse, KEYS[0], compute_symbol_features(make_bars(100, 260), KEYS[0]))
    report = backfill_features(lakehouse, [KEYS[0]], workers=1)
    assert (report.symbols[0].status, report.symbols[0].rows_changed) == (SymbolStatus.WRITTEN, 0)
    assert backfill_features(lakehouse, [KEYS[0]], workers=1).symbols[0].status is SymbolStatus.UNCHANGED
    assert starts == [0]


def test_backfill_ohlcv_rewritten_with_same_bars_updates_provenance_only(lakehouse, make_bars, starts):
    backfill_features(lakehouse, [KEYS[0]], workers=1)
    bars = make_bars(100, 260)
    # ``open`` is not a feature input: the file's bytes change, the bars the features read do not.
    bars.loc[10, "open"] = bars.loc[10, "low"]
    write_ohlcv(lakehouse, KEYS[0], bars)
    report = backfill_features(lakehouse, [KEYS[0]], workers=1)
    assert (report.symbols[0].status, report.symbols[0].rows_changed) == (SymbolStatus.WRITTEN, 0)
    assert starts == [0, 260]
    assert backfill_features(lakehouse, [KEYS[0]], workers=1).symbols[0].status is SymbolStatus.UNCHANGED


def test_backfill_table_read_by_duckdb_delta_scan_after_append(lakehouse, make_bars):
    from alpha_assets.lakehouse.duckdb_views import load_delta_extension

    backfill_features(lakehouse, KEYS[:3], workers=1)
    write_ohlcv(lakehouse, KEYS[0], make_bars(100, 261))
    backfill_features(lakehouse, KEYS[:3], workers=1)
    with duckdb.connect() as connection:
        load_delta_extension(connection)
        counts = connection.execute(
            f"SELECT symbol, count(*), count(DISTINCT date) FROM delta_scan('{lakehouse.features_table_uri}') "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert counts == [(KEYS[0], 261, 261), (KEYS[1], 270, 270), (KEYS[2], 280, 280)]


def test_backfill_migrates_a_lakehouse_in_the_per_symbol_layout(lakehouse, make_bars):
    """The files of before the Delta table: their symbols are recomputed into the table (equal rows), even those
    outside the scope, and the directory is moved to lakehouse/_legacy/ (kept)."""
    legacy = lakehouse.legacy_features_dir
    legacy.mkdir(parents=True)
    old_rows = {}
    for key in KEYS[:3]:
        frame = compute_symbol_features(make_bars(100 + KEYS.index(key), 260 + 10 * KEYS.index(key)), key)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table, legacy / f"{key}.parquet")
        old_rows[key] = frame
    (legacy / f"{KEYS[0]}.1.parquet").write_bytes(b"a delta file of the old layout")
    with pytest.raises(Exception, match="per-symbol feature files of before the Delta table"):
        read_features(lakehouse, [KEYS[0]])
    report = backfill_features(lakehouse, [KEYS[0]], workers=1)
    assert [s.symbol_key for s in report.migrated] == KEYS[1:3]
    assert {s.status for s in (*report.symbols, *report.migrated)} == {SymbolStatus.WRITTEN}
    for key, frame in old_rows.items():
        pd.testing.assert_frame_equal(read_features(lakehouse, [key]), frame, check_exact=True)
    assert not legacy.exists()
    [archived] = lakehouse.legacy_archive_dir.iterdir()
    assert sorted(p.name for p in archived.iterdir()) == sorted(
        [f"{k}.parquet" for k in KEYS[:3]] + [f"{KEYS[0]}.1.parquet"]
    )


def test_backfill_annualises_each_symbol_with_its_calendar_and_recomputes_when_it_changes(lakehouse, make_bars):
    from alpha_assets.lakehouse.symbols import upsert_symbol_metadata

    record = {
        "exchange": "BINANCE",
        "ccxt_symbol": "S1/USDT",
        "base": "S1",
        "quote": "USDT",
        "market_type": "spot",
        "sector": None,
        "tick_size": None,
        "lot_size": None,
        "min_notional": None,
        "status": "active",
        "first_bar": None,
        "last_bar": None,
    }
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    upsert_symbol_metadata(lakehouse, KEYS[1], {**record, "symbol_key": KEYS[1], "calendar": "XNYS"}, now=t0)
    backfill_features(lakehouse, KEYS[:3], workers=1)
    stored = read_features(lakehouse, KEYS[:3]).set_index(["symbol", "date"])["volatility_60d"]
    for i, periods in ((0, 365.0), (1, 252.0), (2, 365.0)):  # no metadata: the exchange's calendar (crypto)
        bars = make_bars(100 + i, 260 + 10 * i)
        expected = compute_symbol_features(bars, KEYS[i], periods_per_year=periods)["volatility_60d"].to_numpy()
        assert stored.loc[KEYS[i]].to_numpy() == pytest.approx(expected, rel=1e-12, nan_ok=True)
    # The calendar changes: the symbol is recomputed with the new factor, the others are left alone.
    upsert_symbol_metadata(
        lakehouse, KEYS[1], {**record, "symbol_key": KEYS[1], "calendar": "24/7"}, now=t0 + pd.Timedelta(1, "D")
    )
    report = backfill_features(lakehouse, KEYS[:3], workers=1)
    assert [s.status for s in report.symbols] == [SymbolStatus.UNCHANGED, SymbolStatus.WRITTEN, SymbolStatus.UNCHANGED]
