"""flow_data with the ccxt source through Dagster, against a local Binance-format server on 127.0.0.1.

Counts the requests the server receives: the first run fetches each symbol's history in one page, a re-run on
the same day fetches no bar again, and the next day fetches exactly one new bar per symbol with one request.
The retry/pagination/malformed-row behaviour of the source itself is in test_sources/test_exchange.py.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance
from dagster._core.event_api import PartitionKeyFilter

from alpha_assets.cli import main
from alpha_assets.defs import names
from alpha_assets.defs.dataops.resources import SourceKind
from alpha_assets.errors import ExitCode
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.orchestration.runner import run_flow_data, run_link
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets_tests.exchange_server import KLINES_PATH, ExchangeServer, Fault
from alpha_assets_tests.exchanges import SERVERS
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
    # Its stored bars are one day old, within the staleness bound, yet not validated for this RUN_ID.
    rejected = read_json(env.paths.candidates_validated_file("CCXT_DAY_3"))["rejected"]
    assert rejected["BINANCE_ETHUSDT"]["verdict"] == "INGEST_FAILED"
    assert "ExchangeNotAvailable" in rejected["BINANCE_ETHUSDT"]["reasons"][-1]

    server.clear_faults()
    run_link(_defs(env, server, third_day), env.instance, names.INGEST_JOB, partition_key="BINANCE_ETHUSDT")
    assert len(read_ohlcv(env.paths, "BINANCE_ETHUSDT")) == len(eth_before) + 1
    assert _ingest_check_passed(env, "BINANCE_ETHUSDT") is True


def _ingest_check_passed(env, symbol_key):
    key = AssetCheckKey(AssetKey("ohlcv"), "ohlcv_ingest_succeeded")
    records = env.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=symbol_key)
    )
    return records[key].evaluation.passed


# ------------------------------------------------------------------ every exchange format, through the CLI
#: (exchange, quote) of the five formats; each run holds an old symbol, a recent listing and a failing one.
VENUES = [("binance", "USDT"), ("okx", "USDT"), ("kraken", "USD"), ("bybit", "USDT"), ("coinbase", "USD")]
VENUE_CLOCK = pd.Timestamp(CLOCK)
VENUE_TODAY = VENUE_CLOCK.floor("D")
#: 800 days asked: more than kraken's 720, several pages of okx's and coinbase's 300.
VENUE_MANIFEST = {
    "default_profile": "venue",
    "defaults": {},
    "profiles": {
        "venue": {
            "source": {"max_retries": 1, "timeout_ms": 2000},
            "discovery": {"top_n": 10, "min_traded_value_24h": 0},
            "ingestion": {"history_days": 800, "warmup_days": 0},
        }
    },
}


def _venue_bars(quote: str, last_open: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """OLD trades since long before the requested start, NEW was listed 100 days ago, BAD will keep failing.

    Clean bars of the simulated exchange (pairs without planted defects), up to the bar opening ``last_open``.
    """
    simulated = SimulatedExchange(seed=11, now=last_open + pd.Timedelta(hours=12), n_symbols=12)
    listed = {m.ccxt_symbol: m for m in simulated.load_markets()}
    since, until = last_open - pd.Timedelta(days=900), last_open + pd.Timedelta(days=1)
    bars = {
        f"OLD/{quote}": simulated.fetch_daily_bars(listed["BTC/USDT"], since=since, until=until),
        f"NEW/{quote}": simulated.fetch_daily_bars(listed["ETH/USDT"], since=since, until=until).iloc[-101:],
        f"BAD/{quote}": simulated.fetch_daily_bars(listed["SOL/USDT"], since=since, until=until),
    }
    return {symbol: frame.reset_index(drop=True) for symbol, frame in bars.items()}


def _cli(server, quote: str, tmp, clock: pd.Timestamp, run_id: str) -> int:
    manifest = json.loads(json.dumps(VENUE_MANIFEST))
    manifest["profiles"]["venue"]["discovery"]["quote_currencies"] = [quote]
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    return main(
        [
            "flow-data",
            "--source",
            "ccxt",
            "--exchange",
            server.name,
            "--base-url",
            server.base_url,
            "--clock",
            clock.isoformat(),
            "--run-id",
            run_id,
            "--data-dir",
            str(tmp / "data"),
            "--manifest",
            str(tmp / "manifest.json"),
        ]
    )


@pytest.fixture(params=VENUES, ids=[name for name, _ in VENUES])
def venue_run(request, tmp_path, monkeypatch):
    name, quote = request.param
    # A DAGSTER_HOME per venue, as its data folder: one instance serves one data directory.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with SERVERS[name](_venue_bars(quote, VENUE_TODAY), server_time=VENUE_CLOCK) as server:
        server.inject(Fault.UNAVAILABLE, times=None, symbol=f"BAD/{quote}")
        yield name, quote, server, tmp_path


def test_cli_flow_data_on_each_exchange_format(venue_run, capfd):
    name, quote, server, tmp = venue_run
    prefix = name.upper()
    old, new, bad = (f"{prefix}_{base}{quote}" for base in ("OLD", "NEW", "BAD"))
    paths = LakehousePaths(tmp / "data")
    cap = {"binance": 1000, "okx": 300, "kraken": 720, "bybit": 1000, "coinbase": 300}[name]

    code = _cli(server, quote, tmp, VENUE_CLOCK, "VENUE_1")
    out, err = capfd.readouterr()

    assert code == ExitCode.PARTIAL, err[-2000:]
    assert f"1 symbol failed (reasons above): {bad}" in err
    assert (
        "failed to ingest: 1" in out
        and f"    {bad}: {bad}: SourceError: {name} fetch_ohlcv of BAD/{quote} failed after 2 tries" in out
    )
    # Stored bars are exactly the served ones: all 800 asked days, or the 720 kraken keeps.
    requested = VENUE_TODAY - pd.Timedelta(days=800)
    for key, symbol in ((old, f"OLD/{quote}"), (new, f"NEW/{quote}")):
        served = server.served_bars(symbol)
        served = served[(served["timestamp"] >= requested) & (served["timestamp"] < VENUE_TODAY)]
        served = (served.iloc[-720:] if (name == "kraken" and key == old) else served).reset_index(drop=True)
        pd.testing.assert_frame_equal(read_ohlcv(paths, key), served, check_exact=True)
    pages = math.ceil(801 / cap) if name in ("okx", "coinbase") else 1
    assert [server.candle_requests(f"{b}/{quote}") for b in ("OLD", "NEW", "BAD")] == [pages, pages, 2]
    # The shortfall is printed, recorded in the ohlcv metadata, labelled by the audit, and accepted.
    short = {new: "listed after the requested start"} | (
        {old: "kraken sent only the 720 most recent"} if name == "kraken" else {}
    )
    assert f"short history: {len(short)}" in out
    for key, why in short.items():
        assert any(line.startswith(f"    {key}: bars from") and why in line for line in out.splitlines()), out
    validated = read_json(paths.candidates_validated_file("VENUE_1"))
    assert sorted(validated["short_history"]) == sorted(short)
    assert sorted(validated["symbols"]) == sorted({old, new})
    # Nothing stored yet: MISSING outranks INGEST_FAILED, and the reasons say why.
    assert validated["rejected"][bad]["verdict"] == "MISSING"
    assert any(
        "ingestion failed at" in reason and "failed after 2 tries" in reason
        for reason in validated["rejected"][bad]["reasons"]
    )
    ohlcv_event = DagsterInstance.get().fetch_materializations(AssetKey("ohlcv"), limit=1).records[0]
    metadata = ohlcv_event.asset_materialization.metadata
    assert sorted(metadata["short_history"].value) == sorted(short) and list(metadata["failures"].value) == [bad]
    audit = {v["symbol_key"]: v for v in read_json(paths.audit_report_file("VENUE_1"))["verdicts"]}
    assert (
        audit[new]["verdict"] == "SHORT_HISTORY"
        and audit[new]["checks"]["history_length"]["observed"]["short_by_days"] == 699
    )
    assert audit[old]["verdict"] == ("SHORT_HISTORY" if name == "kraken" else "OK")

    # Same day, the exchange healthy again: only BAD is fetched; the next day one request per symbol.
    server.clear_faults()
    server.reset_counts()
    assert _cli(server, quote, tmp, VENUE_CLOCK + pd.Timedelta(hours=1), "VENUE_1B") == ExitCode.OK
    assert [server.candle_requests(f"{b}/{quote}") for b in ("OLD", "NEW", "BAD")] == [0, 0, pages]
    tomorrow = VENUE_CLOCK + pd.Timedelta(days=1)
    for symbol, bars in _venue_bars(quote, VENUE_TODAY + pd.Timedelta(days=1)).items():
        server.set_bars(symbol, bars)
    server.server_time = tomorrow
    server.reset_counts()
    assert _cli(server, quote, tmp, tomorrow, "VENUE_2") == ExitCode.OK
    assert [server.candle_requests(f"{b}/{quote}") for b in ("OLD", "NEW", "BAD")] == [1, 1, 1]
