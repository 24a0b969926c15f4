"""The ``ccxt`` source: public spot markets, 24 h tickers and paginated daily bars of one exchange.

This is the only module of the project that imports ccxt. Every HTTP call goes through one retry wrapper:
ccxt network errors (timeouts, HTTP 429 / DDoS protection, 5xx / exchange not available) are retried with
capped exponential backoff; anything else, and the last network error once the retries are spent, becomes a
:class:`~alpha_assets.errors.SourceError` naming the exchange, the market and the cause.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt
import numpy as np
import pandas as pd

from alpha_assets.errors import SourceError, UnsafeKeyError
from alpha_assets.lakehouse.keys import make_symbol_key, normalize_exchange_id
from alpha_assets.lakehouse.ohlcv import bars_from_exchange_rows, empty_bars
from alpha_assets.sources.base import Market, Ticker
from alpha_assets.validation import check_utc_timestamp, epoch_ms

DEFAULT_EXCHANGE_ID = "binance"
DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_BASE_S = 0.5
DEFAULT_BACKOFF_CAP_S = 8.0
DEFAULT_JITTER = 0.1
#: Binance serves at most 1,000 daily bars per call; other exchanges cap lower, which only adds pages.
DEFAULT_PAGE_LIMIT = 1000
TIMEFRAME = "1d"

_T = TypeVar("_T")


class CcxtSource:
    """Public spot market data of one ccxt exchange, with retries, pagination and the forming bar dropped.

    Implements :class:`~alpha_assets.sources.base.MarketSource`.

    Parameters
    ----------
    exchange_id : str
        A ccxt exchange id (``ccxt.exchanges``), e.g. ``"binance"``.
    base_url : str, optional
        ``scheme://host[:port][/prefix]`` that replaces the scheme and host of every URL in the exchange's
        ``urls['api']`` (nested entries included), keeping each URL's path: with ``http://127.0.0.1:8000``,
        binance's ``https://api.binance.com/api/v3`` becomes ``http://127.0.0.1:8000/api/v3``. Used to point
        the client at a local server; ``None`` keeps the exchange's real endpoints.
    timeout_ms : int
        Per-request timeout in milliseconds (connect and read); a request exceeding it is retried.
    max_retries : int
        Retries after the first try on ccxt network errors; ``1 + max_retries`` tries at most per call.
    backoff_base_s, backoff_cap_s : float
        The wait before retry ``k`` (``k = 0, 1, ...``) is
        ``min(backoff_cap_s, backoff_base_s * 2**k * (1 + u))`` seconds, ``u`` uniform in ``[0, jitter)``.
    jitter : float
        Relative jitter of the backoff, in ``[0, 1]``; ``0`` gives exact powers of two.
    seed : int
        Seed of the jitter draws, so a run's waits are reproducible.
    page_limit : int
        Bars asked per OHLCV call (``limit``), >= 1.
    rate_limit_ms : int, optional
        Minimum spacing of requests for ccxt's rate limiter (always on); ``None`` keeps the exchange's own.
    now : callable, optional
        Returns the current time as a tz-aware ``Timestamp``; the bar opening at or after the start of its UTC
        day is still forming and never returned. Defaults to the system clock.
    sleep : callable, optional
        Called with the backoff wait in seconds; defaults to :func:`time.sleep`. Tests pass a recorder.
    api_key, secret : str, optional
        Credentials, only ever taken from these parameters and handed to ccxt; never stored on this object,
        logged or shown by ``repr``. The public endpoints used here do not need them.

    Attributes
    ----------
    exchange_key : str
        Key prefix of the symbols (``BINANCE``).
    requests_made : int
        HTTP requests ccxt actually sent through this source, counted in a hook on ccxt's ``fetch``: every
        attempt counts, failed and retried ones included; requests ccxt would answer from its cache do not.
    skipped_markets : tuple of (str, str)
        ``(ccxt symbol, reason)`` of spot markets the last :meth:`load_markets` left out (unsafe or
        colliding key).

    Raises
    ------
    ValueError
        When ``exchange_id`` is not a ccxt exchange, ``base_url`` is not an http(s) URL, or a numeric
        parameter is out of range.
    """

    def __init__(
        self,
        exchange_id: str = DEFAULT_EXCHANGE_ID,
        *,
        base_url: str | None = None,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base_s: float = DEFAULT_BACKOFF_BASE_S,
        backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S,
        jitter: float = DEFAULT_JITTER,
        seed: int = 0,
        page_limit: int = DEFAULT_PAGE_LIMIT,
        rate_limit_ms: int | None = None,
        now: Callable[[], pd.Timestamp] | None = None,
        sleep: Callable[[float], None] | None = None,
        api_key: str | None = None,
        secret: str | None = None,
    ) -> None:
        if exchange_id not in ccxt.exchanges:
            raise ValueError(f"`exchange_id` must be a ccxt exchange id (see ccxt.exchanges), got {exchange_id!r}")
        _check_int("timeout_ms", timeout_ms, minimum=1)
        _check_int("max_retries", max_retries, minimum=0)
        _check_int("page_limit", page_limit, minimum=1)
        if rate_limit_ms is not None:
            _check_int("rate_limit_ms", rate_limit_ms, minimum=0)
        if not backoff_base_s >= 0:
            raise ValueError(f"`backoff_base_s` must be >= 0 seconds, got {backoff_base_s!r}")
        if not backoff_cap_s >= backoff_base_s:
            raise ValueError(f"`backoff_cap_s` must be >= `backoff_base_s` ({backoff_base_s}), got {backoff_cap_s!r}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"`jitter` must be in [0, 1], got {jitter!r}")
        self.exchange_id = exchange_id
        self.exchange_key = normalize_exchange_id(exchange_id)
        self.base_url = base_url
        self.timeout_ms = timeout_ms
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.jitter = jitter
        self.page_limit = page_limit
        self.requests_made = 0
        self.skipped_markets: tuple[tuple[str, str], ...] = ()
        self._now = now if now is not None else _utc_now
        self._sleep = sleep if sleep is not None else time.sleep
        self._rng = random.Random(seed)
        self._has_credentials = api_key is not None or secret is not None
        self._markets_by_symbol: dict[str, Market] | None = None
        self._exchange = self._make_exchange(rate_limit_ms, api_key, secret)

    def __repr__(self) -> str:
        return (
            f"CcxtSource(exchange_id={self.exchange_id!r}, base_url={self.base_url!r}, "
            f"timeout_ms={self.timeout_ms}, max_retries={self.max_retries}, page_limit={self.page_limit}, "
            f"credentials={'set' if self._has_credentials else 'none'})"
        )

    # ------------------------------------------------------------------------------------ public API
    def load_markets(self) -> list[Market]:
        """Every spot market the exchange lists, active or not, reloaded from the exchange on each call.

        Returns
        -------
        list of Market
            One per spot market, in the exchange's order, with
            ``symbol_key = make_symbol_key(exchange_id, base, quote)``, ``tick_size`` / ``lot_size`` from the
            market's price / amount precision (as step sizes whatever the exchange's precision mode; ``None``
            for significant-digit precision or when absent) and ``min_notional`` from ``limits.cost.min``.
            A market whose key would be unsafe, or would collide with an earlier market's key, is left out
            and listed in ``skipped_markets``.

        Raises
        ------
        SourceError
            When the exchange keeps failing after the retries, or answers something unusable.
        """
        raw = self._call("load_markets", None, self._exchange.load_markets, True)
        precision_to_size = _precision_converter(self._exchange.precisionMode)
        markets: dict[str, Market] = {}
        skipped: list[tuple[str, str]] = []
        for info in raw.values():
            if not info.get("spot"):
                continue
            symbol = str(info.get("symbol"))
            try:
                key = make_symbol_key(self.exchange_id, str(info.get("base")), str(info.get("quote")))
            except UnsafeKeyError as err:
                skipped.append((symbol, str(err)))
                continue
            if key in markets:
                skipped.append((symbol, f"symbol key {key} already taken by {markets[key].ccxt_symbol}"))
                continue
            precision = info.get("precision") or {}
            limits = info.get("limits") or {}
            markets[key] = Market(
                symbol_key=key,
                ccxt_symbol=symbol,
                base=str(info["base"]),
                quote=str(info["quote"]),
                market_type="spot",
                active=info.get("active") is not False,  # ccxt says None when the exchange does not tell
                tick_size=precision_to_size(precision.get("price")),
                lot_size=precision_to_size(precision.get("amount")),
                min_notional=_positive_or_none((limits.get("cost") or {}).get("min")),
            )
        self.skipped_markets = tuple(skipped)
        self._markets_by_symbol = {m.ccxt_symbol: m for m in markets.values()}
        return list(markets.values())

    def fetch_tickers(self) -> dict[str, Ticker]:
        """24 h tickers of the spot markets, by symbol key.

        Returns
        -------
        dict of str to Ticker
            ``quote_volume`` is ccxt's ``quoteVolume`` (traded value in the quote currency), or
            ``baseVolume * last`` when the exchange does not send it, or NaN when neither is known. Tickers
            without a last price, or of markets :meth:`load_markets` left out, are not included.

        Raises
        ------
        SourceError
            When the exchange keeps failing after the retries, or answers something unusable.
        """
        if self._markets_by_symbol is None:
            self.load_markets()
        markets_by_symbol = self._markets_by_symbol or {}
        raw = self._call("fetch_tickers", None, self._exchange.fetch_tickers)
        tickers: dict[str, Ticker] = {}
        for symbol, info in raw.items():
            market = markets_by_symbol.get(symbol)
            last = _float_or_nan(info.get("last", info.get("close")))
            if market is None or not np.isfinite(last):
                continue
            quote_volume = _float_or_nan(info.get("quoteVolume"))
            if not np.isfinite(quote_volume):
                quote_volume = _float_or_nan(info.get("baseVolume")) * last
            tickers[market.symbol_key] = Ticker(symbol_key=market.symbol_key, last=last, quote_volume=quote_volume)
        return tickers

    def fetch_daily_bars(self, market: Market, *, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
        """Fetch the closed daily bars of ``market`` opening in ``[since, until)``, as the exchange sent them.

        Pages through ``fetch_ohlcv(symbol, '1d', since=cursor, limit=page_limit)``, moving the cursor past
        the newest bar of each page, until ``until`` (or the start of the current UTC day, whichever is
        earlier) is reached, or a page is empty, shorter than ``page_limit``, or brings nothing newer than
        the last one (an exchange that ignores ``since`` cannot loop forever). No request is sent when the
        window is empty.

        Parameters
        ----------
        market : Market
            A market of this source (``market.ccxt_symbol`` is what is requested).
        since, until : Timestamp
            Tz-aware bounds of the bar open times, ``since`` included, ``until`` excluded.

        Returns
        -------
        DataFrame of shape (n_observations, 6)
            :func:`~alpha_assets.lakehouse.ohlcv.bars_from_exchange_rows` of the rows: ``timestamp``
            (tz-aware UTC, bar open), ``open``, ``high``, ``low``, ``close``, ``volume`` (float64,
            quote-currency prices, base-currency volume). Not validated: nulls, non-positive prices,
            high < low, duplicates and disorder come through as sent (NaN for nulls) for the ingestion to
            quarantine. Rows outside the window, or still forming, are dropped; rows with a missing
            timestamp are kept (ccxt itself already drops those when ``since`` is given).

        Raises
        ------
        TypeError
            When ``market`` is not a Market or ``since`` / ``until`` are not timestamps (``datetime``).
        ValueError
            When ``since`` or ``until`` is timezone-naive.
        SourceError
            When the exchange keeps failing after the retries, or answers something unusable.
        """
        if not isinstance(market, Market):
            raise TypeError(f"`market` must be a Market, got {type(market).__name__}")
        start = check_utc_timestamp(since, "since")
        end = min(check_utc_timestamp(until, "until"), check_utc_timestamp(self._now(), "now()").floor("D"))
        if start >= end:
            return empty_bars()
        start_ms, end_ms = epoch_ms(start), epoch_ms(end)
        pages: list[pd.DataFrame] = []
        cursor = start_ms
        while cursor < end_ms:
            rows = self._call(
                "fetch_ohlcv",
                market.ccxt_symbol,
                self._exchange.fetch_ohlcv,
                market.ccxt_symbol,
                TIMEFRAME,
                cursor,
                self.page_limit,
            )
            page = bars_from_exchange_rows(rows)
            newest = page["timestamp"].max()
            if page.empty or pd.isna(newest) or epoch_ms(newest) < cursor:
                break
            pages.append(page)
            cursor = epoch_ms(newest) + 1
            if len(rows) < self.page_limit:
                break
        if not pages:
            return empty_bars()
        bars = pd.concat(pages, ignore_index=True)
        stamps = bars["timestamp"]
        keep = stamps.isna() | ((stamps >= start) & (stamps < end))
        return bars.loc[keep].reset_index(drop=True)

    # ------------------------------------------------------------------------------------- internals
    def _make_exchange(self, rate_limit_ms: int | None, api_key: str | None, secret: str | None) -> ccxt.Exchange:
        config: dict[str, Any] = {
            "enableRateLimit": True,
            "timeout": self.timeout_ms,
            "options": {
                "defaultType": "spot",
                # Keeps binance's load_markets to the spot exchangeInfo call (no futures / options endpoints).
                "fetchMarkets": {"types": ["spot"]},
                "fetchMargins": False,
                # Binance's currency list is a private endpoint; the public data used here does not need it.
                "fetchCurrencies": False,
            },
        }
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        if api_key is not None:
            config["apiKey"] = api_key
        if secret is not None:
            config["secret"] = secret
        exchange = getattr(ccxt, self.exchange_id)(config)
        if self.base_url is not None:
            exchange.urls["api"] = _rebase_urls(exchange.urls["api"], self.base_url)
        ccxt_fetch = exchange.fetch

        def counting_fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
            self.requests_made += 1
            response = ccxt_fetch(url, method, headers, body)
            if isinstance(response, str | bytes):
                # ccxt hands back the raw text when a body does not parse as JSON; every endpoint used here
                # answers JSON, so this is a truncated or foreign (proxy, HTML) answer.
                excerpt = response[:80] if isinstance(response, str) else response[:80].decode("utf-8", "replace")
                raise ccxt.BadResponse(f"{self.exchange_id} {method} {url}: body is not valid JSON: {excerpt!r}")
            return response

        # An instance attribute shadows the method, and ccxt calls self.fetch for every request.
        exchange.fetch = counting_fetch
        return exchange

    def _call(self, operation: str, symbol: str | None, fn: Callable[..., _T], *args: object) -> _T:
        """Run one ccxt call, retrying network errors with capped exponential backoff."""
        where = f"{self.exchange_id} {operation}" + (f" of {symbol}" if symbol is not None else "")
        tries = 1 + self.max_retries
        for attempt in range(tries):
            try:
                return fn(*args)
            except ccxt.NetworkError as err:
                if attempt + 1 == tries:
                    raise SourceError(
                        f"{where} failed after {tries} tries; last error {type(err).__name__}: {err}"
                    ) from err
                self._sleep(self._backoff(attempt))
            except ccxt.BaseError as err:
                raise SourceError(f"{where} failed: {type(err).__name__}: {err}") from err
        raise AssertionError("unreachable: the loop returns or raises")

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0-based)."""
        draw = self._rng.random() * self.jitter
        return min(self.backoff_cap_s, self.backoff_base_s * 2.0**attempt * (1.0 + draw))


def _rebase_urls(urls: object, base_url: str) -> object:
    """``urls`` (a URL or nested dict of URLs) with scheme and host replaced by ``base_url``, paths kept."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"`base_url` must look like http://host:port[/prefix], got {base_url!r}")
    prefix = base_url.rstrip("/")

    def rebase(entry: object) -> object:
        if isinstance(entry, Mapping):
            return {name: rebase(value) for name, value in entry.items()}
        if isinstance(entry, str):
            return prefix + urlsplit(entry).path
        return entry

    return rebase(urls)


def _precision_converter(mode: int) -> Callable[[object], float | None]:
    """Turn a ccxt precision value into a step size, according to the exchange's precision mode."""
    if mode == ccxt.DECIMAL_PLACES:
        return lambda value: None if _positive_or_none(value, allow_zero=True) is None else 10.0 ** -float(value)
    if mode == ccxt.TICK_SIZE:
        return _positive_or_none
    return lambda value: None  # significant digits say nothing about a fixed step


def _positive_or_none(value: object, *, allow_zero: bool = False) -> float | None:
    number = _float_or_nan(value)
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        return None
    return number


def _float_or_nan(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")
