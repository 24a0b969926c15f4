"""Feature backfill: bring a scope of symbols' rows of the ``features_matrix`` table up to date with their bars.

Per symbol, the cheapest exact path wins, decided from its provenance record (``lakehouse/features_provenance/``):

- **unchanged**: the record holds the sha256 of the OHLCV file the rows were computed from (and the feature
  version); when the OHLCV file still hashes the same, nothing is parsed or written;
- **append**: the record also holds how many bars were used and a sha256 of their values; when the first bars of
  the current OHLCV still hash the same, only the new bars' rows are computed (bit-identical to a full
  computation) and appended; the stored rows are not touched;
- **recompute**: otherwise (new symbol, repaired bar, another feature version), the whole history is recomputed
  and merged: only new or changed rows count, the symbol is written only if something changed.

Workers plan and compute (symbols in batches of ``SYMBOLS_PER_BATCH``: a batch's appended tails are computed in
one ``compute_features_many`` call); the calling process commits their rows to the Delta table, one commit for up
to ``COMMIT_ROWS`` rows, so one new day for every symbol is one commit. One symbol's failure is recorded in the
report and does not stop the others.

A lakehouse still holding the per-symbol files of before the Delta table (``features_matrix.parquet/``) is
migrated by the first backfill: its symbols join the scope, are recomputed from their bars into the table, and the
old directory is moved to ``lakehouse/_legacy/`` (kept, not deleted).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from alpha_assets.errors import DiskFullError, LakehouseReadError, UnsafeKeyError
from alpha_assets.features.matrix import (
    DISCRETE_COLUMNS,
    FEATURE_COLUMNS,
    FEATURES_VERSION,
    compute_features,
    compute_features_many,
)
from alpha_assets.lakehouse.atomic import read_file_bytes
from alpha_assets.lakehouse.calendars import TradingCalendar, exchange_market
from alpha_assets.lakehouse.features_store import (
    FeatureRows,
    StaleAppendError,
    StoredFeatures,
    UpsertResult,
    archive_legacy_features,
    legacy_feature_keys,
    maintain_features_table,
    stored_features,
    write_features,
)
from alpha_assets.lakehouse.hashing import bytes_sha256
from alpha_assets.lakehouse.keys import split_symbol_key, validate_symbol_key
from alpha_assets.lakehouse.parquet import parse_parquet_bytes
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA
from alpha_assets.lakehouse.symbols import current_calendar
from alpha_assets.processes import workers_for

__all__ = ["BackfillReport", "SymbolBackfill", "SymbolStatus", "backfill_features"]

#: Below this many symbols per worker, starting processes costs more than it saves.
MIN_SYMBOLS_PER_WORKER = 32
#: Chunks per worker: small enough to balance uneven histories, large enough to amortise the hand-offs.
CHUNKS_PER_WORKER = 4
#: Processes per core: a worker reads bars (from the page cache, normally) and computes; the calling process
#: commits. The work is CPU-bound, so one per core: a second one per core only added start-up and hand-offs
#: (``bench_features.py --one-day-only`` times both).
WORKERS_PER_CORE = 1
#: Symbols a worker plans and computes together: the appended tails of a batch are computed in one pass
#: (``compute_features_many``).
SYMBOLS_PER_BATCH = 64
#: Rows committed at once at most (held in memory as float64, 8 bytes per feature column per row): one new day of
#: any universe is one commit, a full backfill a few.
COMMIT_ROWS = 500_000
#: Commits of one batch of rows whose appends another writer overtook: planned again on the rows stored then.
REPLAN_ATTEMPTS = 3
#: The bar columns the features read, hashed in this order to recognise bars already used.
_INPUT_COLUMNS = ("timestamp", "high", "low", "close", "volume")


class SymbolStatus(Enum):
    """Outcome of one symbol in a backfill."""

    WRITTEN = "written"
    UNCHANGED = "unchanged"
    MISSING = "missing"
    FAILED = "failed"


@dataclass(frozen=True)
class SymbolBackfill:
    """One symbol's line in a :class:`BackfillReport`.

    Attributes
    ----------
    symbol_key : str
        The symbol.
    status : SymbolStatus
        Written, unchanged (nothing new to write), missing (no OHLCV file) or failed.
    rows_written : int
        Rows in the features file after the write; 0 when nothing was written.
    rows_changed : int
        Feature rows that were new or had a changed value.
    last_date : pandas.Timestamp or None
        Date (UTC) of the symbol's last bar, whose features the file now holds; None when missing or failed.
    error : str or None
        ``"<ExceptionType>: <message>"`` when the symbol failed, else None.
    """

    symbol_key: str
    status: SymbolStatus
    rows_written: int = 0
    rows_changed: int = 0
    last_date: pd.Timestamp | None = None
    error: str | None = None

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready form (ISO date, status as text) for metadata and logs."""
        return {
            "symbol_key": self.symbol_key,
            "status": self.status.value,
            "rows_written": self.rows_written,
            "rows_changed": self.rows_changed,
            "last_date": None if self.last_date is None else self.last_date.isoformat(),
            "error": self.error,
        }


