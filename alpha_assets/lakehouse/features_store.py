"""``lakehouse/features_matrix/``: the features of every symbol, one Delta Lake table.

The table holds long-form rows (``date``, ``symbol``, then float64 feature columns), unpartitioned: one new day for
every symbol is one small file and one commit, and the Alpha cycle's as-of read prunes files on their ``date``
statistics (bench/README.md, "Table formats", has the measured choice against per-symbol files, a partition per
symbol, Iceberg and DuckLake). Every change is a Delta transaction (``deltalake``): a reader sees a version whole or
not at all, two writers commit one after the other (delta-rs retries a commit that lost the race when the other
commit does not conflict with it, and :func:`write_features` retries the ones that do), and a writer killed before
its commit leaves files no version names. No lock file, rename or inode is involved, so the same code runs on an
object store (``LakehousePaths.features_table_uri`` and ``table_storage_options``).

A write deletes the rows it replaces in the same commit: an append deletes the symbol's rows dated on or after its
first new row (none, unless an earlier commit's provenance was lost) and a merge deletes the symbol's rows, so no
(symbol, date) is ever stored twice, whatever a reader uses. Versions stay readable (time travel) until
:func:`maintain_features_table` vacuums them, and it keeps the versions frozen RUN_IDs recorded.

**Provenance.** ``lakehouse/features_provenance/`` (a small Delta table, one row per symbol) says what each
symbol's stored rows came from (the writer's JSON record, e.g. the hashes of the bars), how many rows it has and
its last date: the backfill decides skip / append / recompute from it without reading the features. It is
committed after the features, so a writer stopped between the two commits leaves a record that is behind the
rows, never ahead: the next append then replaces the rows it finds again instead of duplicating them.

The store does not know the feature list: it stores whatever float64 columns it is given (the list lives in
``alpha_assets.features.matrix``).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import ColumnProperties, CommitProperties, DeltaTable, QueryBuilder, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from alpha_assets.errors import DiskFullError, LakehouseReadError
from alpha_assets.lakehouse.keys import RUN_ID_PATTERN, validate_symbol_key
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import UTC_MS

__all__ = [
    "STATISTIC_COLUMNS",
    "FeatureRows",
    "StoredFeatures",
    "UpsertResult",
    "archive_legacy_features",
    "features_data_version",
    "features_schema",
    "features_table_version",
    "frozen_table_versions",
    "last_feature_date",
    "legacy_feature_keys",
    "maintain_features_table",
    "read_features",
    "read_features_asof",
    "stored_features",
    "upsert_symbol_features",
    "write_features",
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
#: Rows of a commit's record batch that gathers the rows of several symbols (see ``_rows_table``).
BATCH_ROWS = 65_536
#: Times a commit that conflicts with a concurrent one is tried again (each re-reads the latest version).
COMMIT_ATTEMPTS = 5
#: Data files in the features table above which :func:`maintain_features_table` compacts it (about one a day).
MAX_TABLE_FILES = 32
#: Removed files stay this long before a vacuum deletes them, so a reader that opened an older version finishes.
VACUUM_RETENTION_HOURS = 24
#: The as-of read looks this far back first; symbols without a row in the window are read again without bound.
ASOF_WINDOW = pd.Timedelta(days=14)
#: Table properties: keep the commit log (time travel to a frozen RUN_ID's version needs it) and one checkpoint
#: every 100 commits, Delta's default.
_TABLE_CONFIGURATION = {"delta.enableExpiredLogCleanup": "false", "delta.logRetentionDuration": "interval 3650 days"}
#: How delta-rs words a full disk or quota (the text of the OS error it wraps).
_DISK_FULL_TEXTS = ("No space left on device", "Disk quota exceeded", "os error 28", "os error 122")
_PROVENANCE_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("n_rows", pa.int64(), nullable=False),
        pa.field("last_date", UTC_MS),
        pa.field("feature_columns", pa.string(), nullable=False),
        pa.field("provenance", pa.string()),
    ]
)


class StaleAppendError(ValueError):
    """Appends that start on or before their symbol's last stored date: planned before another writer stored rows.

    ``symbol_keys`` names every such symbol of the write; a writer that planned them on an older read plans them
    again on what is stored now (the feature backfill does).
    """

    def __init__(self, symbol_keys: Sequence[str], first_date: int) -> None:
        self.symbol_keys = tuple(symbol_keys)
        super().__init__(
            f"`dates` must all be after the last stored date of {', '.join(self.symbol_keys)} to append, got "
            f"{pd.Timestamp(first_date, unit='ms', tz='UTC')}"
        )


@dataclass(frozen=True)
class UpsertResult:
    """What one symbol's write did.

    Attributes
    ----------
    rows_written : int
        Rows stored for the symbol after the write; 0 when nothing was written.
    rows_changed : int
        Rows of the new data whose date was not stored or whose values differ (NaN equals NaN).
    changed : bool
        Whether the symbol was written: a row changed, or the provenance record did.
    """

    rows_written: int
    rows_changed: int
    changed: bool


@dataclass(frozen=True)
class StoredFeatures:
    """What the provenance table says of one symbol's stored features.

    Attributes
    ----------
    n_rows : int
        Rows stored.
    last_date : int or None
        Date of the last row, milliseconds since the epoch (UTC); None without rows.
    feature_columns : tuple of str
        The feature columns the rows were written with.
    provenance : dict or None
        The writer's record; None when it wrote none (a merge without one: the rows it described changed).
    """

    n_rows: int
    last_date: int | None
    feature_columns: tuple[str, ...]
    provenance: dict[str, Any] | None


@dataclass(frozen=True)
class FeatureRows:
    """Rows of one symbol for :func:`write_features`.

    Attributes
    ----------
    symbol_key : str
        The symbol.
    dates : ndarray of shape (n_observations,), int64
        Milliseconds since the epoch (UTC), strictly increasing.
    values : ndarray of shape (n_features, n_observations), float64
        Feature-major values (``values[i]`` is feature ``i``); NaN allowed, inf not.
    provenance : dict or None
        The record stored with the rows; None stores none.
    append : bool
        True: the rows follow every stored row (the stored ones are kept as they are). False: they are merged into
        the stored rows, new values winning on equal dates.
    """

    symbol_key: str
    dates: np.ndarray
    values: np.ndarray
    provenance: Mapping[str, Any] | None
    append: bool


def features_schema(feature_columns: Sequence[str]) -> pa.Schema:
    """Arrow schema of the features rows: ``date`` (timestamp ms UTC), ``symbol`` (string), float64 features.

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


