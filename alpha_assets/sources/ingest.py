"""Incremental ingestion of daily bars into the lakehouse, with quarantine and bounded gap repair.

Per symbol, under the file's lock: read the stored bars (an unreadable file is moved aside, never
overwritten), fetch only the bars after the last stored one, quarantine malformed rows, merge without ever
losing a stored bar, re-fetch gaps within bounds (count, depth, time, attempts, one try per gap and UTC
day), and write the file atomically only when a bar changed. Nothing is forward-filled: what stays missing is
reported with its range. Every run also records in the symbol's ingestion log
(:mod:`~alpha_assets.lakehouse.ingest_log`) whether it failed and how far the stored history falls short of
the requested start (a history cap of the exchange, a recent listing), which the audit turns into labels.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from alpha_assets.errors import LakehouseReadError, SourceError
from alpha_assets.lakehouse.atomic import directory_syncs_batched
from alpha_assets.lakehouse.calendars import TradingCalendar
from alpha_assets.lakehouse.ingest_log import HistoryShortfall, IngestLog, read_ingest_log, write_ingest_log
from alpha_assets.lakehouse.keys import split_symbol_key, validate_symbol_key
from alpha_assets.lakehouse.locks import exclusive_lock, remove_sibling_lock
from alpha_assets.lakehouse.ohlcv import (
    DAY,
    BarArrays,
    QuarantineRecord,
    clean_bar_arrays,
    merge_bar_arrays,
    ms_to_iso,
    read_ohlcv_arrays,
    write_ohlcv_arrays,
)
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.quarantine import append_quarantine, move_aside_unreadable
from alpha_assets.processes import map_chunks_in_forked_processes
from alpha_assets.sources.base import HISTORY_LIMIT_ATTR, Market, MarketSource, is_fork_safe, listed_exchange_keys
from alpha_assets.sources.params import IngestionParams
from alpha_assets.sources.repair import UnrepairedGap, repair_gaps
from alpha_assets.typing import IntArray


class IngestStatus(StrEnum):
    """Outcome of one symbol's ingestion."""

    OK = "ok"  # the stored file was written (new, repaired or re-ingested bars)
    UP_TO_DATE = "up_to_date"  # nothing changed in the stored bars
    FAILED = "failed"  # the source failed or answered malformed data; stored bars untouched


