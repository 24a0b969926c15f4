"""Bybit's v5 public REST API on 127.0.0.1: instruments, tickers and klines (spot and linear perpetuals).

Paging rules of ``GET /v5/market/kline``: at most 1,000 rows (default 200), always sent newest first; with
``start`` alone the ``limit`` bars from ``start`` on (inclusive), otherwise the most recent ``limit`` bars up
to ``end`` (default: now). Spot and linear markets share ids (``BTCUSDT``) and are told apart by
``category``. Answers are wrapped as ``{"retCode": 0, "retMsg": "OK", "result": {...}, "time": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from alpha_assets_tests.exchanges.common import Fault, LoopbackExchange, MarketSpec, number

INSTRUMENTS_PATH = "/v5/market/instruments-info"
TICKERS_PATH = "/v5/market/tickers"
KLINE_PATH = "/v5/market/kline"
MAX_KLINES_PER_CALL = 1000
DEFAULT_KLINES_PER_CALL = 200


def market_id(spec: MarketSpec) -> str:
    """Bybit's symbol, the same for spot and linear: ``BTCUSDT``."""
    return spec.base + spec.quote


def category(spec: MarketSpec) -> str:
    """``spot`` or ``linear``."""
    return "linear" if spec.is_swap else "spot"


class BybitServer(LoopbackExchange):
    """Bybit spot and USDT perpetuals, as served by ``api.bybit.com/v5``."""

    name = "bybit"
    candle_paths = frozenset({KLINE_PATH})

    def symbol_of(self, path: str, params: Mapping[str, str]) -> str | None:
        wanted = params.get("symbol")
        return next(
            (
                s
                for s, spec in self.markets.items()
                if market_id(spec) == wanted and category(spec) == params.get("category")
            ),
            wanted,
        )

    def error_payload(self, status: int, message: str) -> Any:
        code = 10006 if status == HTTPStatus.TOO_MANY_REQUESTS else 10016
        return {"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {}, "time": self.now_ms()}

    def answer(self, path: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        kind = params.get("category")
        listed = {s: spec for s, spec in self.markets.items() if category(spec) == kind}
        if path == INSTRUMENTS_PATH:
            # The pre-launch listing ccxt asks for next to the linear one is empty here.
            specs = [] if params.get("status") == "PreLaunch" else list(listed.values())
            return HTTPStatus.OK, self._ok({"category": kind, "list": [_instrument(spec) for spec in specs]})
        if path == TICKERS_PATH:
            return HTTPStatus.OK, self._ok({"category": kind, "list": [self._ticker(s, p) for s, p in listed.items()]})
        if path == KLINE_PATH:
            return self._klines(params, fault)
        return HTTPStatus.NOT_FOUND, self.error_payload(404, f"unknown path {path}")

    def _ok(self, result: dict[str, Any]) -> dict[str, Any]:
        return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": self.now_ms()}

    def _ticker(self, symbol: str, spec: MarketSpec) -> dict[str, object]:
        close, volume = self.last_close_and_volume(symbol)
        price = number(close)
        ticker: dict[str, object] = {
            "symbol": market_id(spec),
            "bid1Price": price,
            "bid1Size": "1",
            "ask1Price": price,
            "ask1Size": "1",
            "lastPrice": price,
            "prevPrice24h": price,
            "price24hPcnt": "0",
            "highPrice24h": price,
            "lowPrice24h": price,
            "turnover24h": number(close * volume),
            "volume24h": number(volume),
        }
        if spec.is_swap:
            ticker.update(
                markPrice=price,
                indexPrice=price,
                openInterest="1000",
                openInterestValue=number(1000 * close),
                fundingRate="0.0001",
                nextFundingTime=str(self.now_ms()),
            )
        ticker.update(self.ticker_overrides.get(symbol, {}))
        return ticker

    def _klines(self, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        symbol = self.symbol_of(KLINE_PATH, params)
        if symbol not in self.markets:
            return HTTPStatus.OK, self.error_payload(400, "Not supported symbols")
        if params.get("interval") != "D":
            return HTTPStatus.OK, self.error_payload(400, "Invalid period: only D is served")
        limit = min(int(params.get("limit", DEFAULT_KLINES_PER_CALL)), MAX_KLINES_PER_CALL)
        start = int(params["start"]) if "start" in params else None
        end = int(params["end"]) if "end" in params else self.now_ms()
        forward = start is not None and "end" not in params
        rows = self.select_rows(symbol, start_ms=start, end_ms=end, limit=limit, latest=not forward, fault=fault)
        spec = self.markets[symbol]
        # Newest first, as Bybit sends them (a row fault reversing the page sends them oldest first).
        listed = [_kline(row) for row in reversed(rows)]
        return HTTPStatus.OK, self._ok({"symbol": market_id(spec), "category": category(spec), "list": listed})


def _kline(row: list[Any]) -> list[str | None]:
    """``[startTime, open, high, low, close, volume, turnover]``, all strings."""
    open_ms, *values = row
    return [str(open_ms), *map(number, values), number((values[3] or 0.0) * (values[4] or 0.0))]


def _instrument(spec: MarketSpec) -> dict[str, object]:
    if not spec.is_swap:
        return {
            "symbol": market_id(spec),
            "baseCoin": spec.base,
            "quoteCoin": spec.quote,
            "innovation": "0",
            "status": "Trading" if spec.active else "PreLaunch",
            "marginTrading": "none",
            "stTag": "0",
            "lotSizeFilter": {
                "basePrecision": number(spec.lot_size),
                "quotePrecision": "0.00000001",
                "minOrderQty": number(spec.lot_size),
                "maxOrderQty": "10000",
                "minOrderAmt": number(spec.min_notional),
                "maxOrderAmt": "2000000",
            },
            "priceFilter": {"tickSize": number(spec.tick_size)},
        }
    return {
        "symbol": market_id(spec),
        "contractType": "LinearPerpetual",
        "status": "Trading" if spec.active else "Closed",
        "baseCoin": spec.base,
        "quoteCoin": spec.quote,
        "settleCoin": spec.settle,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {
            "minPrice": number(spec.tick_size),
            "maxPrice": "1999999.80",
            "tickSize": number(spec.tick_size),
        },
        "lotSizeFilter": {
            "maxOrderQty": "1190.000",
            "minOrderQty": number(spec.lot_size),
            "qtyStep": number(spec.lot_size),
            "postOnlyMaxOrderQty": "1190.000",
            "minNotionalValue": number(spec.min_notional),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "copyTrading": "both",
    }
