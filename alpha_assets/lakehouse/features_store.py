"""``lakehouse/features_matrix.parquet/``: the per-symbol feature store.

The directory is a parquet dataset of long-form rows (``date``, ``symbol``, then float64 feature columns).
Each symbol has a **base file** ``<SYMBOL_KEY>.parquet`` and, after it, up to :func:`delta_limit` **delta
files** ``<SYMBOL_KEY>.1.parquet``, ``<SYMBOL_KEY>.2.parquet``, ... holding the rows appended since the base
was last written, each dated after every row before it. A symbol's rows are its base rows then its delta rows,
in index order: each (symbol, date) is stored once, so ``read_parquet('<dir>/*.parquet')`` in DuckDB sees every
row once. Appending one day writes one small delta file instead of re-encoding the symbol's whole history
(the base of 2,000 days x 84 features takes ~4 ms to decode and re-encode, a one-row delta ~1 ms to write);
the append after the last allowed delta, and every merge, **compacts**: the base is rewritten with every row
and the deltas are removed, highest index first.

Every write happens under an exclusive ``flock`` on ``lakehouse/_locks/features_matrix/<SYMBOL_KEY>.lock``
(:func:`open_symbol_features`; outside the dataset directory, which holds parquet files only) and each file is
replaced atomically, so two runs over overlapping symbols serialise per symbol and never lose or duplicate
rows. The readers of this module hold the same lock shared, so they see a symbol's files as one consistent
set. Each delta's footer records the rows stored before it; deltas that a compaction already folded into the
base (a crash between the rewrite and the removals) start before the base's end: readers ignore them and the
next writer removes them. Until then a raw glob reader sees those rows twice (docs/lakehouse.md). The
newest file's footer carries the writer's provenance record (a JSON object, e.g. the hash of the bars the
features came from), read back without reading the rows. The store does not know the feature list: it stores
whatever float64 columns it is given (the list lives in ``alpha_assets.features.matrix``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.atomic import write_bytes_atomic
from alpha_assets.lakehouse.locks import exclusive_lock, remove_sibling_lock, shared_lock
from alpha_assets.lakehouse.parquet import read_table, read_table_and_sha256
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import UTC_MS

__all__ = [
    "STATISTIC_COLUMNS",
    "StoredFeatures",
    "SymbolFeaturesFile",
    "UpsertResult",
    "delta_limit",
    "features_schema",
    "last_feature_date",
    "open_symbol_features",
    "read_features",
    "read_features_asof",
    "read_symbol_row_asof",
    "symbol_feature_files",
    "upsert_symbol_features",
]

KEY_COLUMNS = ("date", "symbol")
#: The statistic columns of the features, in stored order: the Alpha cycle reads them by name, so the
#: one list both cycles use is here, in the file contract.
STATISTIC_COLUMNS: tuple[str, ...] = (
    "return_20d",
    "return_60d",
    "return_120d",
    "volatility_60d",
    "efficiency_ratio_20d",
    "skewness_60d",
    "kurtosis_60d",
    "max_drawdown_252d",
    "history_length",
    "avg_traded_value_20d",
    "permutation_entropy_120d",
)
#: Footer key of the writer's provenance record (a JSON object).
_PROVENANCE_KEY = b"alpha_assets.features.provenance"
#: Footer key of a delta file: how many of the symbol's rows come before it (base and earlier deltas).
_ROW_OFFSET_KEY = b"alpha_assets.features.row_offset"
#: Footer key of a delta file: the identity (inode, size, mtime) of the base file it continues, so that a live
#: chain is recognised with a stat of the base instead of a read of its footer.
_BASE_IDENTITY_KEY = b"alpha_assets.features.base_identity"
#: Deltas a symbol takes before an append compacts: ``DELTA_LIMIT_MIN`` plus a key-dependent share of
#: ``DELTA_LIMIT_SPREAD``, so symbols ingested together do not all compact on the same day.
DELTA_LIMIT_MIN = 8
DELTA_LIMIT_SPREAD = 8
# Float features barely compress: uncompressed pages encode in half the time of LZ4 and decode twice as fast
# (docs/features.md has the figures). Dictionary encoding only where a column holds a handful of values
# (``symbol``, and the columns the writer names, e.g. votes); statistics only on ``date``, the one filtered
# column, whose footer maximum also gives a file's last date without reading it.
_PARQUET_OPTIONS = {"compression": "none", "write_statistics": ["date"]}


def delta_limit(symbol_key: str) -> int:
    """How many delta files ``symbol_key`` holds at most before an append compacts them into its base.

    Between ``DELTA_LIMIT_MIN`` and ``DELTA_LIMIT_MIN + DELTA_LIMIT_SPREAD - 1``, fixed per key (crc32), so a
    daily update compacts about one symbol in twelve instead of every symbol on the same day.
    """
    return DELTA_LIMIT_MIN + zlib.crc32(symbol_key.encode()) % DELTA_LIMIT_SPREAD


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
        Rows stored, base and deltas together.
    feature_columns : tuple of str
        The feature columns, in stored order (``date`` and ``symbol`` excluded).
    provenance : dict or None
        The newest file's provenance record; None when it has none (a merge without one drops it, because
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
    return _features_schema(tuple(feature_columns))


@functools.lru_cache(maxsize=16)
def _features_schema(names: tuple[str, ...]) -> pa.Schema:
    # Cached: every write and check builds the same ~90-field schema, which costs more than a one-row table.
    if not names or len(set(names)) != len(names) or set(names) & set(KEY_COLUMNS):
        raise ValueError(
            f"`feature_columns` must be non-empty, unique and exclude {KEY_COLUMNS}, got {list(names[:5])}... "
            f"({len(names)} names)"
        )
    return pa.schema(
        [pa.field("date", UTC_MS, nullable=False), pa.field("symbol", pa.string(), nullable=False)]
        + [pa.field(name, pa.float64()) for name in names]
    )


class SymbolFeaturesFile:
    """One symbol's features files, held under its exclusive lock; obtained from :func:`open_symbol_features`.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_key : str
        The symbol (already validated).
    dictionary_columns : sequence of str, default ()
        Feature columns written with dictionary encoding (see :func:`open_symbol_features`).
    """

    def __init__(self, paths: LakehousePaths, symbol_key: str, dictionary_columns: Sequence[str] = ()) -> None:
        self._paths = paths
        self.symbol_key = symbol_key
        self.path = paths.features_file(symbol_key)
        self._dictionary = ["symbol", *dictionary_columns]
        self._stored: StoredFeatures | None = None
        self._last_date: int | None = None
        self._deltas: list[Path] = []
        self._footer_read = False
        # Opened once: the footer parsed for ``stored`` serves the read of the rows too.
        self._base: pq.ParquetFile | None = None

    def stored(self) -> StoredFeatures | None:
        """Footer summary of the stored files (rows, columns, provenance), or None when there is no base file.

        Delta files left by an interrupted compaction, or without a base file, are removed here.

        Raises
        ------
        LakehouseReadError
            When a file exists but is not a readable features file.
        """
        if self._footer_read:
            return self._stored
        self._footer_read = True
        deltas = _existing_deltas(self._paths, self.symbol_key)
        try:
            base_stat = os.stat(self.path)
        except FileNotFoundError:
            _remove_newest_first(deltas)
            return None
        if deltas:
            newest = _read_metadata(deltas[-1])
            if _continues_base(newest, deltas[-1], base_stat, lambda: self._base_file().metadata.num_rows):
                # Everything the writer needs is in the newest file's footer: the base stays unread.
                summary = _footer_summary(newest, deltas[-1])
                n_rows = _row_offset(newest, deltas[-1]) + summary.n_rows
                self._stored = StoredFeatures(n_rows, summary.feature_columns, summary.provenance)
                self._last_date = _footer_last_date(newest, deltas[-1])
                self._deltas = deltas
                return self._stored
            _remove_newest_first(deltas)  # already folded into the base by a compaction that stopped early
        metadata = self._base_file().metadata
        self._stored, self._last_date = _footer_summary(metadata, self.path), _footer_last_date(metadata, self.path)
        return self._stored

    def _base_file(self) -> pq.ParquetFile:
        if self._base is None:
            self._base = _open_parquet(self.path)
        return self._base

    def close(self) -> None:
        """Close the base file if it was opened."""
        if self._base is not None:
            self._base.close()
            self._base = None

    def _read_rows(self) -> pa.Table:
        if self.stored() is None:
            raise LakehouseReadError(str(self.path), "file does not exist")
        try:
            base = self._base_file().read(use_threads=False)
        except (pa.ArrowInvalid, OSError) as err:
            raise LakehouseReadError(str(self.path), f"not a readable parquet file ({err})") from err
        return _join_files([(self.path, base), *((path, read_table(path)) for path in self._deltas)])

    def append(
        self,
        dates: np.ndarray,
        values: np.ndarray,
        feature_columns: Sequence[str],
        provenance: Mapping[str, Any],
    ) -> UpsertResult:
        """Append rows dated after the last stored row; the stored rows are kept, never recomputed.

        The rows go to a new delta file, or, when the symbol already has :func:`delta_limit` deltas (or the
        call only changes the provenance), into a rewritten base file with every stored row (a compaction).

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
            ``rows_changed`` is the number of appended rows. A file is written when a row is appended or
            the provenance changed, else nothing is.

        Raises
        ------
        ValueError
            When the inputs break the layout above, the file has other feature columns, or a date is not after
            the last stored one.
        LakehouseReadError
            When a stored file cannot be read.
        """
        names = _check_arrays(dates, values, feature_columns)
        stored = self.stored()
        if stored is not None and list(stored.feature_columns) != names:
            raise ValueError(
                f"`feature_columns` must equal the stored columns of {self.symbol_key} to append, got "
                f"{len(names)} names, stored {len(stored.feature_columns)}"
            )
        new = _table(self.symbol_key, dates, values, names)
        last = int(dates[-1]) if dates.size else self._last_date
        if stored is None:
            return self._write_base(new, provenance, rows_changed=dates.size, last_date=last)
        if dates.size == 0 and dict(provenance) == stored.provenance:
            return UpsertResult(rows_written=0, rows_changed=0, changed=False)
        if dates.size and self._last_date is not None and self._last_date >= dates[0]:
            raise ValueError(
                f"`dates` must all be after the last stored date of {self.symbol_key} to append, got "
                f"{pd.Timestamp(int(dates[0]), unit='ms', tz='UTC')}"
            )
        if dates.size and len(self._deltas) < delta_limit(self.symbol_key):
            return self._write_delta(new, provenance, last_date=last)
        old = self._read_rows().cast(new.schema)
        return self._write_base(pa.concat_tables([old, new]), provenance, rows_changed=dates.size, last_date=last)

    @property
    def compaction_due(self) -> bool:
        """Whether the next append compacts: the symbol holds :func:`delta_limit` deltas already.

        A writer that can recompute every row cheaper than reading them back (the feature backfill) then calls
        :meth:`rewrite` instead of :meth:`append`.
        """
        self.stored()
        return len(self._deltas) >= delta_limit(self.symbol_key)

    def rewrite(
        self,
        dates: np.ndarray,
        values: np.ndarray,
        feature_columns: Sequence[str],
        provenance: Mapping[str, Any],
    ) -> UpsertResult:
        """Replace every stored row by these (a compaction without reading the stored rows back).

        For a writer whose rows extend the stored ones unchanged, e.g. the features of every bar recomputed
        after new bars arrived: the stored rows are not compared, so ``rows_changed`` counts the rows dated
        after the last stored one.

        Parameters
        ----------
        dates, values, feature_columns, provenance
            As :meth:`append`, for the whole history.

        Returns
        -------
        UpsertResult
            The base file rewritten with these rows, the deltas removed.

        Raises
        ------
        ValueError
            When the inputs break the layout of :meth:`append`.
        LakehouseReadError
            When a stored file cannot be read.
        """
        names = _check_arrays(dates, values, feature_columns)
        self.stored()
        new_rows = int((dates > self._last_date).sum()) if self._last_date is not None else dates.size
        return self._write_rows(dates, values, names, provenance, rows_changed=new_rows)

    def upsert(
        self,
        dates: np.ndarray,
        values: np.ndarray,
        feature_columns: Sequence[str],
        provenance: Mapping[str, Any] | None = None,
    ) -> UpsertResult:
        """Merge rows into the stored ones: new values win on equal dates, stored dates absent from ``dates`` stay.

        A write rewrites the base file with every row and removes the deltas.

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
            Files are written only when a row is new or changed (NaN equals NaN) or the provenance changed.

        Raises
        ------
        ValueError
            When the inputs break the layout above.
        LakehouseReadError
            When a stored file cannot be read.
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
        return self._write_rows(merged_dates, merged, names, record, rows_changed=rows_changed)

    def _write_rows(
        self,
        dates: np.ndarray,
        values: np.ndarray,
        names: list[str],
        provenance: Mapping[str, Any] | None,
        *,
        rows_changed: int,
    ) -> UpsertResult:
        """Replace the base file with these rows (every row of the symbol) and remove the deltas."""
        table = _table(self.symbol_key, dates, values, names)
        last_date = int(dates[-1]) if dates.size else None
        return self._write_base(table, provenance, rows_changed=rows_changed, last_date=last_date)

    def _write_base(
        self, table: pa.Table, provenance: Mapping[str, Any] | None, *, rows_changed: int, last_date: int | None
    ) -> UpsertResult:
        """Replace the base file with ``table`` (every row of the symbol), then remove the deltas it holds."""
        metadata = {} if provenance is None else {_PROVENANCE_KEY: json.dumps(dict(provenance), sort_keys=True)}
        write_bytes_atomic(self._encode(table, metadata), self.path)
        # Newest first: an interruption leaves deltas 1..k, which the next writer recognises as folded in.
        _remove_newest_first(self._deltas)
        self.close()
        self._deltas = []
        self._record(table, provenance, n_rows=table.num_rows, last_date=last_date)
        return UpsertResult(rows_written=table.num_rows, rows_changed=rows_changed, changed=True)

    def _write_delta(self, table: pa.Table, provenance: Mapping[str, Any], *, last_date: int) -> UpsertResult:
        """Write ``table`` (rows after every stored one) as the next delta file."""
        offset = self._stored.n_rows
        metadata = {
            _PROVENANCE_KEY: json.dumps(dict(provenance), sort_keys=True),
            _ROW_OFFSET_KEY: str(offset),
            _BASE_IDENTITY_KEY: _identity(os.stat(self.path)),
        }
        path = self._paths.features_delta_file(self.symbol_key, len(self._deltas) + 1)
        # No directory fsync: a delta lost to a power cut leaves the previous file the newest, whose provenance
        # makes the next backfill compute and append these rows again.
        # Plain pages: a dictionary page per column costs more than it saves on a few rows.
        write_bytes_atomic(self._encode(table, metadata, dictionaries=False), path, sync_directory=False)
        self._deltas.append(path)
        self._record(table, provenance, n_rows=offset + table.num_rows, last_date=last_date)
        return UpsertResult(rows_written=offset + table.num_rows, rows_changed=table.num_rows, changed=True)

    def _encode(self, table: pa.Table, metadata: Mapping[bytes, str], *, dictionaries: bool = True) -> bytes:
        sink = pa.BufferOutputStream()
        present = set(table.column_names) if dictionaries else set()
        dictionary = [name for name in self._dictionary if name in present]
        pq.write_table(table.replace_schema_metadata(metadata), sink, use_dictionary=dictionary, **_PARQUET_OPTIONS)
        return sink.getvalue().to_pybytes()

    def _record(
        self, table: pa.Table, provenance: Mapping[str, Any] | None, *, n_rows: int, last_date: int | None
    ) -> None:
        """Remember what was written, so a second call in the same block needs no footer read."""
        self._stored = StoredFeatures(
            n_rows, tuple(table.column_names[2:]), None if provenance is None else dict(provenance)
        )
        self._last_date = last_date


