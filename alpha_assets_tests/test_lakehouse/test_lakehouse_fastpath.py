"""The array fast paths of the lakehouse: BarArrays, clean/merge/gaps on arrays, single-threaded reads,
OHLCV and symbol files written without pandas, and the audit of a file of exactly OHLCV_SCHEMA.

Each fast path is checked against the pandas implementation it replaced (kept here as the reference) on
seeded random batches with every kind of bad row, duplicates and shuffled order, or against the general path
of the same module on the same file. Leaves the ingestion that calls them to test_sources.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alpha_assets.dataops.audit.engine import AuditParams, audit_bars, audit_symbol_file
from alpha_assets.dataops.audit.records import Verdict
from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.ohlcv import (
    OHLCV_COLUMNS,
    VALUE_COLUMNS,
    BarArrays,
    clean_bar_arrays,
    clean_bars,
    find_bar_gaps,
    find_gaps,
    merge_bar_arrays,
    read_ohlcv,
    read_ohlcv_arrays,
    write_ohlcv,
    write_ohlcv_arrays,
)
from alpha_assets.lakehouse.parquet import read_table, write_table_atomic
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA, SYMBOLS_SCHEMA
from alpha_assets.lakehouse.symbols import read_symbol_history, upsert_symbol_metadata

KEY = "BINANCE_BTCUSDT"
NOW = pd.Timestamp("2024-07-01T06:00", tz="UTC")


def _walk(seed: int, n_bars: int, last_day: str = "2024-06-30") -> pd.DataFrame:
    """Closed daily bars of a seeded random walk with t-distributed returns, UTC midnight timestamps."""
    rng = np.random.default_rng(seed)
    close = 40.0 * np.exp(np.cumsum(rng.standard_t(4, n_bars) * 0.03))
    open_ = np.concatenate(([40.0], close[:-1]))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(end=last_day, periods=n_bars, freq="D", tz="UTC").astype("datetime64[ms, UTC]"),
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n_bars))),
            "low": np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n_bars))),
            "close": close,
            "volume": np.exp(rng.normal(12.0, 0.5, n_bars)),
        }
    )


def _messy_batch(seed: int) -> pd.DataFrame:
    """A shuffled batch of 200 rows: clean bars, every kind of bad row, future bars and duplicates."""
    rng = np.random.default_rng(seed)
    frame = _walk(seed, 200)
    rows = rng.choice(200, size=60, replace=False)
    kinds = rng.integers(0, 9, size=60)
    ts = frame["timestamp"].copy()
    for row, kind in zip(rows, kinds, strict=True):
        if kind == 0:
            ts.iat[row] = pd.NaT
        elif kind == 1:
            frame.iat[row, 1 + int(rng.integers(0, 5))] = rng.choice([np.nan, np.inf, -np.inf])
        elif kind == 2:
            frame.iat[row, 1 + int(rng.integers(0, 4))] = -abs(frame.iat[row, 4])
        elif kind == 3:
            frame.iat[row, 5] = -1.0
        elif kind == 4:
            frame.iloc[row, [2, 3]] = frame.iloc[row, [3, 2]].to_numpy()
        elif kind == 5:
            frame.iat[row, 1] = frame.iat[row, 2] * 1.5
        elif kind == 6:
            ts.iat[row] = ts.iat[row] + pd.Timedelta(hours=int(rng.integers(1, 23)))
        elif kind == 7:
            ts.iat[row] = NOW.floor("D") + pd.Timedelta(days=int(rng.integers(0, 3)))
        else:
            ts.iat[row] = ts.iat[int(rng.integers(0, 200))]  # a duplicate of another row's time
    frame["timestamp"] = ts
    return frame.iloc[rng.permutation(200)].reset_index(drop=True)


def _reference_clean(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str | None]]]:
    """The pandas clean_bars this module replaced: bars, then (reason, timestamp) per quarantined row."""
    frame = frame.loc[:, list(OHLCV_COLUMNS)].copy()
    frame["timestamp"] = frame["timestamp"].dt.tz_convert("UTC").astype("datetime64[ms, UTC]")
    values = frame[list(VALUE_COLUMNS)].to_numpy(dtype="float64", na_value=np.nan)
    open_, high, low, close, volume = values.T
    reasons = np.full(len(frame), "", dtype=object)
    today = NOW.floor("D")
    rules = (
        (frame["timestamp"].isna().to_numpy(), "missing or malformed timestamp"),
        (~np.isfinite(values).all(axis=1), "null, NaN or infinite value"),
        ((values[:, :4] <= 0).any(axis=1), "price <= 0"),
        (volume < 0, "negative volume"),
        (high < low, "high < low"),
        ((low > np.minimum(open_, close)) | (high < np.maximum(open_, close)), "open or close outside [low, high]"),
        ((frame["timestamp"] != frame["timestamp"].dt.floor("D")).to_numpy(), "daily bar not opening at 00:00 UTC"),
        ((frame["timestamp"] >= today).to_numpy(), "bar not closed yet or in the future"),
    )
    for mask, reason in rules:
        reasons[mask & (reasons == "")] = reason
    bad = reasons != ""
    records = [
        (str(reasons[i]), None if pd.isna(frame["timestamp"].iat[i]) else frame["timestamp"].iat[i].isoformat())
        for i in np.flatnonzero(bad)
    ]
    good = frame.loc[~bad]
    duplicated = good["timestamp"].duplicated(keep="last").to_numpy()
    records += [("duplicate timestamp (later row kept)", t.isoformat()) for t in good["timestamp"][duplicated]]
    bars = good.loc[~duplicated].sort_values("timestamp", kind="stable").reset_index(drop=True)
    return bars, records


def _reference_merge(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The pandas merge_bars this module replaced."""
    combined = pd.concat([stored, new], ignore_index=True) if not stored.empty else new
    combined = combined.drop_duplicates("timestamp", keep="last")
    return combined.sort_values("timestamp", kind="stable").reset_index(drop=True)


