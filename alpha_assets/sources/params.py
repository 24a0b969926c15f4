"""Parameter dataclasses of the DataOps cycle (source, discovery and ingestion), resolved from a manifest.

Every field carries ``metadata={"doc": ..., "min": ..., "max": ...}`` (bounds inclusive, ``None`` meaning
unbounded) so that the manifest loader can refuse unknown keys, wrong types and out-of-range values with one
message shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

from alpha_assets.lakehouse.calendars import AssetClass, ExchangeMarket, validate_calendar_name
from alpha_assets.lakehouse.keys import SYMBOL_KEY_PATTERN

#: Bases that are pegged to a fiat currency: pairs of them carry no market risk worth selecting.
STABLECOIN_BASES: tuple[str, ...] = (
    "USDT",
    "USDC",
    "FDUSD",
    "TUSD",
    "DAI",
    "BUSD",
    "USDP",
    "USDE",
    "PYUSD",
    "USDD",
    "GUSD",
    "FRAX",
    "LUSD",
    "EUR",
    "EURI",
    "EURC",
    "AEUR",
    "GBP",
    "TRY",
    "BRL",
)


@dataclass(frozen=True)
class DiscoveryParams:
    """Filters that turn an exchange's markets and tickers into the candidate list of a RUN_ID."""

    quote_currencies: tuple[str, ...] = field(
        default=("USDT",),
        metadata={
            "doc": "Quote currencies kept (exact, upper case), in order of preference: with "
            "one_listing_per_base, an asset listed against several of them keeps the first one's market.",
            "min": None,
            "max": None,
        },
    )
    one_listing_per_base: bool = field(
        default=True,
        metadata={
            "doc": "Keep one market per base asset (BTC/USD or BTC/USDT, not both): the one whose quote comes "
            "first in quote_currencies; the others are excluded naming the listing kept.",
            "min": None,
            "max": None,
        },
    )
    min_traded_value_24h: float = field(
        default=1e6,
        metadata={"doc": "Minimum 24 h traded value, in the quote currency.", "min": 0.0, "max": None},
    )
    top_n: int = field(
        default=50,
        metadata={
            "doc": "Candidates kept, by 24 h traded value descending (ties by symbol key).",
            "min": 1,
            "max": None,
        },
    )
    exclude_bases: tuple[str, ...] = field(
        default=STABLECOIN_BASES,
        metadata={"doc": "Bases excluded as stablecoins (fiat-pegged tokens).", "min": None, "max": None},
    )
    exclude_leveraged: bool = field(
        default=True,
        metadata={
            "doc": "Exclude leveraged tokens: a base that is another listed base followed by UP, DOWN, "
            "BULL, BEAR or digits and L/S (BTCUP, ETH3L).",
            "min": None,
            "max": None,
        },
    )
    include_inactive: bool = field(
        default=False,
        metadata={
            "doc": "Keep markets the source marks inactive (delisted, halted).",
            "min": None,
            "max": None,
        },
    )
    asset_classes: tuple[AssetClass, ...] = field(
        default=tuple(AssetClass),
        metadata={
            "doc": "Asset classes kept (crypto, equity, etf, index, future, forex); a class comes from the "
            "symbol's exchange (manifest section markets).",
            "min": None,
            "max": None,
        },
    )


@dataclass(frozen=True)
class MarketParams:
    """What each exchange key prefix trades (manifest section ``markets``), over the built-in table.

    The built-in table (:data:`~alpha_assets.lakehouse.calendars.KNOWN_EXCHANGES`) knows ``NYSE``/``XNYS``,
    ``NASDAQ``/``XNAS``, ``ARCA``, ``CME``, ``LSE``, ``XETRA``, ``FX`` and a few more; any other prefix is a
    crypto exchange trading 24/7.

    Raises
    ------
    ValueError
        When an exchange key is not 1 to 32 characters in ``[A-Z0-9]``, a symbol key is not a valid key, or an
        entry names an unknown calendar.
    """

    exchanges: dict[str, ExchangeMarket] = field(
        default_factory=dict,
        metadata={
            "doc": "Exchange key prefix -> {asset_class, calendar (24/7 or an exchange_calendars name such as "
            "XNYS), currency (of symbols that name none, e.g. USD)}; adds to and overrides the built-in table.",
            "min": None,
            "max": None,
        },
    )

    symbols: dict[str, ExchangeMarket] = field(
        default_factory=dict,
        metadata={
            "doc": "Symbol key -> {asset_class, calendar, currency} for one symbol, over its exchange's entry "
            "(a folder of your own files under one prefix holding crypto pairs and stocks).",
            "min": None,
            "max": None,
        },
    )

    def __post_init__(self) -> None:
        for section, pattern in (("exchanges", r"[A-Z0-9]{1,32}"), ("symbols", SYMBOL_KEY_PATTERN.pattern)):
            for key, market in getattr(self, section).items():
                if not re.fullmatch(pattern, key):
                    raise ValueError(f"`markets.{section}` key {key!r} does not match {pattern}")
                try:
                    validate_calendar_name(market.calendar)
                except ValueError as err:
                    raise ValueError(f"`markets.{section}.{key}.calendar`: {err}") from err