def stored_features(paths: LakehousePaths, symbol_keys: Sequence[str]) -> dict[str, StoredFeatures]:
    """The provenance records of ``symbol_keys`` (one read of the provenance table); symbols without rows absent.

    Raises
    ------
    UnsafeKeyError
        When a key is not valid.
    LakehouseReadError
        When the provenance table exists but cannot be read.
    """
    keys = set(_unique_keys(symbol_keys))
    return {key: record for key, record in _read_provenance(paths).items() if key in keys}


def write_features(
    paths: LakehousePaths,
    rows: Sequence[FeatureRows],
    feature_columns: Sequence[str],
    *,
    dictionary_columns: Sequence[str] = (),
) -> dict[str, UpsertResult]:
    """Store several symbols' rows in one commit of the features table, then their provenance in one commit.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    rows : sequence of FeatureRows
        At most one entry per symbol. Appends must start after the symbol's last stored date; merges read the
        symbol's stored rows back (one scan for all of them) and are written only when a row or the provenance
        changed.
    feature_columns : sequence of str
        The feature names of every entry; must equal the table's.
    dictionary_columns : sequence of str, default ()
        Feature columns holding a handful of distinct values (votes, labels), written with dictionary encoding:
        a few bits per row instead of 8 bytes. Other feature columns are written plain (unique floats only grow
        a dictionary).

    Returns
    -------
    dict of str to UpsertResult
        One result per entry.

    Raises
    ------
    StaleAppendError
        When appends start on or before their symbol's last stored date (a ``ValueError`` naming them all).
    ValueError
        When an entry breaks the layout above, a symbol repeats, or ``feature_columns`` differ from the table's.
    LakehouseReadError
        When a stored table cannot be read.
    CommitFailedError
        When a commit conflicted with concurrent ones ``COMMIT_ATTEMPTS`` times.
    """
    names = list(features_schema(feature_columns).names[2:])
    keys = [validate_symbol_key(entry.symbol_key) for entry in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"`rows` must hold one entry per symbol, got {len(keys)} entries for {len(set(keys))}")
    for entry in rows:
        _check_arrays(entry.dates, entry.values, names)
    attempt = 1
    while True:
        try:
            return _write_once(paths, rows, names, dictionary_columns)
        except CommitFailedError:
            # A concurrent commit touched these symbols' rows since they were read: read and merge again.
            if attempt == COMMIT_ATTEMPTS:
                raise
            attempt += 1


