"""Bounded repair of gaps in a symbol's stored bars: re-fetch missing sessions, remember every attempt.

A gap is a run of missing sessions of the symbol's trading calendar. Gaps are re-fetched most recent first,
at most once per UTC day and ``max_repair_attempts`` times in all, within a depth, a count and a time budget
(:class:`~alpha_assets.sources.params.IngestionParams`); the attempts are kept in the symbol's repair log
(``lakehouse/repairs/<KEY>.json``) so the bounds hold across runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from alpha_assets.errors import LakehouseReadError, SourceError
from alpha_assets.lakehouse.calendars import TradingCalendar
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.lakehouse.ohlcv import (
    DAY,
    BarArrays,
    Gap,
    QuarantineRecord,
    clean_bar_arrays,
    find_bar_gaps,
    merge_bar_arrays,
)
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.sources.base import Market, MarketSource
from alpha_assets.sources.params import IngestionParams
from alpha_assets.validation import epoch_ms

REPAIR_LOG_VERSION = 1


@dataclass(frozen=True)
class UnrepairedGap:
    """Bars still missing after repair, ``first_missing`` to ``last_missing`` inclusive (ISO UTC)."""

    first_missing: str
    last_missing: str
    missing_bars: int
    attempts: int
    reason: str

    def to_json_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "first_missing": self.first_missing,
            "last_missing": self.last_missing,
            "missing_bars": self.missing_bars,
            "attempts": self.attempts,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class GapRepair:
    """What :func:`repair_gaps` did to one symbol's bars.

    Attributes
    ----------
    bars : BarArrays
        The bars with every re-fetched bar merged in.
    records : tuple of QuarantineRecord
        Rows of the re-fetched answers that were refused.
    gaps_found : int
        Gaps in the bars before repair.
    gaps_repaired : int
        Gaps filled completely.
    unrepaired : tuple of UnrepairedGap
        What is still missing, with the attempts so far and why.
    """

    bars: BarArrays
    records: tuple[QuarantineRecord, ...] = ()
    gaps_found: int = 0
    gaps_repaired: int = 0
    unrepaired: tuple[UnrepairedGap, ...] = ()


def repair_gaps(
    source: MarketSource,
    market: Market,
    key: str,
    bars: BarArrays,
    paths: LakehousePaths,
    today: pd.Timestamp,
    now: pd.Timestamp,
    params: IngestionParams,
    calendar: TradingCalendar,
) -> GapRepair:
    """Re-fetch gaps of ``bars``, most recent first, within the bounds; update the repair log.

    Gaps are missing sessions of ``calendar``: a weekend or holiday of an exchange is never asked for, and a
    gap's range starts and ends on sessions. A gap is tried at most once per UTC day and at most
    ``max_repair_attempts`` times in all; a partly filled gap leaves sub-gaps that inherit its attempts, so
    the bound holds across partial fills.
    """
    gaps = find_bar_gaps(bars, calendar)
    log_path = paths.repair_log_file(key)
    if not gaps and not log_path.exists():
        # The usual day: nothing to repair and no log to clear.
        return GapRepair(bars)
    old_log = _read_repair_log(log_path)
    tried = {(e["first_missing"], e["last_missing"]): e for e in old_log.get("gaps", [])}
    outcome: dict[tuple[str, str], dict[str, Any]] = {}
    records: list[QuarantineRecord] = []
    depth_limit = today - params.max_gap_repair_depth_days * DAY
    day = today.date().isoformat()
    started = time.monotonic()
    fetched = 0
    for gap in sorted(gaps, key=lambda g: g.first_missing, reverse=True):
        gap_id = (gap.first_missing.isoformat(), gap.last_missing.isoformat())
        entry = dict(tried.get(gap_id, {"first_missing": gap_id[0], "last_missing": gap_id[1], "attempts": 0}))
        reason = _skip_reason(gap, entry, day, fetched, started, depth_limit, params)
        if reason is None:
            fetched += 1
            entry.update(attempts=entry["attempts"] + 1, last_attempt_day=day)
            try:
                answer, quarantined = clean_bar_arrays(
                    source.fetch_daily_bars(market, since=gap.first_missing, until=gap.last_missing + DAY),
                    symbol_key=key,
                    now=now,
                )
            except (SourceError, ValueError) as err:
                entry["last_result"] = f"{type(err).__name__}: {err}"
            else:
                inside = answer.take(
                    (answer.timestamps >= epoch_ms(gap.first_missing))
                    & (answer.timestamps <= epoch_ms(gap.last_missing))
                )
                records += quarantined
                bars = merge_bar_arrays(bars, inside)
                entry["last_result"] = f"{len(inside)} of {gap.missing_bars} missing bars returned"
            reason = f"still missing after {entry['attempts']} attempt(s): {entry['last_result']}"
        outcome[gap_id] = {"entry": entry, "reason": reason, "gap": gap}
    remaining = find_bar_gaps(bars, calendar) if gaps else []
    unrepaired, log_entries = [], []
    for gap in remaining:
        parent = next(
            o
            for o in outcome.values()
            if o["gap"].first_missing <= gap.first_missing and gap.last_missing <= o["gap"].last_missing
        )
        attempts = parent["entry"]["attempts"]
        unrepaired.append(
            UnrepairedGap(
                gap.first_missing.isoformat(),
                gap.last_missing.isoformat(),
                gap.missing_bars,
                attempts,
                parent["reason"],
            )
        )
        if attempts:
            log_entries.append(
                {
                    **parent["entry"],
                    "first_missing": gap.first_missing.isoformat(),
                    "last_missing": gap.last_missing.isoformat(),
                }
            )
    new_log = {"version": REPAIR_LOG_VERSION, "symbol_key": key, "gaps": log_entries}
    if new_log != old_log and (log_entries or log_path.exists()):
        write_json_atomic(new_log, log_path)
    repaired = sum(
        1
        for o in outcome.values()
        if not any(o["gap"].first_missing <= g.first_missing <= o["gap"].last_missing for g in remaining)
    )
    return GapRepair(bars, tuple(records), len(gaps), repaired, tuple(unrepaired))


def _skip_reason(
    gap: Gap,
    entry: Mapping[str, Any],
    day: str,
    fetched: int,
    started: float,
    depth_limit: pd.Timestamp,
    params: IngestionParams,
) -> str | None:
    """Why ``gap`` is not re-fetched in this run, or ``None`` when it is, checked in this order."""
    attempts = entry["attempts"]
    if gap.first_missing < depth_limit:
        return f"older than the repair depth of {params.max_gap_repair_depth_days} days"
    if attempts >= params.max_repair_attempts:
        return (
            f"unrepairable: still missing at the source after {attempts} attempt(s) "
            f"({entry.get('last_result', 'no attempt allowed')}); not retried"
        )
    if entry.get("last_attempt_day") == day:
        return f"still missing after {attempts} attempt(s) ({entry.get('last_result')}); next try on a later day"
    if fetched >= params.max_gaps_per_symbol:
        return f"over the limit of {params.max_gaps_per_symbol} gaps re-fetched per run"
    if time.monotonic() - started >= params.repair_time_budget_s:
        return f"repair time budget of {params.repair_time_budget_s} s spent"
    return None


def _read_repair_log(path: Path) -> dict[str, Any]:
    """The repair log, or an empty one when missing or unreadable (it only bounds retries)."""
    if not path.exists():
        return {}
    try:
        document = read_json(path)
    except LakehouseReadError:
        return {}
    return document if isinstance(document, dict) and document.get("version") == REPAIR_LOG_VERSION else {}
