"""``lakehouse/features_matrix.parquet/``: the per-symbol feature store (one parquet file per symbol).

The directory is a parquet dataset: ``<SYMBOL_KEY>.parquet`` holds one symbol's long-form rows (``date``,
``symbol``, then float64 feature columns), sorted by ``date``, unique. Reading the files in name order gives
the long form sorted by symbol then date; DuckDB reads it with ``read_parquet('<dir>/*.parquet')``.

Every write happens under an exclusive ``flock`` on the sibling ``<SYMBOL_KEY>.parquet.lock``
(:func:`open_symbol_features`) and replaces the file atomically, so two runs over overlapping symbols
serialise per symbol and never lose or duplicate rows, and readers see the old file or the new one. A writer
either merges (new values win on equal dates, stored dates absent from the new rows are kept) or appends rows
dated after the last stored one, copying the stored rows as they are. The file's footer can carry a
provenance record (a JSON object chosen by the writer, e.g. the hash of the bars the features came from), read
back without reading the rows. The store does not know the feature list: it stores whatever float64 columns
it is given (the list lives in ``alpha_assets.features.matrix``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.parquet import exclusive_lock, read_table, write_bytes_atomic
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import UTC_MS

__all__ = [
    "StoredFeatures",
    "SymbolFeaturesFile",
    "UpsertResult",
    "features_schema",
    "last_feature_date",
    "open_symbol_features",
    "read_features",
    "read_features_asof",
    "upsert_symbol_features",
]

KEY_COLUMNS = ("date", "symbol")
#: Footer key of the writer's provenance record (a JSON object).
_PROVENANCE_KEY = b"alpha_assets.features.provenance"
# Float features barely compress: uncompressed pages encode in half the time of LZ4 and decode twice as fast
# (docs/features.md has the figures), and an incremental update decodes and re-encodes the whole file.
# Dictionary encoding only where a column holds a handful of values (``symbol``, and the columns the writer
# names, e.g. votes); statistics only on ``date``, the one filtered column.
_PARQUET_OPTIONS = {"compression": "none", "write_statistics": ["date"]}


@dataclass(frozen=True)
class UpsertResult:
    """What one symbol's write did.

    Attributes
    ----------
    rows_written : int
        Rows in the file after the write; 0 when nothing was written.
    rows_changed : int
        Rows of the new data whose date was not stored or whose values differ (NaN equals NaN).
    changed : bool
        Whether the file was (re)written: a row changed, or the provenance record did.
    """

    rows_written: int
    rows_changed: int
    changed: bool


@dataclass(frozen=True)
class StoredFeatures:
    """What a features file's footer says, read without its rows.

    Attributes
    ----------
    n_rows : int
        Rows stored.
    feature_columns : tuple of str
        The feature columns, in stored order (``date`` and ``symbol`` excluded).
    provenance : dict or None
        The writer's provenance record; None when the file has none (a merge without one drops it, because
        the rows it described may have changed).
    """

    n_rows: int
    feature_columns: tuple[str, ...]
    provenance: dict[str, Any] | None


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


class SymbolFeaturesFile:
    """One symbol's features file, held under its exclusive lock; obtained from :func:`open_symbol_features`.

    Parameters
    ----------
    path : pathlib.Path
        ``features_matrix.parquet/<SYMBOL_KEY>.parquet``.
    symbol_key : str
        The symbol (already validated).
    dictionary_columns : sequence of str, default ()
        Feature columns written with dictionary encoding (see :func:`open_symbol_features`).
    """

    def __init__(self, path: Path, symbol_key: str, dictionary_columns: Sequence[str] = ()) -> None:
        self.path = path
        self.symbol_key = symbol_key
        self._dictionary = ["symbol", *dictionary_columns]
        self._stored: StoredFeatures | None = None
        self._footer_read = False
        # Opened once: the footer parsed for ``stored`` serves the read of the rows too.
        self._parquet: pq.ParquetFile | None = None

    def stored(self) -> StoredFeatures | None:
        """Footer summary of the stored file (rows, columns, provenance), or None when there is no file.

        Raises
        ------
        LakehouseReadError
            When the file exists but is not a readable parquet file.
        """
        if not self._footer_read:
            if self.path.exists():
                try:
                    self._parquet = pq.ParquetFile(self.path)
                except (pa.ArrowInvalid, OSError) as err:
                    raise LakehouseReadError(str(self.path), f"not a readable parquet file ({err})") from err
                self._stored = _footer_summary(self._parquet.metadata, self.path)
            self._footer_read = True
        return self._stored

    def close(self) -> None:
        """Close the stored file if it was opened."""
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None

    def _read_rows(self) -> pa.Table:
        self.stored()
        if self._parquet is None:
            raise LakehouseReadError(str(self.path), "file does not exist")
        try:
            return self._parquet.read(use_threads=False)
        except (pa.ArrowInvalid, OSError) as err:
            raise LakehouseReadError(str(self.path), f"not a readable parquet file ({err})") from err

    def append(
        self,
        dates: np.ndarray,
        values: np.ndarray,
        feature_columns: Sequence[str],
        provenance: Mapping[str, Any],
    ) -> UpsertResult:
        """Append rows dated after the last stored row; the stored rows are copied, never recomputed.

        Parameters
        ----------
        dates : ndarray of shape (n_observations,), int64
            Row dates, milliseconds since the epoch (UTC), strictly increasing, all after the last stored
            date.
        values : ndarray of shape (n_features, n_observations), float64
            Feature-major values (``values[i]`` is ``feature_columns[i]``); NaN allowed, inf not.
        feature_columns : sequence of str
            The feature names; must equal the stored file's.
        provenance : mapping
            JSON-serialisable record written in the footer, replacing the stored one.

        Returns
        -------
        UpsertResult
            ``rows_changed`` is the number of appended rows. The file is rewritten when a row is appended or
            the provenance changed, else left alone.

        Raises
        ------
        ValueError
            When the inputs break the layout above, the file has other feature columns, or a date is not after
            the last stored one.
        LakehouseReadError
            When the stored file cannot be read.
        """
        names = _check_arrays(dates, values, feature_columns)
        stored = self.stored()
        if stored is not None and list(stored.feature_columns) != names:
            raise ValueError(
                f"`feature_columns` must equal the stored columns of {self.symbol_key} to append, got "
                f"{len(names)} names, stored {len(stored.feature_columns)}"
            )
        new = _table(self.symbol_key, dates, values, names)
        if stored is None:
            return self._write(new, provenance, rows_changed=dates.size)
        if dates.size == 0 and dict(provenance) == stored.provenance:
            return UpsertResult(rows_written=0, rows_changed=0, changed=False)
        old = self._read_rows()
        if dates.size and old.num_rows and _last_date(old) >= dates[0]:
            raise ValueError(
                f"`dates` must all be after the last stored date of {self.symbol_key} to append, got "
                f"{pd.Timestamp(int(dates[0]), unit='ms', tz='UTC')}"
            )
        old = old.replace_schema_metadata(None)
        if not old.schema.equals(new.schema):
            old = old.cast(new.schema)
        return self._write(pa.concat_tables([old, new]), provenance, rows_changed=dates.size)

    def upsert(
        self,
        dates: np.ndarray,
        values: np.ndarray,
        feature_columns: Sequence[str],
        provenance: Mapping[str, Any] | None = None,
    ) -> UpsertResult:
        """Merge rows into the file: new values win on equal dates, stored dates absent from ``dates`` stay.

        Parameters
        ----------
        dates : ndarray of shape (n_observations,), int64
            Row dates, milliseconds since the epoch (UTC), strictly increasing.
        values : ndarray of shape (n_features, n_observations), float64
            Feature-major values; NaN allowed, inf not.
        feature_columns : sequence of str
            The feature names. When the stored file has other columns (an older feature list), it is
            replaced by these rows alone and every row counts as changed.
        provenance : mapping, optional
            Record written in the footer. None writes none: the stored record no longer describes the rows
            once they changed.

        Returns
        -------
        UpsertResult
            The file is rewritten only when a row is new or changed (NaN equals NaN) or the provenance
            changed.

        Raises
        ------
        ValueError
            When the inputs break the layout above.
        LakehouseReadError
            When the stored file cannot be read.
        """
        names = _check_arrays(dates, values, feature_columns)
        stored = self.stored()
        record = None if provenance is None else dict(provenance)
        if stored is None or list(stored.feature_columns) != names:
            merged_dates, merged, rows_changed = dates, values, dates.size
        else:
            old = self._read_rows()
            old_values = np.stack([old.column(i).to_numpy() for i in range(2, old.num_columns)])
            merged_dates, merged, rows_changed = _merge(
                old.column("date").cast(pa.int64()).to_numpy(), old_values, dates, values
            )
        if rows_changed == 0 and (record is None or (stored is not None and record == stored.provenance)):
            return UpsertResult(rows_written=0, rows_changed=0, changed=False)
        return self._write(_table(self.symbol_key, merged_dates, merged, names), record, rows_changed=rows_changed)

    def _write(self, table: pa.Table, provenance: Mapping[str, Any] | None, *, rows_changed: int) -> UpsertResult:
        metadata = {} if provenance is None else {_PROVENANCE_KEY: json.dumps(dict(provenance), sort_keys=True)}
        sink = pa.BufferOutputStream()
        dictionary = [name for name in self._dictionary if name in table.column_names]
        pq.write_table(table.replace_schema_metadata(metadata), sink, use_dictionary=dictionary, **_PARQUET_OPTIONS)
        write_bytes_atomic(sink.getvalue().to_pybytes(), self.path)
        self._stored = StoredFeatures(
            table.num_rows, tuple(table.column_names[2:]), None if provenance is None else dict(provenance)
        )
        return UpsertResult(rows_written=table.num_rows, rows_changed=rows_changed, changed=True)


@contextlib.contextmanager
def open_symbol_features(
    paths: LakehousePaths, symbol_key: str, *, dictionary_columns: Sequence[str] = ()
) -> Iterator[SymbolFeaturesFile]:
    """Hold the exclusive lock of one symbol's features file for a read-compute-write.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_key : str
        The symbol, e.g. ``"BINANCE_BTCUSDT"``.
    dictionary_columns : sequence of str, default ()
        Feature columns holding a handful of distinct values (votes, labels), written with dictionary
        encoding: a few bits per row instead of 8 bytes (the 26 votes and the rating take a third of a file
        in plain encoding). Other feature columns are written plain.

    Yields
    ------
    SymbolFeaturesFile
        The file, to read its footer and append or merge rows, valid inside the ``with`` block only.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid key.
    """
    path = paths.features_file(symbol_key)
    with exclusive_lock(path):
        features = SymbolFeaturesFile(path, symbol_key, dictionary_columns)
        try:
            yield features
        finally:
            features.close()


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
        ``frame`` alone and every row counts as changed. A write drops the stored provenance record.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid key.
    ValueError, TypeError
        When ``frame`` breaks the layout above.
    LakehouseReadError
        When the stored file exists but cannot be read.
    """
    dates, values, names = _check_frame(frame, symbol_key)
    with open_symbol_features(paths, symbol_key) as features:
        return features.upsert(dates, values, names)


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