def _write_once(
    paths: LakehousePaths, rows: Sequence[FeatureRows], names: list[str], dictionary_columns: Sequence[str]
) -> dict[str, UpsertResult]:
    """One attempt of :func:`write_features`: read one version, merge, commit on top of that same version.

    Committing on the version the stored rows were read from is what makes delta-rs refuse the commit when
    another writer changed them in between (instead of deleting that writer's rows unseen).
    """
    keys = [entry.symbol_key for entry in rows]
    stored = stored_features(paths, keys)
    table = _open_table(paths, None, reader=False) or _create_table(paths, names)
    _check_table_columns(paths, table, names)
    stale: list[FeatureRows] = []
    for entry in rows:
        before = stored.get(entry.symbol_key)
        if entry.append and before is not None and list(before.feature_columns) != names:
            raise ValueError(
                f"`feature_columns` must equal the stored columns of {entry.symbol_key} to append, got "
                f"{len(names)} names, stored {len(before.feature_columns)}"
            )
        if entry.append and entry.dates.size and before is not None and before.last_date is not None:
            if entry.dates[0] <= before.last_date:
                stale.append(entry)
    if stale:
        raise StaleAppendError([entry.symbol_key for entry in stale], int(stale[0].dates[0]))
    merged = _merge_with_stored(paths, table, [entry for entry in rows if not entry.append], names)
    results: dict[str, UpsertResult] = {}
    stored_rows: list[tuple[str, np.ndarray, np.ndarray]] = []
    replaced: list[str] = []
    appended_from: dict[int, list[str]] = {}  # first new date -> the symbols appending from it
    records: dict[str, StoredFeatures] = {}
    for entry in rows:
        before = stored.get(entry.symbol_key)
        record = None if entry.provenance is None else dict(entry.provenance)
        if entry.append:
            if entry.dates.size == 0 and before is not None and record == before.provenance:
                results[entry.symbol_key] = UpsertResult(0, 0, changed=False)
                continue
            dates, values, rows_changed = entry.dates, entry.values, entry.dates.size
            n_rows = (before.n_rows if before is not None else 0) + dates.size
            if dates.size:
                appended_from.setdefault(int(dates[0]), []).append(entry.symbol_key)
            last = int(dates[-1]) if dates.size else (before.last_date if before is not None else None)
        else:
            dates, values, rows_changed = merged[entry.symbol_key]
            if rows_changed == 0 and (record is None or (before is not None and record == before.provenance)):
                results[entry.symbol_key] = UpsertResult(0, 0, changed=False)
                continue
            n_rows, last = dates.size, int(dates[-1]) if dates.size else None
            replaced.append(entry.symbol_key)
        if dates.size or not entry.append:
            stored_rows.append((entry.symbol_key, dates, values))
        records[entry.symbol_key] = StoredFeatures(n_rows, last, tuple(names), record)
        results[entry.symbol_key] = UpsertResult(n_rows, rows_changed, changed=True)
    # One term per first date, not per symbol: a day of every symbol is one `date >= D AND symbol IN (...)`,
    # which the date statistics prune to the files of that day on (none, normally).
    deletions = [f"(date >= {_timestamp_sql(first)} AND {_symbols_sql(keys)})" for first, keys in appended_from.items()]
    if replaced:
        deletions.append(_symbols_sql(replaced))
    if stored_rows or deletions:
        data = _rows_table(stored_rows, names)
        _commit_rows(paths, table, data, deletions, dictionary_columns)
    if records:
        _commit_provenance(paths, records)
    return results


def upsert_symbol_features(paths: LakehousePaths, symbol_key: str, frame: pd.DataFrame) -> UpsertResult:
    """Merge one symbol's feature rows into the table; commit only when a row changed.

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
        are kept. A write drops the stored provenance record.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid key.
    ValueError, TypeError
        When ``frame`` breaks the layout above or its feature columns differ from the table's.
    LakehouseReadError
        When the table exists but cannot be read.
    """
    symbol_key = validate_symbol_key(symbol_key)
    dates, values, names = _check_frame(frame, symbol_key)
    entry = FeatureRows(symbol_key, dates, values, provenance=None, append=False)
    return write_features(paths, [entry], names)[symbol_key]


