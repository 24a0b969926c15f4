"""Symbol metadata with slowly changing versions (SCD type 2): ``lakehouse/symbols.parquet/<KEY>.parquet``.

One file per symbol holds every version of its metadata, one row each, ordered by ``valid_from``; the current
version is the row whose ``valid_to`` is null. An upsert compares the incoming record with the current row:

- no file (or no current row): a row is appended with ``valid_from = now`` -> ``inserted``;
- a versioned column differs (:data:`~alpha_assets.lakehouse.schemas.SYMBOL_TRACKED_COLUMNS`: exchange, key,
  ccxt symbol, base, quote, market type, asset class, calendar, sector, tick size, lot size, min notional,
  status): the current row
  is closed with ``valid_to = now`` and a new row opened with ``valid_from = now`` -> ``versioned``;
- only ``first_bar`` / ``last_bar`` differ
  (:data:`~alpha_assets.lakehouse.schemas.SYMBOL_IN_PLACE_COLUMNS`): they are updated on the current row,
  which keeps its ``valid_from`` -> ``updated``. ``last_bar`` moves every day; a version per day would bury
  the descriptive changes a reader looks for, and the bars themselves are the history of the bar range;
- nothing differs: nothing is written -> ``unchanged``.

Every read-compare-write holds the file's exclusive lock and replaces the file atomically, so concurrent
upserts of one symbol serialise and a crash leaves the previous file. Timestamps are stored in
milliseconds (UTC); incoming ones are truncated to milliseconds before comparison, so a round trip never
looks like a change. A file written before the ``asset_class`` and ``calendar`` columns existed reads with
their defaults (crypto, 24/7) and is rewritten with them by its next upsert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.keys import SYMBOL_KEY_PATTERN, validate_symbol_key
from alpha_assets.lakehouse.locks import exclusive_lock, remove_sibling_lock
from alpha_assets.lakehouse.parquet import parquet_source, read_table, write_table_atomic
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import (
    SYMBOL_COLUMN_DEFAULTS,
    SYMBOL_IN_PLACE_COLUMNS,
    SYMBOL_TRACKED_COLUMNS,
    SYMBOLS_SCHEMA,
)
from alpha_assets.validation import check_utc_timestamp

#: The keys an upsert record must hold: every column but the validity interval.
RECORD_COLUMNS = (*SYMBOL_TRACKED_COLUMNS, *SYMBOL_IN_PLACE_COLUMNS)
_STRING_COLUMNS = tuple(f.name for f in SYMBOLS_SCHEMA if pa.types.is_string(f.type))
_FLOAT_COLUMNS = tuple(f.name for f in SYMBOLS_SCHEMA if pa.types.is_floating(f.type))
_NULLABLE = frozenset(f.name for f in SYMBOLS_SCHEMA if f.nullable)
#: The schema of files written before the columns of ``SYMBOL_COLUMN_DEFAULTS`` existed.
_LEGACY_SCHEMA = pa.schema([f for f in SYMBOLS_SCHEMA if f.name not in SYMBOL_COLUMN_DEFAULTS])
# A few rows of fifteen columns: compression and dictionaries cost more time than the bytes they save.
_PARQUET_OPTIONS = {"compression": "none", "use_dictionary": False}

UpsertAction = Literal["inserted", "versioned", "updated", "unchanged"]


@dataclass(frozen=True)
class SymbolUpsert:
    """What an upsert did to one symbol's metadata file.

    Attributes
    ----------
    symbol_key : str
        The symbol.
    action : {"inserted", "versioned", "updated", "unchanged"}
        See the module docstring.
    changed_columns : tuple of str
        Columns whose value differs from the current row, in schema order; empty for ``inserted`` and
        ``unchanged``.
    """

    symbol_key: str
    action: UpsertAction
    changed_columns: tuple[str, ...]


def upsert_symbol_metadata(
    paths: LakehousePaths, symbol_key: str, record: Mapping[str, object], *, now: pd.Timestamp
) -> SymbolUpsert:
    """Record ``record`` as the current metadata of ``symbol_key``, versioning descriptive changes.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_key : str
        The symbol, e.g. ``BINANCE_BTCUSDT``; must equal ``record["symbol_key"]``.
    record : Mapping[str, object]
        The keys of :data:`RECORD_COLUMNS` (``asset_class`` and ``calendar`` may be left out: crypto, 24/7).
        Strings for ``exchange``, ``symbol_key``, ``ccxt_symbol``, ``base``, ``market_type``, ``asset_class``,
        ``calendar``, ``status`` (non-empty), ``quote`` (or None when unknown; ``""`` is read as None) and
        ``sector`` (or None); finite numbers > 0 or None (NaN is read as None) for ``tick_size``,
        ``lot_size``, ``min_notional``; timezone-aware timestamps or None for ``first_bar`` and ``last_bar``
        (bar open times, UTC).
    now : Timestamp
        Timezone-aware time of the change: ``valid_from`` of a new version, ``valid_to`` of a closed one.

    Returns
    -------
    SymbolUpsert
        The action taken and the columns that changed.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid key (nothing is read or written).
    TypeError
        When ``paths`` is not a LakehousePaths, ``record`` not a mapping, or a value has the wrong type.
    ValueError
        When ``record`` lacks or adds keys, its ``symbol_key`` differs from ``symbol_key``, a value is out of
        range, ``now`` is naive, or ``now`` is not after the current version's ``valid_from`` when a new
        version would open.
    LakehouseReadError
        When the stored file is unreadable, of the wrong schema, or not a well-formed history.
    """
    if not isinstance(paths, LakehousePaths):
        raise TypeError(f"`paths` must be a LakehousePaths, got {type(paths).__name__}")
    path = paths.symbol_metadata_file(symbol_key)
    row = _normalise_record(symbol_key, record)
    now = _ms_timestamp(now, "now", nullable=False)
    with exclusive_lock(paths.symbol_metadata_lock_file(symbol_key)):
        remove_sibling_lock(path)
        # A handful of rows: plain Python records are cheaper than a DataFrame round trip.
        history, outdated = _read_history_table(path, symbol_key) if path.exists() else (None, False)
        versions = history.to_pylist() if history is not None else []
        # A file of an older schema is rewritten even when nothing changed, so the dataset keeps one schema.
        current_rows = [i for i, version in enumerate(versions) if version["valid_to"] is None]
        if not current_rows:
            action: UpsertAction = "inserted"
            changed: tuple[str, ...] = ()
            versions.append({**row, "valid_from": now, "valid_to": None})
        else:
            current = versions[current_rows[0]]
            changed = tuple(c for c in SYMBOLS_SCHEMA.names if c in row and not _same(current[c], row[c]))
            if not changed and not outdated:
                return SymbolUpsert(symbol_key, "unchanged", ())
            if any(c in SYMBOL_TRACKED_COLUMNS for c in changed):
                if now <= current["valid_from"]:
                    raise ValueError(
                        f"`now` ({now.isoformat()}) must be after the current version's valid_from "
                        f"({pd.Timestamp(current['valid_from']).isoformat()}) of {symbol_key} to open a "
                        "new version"
                    )
                action = "versioned"
                current["valid_to"] = now
                versions.append({**row, "valid_from": now, "valid_to": None})
            else:
                action = "updated" if changed else "unchanged"
                current.update((column, row[column]) for column in changed)
        write_table_atomic(pa.Table.from_pylist(versions, schema=SYMBOLS_SCHEMA), path, **_PARQUET_OPTIONS)
    return SymbolUpsert(symbol_key, action, changed)


def read_symbol_history(paths: LakehousePaths, symbol_key: str) -> pd.DataFrame:
    """Every version of one symbol's metadata.

    Returns
    -------
    DataFrame of shape (n_versions, 17)
        The columns of ``SYMBOLS_SCHEMA`` in order (timestamps ``datetime64[ms, UTC]``, NaN/None where null),
        sorted by ``valid_from``; ``valid_to`` is NaT on the current row. Empty when the symbol has no file.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid key.
    LakehouseReadError
        When the file is unreadable, of the wrong schema, holds another symbol's rows, is not sorted by
        ``valid_from``, or has more than one current row.
    """
    if not isinstance(paths, LakehousePaths):
        raise TypeError(f"`paths` must be a LakehousePaths, got {type(paths).__name__}")
    path = paths.symbol_metadata_file(symbol_key)
    return _read_history(path, symbol_key) if path.exists() else _empty_history()


def current_calendar(paths: LakehousePaths, symbol_key: str) -> str | None:
    """The trading calendar of the symbol's current metadata version, or None without a current version.

    Reads only the ``calendar`` and ``valid_to`` columns (a per-symbol lookup of the feature backfill); a file
    written before the column existed is a 24/7 crypto symbol.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid key.
    LakehouseReadError
        When the file is unreadable.
    """
    path = paths.symbol_metadata_file(symbol_key)
    if not path.exists():
        return None
    try:
        parquet = pq.ParquetFile(parquet_source(path))
        names = parquet.schema_arrow.names
        columns = [c for c in ("calendar", "valid_to") if c in names]
        table = parquet.read(columns=columns, use_threads=False)
    except (pa.ArrowInvalid, OSError) as err:
        raise LakehouseReadError(str(path), f"not a readable parquet file ({err})") from err
    current = [i for i, end in enumerate(table.column("valid_to").to_pylist()) if end is None]
    if not current:
        return None
    if "calendar" not in names:
        return SYMBOL_COLUMN_DEFAULTS["calendar"]
    return table.column("calendar")[current[0]].as_py()


def read_symbols(paths: LakehousePaths, *, current_only: bool = True) -> pd.DataFrame:
    """Read the metadata of every symbol in ``lakehouse/symbols.parquet/``, files in name order.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    current_only : bool, default True
        Keep only the current version of each symbol; False returns every version.

    Returns
    -------
    DataFrame of shape (n_rows, 17)
        The columns of ``SYMBOLS_SCHEMA``, sorted by ``symbol_key`` then ``valid_from``, index 0..n_rows-1.
        Empty (with the columns) when the directory is missing or empty.

    Raises
    ------
    LakehouseReadError
        When a file is unreadable or malformed (see :func:`read_symbol_history`), or a ``.parquet`` file in
        the directory is not named after a valid symbol key.
    """
    if not isinstance(paths, LakehousePaths):
        raise TypeError(f"`paths` must be a LakehousePaths, got {type(paths).__name__}")
    if not isinstance(current_only, bool):
        raise TypeError(f"`current_only` must be a bool, got {type(current_only).__name__}")
    directory = paths.symbols_dir
    files = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
    frames = []
    for file in files:
        if not SYMBOL_KEY_PATTERN.fullmatch(file.stem):
            raise LakehouseReadError(str(file), "not named <SYMBOL_KEY>.parquet: a stray file in the symbols table")
        frames.append(_read_history(file, file.stem))
    if not frames:
        return _empty_history()
    table = pd.concat(frames, ignore_index=True)
    if current_only:
        table = table.loc[table["valid_to"].isna()]
    return table.reset_index(drop=True)


def _normalise_record(symbol_key: str, record: Mapping[str, object]) -> dict[str, Any]:
    symbol_key = validate_symbol_key(symbol_key)
    if not isinstance(record, Mapping):
        raise TypeError(f"`record` must be a mapping of column -> value, got {type(record).__name__}")
    # Records written before asset_class and calendar existed (discovery documents of older runs) take
    # their defaults.
    record = {**SYMBOL_COLUMN_DEFAULTS, **record}
    missing = [c for c in RECORD_COLUMNS if c not in record]
    extra = sorted(str(k) for k in record if k not in RECORD_COLUMNS)
    if missing or extra:
        raise ValueError(
            f"`record` of {symbol_key} must hold exactly the keys {list(RECORD_COLUMNS)}; "
            f"missing {missing}, unexpected {extra}"
        )
    if record["symbol_key"] != symbol_key:
        raise ValueError(f"`record['symbol_key']` must equal {symbol_key!r}, got {record['symbol_key']!r}")
    row: dict[str, Any] = {}
    for column in _STRING_COLUMNS:
        value = record[column]
        if value == "" and column == "quote":
            value = None
        if value is None and column in _NULLABLE:
            row[column] = None
        elif not isinstance(value, str) or not value:
            raise TypeError(f"`record['{column}']` of {symbol_key} must be a non-empty string, got {value!r}")
        else:
            row[column] = value
    for column in _FLOAT_COLUMNS:
        value = record[column]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            row[column] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise TypeError(f"`record['{column}']` of {symbol_key} must be a number or None, got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"`record['{column}']` of {symbol_key} must be finite and > 0, got {value!r}")
        row[column] = float(value)
    for column in SYMBOL_IN_PLACE_COLUMNS:
        row[column] = _ms_timestamp(record[column], f"record['{column}']", nullable=True)
    return row


def _ms_timestamp(value: object, name: str, *, nullable: bool) -> pd.Timestamp | None:
    if value is None or (nullable and value is pd.NaT):
        if nullable:
            return None
        raise TypeError(f"`{name}` must be a timezone-aware timestamp, got None")
    return check_utc_timestamp(value, name).as_unit("ms")  # as_unit floors to whole milliseconds


def _same(stored: object, incoming: object) -> bool:
    stored_null = stored is None or bool(pd.isna(stored))
    if incoming is None:
        return stored_null
    return not stored_null and stored == incoming


def _empty_history() -> pd.DataFrame:
    return SYMBOLS_SCHEMA.empty_table().to_pandas()


def _read_history(path: Any, symbol_key: str) -> pd.DataFrame:
    return _read_history_table(path, symbol_key)[0].to_pandas()


def _read_history_table(path: Any, symbol_key: str) -> tuple[pa.Table, bool]:
    """One symbol's versions as a table of ``SYMBOLS_SCHEMA``, checked to be a well-formed history."""
    history, outdated = _read_conformed(path)
    others = sorted(set(history.column("symbol_key").to_pylist()) - {symbol_key})
    if others:
        raise LakehouseReadError(str(path), f"holds rows of other symbols {others[:5]}, expected only {symbol_key}")
    valid_from = history.column("valid_from").to_numpy().view(np.int64)
    if np.any(valid_from[1:] < valid_from[:-1]):
        raise LakehouseReadError(str(path), "versions are not sorted by valid_from")
    current = history.column("valid_to").null_count
    if current > 1:
        raise LakehouseReadError(str(path), f"{current} current versions (valid_to null), expected at most 1")
    return history, outdated


def _is_outdated(path: Any) -> bool:
    """Whether the file at ``path`` lacks a column added since it was written (a footer read, no data)."""
    try:
        names = pq.read_schema(parquet_source(path)).names
    except (pa.ArrowInvalid, OSError):
        return False  # unreadable: the read reports it
    return any(name not in names for name in SYMBOL_COLUMN_DEFAULTS)


def _read_conformed(path: Any) -> tuple[pa.Table, bool]:
    """The file as a table of ``SYMBOLS_SCHEMA`` and whether it is older than a column (given its default)."""
    try:
        return read_table(path, SYMBOLS_SCHEMA), False
    except LakehouseReadError:
        if not _is_outdated(path):
            raise
    table = read_table(path, _LEGACY_SCHEMA)
    for name, value in SYMBOL_COLUMN_DEFAULTS.items():
        table = table.append_column(name, pa.array([value] * len(table), pa.string()))
    return pa.Table.from_arrays([table.column(name) for name in SYMBOLS_SCHEMA.names], schema=SYMBOLS_SCHEMA), True
