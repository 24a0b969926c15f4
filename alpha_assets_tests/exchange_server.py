"""The Binance-format loopback server under its historical name, and the ``exchange_server`` pytest fixture.

The servers live in :mod:`alpha_assets_tests.exchanges` (one module per exchange on a shared core); this module
keeps the names the older tests import: ``ExchangeServer`` is :class:`~alpha_assets_tests.exchanges.binance.
BinanceServer`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alpha_assets_tests.exchanges.binance import (
    EXCHANGE_INFO_PATH,
    KLINES_PATH,
    MAX_KLINES_PER_CALL,
    PING_PATH,
    TICKER_PATH,
    TIME_PATH,
    BinanceServer,
)
from alpha_assets_tests.exchanges.common import DAY_MS, Fault, MarketSpec

ExchangeServer = BinanceServer

__all__ = [
    "DAY_MS",
    "EXCHANGE_INFO_PATH",
    "KLINES_PATH",
    "MAX_KLINES_PER_CALL",
    "PING_PATH",
    "TICKER_PATH",
    "TIME_PATH",
    "ExchangeServer",
    "Fault",
    "MarketSpec",
    "exchange_server",
]


@pytest.fixture
def exchange_server() -> Iterator[ExchangeServer]:
    """A started Binance-format server with no markets, stopped after the test."""
    with ExchangeServer() as server:
        yield server