def read_features(paths: LakehousePaths, symbol_keys: Sequence[str], *, version: int | None = None) -> pd.DataFrame:
    """Long-form features of ``symbol_keys``, sorted by symbol then date.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_keys : sequence of str
        Symbols to read; symbols without features are absent from the result (compare the ``symbol`` column
        with the request to see which).
    version : int, optional
        The table version to read (time travel); default the latest.

    Returns
    -------
    DataFrame of shape (n_rows, 2 + n_features)
        ``date`` (``datetime64[ns, UTC]``), ``symbol`` (str), float64 features; index ``0..n_rows-1``. Empty (no
        columns) when no symbol has rows.

    Raises
    ------
    UnsafeKeyError
        When a key is not valid.
    LakehouseReadError
        When the table cannot be read, or only the pre-Delta layout exists (see :func:`legacy_feature_keys`).
    """
    keys = _unique_keys(symbol_keys)
    table = _open_table(paths, version)
    if table is None or not keys:
        return pd.DataFrame()
    rows = _scan(paths, table, _symbols_sql(keys))
    if rows.num_rows == 0:
        return pd.DataFrame()
    return _to_frame(rows.sort_by([("symbol", "ascending"), ("date", "ascending")]))


def read_features_asof(
    paths: LakehousePaths,
    symbol_keys: Sequence[str],
    as_of: pd.Timestamp,
    *,
    columns: Sequence[str] | None = None,
    version: int | None = None,
) -> tuple[pa.Table, int | None]:
    """Each symbol's latest feature row dated at or before ``as_of``: what the Alpha cycle freezes.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse.
    symbol_keys : sequence of str
        Symbols to look up; a symbol without a row at or before ``as_of`` is absent.
    as_of : pandas.Timestamp
        Tz-aware cut-off; rows dated after it are never returned.
    columns : sequence of str, optional
        Columns to return (``date`` and ``symbol`` first); default every column.
    version : int, optional
        The table version to read; default the latest.

    Returns
    -------
    table : pyarrow.Table of shape (n_found, n_columns)
        One row per found symbol, sorted by symbol; ``date`` as stored (timestamp ms UTC).
    version : int or None
        The table version read (None when there is no table): what a RUN_ID records to read the same rows again.

    Raises
    ------
    ValueError
        When ``as_of`` is not a tz-aware timestamp.
    UnsafeKeyError, LakehouseReadError
        As :func:`read_features`.
    """
    if not isinstance(as_of, pd.Timestamp) or as_of.tzinfo is None:
        raise ValueError(f"`as_of` must be a tz-aware pandas Timestamp, got {as_of!r}")
    keys = _unique_keys(symbol_keys)
    table = _open_table(paths, version)
    if table is None:
        return pa.table({}), None
    selected = None if columns is None else list(columns)
    if not keys:
        return pa.table({}), table.version()
    cutoff = f"date <= {_timestamp_sql(as_of)}"
    window = f"date > {_timestamp_sql(as_of - ASOF_WINDOW)}"
    found = _latest_per_symbol(_scan(paths, table, f"{_symbols_sql(keys)} AND {cutoff} AND {window}", selected))
    missing = sorted(set(keys) - set(found.column("symbol").to_pylist()))
    if missing:
        older = _latest_per_symbol(_scan(paths, table, f"{_symbols_sql(missing)} AND {cutoff}", selected))
        found = pa.concat_tables([found, older]).sort_by("symbol")
    return found, table.version()


def features_table_version(paths: LakehousePaths) -> int | None:
    """The latest version of the features table; None when there is none yet."""
    table = _open_table(paths, None)
    return None if table is None else table.version()


def last_feature_date(paths: LakehousePaths, symbol_key: str) -> pd.Timestamp | None:
    """Return the latest ``date`` stored for ``symbol_key``, or None when it has no features.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not valid.
    LakehouseReadError
        When the provenance table cannot be read.
    """
    record = stored_features(paths, [symbol_key]).get(symbol_key)
    if record is None or record.last_date is None:
        return None
    return pd.Timestamp(record.last_date, unit="ms", tz="UTC")