@pytest.fixture
def fast_lake(tmp_path) -> LakehousePaths:
    return LakehousePaths(tmp_path / "data")


# --- BarArrays -------------------------------------------------------------------------------------------


def test_bar_arrays_frame_and_table_round_trip_exactly() -> None:
    frame = _walk(1, 50)
    bars = BarArrays.from_frame(frame)
    assert bars.timestamps.dtype == np.int64 and bars.values.shape == (50, 5)
    pd.testing.assert_frame_equal(bars.to_frame(), frame)
    table = bars.to_table()
    assert table.schema.equals(OHLCV_SCHEMA)
    restored = BarArrays.from_table(table)
    np.testing.assert_array_equal(restored.timestamps, bars.timestamps)
    np.testing.assert_array_equal(restored.values, bars.values)


def test_bar_arrays_to_frame_owns_its_data() -> None:
    bars = BarArrays.from_frame(_walk(2, 5))
    before = bars.values.copy()
    frame = bars.to_frame()
    frame.loc[0, "close"] = -1.0
    np.testing.assert_array_equal(bars.values, before)


@pytest.mark.parametrize(
    ("timestamps", "values", "error", "match"),
    [
        (np.zeros(3), np.zeros((3, 5)), TypeError, r"`timestamps` must be a numpy array of dtype int64, got float64"),
        ([0, 1, 2], np.zeros((3, 5)), TypeError, r"`timestamps` must be a numpy array of dtype int64, got list"),
        (
            np.zeros(3, dtype=np.int64),
            np.zeros((3, 5), dtype=np.float32),
            TypeError,
            r"`values` must be a numpy array of dtype float64, got float32",
        ),
        (
            np.zeros((3, 1), dtype=np.int64),
            np.zeros((3, 5)),
            ValueError,
            r"`timestamps` must be 1-D \(n_observations,\), got shape \(3, 1\)",
        ),
        (
            np.zeros(3, dtype=np.int64),
            np.zeros((3, 4)),
            ValueError,
            r"`values` must have shape \(n_observations, 5\) = \(3, 5\), got shape \(3, 4\)",
        ),
    ],
    ids=["float-timestamps", "list-timestamps", "float32-values", "2d-timestamps", "four-columns"],
)
def test_bar_arrays_invalid_arrays_raise(timestamps, values, error, match) -> None:
    with pytest.raises(error, match=match):
        BarArrays(timestamps, values)