def read_features_asof(paths: LakehousePaths, symbol_keys: Sequence[str], as_of: pd.Timestamp) -> pd.DataFrame:
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


def _check_frame(frame: pd.DataFrame, symbol_key: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate an upsert frame; return its dates (int64 ms), feature-major values and feature names."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`frame` must be a pandas DataFrame, got {type(frame).__name__}")
    if list(frame.columns[:2]) != list(KEY_COLUMNS) or len(frame.columns) < 3:
        raise ValueError(f"`frame` must have columns ['date', 'symbol', <features>...], got {list(frame.columns[:4])}")
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
        name: str(dtype) for name, dtype in zip(names, frame.dtypes.iloc[2:], strict=True) if dtype != np.float64
    }
    if not_float:
        name, dtype = next(iter(not_float.items()))
        raise TypeError(f"feature column `{name}` must be float64, got {dtype}")
    # One (n_features, n_observations) copy of the consolidated block, each feature contiguous.
    values = np.ascontiguousarray(frame.iloc[:, 2:].to_numpy(dtype=np.float64).T)
    return dates, values, names


def _check_arrays(dates: np.ndarray, values: np.ndarray, feature_columns: Sequence[str]) -> list[str]:
    """Validate dates (int64 ms, strictly increasing) and feature-major values; return the feature names."""
    names = list(features_schema(feature_columns).names[2:])
    if not isinstance(dates, np.ndarray) or dates.ndim != 1 or dates.dtype != np.int64:
        got = f"shape {dates.shape} dtype {dates.dtype}" if isinstance(dates, np.ndarray) else type(dates).__name__
        raise ValueError(f"`dates` must be a 1-D int64 array of milliseconds (n_observations,), got {got}")
    if dates.size > 1 and not (np.diff(dates) > 0).all():
        raise ValueError("`dates` must be strictly increasing (sorted, unique)")
    expected = (len(names), dates.size)
    if not isinstance(values, np.ndarray) or values.dtype != np.float64 or values.shape != expected:
        got = f"shape {values.shape} dtype {values.dtype}" if isinstance(values, np.ndarray) else type(values).__name__
        raise ValueError(f"`values` must be float64 of shape (n_features, n_observations) = {expected}, got {got}")
    infinite = np.isinf(values).any(axis=1)
    if infinite.any():
        raise ValueError(
            f"feature column `{names[int(np.argmax(infinite))]}` holds inf; only finite values or NaN are stored"
        )
    return names


