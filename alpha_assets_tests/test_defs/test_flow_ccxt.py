"""flow_data with the ccxt source through Dagster, against a local Binance-format server on 127.0.0.1.

Counts the requests the server receives: the first run fetches each symbol's history in one page, a re-run on
the same day fetches no bar again, and the next day fetches exactly one new bar per symbol with one request.
The retry/pagination/malformed-row behaviour of the source itself is in test_sources/test_exchange.py.
"""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetCheckKey, AssetKey
from dagster._core.event_api import PartitionKeyFilter

from alpha_assets.defs import keys
from alpha_assets.defs.dataops.resources import SourceKind
from alpha_assets.defs.runner import run_flow_data, run_link
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.parquet import read_json
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets_tests.exchange_server import KLINES_PATH, ExchangeServer, Fault
from alpha_assets_tests.test_defs.conftest import CLOCK, NEXT_DAY_CLOCK, make_flow_env

PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT")


def _bars_until(now: str) -> dict[str, pd.DataFrame]:
    """Realistic daily bars of a few pairs, closed as of ``now`` (taken from the simulated exchange)."""
    simulated = SimulatedExchange(seed=3, now=pd.Timestamp(now))
    markets = {m.ccxt_symbol: m for m in simulated.load_markets()}
    start = pd.Timestamp("2024-06-01", tz="UTC")
    return {
        pair: simulated.fetch_daily_bars(markets[pair], since=start, until=pd.Timestamp(now).floor("D"))
        for pair in PAIRS
    }


@pytest.fixture(scope="module")
def ccxt_env(tmp_path_factory):
    env = make_flow_env(tmp_path_factory.mktemp("ccxt"))
    with ExchangeServer(_bars_until(CLOCK)) as server:
        yield env, server
    env.instance.dispose()


def _defs(env, server, clock):
    # One retry keeps a persistent server fault quick to give up on (backoff 0.5 s).
    return env.defs(clock=clock, source=SourceKind.CCXT, exchange="binance", base_url=server.base_url, max_retries=1)


def test_ccxt_flow_first_run_fetches_each_history_in_one_request(ccxt_env):
    env, server = ccxt_env
    run_flow_data(_defs(env, server, CLOCK), env.instance, env.paths, "CCXT_DAY_1", progress=lambda _: None)
    keys = [c["symbol_key"] for c in read_json(env.paths.candidates_file("CCXT_DAY_1"))["candidates"]]
    assert sorted(keys) == sorted("BINANCE_" + pair.replace("/", "") for pair in PAIRS)
    assert server.request_count(KLINES_PATH) == len(PAIRS)
    last_bars = {read_ohlcv(env.paths, key)["timestamp"].iloc[-1] for key in keys}
    assert last_bars == {pd.Timestamp("2026-11-24", tz="UTC")}, "the forming bar of 2026-11-25 is not stored"


def test_ccxt_flow_same_day_rerun_fetches_no_bar_again(ccxt_env):
    env, server = ccxt_env
    server.reset_counts()
    run_flow_data(_defs(env, server, CLOCK), env.instance, env.paths, "CCXT_DAY_1_AGAIN", progress=lambda _: None)
    assert server.request_count(KLINES_PATH) == 0


def test_ccxt_flow_next_day_fetches_one_bar_per_symbol_in_one_request(ccxt_env):
    env, server = ccxt_env
    keys = [c["symbol_key"] for c in read_json(env.paths.candidates_file("CCXT_DAY_1"))["candidates"]]
    before = {key: len(read_ohlcv(env.paths, key)) for key in keys}
    for pair, bars in _bars_until(NEXT_DAY_CLOCK).items():
        server.set_bars(pair, bars)
    server.reset_counts()
    run_flow_data(_defs(env, server, NEXT_DAY_CLOCK), env.instance, env.paths, "CCXT_DAY_2", progress=lambda _: None)
    assert server.request_count(KLINES_PATH) == len(PAIRS)
    for key in keys:
        assert len(read_ohlcv(env.paths, key)) == before[key] + 1, key


def test_ccxt_flow_failed_symbol_is_reported_and_rerun_alone(ccxt_env):
    env, server = ccxt_env
    third_day = "2026-11-27T12:00:00+00:00"
    for pair, bars in _bars_until(third_day).items():
        server.set_bars(pair, bars)
    eth_before = read_ohlcv(env.paths, "BINANCE_ETHUSDT")
    server.inject(Fault.SERVER_ERROR, times=None, symbol="ETH/USDT", path=KLINES_PATH)
    links = run_flow_data(_defs(env, server, third_day), env.instance, env.paths, "CCXT_DAY_3", progress=lambda _: None)
    ingest = links[1].materializations["ohlcv"]
    assert ingest["failed_symbols"] == ["BINANCE_ETHUSDT"]
    assert read_ohlcv(env.paths, "BINANCE_ETHUSDT").equals(eth_before), "a failed fetch leaves stored bars as they were"
    assert _ingest_check_passed(env, "BINANCE_ETHUSDT") is False
    assert _ingest_check_passed(env, "BINANCE_BTCUSDT") is True, "the check is kept per symbol"

    server.clear_faults()
    run_link(_defs(env, server, third_day), env.instance, keys.INGEST_JOB, partition_key="BINANCE_ETHUSDT")
    assert len(read_ohlcv(env.paths, "BINANCE_ETHUSDT")) == len(eth_before) + 1
    assert _ingest_check_passed(env, "BINANCE_ETHUSDT") is True


def _ingest_check_passed(env, symbol_key):
    key = AssetCheckKey(AssetKey("ohlcv"), "ohlcv_ingest_succeeded")
    records = env.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=symbol_key)
    )
    return records[key].evaluation.passed