def test_bar_arrays_from_frame_and_table_refuse_other_shapes() -> None:
    naive = _walk(3, 4)
    naive["timestamp"] = naive["timestamp"].dt.tz_localize(None)
    with pytest.raises(ValueError, match=r"`frame`: `timestamp` must be timezone-aware UTC"):
        BarArrays.from_frame(naive)
    with pytest.raises(ValueError, match=r"`frame`: missing columns \['volume'\]"):
        BarArrays.from_frame(_walk(3, 4).drop(columns="volume"))
    with pytest.raises(ValueError, match=r"`table` must have OHLCV_SCHEMA"):
        BarArrays.from_table(pa.Table.from_pandas(_walk(3, 4), preserve_index=False))


# --- clean, merge, gaps --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_clean_bar_arrays_messy_batch_matches_pandas_reference(seed: int) -> None:
    frame = _messy_batch(seed)
    expected_bars, expected_records = _reference_clean(frame)
    bars, records = clean_bar_arrays(frame, symbol_key=KEY, now=NOW)
    pd.testing.assert_frame_equal(bars.to_frame(), expected_bars)
    assert [(r.reason, r.timestamp) for r in records] == expected_records
    assert len(records) >= 40  # the batch does plant bad rows of several kinds
    assert clean_bars(frame, symbol_key=KEY, now=NOW).quarantined == records


def test_clean_bar_arrays_other_unit_and_zone_are_converted_like_pandas() -> None:
    frame = _walk(4, 30)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns, UTC]").dt.tz_convert("Asia/Tokyo")
    bars, records = clean_bar_arrays(frame, symbol_key=KEY, now=NOW)
    pd.testing.assert_frame_equal(bars.to_frame(), _reference_clean(frame)[0])
    assert records == ()


def test_clean_bar_arrays_naive_now_raises() -> None:
    with pytest.raises(ValueError, match=r"`now` must be timezone-aware"):
        clean_bar_arrays(_walk(5, 3), symbol_key=KEY, now=NOW.tz_localize(None))


@pytest.mark.parametrize("seed", range(6))
def test_merge_bar_arrays_random_overlaps_match_pandas_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    everything = _walk(seed, 120)
    revised = everything.assign(close=everything["close"] * 1.01)
    stored = everything.loc[rng.random(120) < 0.6].reset_index(drop=True)
    new = revised.loc[rng.random(120) < 0.3].sample(frac=1.0, random_state=seed).reset_index(drop=True)
    merged = merge_bar_arrays(BarArrays.from_frame(stored), BarArrays.from_frame(new))
    pd.testing.assert_frame_equal(merged.to_frame(), _reference_merge(stored, new))


def test_merge_bar_arrays_daily_append_equals_full_merge() -> None:
    everything = _walk(7, 300)
    stored, new = everything.iloc[:299].reset_index(drop=True), everything.iloc[299:].reset_index(drop=True)
    merged = merge_bar_arrays(BarArrays.from_frame(stored), BarArrays.from_frame(new))
    pd.testing.assert_frame_equal(merged.to_frame(), everything)
    stored_bars = BarArrays.from_frame(stored)
    assert merge_bar_arrays(stored_bars, BarArrays.empty()) is stored_bars


def test_merge_bar_arrays_refuses_frames() -> None:
    with pytest.raises(TypeError, match=r"`new` must be BarArrays, got DataFrame"):
        merge_bar_arrays(BarArrays.empty(), _walk(8, 3))