@contextlib.contextmanager
def open_symbol_features(
    paths: LakehousePaths, symbol_key: str, *, dictionary_columns: Sequence[str] = ()
) -> Iterator[SymbolFeaturesFile]:
    """Hold the exclusive lock of one symbol's features files for a read-compute-write.

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
        The symbol's files, to read their footers and append or merge rows, valid inside the ``with`` block
        only.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid key.
    """
    with exclusive_lock(paths.features_lock_file(symbol_key)):
        remove_sibling_lock(paths.features_file(symbol_key))
        features = SymbolFeaturesFile(paths, symbol_key, dictionary_columns)
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


def symbol_feature_files(paths: LakehousePaths, symbol_key: str) -> list[Path]:
    """The files holding ``symbol_key``'s rows: its base file then its deltas in order; empty when none.

    Delta files already folded into the base (left by an interrupted compaction) are not listed. The list
    describes the store at the time of the call: read the files while a writer may run with
    :func:`read_features` instead, which holds the symbol's lock while it reads.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not valid.
    LakehouseReadError
        When a file exists but its footer cannot be read.
    """
    with shared_lock(paths.features_lock_file(symbol_key)):
        return _live_files(paths, symbol_key)


def read_features(paths: LakehousePaths, symbol_keys: Sequence[str]) -> pd.DataFrame:
    """Long-form features of ``symbol_keys``, sorted by symbol then date.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_keys : sequence of str
        Symbols to read; symbols without features are absent from the result (compare the ``symbol``
        column with the request to see which).

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
        When a file exists but cannot be read, a delta does not continue the rows before it, or the symbols
        do not share their columns.
    """
    frames = []
    for key in _unique_keys(symbol_keys):
        with shared_lock(paths.features_lock_file(key)):
            files = _live_files(paths, key)
            if files:
                table = _join_files([(path, read_table(path)) for path in files])
                frames.append(_table_to_frame(table, files[0]))
    return _concat(frames, paths)


