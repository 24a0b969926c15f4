"""A folder of per-symbol daily-bar files (``<EXCHANGE>_<SYMBOL>_1d.csv|parquet``) as a market-data source.

File names are the only thing read from the folder listing: a name is parsed and its key validated before
the file is used, and a file is only ever opened through the path the listing gave, never through a path
built from a key. Each file's prefix is its exchange, so one folder may hold several exchanges.

Files are read in batches (``pyarrow.csv.open_csv``, ``ParquetFile.iter_batches``) and only the bars a call
needs are kept, so memory does not grow with the file. Every price is parsed from its text by Arrow's
correctly rounded parser: the stored float equals Python's ``float()`` of the text (pandas' default C parser
is off by one ulp on some real prices).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from alpha_assets.errors import SourceError, UnsafeKeyError
from alpha_assets.lakehouse.keys import split_symbol_key, validate_symbol_key
from alpha_assets.lakehouse.ohlcv import DAY_MS, OHLCV_COLUMNS, VALUE_COLUMNS
from alpha_assets.sources.base import Market, Ticker

#: Quotes recognised at the end of a symbol, longest first so that ``USDT`` wins over ``USD``.
KNOWN_QUOTES: tuple[str, ...] = ("USDT", "USDC", "BUSD", "USD", "BTC", "ETH", "EUR")
_FILE_NAME = re.compile(r"^(?P<key>.+)_1d\.(?P<suffix>csv|parquet)$")
DEFAULT_FILES_EXCHANGE = "FILES"

#: Header names of each column as real exports write them (Yahoo, Stooq, TradingView, Binance dumps), compared
#: lower-cased with ``<>``, ``_`` and spaces normalised. ``Adj Close`` is not ``close``: an adjusted close next
#: to unadjusted open, high and low breaks the bar; adjust all four before, if adjusted prices are wanted.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "time", "date", "datetime", "date time", "open time", "opentime", "unix"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "vol", "vol."),
}
#: The columns of a headerless Binance kline dump (data.binance.vision), in file order.
BINANCE_KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
#: Bytes per CSV block and rows per parquet batch: what one read holds in memory besides the kept bars.
CSV_BLOCK_BYTES = 1 << 20
PARQUET_BATCH_ROWS = 65_536
#: Epoch numbers are told apart by magnitude: each unit covers the years 1973 to 5138, and the ranges do not
#: overlap. Smaller numbers (before 1973 in seconds) are refused rather than guessed.
EPOCH_UNITS_MS: tuple[tuple[float, float, str, float], ...] = (
    (1e8, 1e11, "seconds", 1e3),
    (1e11, 1e14, "milliseconds", 1.0),
    (1e14, 1e17, "microseconds", 1e-3),
    (1e17, 1e20, "nanoseconds", 1e-6),
)
#: A step between consecutive timestamps shorter than this is intraday (daily bars of equities stamped at
#: their session open move by 23 or 25 hours across daylight saving).
INTRADAY_STEP_MS = 20 * 3_600_000
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_GROUPED_NUMBER = r"^[+-]?(\d{1,3}(,\d{3})+(\.\d*)?|\d+,\d+)$"
_EPOCH = r"^\d{1,20}$"
_DATE_ONLY = r"^\d{4}-\d{2}-\d{2}$"
_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|UTC|[+-]\d{2}(:?\d{2})?)$"
_NAIVE = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
_NAT = np.iinfo(np.int64).min


@dataclass(frozen=True)
class SkippedFile:
    """A file of the folder that is not used, and why (quarantine-style record)."""

    name: str
    reason: str

    def to_json_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"name": self.name, "reason": self.reason}


class FileSource:
    """Daily bars from a folder of ``<EXCHANGE>_<SYMBOL>_1d.csv`` or ``.parquet`` files.

    Each file has a timestamp column and ``open``, ``high``, ``low``, ``close``, ``volume`` (header names as
    :data:`COLUMN_ALIASES`, any case; extra columns are ignored; a headerless 12-column Binance kline dump is
    read by position). Timestamps are dates (``2024-01-02``), ISO-8601 date-times with a zone, epoch numbers in
    seconds, milliseconds, microseconds or nanoseconds (told apart by magnitude), or (parquet) date or
    timezone-aware timestamp columns. A daily bar is the day its timestamp writes: the date of an ISO string
    (``2024-01-02T00:00:00-05:00`` is 2 January), the UTC date of an epoch number or a parquet timestamp.

    Refused with the reason (the file is skipped, never guessed at): a delimiter other than ``,``, numbers with
    thousands separators or a decimal comma, timezone-naive date-times, timestamps in no known format, a
    missing or doubled column, intraday bars (most steps between rows under 20 hours: resample them to daily
    bars first), a CSV and a parquet of one symbol, a name that is not ``<EXCHANGE>_<SYMBOL>_1d``. A bad cell
    (text in a price, an empty cell, an epoch number too small to tell its unit) makes its row NaN or NaT, so
    ingestion quarantines that row alone.

    Parameters
    ----------
    directory : Path
        The folder; it is listed again by :meth:`load_markets`, so files added later are seen.
    exchange_key : str, optional
        Keep only the files of this exchange prefix (``BINANCE``); the others are skipped with a reason.
        ``None``: every exchange of the folder.
    now : Timestamp, optional
        Clock (timezone-aware) deciding which bars are closed; ``None`` reads the UTC time at each call. A bar
        is served only if it opens before the start of the clock's UTC day and before the start of the wall
        clock's: a clock in the future never serves bars that do not exist yet.

    Attributes
    ----------
    exchange_keys : tuple of str
        The exchange prefixes of the files listed, sorted (``exchange_key`` alone when it is given).
    exchange_key : str
        ``exchange_keys`` joined by ``+`` (``BINANCE+NASDAQ``), ``exchange_key`` when given, or ``"FILES"``
        when the folder has no valid file.
    requests_made : int
        One per :meth:`load_markets`, :meth:`fetch_tickers` and :meth:`fetch_daily_bars` call.
    skipped : tuple of SkippedFile
        Files not used (bad name, other exchange, CSV and parquet of one key, refused or unreadable, no closed
        bar), as of the last listing and reads.

    Raises
    ------
    ValueError
        When ``directory`` is not a directory or ``now`` is naive.
    UnsafeKeyError
        When ``exchange_key`` is not in ``[A-Z0-9]``.
    """

    #: Reads local files and keeps no state but counters: forked workers may each ingest their own symbols.
    fork_safe = True

    def __init__(self, directory: Path, exchange_key: str | None = None, *, now: pd.Timestamp | None = None) -> None:
        directory = Path(directory)
        if not directory.is_dir():
            raise ValueError(f"`directory` must be an existing directory, got {str(directory)!r}")
        if exchange_key is not None and not re.fullmatch(r"[A-Z0-9]{1,32}", str(exchange_key)):
            raise UnsafeKeyError(f"`exchange_key` must be 1 to 32 characters in [A-Z0-9], got {exchange_key!r}")
        if now is not None and pd.Timestamp(now).tzinfo is None:
            raise ValueError(f"`now` must be timezone-aware (UTC), got naive {pd.Timestamp(now).isoformat()}")
        self.directory = directory
        self.requests_made = 0
        self._now = None if now is None else pd.Timestamp(now).tz_convert("UTC")
        self._wanted_exchange = exchange_key
        self.skipped: tuple[SkippedFile, ...] = ()
        self._files = self._list()

    @property
    def exchange_keys(self) -> tuple[str, ...]:
        """The exchange prefixes of the files listed, sorted."""
        if self._wanted_exchange is not None:
            return (self._wanted_exchange,)
        return tuple(sorted({split_symbol_key(key)[0] for key in self._files}))

    @property
    def exchange_key(self) -> str:
        """The exchange prefixes joined by ``+``, or ``"FILES"`` for a folder without a valid file."""
        return "+".join(self.exchange_keys) or DEFAULT_FILES_EXCHANGE

    # --- MarketSource -------------------------------------------------------------------------------------
    def load_markets(self) -> list[Market]:
        """One market per valid file, sorted by key; base and quote split on :data:`KNOWN_QUOTES`."""
        self.requests_made += 1
        self._files = self._list()
        return [_market_from_key(key) for key in sorted(self._files)]

    def fetch_tickers(self) -> dict[str, Ticker]:
        """Tickers from each file's last closed bar: ``quote_volume = close * volume`` of that bar.

        A file that is refused or cannot be read, or holds no closed bar, gets no ticker and is added to
        :attr:`skipped` with the reason; the other files are read all the same.
        """
        self.requests_made += 1
        today = self._today_ms()
        tickers, skipped = {}, []
        for key, path in sorted(self._files.items()):
            try:
                last = None
                for timestamps, values in _daily_batches(path):
                    closed = (timestamps != _NAT) & (timestamps < today) & np.isfinite(values[:, [3, 4]]).all(axis=1)
                    if closed.any():
                        rows = np.flatnonzero(closed)
                        newest = rows[np.argmax(timestamps[rows])]
                        if last is None or timestamps[newest] >= last[0]:
                            last = (int(timestamps[newest]), values[newest])
            except SourceError as err:
                skipped.append(SkippedFile(path.name, str(err)))
                continue
            if last is None:
                day = pd.Timestamp(today, unit="ms", tz="UTC").date().isoformat()
                skipped.append(SkippedFile(path.name, f"no bar with a close and a volume before {day}"))
                continue
            close, volume = float(last[1][3]), float(last[1][4])
            tickers[key] = Ticker(symbol_key=key, last=close, quote_volume=close * volume)
        self.skipped = self.skipped + tuple(s for s in skipped if s not in self.skipped)
        return tickers

    def fetch_daily_bars(self, market: Market, *, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
        """Rows of the market's file opening in ``[since, until)`` and before today, not validated.

        Rows whose timestamp cannot be read are returned too (timestamp ``NaT``), so that ingestion
        quarantines them with a reason instead of dropping them unseen.

        Returns
        -------
        DataFrame of shape (n_observations, 6)
            ``timestamp`` (``datetime64[ms, UTC]``, the bar's day at 00:00), ``open``, ``high``, ``low``,
            ``close``, ``volume`` (float64, NaN where a cell was not a number), in file order.

        Raises
        ------
        SourceError
            When the market has no file, or the file is refused or unreadable; the message names the file and
            the reason.
        ValueError
            When ``since`` or ``until`` is naive.
        """
        self.requests_made += 1
        for name, bound in (("since", since), ("until", until)):
            if pd.Timestamp(bound).tzinfo is None:
                raise ValueError(f"`{name}` must be timezone-aware (UTC), got naive {pd.Timestamp(bound).isoformat()}")
        path = self._files.get(getattr(market, "symbol_key", None))
        if path is None:
            raise SourceError(f"no file for market {getattr(market, 'symbol_key', market)!r} in {self.directory}")
        start = _epoch_ms(pd.Timestamp(since))
        stop = min(_epoch_ms(pd.Timestamp(until)), self._today_ms())
        kept_stamps, kept_values = [], []
        for timestamps, values in _daily_batches(path):
            keep = (timestamps == _NAT) | ((timestamps >= start) & (timestamps < stop))
            kept_stamps.append(timestamps[keep])
            kept_values.append(values[keep])
        timestamps = np.concatenate(kept_stamps) if kept_stamps else np.empty(0, dtype=np.int64)
        values = np.concatenate(kept_values) if kept_values else np.empty((0, len(VALUE_COLUMNS)))
        frame = {"timestamp": pd.array(timestamps.view("datetime64[ms]"), dtype=pd.DatetimeTZDtype("ms", "UTC"))}
        frame.update(zip(VALUE_COLUMNS, np.ascontiguousarray(values.T), strict=True))
        return pd.DataFrame(frame)

    # --- helpers ------------------------------------------------------------------------------------------
    def _today_ms(self) -> int:
        """Start of the UTC day of the earlier of the clock and the wall clock, in epoch milliseconds."""
        wall = pd.Timestamp.now(tz="UTC")
        now = wall if self._now is None else min(self._now, wall)
        return _epoch_ms(now) // DAY_MS * DAY_MS

    def _list(self) -> dict[str, Path]:
        """Valid files by key; everything else goes to :attr:`skipped` with the reason."""
        by_key: dict[str, list[Path]] = {}
        skipped = []
        for path in sorted(p for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")):
            match = _FILE_NAME.fullmatch(path.name)
            if match is None:
                skipped.append(SkippedFile(path.name, "name is not <EXCHANGE>_<SYMBOL>_1d.csv or .parquet"))
                continue
            try:
                key = validate_symbol_key(match.group("key"))
            except UnsafeKeyError as err:
                skipped.append(SkippedFile(path.name, str(err)))
                continue
            exchange = split_symbol_key(key)[0]
            if self._wanted_exchange is not None and exchange != self._wanted_exchange:
                skipped.append(SkippedFile(path.name, f"exchange {exchange} is not {self._wanted_exchange}"))
                continue
            by_key.setdefault(key, []).append(path)
        files = {}
        for key, found in by_key.items():
            if len(found) > 1:
                skipped += [SkippedFile(p.name, f"both .csv and .parquet exist for {key}: keep one") for p in found]
            else:
                files[key] = found[0]
        self.skipped = tuple(skipped)
        return files


def _daily_batches(path: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The file's rows in batches: epoch-ms day stamps (int64 min where unreadable) and (n, 5) float64 values.

    Raises
    ------
    SourceError
        When the file is refused or unreadable, naming it and the reason; also when a later batch turns out
        intraday or holds grouped numbers (rows already yielded are then of no use: the file is refused).
    """
    try:
        batches = _parquet_batches(path) if path.suffix == ".parquet" else _csv_batches(path)
        previous = _NAT
        for row_offset, (stamps, instants, values) in batches:
            previous = _refuse_intraday(path.name, instants, previous, row_offset)
            yield stamps, values
    except SourceError:
        raise
    except (OSError, ValueError, pa.ArrowException, OverflowError) as err:
        # Arrow's parse and decoding errors are ValueError subclasses; one file's failure never stops the others.
        raise SourceError(f"cannot read {path.name}: {type(err).__name__}: {err}") from err


def _refuse_intraday(name: str, instants: np.ndarray, previous: int, row_offset: int) -> int:
    """Raise when most steps between consecutive rows of a batch are under a day; return its last instant."""
    valid = instants[instants != _NAT]
    if previous != _NAT:
        valid = np.concatenate([[previous], valid])
    steps = np.abs(np.diff(valid))
    steps = steps[steps > 0]
    short = int(np.count_nonzero(steps < INTRADAY_STEP_MS))
    if short and short * 2 > len(steps):
        typical = pd.Timedelta(int(np.median(steps)), unit="ms")
        raise SourceError(
            f"{name}: intraday bars (typical step {typical} near data row {row_offset + 1}); the files source "
            "takes daily bars only: resample them to one bar per day (open first, high max, low min, close "
            "last, volume sum) before"
        )
    return int(valid[-1]) if len(valid) else previous


def _csv_batches(path: Path) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Stream a CSV as (first data row, parsed batch); every column read as text, then parsed exactly."""
    names, header = _csv_header(path)
    columns = _map_columns(path.name, names)
    read_options = pa_csv.ReadOptions(
        # One block at a time: threads would read ahead and hold several blocks for a file read once.
        use_threads=False,
        block_size=CSV_BLOCK_BYTES,
        column_names=None if header else list(names),
        autogenerate_column_names=False,
    )
    convert = pa_csv.ConvertOptions(
        include_columns=[columns[c] for c in OHLCV_COLUMNS],
        column_types={columns[c]: pa.string() for c in OHLCV_COLUMNS},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    # A row with too many or too few fields becomes one unreadable row (quarantined), not a failed file.
    short_rows: list[int] = []

    def skip_invalid(row: pa_csv.InvalidRow) -> str:
        short_rows.append(row.number or 0)
        return "skip"

    parse = pa_csv.ParseOptions(delimiter=",", invalid_row_handler=skip_invalid)
    offset = 0
    with pa_csv.open_csv(path, read_options=read_options, parse_options=parse, convert_options=convert) as reader:
        for batch in reader:
            parsed = _parse_batch(path.name, {c: batch.column(columns[c]) for c in OHLCV_COLUMNS}, offset)
            if short_rows:
                parsed = _with_unreadable_rows(parsed, len(short_rows))
                short_rows.clear()
            yield offset, parsed
            offset += batch.num_rows


def _csv_header(path: Path) -> tuple[tuple[str, ...], bool]:
    """The column names and whether the first line is a header; refuses other delimiters and empty files."""
    with open(path, "rb") as handle:
        first = handle.readline(1 << 16).decode("utf-8-sig", errors="replace").rstrip("\r\n")
    if not first.strip():
        raise SourceError(f"{path.name}: empty file or blank first line; expected a header row")
    fields = next(csv.reader([first]))
    for delimiter, label in ((";", "semicolon"), ("\t", "tab")):
        if len(fields) == 1 and delimiter in first:
            raise SourceError(
                f"{path.name}: {label}-separated; the files source reads comma-separated files with '.' as "
                "decimal point: export again with ',' between fields"
            )
    if re.fullmatch(r"\d+(\.\d+)?", fields[0].strip()):
        if len(fields) == len(BINANCE_KLINE_COLUMNS):
            return BINANCE_KLINE_COLUMNS, False
        raise SourceError(
            f"{path.name}: no header row (the first line is data, {len(fields)} fields); expected a header "
            "naming timestamp (or date), open, high, low, close and volume, or a 12-column Binance kline dump"
        )
    return tuple(fields), True


def _map_columns(name: str, found: tuple[str, ...] | list[str]) -> dict[str, str]:
    """The file's column holding each OHLCV column, by :data:`COLUMN_ALIASES`."""
    normalised = {column: re.sub(r"[\s_]+", " ", column.strip().strip("<>").lower()) for column in found}
    columns, missing = {}, []
    for canonical, aliases in COLUMN_ALIASES.items():
        matches = [column for column, text in normalised.items() if text in aliases]
        if len(matches) > 1:
            raise SourceError(f"{name}: several {canonical} columns {matches}; keep one")
        if matches:
            columns[canonical] = matches[0]
        else:
            missing.append(canonical)
    if missing:
        raise SourceError(f"{name} lacks columns {missing}; expected {list(OHLCV_COLUMNS)}, found {list(found)}")
    return columns


def _parquet_batches(path: Path) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Stream a parquet file as (first data row, parsed batch)."""
    handle = pq.ParquetFile(path)
    columns = _map_columns(path.name, handle.schema_arrow.names)
    offset = 0
    for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=[columns[c] for c in OHLCV_COLUMNS]):
        yield offset, _parse_batch(path.name, {c: batch.column(columns[c]) for c in OHLCV_COLUMNS}, offset)
        offset += batch.num_rows


def _with_unreadable_rows(
    parsed: tuple[np.ndarray, np.ndarray, np.ndarray], count: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Append ``count`` rows with no timestamp and no values, for rows whose field count was wrong."""
    stamps, instants, values = parsed
    missing = np.full(count, _NAT, dtype=np.int64)
    return (
        np.concatenate([stamps, missing]),
        np.concatenate([instants, missing]),
        np.concatenate([values, np.full((count, values.shape[1]), np.nan)]),
    )


def _parse_batch(name: str, columns: dict[str, pa.Array], offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Day stamps (epoch ms at 00:00 UTC), instants (epoch ms) and (n, 5) float64 values of one batch."""
    stamps, instants = _parse_timestamps(name, columns["timestamp"], offset)
    values = np.column_stack([_parse_numbers(name, column, columns[column], offset) for column in VALUE_COLUMNS])
    return stamps, instants, values.reshape(len(stamps), len(VALUE_COLUMNS))


def _parse_numbers(name: str, column: str, array: pa.Array, offset: int) -> np.ndarray:
    """Float64 of a column: numbers as they are, text parsed exactly (``float(text)``), NaN where not a number.

    Raises
    ------
    SourceError
        When a cell holds a number with thousands separators or a decimal comma (``1,234.50``, ``12,5``).
    """
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_decimal(array.type):
        return pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        raise SourceError(f"{name}: column {column} is {array.type}, expected numbers")
    text = pc.utf8_trim_whitespace(array)
    grouped = pc.fill_null(pc.match_substring_regex(text, _GROUPED_NUMBER), False)
    if pc.any(grouped).as_py():
        row = offset + int(np.flatnonzero(grouped.to_numpy(zero_copy_only=False))[0]) + 1
        bad = text[row - offset - 1].as_py()
        raise SourceError(
            f"{name}: {column} {bad!r} on data row {row} has a thousands separator or a decimal comma; "
            "write plain numbers with '.' as decimal point (1234.5)"
        )
    valid = pc.fill_null(pc.match_substring_regex(text, _NUMBER), False)
    numbers = pc.cast(pc.if_else(valid, text, pa.scalar(None, pa.string())), pa.float64())
    return numbers.to_numpy(zero_copy_only=False).astype(np.float64)


def _parse_timestamps(name: str, array: pa.Array, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Day stamps and instants (epoch ms, int64 min where unreadable) of a timestamp column.

    Raises
    ------
    SourceError
        When the column holds timezone-naive date-times (their zone would be a guess) or nothing in a known
        format.
    """
    naive_hint = "write dates (2024-01-02), date-times with a zone (2024-01-02T00:00:00Z) or epoch numbers"
    kind = array.type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:
            raise SourceError(f"{name}: timezone-naive timestamps are refused; {naive_hint}")
        instants = _int64(pc.cast(pc.cast(array, pa.timestamp("ms", "UTC")), pa.int64()))
        return _floor_days(instants), instants
    if pa.types.is_date(kind):
        instants = _int64(pc.cast(pc.cast(array, pa.timestamp("ms")), pa.int64()))
        return instants, instants
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        instants = _epoch_to_ms(array.to_numpy(zero_copy_only=False).astype(np.float64))
        return _floor_days(instants), instants
    text = pc.utf8_trim_whitespace(array)
    epoch = _mask(pc.match_substring_regex(text, _EPOCH))
    date_only = _mask(pc.match_substring_regex(text, _DATE_ONLY))
    zoned = _mask(pc.match_substring_regex(text, _ZONED))
    naive = _mask(pc.match_substring_regex(text, _NAIVE)) & ~zoned
    if naive.any():
        row = int(np.flatnonzero(naive)[0])
        raise SourceError(
            f"{name}: timezone-naive timestamp {text[row].as_py()!r} on data row {offset + row + 1} is refused; "
            f"{naive_hint}"
        )
    known = epoch | date_only | zoned
    if len(text) and not known.any():
        raise SourceError(
            f"{name}: timestamps in an unknown format (data row {offset + 1}: {text[0].as_py()!r}); {naive_hint}"
        )
    instants = np.full(len(text), _NAT, dtype=np.int64)
    stamps = np.full(len(text), _NAT, dtype=np.int64)
    strings = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    if epoch.any():
        # float64 holds every epoch in milliseconds exactly; a microsecond or nanosecond count loses only
        # digits below the millisecond, which are dropped anyway.
        instants[epoch] = _epoch_to_ms(strings[epoch].astype(np.float64))
        stamps[epoch] = _floor_days(instants[epoch])
    for mask in (date_only, zoned):
        if mask.any():
            # The day a bar belongs to is the date written, whatever the time and zone that follow it.
            days = pd.to_datetime(pd.Series(strings[mask]).str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
            stamps[mask] = _datetime_ms(days)
            at = pd.to_datetime(pd.Series(strings[mask]), utc=True, format="ISO8601", errors="coerce")
            instants[mask] = _datetime_ms(at)
    stamps[instants == _NAT] = _NAT
    return stamps, instants


def _mask(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _int64(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, _NAT).to_numpy(zero_copy_only=False), dtype=np.int64)


def _datetime_ms(series: pd.Series) -> np.ndarray:
    """Epoch milliseconds of a datetime series (naive read as UTC), int64 min for NaT."""
    values = series.dt.tz_localize(None) if getattr(series.dt, "tz", None) is not None else series
    as_ms = values.to_numpy(dtype="datetime64[ms]").view(np.int64)
    return np.where(series.isna().to_numpy(), _NAT, as_ms)


def _epoch_to_ms(numbers: np.ndarray) -> np.ndarray:
    """Epoch milliseconds of epoch numbers, the unit of each told by its magnitude; int64 min where none fits."""
    result = np.full(len(numbers), _NAT, dtype=np.int64)
    for low, high, _unit, to_ms in EPOCH_UNITS_MS:
        inside = (numbers >= low) & (numbers < high)
        result[inside] = np.floor(numbers[inside] * to_ms).astype(np.int64)
    return result


def _floor_days(instants: np.ndarray) -> np.ndarray:
    return np.where(instants == _NAT, _NAT, instants // DAY_MS * DAY_MS)


def _epoch_ms(stamp: pd.Timestamp) -> int:
    return int(stamp.tz_convert("UTC").value) // 1_000_000


def _market_from_key(key: str) -> Market:
    """Market of a file key: ``BINANCE_BTCUSDT`` -> base ``BTC``, quote ``USDT`` (``""`` if unknown)."""
    symbol = split_symbol_key(key)[1]
    quote = next((q for q in KNOWN_QUOTES if symbol.endswith(q) and len(symbol) > len(q)), "")
    base = symbol[: len(symbol) - len(quote)] if quote else symbol
    return Market(symbol_key=key, ccxt_symbol=f"{base}/{quote}" if quote else symbol, base=base, quote=quote)