def features_data_version(paths: LakehousePaths, symbol_keys: Sequence[str]) -> str:
    """A digest of what ``symbol_keys``' stored features are (rows, last date, provenance): Dagster's data version.

    It changes exactly when one of the symbols' rows was written: other symbols' commits leave it alone.
    """
    records = stored_features(paths, symbol_keys)
    digest = hashlib.sha256()
    for key in sorted(records):
        record = records[key]
        digest.update(json.dumps([key, record.n_rows, record.last_date, record.provenance], sort_keys=True).encode())
    return digest.hexdigest()


def frozen_table_versions(paths: LakehousePaths) -> list[int]:
    """The features table versions recorded by frozen RUN_IDs (their ``snapshot.json``): vacuum keeps these.

    Raises
    ------
    LakehouseReadError
        When a ``snapshot.json`` is not readable JSON: a version it may record would otherwise be vacuumed.
    """
    versions = set()
    if not paths.runs_root.is_dir():
        return []
    for folder in sorted(paths.runs_root.iterdir()):
        if not RUN_ID_PATTERN.fullmatch(folder.name):
            continue
        path = paths.run_data_file(folder.name, "snapshot.json")
        if not path.is_file():
            continue
        try:
            document = json.loads(path.read_bytes())
        except ValueError as err:
            raise LakehouseReadError(str(path), f"not readable JSON ({err})") from err
        version = document.get("features_table_version") if isinstance(document, dict) else None
        if isinstance(version, int):
            versions.add(version)
    return sorted(versions)


def maintain_features_table(paths: LakehousePaths, *, force: bool = False) -> dict[str, Any]:
    """Compact the features table's small files and vacuum the files no kept version needs.

    Runs when the table holds more than ``MAX_TABLE_FILES`` data files (or ``force``). Vacuum keeps the files of
    the latest version, of every version a frozen RUN_ID recorded (:func:`frozen_table_versions`), and every
    file removed less than ``VACUUM_RETENTION_HOURS`` ago (a reader of an older version may still be reading).

    Returns
    -------
    dict
        ``compacted`` (files merged, 0 when it did not run), ``vacuumed`` (files deleted) and ``kept_versions``.
    """
    table = _open_table(paths, None, reader=False)
    if table is None or (not force and len(table.file_uris()) <= MAX_TABLE_FILES):
        return {"compacted": 0, "vacuumed": 0, "kept_versions": []}
    metrics = table.optimize.compact(commit_properties=CommitProperties(max_commit_retries=COMMIT_ATTEMPTS))
    keep = frozen_table_versions(paths)
    removed = table.vacuum(
        retention_hours=VACUUM_RETENTION_HOURS,
        dry_run=False,
        enforce_retention_duration=False,
        keep_versions=keep or None,
    )
    return {"compacted": int(metrics.get("numFilesRemoved", 0)), "vacuumed": len(removed), "kept_versions": keep}


def legacy_feature_keys(paths: LakehousePaths) -> list[str]:
    """The symbols of a pre-Delta ``features_matrix.parquet/`` directory (its base files), sorted; [] when none.

    Such a directory is migrated by the feature backfill: it recomputes these symbols from their bars into the
    table (the features are a function of the bars, so the rows come out equal) and then moves the directory to
    ``lakehouse/_legacy/`` with :func:`archive_legacy_features`.
    """
    directory = paths.legacy_features_dir
    if not directory.is_dir():
        return []
    return sorted(p.name.removesuffix(".parquet") for p in directory.glob("*.parquet") if "." not in p.stem)


def archive_legacy_features(paths: LakehousePaths) -> Path | None:
    """Move a pre-Delta ``features_matrix.parquet/`` into ``lakehouse/_legacy/`` (kept, never deleted).

    Returns
    -------
    pathlib.Path or None
        Where it went; None when there was none.
    """
    source = paths.legacy_features_dir
    if not source.is_dir():
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = paths.legacy_archive_dir / f"{source.name}.{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    return target


# --- commits ----------------------------------------------------------------------------------------------------


