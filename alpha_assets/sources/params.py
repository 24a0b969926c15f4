"""Parameter classes of the DataOps cycle (source, discovery, markets and ingestion), resolved from a manifest.

Each field is declared once with :func:`~alpha_assets.parameters.param` (default, documentation, bounds);
:func:`~alpha_assets.parameters.parameters` validates it from Python and from the manifest alike.
"""

from __future__ import annotations

import re
from enum import StrEnum

from alpha_assets.lakehouse.calendars import AssetClass, ExchangeMarket, validate_calendar_name
from alpha_assets.lakehouse.keys import SYMBOL_KEY_PATTERN
from alpha_assets.parameters import param, parameters

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


@parameters
class DiscoveryParams:
    """Filters that turn an exchange's markets and tickers into the candidate list of a RUN_ID."""

    quote_currencies: tuple[str, ...] = param(("USDT",))
    """Quote currencies kept (exact, upper case), in order of preference: with one_listing_per_base, an asset
    listed against several of them keeps the first one's market."""
    one_listing_per_base: bool = param(True)
    """Keep one market per base asset (BTC/USD or BTC/USDT, not both): the one whose quote comes first in
    quote_currencies; the others are excluded naming the listing kept."""
    min_traded_value_24h: float = param(1e6, ge=0.0)
    """Minimum 24 h traded value, in the quote currency."""
    top_n: int = param(50, ge=1)
    """Candidates kept, by 24 h traded value descending (ties by symbol key)."""
    exclude_bases: tuple[str, ...] = param(STABLECOIN_BASES)
    """Bases excluded as stablecoins (fiat-pegged tokens)."""
    exclude_leveraged: bool = param(True)
    """Exclude leveraged tokens: a base that is another listed base followed by UP, DOWN, BULL, BEAR or digits
    and L/S (BTCUP, ETH3L)."""
    include_inactive: bool = param(False)
    """Keep markets the source marks inactive (delisted, halted)."""
    asset_classes: tuple[AssetClass, ...] = param(tuple(AssetClass))
    """Asset classes kept (crypto, equity, etf, index, future, forex); a class comes from the symbol's exchange
    (manifest section markets)."""


@parameters
class MarketParams:
    """What each exchange key prefix trades (manifest section ``markets``), over the built-in table.

    The built-in table (:data:`~alpha_assets.lakehouse.calendars.KNOWN_EXCHANGES`) knows ``NYSE``/``XNYS``,
    ``NASDAQ``/``XNAS``, ``ARCA``, ``CME``, ``LSE``, ``XETRA``, ``FX`` and a few more; any other prefix is a
    crypto exchange trading 24/7.

    Raises
    ------
    ParameterError
        When an exchange key is not 1 to 32 characters in ``[A-Z0-9]``, a symbol key is not a valid key, or an
        entry names an unknown calendar.
    """

    exchanges: dict[str, ExchangeMarket] = param(default_factory=dict)
    """Exchange key prefix -> {asset_class, calendar (24/7 or an exchange_calendars name such as XNYS), currency
    (of symbols that name none, e.g. USD)}; adds to and overrides the built-in table."""

    symbols: dict[str, ExchangeMarket] = param(default_factory=dict)
    """Symbol key -> {asset_class, calendar, currency} for one symbol, over its exchange's entry (a folder of
    your own files under one prefix holding crypto pairs and stocks)."""

    def __post_init__(self) -> None:
        for section, pattern in (("exchanges", r"[A-Z0-9]{1,32}"), ("symbols", SYMBOL_KEY_PATTERN.pattern)):
            for key, market in getattr(self, section).items():
                if not re.fullmatch(pattern, key):
                    raise ValueError(f"{section} key {key!r} does not match {pattern}")
                try:
                    validate_calendar_name(market.calendar)
                except ValueError as err:
                    raise ValueError(f"{section}.{key}.calendar: {err}") from err


@parameters
class IngestionParams:
    """How much history the first ingest fetches and how hard gap repair tries, per symbol."""

    history_days: int = param(1095, ge=1, le=36500)
    """Days of history the Alpha cycle uses (first ingest fetches these plus warmup_days)."""
    warmup_days: int = param(300, ge=0, le=36500)
    """Extra days fetched before the history for indicator warm-up (~280 bars needed)."""
    max_gaps_per_symbol: int = param(10, ge=0)
    """Gaps re-fetched per symbol and run, most recent first; 0 disables repair."""
    max_gap_repair_depth_days: int = param(3650, ge=1)
    """Gaps starting more than this many days before today are not re-fetched."""
    repair_time_budget_s: float = param(10.0, ge=0.0)
    """Wall time per symbol and run after which no further gap is re-fetched, in seconds."""
    accept_short_history: bool = param(True)
    """Validate a symbol whose stored bars start after the requested start (history_days + warmup_days back): a
    recent listing, or an exchange that keeps less history (kraken: 720 daily bars). Either way the audit labels
    it SHORT_HISTORY with the days missing and why."""
    max_repair_attempts: int = param(3, ge=0)
    """Re-fetches of one gap (at most one per UTC day) before it is reported unrepairable and no longer tried."""


class MarketType(StrEnum):
    """Which markets the ccxt source lists."""

    SPOT = "spot"
    #: Linear perpetual swaps, settled in the quote currency (``BTC/USDT:USDT``); keys end in ``_PERP``.
    SWAP = "swap"


@parameters
class SourceParams:
    """How the ``ccxt`` source reaches its exchange (manifest section ``source``).

    The command line's ``--base-url`` (and a Dagster run config of the ``market_source`` resource) take
    precedence over ``base_url``, ``timeout_ms`` and ``max_retries`` here.
    """

    market_type: MarketType = param(MarketType.SPOT)
    """spot pairs, or swap: linear perpetual swaps (keys end in _PERP)."""
    base_url: str | None = param(None)
    """scheme://host[:port] replacing the exchange's API hosts, paths kept (a proxy, or a test server such as
    http://127.0.0.1:8000); null: the exchange's real endpoints."""
    page_limit: int | None = param(None, ge=1)
    """Daily bars asked per OHLCV request; null: the exchange's cap as ccxt publishes it (binance 1000, kraken
    720, okx 300, coinbase 300); a larger value is lowered to the cap."""
    timeout_ms: int = param(10_000, ge=1)
    """Per-request timeout in milliseconds; a request exceeding it is retried."""
    max_retries: int = param(5, ge=0)
    """Retries of a call after a transient error (timeout, 429, 5xx, HTML or truncated answer)."""
    retry_budget_s: float = param(60.0, ge=0.0)
    """Seconds one call may spend on its tries and backoff waits before it fails."""
    rate_limit_ms: int | None = param(None, ge=0)
    """Minimum spacing of requests in milliseconds; null: the exchange's own rate limit in ccxt."""
