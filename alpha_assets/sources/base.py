"""The interface every market-data source implements, and the records it returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

#: Market types a source can list: spot pairs and linear perpetual swaps (settled in the quote currency).
MARKET_TYPES = ("spot", "swap")
#: Key of ``DataFrame.attrs`` where :meth:`MarketSource.fetch_daily_bars` says, in words, that the source served
#: only its most recent bars although older ones were asked for (a history cap of the exchange).
HISTORY_LIMIT_ATTR = "history_limit"


@dataclass(frozen=True)
class Market:
    """One tradable pair (or listed instrument) as the source lists it.

    ``symbol_key`` is the lakehouse key (``BINANCE_BTCUSDT``, ``BYBIT_BTCUSDT_PERP`` for a linear perpetual
    swap); ``ccxt_symbol`` the source's own name (``BTC/USDT``, ``BTC/USDT:USDT``); ``market_type`` one of
    :data:`MARKET_TYPES`. ``quote`` is the currency prices are in (the pair's quote; an equity's exchange
    currency, ``""`` when unknown). ``asset_class`` and ``calendar`` (``24/7`` or an ``exchange_calendars``
    name) say when it trades: a source lists crypto pairs on ``24/7``, and
    :func:`~alpha_assets.sources.markets.classify_markets` sets them from the exchange otherwise. Sizes are in
    the pair's units; ``None`` where the source does not say.
    """

    symbol_key: str
    ccxt_symbol: str
    base: str
    quote: str
    market_type: str = "spot"
    active: bool = True
    sector: str | None = None
    tick_size: float | None = None
    lot_size: float | None = None
    min_notional: float | None = None
    asset_class: str = "crypto"
    calendar: str = "24/7"


@dataclass(frozen=True)
class Ticker:
    """The last 24 hours of one pair: ``quote_volume`` is the traded value in the quote currency."""

    symbol_key: str
    last: float
    quote_volume: float


@runtime_checkable
class MarketSource(Protocol):
    """What DataOps needs from a source of daily bars.

    Attributes
    ----------
    exchange_key : str
        The key prefix of every symbol this source lists (``BINANCE``, ``SIM``).
    requests_made : int
        Requests sent to the remote end so far (HTTP calls, or their simulated equivalent).
    """

    exchange_key: str
    requests_made: int

    def load_markets(self) -> list[Market]:
        """Every market the source lists, active or not."""
        ...

    def fetch_tickers(self) -> dict[str, Ticker]:
        """24 h tickers by symbol key."""
        ...

    def fetch_daily_bars(self, market: Market, *, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
        """Daily bars opening in ``[since, until)``, as the source sent them (not validated).

        Returns a frame with columns ``timestamp`` (UTC), ``open``, ``high``, ``low``, ``close``, ``volume``.
        The still-forming bar (opening at or after the start of the current UTC day) is never included.

        Raises
        ------
        SourceError
            When the source keeps failing after its retries, naming the market and the cause.
        """
        ...


def listed_exchange_keys(source: MarketSource) -> frozenset[str]:
    """The key prefixes of the symbols ``source`` lists.

    A source serving several exchanges (the files source: one folder, each file's prefix its exchange) says
    so with an ``exchange_keys`` attribute; every other source lists its ``exchange_key`` alone.
    """
    return frozenset(getattr(source, "exchange_keys", (source.exchange_key,)))


def is_fork_safe(source: MarketSource) -> bool:
    """Whether forks of this process may call ``source``, each on its own symbols.

    A source that reads this machine (the files source, the simulated exchange) says so with ``fork_safe =
    True``. An exchange over the network never is: its client's connections and its pacing of requests to the
    exchange's rate limit must stay one, in the process that made them.
    """
    return getattr(source, "fork_safe", False) is True
