"""The shared core of the loopback exchange servers: fixture bars, faults, request logs and the HTTP plumbing.

Each exchange module (``binance``, ``okx``, ``kraken``, ``bybit``, ``coinbase``) subclasses
:class:`LoopbackExchange` and only says how its REST API names markets, lists them, answers tickers and pages
candles, in the exchange's real format as ccxt requests and parses it. Everything else lives here: a threaded
stdlib server on 127.0.0.1 (a free port, Nagle off), fixture bars per ccxt symbol, a log of every request
(path, query, headers), counts per path and per market, and faults that any server can be told to produce
for the next N matching requests (HTTP 429 / 5xx, a stall past the client's timeout, an HTML or truncated
200, malformed candle rows, a ``since`` that is ignored).
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

DAY_MS = 86_400_000


class Fault(enum.Enum):
    """A way a server can misbehave on a request.

    HTTP and body faults apply to any path. Row faults and ``IGNORE_START_TIME`` apply to candle requests
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
    #: The page is sent in the opposite order to the exchange's own.
    UNSORTED_ROWS = "unsorted_rows"
    #: The requested start is ignored: every page starts at the first bar again (a pager must stop, not loop).
    IGNORE_START_TIME = "ignore_start_time"


#: 5xx come from the gateway in front of the exchange (HTML), which ccxt maps by status.
_GATEWAY_PAGES = {
    Fault.SERVER_ERROR: (HTTPStatus.INTERNAL_SERVER_ERROR, b"<html>500 Internal Server Error</html>"),
    Fault.BAD_GATEWAY: (HTTPStatus.BAD_GATEWAY, b"<html>502 Bad Gateway</html>"),
    Fault.UNAVAILABLE: (HTTPStatus.SERVICE_UNAVAILABLE, b"<html>503 Service Unavailable</html>"),
}
ROW_FAULTS = frozenset(
    {Fault.NULL_VALUES, Fault.NEGATIVE_PRICE, Fault.HIGH_BELOW_LOW, Fault.DUPLICATE_ROWS, Fault.UNSORTED_ROWS}
)
_CANDLE_ONLY_FAULTS = ROW_FAULTS | {Fault.IGNORE_START_TIME}


@dataclass(frozen=True)
class MarketSpec:
    """One market as an exchange lists it, named by its ccxt symbol.

    ``symbol`` is ``BASE/QUOTE`` for a spot pair or ``BASE/QUOTE:SETTLE`` for a perpetual swap. ``active``
    False lists the market as halted. ``contract_size`` is the base amount of one swap contract.
    """

    symbol: str
    active: bool = True
    tick_size: float = 0.01
    lot_size: float = 0.0001
    min_notional: float = 5.0
    contract_size: float = 1.0

    @property
    def base(self) -> str:
        """The base asset (``BTC`` of ``BTC/USDT``)."""
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        """The quote asset (``USDT`` of ``BTC/USDT`` and of ``BTC/USDT:USDT``)."""
        return self.symbol.split("/")[1].split(":")[0]

    @property
    def settle(self) -> str | None:
        """The settlement asset of a swap (``USDT`` of ``BTC/USDT:USDT``), None for spot."""
        parts = self.symbol.split(":")
        return parts[1] if len(parts) == 2 else None

    @property
    def is_swap(self) -> bool:
        """Whether this is a perpetual swap."""
        return self.settle is not None


@dataclass(frozen=True)
class Series:
    """Fixture bars of one market sorted by open time: ``open_ms`` (n,) int64 and ``values`` (n, 5) float64."""

    open_ms: np.ndarray
    values: np.ndarray

    @classmethod
    def from_frame(cls, bars: pd.DataFrame) -> Series:
        """From a frame with ``timestamp`` (tz-aware UTC, bar open) and ``open`` .. ``volume`` (float64)."""
        frame = bars.sort_values("timestamp", kind="stable")
        open_ms = pd.DatetimeIndex(frame["timestamp"]).as_unit("ms").asi8.astype(np.int64)
        values = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype="float64")
        return cls(open_ms=open_ms, values=values)