def read_symbol_row_asof(
    paths: LakehousePaths, symbol_key: str, as_of: pd.Timestamp, *, columns: Sequence[str] | None = None
) -> tuple[pa.Table, dict[Path, str]]:
    """One symbol's latest feature row dated at or before ``as_of``, and the sha256 of every file parsed.

    Files are read newest first and the search stops at the first one holding such a row, so a lookup at
    the latest date reads one small delta file.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_key : str
        The symbol.
    as_of : pandas.Timestamp
        Tz-aware cut-off; rows dated after it are never returned.
    columns : sequence of str, optional
        Columns to parse (``date`` and ``symbol`` first); default every column. The hashes cover whole files.

    Returns
    -------
    table : pyarrow.Table
        The row (0 rows when the symbol has no file or no row at or before ``as_of``).
    hashes : dict of pathlib.Path to str
        The sha256 of exactly the bytes parsed, per file read: the fingerprints a run records.

    Raises
    ------
    ValueError
        When ``as_of`` is not a tz-aware timestamp.
    UnsafeKeyError, LakehouseReadError
        As :func:`read_features`.
    """
    if not isinstance(as_of, pd.Timestamp) or as_of.tzinfo is None:
        raise ValueError(f"`as_of` must be a tz-aware pandas Timestamp, got {as_of!r}")
    cutoff = pa.scalar(as_of.tz_convert("UTC"), type=UTC_MS)
    hashes: dict[Path, str] = {}
    table = pa.table({})
    selected = None if columns is None else list(columns)
    with shared_lock(paths.features_lock_file(symbol_key)):
        for path in reversed(_live_files(paths, symbol_key)):
            table, hashes[path] = read_table_and_sha256(path, columns=selected)
            dates = table.column("date")
            upto = table.filter(pc.less_equal(dates.cast(UTC_MS), cutoff))
            if upto.num_rows:
                return upto.slice(upto.num_rows - 1).replace_schema_metadata(None), hashes
    return table.slice(0, 0).replace_schema_metadata(None), hashes


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
    frames = []
    for key in _unique_keys(symbol_keys):
        row, _ = read_symbol_row_asof(paths, key, as_of)
        if row.num_rows:
            frames.append(_table_to_frame(row, paths.features_file(key)))
    return _concat(frames, paths)