def _create_table(paths: LakehousePaths, names: list[str]) -> DeltaTable:
    """Create the features table empty, or open the one a concurrent writer created first.

    Rows are never part of the creating commit: two writers that both found no table would each commit their rows
    as a plain append (the loser retried as the next version), storing them twice. An empty creation lost to a
    race adds nothing, and the rows then go through the predicate commit that replaces what they overlap.
    """
    empty = _table("X", np.empty(0, np.int64), np.empty((len(names), 0)), names)
    try:
        with _disk_full_named(paths):
            write_deltalake(
                paths.features_table_uri,
                empty,
                mode="append",
                storage_options=paths.table_storage_options,
                configuration=_TABLE_CONFIGURATION,
            )
    except CommitFailedError:
        pass  # another writer created it first
    table = _open_table(paths, None, reader=False)
    if table is None:
        raise LakehouseReadError(paths.features_table_uri, "the Delta table was created but cannot be opened")
    return table


def _commit_rows(
    paths: LakehousePaths,
    table: DeltaTable,
    data: pa.Table,
    deletions: list[str],
    dictionary_columns: Sequence[str],
) -> None:
    """One commit: delete the rows the predicates name, add ``data`` (delta-rs retries non-conflicting races)."""
    properties = WriterProperties(
        compression="UNCOMPRESSED",
        column_properties={name: ColumnProperties(dictionary_enabled=True) for name in ("symbol", *dictionary_columns)},
        default_column_properties=ColumnProperties(dictionary_enabled=False),
    )
    with _disk_full_named(paths):
        write_deltalake(
            table,
            data,
            mode="overwrite" if deletions else "append",
            predicate=" OR ".join(deletions) if deletions else None,
            writer_properties=properties,
            commit_properties=CommitProperties(max_commit_retries=COMMIT_ATTEMPTS),
        )


@contextlib.contextmanager
def _disk_full_named(paths: LakehousePaths) -> Iterator[None]:
    """Turn delta-rs's wording of a full disk into :class:`DiskFullError` naming the table; other errors pass."""
    try:
        yield
    except CommitFailedError:
        raise
    except (DeltaError, OSError) as err:
        # delta-rs reports the OS error's text (e.g. "No space left on device (os error 28)").
        if any(text in str(err) for text in _DISK_FULL_TEXTS):
            raise DiskFullError(paths.features_table_uri) from err
        raise


def _commit_provenance(paths: LakehousePaths, records: Mapping[str, StoredFeatures]) -> None:
    """Replace the given symbols' provenance rows (read-modify-write of the small table, retried on conflict)."""
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        current = {**_read_provenance(paths), **records}
        table = pa.table(
            {
                "symbol": list(current),
                "n_rows": [r.n_rows for r in current.values()],
                "last_date": pa.array([r.last_date for r in current.values()], type=pa.int64()).cast(UTC_MS),
                "feature_columns": [_columns_json(r.feature_columns) for r in current.values()],
                "provenance": [
                    None if r.provenance is None else json.dumps(r.provenance, sort_keys=True) for r in current.values()
                ],
            },
            schema=_PROVENANCE_SCHEMA,
        )
        try:
            write_deltalake(
                paths.features_provenance_uri,
                table,
                mode="overwrite",
                storage_options=paths.table_storage_options,
                configuration=_TABLE_CONFIGURATION,
                commit_properties=CommitProperties(max_commit_retries=0),
            )
            return
        except CommitFailedError:
            if attempt == COMMIT_ATTEMPTS:
                raise


# --- reads ------------------------------------------------------------------------------------------------------


def _open_table(paths: LakehousePaths, version: int | None, *, reader: bool = True) -> DeltaTable | None:
    """The features table (at ``version``), or None when there is none.

    A reader is refused a lakehouse not yet migrated (it would see no features); a writer is what migrates it.
    """
    try:
        return DeltaTable(paths.features_table_uri, version=version, storage_options=paths.table_storage_options)
    except TableNotFoundError:
        if version is not None:
            raise LakehouseReadError(paths.features_table_uri, f"no Delta table to read version {version} of") from None
        if reader and legacy_feature_keys(paths):
            raise LakehouseReadError(
                str(paths.legacy_features_dir),
                "holds the per-symbol feature files of before the Delta table; run the feature backfill once "
                "(`alpha-assets flow-data`, or materialise features_matrix) to migrate them",
            ) from None
        return None
    except (DeltaError, OSError) as err:
        raise LakehouseReadError(paths.features_table_uri, f"not a readable Delta table ({err})") from err


