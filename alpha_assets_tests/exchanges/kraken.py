"""Kraken's public REST API on 127.0.0.1: ``AssetPairs``, ``Ticker`` and ``OHLC`` (spot only).

Paging rule of ``GET /0/public/OHLC``: whatever ``since`` says, only the 720 most recent bars of the interval
exist (the forming one included); of those, the ones after ``since`` (exclusive, in seconds) are served,
oldest first, with ``last`` the time of the newest. History older than 720 days cannot be had from Kraken.
Answers are wrapped as ``{"error": [], "result": {...}}``; Kraken's own names for assets (``XXBT``, ``ZUSD``)
are used for bitcoin and the dollar, as on the real exchange.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from alpha_assets_tests.exchanges.common import Fault, LoopbackExchange, MarketSpec, number

ASSET_PAIRS_PATH = "/0/public/AssetPairs"
TICKER_PATH = "/0/public/Ticker"
OHLC_PATH = "/0/public/OHLC"
#: Bars of one interval Kraken keeps.
MAX_OHLC_BARS = 720
#: Kraken's asset codes for the currencies whose code differs from ccxt's.
_ASSET_CODES = {"BTC": "XXBT", "ETH": "XETH", "USD": "ZUSD", "EUR": "ZEUR"}


def market_id(spec: MarketSpec) -> str:
    """Kraken's pair id: ``XXBTZUSD`` for BTC/USD, ``SOLUSD`` for SOL/USD."""
    base, quote = _ASSET_CODES.get(spec.base, spec.base), _ASSET_CODES.get(spec.quote, spec.quote)
    return base + quote if len(base) == 4 and len(quote) == 4 else spec.base + spec.quote


class KrakenServer(LoopbackExchange):
    """Kraken spot, as served by ``api.kraken.com/0/public``."""

    name = "kraken"
    candle_paths = frozenset({OHLC_PATH})

    def symbol_of(self, path: str, params: Mapping[str, str]) -> str | None:
        wanted = params.get("pair")
        return next((s for s, spec in self.markets.items() if market_id(spec) == wanted), wanted)

    def error_payload(self, status: int, message: str) -> Any:
        return {"error": ["EAPI:Rate limit exceeded" if status == HTTPStatus.TOO_MANY_REQUESTS else message]}

    def answer(self, path: str, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        spot = {s: spec for s, spec in self.markets.items() if not spec.is_swap}
        if path == ASSET_PAIRS_PATH:
            return HTTPStatus.OK, _ok({market_id(spec): _asset_pair(spec) for spec in spot.values()})
        if path == TICKER_PATH:
            return HTTPStatus.OK, _ok({market_id(spec): self._ticker(s) for s, spec in spot.items()})
        if path == OHLC_PATH:
            return self._ohlc(params, fault)
        return HTTPStatus.NOT_FOUND, {"error": [f"EGeneral:Unknown method {path}"]}

    def _ticker(self, symbol: str) -> dict[str, object]:
        close, volume = self.last_close_and_volume(symbol)
        price, size = number(close), number(volume)
        ticker: dict[str, object] = {
            "a": [price, "1", "1.000"],
            "b": [price, "1", "1.000"],
            "c": [price, "0.1"],
            "v": [size, size],
            "p": [price, price],
            "t": [1000, 2000],
            "l": [price, price],
            "h": [price, price],
            "o": price,
        }
        ticker.update(self.ticker_overrides.get(symbol, {}))
        return ticker

    def _ohlc(self, params: Mapping[str, str], fault: Fault | None) -> tuple[int, Any]:
        symbol = self.symbol_of(OHLC_PATH, params)
        if symbol not in self.markets:
            return HTTPStatus.OK, {"error": ["EQuery:Unknown asset pair"]}
        if params.get("interval") != "1440":
            return HTTPStatus.OK, {"error": ["EGeneral:Invalid arguments:interval (only 1440 is served)"]}
        series = self.series.get(symbol)
        kept_from = int(series.open_ms[-MAX_OHLC_BARS:][0]) if series is not None and len(series.open_ms) else None
        after = int(params["since"]) * 1000 + 1 if "since" in params else None
        start = kept_from if after is None or kept_from is None else max(after, kept_from)
        rows = self.select_rows(symbol, start_ms=start, end_ms=None, limit=MAX_OHLC_BARS, latest=False, fault=fault)
        if fault is Fault.IGNORE_START_TIME and kept_from is not None:
            rows = [row for row in rows if row[0] >= kept_from]
        bars = [_bar(row) for row in rows]
        last = bars[-1][0] if bars else int(params.get("since", 0))
        return HTTPStatus.OK, _ok({market_id(self.markets[symbol]): bars, "last": last})


def _ok(result: dict[str, Any]) -> dict[str, Any]:
    return {"error": [], "result": result}


def _bar(row: list[Any]) -> list[object]:
    """``[time_s, open, high, low, close, vwap, volume, count]``, prices and volumes as strings."""
    open_ms, *values = row
    return [open_ms // 1000, *map(number, values[:4]), number(values[3]), number(values[4]), 1000]


def _asset_pair(spec: MarketSpec) -> dict[str, object]:
    base, quote = _ASSET_CODES.get(spec.base, spec.base), _ASSET_CODES.get(spec.quote, spec.quote)
    pair_decimals = max(0, round(-math.log10(spec.tick_size)))
    lot_decimals = max(0, round(-math.log10(spec.lot_size)))
    return {
        "altname": spec.base + spec.quote,
        "wsname": f"{spec.base}/{spec.quote}",
        "aclass_base": "currency",
        "base": base,
        "aclass_quote": "currency",
        "quote": quote,
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": pair_decimals,
        "lot_decimals": lot_decimals,
        "lot_multiplier": 1,
        "leverage_buy": [],
        "leverage_sell": [],
        "fees": [[0, 0.4], [10000, 0.35]],
        "fees_maker": [[0, 0.25], [10000, 0.2]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": number(spec.lot_size),
        "costmin": number(spec.min_notional),
        "tick_size": number(spec.tick_size),
        "status": "online" if spec.active else "cancel_only",
    }
