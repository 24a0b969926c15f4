"""A local exchange for tests: a stdlib HTTP server on 127.0.0.1 that speaks Binance's spot REST format.

It answers ``/api/v3/exchangeInfo``, ``/api/v3/ticker/24hr``, ``/api/v3/klines``, ``/api/v3/ping`` and
``/api/v3/time`` from fixture bars given in Python, counts every request by path and by symbol, and can be
told to misbehave (HTTP 429 / 5xx, a stall past the client's timeout, truncated or non-JSON bodies, malformed
kline rows) for the next N requests or for one symbol. ccxt is pointed at it by
``CcxtSource(base_url=server.base_url)``.

Use it as a context manager (``with ExchangeServer(bars) as server: ...``) or through the ``exchange_server``
pytest fixture, which yields a started server with no markets; add them with :meth:`ExchangeServer.set_bars`.
"""

from __future__ import annotations

import enum
import json
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest

#: Binance answers at most this many klines per call.
MAX_KLINES_PER_CALL = 1000
DEFAULT_KLINES_PER_CALL = 500
DAY_MS = 86_400_000
KLINES_PATH = "/api/v3/klines"
TICKER_PATH = "/api/v3/ticker/24hr"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
PING_PATH = "/api/v3/ping"
TIME_PATH = "/api/v3/time"


class Fault(enum.Enum):
    """A way the server can misbehave on a request.

    HTTP and body faults apply to any path. Row faults and ``IGNORE_START_TIME`` apply to ``/api/v3/klines``
    only; row faults alter the row in the middle of the page (``index = len(page) // 2``).
    """

    RATE_LIMITED = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    #: Hold the request for ``stall_s`` seconds before answering normally (the client times out first).
    STALL = "stall"
    #: A 200 whose JSON body is cut in half.
    TRUNCATED_JSON = "truncated_json"
    #: A 200 with an HTML body, as a misconfigured proxy would send.
    NOT_JSON = "not_json"
    #: ``open`` and ``close`` of one row are ``null``.
    NULL_VALUES = "null_values"
    #: The ``close`` of one row is negated.
    NEGATIVE_PRICE = "negative_price"
    #: ``high`` and ``low`` of one row are swapped.
    HIGH_BELOW_LOW = "high_below_low"
    #: One row is sent twice, the copy with a volume 1% higher.
    DUPLICATE_ROWS = "duplicate_rows"
    #: The page is sent newest first.
    UNSORTED_ROWS = "unsorted_rows"
    #: ``startTime`` is ignored: every page starts at the first bar again (a pager must stop, not loop).
    IGNORE_START_TIME = "ignore_start_time"


# 429 comes from Binance itself (JSON); 5xx from the gateway in front of it (HTML), which ccxt maps by status.
_HTTP_FAULTS = {
    Fault.RATE_LIMITED: (
        HTTPStatus.TOO_MANY_REQUESTS,
        b'{"code":-1003,"msg":"Too many requests."}',
        "application/json",
    ),
    Fault.SERVER_ERROR: (
        HTTPStatus.INTERNAL_SERVER_ERROR,
        b"<html>500 Internal Server Error</html>",
        "text/html",
    ),
    Fault.BAD_GATEWAY: (HTTPStatus.BAD_GATEWAY, b"<html>502 Bad Gateway</html>", "text/html"),
    Fault.UNAVAILABLE: (HTTPStatus.SERVICE_UNAVAILABLE, b"<html>503 Service Unavailable</html>", "text/html"),
}
_ROW_FAULTS = frozenset(
    {Fault.NULL_VALUES, Fault.NEGATIVE_PRICE, Fault.HIGH_BELOW_LOW, Fault.DUPLICATE_ROWS, Fault.UNSORTED_ROWS}
)
_KLINES_ONLY_FAULTS = _ROW_FAULTS | {Fault.IGNORE_START_TIME}


