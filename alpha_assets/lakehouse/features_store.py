"""``lakehouse/features_matrix.parquet/``: the per-symbol feature store (one parquet file per symbol).

The directory is a parquet dataset: ``<SYMBOL_KEY>.parquet`` holds one symbol's long-form rows (``date``,
``symbol``, then float64 feature columns), sorted by ``date``, unique. Reading the files in name order gives
the long form sorted by symbol then date; DuckDB reads it with ``read_parquet('<dir>/*.parquet')``.

A symbol's upsert reads its file, merges (new values win on equal dates, stored dates absent from the new
frame are kept) and replaces the file atomically, all under an exclusive ``flock`` on the sibling
``<SYMBOL_KEY>.parquet.lock``. Two runs over overlapping symbols therefore serialise per symbol and never lose
or duplicate rows, and no file is shared between symbols. The store does not know the feature list: it
stores whatever float64 columns it is given (the list lives in ``alpha_assets.features.matrix``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.parquet import exclusive_lock, read_table, write_bytes_atomic
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import UTC_MS

__all__ = [
    "UpsertResult",
    "features_schema",
    "last_feature_date",
    "read_features",
    "read_features_asof",
    "upsert_symbol_features",
]

KEY_COLUMNS = ("date", "symbol")
#: Footer key holding ``{"rows": n, "sha256": ...}`` of the file's own rows (names, dates, value bits):
#: an upsert whose first ``n`` rows hash the same extends the file without reading it back.
_FINGERPRINT_KEY = b"alpha_assets.features.fingerprint"
# Float features barely compress and do not dictionary-encode: LZ4 and plain encoding write and read about
# twice as fast as the defaults for the same size; statistics only on ``date``, the one filtered column.
_PARQUET_OPTIONS = {"compression": "lz4", "use_dictionary": ["symbol"], "write_statistics": ["date"]}


@dataclass(frozen=True)
class UpsertResult:
    """What one symbol's upsert did.

    Attributes
    ----------
    rows_written : int
        Rows in the file after the write; 0 when nothing was written.
    rows_changed : int
        Rows of the new frame whose date was not stored or whose values differ (NaN equals NaN).
    changed : bool
        Whether the file was (re)written.
    """

    rows_written: int
    rows_changed: int
    changed: bool


def features_schema(feature_columns: Sequence[str]) -> pa.Schema:
    """Arrow schema of a features file: ``date`` (timestamp ms UTC), ``symbol`` (string), float64 features.

    Parameters
    ----------
    feature_columns : sequence of str
        The feature column names, in stored order (``alpha_assets.features.matrix.FEATURE_COLUMNS``).

    Returns
    -------
    pyarrow.Schema
        ``date`` and ``symbol`` non-nullable, one nullable float64 field per feature.

    Raises
    ------
    ValueError
        When ``feature_columns`` is empty, repeats a name or uses ``date`` / ``symbol``.
    """
    names = list(feature_columns)
    if not names or len(set(names)) != len(names) or set(names) & set(KEY_COLUMNS):
        raise ValueError(
            f"`feature_columns` must be non-empty, unique and exclude {KEY_COLUMNS}, got {names[:5]}... "
            f"({len(names)} names)"
        )
    return pa.schema(
        [pa.field("date", UTC_MS, nullable=False), pa.field("symbol", pa.string(), nullable=False)]
        + [pa.field(name, pa.float64()) for name in names]
    )


def upsert_symbol_features(paths: LakehousePaths, symbol_key: str, frame: pd.DataFrame) -> UpsertResult:
    """Merge one symbol's feature rows into its file; write (atomically) only when a row changed.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_key : str
        The symbol, e.g. ``"BINANCE_BTCUSDT"``.
    frame : DataFrame of shape (n_observations, 2 + n_features)
        ``date`` (tz-aware UTC, whole milliseconds, strictly increasing), ``symbol`` (every value equal to
        ``symbol_key``), then float64 feature columns (NaN allowed, inf not).

    Returns
    -------
    UpsertResult
        Rows written and changed. New values win on dates present in both; stored dates absent from ``frame``
        are kept. When the stored file has other feature columns (an older feature list), it is replaced by
        ``frame`` alone and every row counts as changed.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid key.
    ValueError, TypeError
        When ``frame`` breaks the layout above.
    LakehouseReadError
        When the stored file exists but cannot be read.
    """
    path = paths.features_file(symbol_key)
    dates, columns = _check_frame(frame, symbol_key)
    with exclusive_lock(path):
        fingerprint = _stored_fingerprint(path) if path.exists() else None
        if fingerprint is not None and _prefix_fingerprint(dates, columns, fingerprint[0]) == fingerprint[1]:
            # The stored file is exactly the first rows of ``frame``: no need to read or compare it.
            merged_dates, merged, rows_changed = dates, columns, len(dates) - fingerprint[0]
        else:
            stored = _read_stored(path) if path.exists() else None
            if stored is None or list(stored[1]) != list(columns):
                merged_dates, merged, rows_changed = dates, columns, len(dates)
            else:
                merged_dates, merged, rows_changed = _merge(stored[0], stored[1], dates, columns)
        if rows_changed == 0:
            return UpsertResult(rows_written=0, rows_changed=0, changed=False)
        write_bytes_atomic(_encode(symbol_key, merged_dates, merged), path)
    return UpsertResult(rows_written=len(merged_dates), rows_changed=rows_changed, changed=True)


def read_features(paths: LakehousePaths, symbol_keys: Sequence[str]) -> pd.DataFrame:
    """Long-form features of ``symbol_keys``, sorted by symbol then date.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_keys : sequence of str
        Symbols to read; symbols without a features file are absent from the result (compare the
        ``symbol`` column with the request to see which).

    Returns
    -------
    DataFrame of shape (n_rows, 2 + n_features)
        ``date`` (``datetime64[ns, UTC]``), ``symbol`` (str), float64 features; index ``0..n_rows-1``.
        Empty (no columns) when no symbol has a file.

    Raises
    ------
    UnsafeKeyError
        When a key is not valid.
    LakehouseReadError
        When a file exists but cannot be read, or the files do not share their columns.
    """
    frames = [_table_to_frame(read_table(path), path) for path in _existing_files(paths, symbol_keys)]
    return _concat(frames, paths)


def read_features_asof(
    paths: LakehousePaths, symbol_keys: Sequence[str], as_of: pd.Timestamp
) -> pd.DataFrame:
    """Each symbol's latest feature row dated at or before ``as_of``: what the Alpha cycle looks up.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_keys : sequence of str
        Symbols to look up; a symbol without a file, or without a row at or before ``as_of``, is absent.
    as_of : pandas.Timestamp
        Tz-aware cut-off; rows dated after it are never returned.

    Returns
    -------
    DataFrame of shape (n_found, 2 + n_features)
        One row per found symbol, sorted by symbol: ``date`` (``datetime64[ns, UTC]``, the row's own date),
        ``symbol``, float64 features.

    Raises
    ------
    ValueError
        When ``as_of`` is not a tz-aware timestamp.
    UnsafeKeyError, LakehouseReadError
        As :func:`read_features`.
    """
    if not isinstance(as_of, pd.Timestamp) or as_of.tzinfo is None:
        raise ValueError(f"`as_of` must be a tz-aware pandas Timestamp, got {as_of!r}")
    cutoff = as_of.tz_convert("UTC")
    frames = []
    for path in _existing_files(paths, symbol_keys):
        try:
            table = pq.read_table(path, filters=[("date", "<=", cutoff)])
        except (pa.ArrowInvalid, OSError) as err:
            raise LakehouseReadError(str(path), f"not a readable parquet file ({err})") from err
        if table.num_rows:
            frames.append(_table_to_frame(table.slice(table.num_rows - 1), path))
    return _concat(frames, paths)


def last_feature_date(paths: LakehousePaths, symbol_key: str) -> pd.Timestamp | None:
    """Return the latest ``date`` stored for ``symbol_key``, or None when it has no features file.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not valid.
    LakehouseReadError
        When the file exists but cannot be read.
    """
    path = paths.features_file(symbol_key)
    if not path.exists():
        return None
    try:
        dates = pq.read_table(path, columns=["date"]).column("date")
    except (pa.ArrowInvalid, OSError, KeyError) as err:
        raise LakehouseReadError(str(path), f"no readable `date` column ({err})") from err
    if len(dates) == 0:
        return None
    return pd.Timestamp(dates.cast(pa.int64()).to_numpy().max(), unit="ms", tz="UTC")


def _check_frame(frame: pd.DataFrame, symbol_key: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Validate an upsert frame; return its dates (int64 ms) and its feature columns (float64)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`frame` must be a pandas DataFrame, got {type(frame).__name__}")
    if list(frame.columns[:2]) != list(KEY_COLUMNS) or len(frame.columns) < 3:
        raise ValueError(
            f"`frame` must have columns ['date', 'symbol', <features>...], got {list(frame.columns[:4])}"
        )
    dtype = frame["date"].dtype
    if not isinstance(dtype, pd.DatetimeTZDtype) or str(dtype.tz) != "UTC":
        raise ValueError(f"`frame.date` must be tz-aware UTC, got dtype {dtype}")
    nanoseconds = pd.DatetimeIndex(frame["date"]).as_unit("ns").asi8
    if (nanoseconds % 1_000_000).any():
        raise ValueError("`frame.date` must hold whole milliseconds (the stored unit)")
    dates = nanoseconds // 1_000_000
    if len(dates) > 1 and not (np.diff(dates) > 0).all():
        raise ValueError("`frame.date` must be strictly increasing (sorted, unique)")
    if len(frame) and not (frame["symbol"] == symbol_key).all():
        raise ValueError(f"`frame.symbol` must equal {symbol_key!r} on every row")
    names = [str(name) for name in frame.columns[2:]]
    not_float = {
        name: str(dtype)
        for name, dtype in zip(names, frame.dtypes.iloc[2:], strict=True)
        if dtype != np.float64
    }
    if not_float:
        name, dtype = next(iter(not_float.items()))
        raise TypeError(f"feature column `{name}` must be float64, got {dtype}")
    # One (n_observations, n_features) view of the consolidated block, no per-column Series.
    values = frame.iloc[:, 2:].to_numpy(dtype=np.float64, copy=False)
    infinite = np.isinf(values).any(axis=0)
    if infinite.any():
        raise ValueError(
            f"feature column `{names[int(np.argmax(infinite))]}` holds inf; only finite values or NaN "
            "are stored"
        )
    columns = {name: values[:, i] for i, name in enumerate(names)}
    return dates, columns


def _read_stored(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    table = read_table(path)
    if table.column_names[:2] != list(KEY_COLUMNS):
        raise LakehouseReadError(
            str(path), f"expected columns date, symbol first, got {table.column_names[:3]}"
        )
    dates = table.column("date").cast(UTC_MS).cast(pa.int64()).to_numpy()
    columns = {
        name: table.column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        for name in table.column_names[2:]
    }
    return dates, columns


def _merge(
    old_dates: np.ndarray, old: dict[str, np.ndarray], new_dates: np.ndarray, new: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """New-wins union of two sorted, unique date axes; the number of new or changed rows of ``new``."""
    position = np.searchsorted(old_dates, new_dates)
    found = position < old_dates.size
    found[found] = old_dates[position[found]] == new_dates[found]
    differs = ~found
    matched = position[found]
    for name, values in new.items():
        before, after = old[name][matched], values[found]
        differs[found] |= ~((before == after) | (np.isnan(before) & np.isnan(after)))
    rows_changed = int(differs.sum())
    keep = np.ones(old_dates.size, dtype=bool)
    keep[matched] = False
    if not keep.any():
        return new_dates, new, rows_changed
    dates = np.concatenate([old_dates[keep], new_dates])
    order = np.argsort(dates, kind="stable")
    merged = {name: np.concatenate([old[name][keep], values])[order] for name, values in new.items()}
    return dates[order], merged, rows_changed


def _prefix_fingerprint(dates: np.ndarray, columns: dict[str, np.ndarray], n_rows: int) -> str | None:
    """sha256 of the column names, dates and value bits of the first ``n_rows`` rows; None if fewer rows."""
    if n_rows > len(dates):
        return None
    digest = hashlib.sha256(json.dumps(list(columns)).encode())
    digest.update(np.ascontiguousarray(dates[:n_rows], dtype=np.int64).tobytes())
    for values in columns.values():
        digest.update(np.ascontiguousarray(values[:n_rows]).tobytes())
    return digest.hexdigest()


def _stored_fingerprint(path: Path) -> tuple[int, str] | None:
    """(rows, sha256) recorded in the file's footer by :func:`_encode`; None when absent or unreadable."""
    try:
        metadata = pq.read_schema(path).metadata or {}
        record = json.loads(metadata[_FINGERPRINT_KEY])
        return int(record["rows"]), str(record["sha256"])
    except (pa.ArrowInvalid, OSError, KeyError, ValueError, TypeError):
        return None  # the full read-and-compare path decides, and reports a corrupt file


def _encode(symbol_key: str, dates: np.ndarray, columns: dict[str, np.ndarray]) -> bytes:
    arrays = [
        pa.array(dates, type=pa.int64()).cast(UTC_MS),
        pa.repeat(symbol_key, len(dates)).cast(pa.string()),
    ]
    arrays += [pa.array(values, type=pa.float64()) for values in columns.values()]
    fingerprint = {"rows": len(dates), "sha256": _prefix_fingerprint(dates, columns, len(dates))}
    schema = features_schema(list(columns)).with_metadata({_FINGERPRINT_KEY: json.dumps(fingerprint)})
    table = pa.Table.from_arrays(arrays, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_PARQUET_OPTIONS)
    return sink.getvalue().to_pybytes()


def _existing_files(paths: LakehousePaths, symbol_keys: Sequence[str]) -> list[Path]:
    if isinstance(symbol_keys, str):
        raise TypeError("`symbol_keys` must be a sequence of keys, got a single str")
    files = [paths.features_file(key) for key in sorted(set(symbol_keys))]
    return [path for path in files if path.exists()]


def _table_to_frame(table: pa.Table, path: Path) -> pd.DataFrame:
    if table.column_names[:2] != list(KEY_COLUMNS):
        raise LakehouseReadError(
            str(path), f"expected columns date, symbol first, got {table.column_names[:3]}"
        )
    frame = table.to_pandas()
    frame["date"] = frame["date"].astype("datetime64[ns, UTC]")
    return frame


def _concat(frames: list[pd.DataFrame], paths: LakehousePaths) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame()
    columns = list(frames[0].columns)
    if any(list(frame.columns) != columns for frame in frames[1:]):
        raise LakehouseReadError(
            str(paths.features_dir), "feature files do not share their columns; re-run the feature backfill"
        )
    return pd.concat(frames, ignore_index=True)
