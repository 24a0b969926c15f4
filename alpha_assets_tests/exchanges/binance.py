"""Binance's REST APIs on 127.0.0.1: ``exchangeInfo``, ``ticker/24hr`` and ``klines`` as ccxt reads them.

Spot under ``/api/v3``, USD-M perpetual swaps under ``/fapi/v1``. Paging rules of ``klines``: at most 1,000 rows
(spot) or 1,500 (futures), default 500, oldest first; with ``startTime`` the first rows opening at or after it,
without it the most recent ones (up to ``endTime`` when given).
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from alpha_assets_tests.exchanges.common import DAY_MS, Fault, LoopbackExchange, MarketSpec

#: Binance answers at most this many klines per call.
MAX_KLINES_PER_CALL = 1000
DEFAULT_KLINES_PER_CALL = 500
KLINES_PATH = "/api/v3/klines"
TICKER_PATH = "/api/v3/ticker/24hr"
EXCHANGE_INFO_PATH = "/api/v3/exchangeInfo"
PING_PATH = "/api/v3/ping"
TIME_PATH = "/api/v3/time"
FUTURES_KLINES_PATH = "/fapi/v1/klines"
FUTURES_TICKER_PATH = "/fapi/v1/ticker/24hr"
FUTURES_EXCHANGE_INFO_PATH = "/fapi/v1/exchangeInfo"
MAX_FUTURES_KLINES_PER_CALL = 1500


def market_id(spec: MarketSpec) -> str:
    """Binance's own name of a spot market (``BTCUSDT``)."""
    return spec.base + spec.quote


class BinanceServer(LoopbackExchange):
    """Binance spot (``api.binance.com/api/v3``) and USD-M perpetuals (``fapi.binance.com/fapi/v1``)."""

    name = "binance"
    candle_paths = frozenset({KLINES_PATH, FUTURES_KLINES_PATH})

    def symbol_of(self, path: str, params: Mapping[str, str]) -> str | None:
        wanted, swap = params.get("symbol"), path.startswith("/fapi/")
        return next(
            (s for s, spec in self.markets.items() if market_id(spec) == wanted and spec.is_swap == swap), wanted
        )

    def error_payload(self, status: int, message: str) -> Any:
        return {"code": -1003 if status == HTTPStatus.TOO_MANY_REQUESTS else -1000, "msg": message}

    def answer(self, path: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        if path in (EXCHANGE_INFO_PATH, FUTURES_EXCHANGE_INFO_PATH):
            return HTTPStatus.OK, self._exchange_info(swap=path == FUTURES_EXCHANGE_INFO_PATH)
        if path in (TICKER_PATH, FUTURES_TICKER_PATH):
            return self._tickers(params.get("symbol"), swap=path == FUTURES_TICKER_PATH)
        if path in self.candle_paths:
            return self._klines(path, params, fault)
        if path == PING_PATH:
            return HTTPStatus.OK, {}
        if path == TIME_PATH:
            return HTTPStatus.OK, {"serverTime": self.now_ms()}
        return HTTPStatus.NOT_FOUND, {"code": -1000, "msg": f"unknown path {path}"}

    def _exchange_info(self, *, swap: bool) -> dict[str, object]:
        render = _perpetual_info if swap else _symbol_info
        return {
            "timezone": "UTC",
            "serverTime": self.now_ms(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
            "exchangeFilters": [],
            "symbols": [render(spec) for spec in self.markets.values() if spec.is_swap == swap],
        }

    def _tickers(self, wanted: str | None, *, swap: bool) -> tuple[int, object]:
        specs = [
            (s, spec) for s, spec in self.markets.items() if wanted in (None, market_id(spec)) and spec.is_swap == swap
        ]
        if wanted is not None and not specs:
            return HTTPStatus.BAD_REQUEST, {"code": -1121, "msg": "Invalid symbol."}
        tickers = [self._ticker(symbol, spec) for symbol, spec in specs]
        return HTTPStatus.OK, tickers[0] if wanted is not None else tickers

    def _ticker(self, symbol: str, spec: MarketSpec) -> dict[str, object]:
        close, volume = self.last_close_and_volume(symbol)
        close_ms = self.now_ms()
        ticker: dict[str, object] = {
            "symbol": market_id(spec),
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
        ticker.update(self.ticker_overrides.get(symbol, {}))
        return ticker

    def _klines(self, path: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, object]:
        symbol = self.symbol_of(path, params)
        if symbol not in self.markets:
            return HTTPStatus.BAD_REQUEST, {"code": -1121, "msg": "Invalid symbol."}
        if params.get("interval") != "1d":
            return HTTPStatus.BAD_REQUEST, {"code": -1120, "msg": "Invalid interval: only 1d is served."}
        cap = MAX_FUTURES_KLINES_PER_CALL if path == FUTURES_KLINES_PATH else MAX_KLINES_PER_CALL
        limit = min(int(params.get("limit", DEFAULT_KLINES_PER_CALL)), cap)
        start = int(params["startTime"]) if "startTime" in params else None
        end = int(params["endTime"]) if "endTime" in params else None
        rows = self.select_rows(symbol, start_ms=start, end_ms=end, limit=limit, latest=start is None, fault=fault)
        return HTTPStatus.OK, [_kline(row) for row in rows]


def _kline(row: list[Any]) -> list[object]:
    """A Binance kline: open time, OHLCV as strings, close time, quote volume, trades, taker volumes."""
    open_ms, *values = row
    text = [None if v is None else str(v) for v in values]
    quote_volume = str((values[3] or 0.0) * (values[4] or 0.0))
    return [open_ms, *text, open_ms + DAY_MS - 1, quote_volume, 1000, text[4], quote_volume, "0"]


def _symbol_info(spec: MarketSpec) -> dict[str, object]:
    return {
        "symbol": market_id(spec),
        "status": "TRADING" if spec.active else "BREAK",
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


def _perpetual_info(spec: MarketSpec) -> dict[str, object]:
    """A USD-M perpetual of ``/fapi/v1/exchangeInfo``."""
    return {
        "symbol": market_id(spec),
        "pair": market_id(spec),
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING" if spec.active else "SETTLING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base,
        "quoteAsset": spec.quote,
        "marginAsset": spec.settle,
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": f"{spec.tick_size:.8f}",
                "maxPrice": "4529764",
                "tickSize": f"{spec.tick_size:.8f}",
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": f"{spec.lot_size:.8f}",
                "maxQty": "1000",
                "stepSize": f"{spec.lot_size:.8f}",
            },
            {"filterType": "MIN_NOTIONAL", "notional": f"{spec.min_notional:.8f}"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }
