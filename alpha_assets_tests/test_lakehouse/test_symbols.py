"""Symbol metadata with SCD type-2 versions (alpha_assets.lakehouse.symbols).

Exercises insert / unchanged / in-place update / versioning with the old row closed, history kept across
versions, reading the whole table, the lock, a failed write, corrupt files and record validation, all on
real parquet files under tmp_path. Leaves the Dagster asset that calls the upsert to test_defs.
"""

from __future__ import annotations

import os
import threading

import pandas as pd
import pytest

from alpha_assets.errors import LakehouseReadError, UnsafeKeyError
from alpha_assets.lakehouse.hashing import file_sha256
from alpha_assets.lakehouse.locks import exclusive_lock
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import SYMBOL_IN_PLACE_COLUMNS, SYMBOL_TRACKED_COLUMNS, SYMBOLS_SCHEMA
from alpha_assets.lakehouse.symbols import (
    RECORD_COLUMNS,
    SymbolUpsert,
    current_calendar,
    read_symbol_history,
    read_symbols,
    upsert_symbol_metadata,
)

KEY = "BINANCE_BTCUSDT"
T0 = pd.Timestamp("2024-03-01T21:07:00.123456", tz="UTC")
DAY = pd.Timedelta(days=1)


def _record(key: str = KEY, **changes: object) -> dict[str, object]:
    base = key.split("_", 1)[1].removesuffix("USDT")
    record = {
        "exchange": "BINANCE",
        "symbol_key": key,
        "ccxt_symbol": f"{base}/USDT",
        "base": base,
        "quote": "USDT",
        "market_type": "spot",
        "sector": "layer1",
        "tick_size": 0.01,
        "lot_size": 1e-5,
        "min_notional": 5.0,
        "first_bar": pd.Timestamp("2021-01-01", tz="UTC"),
        "last_bar": pd.Timestamp("2024-02-29", tz="UTC"),
        "status": "active",
    }
    record.update(changes)
    return record


@pytest.fixture
def aud_paths(tmp_path) -> LakehousePaths:
    return LakehousePaths(tmp_path / "data")


def test_symbol_columns_exclude_validity_and_bar_range_from_versioning() -> None:
    assert set(SYMBOL_IN_PLACE_COLUMNS) == {"first_bar", "last_bar"}
    assert not {"valid_from", "valid_to", "first_bar", "last_bar"} & set(SYMBOL_TRACKED_COLUMNS)
    assert sorted(RECORD_COLUMNS) == sorted(set(SYMBOLS_SCHEMA.names) - {"valid_from", "valid_to"})


def test_upsert_new_symbol_inserts_one_current_row(aud_paths: LakehousePaths) -> None:
    result = upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    assert result == SymbolUpsert(KEY, "inserted", ())
    history = read_symbol_history(aud_paths, KEY)
    assert len(history) == 1
    row = history.iloc[0]
    assert row["valid_from"] == T0.floor("ms") and pd.isna(row["valid_to"])
    assert row["ccxt_symbol"] == "BTC/USDT" and row["tick_size"] == 0.01
    assert row["last_bar"] == pd.Timestamp("2024-02-29", tz="UTC")
    assert list(history.columns) == SYMBOLS_SCHEMA.names
    assert str(history["valid_from"].dtype) == "datetime64[ms, UTC]"


def test_upsert_identical_record_writes_nothing(aud_paths: LakehousePaths) -> None:
    upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    path = aud_paths.symbol_metadata_file(KEY)
    before, mtime = file_sha256(path), path.stat().st_mtime_ns
    result = upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0 + DAY)
    assert result == SymbolUpsert(KEY, "unchanged", ())
    assert file_sha256(path) == before and path.stat().st_mtime_ns == mtime


def test_upsert_new_last_bar_updates_current_row_in_place(aud_paths: LakehousePaths) -> None:
    upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    new_last = pd.Timestamp("2024-03-01", tz="UTC")
    result = upsert_symbol_metadata(aud_paths, KEY, _record(last_bar=new_last), now=T0 + DAY)
    assert result == SymbolUpsert(KEY, "updated", ("last_bar",))
    history = read_symbol_history(aud_paths, KEY)
    assert len(history) == 1
    assert history["last_bar"].iat[0] == new_last
    assert history["valid_from"].iat[0] == T0.floor("ms")


def test_upsert_changed_tick_size_closes_old_row_and_appends_version(aud_paths: LakehousePaths) -> None:
    upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    t1 = T0 + 3 * DAY
    changed = _record(tick_size=0.1, status="inactive", last_bar=pd.Timestamp("2024-03-03", tz="UTC"))
    result = upsert_symbol_metadata(aud_paths, KEY, changed, now=t1)
    assert result == SymbolUpsert(KEY, "versioned", ("tick_size", "last_bar", "status"))
    history = read_symbol_history(aud_paths, KEY)
    assert len(history) == 2
    old, new = history.iloc[0], history.iloc[1]
    assert (old["tick_size"], old["status"], old["valid_from"], old["valid_to"]) == (
        0.01,
        "active",
        T0.floor("ms"),
        t1.floor("ms"),
    )
    assert (new["tick_size"], new["status"], new["valid_from"]) == (0.1, "inactive", t1.floor("ms"))
    assert pd.isna(new["valid_to"])
    assert old["last_bar"] == pd.Timestamp("2024-02-29", tz="UTC")  # the closed row keeps its values


def test_upsert_several_changes_keep_every_version_in_order(aud_paths: LakehousePaths) -> None:
    sectors = ["layer1", "payments", "layer1", "store-of-value"]
    for day, sector in enumerate(sectors):
        upsert_symbol_metadata(aud_paths, KEY, _record(sector=sector), now=T0 + day * DAY)
    history = read_symbol_history(aud_paths, KEY)
    assert history["sector"].tolist() == sectors
    assert history["valid_from"].tolist() == [(T0 + d * DAY).floor("ms") for d in range(4)]
    assert history["valid_to"].iloc[:-1].tolist() == history["valid_from"].iloc[1:].tolist()
    assert history["valid_to"].isna().tolist() == [False, False, False, True]


def test_upsert_sector_to_none_is_a_change_and_none_round_trips(aud_paths: LakehousePaths) -> None:
    upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    assert upsert_symbol_metadata(aud_paths, KEY, _record(sector=None), now=T0 + DAY).action == "versioned"
    again = upsert_symbol_metadata(aud_paths, KEY, _record(sector=None), now=T0 + 2 * DAY)
    assert again.action == "unchanged"


def test_upsert_nan_size_is_stored_as_null_and_equals_none(aud_paths: LakehousePaths) -> None:
    upsert_symbol_metadata(aud_paths, KEY, _record(lot_size=float("nan")), now=T0)
    assert pd.isna(read_symbol_history(aud_paths, KEY)["lot_size"].iat[0])
    assert upsert_symbol_metadata(aud_paths, KEY, _record(lot_size=None), now=T0 + DAY).action == "unchanged"


def test_upsert_sub_millisecond_bar_time_round_trips_unchanged(aud_paths: LakehousePaths) -> None:
    stamp = pd.Timestamp("2024-02-29T00:00:00.000700", tz="UTC")
    upsert_symbol_metadata(aud_paths, KEY, _record(last_bar=stamp), now=T0)
    assert upsert_symbol_metadata(aud_paths, KEY, _record(last_bar=stamp), now=T0 + DAY).action == "unchanged"


def test_upsert_versioning_at_same_instant_raises_and_keeps_file(aud_paths: LakehousePaths) -> None:
    upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    before = file_sha256(aud_paths.symbol_metadata_file(KEY))
    with pytest.raises(ValueError, match=r"`now` .* must be after the current version's valid_from"):
        upsert_symbol_metadata(aud_paths, KEY, _record(status="delisted"), now=T0)
    assert file_sha256(aud_paths.symbol_metadata_file(KEY)) == before


def test_upsert_failed_replace_keeps_old_file_and_no_temp(aud_paths: LakehousePaths, monkeypatch) -> None:
    upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    path = aud_paths.symbol_metadata_file(KEY)
    before = file_sha256(path)

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        upsert_symbol_metadata(aud_paths, KEY, _record(status="delisted"), now=T0 + DAY)
    monkeypatch.undo()
    assert file_sha256(path) == before
    left = sorted(p.name for p in aud_paths.symbols_dir.iterdir())
    assert left == [f"{KEY}.parquet"]  # no temp file; the lock lives in lakehouse/_locks/


def test_upsert_waits_for_the_symbol_lock(aud_paths: LakehousePaths) -> None:
    path = aud_paths.symbol_metadata_file(KEY)
    done = threading.Event()

    def upsert() -> None:
        upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
        done.set()

    with exclusive_lock(aud_paths.symbol_metadata_lock_file(KEY)):
        worker = threading.Thread(target=upsert)
        worker.start()
        assert not done.wait(0.3)
        assert not path.exists()
    worker.join(5)
    assert done.is_set() and path.exists()


def test_upsert_corrupt_file_raises_and_leaves_it(aud_paths: LakehousePaths) -> None:
    path = aud_paths.symbol_metadata_file(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 not really")
    with pytest.raises(LakehouseReadError, match=rf"{KEY}\.parquet: not a readable parquet file"):
        upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    assert path.read_bytes() == b"PAR1 not really"


def test_read_symbol_history_two_current_rows_raises(aud_paths: LakehousePaths) -> None:
    upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    upsert_symbol_metadata(aud_paths, KEY, _record(status="delisted"), now=T0 + DAY)
    path = aud_paths.symbol_metadata_file(KEY)
    history = read_symbol_history(aud_paths, KEY)
    history["valid_to"] = pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ms, UTC]")
    history.to_parquet(path, index=False)
    with pytest.raises(LakehouseReadError, match=r"2 current versions \(valid_to null\), expected at most 1"):
        read_symbol_history(aud_paths, KEY)


def test_read_symbol_history_rows_of_another_symbol_raise(aud_paths: LakehousePaths) -> None:
    upsert_symbol_metadata(aud_paths, "BINANCE_ETHUSDT", _record("BINANCE_ETHUSDT"), now=T0)
    os.replace(aud_paths.symbol_metadata_file("BINANCE_ETHUSDT"), aud_paths.symbol_metadata_file(KEY))
    with pytest.raises(LakehouseReadError, match=r"holds rows of other symbols \['BINANCE_ETHUSDT'\]"):
        read_symbol_history(aud_paths, KEY)


def test_read_symbol_history_unknown_symbol_is_empty_with_columns(aud_paths: LakehousePaths) -> None:
    history = read_symbol_history(aud_paths, KEY)
    assert history.empty and list(history.columns) == SYMBOLS_SCHEMA.names


def test_read_symbols_current_only_one_row_per_symbol_sorted(aud_paths: LakehousePaths) -> None:
    for key in ["SIM_SOLUSDT", "BINANCE_ETHUSDT", KEY]:
        upsert_symbol_metadata(aud_paths, key, _record(key), now=T0)
    upsert_symbol_metadata(aud_paths, KEY, _record(min_notional=10.0), now=T0 + DAY)
    current = read_symbols(aud_paths)
    assert current["symbol_key"].tolist() == [KEY, "BINANCE_ETHUSDT", "SIM_SOLUSDT"]
    assert current["valid_to"].isna().all()
    assert current.loc[current["symbol_key"] == KEY, "min_notional"].item() == 10.0
    everything = read_symbols(aud_paths, current_only=False)
    assert everything["symbol_key"].tolist() == [KEY, KEY, "BINANCE_ETHUSDT", "SIM_SOLUSDT"]
    assert everything.index.tolist() == [0, 1, 2, 3]


def test_read_symbols_missing_directory_is_empty_with_columns(aud_paths: LakehousePaths) -> None:
    table = read_symbols(aud_paths, current_only=False)
    assert table.empty and list(table.columns) == SYMBOLS_SCHEMA.names


