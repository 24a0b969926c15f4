"""Feature backfill: bring a scope of symbols' ``features_matrix`` files up to date with their stored bars.

Per symbol, under its lock, the cheapest exact path wins:

- **unchanged**: the newest file's footer records the sha256 of the OHLCV file it was computed from (and the
  feature version); when the OHLCV file still hashes the same, nothing is parsed or written;
- **append**: the footer also records how many bars were used and a sha256 of their values; when the first
  bars of the current OHLCV still hash the same, only the new bars' rows are computed (bit-identical to a
  full computation) and appended as a delta file; the stored rows are not touched. When the symbol's deltas
  are full, its whole history is recomputed instead and the base rewritten (cheaper than reading it back);
- **recompute**: otherwise (new symbol, repaired bar, another feature version), the whole history is
  recomputed and merged: only new or changed rows count, the file is written only if something changed.

Symbols go through in batches of ``SYMBOLS_PER_BATCH`` per worker, their locks held from the footer read to the
write: the batch's appended tails are computed in one ``compute_features_many`` call. One symbol's failure is
recorded in the report and does not stop the others.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
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
from alpha_assets.lakehouse.features_store import SymbolFeaturesFile, UpsertResult, open_symbol_features
from alpha_assets.lakehouse.hashing import bytes_sha256
from alpha_assets.lakehouse.keys import split_symbol_key
from alpha_assets.lakehouse.parquet import parse_parquet_bytes
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA
from alpha_assets.lakehouse.symbols import current_calendar

__all__ = ["BackfillReport", "SymbolBackfill", "SymbolStatus", "backfill_features"]

#: Below this many symbols per worker, starting processes costs more than it saves.
MIN_SYMBOLS_PER_WORKER = 32
#: Chunks per worker: small enough to balance uneven histories, large enough to amortise the hand-offs.
CHUNKS_PER_WORKER = 4
#: Processes per core and threads per process: a symbol waits on its fsyncs (and on file creation while the
#: journal commits them), so more workers than cores keep the cores busy. One incremental day for 1,000
#: symbols on 2 cores, same run: 2 processes x 4 threads 4.0-5.2 s, 4 processes x 2 threads 2.8-3.9 s
#: (threads alone overlap less: they contend for the GIL).
WORKERS_PER_CORE = 2
THREADS_PER_WORKER = 2
#: Symbols a worker plans, computes and writes together, holding their locks meanwhile: the appended tails of a
#: batch are computed in one pass (``compute_features_many``), and the batch bounds the open lock files.
SYMBOLS_PER_BATCH = 64
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
    """

    symbols: tuple[SymbolBackfill, ...]
    workers: int

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
        The lakehouse (OHLCV files in, ``features_matrix.parquet/<KEY>.parquet`` out).
    symbol_keys : sequence of str
        The scope, e.g. the validated candidates of a RUN_ID or the partitions chosen in the UI; duplicates
        are dropped, the order is kept.
    workers : int, optional
        Processes to spread the symbols over. Default: ``WORKERS_PER_CORE`` per available core, but never
        fewer than ``MIN_SYMBOLS_PER_WORKER`` symbols per process (a small scope runs in the calling process).
        ``1`` runs in the calling process. Each process writes on ``THREADS_PER_WORKER`` threads.

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
    periods = symbol_periods_per_year(paths, keys)
    if workers is None:
        workers = max(1, min(WORKERS_PER_CORE * _available_cores(), len(keys) // MIN_SYMBOLS_PER_WORKER))
    workers = min(workers, max(1, len(keys)))
    if workers == 1:
        return BackfillReport(symbols=tuple(_backfill_chunk(paths, keys, periods)), workers=1)
    n_chunks = min(len(keys), workers * CHUNKS_PER_WORKER)
    chunks = [keys[i::n_chunks] for i in range(n_chunks)]
    results: dict[str, SymbolBackfill] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [(chunk, pool.submit(_backfill_chunk, paths, chunk, periods)) for chunk in chunks]
        for chunk, future in futures:
            try:
                results.update((entry.symbol_key, entry) for entry in future.result())
            except BrokenProcessPool as err:
                # A worker that dies (e.g. killed for memory) takes its chunk down, not the whole report.
                results.update((key, _failure(key, err)) for key in chunk)
    return BackfillReport(symbols=tuple(results[key] for key in keys), workers=workers)


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


def _backfill_chunk(
    paths: LakehousePaths, symbol_keys: list[str], periods: Mapping[str, float]
) -> list[SymbolBackfill]:
    results: dict[str, SymbolBackfill] = {}
    for first in range(0, len(symbol_keys), SYMBOLS_PER_BATCH):
        results.update(_backfill_batch(paths, symbol_keys[first : first + SYMBOLS_PER_BATCH], periods))
    return [results[key] for key in symbol_keys]


def _backfill_batch(
    paths: LakehousePaths, symbol_keys: list[str], periods: Mapping[str, float]
) -> dict[str, SymbolBackfill]:
    """Plan every symbol under its lock, compute the appended tails together, then write (locks held)."""
    results: dict[str, SymbolBackfill] = {}
    appends: list[_Append] = []
    with contextlib.ExitStack() as locks:
        # One global order of acquisition: two backfills holding batches of locks never wait in a cycle.
        for key in sorted(symbol_keys):
            try:
                ohlcv_path = paths.ohlcv_file(key)
                if not ohlcv_path.exists():
                    results[key] = SymbolBackfill(key, SymbolStatus.MISSING)
                    continue
                features = locks.enter_context(open_symbol_features(paths, key, dictionary_columns=DISCRETE_COLUMNS))
                outcome = _refresh(features, ohlcv_path, key, periods[key])
            except DiskFullError:
                # A full disk fails every symbol after this one too: stop and say so, rather than list each.
                raise
            except Exception as err:  # noqa: BLE001 - one bad symbol must not sink the others; the report names it.
                outcome = _failure(key, err)
            if isinstance(outcome, _Append):
                appends.append(outcome)
            else:
                results[key] = outcome
        tails = _tails(appends)
        # Threads: each write waits on its fsyncs, which release the GIL.
        with ThreadPoolExecutor(THREADS_PER_WORKER) as pool:
            written = list(pool.map(_write_append, appends, tails))
        results.update((append.symbol_key, result) for append, result in zip(appends, written, strict=True))
    return results


@dataclass(frozen=True)
class _Append:
    """A symbol whose stored rows are the features of its first ``known`` bars: the others are to append."""

    symbol_key: str
    features: SymbolFeaturesFile
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


def _write_append(append: _Append, values: np.ndarray | Exception) -> SymbolBackfill:
    try:
        if isinstance(values, Exception):
            raise values
        dates = append.bars["timestamp"][append.known :]
        result = append.features.append(dates, values, FEATURE_COLUMNS, append.provenance)
        return _written(append.symbol_key, result, append.provenance)
    except DiskFullError:
        raise
    except Exception as err:  # noqa: BLE001 - as in _backfill_batch
        return _failure(append.symbol_key, err)


def _refresh(
    features: SymbolFeaturesFile, ohlcv_path: Path, symbol_key: str, periods_per_year: float
) -> SymbolBackfill | _Append:
    """Decide one symbol (the caller holds its lock): unchanged, recomputed and merged now, or an append."""
    stored = features.stored()
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
    prices = {name: bars[name] for name in _INPUT_COLUMNS[1:]}
    if 0 <= known <= n_bars and stored.n_rows == known and _bars_sha256(bars, known) == previous["bars_sha256"]:
        # The stored rows are the features of exactly the first ``known`` bars: append the others. When the
        # append would compact, recomputing every row (~3 ms) is cheaper than reading the base and a dozen
        # deltas back (~14 ms), and gives the same rows bit for bit.
        if not features.compaction_due:
            return _Append(symbol_key, features, bars, known, provenance)
        values = compute_features(**prices, periods_per_year=periods_per_year)
        return _written(symbol_key, features.rewrite(dates, values, FEATURE_COLUMNS, provenance), provenance)
    values = compute_features(**prices, periods_per_year=periods_per_year)
    return _written(symbol_key, features.upsert(dates, values, FEATURE_COLUMNS, provenance), provenance)


def _written(symbol_key: str, result: UpsertResult, provenance: dict[str, Any]) -> SymbolBackfill:
    return SymbolBackfill(
        symbol_key,
        SymbolStatus.WRITTEN if result.changed else SymbolStatus.UNCHANGED,
        rows_written=result.rows_written,
        rows_changed=result.rows_changed,
        last_date=_timestamp(provenance["last_date"]),
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


def _timestamp(milliseconds: int | None) -> pd.Timestamp | None:
    return None if milliseconds is None else pd.Timestamp(milliseconds, unit="ms", tz="UTC")


def _failure(symbol_key: str, err: BaseException) -> SymbolBackfill:
    return SymbolBackfill(symbol_key, SymbolStatus.FAILED, error=f"{type(err).__name__}: {err}")


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