def _scan(paths: LakehousePaths, table: DeltaTable, where: str, columns: list[str] | None = None) -> pa.Table:
    """Rows of ``table`` matching the SQL condition ``where``, through delta-rs' own query engine (DataFusion).

    DataFusion prunes files on their ``date`` statistics and reads object stores natively. (A pyarrow dataset
    over the table goes through a Python filesystem shim and, on exit, sometimes aborts the interpreter.)
    """
    selected = "*" if columns is None else ", ".join(f'"{name}"' for name in columns)
    try:
        reader = QueryBuilder().register("features", table).execute(f"SELECT {selected} FROM features WHERE {where}")
        return _plain_strings(pa.table(reader))
    except (DeltaError, OSError, pa.ArrowInvalid) as err:
        raise LakehouseReadError(paths.features_table_uri, f"not readable ({err})") from err


def _plain_strings(table: pa.Table) -> pa.Table:
    """DataFusion returns text as ``string_view``: give it back as the ``string`` the schemas declare."""
    fields = [
        field.with_type(pa.string())
        if pa.types.is_string_view(field.type) or pa.types.is_large_string(field.type)
        else field
        for field in table.schema
    ]
    return table.cast(pa.schema(fields))


def _symbols_sql(keys: Sequence[str]) -> str:
    """``symbol IN (...)`` of validated keys (letters, digits and ``_`` only: nothing to escape)."""
    return "symbol IN (" + ", ".join(f"'{validate_symbol_key(key)}'" for key in keys) + ")"


def _read_provenance(paths: LakehousePaths) -> dict[str, StoredFeatures]:
    try:
        table = DeltaTable(paths.features_provenance_uri, storage_options=paths.table_storage_options)
    except TableNotFoundError:
        return {}
    try:
        rows = pa.table(QueryBuilder().register("provenance", table).execute("SELECT * FROM provenance"))
        rows = _plain_strings(rows).cast(_PROVENANCE_SCHEMA)
    except (pa.ArrowInvalid, OSError, DeltaError) as err:
        raise LakehouseReadError(paths.features_provenance_uri, f"not readable ({err})") from err
    last_dates = rows.column("last_date").cast(pa.int64()).to_pylist()
    records = {}
    for index, (key, n_rows, columns, record) in enumerate(
        zip(*(rows.column(n).to_pylist() for n in ("symbol", "n_rows", "feature_columns", "provenance")), strict=True)
    ):
        try:
            provenance = None if record is None else json.loads(record)
        except ValueError:
            provenance = None  # an unreadable record describes nothing: the writer recomputes
        records[key] = StoredFeatures(
            n_rows, last_dates[index], _json_columns(columns), provenance if isinstance(provenance, dict) else None
        )
    return records


# Every symbol's record holds the same column list: encoded and decoded once, not once per symbol and read.
@functools.lru_cache(maxsize=8)
def _columns_json(feature_columns: tuple[str, ...]) -> str:
    return json.dumps(list(feature_columns))