def test_read_symbols_stray_file_raises(aud_paths: LakehousePaths) -> None:
    upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    (aud_paths.symbols_dir / "notes.parquet").write_bytes(b"")
    with pytest.raises(LakehouseReadError, match=r"notes\.parquet: not named <SYMBOL_KEY>\.parquet"):
        read_symbols(aud_paths)


@pytest.mark.parametrize(
    ("key", "record", "error", "match"),
    [
        ("../x", _record(), UnsafeKeyError, r"symbol key '\.\./x' is refused"),
        (KEY, {k: v for k, v in _record().items() if k != "status"}, ValueError, r"missing \['status'\]"),
        (KEY, _record(active=True), ValueError, r"unexpected \['active'\]"),
        ("BINANCE_ETHUSDT", _record(), ValueError, r"`record\['symbol_key'\]` must equal 'BINANCE_ETHUSDT'"),
        (KEY, _record(base=""), TypeError, r"`record\['base'\]` of BINANCE_BTCUSDT must be a non-empty"),
        (KEY, _record(calendar=None), TypeError, r"`record\['calendar'\]` .* must be a non-empty string, got None"),
        (KEY, _record(tick_size="0.01"), TypeError, r"`record\['tick_size'\]` .* must be a number or None"),
        (KEY, _record(lot_size=-1.0), ValueError, r"`record\['lot_size'\]` .* must be finite and > 0"),
        (
            KEY,
            _record(last_bar=pd.Timestamp("2024-01-01")),
            ValueError,
            r"`record\['last_bar'\]` must be timezone-aware \(UTC\)",
        ),
        (KEY, _record(first_bar="2021-01-01"), TypeError, r"`record\['first_bar'\]` must be a timezone"),
        (KEY, ["not", "a", "mapping"], TypeError, r"`record` must be a mapping of column -> value, got list"),
    ],
    ids=[
        "unsafe-key",
        "missing-key",
        "extra-key",
        "key-mismatch",
        "empty-base",
        "null-calendar",
        "string-size",
        "negative-size",
        "naive-bar",
        "string-bar",
        "not-mapping",
    ],
)
def test_upsert_invalid_record_raises_and_writes_nothing(
    aud_paths: LakehousePaths, key: str, record: object, error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        upsert_symbol_metadata(aud_paths, key, record, now=T0)  # type: ignore[arg-type]
    assert not aud_paths.root.exists()


@pytest.mark.parametrize("quote", [None, ""], ids=["none", "empty"])
def test_upsert_symbol_without_quote_currency_stores_null_quote(aud_paths: LakehousePaths, quote: object) -> None:
    record = _record(quote=quote, asset_class="equity", calendar="XNYS")
    assert upsert_symbol_metadata(aud_paths, KEY, record, now=T0).action == "inserted"
    stored = read_symbol_history(aud_paths, KEY)
    assert stored["quote"].isna().all()
    assert (stored["asset_class"].iat[0], stored["calendar"].iat[0]) == ("equity", "XNYS")


def test_upsert_naive_now_raises(aud_paths: LakehousePaths) -> None:
    with pytest.raises(ValueError, match=r"`now` must be timezone-aware \(UTC\), got naive"):
        upsert_symbol_metadata(aud_paths, KEY, _record(), now=pd.Timestamp("2024-03-01"))


def test_current_calendar_reads_the_current_version_and_none_without_file(aud_paths: LakehousePaths) -> None:
    assert current_calendar(aud_paths, KEY) is None
    upsert_symbol_metadata(aud_paths, KEY, _record(), now=T0)
    assert current_calendar(aud_paths, KEY) == "24/7"  # a record without calendar is crypto
    upsert_symbol_metadata(
        aud_paths, KEY, _record(asset_class="equity", calendar="XNYS"), now=T0 + pd.Timedelta(1, "D")
    )
    assert current_calendar(aud_paths, KEY) == "XNYS"
    assert read_symbol_history(aud_paths, KEY)["calendar"].tolist() == ["24/7", "XNYS"]