@pytest.mark.parametrize("seed", range(4))
def test_find_bar_gaps_matches_find_gaps(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = _walk(seed, 400)
    kept = frame.loc[rng.random(400) < 0.9].reset_index(drop=True)
    gaps = find_bar_gaps(BarArrays.from_frame(kept))
    assert gaps == find_gaps(kept["timestamp"]) and len(gaps) > 5
    assert [g.to_json_dict() for g in gaps] == [g.to_json_dict() for g in find_gaps(kept["timestamp"])]
    assert find_bar_gaps(BarArrays.from_frame(frame)) == []


# --- files ---------------------------------------------------------------------------------------------


def test_read_table_exact_schema_fast_path_equals_the_cast_path(fast_lake: LakehousePaths) -> None:
    write_ohlcv(fast_lake, KEY, _walk(9, 80))
    path = fast_lake.ohlcv_file(KEY)
    cast = pq.read_table(path).select(OHLCV_SCHEMA.names).cast(OHLCV_SCHEMA, safe=True)
    assert read_table(path, OHLCV_SCHEMA).equals(cast, check_metadata=True)
    assert read_table(path).equals(pq.read_table(path))


def test_read_table_castable_file_is_cast_to_the_schema(tmp_path) -> None:
    path = tmp_path / "old.parquet"
    frame = _walk(10, 20)
    frame["timestamp"] = frame["timestamp"].astype("datetime64[ns, UTC]")
    pq.write_table(pa.Table.from_pandas(frame.assign(extra=1), preserve_index=False), path)
    table = read_table(path, OHLCV_SCHEMA)
    assert table.schema.equals(OHLCV_SCHEMA)
    assert table.column("close").to_pylist() == frame["close"].tolist()
    assert table.column("timestamp").cast(pa.int64()).to_pylist() == (
        frame["timestamp"].astype("datetime64[ms, UTC]").astype("int64").tolist()
    )


@pytest.mark.parametrize("content", [None, b"PAR1 not really parquet"], ids=["missing", "corrupt"])
def test_read_table_bad_file_raises_naming_the_file(tmp_path, content: bytes | None) -> None:
    path = tmp_path / "bad.parquet"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LakehouseReadError, match=r"bad\.parquet"):
        read_table(path, OHLCV_SCHEMA)


def test_write_ohlcv_arrays_round_trips_without_dictionary_pages(fast_lake: LakehousePaths) -> None:
    frame = _walk(11, 365)
    write_ohlcv_arrays(fast_lake, KEY, BarArrays.from_frame(frame))
    pd.testing.assert_frame_equal(read_ohlcv(fast_lake, KEY), frame)
    column = pq.ParquetFile(fast_lake.ohlcv_file(KEY)).metadata.row_group(0).column(4)
    assert column.compression == "UNCOMPRESSED" and not any("DICTIONARY" in e for e in column.encodings)
    with pytest.raises(TypeError, match=r"`bars` must be BarArrays, got DataFrame"):
        write_ohlcv_arrays(fast_lake, KEY, frame)


def test_read_ohlcv_arrays_old_format_file_reads_the_same(fast_lake: LakehousePaths) -> None:
    frame = _walk(12, 100)
    # As the pandas writer stored it: pandas metadata, dictionary pages.
    write_table_atomic(
        pa.Table.from_pandas(frame, schema=OHLCV_SCHEMA, preserve_index=False), fast_lake.ohlcv_file(KEY)
    )
    bars = read_ohlcv_arrays(fast_lake, KEY)
    pd.testing.assert_frame_equal(bars.to_frame(), frame)


def test_read_ohlcv_arrays_unsorted_file_raises(fast_lake: LakehousePaths) -> None:
    write_ohlcv(fast_lake, KEY, _walk(13, 10).iloc[::-1])
    with pytest.raises(LakehouseReadError, match=r"timestamps are not sorted and unique"):
        read_ohlcv_arrays(fast_lake, KEY)


# --- audit and symbols ---------------------------------------------------------------------------------


def _defective(seed: int) -> pd.DataFrame:
    """Bars with a gap, a +600 % day, a volume spike and a frozen tail: every bar check has work to do."""
    frame = _walk(seed, 500).drop(index=range(200, 206)).reset_index(drop=True)
    frame.loc[300, ["close", "high"]] = frame.loc[299, "close"] * 7.0
    frame.loc[350, "volume"] *= 5000.0
    frame.loc[len(frame) - 15 :, ["open", "high", "low", "close"]] = frame.loc[len(frame) - 16, "close"]
    return frame


