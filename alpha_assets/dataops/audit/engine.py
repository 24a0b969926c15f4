"""Health audit of stored daily bars: one verdict per symbol, with its reasons and the observed numbers.

The audit judges the health of the data, never its suitability for a strategy: a symbol listed last week with
clean bars is ``OK`` here, and the Alpha cycle's ``min_history`` decides later whether its history is long
enough.

Checks, each recorded as a :class:`CheckResult` (observed value next to threshold) under its name:

``bars_present``
    The file exists, reads as parquet and holds at least one row. Fails as ``MISSING``.
``schema``
    Columns ``timestamp`` (datetime64) and ``open``, ``high``, ``low``, ``close``, ``volume`` (float64).
    Fails as ``TOXIC``; when a column is missing or not numeric nothing else is checked.
``utc_timestamps``
    ``timestamp`` is timezone-aware UTC, has no null and every bar opens at 00:00 UTC. Fails as ``TOXIC``;
    naive timestamps are read as UTC for the checks that follow, so their reasons are still reported.
``sorted_unique_timestamps``
    Strictly increasing timestamps. Fails as ``TOXIC``; later checks run on the bars sorted, with the last
    of duplicated timestamps kept (as :func:`~alpha_assets.lakehouse.ohlcv.clean_bars` keeps them).
``ohlc_sanity``
    Finite values, prices > 0, volume >= 0, low <= high, open and close inside [low, high]. Fails as
    ``TOXIC``.
``closed_bars``
    No bar opens after the expected last closed bar (defined below): the lakehouse holds closed bars only.
    Fails as ``TOXIC``.
``gaps``
    Sessions of the symbol's trading calendar (:mod:`~alpha_assets.lakehouse.calendars`; every day for a
    24/7 market) missing between consecutive stored bars
    (:func:`~alpha_assets.lakehouse.ohlcv.find_session_gaps`): weekends and holidays of an exchange are never
    gaps. The stored bars are the truth; ``unrepaired_gaps`` (the repair step's report) only labels the gaps
    the repair could not fill. Any gap fails as ``DEGRADED``, and as ``TOXIC`` when the missing sessions
    exceed ``max_gap_fraction`` of the sessions from the first to the last bar. Bars dated on a day that is
    no session of the calendar (a weekend bar of an ``XNYS`` equity: the wrong calendar, or a vendor's
    filler row) fail the check as ``DEGRADED`` too, counted in ``off_session_bars``.
``staleness``
    The expected last closed bar is the last session of the calendar on or before ``floor(as_of, 1 day) -
    1 day`` (UTC): on a Monday, Friday's bar for an equity, Sunday's for crypto. The symbol is ``STALE``
    when its last bar is more than ``max_staleness_sessions`` sessions behind that.
``daily_return``
    Simple return ``close[t] / close[t-1] - 1`` between consecutive stored bars (across a gap too: a jump is
    a jump). Fails as ``TOXIC`` when one exceeds ``max_daily_return``. Upward only, as the contract states; a
    spike that reverts is caught on its way up. The whole history is checked.
``volume_zscore``
    ``x = log(1 + volume)``; each bar's ``x`` is compared with the mean and standard deviation (ddof 0) of
    the ``volume_window`` bars before it, the deviation floored at ``volume_std_floor`` so a flat window
    does not make every change infinite. Fails as ``TOXIC`` when a z-score exceeds ``max_volume_zscore``
    (upward only). Bars without a full trailing window are not scored. The log makes the score a ratio
    test (z = 10 with a typical 0.4 deviation is a volume about 55 times the usual), insensitive to the
    price level.
``frozen_close``
    The longest run of identical consecutive closes within the last ``frozen_lookback_bars`` bars. Fails as
    ``TOXIC`` when it reaches ``frozen_close_bars`` bars.

Two more checks come from the symbol's ingestion log (:mod:`~alpha_assets.lakehouse.ingest_log`), when
:func:`audit_symbol_file` finds one:

``last_ingest``
    The latest ingestion of the symbol did not fail. Fails as ``INGEST_FAILED`` with the source's error: bars
    that could not be brought up to date in this run are not validated for it, however fresh they look.
``history_length``
    The stored bars reach back to the start the ingestion asked for (``history_days + warmup_days`` before
    its day). Fails as ``SHORT_HISTORY`` with the requested start, the first bar, the days missing and why
    (the exchange's history cap, a recent listing); the manifest's ``ingestion.accept_short_history`` says
    whether such a symbol is still validated.

Verdict precedence: ``MISSING`` > ``TOXIC`` > ``INGEST_FAILED`` > ``STALE`` > ``DEGRADED`` >
``SHORT_HISTORY`` > ``OK``; every failed check adds its reason, whatever the final verdict. All checks are
vectorised over the bars (no Python loop over time).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from alpha_assets.dataops.audit.records import (
    CHECK_BARS_PRESENT,
    CHECK_CLOSED_BARS,
    CHECK_DAILY_RETURN,
    CHECK_FROZEN_CLOSE,
    CHECK_GAPS,
    CHECK_HISTORY_LENGTH,
    CHECK_LAST_INGEST,
    CHECK_OHLC_SANITY,
    CHECK_SCHEMA,
    CHECK_SORTED_UNIQUE,
    CHECK_STALENESS,
    CHECK_UTC_TIMESTAMPS,
    CHECK_VOLUME_ZSCORE,
    VERDICT_SEVERITY,
    AuditVerdict,
    CheckResult,
    Verdict,
)
from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.calendars import TradingCalendar
from alpha_assets.lakehouse.ingest_log import IngestLog, read_ingest_log
from alpha_assets.lakehouse.keys import validate_symbol_key
from alpha_assets.lakehouse.ohlcv import (
    DAY,
    OHLCV_COLUMNS,
    VALUE_COLUMNS,
    BarArrays,
    Gap,
    find_session_gaps,
)
from alpha_assets.lakehouse.parquet import read_table
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA
from alpha_assets.parameters import param, parameters
from alpha_assets.typing import FloatArray, IntArray
from alpha_assets.validation import check_utc_timestamp

#: How many gap ranges a reason lists before it says "and N more".
_MAX_LISTED_GAPS = 5
_NS_PER_DAY = DAY.value
_NS_PER_MS = 1_000_000
#: The dtypes the ``schema`` check expects.
_EXPECTED_DTYPES = {"timestamp": "datetime64[ms, UTC]", **dict.fromkeys(VALUE_COLUMNS, "float64")}


@parameters
class AuditParams:
    """Thresholds of the audit (manifest section ``audit``)."""

    max_daily_return: float = param(5.0, ge=0.0)
    """Largest simple daily return (fraction; 5.0 = +500 %) before the symbol is TOXIC."""
    max_volume_zscore: float = param(10.0, ge=0.0)
    """Largest z-score of log(1 + volume) against its trailing window before TOXIC."""
    volume_window: int = param(60, ge=2)
    """Bars in the trailing window of the volume z-score (the scored bar excluded)."""
    volume_std_floor: float = param(0.05, ge=0.001)
    """Floor of the trailing deviation of log(1 + volume), so a flat window gives a finite z-score."""
    frozen_close_bars: int = param(10, ge=2)
    """A run of this many identical consecutive closes makes the symbol TOXIC."""
    frozen_lookback_bars: int = param(90, ge=2)
    """How many of the latest bars are searched for a frozen close."""
    max_staleness_sessions: int = param(1, ge=0)
    """Sessions of the symbol's calendar (days for 24/7 markets) the last bar may lag the expected last closed
    bar (the last session before as_of's UTC day) before STALE."""
    max_gap_fraction: float = param(0.05, ge=0.0, le=1.0)
    """Fraction of the sessions from the first to the last bar that gaps may miss before TOXIC (any gap is
    DEGRADED)."""

    def to_json_dict(self) -> dict[str, float | int]:
        """Return the thresholds as plain JSON."""
        return dataclasses.asdict(self)


def expected_last_bar(as_of: pd.Timestamp, calendar: str | None = None) -> pd.Timestamp:
    """Open time of the last daily bar closed at ``as_of``: the last session on or before its UTC day - 1.

    ``calendar`` is the symbol's trading calendar (None: ``24/7``, where it is ``floor(as_of, 1 day) - 1
    day``).

    Raises
    ------
    ValueError
        When ``as_of`` is timezone-naive or ``calendar`` is not a known calendar.
    """
    return _timestamp(_expected_last_ns(check_utc_timestamp(as_of, "as_of"), TradingCalendar.of(calendar)))


def audit_bars(
    bars: pd.DataFrame | BarArrays | None,
    *,
    symbol_key: str,
    as_of: pd.Timestamp,
    params: AuditParams,
    unrepaired_gaps: Sequence[Gap] = (),
    calendar: str | None = None,
) -> AuditVerdict:
    """Audit one symbol's stored daily bars.

    Parameters
    ----------
    bars : DataFrame of shape (n_observations, 6), BarArrays or None
        Columns ``timestamp`` (bar open time, ``datetime64[*, UTC]``), ``open``, ``high``, ``low``, ``close``
        (quote currency per unit of base) and ``volume`` (base units), float64, one row per daily bar. None
        when nothing is stored. NaN or infinite values are not dropped: they fail ``ohlc_sanity``.
        :class:`~alpha_assets.lakehouse.ohlcv.BarArrays` (UTC epoch-ms timestamps, as read from a file of
        ``OHLCV_SCHEMA``) pass the ``schema`` check by construction and skip pandas.
    symbol_key : str
        The symbol's key, e.g. ``BINANCE_BTCUSDT``.
    as_of : Timestamp
        Timezone-aware instant of the audit; defines the expected last closed bar.
    params : AuditParams
        Thresholds.
    unrepaired_gaps : sequence of Gap, optional
        Gaps the repair step reported it could not fill; they label the matching stored gaps in the reasons.
    calendar : str, optional
        The symbol's trading calendar (``24/7`` or an ``exchange_calendars`` name such as ``XNYS``); None is
        ``24/7``. Gaps and staleness count its sessions.

    Returns
    -------
    AuditVerdict
        The verdict, its reasons and every check's observed numbers (see the module docstring).

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid symbol key.
    TypeError
        When ``bars`` is neither a DataFrame, BarArrays nor None, ``params`` is not an AuditParams, ``as_of`` is not a
        timestamp or an element of ``unrepaired_gaps`` is not a Gap.
    ValueError
        When ``as_of`` is timezone-naive or ``calendar`` is not a known calendar.
    """
    symbol_key = validate_symbol_key(symbol_key)
    as_of = check_utc_timestamp(as_of, "as_of")
    trading = TradingCalendar.of(calendar)
    if not isinstance(params, AuditParams):
        raise TypeError(f"`params` must be an AuditParams, got {type(params).__name__}")
    if bars is not None and not isinstance(bars, pd.DataFrame | BarArrays):
        # The message predates BarArrays (an internal fast form) and is part of the contract.
        raise TypeError(f"`bars` must be a pandas DataFrame or None, got {type(bars).__name__}")
    for gap in unrepaired_gaps:
        if not isinstance(gap, Gap):
            raise TypeError(f"`unrepaired_gaps` must hold Gap records, got {type(gap).__name__}")
    if bars is None or len(bars) == 0:
        return missing_verdict(symbol_key, as_of=as_of, reason="no bars stored")
    audit = _Audit(len(bars), symbol_key, as_of, params, unrepaired_gaps, trading)
    if isinstance(bars, BarArrays):
        return audit.run_arrays(bars)
    return audit.run_frame(bars)


def missing_verdict(symbol_key: str, *, as_of: pd.Timestamp, reason: str) -> AuditVerdict:
    """Build the ``MISSING`` verdict of a symbol without usable bars (no file, unreadable file, no rows).

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid symbol key.
    ValueError
        When ``as_of`` is timezone-naive.
    """
    return AuditVerdict(
        symbol_key=validate_symbol_key(symbol_key),
        verdict=Verdict.MISSING,
        reasons=(reason,),
        checks={CHECK_BARS_PRESENT: CheckResult(False, Verdict.MISSING, 0, 1)},
        first_bar=None,
        last_bar=None,
        n_bars=0,
        as_of=check_utc_timestamp(as_of, "as_of"),
    )


def audit_symbol_file(
    paths: LakehousePaths,
    symbol_key: str,
    *,
    as_of: pd.Timestamp,
    params: AuditParams,
    unrepaired_gaps: Sequence[Gap] = (),
    calendar: str | None = None,
) -> AuditVerdict:
    """Read ``lakehouse/<KEY>_1d.parquet`` as stored (no schema cast) and audit it on ``calendar``.

    A missing or unreadable file gives ``MISSING``; a readable file of the wrong schema is judged by the
    ``schema`` check (``TOXIC``). A file of exactly ``OHLCV_SCHEMA`` (the usual case) is audited on its
    arrays, without pandas.

    Raises
    ------
    UnsafeKeyError
        When ``symbol_key`` is not a valid symbol key (nothing is read).
    TypeError, ValueError
        As :func:`audit_bars`.
    """
    if not isinstance(paths, LakehousePaths):
        raise TypeError(f"`paths` must be a LakehousePaths, got {type(paths).__name__}")
    path = paths.ohlcv_file(symbol_key)
    log = read_ingest_log(paths, symbol_key)
    if not path.exists():
        return with_ingest_log(missing_verdict(symbol_key, as_of=as_of, reason=f"no file {path.name}"), log)
    try:
        table = read_table(path)
    except LakehouseReadError as err:
        verdict = missing_verdict(symbol_key, as_of=as_of, reason=f"unreadable file {path.name}: {err.reason}")
        return with_ingest_log(verdict, log)
    bars = BarArrays.from_table(table) if table.schema.equals(OHLCV_SCHEMA) else table.to_pandas()
    verdict = audit_bars(
        bars, symbol_key=symbol_key, as_of=as_of, params=params, unrepaired_gaps=unrepaired_gaps, calendar=calendar
    )
    return with_ingest_log(verdict, log)


def with_ingest_log(verdict: AuditVerdict, log: IngestLog | None) -> AuditVerdict:
    """``verdict`` with the ``last_ingest`` and ``history_length`` checks of the symbol's ingestion log added.

    Without a log (a lakehouse filled by other means) the verdict is returned unchanged.
    """
    if log is None:
        return verdict
    checks = dict(verdict.checks)
    reasons = list(verdict.reasons)
    checks[CHECK_LAST_INGEST] = CheckResult(
        not log.failed, Verdict.INGEST_FAILED if log.failed else Verdict.OK, log.status, "succeeded"
    )
    if log.failed:
        reasons.append(f"ingestion failed at {log.as_of}: {log.error}")
    short = log.history
    checks[CHECK_HISTORY_LENGTH] = CheckResult(
        short is None,
        Verdict.OK if short is None else Verdict.SHORT_HISTORY,
        None if short is None else short.to_json_dict(),
        "stored bars reach the requested start",
    )
    if short is not None:
        reasons.append(
            f"short history: bars from {_day(pd.Timestamp(short.first_bar))}, {short.short_by_days} days after "
            f"the requested start {_day(pd.Timestamp(short.requested_start))} ({short.reason})"
        )
    worst = max((c.verdict for c in checks.values()), key=VERDICT_SEVERITY.__getitem__)
    return dataclasses.replace(verdict, verdict=worst, reasons=tuple(reasons), checks=checks)


class _Audit:
    """The checks of one symbol, sharing the arrays extracted once from the bars."""

    def __init__(
        self,
        n_rows: int,
        symbol_key: str,
        as_of: pd.Timestamp,
        params: AuditParams,
        unrepaired_gaps: Sequence[Gap],
        calendar: TradingCalendar,
    ) -> None:
        self.n_rows = n_rows
        self.symbol_key = symbol_key
        self.as_of = as_of
        self.params = params
        self.calendar = calendar
        # Bars opening after the end of as_of's previous UTC day are not closed, whatever the calendar.
        self.last_closed = _expected_last_ns(as_of, TradingCalendar.of(None))
        self.expected_last = _expected_last_ns(as_of, calendar)
        self.unrepaired = {(_ns(g.first_missing), _ns(g.last_missing)) for g in unrepaired_gaps}
        self.checks: dict[str, CheckResult] = {CHECK_BARS_PRESENT: CheckResult(True, Verdict.OK, n_rows, 1)}
        self.reasons: list[str] = []
        self.ts = np.empty(0, dtype=np.int64)  # bar open times, ns since epoch, UTC, sorted and unique
        self.values = np.empty((0, len(VALUE_COLUMNS)))  # (n_observations, 5) float64, rows aligned with ts

    def run_frame(self, bars: pd.DataFrame) -> AuditVerdict:
        if self._schema(bars):
            column = bars["timestamp"]
            tz = getattr(column.dtype, "tz", None)
            # Series.values of a tz-aware column is its UTC wall time; a naive one is read as UTC.
            raw = np.asarray(column.values, dtype="datetime64[ns]").view(np.int64)
            values = np.stack([bars[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in VALUE_COLUMNS], axis=1)
            self._timestamps(raw, None if tz is None else str(tz), values)
            self._bar_checks()
        return self._verdict()

    def run_arrays(self, bars: BarArrays) -> AuditVerdict:
        self._record(
            CHECK_SCHEMA, True, Verdict.TOXIC, {"missing_columns": [], "wrong_dtypes": {}}, dict(_EXPECTED_DTYPES)
        )
        self._timestamps(bars.timestamps * _NS_PER_MS, "UTC", bars.values)
        self._bar_checks()
        return self._verdict()

    def _bar_checks(self) -> None:
        if len(self.ts):
            self._ohlc_sanity()
            self._closed_bars()
            self._gaps()
            self._staleness()
            self._daily_return()
            self._volume_zscore()
            self._frozen_close()

    def _verdict(self) -> AuditVerdict:
        worst = max((c.verdict for c in self.checks.values()), key=VERDICT_SEVERITY.__getitem__)
        first = _timestamp(self.ts[0]) if len(self.ts) else None
        last = _timestamp(self.ts[-1]) if len(self.ts) else None
        return AuditVerdict(
            self.symbol_key, worst, tuple(self.reasons), self.checks, first, last, self.n_rows, self.as_of
        )

    def _record(
        self, name: str, passed: bool, failure: Verdict, observed: Any, threshold: Any, reason: str | None = None
    ) -> None:
        self.checks[name] = CheckResult(passed, Verdict.OK if passed else failure, observed, threshold)
        if not passed and reason:
            self.reasons.append(reason)

    def _schema(self, bars: pd.DataFrame) -> bool:
        """Check columns and dtypes; False when the bars cannot be read as numbers at all."""
        expected = dict(_EXPECTED_DTYPES)
        missing = [c for c in OHLCV_COLUMNS if c not in bars.columns]
        present = [c for c in OHLCV_COLUMNS if c in bars.columns]
        dtypes = {c: bars[c].dtype for c in present}
        wrong = {
            c: str(dtypes[c])
            for c in present
            if (c == "timestamp" and not pd.api.types.is_datetime64_any_dtype(dtypes[c]))
            or (c != "timestamp" and dtypes[c] != np.float64)
        }
        unusable = (
            bool(missing)
            or "timestamp" in wrong
            or any(
                not pd.api.types.is_numeric_dtype(dtypes[c]) or pd.api.types.is_bool_dtype(dtypes[c])
                for c in wrong
                if c != "timestamp"
            )
        )
        problems = ([f"missing columns {missing}"] if missing else []) + [f"{c} is {d}" for c, d in wrong.items()]
        self._record(
            CHECK_SCHEMA,
            not problems,
            Verdict.TOXIC,
            {"missing_columns": missing, "wrong_dtypes": wrong},
            expected,
            "schema: " + ", ".join(problems) + f"; expected {expected}",
        )
        return not unusable

    def _timestamps(self, raw: IntArray, tz_name: str | None, values: FloatArray) -> None:
        """Check and sort the bar open times.

        ``raw`` has shape (n_rows,), int64 ns since the epoch (UTC), int64 min for null; ``tz_name`` is the
        column's zone (None when naive); ``values`` has shape (n_rows, 5), float64, rows aligned with ``raw``.
        """
        null = raw == np.iinfo(np.int64).min
        stamps = raw[~null]
        off_midnight = int(np.count_nonzero(stamps % _NS_PER_DAY))
        zone = None if tz_name == "UTC" else f"time zone {tz_name}" if tz_name else "timezone-naive timestamps"
        utc_problems = (
            ([zone] if zone else [])
            + ([f"{int(null.sum())} null timestamps"] if null.any() else [])
            + ([f"{off_midnight} bars not opening at 00:00 UTC"] if off_midnight else [])
        )
        self._record(
            CHECK_UTC_TIMESTAMPS,
            not utc_problems,
            Verdict.TOXIC,
            {"time_zone": tz_name, "null": int(null.sum()), "not_at_midnight": off_midnight},
            {"time_zone": "UTC", "null": 0, "not_at_midnight": 0},
            "timestamps: " + ", ".join(utc_problems),
        )
        values = values[~null]
        steps = np.diff(stamps)
        unsorted = int(np.count_nonzero(steps < 0))
        if unsorted:
            order = np.argsort(stamps, kind="stable")
            stamps, values = stamps[order], values[order]
            steps = np.diff(stamps)
        duplicated = steps == 0
        n_duplicates = int(np.count_nonzero(duplicated))
        if n_duplicates:
            keep = np.append(~duplicated, True)  # the last of equal timestamps wins
            stamps, values = stamps[keep], values[keep]
        self._record(
            CHECK_SORTED_UNIQUE,
            not (unsorted or n_duplicates),
            Verdict.TOXIC,
            {"unsorted_steps": unsorted, "duplicates": n_duplicates},
            {"unsorted_steps": 0, "duplicates": 0},
            f"timestamps: {unsorted} steps backwards, {n_duplicates} duplicated timestamps",
        )
        self.ts, self.values = stamps, values

    def _ohlc_sanity(self) -> None:
        open_, high, low, close, volume = self.values.T
        with np.errstate(invalid="ignore"):
            rules = {
                "non_finite": ~np.isfinite(self.values).all(axis=1),
                "price_not_positive": (self.values[:, :4] <= 0).any(axis=1),
                "negative_volume": volume < 0,
                "high_below_low": high < low,
                "open_close_outside_range": (np.minimum(open_, close) < low) | (np.maximum(open_, close) > high),
            }
        labels = {
            "non_finite": "null, NaN or infinite values",
            "price_not_positive": "a price <= 0",
            "negative_volume": "volume < 0",
            "high_below_low": "high < low",
            "open_close_outside_range": "open or close outside [low, high]",
        }
        counts = {name: int(np.count_nonzero(mask)) for name, mask in rules.items()}
        problems = [
            f"{counts[name]} bars with {labels[name]} (first {_day(self.ts[np.argmax(mask)])})"
            for name, mask in rules.items()
            if counts[name]
        ]
        self._record(
            CHECK_OHLC_SANITY,
            not problems,
            Verdict.TOXIC,
            counts,
            dict.fromkeys(counts, 0),
            "OHLC sanity: " + "; ".join(problems),
        )

    def _closed_bars(self) -> None:
        expected = self.last_closed
        future = self.ts > expected
        n_future = int(np.count_nonzero(future))
        self._record(
            CHECK_CLOSED_BARS,
            not n_future,
            Verdict.TOXIC,
            {"bars_after_expected_last": n_future},
            {"expected_last_bar": _day(expected)},
            f"{n_future} bars open after {_day(expected)}, the last bar closed at as_of "
            f"{self.as_of.isoformat()} (first {_day(self.ts[np.argmax(future)])})",
        )

    def _gaps(self) -> None:
        days = self.ts // _NS_PER_DAY
        # find_session_gaps builds Gap records; skip it on the usual gap-free series (steps of one day).
        has_gap = bool(np.any(np.diff(days) > 1))
        gaps = find_session_gaps(days, self.calendar) if has_gap else []
        span = int(self.calendar.count(days[0] - 1, days[-1])) or 1
        missing = sum(g.missing_bars for g in gaps)
        fraction = missing / span
        off_session = ~self.calendar.is_session(days)
        n_off = int(np.count_nonzero(off_session))
        labelled = [(g, (_ns(g.first_missing), _ns(g.last_missing)) in self.unrepaired) for g in gaps]
        n_unrepaired = sum(flag for _, flag in labelled)
        too_many = fraction > self.params.max_gap_fraction
        problems = []
        if gaps:
            ranges = [
                f"{_day(g.first_missing)}..{_day(g.last_missing)}" + (" (repair could not fill it)" if flag else "")
                for g, flag in labelled[:_MAX_LISTED_GAPS]
            ]
            more = f" and {len(gaps) - _MAX_LISTED_GAPS} more" if len(gaps) > _MAX_LISTED_GAPS else ""
            noun = "gap" if len(gaps) == 1 else "gaps"
            sessions = "" if self.calendar.is_continuous else f" {self.calendar.name} sessions"
            problems.append(f"{len(gaps)} {noun} missing {missing}{sessions or ' bars'}: {', '.join(ranges)}{more}")
            if too_many:
                problems[-1] += (
                    f"; they miss {fraction:.1%} of the {span}-bar span, above {self.params.max_gap_fraction:.1%}"
                )
        if n_off:
            problems.append(
                f"{n_off} bars on days that are no {self.calendar.name} session "
                f"(first {_day(self.ts[np.argmax(off_session)])})"
            )
        self._record(
            CHECK_GAPS,
            not problems,
            Verdict.TOXIC if too_many else Verdict.DEGRADED,
            {
                "calendar": self.calendar.name,
                "n_gaps": len(gaps),
                "missing_bars": missing,
                "span_bars": span,
                "missing_fraction": fraction,
                "unrepaired": n_unrepaired,
                "off_session_bars": n_off,
                "ranges": [g.to_json_dict() for g in gaps],
            },
            {"n_gaps": 0, "off_session_bars": 0, "max_gap_fraction": self.params.max_gap_fraction},
            "; ".join(problems),
        )

    def _staleness(self) -> None:
        expected = self.expected_last
        behind = int(self.calendar.count(self.ts[-1] // _NS_PER_DAY, expected // _NS_PER_DAY))
        limit = self.params.max_staleness_sessions
        unit = "days" if self.calendar.is_continuous else f"{self.calendar.name} sessions"
        self._record(
            CHECK_STALENESS,
            behind <= limit,
            Verdict.STALE,
            {
                "last_bar": _day(self.ts[-1]),
                "expected_last_bar": _day(expected),
                "calendar": self.calendar.name,
                "sessions_behind": behind,
            },
            {"max_staleness_sessions": limit},
            f"last bar {_day(self.ts[-1])} is {behind} {unit} behind the expected {_day(expected)}, above {limit}",
        )

    def _daily_return(self) -> None:
        close = self.values[:, 3]
        limit = self.params.max_daily_return
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = close[1:] / close[:-1] - 1.0
        # Returns from non-positive or non-finite prices are meaningless here; ohlc_sanity reports those.
        valid = np.isfinite(returns) & (close[1:] > 0) & (close[:-1] > 0)
        scored = np.where(valid, returns, -np.inf)
        above = int(np.count_nonzero(scored > limit))
        at = int(np.argmax(scored)) if valid.any() else -1
        largest = float(scored[at]) if at >= 0 else None
        on = _day(self.ts[at + 1]) if at >= 0 else None
        more = f" ({above} bars above)" if above > 1 else ""
        self._record(
            CHECK_DAILY_RETURN,
            not above,
            Verdict.TOXIC,
            {"max_return": largest, "on": on, "bars_above": above},
            {"max_daily_return": limit},
            f"daily return {largest:.2f} on {on} above {limit:.2f}{more}" if above else None,
        )

    def _volume_zscore(self) -> None:
        window, limit = self.params.volume_window, self.params.max_volume_zscore
        threshold = {"max_volume_zscore": limit, "volume_window": window}
        volume = self.values[:, 4]
        if len(volume) <= window:
            self._record(
                CHECK_VOLUME_ZSCORE,
                True,
                Verdict.TOXIC,
                {"max_zscore": None, "on": None, "bars_above": 0, "bars_scored": 0},
                threshold,
            )
            return
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            logs = np.log1p(volume)
            # Rolling moments from cumulative sums (O(n_observations)); centring first limits cancellation.
            finite = logs[np.isfinite(logs)]
            centred = logs - finite.mean() if len(finite) else logs
            sums = np.concatenate(([0.0], np.cumsum(centred)))
            squares = np.concatenate(([0.0], np.cumsum(centred * centred)))
            mean = (sums[window:-1] - sums[: -window - 1]) / window  # window before each scored bar
            var = (squares[window:-1] - squares[: -window - 1]) / window - mean * mean
            std = np.maximum(np.sqrt(np.maximum(var, 0.0)), self.params.volume_std_floor)
            z = (centred[window:] - mean) / std
        scored = np.where(np.isfinite(z), z, -np.inf)
        above = int(np.count_nonzero(scored > limit))
        at = int(np.argmax(scored))
        largest = float(scored[at]) if np.isfinite(scored[at]) else None
        on = _day(self.ts[at + window]) if largest is not None else None
        more = f" ({above} bars above)" if above > 1 else ""
        self._record(
            CHECK_VOLUME_ZSCORE,
            not above,
            Verdict.TOXIC,
            {"max_zscore": largest, "on": on, "bars_above": above, "bars_scored": int(len(z))},
            threshold,
            f"volume z-score {largest:.2f} on {on} above {limit:.2f}{more}" if above else None,
        )

    def _frozen_close(self) -> None:
        limit, lookback = self.params.frozen_close_bars, self.params.frozen_lookback_bars
        close, stamps = self.values[-lookback:, 3], self.ts[-lookback:]
        same = np.concatenate(([False], close[1:] == close[:-1], [False])).astype(np.int8)
        edges = np.diff(same)
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        # A run of k equal steps starting at step s covers the bars s .. s + k.
        run, first, last, value = 1, None, None, None
        if len(starts):
            best = int(np.argmax(ends - starts))
            run = int(ends[best] - starts[best]) + 1
            first, last = _day(stamps[starts[best]]), _day(stamps[ends[best]])
            value = float(close[starts[best]])
        self._record(
            CHECK_FROZEN_CLOSE,
            run < limit,
            Verdict.TOXIC,
            {"longest_run_bars": run, "from": first, "to": last, "close": value, "bars_searched": int(len(close))},
            {"frozen_close_bars": limit, "frozen_lookback_bars": lookback},
            f"close unchanged at {value:g} for {run} bars from {first} to {last}, at least {limit}"
            if run >= limit
            else None,
        )


def _ns(stamp: pd.Timestamp) -> int:
    return int(pd.Timestamp(stamp).as_unit("ns").value)


def _expected_last_ns(as_of: pd.Timestamp, calendar: TradingCalendar) -> int:
    # Integer day arithmetic on the UTC epoch: as exact as Timestamp.floor, and cheap per symbol.
    return calendar.last_on_or_before(int(as_of.value) // _NS_PER_DAY - 1) * _NS_PER_DAY


def _timestamp(ns: int | np.integer) -> pd.Timestamp:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC")


def _day(stamp: int | np.integer | pd.Timestamp) -> str:
    if isinstance(stamp, pd.Timestamp):
        return stamp.strftime("%Y-%m-%d")
    return str(np.datetime64(int(stamp), "ns").astype("datetime64[D]"))
