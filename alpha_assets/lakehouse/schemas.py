"""One pyarrow schema per lakehouse table: UTC timestamps, flat named columns."""

from __future__ import annotations

import pyarrow as pa

UTC_MS = pa.timestamp("ms", tz="UTC")

#: ``lakehouse/<EXCHANGE>_<SYMBOL>_1d.parquet``: closed daily bars, ``timestamp`` is the bar's open time.
OHLCV_SCHEMA = pa.schema(
    [
        pa.field("timestamp", UTC_MS, nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.float64(), nullable=False),
    ]
)

#: ``lakehouse/symbols.parquet/<KEY>.parquet``: slowly changing metadata, one row per version
#: (``valid_to`` null on the current row). ``quote`` is the currency prices are in (null when unknown);
#: ``asset_class`` (crypto, equity, etf, index, future, forex) and ``calendar`` (``24/7`` or an
#: ``exchange_calendars`` name such as ``XNYS``) say when the symbol trades.
SYMBOLS_SCHEMA = pa.schema(
    [
        pa.field("exchange", pa.string(), nullable=False),
        pa.field("symbol_key", pa.string(), nullable=False),
        pa.field("ccxt_symbol", pa.string(), nullable=False),
        pa.field("base", pa.string(), nullable=False),
        pa.field("quote", pa.string()),
        pa.field("market_type", pa.string(), nullable=False),
        pa.field("asset_class", pa.string(), nullable=False),
        pa.field("calendar", pa.string(), nullable=False),
        pa.field("sector", pa.string()),
        pa.field("tick_size", pa.float64()),
        pa.field("lot_size", pa.float64()),
        pa.field("min_notional", pa.float64()),
        pa.field("first_bar", UTC_MS),
        pa.field("last_bar", UTC_MS),
        pa.field("status", pa.string(), nullable=False),
        pa.field("valid_from", UTC_MS, nullable=False),
        pa.field("valid_to", UTC_MS),
    ]
)

#: The columns of ``SYMBOLS_SCHEMA`` updated in place on the current version: ``last_bar`` moves every day,
#: and a version per day would bury the real changes.
SYMBOL_IN_PLACE_COLUMNS = ("first_bar", "last_bar")
#: The columns of ``SYMBOLS_SCHEMA`` whose change opens a new version (validity and in-place columns
#: excluded).
SYMBOL_TRACKED_COLUMNS = tuple(
    name for name in SYMBOLS_SCHEMA.names if name not in {"valid_from", "valid_to", *SYMBOL_IN_PLACE_COLUMNS}
)
#: Values of the columns added after the first release, for files written before them (every symbol was
#: crypto then).
SYMBOL_COLUMN_DEFAULTS = {"asset_class": "crypto", "calendar": "24/7"}