@pytest.mark.parametrize("seed", range(3))
def test_audit_symbol_file_array_path_equals_frame_audit(fast_lake: LakehousePaths, seed: int) -> None:
    frame = _defective(seed)
    write_ohlcv(fast_lake, KEY, frame)
    as_of = pd.Timestamp("2024-07-03T10:00", tz="UTC")
    fast = audit_symbol_file(fast_lake, KEY, as_of=as_of, params=AuditParams())
    reference = audit_bars(read_ohlcv(fast_lake, KEY), symbol_key=KEY, as_of=as_of, params=AuditParams())
    assert fast.to_json_dict() == reference.to_json_dict()
    assert fast.verdict is Verdict.TOXIC and len(fast.reasons) >= 4
    json.dumps(fast.to_json_dict(), allow_nan=False)


def test_audit_symbol_file_other_schema_still_judged_by_schema_check(fast_lake: LakehousePaths) -> None:
    frame = _walk(14, 90).assign(volume=lambda f: f["volume"].round().astype("int64"))
    path = fast_lake.ohlcv_file(KEY)
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    verdict = audit_symbol_file(fast_lake, KEY, as_of=NOW, params=AuditParams())
    assert verdict.verdict is Verdict.TOXIC
    assert verdict.checks["schema"].observed == {"missing_columns": [], "wrong_dtypes": {"volume": "int64"}}


def test_upsert_symbol_metadata_reads_old_pandas_file_and_keeps_history(fast_lake: LakehousePaths) -> None:
    t0 = pd.Timestamp("2024-03-01T21:07:00.123", tz="UTC")
    record = {
        "exchange": "BINANCE",
        "symbol_key": KEY,
        "ccxt_symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "market_type": "spot",
        "sector": None,
        "tick_size": 0.01,
        "lot_size": None,
        "min_notional": 5.0,
        "first_bar": pd.Timestamp("2021-01-01", tz="UTC"),
        "last_bar": pd.Timestamp("2024-02-29", tz="UTC"),
        "status": "active",
    }
    # As the pandas writer stored it, before the asset_class and calendar columns existed.
    old_schema = pa.schema([f for f in SYMBOLS_SCHEMA if f.name not in ("asset_class", "calendar")])
    old = pd.DataFrame([{**record, "valid_from": t0, "valid_to": None}], columns=old_schema.names)
    write_table_atomic(
        pa.Table.from_pandas(old, schema=old_schema, preserve_index=False), fast_lake.symbol_metadata_file(KEY)
    )
    day = pd.Timedelta(days=1)
    later = {**record, "last_bar": record["last_bar"] + day}
    assert upsert_symbol_metadata(fast_lake, KEY, later, now=t0 + day).action == "updated"
    assert upsert_symbol_metadata(fast_lake, KEY, later, now=t0 + 2 * day).action == "unchanged"
    moved = {**later, "sector": "layer1"}
    assert upsert_symbol_metadata(fast_lake, KEY, moved, now=t0 + 3 * day).changed_columns == ("sector",)
    history = read_symbol_history(fast_lake, KEY)
    assert history["asset_class"].tolist() == ["crypto", "crypto"] and history["calendar"].tolist() == ["24/7"] * 2
    assert pq.read_schema(fast_lake.symbol_metadata_file(KEY)).equals(SYMBOLS_SCHEMA)
    assert history["valid_from"].tolist() == [t0, t0 + 3 * day]
    assert history["valid_to"].iat[0] == t0 + 3 * day and pd.isna(history["valid_to"].iat[1])
    assert history["sector"].tolist() == [None, "layer1"] and history["lot_size"].isna().all()
    assert (history["last_bar"] == record["last_bar"] + day).all()
    assert str(history["valid_from"].dtype) == "datetime64[ms, UTC]"
