"""One pyarrow schema per lakehouse table: UTC timestamps, flat named columns, a description per column.

Each field's ``description`` (field metadata, read with :func:`column_descriptions`) is the one text of that
column: the Dagster UI shows it in the asset's column schema and every parquet file written carries it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import pyarrow as pa

UTC_MS = pa.timestamp("ms", tz="UTC")
#: The field metadata key of a column's description.
DESCRIPTION_KEY = b"description"


def described(name: str, type_: pa.DataType, description: str, *, nullable: bool = True) -> pa.Field:
    """A schema field carrying its ``description`` as field metadata."""
    return pa.field(name, type_, nullable=nullable, metadata={DESCRIPTION_KEY: description.encode()})


def described_schema(columns: Sequence[tuple[str, pa.DataType, str]], *, required: Collection[str]) -> pa.Schema:
    """A schema of ``(name, type, description)`` columns, one line each; the ``required`` ones are not nullable."""
    return pa.schema([described(name, type_, doc, nullable=name not in required) for name, type_, doc in columns])


def column_descriptions(schema: pa.Schema) -> dict[str, str]:
    """Column name -> description of the fields of ``schema`` that carry one."""
    return {
        field.name: field.metadata[DESCRIPTION_KEY].decode()
        for field in schema
        if field.metadata and DESCRIPTION_KEY in field.metadata
    }


#: ``lakehouse/<EXCHANGE>_<SYMBOL>_1d.parquet``: closed daily bars, ``timestamp`` is the bar's open time.
OHLCV_SCHEMA = described_schema(
    [
        ("timestamp", UTC_MS, "Open time of the daily bar (UTC midnight); the bar covers that day."),
        ("open", pa.float64(), "First traded price of the day, in the quote currency."),
        ("high", pa.float64(), "Highest traded price of the day, in the quote currency."),
        ("low", pa.float64(), "Lowest traded price of the day, in the quote currency."),
        ("close", pa.float64(), "Last traded price of the day (closed bars only), in the quote currency."),
        ("volume", pa.float64(), "Volume traded during the day, in the base currency (shares for an equity); >= 0."),
    ],
    required={"timestamp", "open", "high", "low", "close", "volume"},
)

#: ``lakehouse/symbols.parquet/<KEY>.parquet``: slowly changing metadata, one row per version
#: (``valid_to`` null on the current row). ``quote`` is the currency prices are in (null when unknown);
#: ``asset_class`` (crypto, equity, etf, index, future, forex) and ``calendar`` (``24/7`` or an
#: ``exchange_calendars`` name such as ``XNYS``) say when the symbol trades.
SYMBOLS_SCHEMA = described_schema(
    [
        ("exchange", pa.string(), "Exchange id, upper case: the symbol key's prefix."),
        ("symbol_key", pa.string(), "`<EXCHANGE>_<BASE><QUOTE>`: the `symbols` partition key and the file names."),
        ("ccxt_symbol", pa.string(), "The pair as the source names it, e.g. BTC/USDT."),
        ("base", pa.string(), "The base currency, or the whole ticker of an equity (SPX, AAPL)."),
        (
            "quote",
            pa.string(),
            "The currency prices are in (a pair's quote, an equity's exchange currency); null when unknown.",
        ),
        ("market_type", pa.string(), "Market type as the source lists it (spot, swap, ...)."),
        ("asset_class", pa.string(), "crypto, equity, etf, index, future or forex."),
        ("calendar", pa.string(), "`24/7` or an exchange_calendars name (e.g. XNYS): the sessions the symbol trades."),
        ("sector", pa.string(), "Sector label from the source; null when it gives none."),
        ("tick_size", pa.float64(), "Smallest price increment, in the quote currency."),
        ("lot_size", pa.float64(), "Smallest quantity increment, in the base asset."),
        ("min_notional", pa.float64(), "Smallest order value, in the quote currency."),
        ("first_bar", UTC_MS, "Open time of the first stored bar (UTC)."),
        ("last_bar", UTC_MS, "Open time of the last stored bar (UTC); updated in place, not versioned."),
        ("status", pa.string(), "active or inactive at the source."),
        ("valid_from", UTC_MS, "Start of this version's validity (UTC)."),
        ("valid_to", UTC_MS, "End of this version's validity (UTC); null on the current version."),
    ],
    required={
        "exchange",
        "symbol_key",
        "ccxt_symbol",
        "base",
        "market_type",
        "asset_class",
        "calendar",
        "status",
        "valid_from",
    },
)

#: ``runs/<RUN_ID>/data/returns_matrix.parquet``: one row per date, one column per symbol of the run (the
#: layout; the symbol columns are the RUN_ID's validated candidates).
RETURNS_MATRIX_LAYOUT = described_schema(
    [
        ("date", pa.timestamp("ns", tz="UTC"), "Bar open time (UTC) the return ends at."),
        (
            "<SYMBOL_KEY>",
            pa.float64(),
            "One column per symbol of the run: simple daily return close[t] / close[t-1] - 1, as a fraction.",
        ),
    ],
    required={"date"},
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
