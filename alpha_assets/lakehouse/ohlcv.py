"""Daily OHLCV bars: row validation with quarantine, merge with stored history, gaps, read and write."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from alpha_assets.errors import LakehouseReadError
from alpha_assets.lakehouse.parquet import read_table, write_table_atomic
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.schemas import OHLCV_SCHEMA

PRICE_COLUMNS = ("open", "high", "low", "close")
VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")
OHLCV_COLUMNS = ("timestamp", *VALUE_COLUMNS)
DAY = pd.Timedelta(days=1)
#: A step between consecutive bars above this many bar intervals is a gap.
GAP_FACTOR = 1.5


@dataclass(frozen=True)
class QuarantineRecord:
    """A row or file refused on the way into the lakehouse, and why."""

    symbol_key: str
    reason: str
    timestamp: str | None = None
    row: dict[str, float | str | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """JSON-ready form, as stored in ``lakehouse/quarantine/<KEY>.jsonl``."""
        return {"symbol_key": self.symbol_key, "reason": self.reason, "timestamp": self.timestamp, "row": self.row}


@dataclass(frozen=True)
class CleanBars:
    """Bars that passed validation (sorted, unique, UTC) and the rows that were quarantined."""

    bars: pd.DataFrame
    quarantined: tuple[QuarantineRecord, ...]


def empty_bars() -> pd.DataFrame:
    """An empty frame with the OHLCV columns and dtypes."""
    return pd.DataFrame(
        {"timestamp": pd.Series([], dtype="datetime64[ms, UTC]"), **{c: pd.Series([], dtype="float64") for c in VALUE_COLUMNS}}
    )


def bars_from_exchange_rows(rows: Sequence[Sequence[object]]) -> pd.DataFrame:
    """Frame from ccxt-style rows ``[timestamp_ms, open, high, low, close, volume]``; no validation yet.

    Malformed rows (wrong length, non-numeric cells) become all-NaN rows so :func:`clean_bars` quarantines them
    with a reason instead of the whole batch failing.
    """
    if len(rows) == 0:
        return empty_bars()
    normalised = [list(row) if isinstance(row, list | tuple) and len(row) == 6 else [None] * 6 for row in rows]
    frame = pd.DataFrame(normalised, columns=list(OHLCV_COLUMNS))
    frame["timestamp"] = pd.to_datetime(pd.to_numeric(frame["timestamp"], errors="coerce"), unit="ms", utc=True)
    for column in VALUE_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def clean_bars(frame: pd.DataFrame, *, symbol_key: str, now: datetime | pd.Timestamp) -> CleanBars:
    """Validate daily bars; every refused row becomes a quarantine record naming the reason.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, 6)
        Columns ``timestamp`` (tz-aware, UTC), ``open``, ``high``, ``low``, ``close``, ``volume``, any order.
    symbol_key : str
        The symbol the rows belong to, for the records.
    now : datetime
        Bars opening at or after the start of ``now``'s UTC day are not closed yet (or from the future) and
        are refused.

    Returns
    -------
    CleanBars
        ``bars`` sorted by timestamp, unique (the last of duplicated timestamps wins), float64, UTC.

    Raises
    ------
    ValueError
        When ``frame`` lacks an OHLCV column, or its timestamps are timezone-naive: a naive clock cannot be
        placed in UTC safely, so the whole batch is refused rather than guessed.
    """
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"bars of {symbol_key} lack columns {missing}; expected {list(OHLCV_COLUMNS)}")
    timestamps = frame["timestamp"]
    if not isinstance(timestamps.dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"bars of {symbol_key}: `timestamp` must be timezone-aware UTC, got dtype {timestamps.dtype}"
        )
    frame = frame.loc[:, list(OHLCV_COLUMNS)].copy()
    frame["timestamp"] = timestamps.dt.tz_convert("UTC").astype("datetime64[ms, UTC]")
    values = frame[list(VALUE_COLUMNS)].to_numpy(dtype="float64", na_value=np.nan)
    today = pd.Timestamp(now).tz_convert("UTC").floor("D") if pd.Timestamp(now).tzinfo else None
    if today is None:
        raise ValueError(f"`now` must be timezone-aware, got {now!r}")
    open_, high, low, close, volume = values.T
    reasons = np.full(len(frame), "", dtype=object)
    # Checked from the least to the most specific, so each row keeps its most telling reason.
    rules = (
        (frame["timestamp"].isna().to_numpy(), "missing or malformed timestamp"),
        (~np.isfinite(values).all(axis=1), "null, NaN or infinite value"),
        ((values[:, :4] <= 0).any(axis=1), "price <= 0"),
        (volume < 0, "negative volume"),
        (high < low, "high < low"),
        ((low > np.minimum(open_, close)) | (high < np.maximum(open_, close)), "open or close outside [low, high]"),
        ((frame["timestamp"] != frame["timestamp"].dt.floor("D")).to_numpy(), "daily bar not opening at 00:00 UTC"),
        ((frame["timestamp"] >= today).to_numpy(), "bar not closed yet or in the future"),
    )
    for mask, reason in rules:
        reasons[mask & (reasons == "")] = reason
    bad = reasons != ""
    records = [
        QuarantineRecord(
            symbol_key=symbol_key,
            reason=str(reasons[i]),
            timestamp=None if pd.isna(frame["timestamp"].iat[i]) else frame["timestamp"].iat[i].isoformat(),
            row={c: _json_float(values[i, j]) for j, c in enumerate(VALUE_COLUMNS)},
        )
        for i in np.flatnonzero(bad)
    ]
    good = frame.loc[~bad]
    duplicated = good["timestamp"].duplicated(keep="last").to_numpy()
    records += [
        QuarantineRecord(symbol_key=symbol_key, reason="duplicate timestamp (later row kept)",
                         timestamp=ts.isoformat())
        for ts in good["timestamp"][duplicated]
    ]
    bars = good.loc[~duplicated].sort_values("timestamp", kind="stable").reset_index(drop=True)
    return CleanBars(bars=bars, quarantined=tuple(records))


def merge_bars(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Union of stored and new bars on ``timestamp``; the new bar wins where both have one.

    Never drops a stored timestamp, so a short answer from a source cannot shrink the history.
    """
    if new.empty:
        return stored.reset_index(drop=True)
    combined = pd.concat([stored, new], ignore_index=True) if not stored.empty else new
    combined = combined.drop_duplicates("timestamp", keep="last")
    return combined.sort_values("timestamp", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Gap:
    """Missing bars between two stored ones: ``first_missing`` to ``last_missing`` inclusive."""

    first_missing: pd.Timestamp
    last_missing: pd.Timestamp

    @property
    def missing_bars(self) -> int:
        """How many daily bars the gap lacks."""
        return int((self.last_missing - self.first_missing) / DAY) + 1

    def to_json(self) -> dict[str, object]:
        """JSON-ready form with ISO dates."""
        return {"first_missing": self.first_missing.isoformat(), "last_missing": self.last_missing.isoformat(),
                "missing_bars": self.missing_bars}


def find_gaps(timestamps: pd.Series, interval: pd.Timedelta = DAY) -> list[Gap]:
    """Steps between consecutive bars longer than ``GAP_FACTOR`` intervals, as the missing ranges."""
    if len(timestamps) < 2:
        return []
    values = pd.DatetimeIndex(timestamps)
    steps = values[1:] - values[:-1]
    where = np.flatnonzero(steps > GAP_FACTOR * interval)
    return [Gap(values[i] + interval, values[i + 1] - interval) for i in where]


def read_ohlcv(paths: LakehousePaths, symbol_key: str) -> pd.DataFrame:
    """Stored bars of one symbol, as a frame with the OHLCV columns (timestamp ``datetime64[ms, UTC]``).

    Raises
    ------
    LakehouseReadError
        When the file is missing, unreadable or of the wrong schema.
    """
    path = paths.ohlcv_file(symbol_key)
    frame = read_table(path, OHLCV_SCHEMA).to_pandas()
    if not frame["timestamp"].is_monotonic_increasing or frame["timestamp"].duplicated().any():
        raise LakehouseReadError(str(path), "timestamps are not sorted and unique")
    return frame


def read_ohlcv_or_empty(paths: LakehousePaths, symbol_key: str) -> pd.DataFrame:
    """Stored bars, or an empty frame when the symbol has no file yet (other read errors still raise)."""
    if not paths.ohlcv_file(symbol_key).exists():
        return empty_bars()
    return read_ohlcv(paths, symbol_key)


def bars_to_table(bars: pd.DataFrame) -> pa.Table:
    """The frame as an arrow table of ``OHLCV_SCHEMA``."""
    return pa.Table.from_pandas(bars.loc[:, list(OHLCV_COLUMNS)], schema=OHLCV_SCHEMA, preserve_index=False)


def write_ohlcv(paths: LakehousePaths, symbol_key: str, bars: pd.DataFrame) -> None:
    """Replace the symbol's file atomically with ``bars`` (already clean, sorted and unique)."""
    write_table_atomic(bars_to_table(bars), paths.ohlcv_file(symbol_key))


def wide_closes(bars_by_symbol: Mapping[str, pd.DataFrame], *, until: pd.Timestamp) -> pd.DataFrame:
    """Wide closes: UTC-midnight index x symbol columns (sorted), NaN where a symbol has no bar that day.

    Only bars opening on or before ``until`` are kept, so bars appended later do not change a snapshot
    taken for an earlier as-of date.
    """
    columns = {}
    for key in sorted(bars_by_symbol):
        bars = bars_by_symbol[key]
        bars = bars[bars["timestamp"] <= until]
        columns[key] = pd.Series(bars["close"].to_numpy(), index=pd.DatetimeIndex(bars["timestamp"]).floor("D"))
    closes = pd.DataFrame(columns).sort_index()
    closes.index = pd.DatetimeIndex(closes.index).astype("datetime64[ns, UTC]")
    closes.index.name = "date"
    return closes


def _json_float(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