@functools.lru_cache(maxsize=8)
def _json_columns(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def _check_table_columns(paths: LakehousePaths, table: DeltaTable | None, names: list[str]) -> None:
    if table is None:
        return
    stored = [field.name for field in table.schema().fields][2:]
    if stored != names:
        raise ValueError(
            f"`feature_columns` must equal the columns of {paths.features_table_uri} ({len(stored)} names, first "
            f"{stored[:3]}), got {len(names)} names, first {names[:3]}; a new feature list needs a new table"
        )


def _merge_with_stored(
    paths: LakehousePaths, table: DeltaTable | None, entries: list[FeatureRows], names: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """New-wins union of each merge entry with its stored rows (one scan of ``table`` for all of them).

    The table, not the provenance record, says which rows are stored: a record may lag behind its rows.
    """
    keys = [entry.symbol_key for entry in entries]
    by_key: dict[str, pa.Table] = {}
    if keys and table is not None:
        rows = _scan(paths, table, _symbols_sql(keys), ["date", "symbol", *names])
        rows = rows.sort_by([("symbol", "ascending"), ("date", "ascending")])
        symbols = rows.column("symbol").to_numpy(zero_copy_only=False)
        for key in keys:
            indices = np.flatnonzero(symbols == key)
            if indices.size:
                by_key[key] = rows.slice(int(indices[0]), indices.size)
    merged = {}
    for entry in entries:
        old = by_key.get(entry.symbol_key)
        if old is None:
            merged[entry.symbol_key] = (entry.dates, entry.values, entry.dates.size)
            continue
        old_values = np.stack([old.column(name).to_numpy(zero_copy_only=False) for name in names])
        old_dates = old.column("date").cast(UTC_MS).cast(pa.int64()).to_numpy()
        merged[entry.symbol_key] = _merge(old_dates, old_values, entry.dates, entry.values)
    return merged


def _latest_per_symbol(rows: pa.Table) -> pa.Table:
    """Each symbol's row with the latest date, sorted by symbol; ``date`` cast to the stored unit."""
    if rows.num_rows == 0:
        return rows.cast(_as_ms(rows.schema))
    rows = rows.sort_by([("symbol", "ascending"), ("date", "ascending")])
    symbols = rows.column("symbol").to_numpy(zero_copy_only=False)
    last = np.flatnonzero(np.append(symbols[1:] != symbols[:-1], True))
    return rows.take(pa.array(last)).cast(_as_ms(rows.schema))


def _as_ms(schema: pa.Schema) -> pa.Schema:
    """Delta stores timestamps in microseconds: give ``date`` back in the unit the rows were written with."""
    index = schema.get_field_index("date")
    return schema if index < 0 else schema.set(index, pa.field("date", UTC_MS, nullable=False))


def _to_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.cast(_as_ms(table.schema)).to_pandas()
    frame["date"] = frame["date"].astype("datetime64[ns, UTC]")
    return frame


# --- validation and encoding ------------------------------------------------------------------------------------


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


def _table(symbol_key: str | np.ndarray, dates: np.ndarray, values: np.ndarray, names: list[str]) -> pa.Table:
    """Rows of one symbol (``symbol_key`` a str) or of several (an object array, one key per row)."""
    n_rows = dates.size
    # One arrow buffer for every feature, sliced per column: cheaper than one array per feature.
    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=pa.float64())
    symbols = (
        pa.repeat(pa.scalar(symbol_key, pa.string()), n_rows)
        if isinstance(symbol_key, str)
        else pa.array(symbol_key, type=pa.string())
    )
    arrays = [pa.array(dates, type=UTC_MS), symbols]
    arrays += [flat.slice(i * n_rows, n_rows) for i in range(len(names))]
    return pa.Table.from_arrays(arrays, schema=features_schema(names))


def _rows_table(rows: Sequence[tuple[str, np.ndarray, np.ndarray]], names: list[str]) -> pa.Table:
    """One table of several symbols' (key, dates, feature-major values), in order.

    delta-rs writes each record batch on its own (about 0.2 ms each): a day of 1,000 symbols as 1,000 one-row
    batches took 0.2 s, as one batch 0.01 s. So symbols with fewer than ``BATCH_ROWS`` rows are copied together
    into batches of up to ``BATCH_ROWS`` rows; a symbol with more is a batch of its own, not copied.
    """
    batches: list[pa.Table] = []
    group: list[tuple[str, np.ndarray, np.ndarray]] = []

    def flush() -> None:
        if len(group) == 1:
            batches.append(_table(*group[0], names))
        elif group:
            counts = [dates.size for _, dates, _ in group]
            keys = np.repeat(np.array([key for key, _, _ in group], dtype=object), counts)
            dates = np.concatenate([dates for _, dates, _ in group])
            batches.append(_table(keys, dates, np.concatenate([values for _, _, values in group], axis=1), names))
        group.clear()

    group_rows = 0
    for entry in rows:
        if group_rows + entry[1].size > BATCH_ROWS:
            flush()
            group_rows = 0
        group.append(entry)
        group_rows += entry[1].size
    flush()
    if not batches:
        return _table("X", np.empty(0, np.int64), np.empty((len(names), 0)), names)
    return pa.concat_tables(batches)


def _timestamp_sql(instant: int | pd.Timestamp) -> str:
    """A SQL literal of a UTC instant (milliseconds or a tz-aware Timestamp) DataFusion compares with ``date``."""
    timestamp = pd.Timestamp(instant, unit="ms", tz="UTC") if isinstance(instant, int) else instant.tz_convert("UTC")
    return "'" + timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


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
    return sorted({validate_symbol_key(key) for key in symbol_keys})
