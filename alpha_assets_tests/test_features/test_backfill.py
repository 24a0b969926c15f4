"""backfill_features on a tmp lakehouse: per-symbol outcomes, isolation of failures, processes equal a single
process, and the incremental one-day update that changes exactly the new row."""

from __future__ import annotations

import pandas as pd
import pytest

from alpha_assets.features.backfill import SymbolStatus, backfill_features
from alpha_assets.features.matrix import compute_symbol_features
from alpha_assets.lakehouse.features_store import read_features
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
    pd.testing.assert_frame_equal(
        stored, compute_symbol_features(make_bars(102, 280), KEYS[2]), check_exact=True
    )


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


def test_backfill_processes_give_the_same_files_as_one_process(lakehouse, tmp_path, make_bars):
    single = backfill_features(lakehouse, KEYS, workers=1)
    other = LakehousePaths(tmp_path / "other")
    for i, key in enumerate(KEYS):
        write_ohlcv(other, key, make_bars(100 + i, 260 + 10 * i))
    parallel = backfill_features(other, KEYS, workers=2)
    assert parallel.workers == 2
    assert [s.to_json_dict() for s in parallel.symbols] == [s.to_json_dict() for s in single.symbols]
    pd.testing.assert_frame_equal(
        read_features(other, KEYS), read_features(lakehouse, KEYS), check_exact=True
    )


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


def test_backfill_duplicate_keys_are_done_once(lakehouse):
    report = backfill_features(lakehouse, [KEYS[0], KEYS[0]], workers=1)
    assert len(report.symbols) == 1


def test_backfill_single_str_scope_raises_type_error(lakehouse):
    with pytest.raises(
        TypeError, match="`symbol_keys` must be a sequence of symbol keys, got the single str"
    ):
        backfill_features(lakehouse, KEYS[0])


@pytest.mark.parametrize("workers", [0, -1, 1.5], ids=["zero", "negative", "float"])
def test_backfill_bad_workers_raises_value_error(lakehouse, workers):
    with pytest.raises(ValueError, match="`workers` must be a positive integer or None"):
        backfill_features(lakehouse, KEYS, workers=workers)