@dataclass(frozen=True)
class MarketSpec:
    """One spot market as ``exchangeInfo`` lists it.

    ``symbol`` is the ccxt form ``BASE/QUOTE``; the exchange id is ``BASEQUOTE``. ``status`` other than
    ``TRADING`` makes ccxt report the market inactive.
    """

    symbol: str
    status: str = "TRADING"
    tick_size: float = 0.01
    lot_size: float = 0.0001
    min_notional: float = 5.0

    @property
    def base(self) -> str:
        """The base asset (``BTC`` of ``BTC/USDT``)."""
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        """The quote asset (``USDT`` of ``BTC/USDT``)."""
        return self.symbol.split("/")[1]

    @property
    def exchange_id(self) -> str:
        """Binance's own name of the market (``BTCUSDT``)."""
        return self.base + self.quote


@dataclass
class _FaultRule:
    fault: Fault
    remaining: int | None
    symbol: str | None
    path: str | None
    stall_s: float

    def matches(self, path: str, symbol: str | None) -> bool:
        if self.remaining == 0:
            return False
        if self.path is not None and self.path != path:
            return False
        if self.symbol is not None and self.symbol != symbol:
            return False
        return not (self.fault in _KLINES_ONLY_FAULTS and path != KLINES_PATH)


@dataclass(frozen=True)
class _Series:
    """Fixture bars of one symbol, pre-rendered as kline rows sorted by open time."""

    open_ms: np.ndarray  # (n_observations,) int64, ms since epoch
    rows: list[list[object]]  # Binance kline rows, same order


def _render_klines(bars: pd.DataFrame) -> _Series:
    """Binance kline rows from a frame of daily bars (``timestamp`` UTC, ``open`` .. ``volume``)."""
    frame = bars.sort_values("timestamp", kind="stable")
    open_ms = pd.DatetimeIndex(frame["timestamp"]).as_unit("ms").asi8.astype(np.int64)
    prices = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype="float64")
    text = prices.astype(str)
    quote_volume = (prices[:, 3] * prices[:, 4]).astype(str)
    n = len(frame)
    table = np.empty((n, 12), dtype=object)
    table[:, 0] = open_ms.tolist()
    table[:, 1:6] = text
    table[:, 6] = (open_ms + DAY_MS - 1).tolist()
    table[:, 7] = quote_volume
    table[:, 8] = 1000
    table[:, 9] = text[:, 4]
    table[:, 10] = quote_volume
    table[:, 11] = "0"
    return _Series(open_ms=open_ms, rows=table.tolist())


