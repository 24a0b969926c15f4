"""A folder of per-symbol daily-bar files (``<EXCHANGE>_<SYMBOL>_1d.csv|parquet``) as a market-data source.

File names are the only thing read from the folder listing: a name is parsed and its key validated before
the file is used, and a file is only ever opened through the path the listing gave, never through a path
built from a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from alpha_assets.errors import SourceError, UnsafeKeyError
from alpha_assets.lakehouse.keys import split_symbol_key, validate_symbol_key
from alpha_assets.lakehouse.ohlcv import OHLCV_COLUMNS, VALUE_COLUMNS
from alpha_assets.sources.base import Market, Ticker

#: Quotes recognised at the end of a symbol, longest first so that ``USDT`` wins over ``USD``.
KNOWN_QUOTES: tuple[str, ...] = ("USDT", "USDC", "BUSD", "USD", "BTC", "ETH", "EUR")
_FILE_NAME = re.compile(r"^(?P<key>.+)_1d\.(?P<suffix>csv|parquet)$")
# A time of day followed by a zone: a bare date (2024-01-02) has no zone even though it ends in "-02".
_ZONE_SUFFIX = re.compile(r"[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|[+-]\d{2}(?::?\d{2})?)$")
DEFAULT_FILES_EXCHANGE = "FILES"


@dataclass(frozen=True)
class SkippedFile:
    """A file of the folder that is not used, and why (quarantine-style record)."""

    name: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"name": self.name, "reason": self.reason}


class FileSource:
    """Daily bars from a folder of ``<EXCHANGE>_<SYMBOL>_1d.csv`` or ``.parquet`` files.

    Each file has columns ``timestamp``, ``open``, ``high``, ``low``, ``close``, ``volume`` (extra columns
    are ignored). Timestamps are ISO-8601 strings with a zone (``2024-01-01T00:00:00Z``), epoch
    milliseconds, or (parquet) a timezone-aware timestamp column.

    Parameters
    ----------
    directory : Path
        The folder; it is listed again by :meth:`load_markets`, so files added later are seen.
    exchange_key : str, optional
        Keep only files of this exchange prefix (``BINANCE``). ``None``: the one prefix the files share, or
        ``"FILES"`` when the folder has no valid file.
    now : Timestamp, optional
        Clock (timezone-aware) deciding which bars are closed; ``None`` reads the UTC time at each call.

    Attributes
    ----------
    exchange_key : str
        The key prefix of every market listed.
    requests_made : int
        One per :meth:`load_markets`, :meth:`fetch_tickers` and :meth:`fetch_daily_bars` call.
    skipped : tuple of SkippedFile
        Files not used (bad name, other exchange, duplicate key, unreadable at ticker time), as of the last
        listing.

    Raises
    ------
    ValueError
        When ``directory`` is not a directory, ``now`` is naive, or ``exchange_key`` is ``None`` and the files
        carry several exchange prefixes.
    UnsafeKeyError
        When ``exchange_key`` is not in ``[A-Z0-9]``.
    """

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
        self._files: dict[str, Path] = {}
        self._cache: dict[Path, tuple[tuple[int, int], pd.DataFrame]] = {}
        files = self._list()
        exchanges = sorted({split_symbol_key(key)[0] for key in files})
        if exchange_key is None and len(exchanges) > 1:
            raise ValueError(
                f"files in {directory} carry several exchange prefixes {exchanges}; pass `exchange_key` to pick one"
            )
        self.exchange_key = exchange_key or (exchanges[0] if exchanges else DEFAULT_FILES_EXCHANGE)

    # --- MarketSource -------------------------------------------------------------------------------------
    def load_markets(self) -> list[Market]:
        """One market per valid file, sorted by key; base and quote split on :data:`KNOWN_QUOTES`."""
        self.requests_made += 1
        self._files = self._list()
        return [_market_from_key(key) for key in sorted(self._files)]

    def fetch_tickers(self) -> dict[str, Ticker]:
        """Tickers from each file's last closed bar: ``quote_volume = close * volume`` of that bar.

        A file that cannot be read gets no ticker and is added to :attr:`skipped` with the reason.
        """
        self.requests_made += 1
        if not self._files:
            self._files = self._list()
        today = self._today()
        tickers, unreadable = {}, []
        for key, path in sorted(self._files.items()):
            try:
                frame = self._read(path)
            except SourceError as err:
                unreadable.append(SkippedFile(path.name, str(err)))
                continue
            closed = frame[(frame["timestamp"] < today)].dropna(subset=["timestamp", "close", "volume"])
            if not closed.empty:
                last = closed.loc[closed["timestamp"].idxmax()]
                tickers[key] = Ticker(
                    symbol_key=key,
                    last=float(last["close"]),
                    quote_volume=float(last["close"] * last["volume"]),
                )
        self.skipped = self.skipped + tuple(s for s in unreadable if s not in self.skipped)
        return tickers

    def fetch_daily_bars(self, market: Market, *, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
        """Rows of the market's file opening in ``[since, until)`` and before today, not validated.

        Rows whose timestamp cannot be parsed are returned too (timestamp ``NaT``), so that ingestion
        quarantines them with a reason instead of dropping them unseen.

        Returns
        -------
        DataFrame of shape (n_observations, 6)
            ``timestamp`` (``datetime64[ms, UTC]``), ``open``, ``high``, ``low``, ``close``, ``volume``
            (float64, NaN where a cell was not a number), in file order.

        Raises
        ------
        SourceError
            When the market has no file, or the file is unreadable, lacks a column, or has timezone-naive
            timestamps; the message names the file and the reason.
        ValueError
            When ``since`` or ``until`` is naive.
        """
        self.requests_made += 1
        for name, bound in (("since", since), ("until", until)):
            if pd.Timestamp(bound).tzinfo is None:
                raise ValueError(f"`{name}` must be timezone-aware (UTC), got naive {pd.Timestamp(bound).isoformat()}")
        if not self._files:
            self._files = self._list()
        path = self._files.get(getattr(market, "symbol_key", None))
        if path is None:
            raise SourceError(f"no file for market {getattr(market, 'symbol_key', market)!r} in {self.directory}")
        frame = self._read(path)
        stop = min(pd.Timestamp(until), self._today())
        ts = frame["timestamp"]
        keep = ts.isna() | ((ts >= pd.Timestamp(since)) & (ts < stop))
        return frame.loc[keep].reset_index(drop=True)

    # --- helpers ------------------------------------------------------------------------------------------
    def _today(self) -> pd.Timestamp:
        return (self._now if self._now is not None else pd.Timestamp.now(tz="UTC")).floor("D")

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

    def _read(self, path: Path) -> pd.DataFrame:
        """The whole file as OHLCV columns with UTC timestamps, cached until the file changes."""
        try:
            stat = path.stat()
        except OSError as err:
            raise SourceError(f"cannot read {path.name}: {err}") from err
        signature = (stat.st_mtime_ns, stat.st_size)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
        try:
            raw = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"timestamp": str})
        except (
            OSError,
            ValueError,
        ) as err:  # parser, arrow and decoding errors are all ValueError subclasses
            raise SourceError(f"cannot read {path.name}: {type(err).__name__}: {err}") from err
        missing = [c for c in OHLCV_COLUMNS if c not in raw.columns]
        if missing:
            raise SourceError(
                f"{path.name} lacks columns {missing}; expected {list(OHLCV_COLUMNS)}, found {list(raw.columns)}"
            )
        frame = pd.DataFrame({"timestamp": _parse_timestamps(raw["timestamp"], path.name)})
        for column in VALUE_COLUMNS:
            frame[column] = pd.to_numeric(raw[column], errors="coerce").astype("float64")
        self._cache[path] = (signature, frame)
        return frame


def _parse_timestamps(column: pd.Series, file_name: str) -> pd.Series:
    """UTC timestamps from a column of zoned datetimes, epoch milliseconds or zoned ISO-8601 strings.

    Raises
    ------
    SourceError
        When the timestamps are timezone-naive: their zone would be a guess.
    """
    naive_hint = "write them with a zone (2024-01-01T00:00:00Z) or as epoch milliseconds"
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.tz_convert("UTC").astype("datetime64[ms, UTC]")
    if pd.api.types.is_datetime64_dtype(column.dtype):
        raise SourceError(f"{file_name}: timezone-naive timestamps are refused; {naive_hint}")
    if pd.api.types.is_numeric_dtype(column.dtype):
        return pd.to_datetime(column, unit="ms", utc=True, errors="coerce").astype("datetime64[ms, UTC]")
    text = column.astype("string").str.strip()
    numeric = text.str.fullmatch(r"\d+").fillna(False).astype(bool)
    if numeric.all():
        return pd.to_datetime(pd.to_numeric(text), unit="ms", utc=True, errors="coerce").astype("datetime64[ms, UTC]")
    # Only a date-time without a zone is refused; text that is no date at all becomes NaT and is quarantined.
    naive = (text.str.match(r"\d{4}-\d{2}-\d{2}") & ~text.str.contains(_ZONE_SUFFIX)).fillna(False).astype(bool)
    if naive.any():
        first = int(naive.to_numpy().argmax())
        raise SourceError(
            f"{file_name}: timezone-naive timestamp {text.iat[first]!r} on data row {first + 1} is "
            f"refused; {naive_hint}"
        )
    parsed = pd.to_datetime(text.where(~numeric), utc=True, format="ISO8601", errors="coerce")
    epoch = pd.to_datetime(pd.to_numeric(text.where(numeric)), unit="ms", utc=True, errors="coerce")
    return parsed.fillna(epoch).astype("datetime64[ms, UTC]")


def _market_from_key(key: str) -> Market:
    """Market of a file key: ``BINANCE_BTCUSDT`` -> base ``BTC``, quote ``USDT`` (``""`` if unknown)."""
    symbol = split_symbol_key(key)[1]
    quote = next((q for q in KNOWN_QUOTES if symbol.endswith(q) and len(symbol) > len(q)), "")
    base = symbol[: len(symbol) - len(quote)] if quote else symbol
    return Market(symbol_key=key, ccxt_symbol=f"{base}/{quote}" if quote else symbol, base=base, quote=quote)
