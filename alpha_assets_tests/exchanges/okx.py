"""OKX's v5 public REST API on 127.0.0.1: instruments, tickers and candles (spot and linear swaps).

Paging rules, as OKX documents them: candles come newest first, at most 300 a request (default 100);
``after`` returns records older than its timestamp, ``before`` records newer than its timestamp (both
exclusive), and the newest ``limit`` records of that range are served. ``/market/candles`` holds only the
most recent 1,440 bars; older ones are served by ``/market/history-candles`` (ccxt switches to it when
``since`` is more than 1,439 bars back). ccxt asks for the fixed window ``(since - 1, since + limit days)``, so a
window before a listing is answered with an empty list. Every answer is wrapped as
``{"code": "0", "msg": "", "data": [...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from alpha_assets_tests.exchanges.common import DAY_MS, Fault, LoopbackExchange, MarketSpec, number

INSTRUMENTS_PATH = "/api/v5/public/instruments"
TICKERS_PATH = "/api/v5/market/tickers"
CANDLES_PATH = "/api/v5/market/candles"
HISTORY_CANDLES_PATH = "/api/v5/market/history-candles"
MAX_CANDLES_PER_CALL = 300
DEFAULT_CANDLES_PER_CALL = 100
#: ``/market/candles`` serves only this many of the most recent bars.
RECENT_CANDLES = 1440


def market_id(spec: MarketSpec) -> str:
    """OKX's instrument id: ``BTC-USDT`` (spot) or ``BTC-USDT-SWAP``."""
    return f"{spec.base}-{spec.quote}" + ("-SWAP" if spec.is_swap else "")


class OkxServer(LoopbackExchange):
    """OKX spot and USDT-margined perpetual swaps, as served by ``www.okx.com/api/v5``."""

    name = "okx"
    candle_paths = frozenset({CANDLES_PATH, HISTORY_CANDLES_PATH})

    def symbol_of(self, path: str, params: Mapping[str, str]) -> str | None:
        wanted = params.get("instId")
        return next((s for s, spec in self.markets.items() if market_id(spec) == wanted), wanted)

    def error_payload(self, status: int, message: str) -> Any:
        return {"code": "50011" if status == HTTPStatus.TOO_MANY_REQUESTS else "50000", "msg": message, "data": []}

    def answer(self, path: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        kind = params.get("instType")
        if path == INSTRUMENTS_PATH:
            return HTTPStatus.OK, _ok([_instrument(spec) for spec in self._of_type(kind).values()])
        if path == TICKERS_PATH:
            return HTTPStatus.OK, _ok([self._ticker(s, spec) for s, spec in self._of_type(kind).items()])
        if path in self.candle_paths:
            return self._candles(path, params, fault)
        return HTTPStatus.NOT_FOUND, {"code": "50000", "msg": f"unknown path {path}", "data": []}

    def _of_type(self, kind: str | None) -> dict[str, MarketSpec]:
        return {s: spec for s, spec in self.markets.items() if ("SWAP" if spec.is_swap else "SPOT") == kind}

    def _ticker(self, symbol: str, spec: MarketSpec) -> dict[str, object]:
        close, volume = self.last_close_and_volume(symbol)
        # vol24h: base units for spot, contracts for swaps; volCcy24h: quote units for spot, base for swaps.
        contracts = volume / spec.contract_size
        ticker: dict[str, object] = {
            "instType": "SWAP" if spec.is_swap else "SPOT",
            "instId": market_id(spec),
            "last": number(close),
            "lastSz": "1",
            "askPx": number(close),
            "askSz": "1",
            "bidPx": number(close),
            "bidSz": "1",
            "open24h": number(close),
            "high24h": number(close),
            "low24h": number(close),
            "vol24h": number(contracts if spec.is_swap else volume),
            "volCcy24h": number(volume if spec.is_swap else close * volume),
            "ts": str(self.now_ms()),
            "sodUtc0": number(close),
            "sodUtc8": number(close),
        }
        ticker.update(self.ticker_overrides.get(symbol, {}))
        return ticker

    def _candles(self, path: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        symbol = self.symbol_of(path, params)
        if symbol not in self.markets:
            return HTTPStatus.OK, {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
        if params.get("bar") != "1Dutc":
            return HTTPStatus.OK, {"code": "51000", "msg": "Parameter bar error: only 1Dutc is served", "data": []}
        limit = min(int(params.get("limit", DEFAULT_CANDLES_PER_CALL)), MAX_CANDLES_PER_CALL)
        newer_than = int(params["before"]) + 1 if "before" in params else None
        older_than = int(params["after"]) - 1 if "after" in params else None
        series = self.series.get(symbol)
        if path == CANDLES_PATH and series is not None and len(series.open_ms) > RECENT_CANDLES:
            oldest_recent = int(series.open_ms[-RECENT_CANDLES])
            newer_than = oldest_recent if newer_than is None else max(newer_than, oldest_recent)
        rows = self.select_rows(symbol, start_ms=newer_than, end_ms=older_than, limit=limit, latest=True, fault=fault)
        today = self.now_ms() // DAY_MS * DAY_MS
        # Newest first, as OKX sends them (a row fault reversing the page sends them oldest first).
        spec = self.markets[symbol]
        return HTTPStatus.OK, _ok([_candle(row, today, spec) for row in reversed(rows)])


def _ok(data: list[Any]) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


def _candle(row: list[Any], today_ms: int, spec: MarketSpec) -> list[str | None]:
    """``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``, all strings; confirm 0 for the forming bar.

    ``vol`` is in base units for spot and in contracts for swaps; ``volCcy`` in quote units for spot and in
    base units for swaps (what ccxt reads as a swap's volume).
    """
    open_ms, *prices, volume = row
    quote_volume = (prices[3] or 0.0) * (volume or 0.0)
    confirm = "0" if open_ms >= today_ms else "1"
    if spec.is_swap:
        contracts = None if volume is None else volume / spec.contract_size
        amounts = [number(contracts), number(volume)]
    else:
        amounts = [number(volume), number(quote_volume)]
    return [str(open_ms), *map(number, prices), *amounts, number(quote_volume), confirm]


def _instrument(spec: MarketSpec) -> dict[str, object]:
    swap = spec.is_swap
    return {
        "alias": "",
        "baseCcy": "" if swap else spec.base,
        "category": "1",
        "ctMult": "1" if swap else "",
        "ctType": "linear" if swap else "",
        "ctVal": number(spec.contract_size) if swap else "",
        "ctValCcy": spec.base if swap else "",
        "expTime": "",
        "instFamily": f"{spec.base}-{spec.quote}" if swap else "",
        "instId": market_id(spec),
        "instType": "SWAP" if swap else "SPOT",
        "lever": "100" if swap else "10",
        "listTime": "1548133413000",
        "lotSz": number(1.0 if swap else spec.lot_size),
        "maxLmtSz": "10000000",
        "maxMktSz": "1000000",
        "minSz": number(1.0 if swap else spec.lot_size),
        "optType": "",
        "quoteCcy": "" if swap else spec.quote,
        "settleCcy": spec.settle or "",
        "state": "live" if spec.active else "suspend",
        "stk": "",
        "tickSz": number(spec.tick_size),
        "uly": f"{spec.base}-{spec.quote}" if swap else "",
    }