class ExchangeServer:
    """A threaded HTTP server on ``127.0.0.1`` (a free port) answering Binance's spot REST endpoints.

    Parameters
    ----------
    bars : Mapping[str, DataFrame], optional
        Daily bars per market, keyed by ccxt symbol (``"BTC/USDT"``). Each frame has columns ``timestamp``
        (tz-aware UTC, bar open time), ``open``, ``high``, ``low``, ``close``, ``volume`` (float64).
        Every key becomes a ``TRADING`` market with default filters.
    markets : Sequence[MarketSpec], optional
        Extra or overriding market definitions (e.g. a halted market, or one without bars).
    tickers : Mapping[str, Mapping[str, object]], optional
        Overrides of ``/api/v3/ticker/24hr`` fields per ccxt symbol, e.g.
        ``{"BTC/USDT": {"quoteVolume": None}}``.
        By default the ticker of a market comes from its last bar: ``lastPrice`` = close, ``volume``, and
        ``quoteVolume`` = close * volume.
    server_time : Timestamp, optional
        What ``/api/v3/time`` answers (default: the real clock).

    Attributes
    ----------
    base_url : str
        ``http://127.0.0.1:<port>`` once started; give it to ``CcxtSource(base_url=...)``.
    """

    def __init__(
        self,
        bars: Mapping[str, pd.DataFrame] | None = None,
        *,
        markets: Sequence[MarketSpec] = (),
        tickers: Mapping[str, Mapping[str, object]] | None = None,
        server_time: pd.Timestamp | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._markets: dict[str, MarketSpec] = {}
        self._series: dict[str, _Series] = {}
        self._ticker_overrides: dict[str, dict[str, object]] = {}
        self._rules: list[_FaultRule] = []
        self._by_path: Counter[str] = Counter()
        self._by_symbol: Counter[tuple[str, str]] = Counter()
        self._log: list[tuple[str, dict[str, str]]] = []
        self._server_time = server_time
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for symbol, frame in (bars or {}).items():
            self.set_bars(symbol, frame)
        for spec in markets:
            self.add_market(spec)
        for symbol, fields in (tickers or {}).items():
            self.set_ticker(symbol, **fields)

    # ----------------------------------------------------------------------------------------- fixtures
    def set_bars(self, symbol: str, bars: pd.DataFrame) -> None:
        """Serve ``bars`` (daily bars, see the class docstring) for ``symbol``, adding the market if new."""
        series = _render_klines(bars)
        with self._lock:
            if symbol not in self._markets:
                self._markets[symbol] = MarketSpec(symbol)
            self._series[self._markets[symbol].exchange_id] = series

    def add_market(self, spec: MarketSpec) -> None:
        """List ``spec`` in ``exchangeInfo`` (replacing a market of the same symbol)."""
        with self._lock:
            self._markets[spec.symbol] = spec

    def set_ticker(self, symbol: str, **fields: object) -> None:
        """Override 24 h ticker fields (Binance names, e.g. ``quoteVolume=None``) of ``symbol``."""
        with self._lock:
            self._ticker_overrides.setdefault(symbol, {}).update(fields)

    # ------------------------------------------------------------------------------------------- faults
    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = 1,
        symbol: str | None = None,
        path: str | None = None,
        stall_s: float = 2.0,
    ) -> None:
        """Misbehave on the next matching requests.

        Parameters
        ----------
        fault : Fault
            What to do instead of (or to) the normal answer.
        times : int or None
            How many matching requests get the fault; ``None`` means every one until :meth:`clear_faults`.
        symbol : str, optional
            Only requests for this market (``"BTC/USDT"`` or ``"BTCUSDT"``).
        path : str, optional
            Only requests to this path (e.g. ``KLINES_PATH``).
        stall_s : float
            How long a ``Fault.STALL`` holds the request, in seconds.

        Rules are tried in the order they were injected; the first matching one with requests left applies.
        """
        if not isinstance(fault, Fault):
            raise TypeError(f"`fault` must be a Fault, got {fault!r}")
        if times is not None and times < 1:
            raise ValueError(f"`times` must be >= 1 or None, got {times}")
        exchange_symbol = symbol.replace("/", "") if symbol is not None else None
        with self._lock:
            self._rules.append(_FaultRule(fault, times, exchange_symbol, path, stall_s))

    def clear_faults(self) -> None:
        """Forget every injected fault."""
        with self._lock:
            self._rules.clear()

    # ---------------------------------------------------------------------------------------- counters
    def request_count(self, path: str | None = None, symbol: str | None = None) -> int:
        """Count requests: all, to ``path``, and/or for ``symbol`` (``"BTC/USDT"`` or ``"BTCUSDT"``)."""
        with self._lock:
            if symbol is None:
                return sum(self._by_path.values()) if path is None else self._by_path[path]
            exchange_symbol = symbol.replace("/", "")
            return sum(n for (p, s), n in self._by_symbol.items() if s == exchange_symbol and path in (None, p))

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """Every request received, in order, as ``(path, query parameters)``."""
        with self._lock:
            return list(self._log)

    def reset_counts(self) -> None:
        """Set every counter back to zero and empty the request log."""
        with self._lock:
            self._by_path.clear()
            self._by_symbol.clear()
            self._log.clear()

    # ---------------------------------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._httpd is None:
            raise RuntimeError("the exchange server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ExchangeServer:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stop.clear()
        handler = type("_BoundHandler", (_Handler,), {"exchange": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name="exchange-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalled requests, stop serving and free the port."""
        if self._httpd is None:
            return
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ExchangeServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------- answering
    def _record(self, path: str, params: dict[str, str]) -> _FaultRule | None:
        """Count the request and claim the fault rule that applies to it, if any."""
        symbol = params.get("symbol")
        with self._lock:
            self._by_path[path] += 1
            if symbol is not None:
                self._by_symbol[(path, symbol)] += 1
            self._log.append((path, params))
            for rule in self._rules:
                if rule.matches(path, symbol):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None

    def _answer(self, path: str, params: dict[str, str]) -> tuple[int, object]:
        with self._lock:
            if path == EXCHANGE_INFO_PATH:
                return HTTPStatus.OK, self._exchange_info()
            if path == TICKER_PATH:
                return self._tickers(params.get("symbol"))
            if path == KLINES_PATH:
                return self._klines(params)
            if path == PING_PATH:
                return HTTPStatus.OK, {}
            if path == TIME_PATH:
                return HTTPStatus.OK, {"serverTime": self._now_ms()}
        return HTTPStatus.NOT_FOUND, {"code": -1000, "msg": f"unknown path {path}"}

    def _now_ms(self) -> int:
        now = self._server_time if self._server_time is not None else pd.Timestamp.now(tz="UTC")
        return int(now.value // 1_000_000)

    def _exchange_info(self) -> dict[str, object]:
        return {
            "timezone": "UTC",
            "serverTime": self._now_ms(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
            "exchangeFilters": [],
            "symbols": [_symbol_info(spec) for spec in self._markets.values()],
        }

    def _tickers(self, exchange_symbol: str | None) -> tuple[int, object]:
        specs = [s for s in self._markets.values() if exchange_symbol in (None, s.exchange_id)]
        if exchange_symbol is not None and not specs:
            return HTTPStatus.BAD_REQUEST, {"code": -1121, "msg": "Invalid symbol."}
        tickers = [self._ticker(spec) for spec in specs]
        return HTTPStatus.OK, tickers[0] if exchange_symbol is not None else tickers

    def _ticker(self, spec: MarketSpec) -> dict[str, object]:
        series = self._series.get(spec.exchange_id)
        last_row = series.rows[-1] if series is not None and series.rows else None
        close = float(last_row[4]) if last_row else 0.0
        volume = float(last_row[5]) if last_row else 0.0
        close_ms = self._now_ms()
        ticker: dict[str, object] = {
            "symbol": spec.exchange_id,
            "priceChange": "0",
            "priceChangePercent": "0",
            "weightedAvgPrice": str(close),
            "prevClosePrice": str(close),
            "lastPrice": str(close),
            "lastQty": "1",
            "bidPrice": str(close),
            "bidQty": "1",
            "askPrice": str(close),
            "askQty": "1",
            "openPrice": str(close),
            "highPrice": str(close),
            "lowPrice": str(close),
            "volume": str(volume),
            "quoteVolume": str(close * volume),
            "openTime": close_ms - DAY_MS,
            "closeTime": close_ms,
            "firstId": 1,
            "lastId": 2,
            "count": 2,
        }
        ticker.update(self._ticker_overrides.get(spec.symbol, {}))
        return ticker

    def _klines(self, params: dict[str, str]) -> tuple[int, object]:
        exchange_symbol = params.get("symbol")
        if exchange_symbol not in {s.exchange_id for s in self._markets.values()}:
            return HTTPStatus.BAD_REQUEST, {"code": -1121, "msg": "Invalid symbol."}
        if params.get("interval") != "1d":
            return HTTPStatus.BAD_REQUEST, {"code": -1120, "msg": "Invalid interval: only 1d is served."}
        series = self._series.get(exchange_symbol)
        if series is None:
            return HTTPStatus.OK, []
        limit = min(int(params.get("limit", DEFAULT_KLINES_PER_CALL)), MAX_KLINES_PER_CALL)
        lo = np.searchsorted(series.open_ms, int(params["startTime"]), "left") if "startTime" in params else None
        hi = np.searchsorted(series.open_ms, int(params["endTime"]), "right") if "endTime" in params else None
        if lo is not None:
            stop = len(series.open_ms) if hi is None else hi
            selected = series.rows[lo : min(stop, lo + limit)]
        else:
            stop = len(series.open_ms) if hi is None else hi
            selected = series.rows[max(0, stop - limit) : stop]
        return HTTPStatus.OK, [list(row) for row in selected]


def _symbol_info(spec: MarketSpec) -> dict[str, object]:
    return {
        "symbol": spec.exchange_id,
        "status": spec.status,
        "baseAsset": spec.base,
        "baseAssetPrecision": 8,
        "quoteAsset": spec.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": f"{spec.tick_size:.8f}",
                "maxPrice": "1000000.00000000",
                "tickSize": f"{spec.tick_size:.8f}",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": f"{spec.lot_size:.8f}",
                "maxQty": "9000000.00000000",
                "stepSize": f"{spec.lot_size:.8f}",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": f"{spec.min_notional:.8f}",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
    }


def _apply_row_fault(fault: Fault, rows: list[list[object]]) -> list[list[object]]:
    """``rows`` altered as ``fault`` says, at the middle row; an empty page is left alone."""
    if not rows:
        return rows
    i = len(rows) // 2
    if fault is Fault.NULL_VALUES:
        rows[i][1] = rows[i][4] = None
    elif fault is Fault.NEGATIVE_PRICE:
        rows[i][4] = str(-float(rows[i][4]))
    elif fault is Fault.HIGH_BELOW_LOW:
        rows[i][2], rows[i][3] = rows[i][3], rows[i][2]
    elif fault is Fault.DUPLICATE_ROWS:
        copy = list(rows[i])
        copy[5] = str(float(copy[5]) * 1.01)
        rows.insert(i + 1, copy)
    elif fault is Fault.UNSORTED_ROWS:
        rows.reverse()
    return rows


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection; ``exchange`` is bound by :meth:`ExchangeServer.start`."""

    exchange: ExchangeServer
    protocol_version = "HTTP/1.1"
    # Without this every answer waits ~40 ms on Nagle + delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches on)
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        rule = self.exchange._record(url.path, params)
        fault = rule.fault if rule is not None else None
        if fault in _HTTP_FAULTS:
            self._send(*_HTTP_FAULTS[fault])
            return
        if fault is Fault.STALL:
            # Wakes early when the server stops, so shutdown never waits on a stalled request.
            if self.exchange._stop.wait(rule.stall_s):
                return
        if fault is Fault.IGNORE_START_TIME:
            params = {**params, "startTime": "0"}
        status, payload = self.exchange._answer(url.path, params)
        if fault in _ROW_FAULTS and status == HTTPStatus.OK:
            payload = _apply_row_fault(fault, payload)
        body = json.dumps(payload).encode()
        if fault is Fault.TRUNCATED_JSON:
            body = body[: max(1, len(body) // 2)]
        elif fault is Fault.NOT_JSON:
            self._send(HTTPStatus.OK, b"<html><body>upstream proxy page</body></html>", "text/html")
            return
        self._send(status, body)

    def _send(self, status: int, body: bytes, content_type: str = "application/json;charset=UTF-8") -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (its timeout fired during a stall); nothing left to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature of the base class)
        """Keep test output quiet; the server's counters and request log say what happened."""


@pytest.fixture
def exchange_server() -> Iterator[ExchangeServer]:
    """A started :class:`ExchangeServer` with no markets, stopped after the test."""
    with ExchangeServer() as server:
        yield server
