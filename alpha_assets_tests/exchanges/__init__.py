"""Loopback servers speaking real exchanges' public REST formats and paging rules, one module per exchange."""

from __future__ import annotations

from alpha_assets_tests.exchanges.binance import BinanceServer
from alpha_assets_tests.exchanges.bybit import BybitServer
from alpha_assets_tests.exchanges.coinbase import CoinbaseServer
from alpha_assets_tests.exchanges.common import LoopbackExchange
from alpha_assets_tests.exchanges.kraken import KrakenServer
from alpha_assets_tests.exchanges.okx import OkxServer

#: The server class of each ccxt exchange id.
SERVERS: dict[str, type[LoopbackExchange]] = {
    server.name: server for server in (BinanceServer, BybitServer, CoinbaseServer, KrakenServer, OkxServer)
}