@dataclass
class _FaultRule:
    fault: Fault
    remaining: int | None
    symbol: str | None
    path: str | None
    stall_s: float


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server received it."""

    path: str
    params: dict[str, str]
    headers: dict[str, str]
    symbol: str | None


class LoopbackExchange:
    """A threaded HTTP server on ``127.0.0.1`` answering one exchange's public REST endpoints.

    Subclasses set :attr:`name` (the ccxt id) and :attr:`candle_paths` (or override :meth:`is_candle_path`),
    and implement :meth:`symbol_of`
    (which market a request concerns) and :meth:`answer` (status and JSON payload of a request).

    Parameters
    ----------
    bars : Mapping[str, DataFrame], optional
        Daily bars per market, keyed by ccxt symbol (``"BTC/USDT"``, ``"BTC/USDT:USDT"``); each frame has
        ``timestamp`` (tz-aware UTC, bar open) and ``open``, ``high``, ``low``, ``close``, ``volume``
        (float64). Every key becomes an active market with default sizes.
    markets : Sequence[MarketSpec], optional
        Extra or overriding market definitions (a halted market, one without bars, a swap's contract size).
    tickers : Mapping[str, Mapping[str, object]], optional
        Overrides of ticker fields (the exchange's own names) per ccxt symbol.
    server_time : Timestamp, optional
        The server's clock (default: the real clock): the bar opening on its UTC day is the forming one.
    echo_headers : bool
        Error answers quote the request's headers in their body, as some gateways do (a client that put
        credentials in headers would then find them in its error messages).

    Attributes
    ----------
    base_url : str
        ``http://127.0.0.1:<port>`` once started; give it to ``CcxtSource(base_url=...)``.
    """

    name: ClassVar[str]
    candle_paths: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        bars: Mapping[str, pd.DataFrame] | None = None,
        *,
        markets: Sequence[MarketSpec] = (),
        tickers: Mapping[str, Mapping[str, object]] | None = None,
        server_time: pd.Timestamp | None = None,
        echo_headers: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.markets: dict[str, MarketSpec] = {}
        self.series: dict[str, Series] = {}
        self.ticker_overrides: dict[str, dict[str, object]] = {}
        self._rules: list[_FaultRule] = []
        self._log: list[LoggedRequest] = []
        self.server_time = server_time
        self.echo_headers = echo_headers
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for symbol, frame in (bars or {}).items():
            self.set_bars(symbol, frame)
        for spec in markets:
            self.add_market(spec)
        for symbol, fields in (tickers or {}).items():
            self.set_ticker(symbol, **fields)

    # ------------------------------------------------------------------------------ to implement
    def is_candle_path(self, path: str) -> bool:
        """Whether ``path`` is a candle endpoint (row faults and request counts per symbol apply)."""
        return path in self.candle_paths

    def symbol_of(self, path: str, params: Mapping[str, str]) -> str | None:
        """The ccxt symbol a request concerns, or None (market lists, all tickers)."""
        raise NotImplementedError

    def answer(self, path: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        """Status and JSON payload of a request; called with the server's lock held."""
        raise NotImplementedError

    def error_payload(self, status: int, message: str) -> Any:
        """The exchange's JSON error body (a 429, a bad request)."""
        return {"code": int(status), "msg": message}

    # ---------------------------------------------------------------------------------- fixtures
    def set_bars(self, symbol: str, bars: pd.DataFrame) -> None:
        """Serve ``bars`` for ``symbol`` (a ccxt symbol), adding an active market if new."""
        series = Series.from_frame(bars)
        with self._lock:
            self.markets.setdefault(symbol, MarketSpec(symbol))
            self.series[symbol] = series

    def add_market(self, spec: MarketSpec) -> None:
        """List ``spec`` (replacing a market of the same symbol)."""
        with self._lock:
            self.markets[spec.symbol] = spec

    def set_ticker(self, symbol: str, **fields: object) -> None:
        """Override ticker fields (the exchange's own names) of ``symbol``."""
        with self._lock:
            self.ticker_overrides.setdefault(symbol, {}).update(fields)

    def served_bars(self, symbol: str) -> pd.DataFrame:
        """The fixture bars of ``symbol`` as a frame (``timestamp`` UTC ms and the five float64 columns)."""
        series = self.series[symbol]
        frame = pd.DataFrame(series.values, columns=["open", "high", "low", "close", "volume"])
        frame.insert(0, "timestamp", pd.to_datetime(series.open_ms, unit="ms", utc=True).as_unit("ms"))
        return frame

    # -------------------------------------------------------------------------------------- faults
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
            Only requests for this market (its ccxt symbol).
        path : str, optional
            Only requests to this path.
        stall_s : float
            How long a ``Fault.STALL`` holds the request, in seconds.

        Rules are tried in the order they were injected; the first matching one with requests left applies.
        """
        if not isinstance(fault, Fault):
            raise TypeError(f"`fault` must be a Fault, got {fault!r}")
        if times is not None and times < 1:
            raise ValueError(f"`times` must be >= 1 or None, got {times}")
        with self._lock:
            self._rules.append(_FaultRule(fault, times, symbol, path, stall_s))

    def clear_faults(self) -> None:
        """Forget every injected fault."""
        with self._lock:
            self._rules.clear()

    # ------------------------------------------------------------------------------------ the log
    def request_count(self, path: str | None = None, symbol: str | None = None) -> int:
        """Count requests: all, to ``path``, and/or for ``symbol`` (a ccxt symbol)."""
        with self._lock:
            return sum(1 for r in self._log if path in (None, r.path) and symbol in (None, r.symbol))

    def candle_requests(self, symbol: str | None = None) -> int:
        """Count candle requests, of every market or of ``symbol``."""
        with self._lock:
            return sum(1 for r in self._log if self.is_candle_path(r.path) and symbol in (None, r.symbol))

    @property
    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """Every request received, in order, as ``(path, query parameters)``."""
        with self._lock:
            return [(r.path, dict(r.params)) for r in self._log]

    @property
    def request_log(self) -> list[LoggedRequest]:
        """Every request received, in order, with its headers and market."""
        with self._lock:
            return list(self._log)

    def reset_counts(self) -> None:
        """Empty the request log (and so every count)."""
        with self._lock:
            self._log.clear()

    # ---------------------------------------------------------------------------------- candles
    def now_ms(self) -> int:
        """The server's clock in ms since the epoch."""
        now = self.server_time if self.server_time is not None else pd.Timestamp.now(tz="UTC")
        return int(now.value // 1_000_000)

    def select_rows(
        self,
        symbol: str,
        *,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
        latest: bool,
        fault: Fault | None,
    ) -> list[list[Any]]:
        """Rows ``[open_ms, open, high, low, close, volume]`` of ``symbol`` opening in ``[start_ms, end_ms]``.

        At most ``limit`` rows, oldest first: the first ``limit`` of the range, or its last ``limit`` when
        ``latest``. ``None`` bounds are open. A row fault of the request alters the selected rows;
        ``IGNORE_START_TIME`` drops ``start_ms`` and takes the first rows of the series.
        """
        series = self.series.get(symbol)
        if series is None:
            return []
        if fault is Fault.IGNORE_START_TIME:
            start_ms, latest = None, False
        lo = 0 if start_ms is None else int(np.searchsorted(series.open_ms, start_ms, "left"))
        hi = len(series.open_ms) if end_ms is None else int(np.searchsorted(series.open_ms, end_ms, "right"))
        lo, hi = (max(lo, hi - limit), hi) if latest else (lo, min(hi, lo + limit))
        rows: list[list[Any]] = [
            [int(t), *map(float, v)] for t, v in zip(series.open_ms[lo:hi], series.values[lo:hi], strict=True)
        ]
        return _apply_row_fault(fault, rows) if fault in ROW_FAULTS else rows

    def last_close_and_volume(self, symbol: str) -> tuple[float, float]:
        """Close and volume of the newest fixture bar of ``symbol`` (0, 0 without bars): the ticker's source."""
        series = self.series.get(symbol)
        if series is None or not len(series.open_ms):
            return 0.0, 0.0
        return float(series.values[-1, 3]), float(series.values[-1, 4])

    # ---------------------------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._httpd is None:
            raise RuntimeError(f"the {self.name} server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        self._stop.clear()
        handler = type("_BoundHandler", (_Handler,), {"exchange": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name=f"{self.name}-server", daemon=True
        )
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------- internals
    def _record(self, path: str, params: dict[str, str], headers: dict[str, str]) -> _FaultRule | None:
        """Log the request and claim the fault rule that applies to it, if any."""
        with self._lock:
            symbol = self.symbol_of(path, params)
            self._log.append(LoggedRequest(path, params, headers, symbol))
            for rule in self._rules:
                if (
                    rule.remaining != 0
                    and rule.path in (None, path)
                    and rule.symbol in (None, symbol)
                    and (rule.fault not in _CANDLE_ONLY_FAULTS or self.is_candle_path(path))
                ):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None

    def _respond(self, path: str, params: dict[str, str], fault: Fault | None) -> tuple[int, Any]:
        with self._lock:
            return self.answer(path, params, fault)


def daily_bars(n_bars: int, *, seed: int, last_open: pd.Timestamp, price: float = 100.0) -> pd.DataFrame:
    """Plausible fixture bars: fat-tailed returns, consistent OHLC, awkward decimals; the last opens at ``last_open``.

    Columns ``timestamp`` (UTC ms, daily), ``open``, ``high``, ``low``, ``close``, ``volume`` (float64).
    """
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(0.03 * rng.standard_t(df=4, size=n_bars)))
    open_ = np.r_[price, close[:-1]]
    spread = np.abs(rng.normal(0.0, 0.01, size=(2, n_bars)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(end=last_open, periods=n_bars, freq="D", tz="UTC").as_unit("ms"),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread[0]),
            "low": np.minimum(open_, close) * (1 - spread[1]),
            "close": close,
            "volume": rng.lognormal(mean=8.0, sigma=0.5, size=n_bars),
        }
    )


def _apply_row_fault(fault: Fault, rows: list[list[Any]]) -> list[list[Any]]:
    """``rows`` altered as ``fault`` says, at the middle row; an empty page is left alone."""
    if not rows:
        return rows
    i = len(rows) // 2
    if fault is Fault.NULL_VALUES:
        rows[i][1] = rows[i][4] = None
    elif fault is Fault.NEGATIVE_PRICE:
        rows[i][4] = -rows[i][4]
    elif fault is Fault.HIGH_BELOW_LOW:
        rows[i][2], rows[i][3] = rows[i][3], rows[i][2]
    elif fault is Fault.DUPLICATE_ROWS:
        rows.insert(i + 1, [*rows[i][:5], rows[i][5] * 1.01])
    elif fault is Fault.UNSORTED_ROWS:
        rows.reverse()
    return rows


def number(value: float | None) -> str | None:
    """A price or size as exchanges send it: a decimal string (``None`` stays null)."""
    return None if value is None else repr(float(value))


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection; ``exchange`` is bound by :meth:`LoopbackExchange.start`."""

    exchange: LoopbackExchange
    protocol_version = "HTTP/1.1"
    # Without this every answer waits ~40 ms on Nagle + delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches on)
        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query).items()}
        headers = {k: v for k, v in self.headers.items()}
        rule = self.exchange._record(url.path, params, headers)
        fault = rule.fault if rule is not None else None
        if fault in _GATEWAY_PAGES:
            status, page = _GATEWAY_PAGES[fault]
            self._send(status, page + self._echo(headers).encode(), "text/html")
            return
        if fault is Fault.STALL and self.exchange._stop.wait(rule.stall_s):
            # Woken by the server stopping: shutdown never waits on a stalled request.
            return
        if fault is Fault.NOT_JSON:
            self._send(HTTPStatus.OK, b"<html><body>upstream proxy page</body></html>", "text/html")
            return
        if fault is Fault.RATE_LIMITED:
            status, payload = HTTPStatus.TOO_MANY_REQUESTS, self.exchange.error_payload(429, "Too many requests.")
        else:
            status, payload = self.exchange._respond(url.path, params, fault)
        if status >= 400 and self.exchange.echo_headers and isinstance(payload, dict):
            payload = {**payload, "request_headers": headers}
        body = json.dumps(payload).encode()
        if fault is Fault.TRUNCATED_JSON:
            body = body[: max(1, len(body) // 2)]
        self._send(status, body)

    def _echo(self, headers: Mapping[str, str]) -> str:
        return f"<pre>{json.dumps(headers)}</pre>" if self.exchange.echo_headers else ""

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
        """Keep test output quiet; the server's request log says what happened."""