def _footer_summary(metadata: pq.FileMetaData, path: Path) -> StoredFeatures:
    names = metadata.schema.names
    if names[:2] != list(KEY_COLUMNS):
        raise LakehouseReadError(str(path), f"expected columns date, symbol first, got {names[:3]}")
    record = (metadata.metadata or {}).get(_PROVENANCE_KEY)
    try:
        provenance = None if record is None else json.loads(record)
    except ValueError:
        provenance = None  # an unreadable record describes nothing: the writer recomputes
    return StoredFeatures(metadata.num_rows, tuple(names[2:]), provenance if isinstance(provenance, dict) else None)


def _last_date(table: pa.Table) -> int:
    return int(table.column("date")[-1].cast(pa.int64()).as_py())


def _table(symbol_key: str, dates: np.ndarray, values: np.ndarray, names: list[str]) -> pa.Table:
    n_rows = dates.size
    # One arrow buffer for every feature, sliced per column: cheaper than one array per feature.
    flat = pa.array(values.reshape(-1), type=pa.float64())
    arrays = [
        pa.array(dates, type=pa.int64()).cast(UTC_MS),
        pa.repeat(pa.scalar(symbol_key, pa.string()), n_rows),
    ]
    arrays += [flat.slice(i * n_rows, n_rows) for i in range(len(names))]
    return pa.Table.from_arrays(arrays, schema=features_schema(names))


