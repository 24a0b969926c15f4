"""Coinbase Advanced Trade's public REST API on 127.0.0.1: products (markets and tickers) and candles (spot).

Paging rule of ``GET /api/v3/brokerage/market/products/{product_id}/candles``: ``start`` and ``end`` (seconds,
both inclusive) and ``granularity`` are required; a range of more than 350 candles is refused with HTTP 400;
candles come newest first. ccxt asks for the fixed window ``[since, since + 300 days]``, so a window before a
listing is answered with an empty list. The products list carries the 24 h figures ccxt reads as tickers.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from alpha_assets_tests.exchanges.common import Fault, LoopbackExchange, MarketSpec, number

PRODUCTS_PATH = "/api/v3/brokerage/market/products"
CANDLES_PREFIX = PRODUCTS_PATH + "/"
MAX_CANDLES_PER_CALL = 350
_GRANULARITY_S = {"ONE_DAY": 86_400}


def market_id(spec: MarketSpec) -> str:
    """Coinbase's product id: ``BTC-USD``."""
    return f"{spec.base}-{spec.quote}"


class CoinbaseServer(LoopbackExchange):
    """Coinbase spot, as served by ``api.coinbase.com/api/v3/brokerage/market``."""

    name = "coinbase"

    def is_candle_path(self, path: str) -> bool:
        return path.startswith(CANDLES_PREFIX) and path.endswith("/candles")

    def symbol_of(self, path: str, params: Mapping[str, str]) -> str | None:
        if not self.is_candle_path(path):
            return None
        wanted = path[len(CANDLES_PREFIX) : -len("/candles")]
        return next((s for s, spec in self.markets.items() if market_id(spec) == wanted), wanted)

    def error_payload(self, status: int, message: str) -> Any:
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            return {"errors": [{"id": "rate_limit_exceeded", "message": message}]}
        return {"error": "INVALID_ARGUMENT", "error_details": message, "message": message}

    def answer(self, path: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        if path == PRODUCTS_PATH:
            wanted = params.get("product_type", "SPOT")
            products = [self._product(s, spec) for s, spec in self.markets.items() if not spec.is_swap]
            return HTTPStatus.OK, {"products": products if wanted == "SPOT" else [], "num_products": len(products)}
        symbol = self.symbol_of(path, params)
        if symbol is not None:
            return self._candles(symbol, params, fault)
        return HTTPStatus.NOT_FOUND, {"error": "NOT_FOUND", "message": f"unknown path {path}"}

    def _product(self, symbol: str, spec: MarketSpec) -> dict[str, object]:
        close, volume = self.last_close_and_volume(symbol)
        product: dict[str, object] = {
            "product_id": market_id(spec),
            "price": number(close),
            "price_percentage_change_24h": "0",
            "volume_24h": number(volume),
            "volume_percentage_change_24h": "0",
            "base_increment": number(spec.lot_size),
            "quote_increment": number(spec.tick_size),
            "quote_min_size": number(spec.min_notional),
            "quote_max_size": "150000000",
            "base_min_size": number(spec.lot_size),
            "base_max_size": "3400",
            "base_name": spec.base,
            "quote_name": spec.quote,
            "watched": False,
            "is_disabled": False,
            "new": False,
            "status": "online" if spec.active else "offline",
            "cancel_only": False,
            "limit_only": False,
            "post_only": False,
            "trading_disabled": not spec.active,
            "auction_mode": False,
            "product_type": "SPOT",
            "quote_currency_id": spec.quote,
            "base_currency_id": spec.base,
            "fcm_trading_session_details": None,
            "mid_market_price": "",
            "alias": "",
            "alias_to": [],
            "base_display_symbol": spec.base,
            "quote_display_symbol": spec.quote,
            "view_only": False,
            "price_increment": number(spec.tick_size),
            "display_name": f"{spec.base}-{spec.quote}",
            "product_venue": "CBE",
            "approximate_quote_24h_volume": number(close * volume),
        }
        product.update(self.ticker_overrides.get(symbol, {}))
        return product

    def _candles(self, symbol: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        if symbol not in self.markets:
            return HTTPStatus.NOT_FOUND, {"error": "NOT_FOUND", "message": "ProductID is invalid"}
        step = _GRANULARITY_S.get(params.get("granularity", ""))
        if step is None or "start" not in params or "end" not in params:
            return HTTPStatus.BAD_REQUEST, self.error_payload(400, "start, end and granularity ONE_DAY are required")
        start, end = int(params["start"]), int(params["end"])
        if (end - start) // step > MAX_CANDLES_PER_CALL:
            message = f"number of candles requested should be less than {MAX_CANDLES_PER_CALL}"
            return HTTPStatus.BAD_REQUEST, self.error_payload(400, message)
        rows = self.select_rows(
            symbol, start_ms=start * 1000, end_ms=end * 1000, limit=MAX_CANDLES_PER_CALL, latest=False, fault=fault
        )
        # Newest first, as Coinbase sends them (a row fault reversing the page sends them oldest first).
        return HTTPStatus.OK, {"candles": [_candle(row) for row in reversed(rows)]}


def _candle(row: list[Any]) -> dict[str, str | None]:
    open_ms, open_, high, low, close, volume = row
    return {
        "start": str(open_ms // 1000),
        "low": number(low),
        "high": number(high),
        "open": number(open_),
        "close": number(close),
        "volume": number(volume),
    }
