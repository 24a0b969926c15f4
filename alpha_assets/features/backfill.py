"""Feature backfill: recompute a scope of symbols from their stored bars and upsert ``features_matrix``.

Each symbol is recomputed from its full stored history: EMA and Wilder smoothing depend on every bar since
their seed, so a tail recomputed from a short warm-up would not be exact, and the compiled pass over a whole
history takes a few milliseconds. The upsert then writes the symbol's file only when a row changed. One
symbol's failure is recorded in the report and does not stop the others.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from enum import Enum

import pandas as pd

from alpha_assets.features.matrix import compute_symbol_features
from alpha_assets.lakehouse.features_store import upsert_symbol_features
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths

__all__ = ["BackfillReport", "SymbolBackfill", "SymbolStatus", "backfill_features"]

#: Below this many symbols per worker, starting processes costs more than it saves.
MIN_SYMBOLS_PER_WORKER = 32
#: Chunks per worker: small enough to balance uneven histories, large enough to amortise the hand-offs.
CHUNKS_PER_WORKER = 4


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
        Date (UTC) of the symbol's last feature row computed in this run; None when none was.
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
    """Recompute the features of ``symbol_keys`` from their stored bars and upsert them, across processes.

    Parameters
    ----------
    paths : LakehousePaths
        The lakehouse (OHLCV files in, ``features_matrix.parquet/<KEY>.parquet`` out).
    symbol_keys : sequence of str
        The scope, e.g. the validated candidates of a RUN_ID or the partitions chosen in the UI; duplicates
        are dropped, the order is kept.
    workers : int, optional
        Processes to spread the symbols over. Default: one per available core, but never fewer than
        ``MIN_SYMBOLS_PER_WORKER`` symbols per process (a small scope runs in the calling process).
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
    """
    if isinstance(symbol_keys, str):
        raise TypeError(
            f"`symbol_keys` must be a sequence of symbol keys, got the single str {symbol_keys!r}"
        )
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"`workers` must be a positive integer or None, got {workers!r}")
    keys = list(dict.fromkeys(symbol_keys))
    if workers is None:
        workers = max(1, min(_available_cores(), len(keys) // MIN_SYMBOLS_PER_WORKER))
    workers = min(workers, max(1, len(keys)))
    if workers == 1:
        return BackfillReport(symbols=tuple(_backfill_chunk(paths, keys)), workers=1)
    n_chunks = min(len(keys), workers * CHUNKS_PER_WORKER)
    chunks = [keys[i::n_chunks] for i in range(n_chunks)]
    results: dict[str, SymbolBackfill] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [(chunk, pool.submit(_backfill_chunk, paths, chunk)) for chunk in chunks]
        for chunk, future in futures:
            try:
                results.update((entry.symbol_key, entry) for entry in future.result())
            except BrokenProcessPool as err:
                # A worker that dies (e.g. killed for memory) takes its chunk down, not the whole report.
                results.update((key, _failure(key, err)) for key in chunk)
    return BackfillReport(symbols=tuple(results[key] for key in keys), workers=workers)


def _backfill_chunk(paths: LakehousePaths, symbol_keys: list[str]) -> list[SymbolBackfill]:
    return [_backfill_symbol(paths, key) for key in symbol_keys]


def _backfill_symbol(paths: LakehousePaths, symbol_key: str) -> SymbolBackfill:
    try:
        if not paths.ohlcv_file(symbol_key).exists():
            return SymbolBackfill(symbol_key, SymbolStatus.MISSING)
        frame = compute_symbol_features(read_ohlcv(paths, symbol_key), symbol_key)
        result = upsert_symbol_features(paths, symbol_key, frame)
    except Exception as err:  # noqa: BLE001 - one bad symbol must not sink the others; the report names it.
        return _failure(symbol_key, err)
    return SymbolBackfill(
        symbol_key,
        SymbolStatus.WRITTEN if result.changed else SymbolStatus.UNCHANGED,
        rows_written=result.rows_written,
        rows_changed=result.rows_changed,
        last_date=frame["date"].iat[-1] if len(frame) else None,
    )


def _failure(symbol_key: str, err: BaseException) -> SymbolBackfill:
    return SymbolBackfill(symbol_key, SymbolStatus.FAILED, error=f"{type(err).__name__}: {err}")


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
