"""The ``ccxt`` source: public spot or linear-perpetual markets, 24 h tickers and paged daily bars of one exchange.

This is the only module of the project that imports ccxt. Every HTTP call goes through one retry wrapper:
transient errors (timeouts, HTTP 429 / DDoS protection, 5xx / exchange not available, and answers that are
not the JSON the endpoint sends: an HTML page or a truncated body) are retried with capped exponential backoff
within a total time budget; anything else, and the last transient error once the retries or the budget are
spent, becomes a :class:`~alpha_assets.errors.SourceError` naming the exchange, the market and the cause, with
any credential value blanked out.

Paging works the same on every exchange ccxt supports with ``fetchOHLCV``: pages of the exchange's own cap
(``exchange.features[type]['fetchOHLCV']['limit']``), the cursor moved to the day after the newest bar of a
page, and an empty page (a window before the listing, on exchanges that answer a fixed window) skipped by one
page of days rather than ending the fetch, so a symbol listed after ``since`` is still fetched to the present.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import ccxt
import numpy as np
import pandas as pd

from alpha_assets.errors import SourceError, UnsafeKeyError
from alpha_assets.lakehouse.keys import make_symbol_key, normalize_exchange_id
from alpha_assets.lakehouse.ohlcv import bars_from_exchange_rows, empty_bars
from alpha_assets.sources.base import HISTORY_LIMIT_ATTR, MARKET_TYPES, Market, Ticker
from alpha_assets.validation import check_utc_timestamp, epoch_ms

DEFAULT_EXCHANGE_ID = "binance"
DEFAULT_TIMEOUT_MS = 10_000
DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_BASE_S = 0.5
DEFAULT_BACKOFF_CAP_S = 8.0
DEFAULT_JITTER = 0.1
DEFAULT_RETRY_BUDGET_S = 60.0
#: Bars asked per call on an exchange whose cap ccxt does not publish: low enough that an exchange answering a
#: fixed window of ``limit`` days never serves fewer bars than asked, which would skip days.
FALLBACK_PAGE_LIMIT = 100
TIMEFRAME = "1d"
_DAY_MS = 86_400_000
#: ``options['fetchMarkets']['types']`` that keeps ``load_markets`` to one market type, per exchange; an exchange
#: not listed loads all its types and the wanted ones are kept.
_FETCH_MARKETS_TYPES = {
    "binance": {"spot": ["spot"], "swap": ["linear"]},
    "binanceus": {"spot": ["spot"], "swap": ["linear"]},
    "bybit": {"spot": ["spot"], "swap": ["linear"]},
    "okx": {"spot": ["spot"], "swap": ["swap"]},
}
_REDACTED = "[REDACTED]"

_T = TypeVar("_T")


class CcxtSource:
    """Public market data of one ccxt exchange, with retries, paging and the forming bar dropped.

    Implements :class:`~alpha_assets.sources.base.MarketSource`.

    Parameters
    ----------
    exchange_id : str
        A ccxt exchange id (``ccxt.exchanges``), e.g. ``"binance"``.
    market_type : {"spot", "swap"}
        Which markets are listed: spot pairs, or linear perpetual swaps (settled in the quote currency,
        ``BTC/USDT:USDT``), whose symbol keys end in ``_PERP``.
    base_url : str, optional
        ``scheme://host[:port][/prefix]`` that replaces the scheme and host of every URL in the exchange's
        ``urls['api']`` (nested entries included), keeping each URL's path: with ``http://127.0.0.1:8000``,
        binance's ``https://api.binance.com/api/v3`` becomes ``http://127.0.0.1:8000/api/v3``. Used to point
        the client at a local server; ``None`` keeps the exchange's real endpoints.
    timeout_ms : int
        Per-request timeout in milliseconds (connect and read); a request exceeding it is retried.
    max_retries : int
        Retries after the first try on transient errors; ``1 + max_retries`` tries at most per call.
    retry_budget_s : float
        Total seconds one call may spend on its tries and waits: no retry is started whose wait would end
        past it, whatever ``max_retries`` allows.
    backoff_base_s, backoff_cap_s : float
        The wait before retry ``k`` (``k = 0, 1, ...``) is
        ``min(backoff_cap_s, backoff_base_s * 2**k * (1 + u))`` seconds, ``u`` uniform in ``[0, jitter)``.
    jitter : float
        Relative jitter of the backoff, in ``[0, 1]``; ``0`` gives exact powers of two.
    seed : int
        Seed of the jitter draws, so a run's waits are reproducible.
    page_limit : int, optional
        Bars asked per OHLCV call (``limit``), >= 1, never above the exchange's published cap (a larger
        value is lowered to it, since an exchange answering a fixed window would otherwise skip days).
        ``None`` takes the cap (``exchange.features[type]['fetchOHLCV']['limit']``: binance 1000, bybit 1000,
        kraken 720, okx 300, coinbase 300), or :data:`FALLBACK_PAGE_LIMIT` where ccxt publishes none.
    rate_limit_ms : int, optional
        Minimum spacing of requests for ccxt's rate limiter (always on); ``None`` keeps the exchange's own.
    now : callable, optional
        Returns the current time as a tz-aware ``Timestamp``; the bar opening at or after the start of its UTC
        day is still forming and never returned. Defaults to the system clock.
    sleep : callable, optional
        Called with the backoff wait in seconds; defaults to :func:`time.sleep`. Tests pass a recorder.
    credentials : Mapping of str to str, optional
        ``apiKey`` / ``secret`` / ``password`` values from the environment. The public calls made here need
        none, so they are never handed to ccxt (with keys set, some exchanges' ``load_markets`` calls private
        endpoints); they are kept only to blank them out of every error message. Never shown by ``repr``.

    Attributes
    ----------
    exchange_key : str
        Key prefix of the symbols (``BINANCE``).
    page_limit : int
        Bars asked per OHLCV call, resolved as described above.
    requests_made : int
        HTTP requests ccxt actually sent through this source, counted in a hook on ccxt's ``fetch``: every
        attempt counts, failed and retried ones included; requests ccxt would answer from its cache do not.
    skipped_markets : tuple of (str, str)
        ``(ccxt symbol, reason)`` of markets of the wanted type the last :meth:`load_markets` left out (unsafe
        or colliding key).

    Raises
    ------
    ValueError
        When ``exchange_id`` is not a ccxt exchange, ``market_type`` is not spot or swap, ``base_url`` is not
        an http(s) URL, or a numeric parameter is out of range.
    """

    def __init__(
        self,
        exchange_id: str = DEFAULT_EXCHANGE_ID,
        *,
        market_type: str = "spot",
        base_url: str | None = None,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
        backoff_base_s: float = DEFAULT_BACKOFF_BASE_S,
        backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S,
        jitter: float = DEFAULT_JITTER,
        seed: int = 0,
        page_limit: int | None = None,
        rate_limit_ms: int | None = None,
        now: Callable[[], pd.Timestamp] | None = None,
        sleep: Callable[[float], None] | None = None,
        credentials: Mapping[str, str] | None = None,
    ) -> None:
        if exchange_id not in ccxt.exchanges:
            raise ValueError(f"`exchange_id` must be a ccxt exchange id (see ccxt.exchanges), got {exchange_id!r}")
        if market_type not in MARKET_TYPES:
            raise ValueError(f"`market_type` must be one of {list(MARKET_TYPES)}, got {market_type!r}")
        _check_int("timeout_ms", timeout_ms, minimum=1)
        _check_int("max_retries", max_retries, minimum=0)
        if page_limit is not None:
            _check_int("page_limit", page_limit, minimum=1)
        if rate_limit_ms is not None:
            _check_int("rate_limit_ms", rate_limit_ms, minimum=0)
        if not retry_budget_s >= 0:
            raise ValueError(f"`retry_budget_s` must be >= 0 seconds, got {retry_budget_s!r}")
        if not backoff_base_s >= 0:
            raise ValueError(f"`backoff_base_s` must be >= 0 seconds, got {backoff_base_s!r}")
        if not backoff_cap_s >= backoff_base_s:
            raise ValueError(f"`backoff_cap_s` must be >= `backoff_base_s` ({backoff_base_s}), got {backoff_cap_s!r}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"`jitter` must be in [0, 1], got {jitter!r}")
        self.exchange_id = exchange_id
        self.exchange_key = normalize_exchange_id(exchange_id)
        self.market_type = market_type
        self.base_url = base_url
        self.timeout_ms = timeout_ms
        self.max_retries = max_retries
        self.retry_budget_s = retry_budget_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.jitter = jitter
        self.requests_made = 0
        self.skipped_markets: tuple[tuple[str, str], ...] = ()
        self._now = now if now is not None else _utc_now
        self._sleep = sleep if sleep is not None else time.sleep
        self._rng = random.Random(seed)
        self._secrets = _secret_forms(credentials or {})
        self._markets_by_symbol: dict[str, Market] | None = None
        self._contract_sizes: dict[str, float] = {}
        self._exchange = self._make_exchange(rate_limit_ms)
        cap = _published_ohlcv_cap(self._exchange, market_type)
        if page_limit is None:
            page_limit = cap if cap is not None else FALLBACK_PAGE_LIMIT
        elif cap is not None:
            page_limit = min(page_limit, cap)
        self.page_limit = page_limit

    def __repr__(self) -> str:
        return (
            f"CcxtSource(exchange_id={self.exchange_id!r}, market_type={self.market_type!r}, "
            f"base_url={self.base_url!r}, timeout_ms={self.timeout_ms}, max_retries={self.max_retries}, "
            f"page_limit={self.page_limit}, credentials={'set' if self._secrets else 'none'})"
        )

    # ------------------------------------------------------------------------------------ public API
    def load_markets(self) -> list[Market]:
        """Every market of the wanted type the exchange lists, active or not, reloaded on each call.

        Returns
        -------
        list of Market
            One per spot market (``market_type="spot"``) or linear perpetual swap (``"swap"``), in the
            exchange's order, with ``symbol_key = make_symbol_key(exchange_id, base, quote, market_type)``,
            ``tick_size`` / ``lot_size`` from the market's price / amount precision (as step sizes whatever the
            exchange's precision mode; ``None`` for significant-digit precision or when absent) and
            ``min_notional`` from ``limits.cost.min``. A market whose key would be unsafe, or would collide
            with an earlier market's key, is left out and listed in ``skipped_markets``.

        Raises
        ------
        SourceError
            When the exchange keeps failing after the retries, or answers something unusable.
        """
        raw = self._call("load_markets", None, self._exchange.load_markets, True)
        precision_to_size = _precision_converter(self._exchange.precisionMode)
        markets: dict[str, Market] = {}
        contract_sizes: dict[str, float] = {}
        skipped: list[tuple[str, str]] = []
        for info in raw.values():
            if not _is_wanted(info, self.market_type):
                continue
            symbol = str(info.get("symbol"))
            try:
                key = make_symbol_key(
                    self.exchange_id, str(info.get("base")), str(info.get("quote")), market_type=self.market_type
                )
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
                market_type=self.market_type,
                active=info.get("active") is not False,  # ccxt says None when the exchange does not tell
                tick_size=precision_to_size(precision.get("price")),
                lot_size=precision_to_size(precision.get("amount")),
                min_notional=_positive_or_none((limits.get("cost") or {}).get("min")),
            )
            contract_sizes[symbol] = _positive_or_none(info.get("contractSize")) or 1.0
        self.skipped_markets = tuple(skipped)
        self._markets_by_symbol = {m.ccxt_symbol: m for m in markets.values()}
        self._contract_sizes = contract_sizes
        return list(markets.values())

    def fetch_tickers(self) -> dict[str, Ticker]:
        """24 h tickers of the listed markets, by symbol key.

        Returns
        -------
        dict of str to Ticker
            ``quote_volume`` is ccxt's ``quoteVolume`` (traded value in the quote currency), or
            ``baseVolume * contractSize * last`` when the exchange does not send it (ccxt counts a swap's
            ``baseVolume`` in contracts; a spot market's contract size is 1), or NaN when neither is known.
            Tickers without a last price, or of markets :meth:`load_markets` left out, are not included.

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
                quote_volume = _float_or_nan(info.get("baseVolume")) * self._contract_sizes.get(symbol, 1.0) * last
            tickers[market.symbol_key] = Ticker(symbol_key=market.symbol_key, last=last, quote_volume=quote_volume)
        return tickers

    def fetch_daily_bars(self, market: Market, *, since: pd.Timestamp, until: pd.Timestamp) -> pd.DataFrame:
        """Fetch the closed daily bars of ``market`` opening in ``[since, until)``, as the exchange sent them.

        Pages through ``fetch_ohlcv(symbol, '1d', since=cursor, limit=page_limit)`` until the cursor reaches
        ``until`` (or the start of the current UTC day, whichever is earlier). After a page the cursor moves to
        the day after its newest bar, so a page boundary neither repeats nor skips a bar whether the exchange
        sends its rows oldest or newest first (ccxt sorts them) and whatever it does with ``since`` (ccxt
        turns every exchange's inclusive or exclusive start into an inclusive one). A page without a bar at or
        after the cursor moves the cursor ``page_limit`` days on: exchanges that answer a fixed window
        (okx, coinbase) answer nothing for the windows before a listing, and the fetch goes on to the present.
        A page that reaches the present stops the fetch. No request is sent when the window is empty; at most
        ``ceil(days / page_limit)`` pages plus one per page ending on a missing day are requested.

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
            timestamp are kept (ccxt itself already drops those when ``since`` is given). When the exchange
            served only its most recent bars although older ones were asked for (a history cap, as kraken's
            720 daily bars), ``attrs[HISTORY_LIMIT_ATTR]`` says so in words.

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
        history_limit = None
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
            stamps = page["timestamp"].dropna()
            if stamps.empty or epoch_ms(stamps.max()) < cursor:
                cursor += self.page_limit * _DAY_MS
                continue
            oldest, newest = epoch_ms(stamps.min()), epoch_ms(stamps.max())
            if not pages and oldest > cursor and len(rows) >= self.page_limit - 1 and newest >= end_ms - _DAY_MS:
                # A full first page that starts after the cursor yet ends at the present: the exchange keeps
                # only its most recent bars (a recent listing would fill its pages from the listing day on).
                history_limit = (
                    f"{self.exchange_id} sent only the {len(rows)} most recent daily bars of {market.ccxt_symbol} "
                    f"when older ones were asked for: it keeps no longer history (unless the market was listed "
                    f"exactly {len(rows)} days ago)"
                )
            pages.append(page)
            cursor = newest + _DAY_MS
        if not pages:
            return empty_bars()
        bars = pd.concat(pages, ignore_index=True)
        stamps = bars["timestamp"]
        keep = stamps.isna() | ((stamps >= start) & (stamps < end))
        bars = bars.loc[keep].reset_index(drop=True)
        if history_limit is not None:
            bars.attrs[HISTORY_LIMIT_ATTR] = history_limit
        return bars

    # ------------------------------------------------------------------------------------- internals
    def _make_exchange(self, rate_limit_ms: int | None) -> ccxt.Exchange:
        options: dict[str, Any] = {
            "defaultType": self.market_type,
            "fetchMargins": False,
            # Binance's currency list is a private endpoint; the public data used here does not need it.
            "fetchCurrencies": False,
        }
        types = _FETCH_MARKETS_TYPES.get(self.exchange_id, {}).get(self.market_type)
        if types is not None:
            # Keeps load_markets to the wanted type's instrument list (no futures / options endpoints).
            options["fetchMarkets"] = {"types": types}
        config: dict[str, Any] = {"enableRateLimit": True, "timeout": self.timeout_ms, "options": options}
        if rate_limit_ms is not None:
            config["rateLimit"] = rate_limit_ms
        exchange = getattr(ccxt, self.exchange_id)(config)
        # Currencies (networks, fees) play no part in bars and tickers; with keys set some exchanges fetch
        # them from private endpoints. Skipping them saves a request on every load_markets.
        exchange.has["fetchCurrencies"] = False
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
        """Run one ccxt call, retrying transient errors with capped exponential backoff within the budget."""
        where = f"{self.exchange_id} {operation}" + (f" of {symbol}" if symbol is not None else "")
        tries = 1 + self.max_retries
        started = time.monotonic()
        waited = 0.0
        for attempt in range(tries):
            try:
                return fn(*args)
            except (ccxt.NetworkError, ccxt.BadResponse) as err:
                wait = self._backoff(attempt)
                spent = time.monotonic() - started + waited
                if attempt + 1 == tries or spent + wait > self.retry_budget_s:
                    budget = "" if attempt + 1 == tries else f" (retry budget of {self.retry_budget_s:g} s spent)"
                    message = (
                        f"{where} failed after {attempt + 1} tries{budget}; last error {type(err).__name__}: {err}"
                    )
                    raise self._source_error(message) from (None if self._secrets else err)
                self._sleep(wait)
                waited += wait
            except ccxt.BaseError as err:
                message = f"{where} failed: {type(err).__name__}: {err}"
                raise self._source_error(message) from (None if self._secrets else err)
        raise AssertionError("unreachable: the loop returns or raises")

    def _source_error(self, message: str) -> SourceError:
        """A :class:`SourceError` whose text holds no credential value.

        With credentials set the ccxt exception is not chained either (``from None``): its text, or the
        server's answer quoted in it, is what Dagster would store as the cause.
        """
        for secret in self._secrets:
            message = message.replace(secret, _REDACTED)
        return SourceError(message)

    def _backoff(self, attempt: int) -> float:
        """Seconds to wait before retry ``attempt`` (0-based)."""
        draw = self._rng.random() * self.jitter
        return min(self.backoff_cap_s, self.backoff_base_s * 2.0**attempt * (1.0 + draw))


def _secret_forms(credentials: Mapping[str, str]) -> tuple[str, ...]:
    """Each non-empty credential as written raw, URL-encoded and JSON-escaped, longest first."""
    forms = {
        form
        for value in credentials.values()
        if value
        for form in (value, quote(value, safe=""), json.dumps(value)[1:-1])
    }
    return tuple(sorted(forms, key=len, reverse=True))


def _is_wanted(info: Mapping[str, Any], market_type: str) -> bool:
    """Whether a ccxt market is of ``market_type``: spot, or a linear perpetual swap."""
    if market_type == "spot":
        return bool(info.get("spot"))
    return bool(info.get("swap")) and bool(info.get("linear"))


def _published_ohlcv_cap(exchange: ccxt.Exchange, market_type: str) -> int | None:
    """The most bars one ``fetchOHLCV`` call returns, as ccxt publishes it in ``features``, or ``None``."""
    node = (getattr(exchange, "features", None) or {}).get(market_type) or {}
    if market_type == "swap":
        node = node.get("linear") or {}
    cap = (node.get("fetchOHLCV") or {}).get("limit")
    return int(cap) if isinstance(cap, int | float) and cap >= 1 else None


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