def _merge(
    old_dates: np.ndarray, old: np.ndarray, new_dates: np.ndarray, new: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int]:
    """New-wins union of two sorted, unique date axes of (n_features, n_rows) values; new or changed rows."""
    position = np.searchsorted(old_dates, new_dates)
    found = position < old_dates.size
    found[found] = old_dates[position[found]] == new_dates[found]
    matched = position[found]
    before, after = old[:, matched], new[:, found]
    same = ((before == after) | (np.isnan(before) & np.isnan(after))).all(axis=0)
    differs = ~found
    differs[found] = ~same
    rows_changed = int(differs.sum())
    keep = np.ones(old_dates.size, dtype=bool)
    keep[matched] = False
    if not keep.any():
        return new_dates, new, rows_changed
    dates = np.concatenate([old_dates[keep], new_dates])
    order = np.argsort(dates, kind="stable")
    return dates[order], np.concatenate([old[:, keep], new], axis=1)[:, order], rows_changed


def _existing_files(paths: LakehousePaths, symbol_keys: Sequence[str]) -> list[Path]:
    if isinstance(symbol_keys, str):
        raise TypeError("`symbol_keys` must be a sequence of keys, got a single str")
    files = [paths.features_file(key) for key in sorted(set(symbol_keys))]
    return [path for path in files if path.exists()]


def _table_to_frame(table: pa.Table, path: Path) -> pd.DataFrame:
    if table.column_names[:2] != list(KEY_COLUMNS):
        raise LakehouseReadError(str(path), f"expected columns date, symbol first, got {table.column_names[:3]}")
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