@dataclass(frozen=True)
class BackfillReport:
    """What a backfill did, symbol by symbol (in the order requested), and how it ran.

    Attributes
    ----------
    symbols : tuple of SymbolBackfill
        One entry per distinct requested symbol.
    workers : int
        Processes used; 1 means the work ran in the calling process.
    migrated : tuple of SymbolBackfill, default ()
        Symbols of a pre-Delta ``features_matrix.parquet/`` recomputed into the table besides the requested ones.
    """

    symbols: tuple[SymbolBackfill, ...]
    workers: int
    migrated: tuple[SymbolBackfill, ...] = ()

    @property
    def failed(self) -> tuple[SymbolBackfill, ...]:
        """The symbols that failed."""
        return tuple(s for s in self.symbols if s.status is SymbolStatus.FAILED)

    @property
    def missing(self) -> tuple[SymbolBackfill, ...]:
        """The symbols without an OHLCV file."""
        return tuple(s for s in self.symbols if s.status is SymbolStatus.MISSING)

    @property
    def rows_changed(self) -> int:
        """Feature rows new or changed over all symbols."""
        return sum(s.rows_changed for s in self.symbols)


def backfill_features(
    paths: LakehousePaths, symbol_keys: Sequence[str], *, workers: int | None = None
) -> BackfillReport:
    """Bring the features of ``symbol_keys`` up to date with their stored bars, across processes.

    Each symbol is skipped (OHLCV bytes unchanged), extended (new bars only: their rows are computed and
    appended) or recomputed and merged (anything else), as the module docstring describes.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse (OHLCV files in, the ``features_matrix`` Delta table out).
    symbol_keys : sequence of str
        The scope, e.g. the validated candidates of a RUN_ID or the partitions chosen in the UI; duplicates
        are dropped, the order is kept.
    workers : int, optional
        Processes to spread the symbols over. Default: ``WORKERS_PER_CORE`` per available core, but never
        fewer than ``MIN_SYMBOLS_PER_WORKER`` symbols per process (a small scope runs in the calling process).
        ``1`` runs in the calling process.

    Returns
    -------
    BackfillReport
        One :class:`SymbolBackfill` per symbol. A symbol without an OHLCV file is ``MISSING``; any error of
        one symbol (unsafe key, unreadable file, invalid bars) is caught and recorded as ``FAILED`` with its
        message, and the other symbols proceed.

    Raises
    ------
    TypeError
        When ``symbol_keys`` is a single string instead of a sequence.
    ValueError
        When ``workers`` is not a positive integer.
    DiskFullError
        When a write finds the disk full: the backfill stops there (files already written are complete).
    """
    if isinstance(symbol_keys, str):
        raise TypeError(f"`symbol_keys` must be a sequence of symbol keys, got the single str {symbol_keys!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"`workers` must be a positive integer or None, got {workers!r}")
    keys = list(dict.fromkeys(symbol_keys))
    legacy = [key for key in legacy_feature_keys(paths) if key not in set(keys)]
    scope = keys + legacy
    stored = stored_features(paths, [key for key in scope if _valid(key)])
    periods = symbol_periods_per_year(paths, scope)
    if workers is None:
        workers = workers_for(len(scope), min_items_each=MIN_SYMBOLS_PER_WORKER, per_core=WORKERS_PER_CORE)
    workers = min(workers, max(1, len(scope)))
    results: dict[str, SymbolBackfill] = {}
    pending = _Pending(paths, periods)
    if workers == 1:
        for first in range(0, len(scope), SYMBOLS_PER_BATCH):  # batch by batch: rows are committed as they come
            for outcome in _plan_batch(paths, scope[first : first + SYMBOLS_PER_BATCH], stored, periods):
                pending.add(outcome, results)
    else:
        n_chunks = min(len(scope), workers * CHUNKS_PER_WORKER)
        chunks = [scope[i::n_chunks] for i in range(n_chunks)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            # Each chunk gets its own symbols' records only: the whole mapping pickled once per chunk cost more
            # than a one-day update's work.
            futures = [
                (chunk, pool.submit(_plan_chunk, paths, chunk, _subset(stored, chunk), _subset(periods, chunk)))
                for chunk in chunks
            ]
            while futures:
                # Popped, so a chunk's rows are freed once committed: a full backfill holds ~COMMIT_ROWS at a time.
                chunk, future = futures.pop(0)
                try:
                    outcomes = future.result()
                except BrokenProcessPool as err:
                    # A worker that dies (e.g. killed for memory) takes its chunk down, not the whole report.
                    outcomes = [_failure(key, err) for key in chunk]
                for outcome in outcomes:
                    pending.add(outcome, results)
    pending.commit(results)
    if legacy and all(results[key].status is not SymbolStatus.FAILED for key in legacy):
        archive_legacy_features(paths)
    maintain_features_table(paths)
    return BackfillReport(
        symbols=tuple(results[key] for key in keys), workers=workers, migrated=tuple(results[key] for key in legacy)
    )


def symbol_periods_per_year(paths: LakehousePaths, symbol_keys: Sequence[str]) -> dict[str, float]:
    """Periods per year of each symbol's ``volatility_60d``: the sessions per year of its trading calendar.

    The calendar is the symbol's current row of ``symbols.parquet``; a symbol without one (features computed
    before validation versioned it) takes the calendar of its exchange prefix
    (:func:`~alpha_assets.lakehouse.calendars.exchange_market`): 365 for crypto, 252 on ``XNYS``.

    Raises
    ------
    LakehouseReadError
        When a metadata file is unreadable.
    """
    periods = {}
    for key in symbol_keys:
        try:
            calendar = current_calendar(paths, key) or exchange_market(split_symbol_key(key)[0]).calendar
        except UnsafeKeyError:
            continue  # the backfill reports the key as failed
        periods[key] = float(TradingCalendar.of(calendar).periods_per_year)
    return periods


class _Pending:
    """Rows computed by the workers, committed together once they reach ``COMMIT_ROWS`` (and at the end).

    Another writer (a concurrent backfill, an ingestion's) may store rows of the same symbols between the plan and
    the commit: appends planned on the older rows are then planned again on what is stored now, up to
    ``REPLAN_ATTEMPTS`` times (they usually become ``unchanged``: the other writer stored the same rows).
    """

    def __init__(self, paths: LakehousePaths, periods: Mapping[str, float]) -> None:
        self._paths = paths
        self._periods = periods
        self._writes: list[_Write] = []
        self._rows = 0

    def add(self, outcome: SymbolBackfill | _Write, results: dict[str, SymbolBackfill]) -> None:
        if isinstance(outcome, SymbolBackfill):
            results[outcome.symbol_key] = outcome
            return
        self._writes.append(outcome)
        self._rows += outcome.rows.dates.size
        if self._rows >= COMMIT_ROWS:
            self.commit(results)

    def commit(self, results: dict[str, SymbolBackfill]) -> None:
        """One commit of every pending row; a refused commit fails its symbols (a full disk stops the backfill)."""
        writes, self._writes, self._rows = self._writes, [], 0
        for attempt in range(1, REPLAN_ATTEMPTS + 1):
            if not writes:
                return
            try:
                written = write_features(
                    self._paths, [w.rows for w in writes], FEATURE_COLUMNS, dictionary_columns=DISCRETE_COLUMNS
                )
            except DiskFullError:
                raise
            except StaleAppendError as err:
                if attempt < REPLAN_ATTEMPTS:
                    writes = self._replan(writes, set(err.symbol_keys), results)
                    continue
                results.update((w.rows.symbol_key, _failure(w.rows.symbol_key, err)) for w in writes)
                return
            except Exception as err:  # noqa: BLE001 - the report names every symbol of a refused commit
                results.update((w.rows.symbol_key, _failure(w.rows.symbol_key, err)) for w in writes)
                return
            results.update(
                (w.rows.symbol_key, _written(w.rows.symbol_key, written[w.rows.symbol_key], w.last_date))
                for w in writes
            )
            return

    def _replan(self, writes: list[_Write], stale: set[str], results: dict[str, SymbolBackfill]) -> list[_Write]:
        """``writes`` with the symbols of ``stale`` planned again on their rows stored now."""
        keys = [w.rows.symbol_key for w in writes if w.rows.symbol_key in stale]
        kept = [w for w in writes if w.rows.symbol_key not in stale]
        for outcome in _plan_batch(self._paths, keys, stored_features(self._paths, keys), self._periods):
            if isinstance(outcome, SymbolBackfill):
                results[outcome.symbol_key] = outcome
            else:
                kept.append(outcome)
        return kept


@dataclass(frozen=True)
class _Write:
    """Rows of one symbol a worker computed, for the calling process to commit."""

    rows: FeatureRows
    last_date: int | None


def _plan_chunk(
    paths: LakehousePaths,
    symbol_keys: list[str],
    stored: Mapping[str, StoredFeatures],
    periods: Mapping[str, float],
) -> list[SymbolBackfill | _Write]:
    outcomes: list[SymbolBackfill | _Write] = []
    for first in range(0, len(symbol_keys), SYMBOLS_PER_BATCH):
        outcomes += _plan_batch(paths, symbol_keys[first : first + SYMBOLS_PER_BATCH], stored, periods)
    return outcomes


def _plan_batch(
    paths: LakehousePaths,
    symbol_keys: list[str],
    stored: Mapping[str, StoredFeatures],
    periods: Mapping[str, float],
) -> list[SymbolBackfill | _Write]:
    """Decide every symbol, then compute the appended tails of the batch together."""
    outcomes: list[SymbolBackfill | _Write] = []
    appends: list[_Append] = []
    for key in symbol_keys:
        try:
            ohlcv_path = paths.ohlcv_file(key)
            if not ohlcv_path.exists():
                outcomes.append(SymbolBackfill(key, SymbolStatus.MISSING))
                continue
            outcome = _refresh(stored.get(key), ohlcv_path, key, periods[key])
        except DiskFullError:
            raise
        except Exception as err:  # noqa: BLE001 - one bad symbol must not sink the others; the report names it.
            outcome = _failure(key, err)
        if isinstance(outcome, _Append):
            appends.append(outcome)
        else:
            outcomes.append(outcome)
    for append, values in zip(appends, _tails(appends), strict=True):
        if isinstance(values, Exception):
            outcomes.append(_failure(append.symbol_key, values))
            continue
        dates = append.bars["timestamp"][append.known :]
        rows = FeatureRows(append.symbol_key, dates, values, append.provenance, append=True)
        outcomes.append(_Write(rows, append.provenance["last_date"]))
    return outcomes


@dataclass(frozen=True)
class _Append:
    """A symbol whose stored rows are the features of its first ``known`` bars: the others are to append."""

    symbol_key: str
    bars: dict[str, np.ndarray]
    known: int
    provenance: dict[str, Any]

    @property
    def periods_per_year(self) -> float:
        """The annualisation of the symbol's ``volatility_60d``."""
        return self.provenance["periods_per_year"]


def _tails(appends: list[_Append]) -> list[np.ndarray | Exception]:
    """The new rows of every append, one pass per annualisation; per symbol if one input is refused."""
    tails: dict[int, np.ndarray | Exception] = {}
    for periods in sorted({a.periods_per_year for a in appends}):
        group = [i for i, a in enumerate(appends) if a.periods_per_year == periods]
        series = [tuple(appends[i].bars[name] for name in _INPUT_COLUMNS[1:]) for i in group]
        starts = [appends[i].known for i in group]
        try:
            tails.update(zip(group, compute_features_many(series, starts, periods_per_year=periods), strict=True))
        except ValueError:
            for i, bars, start in zip(group, series, starts, strict=True):
                try:
                    tails[i] = compute_features(*bars, periods_per_year=periods, start=start)
                except ValueError as err:
                    tails[i] = err
    return [tails[i] for i in range(len(appends))]


def _refresh(
    stored: StoredFeatures | None, ohlcv_path: Path, symbol_key: str, periods_per_year: float
) -> SymbolBackfill | _Append | _Write:
    """Decide one symbol: unchanged, an append of its new bars, or a recompute of every row to merge."""
    previous = stored.provenance if stored is not None else None
    if previous is not None and not _same_computation(previous, stored.feature_columns, periods_per_year):
        previous = None
    # One read: the skip test and the computation use the same bytes, and the provenance records their hash,
    # so a file replaced in between is caught by the next run.
    data = read_file_bytes(ohlcv_path)
    ohlcv_sha256 = bytes_sha256(data)
    if previous is not None and previous["ohlcv_sha256"] == ohlcv_sha256:
        return SymbolBackfill(symbol_key, SymbolStatus.UNCHANGED, last_date=_timestamp(previous["last_date"]))
    table = parse_parquet_bytes(data, ohlcv_path, OHLCV_SCHEMA)
    bars = _input_arrays(table, ohlcv_path)
    dates, n_bars = bars["timestamp"], table.num_rows
    provenance = {
        "features_version": FEATURES_VERSION,
        "periods_per_year": periods_per_year,
        "ohlcv_sha256": ohlcv_sha256,
        "bars": n_bars,
        "bars_sha256": _bars_sha256(bars, n_bars),
        "last_date": int(dates[-1]) if n_bars else None,
    }
    known = previous["bars"] if previous is not None else -1
    if 0 <= known <= n_bars and stored.n_rows == known and _bars_sha256(bars, known) == previous["bars_sha256"]:
        # The stored rows are the features of exactly the first ``known`` bars: append the others.
        return _Append(symbol_key, bars, known, provenance)
    values = compute_features(**{name: bars[name] for name in _INPUT_COLUMNS[1:]}, periods_per_year=periods_per_year)
    return _Write(FeatureRows(symbol_key, dates, values, provenance, append=False), provenance["last_date"])


def _written(symbol_key: str, result: UpsertResult, last_date: int | None) -> SymbolBackfill:
    return SymbolBackfill(
        symbol_key,
        SymbolStatus.WRITTEN if result.changed else SymbolStatus.UNCHANGED,
        rows_written=result.rows_written,
        rows_changed=result.rows_changed,
        last_date=_timestamp(last_date),
    )


def _same_computation(provenance: dict[str, Any], feature_columns: tuple[str, ...], periods_per_year: float) -> bool:
    """Whether stored rows came from this feature version, settings (the symbol's calendar) and column list."""
    return (
        provenance.get("features_version") == FEATURES_VERSION
        and provenance.get("periods_per_year") == periods_per_year
        and feature_columns == FEATURE_COLUMNS
        and isinstance(provenance.get("bars"), int)
        and isinstance(provenance.get("last_date"), int | None)
        and all(isinstance(provenance.get(key), str) for key in ("ohlcv_sha256", "bars_sha256"))
    )


def _input_arrays(table: pa.Table, path: Path) -> dict[str, np.ndarray]:
    """Return the bar columns the features read as contiguous arrays (timestamps int64 ms, values float64)."""
    # A timestamp[ms] column is int64 milliseconds underneath: a view, not a cast.
    bars = {"timestamp": table.column("timestamp").to_numpy().view(np.int64)}
    bars.update((name, table.column(name).to_numpy()) for name in _INPUT_COLUMNS[1:])
    if bars["timestamp"].size > 1 and not (np.diff(bars["timestamp"]) > 0).all():
        raise LakehouseReadError(str(path), "timestamps are not sorted and unique")
    return {name: np.ascontiguousarray(values) for name, values in bars.items()}


def _bars_sha256(bars: dict[str, np.ndarray], n_bars: int) -> str:
    """sha256 of the first ``n_bars`` bars' timestamps and values (the inputs of their features)."""
    digest = hashlib.sha256()
    for name in _INPUT_COLUMNS:
        digest.update(bars[name][:n_bars].tobytes())
    return digest.hexdigest()


def _subset(mapping: Mapping[str, Any], keys: list[str]) -> dict[str, Any]:
    return {key: mapping[key] for key in keys if key in mapping}


def _valid(symbol_key: str) -> bool:
    try:
        validate_symbol_key(symbol_key)
    except UnsafeKeyError:
        return False  # the backfill reports it as failed
    return True


def _timestamp(milliseconds: int | None) -> pd.Timestamp | None:
    return None if milliseconds is None else pd.Timestamp(milliseconds, unit="ms", tz="UTC")


def _failure(symbol_key: str, err: BaseException) -> SymbolBackfill:
    return SymbolBackfill(symbol_key, SymbolStatus.FAILED, error=f"{type(err).__name__}: {err}")