@dataclass(frozen=True)
class IngestReport:
    """What ingestion did for one symbol; times are ISO-8601 UTC strings.

    Attributes
    ----------
    symbol_key : str
        The symbol.
    status : IngestStatus
        ``ok`` (file written), ``up_to_date`` (nothing changed) or ``failed`` (see ``error``).
    bars_before, bars_after : int
        Stored bars before and after the run.
    new_bars : int
        Timestamps added by this run (incremental and repaired), ``bars_after - bars_before`` unless the
        stored file was moved aside.
    first_bar, last_bar : str or None
        Open times of the first and last stored bar after the run.
    requests : int
        Requests sent to the source for this symbol.
    quarantined : int
        Rows refused by validation in this run.
    quarantine_reasons : Mapping of str to int
        Reason -> number of rows refused for it.
    gaps_found : int
        Gaps in the merged bars before repair.
    gaps_repaired : int
        Gaps completely filled by re-fetching.
    unrepaired : tuple of UnrepairedGap
        Gaps left, oldest first, each with its range and why it is left.
    moved_aside : str or None
        Where an unreadable stored file was moved (``lakehouse/quarantine/...``).
    written : bool
        Whether the stored file was rewritten.
    error : str or None
        Why the run failed, naming the symbol.
    history : HistoryShortfall or None
        The requested start (``history_days + warmup_days`` before today), the first stored bar, by how many
        days it falls short and why; None when the stored bars reach back to the requested start.
    """

    symbol_key: str
    status: IngestStatus
    bars_before: int
    bars_after: int
    new_bars: int
    first_bar: str | None
    last_bar: str | None
    requests: int
    quarantined: int = 0
    quarantine_reasons: Mapping[str, int] = field(default_factory=dict)
    gaps_found: int = 0
    gaps_repaired: int = 0
    unrepaired: tuple[UnrepairedGap, ...] = ()
    moved_aside: str | None = None
    written: bool = False
    error: str | None = None
    history: HistoryShortfall | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready form with sorted reasons."""
        return {
            "symbol_key": self.symbol_key,
            "status": self.status.value,
            "bars_before": self.bars_before,
            "bars_after": self.bars_after,
            "new_bars": self.new_bars,
            "first_bar": self.first_bar,
            "last_bar": self.last_bar,
            "requests": self.requests,
            "quarantined": self.quarantined,
            "quarantine_reasons": dict(sorted(self.quarantine_reasons.items())),
            "gaps_found": self.gaps_found,
            "gaps_repaired": self.gaps_repaired,
            "unrepaired": [gap.to_json_dict() for gap in self.unrepaired],
            "moved_aside": self.moved_aside,
            "written": self.written,
            "error": self.error,
            "history": None if self.history is None else self.history.to_json_dict(),
        }


_FollowUp = TypeVar("_FollowUp")


def ingest_symbols(
    source: MarketSource,
    markets: Sequence[Market],
    paths: LakehousePaths,
    *,
    now: pd.Timestamp,
    params: IngestionParams,
    processes: int = 1,
) -> list[IngestReport]:
    """Ingest each market; one symbol's failure is reported, never raised.

    Every symbol key is validated before anything is read or written, so an unsafe key stops the run with
    nothing written. The renames of the files written are made durable together before this returns
    (:func:`~alpha_assets.lakehouse.atomic.directory_syncs_batched`, in each worker process for its files).

    With ``processes > 1``, a source that forks may call (:func:`~alpha_assets.sources.base.is_fork_safe`) over
    a local lakehouse is ingested by that many forked workers, each on its share of the markets, and the
    requests they sent are added to ``source.requests_made``; any other source, or a lakehouse in an object
    store (whose client's connections do not survive a fork), is ingested here, one market after the other.

    Parameters
    ----------
    source : MarketSource
        Where the bars come from.
    markets : Sequence of Market
        Markets of ``source`` (their key prefix is one of ``listed_exchange_keys(source)``).
    paths : LakehousePaths
        The lakehouse.
    now : Timestamp
        Timezone-aware clock; bars opening before the start of its UTC day are closed.
    params : IngestionParams
        History length and repair bounds.
    processes : int, default 1
        The most worker processes to use (see above).

    Returns
    -------
    list of IngestReport
        One per market, in the order of ``markets``.

    Raises
    ------
    UnsafeKeyError
        When a market's symbol key is not a safe key.
    TypeError, ValueError
        As :func:`ingest_symbol`, for the arguments shared by all symbols.
    WorkerProcessDiedError
        When a worker process was killed; every file it wrote is complete, and a new run brings the rest.
    """
    ingested = ingest_symbols_then(
        source, markets, paths, now=now, params=params, processes=processes, then=_no_follow_up
    )
    return [report for report, _ in ingested]


def ingest_symbols_then(
    source: MarketSource,
    markets: Sequence[Market],
    paths: LakehousePaths,
    *,
    now: pd.Timestamp,
    params: IngestionParams,
    then: Callable[[Market, IngestReport], _FollowUp],
    processes: int = 1,
) -> list[tuple[IngestReport, _FollowUp]]:
    """:func:`ingest_symbols`, each symbol followed by ``then(market, report)`` in the process that ingested it.

    The follow-up (e.g. the audit of the file just written) runs in the worker processes with the ingestion,
    when there are workers, instead of after them in this one; its results come back with the reports, in the
    order of ``markets``. Arguments, other than ``then``, and errors are those of :func:`ingest_symbols`; an
    error ``then`` raises is raised here.
    """
    now = _validate_common(source, paths, now, params)
    for market in markets:
        _validate_market(source, market)

    def ingest(some: Sequence[Market]) -> list[tuple[IngestReport, _FollowUp]]:
        # Each file's bytes are synced before its rename; the directories' fsyncs once per batch, not per file.
        with directory_syncs_batched():
            reports = [ingest_symbol(source, market, paths, now=now, params=params) for market in some]
        return [(report, then(market, report)) for market, report in zip(some, reports, strict=True)]

    if processes <= 1 or not is_fork_safe(source) or paths.in_object_store:
        return ingest(markets)
    ingested = map_chunks_in_forked_processes(ingest, markets, processes=processes)
    source.requests_made += sum(report.requests for report, _ in ingested)
    return ingested


def _no_follow_up(_market: Market, _report: IngestReport) -> None:
    return None


def ingest_symbol(
    source: MarketSource,
    market: Market,
    paths: LakehousePaths,
    *,
    now: pd.Timestamp,
    params: IngestionParams,
) -> IngestReport:
    """Bring one symbol's stored bars up to date and repair its gaps within bounds.

    Parameters
    ----------
    source : MarketSource
        Where the bars come from.
    market : Market
        A market of ``source``.
    paths : LakehousePaths
        The lakehouse: ``ohlcv_file``, ``quarantine_file`` and ``repair_log_file`` of the symbol are used.
    now : Timestamp
        Timezone-aware clock. The first run fetches ``history_days + warmup_days`` days back from the start
        of its UTC day (whatever the calendar); later runs fetch the bars after the last stored one, and send
        no request when no session of the market's calendar closed since it.
    params : IngestionParams
        History length and repair bounds.

    Returns
    -------
    IngestReport
        Counts, ranges and status; ``failed`` (stored file untouched) when the source raises
        :class:`SourceError` or answers a batch that cannot be validated.

    Raises
    ------
    UnsafeKeyError
        When ``market.symbol_key`` is not a safe key (nothing is read or written).
    TypeError
        When ``market`` is not a :class:`Market`, ``paths`` not a :class:`LakehousePaths`, ``params`` not an
        :class:`IngestionParams`, or ``source`` lacks the :class:`MarketSource` members.
    ValueError
        When ``now`` is naive or the market's key prefix is not an exchange of ``source``.
    """
    now = _validate_common(source, paths, now, params)
    key = _validate_market(source, market)
    requests_before = source.requests_made
    with exclusive_lock(paths.ohlcv_lock_file(key)):
        remove_sibling_lock(paths.ohlcv_file(key))
        outcome = _ingest_locked(source, market, key, paths, now, params)
        history = _record_ingestion(paths, outcome, now, params, TradingCalendar.of(market.calendar))
    return dataclasses.replace(outcome.report, requests=source.requests_made - requests_before, history=history)


@dataclass(frozen=True)
class _LockedIngest:
    """What :func:`_ingest_locked` found: the symbol's report so far and the source's history cap.

    ``report`` lacks ``requests`` and ``history``; ``history_limit`` is ``attrs[HISTORY_LIMIT_ATTR]`` of the
    source's answer, when it stated one.
    """

    report: IngestReport
    history_limit: str | None = None


def _record_ingestion(
    paths: LakehousePaths,
    outcome: _LockedIngest,
    now: pd.Timestamp,
    params: IngestionParams,
    calendar: TradingCalendar,
) -> HistoryShortfall | None:
    """Rewrite the symbol's ingestion log when it changed; return the history shortfall of the stored bars.

    The stored bars fall short when a session of ``calendar`` between the requested start and the first bar
    is missing (an equity whose requested start is a Saturday and first bar the Monday is not short).

    The reason of a shortfall is known when the first fetch saw it: the source's history cap
    (``attrs[HISTORY_LIMIT_ATTR]`` of the fetched frame) or, without one, a listing after the requested
    start. Later runs keep the logged reason while the first bar stays the same.
    """
    report = outcome.report
    key = report.symbol_key
    today = now - pd.Timedelta(int(now.value) % DAY.value, unit="ns")
    requested = today - (params.history_days + params.warmup_days) * DAY
    previous = read_ingest_log(paths, key)
    history = None
    first = None if report.first_bar is None else pd.Timestamp(report.first_bar)
    requested_day = int(requested.value // DAY.value)
    if first is not None and calendar.count(requested_day - 1, int(first.value // DAY.value) - 1) > 0:
        known = previous.history if previous is not None and previous.history is not None else None
        if outcome.history_limit:
            reason = outcome.history_limit
        elif known is not None and known.first_bar == report.first_bar:
            reason = known.reason
        elif report.bars_before == 0:
            reason = f"the source has no bar before {first.date()}: the market was listed after the requested start"
        else:
            reason = (
                "the stored history starts later than requested and ingestion only appends after the last "
                "stored bar, so the older bars are not fetched"
            )
        history = HistoryShortfall(requested.isoformat(), report.first_bar, (first - requested).days, reason)
    failed = report.status is IngestStatus.FAILED
    log = IngestLog(
        symbol_key=key,
        # The clock and the error only of a failure: a log that says the same again is not rewritten.
        as_of=now.isoformat() if failed else "",
        status="failed" if failed else "succeeded",
        error=report.error,
        history=history,
    )
    if log != previous:
        write_ingest_log(paths, log)
    return history


def _ingest_locked(
    source: MarketSource,
    market: Market,
    key: str,
    paths: LakehousePaths,
    now: pd.Timestamp,
    params: IngestionParams,
) -> _LockedIngest:
    """The body of :func:`ingest_symbol`, run while holding the symbol's file lock."""
    # Integer floor on the UTC epoch: what now.floor("D") gives, without its cost per symbol.
    today = now - pd.Timedelta(int(now.value) % DAY.value, unit="ns")
    calendar = TradingCalendar.of(market.calendar)
    today_day = int(today.value // DAY.value)
    records: list[QuarantineRecord] = []
    moved_aside = None
    try:
        stored = read_ohlcv_arrays(paths, key) if paths.ohlcv_file(key).exists() else BarArrays.empty()
    except LakehouseReadError as err:
        moved_aside = move_aside_unreadable(paths, key, now)
        stored = BarArrays.empty()
        records.append(
            QuarantineRecord(symbol_key=key, reason=f"stored file unreadable ({err.reason}); moved to {moved_aside}")
        )
    # The first fetch spans the same calendar days on every calendar (so the members of a mixed universe
    # start together); 1,395 days are ~960 NYSE sessions, far more than the ~280 bars the features need.
    since = (
        today - (params.history_days + params.warmup_days) * DAY
        if len(stored) == 0
        else pd.Timestamp(int(stored.timestamps[-1]), unit="ms", tz="UTC") + DAY
    )
    merged = stored
    history_limit = None
    # No request when no session closed since the last bar (an equity on a Sunday, a holiday).
    if since < today and calendar.count(int(since.value // DAY.value) - 1, today_day - 1) > 0:
        try:
            fetched = source.fetch_daily_bars(market, since=since, until=today)
            history_limit = fetched.attrs.get(HISTORY_LIMIT_ATTR)
            cleaned, quarantined = clean_bar_arrays(fetched, symbol_key=key, now=now)
        except (SourceError, ValueError) as err:
            append_quarantine(paths, key, records)
            failure = _summary(
                key,
                IngestStatus.FAILED,
                stored,
                stored,
                records,
                moved_aside=moved_aside,
                error=f"{key}: {type(err).__name__}: {err}",
            )
            return _LockedIngest(failure)
        records += quarantined
        merged = merge_bar_arrays(stored, cleaned)
    repair = repair_gaps(source, market, key, merged, paths, today, now, params, calendar)
    records += repair.records
    merged = repair.bars
    written = moved_aside is not None or not _same_bars(stored, merged)
    if written:
        write_ohlcv_arrays(paths, key, merged)
    append_quarantine(paths, key, records)
    status = IngestStatus.OK if written else IngestStatus.UP_TO_DATE
    report = _summary(
        key,
        status,
        stored,
        merged,
        records,
        moved_aside=moved_aside,
        written=written,
        gaps_found=repair.gaps_found,
        gaps_repaired=repair.gaps_repaired,
        unrepaired=repair.unrepaired,
    )
    return _LockedIngest(report, history_limit)


def _summary(
    key: str,
    status: IngestStatus,
    before: BarArrays,
    after: BarArrays,
    records: Sequence[QuarantineRecord],
    **extra: Any,
) -> IngestReport:
    """The :class:`IngestReport` of one symbol, ``requests`` and ``history`` not filled in yet."""
    refused = [r for r in records if r.timestamp is not None or r.row]
    return IngestReport(
        symbol_key=key,
        status=status,
        bars_before=len(before),
        bars_after=len(after),
        new_bars=_count_new(before.timestamps, after.timestamps),
        first_bar=ms_to_iso(after.timestamps[0]) if len(after) else None,
        last_bar=ms_to_iso(after.timestamps[-1]) if len(after) else None,
        requests=0,
        quarantined=len(refused),
        quarantine_reasons=dict(Counter(r.reason for r in refused)),
        **extra,
    )


def _same_bars(stored: BarArrays, merged: BarArrays) -> bool:
    """Whether ``merged`` holds exactly the stored bars (same timestamps, bit-identical values)."""
    if merged is stored:
        return True
    if len(stored) != len(merged):
        return False
    return np.array_equal(stored.timestamps, merged.timestamps) and np.array_equal(stored.values, merged.values)


def _count_new(before: IntArray, after: IntArray) -> int:
    """How many of ``after`` are not in ``before``; both sorted (shapes (n_before,) and (n_after,))."""
    if len(before) == 0:
        return len(after)
    # A binary search per bar: np.isin sorts both sides again.
    at = np.minimum(np.searchsorted(before, after), len(before) - 1)
    return int(np.count_nonzero(before[at] != after))


def _validate_common(source: object, paths: object, now: object, params: object) -> pd.Timestamp:
    """Check the arguments shared by every symbol; return ``now`` in UTC."""
    if not isinstance(source, MarketSource):
        raise TypeError(f"`source` must implement MarketSource, got {type(source).__name__}")
    if not isinstance(paths, LakehousePaths):
        raise TypeError(f"`paths` must be a LakehousePaths, got {type(paths).__name__}")
    if not isinstance(params, IngestionParams):
        raise TypeError(f"`params` must be an IngestionParams, got {type(params).__name__}")
    try:
        stamp = pd.Timestamp(now)
    except (TypeError, ValueError) as err:
        raise TypeError(f"`now` must be a timezone-aware Timestamp, got {type(now).__name__}") from err
    if stamp.tzinfo is None:
        raise ValueError(f"`now` must be timezone-aware (UTC), got naive {stamp.isoformat()}")
    return stamp.tz_convert("UTC")


def _validate_market(source: MarketSource, market: object) -> str:
    """Check ``market`` and return its validated key."""
    if not isinstance(market, Market):
        raise TypeError(f"`market` must be a Market, got {type(market).__name__}")
    key = validate_symbol_key(market.symbol_key)
    exchange = split_symbol_key(key)[0]
    if exchange not in listed_exchange_keys(source):
        raise ValueError(f"market {key} is not of source exchange {source.exchange_key!r} (prefix {exchange!r})")
    return key