@dataclass(frozen=True)
class IngestionParams:
    """How much history the first ingest fetches and how hard gap repair tries, per symbol."""

    history_days: int = field(
        default=1095,
        metadata={
            "doc": "Days of history the Alpha cycle uses (first ingest fetches these plus warmup_days).",
            "min": 1,
            "max": 36500,
        },
    )
    warmup_days: int = field(
        default=300,
        metadata={
            "doc": "Extra days fetched before the history for indicator warm-up (~280 bars needed).",
            "min": 0,
            "max": 36500,
        },
    )
    max_gaps_per_symbol: int = field(
        default=10,
        metadata={
            "doc": "Gaps re-fetched per symbol and run, most recent first; 0 disables repair.",
            "min": 0,
            "max": None,
        },
    )
    max_gap_repair_depth_days: int = field(
        default=3650,
        metadata={
            "doc": "Gaps starting more than this many days before today are not re-fetched.",
            "min": 1,
            "max": None,
        },
    )
    repair_time_budget_s: float = field(
        default=10.0,
        metadata={
            "doc": "Wall time per symbol and run after which no further gap is re-fetched, in seconds.",
            "min": 0.0,
            "max": None,
        },
    )
    accept_short_history: bool = field(
        default=True,
        metadata={
            "doc": "Validate a symbol whose stored bars start after the requested start (history_days + "
            "warmup_days back): a recent listing, or an exchange that keeps less history (kraken: 720 daily "
            "bars). Either way the audit labels it SHORT_HISTORY with the days missing and why.",
            "min": None,
            "max": None,
        },
    )
    max_repair_attempts: int = field(
        default=3,
        metadata={
            "doc": "Re-fetches of one gap (at most one per UTC day) before it is reported unrepairable "
            "and no longer tried.",
            "min": 0,
            "max": None,
        },
    )


class MarketType(StrEnum):
    """Which markets the ccxt source lists."""

    SPOT = "spot"
    #: Linear perpetual swaps, settled in the quote currency (``BTC/USDT:USDT``); keys end in ``_PERP``.
    SWAP = "swap"


@dataclass(frozen=True)
class SourceParams:
    """How the ``ccxt`` source reaches its exchange (manifest section ``source``).

    The command line's ``--base-url`` (and a Dagster run config of the ``market_source`` resource) take
    precedence over ``base_url``, ``timeout_ms`` and ``max_retries`` here.
    """

    market_type: MarketType = field(
        default=MarketType.SPOT,
        metadata={"doc": "spot pairs, or swap: linear perpetual swaps (keys end in _PERP).", "min": None, "max": None},
    )
    base_url: str | None = field(
        default=None,
        metadata={
            "doc": "scheme://host[:port] replacing the exchange's API hosts, paths kept (a proxy, or a test "
            "server such as http://127.0.0.1:8000); null: the exchange's real endpoints.",
            "min": None,
            "max": None,
        },
    )
    page_limit: int | None = field(
        default=None,
        metadata={
            "doc": "Daily bars asked per OHLCV request; null: the exchange's cap as ccxt publishes it "
            "(binance 1000, kraken 720, okx 300, coinbase 300); a larger value is lowered to the cap.",
            "min": 1,
            "max": None,
        },
    )
    timeout_ms: int = field(
        default=10_000,
        metadata={
            "doc": "Per-request timeout in milliseconds; a request exceeding it is retried.",
            "min": 1,
            "max": None,
        },
    )
    max_retries: int = field(
        default=5,
        metadata={
            "doc": "Retries of a call after a transient error (timeout, 429, 5xx, HTML or truncated answer).",
            "min": 0,
            "max": None,
        },
    )
    retry_budget_s: float = field(
        default=60.0,
        metadata={
            "doc": "Seconds one call may spend on its tries and backoff waits before it fails.",
            "min": 0.0,
            "max": None,
        },
    )
    rate_limit_ms: int | None = field(
        default=None,
        metadata={
            "doc": "Minimum spacing of requests in milliseconds; null: the exchange's own rate limit in ccxt.",
            "min": 0,
            "max": None,
        },
    )