def last_feature_date(paths: LakehousePaths, symbol_key: str) -> pd.Timestamp | None:
    """Return the latest ``date`` stored for ``symbol_key``, or None when it has no features.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not valid.
    LakehouseReadError
        When a file exists but cannot be read.
    """
    with shared_lock(paths.features_lock_file(symbol_key)):
        files = _live_files(paths, symbol_key)
        if not files:
            return None
        try:
            dates = pq.read_table(files[-1], columns=["date"]).column("date")
        except (pa.ArrowInvalid, OSError, KeyError) as err:
            raise LakehouseReadError(str(files[-1]), f"no readable `date` column ({err})") from err
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


def _table(symbol_key: str, dates: np.ndarray, values: np.ndarray, names: list[str]) -> pa.Table:
    n_rows = dates.size
    # One arrow buffer for every feature, sliced per column: cheaper than one array per feature.
    flat = pa.array(values.reshape(-1), type=pa.float64())
    arrays = [
        pa.array(dates, type=UTC_MS),
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


def _unique_keys(symbol_keys: Sequence[str]) -> list[str]:
    if isinstance(symbol_keys, str):
        raise TypeError("`symbol_keys` must be a sequence of keys, got a single str")
    return sorted(set(symbol_keys))


def _existing_deltas(paths: LakehousePaths, symbol_key: str) -> list[Path]:
    """Delta files 1, 2, ... up to the first missing index (a stat each: no directory listing)."""
    deltas = []
    while (path := paths.features_delta_file(symbol_key, len(deltas) + 1)).exists():
        deltas.append(path)
    return deltas


def _live_files(paths: LakehousePaths, symbol_key: str) -> list[Path]:
    """Base file then the deltas that continue it; the caller holds the symbol's lock (shared or exclusive)."""
    base = paths.features_file(symbol_key)
    try:
        base_stat = os.stat(base)
    except FileNotFoundError:
        return []
    deltas = _existing_deltas(paths, symbol_key)
    if deltas and not _continues_base(
        _read_metadata(deltas[-1]), deltas[-1], base_stat, lambda: _read_metadata(base).num_rows
    ):
        deltas = []  # folded into the base by a compaction that stopped before removing them
    return [base, *deltas]


def _identity(stat: os.stat_result) -> str:
    return f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"


def _continues_base(
    newest: pq.FileMetaData, path: Path, base_stat: os.stat_result, base_rows: Callable[[], int]
) -> bool:
    """Whether the newest delta continues the current base file (not left over from an earlier one).

    A base rewritten by a compaction is a new file (new inode and mtime), so a delta that names the current
    base's identity continues it. Otherwise (the base was rewritten, or the lakehouse copied: new inodes) the
    row offset decides: a leftover starts before the base's end.
    """
    if (newest.metadata or {}).get(_BASE_IDENTITY_KEY) == _identity(base_stat).encode():
        return True
    return _row_offset(newest, path) >= base_rows()


def _join_files(tables: list[tuple[Path, pa.Table]]) -> pa.Table:
    """Concatenate a symbol's base and delta tables, checking that each delta starts where the rows end."""
    base_path, base = tables[0]
    schema = base.schema.remove_metadata()
    parts, n_rows = [base.replace_schema_metadata(None)], base.num_rows
    for path, table in tables[1:]:
        offset = _row_offset(table.schema, path)
        if offset != n_rows:
            raise LakehouseReadError(
                str(path), f"starts after {offset} rows but {n_rows} rows precede it; re-run the feature backfill"
            )
        try:
            parts.append(table.replace_schema_metadata(None).cast(schema))
        except (pa.ArrowInvalid, ValueError) as err:
            raise LakehouseReadError(str(path), f"columns differ from {base_path.name} ({err})") from err
        n_rows += table.num_rows
    return pa.concat_tables(parts)


def _remove_newest_first(deltas: list[Path]) -> None:
    for path in reversed(deltas):
        path.unlink(missing_ok=True)


def _open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise LakehouseReadError(str(path), f"not a readable parquet file ({err})") from err


def _read_metadata(path: Path) -> pq.FileMetaData:
    try:
        return pq.read_metadata(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise LakehouseReadError(str(path), f"not a readable parquet file ({err})") from err


def _row_offset(source: pq.FileMetaData | pa.Schema, path: Path) -> int:
    """The rows stored before a delta file, from its footer (a parsed schema carries the same record)."""
    record = (source.metadata or {}).get(_ROW_OFFSET_KEY)
    try:
        offset = int(record)
    except (TypeError, ValueError):
        raise LakehouseReadError(str(path), "delta file without a readable row offset in its footer") from None
    if offset < 0:
        raise LakehouseReadError(str(path), f"negative row offset {offset} in its footer")
    return offset


def _footer_last_date(metadata: pq.FileMetaData, path: Path) -> int | None:
    """Last ``date`` of a file (ms), from its row groups' statistics; None when it has no rows."""
    last = None
    for index in range(metadata.num_row_groups):
        statistics = metadata.row_group(index).column(0).statistics
        if metadata.row_group(index).num_rows == 0:
            continue
        if statistics is None or not statistics.has_min_max:
            raise LakehouseReadError(str(path), "no `date` statistics in its footer; re-run the feature backfill")
        last = statistics.max_raw if last is None else max(last, statistics.max_raw)
    return None if last is None else int(last)


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
