"""Real ccxt against loopback servers in the REST formats and paging rules of binance, okx, kraken, bybit, coinbase.

For every exchange (spot, and linear perpetual swaps where the server has them), through ``CcxtSource`` and
``ingest_symbols`` into a tmp_path lakehouse: the stored bars equal the served ones exactly (count, timestamps,
values); candle requests per symbol on a first run, a same-day re-run and the next day; a recently listed
symbol and kraken's 720-bar cap reported as a history shortfall with its reason and labelled by the audit;
429 / 5xx / HTML / truncated / timeout faults retried. Also: the page size each exchange's ccxt class publishes
and a user override, OKX's history endpoint for older candles, spot and swap keys kept apart, and discovery
keeping one listing per base. The Dagster / CLI side is in test_defs/test_flow_ccxt.py.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from alpha_assets.dataops.audit.engine import AuditParams, audit_symbol_file
from alpha_assets.dataops.audit.records import Verdict
from alpha_assets.dataops.candidates import validate_candidates
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.sources.discovery import discover_candidates
from alpha_assets.sources.exchange import CcxtSource
from alpha_assets.sources.ingest import IngestStatus, ingest_symbols
from alpha_assets.sources.params import DiscoveryParams, IngestionParams
from alpha_assets_tests.exchanges import SERVERS
from alpha_assets_tests.exchanges.common import Fault, LoopbackExchange, MarketSpec, daily_bars
from alpha_assets_tests.exchanges.okx import CANDLES_PATH, HISTORY_CANDLES_PATH

# ccxt's okx picks its history endpoint by the wall clock, so the fixtures follow the wall clock's day.
NOW = pd.Timestamp.now(tz="UTC").floor("D") + pd.Timedelta(hours=15)
TODAY = NOW.floor("D")
DAY = pd.Timedelta(days=1)
PARAMS = IngestionParams(history_days=700, warmup_days=100)
REQUESTED_START = TODAY - 800 * DAY
#: (exchange, market type, quote, OHLCV page cap as ccxt publishes it).
VENUES = [
    ("binance", "spot", "USDT", 1000),
    ("binance", "swap", "USDT", 500),
    ("okx", "spot", "USDT", 300),
    ("okx", "swap", "USDT", 300),
    ("kraken", "spot", "USD", 720),
    ("bybit", "spot", "USDT", 1000),
    ("bybit", "swap", "USDT", 1000),
    ("coinbase", "spot", "USD", 300),
]
#: Exchanges that answer a fixed window of ``limit`` days from ``since``, empty before a listing.
WINDOWED = {"okx", "coinbase"}


def _symbols(market_type: str, quote: str) -> tuple[str, str]:
    suffix = f":{quote}" if market_type == "swap" else ""
    return f"OLD/{quote}{suffix}", f"NEW/{quote}{suffix}"


def _served(server: LoopbackExchange, symbol: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    bars = server.served_bars(symbol)
    return bars[(bars["timestamp"] >= start) & (bars["timestamp"] < end)].reset_index(drop=True)


def _source(server: LoopbackExchange, market_type: str, now: pd.Timestamp, **overrides: object) -> CcxtSource:
    """A source on ``server`` whose clock is the server's (``now`` until the server's clock is set)."""
    params: dict[str, object] = {
        "market_type": market_type,
        "base_url": server.base_url,
        "timeout_ms": 2_000,
        "rate_limit_ms": 1,
        "jitter": 0.0,
        "now": lambda: server.server_time or now,
        "sleep": lambda _: None,
    }
    params.update(overrides)
    return CcxtSource(server.name, **params)


@pytest.fixture(params=VENUES, ids=[f"{name}-{kind}" for name, kind, _, _ in VENUES])
def venue(request):
    name, market_type, quote, cap = request.param
    old, new = _symbols(market_type, quote)
    # OLD trades since before the requested start (its swap contract worth 0.01 base); NEW was listed 100 days ago.
    bars = {
        old: daily_bars(901, seed=1, price=30_000.0, last_open=TODAY),
        new: daily_bars(101, seed=2, price=2.5, last_open=TODAY),
    }
    markets = [MarketSpec(old, contract_size=0.01)] if market_type == "swap" else []
    with SERVERS[name](bars, markets=markets, server_time=NOW) as server:
        yield name, market_type, cap, old, new, server


# --------------------------------------------------------------------------------- paging, per exchange
def test_first_run_stores_every_served_bar_with_the_fewest_requests(venue, tmp_path):
    name, market_type, cap, old, new, server = venue
    paths = LakehousePaths(tmp_path / "data")
    source = _source(server, market_type, NOW)
    markets = {m.ccxt_symbol: m for m in source.load_markets()}
    server.reset_counts()

    reports = {
        r.symbol_key: r for r in ingest_symbols(source, [markets[old], markets[new]], paths, now=NOW, params=PARAMS)
    }

    capped = name == "kraken"
    expected_first = TODAY - 719 * DAY if capped else REQUESTED_START
    for symbol, start in ((old, expected_first), (new, TODAY - 100 * DAY)):
        key = markets[symbol].symbol_key
        assert reports[key].status is IngestStatus.OK, reports[key].error
        stored = read_ohlcv(paths, key)
        pd.testing.assert_frame_equal(stored, _served(server, symbol, start, TODAY), check_exact=True)
    # Windowed exchanges need ceil(801 days / cap) windows whether they hold bars or not (NEW's first ones are
    # empty); start-forward exchanges ceil(bars served / cap) pages; kraken's one answer is all it has.
    if name in WINDOWED:
        pages = [math.ceil(801 / cap)] * 2
    else:
        pages = [1, 1] if capped else [math.ceil(801 / cap), math.ceil(101 / cap)]
    assert [server.candle_requests(old), server.candle_requests(new)] == pages
    assert source.page_limit == cap


def test_same_day_rerun_sends_no_candle_request_and_next_day_one(venue, tmp_path):
    name, market_type, _, old, new, server = venue
    paths = LakehousePaths(tmp_path / "data")
    source = _source(server, market_type, NOW)
    markets = [m for m in source.load_markets() if m.ccxt_symbol in (old, new)]
    ingest_symbols(source, markets, paths, now=NOW, params=PARAMS)
    server.reset_counts()

    again = ingest_symbols(source, markets, paths, now=NOW + pd.Timedelta(hours=2), params=PARAMS)
    assert server.candle_requests() == 0
    assert {r.status for r in again} == {IngestStatus.UP_TO_DATE}

    tomorrow = NOW + DAY
    for symbol, n_bars, seed, price in ((old, 902, 1, 30_000.0), (new, 102, 2, 2.5)):
        server.set_bars(symbol, daily_bars(n_bars, seed=seed, last_open=TODAY + DAY, price=price))
    server.server_time = tomorrow
    before = {m.symbol_key: len(read_ohlcv(paths, m.symbol_key)) for m in markets}
    server.reset_counts()
    next_day = ingest_symbols(source, markets, paths, now=tomorrow, params=PARAMS)

    assert server.request_count() == server.candle_requests() == len(markets), "one request per symbol"
    for report in next_day:
        assert report.new_bars == 1 and report.bars_after == before[report.symbol_key] + 1


def test_recent_listing_and_capped_history_are_reported_and_labelled(venue, tmp_path):
    name, market_type, _, old, new, server = venue
    paths = LakehousePaths(tmp_path / "data")
    source = _source(server, market_type, NOW)
    markets = {m.ccxt_symbol: m for m in source.load_markets()}

    reports = {r.symbol_key: r for r in ingest_symbols(source, list(markets.values()), paths, now=NOW, params=PARAMS)}

    new_key, old_key = markets[new].symbol_key, markets[old].symbol_key
    listed = reports[new_key].history
    assert listed is not None and listed.short_by_days == 700 and "listed after the requested start" in listed.reason
    assert listed.requested_start == REQUESTED_START.isoformat()
    if name == "kraken":
        capped = reports[old_key].history
        assert capped is not None and capped.short_by_days == 81
        assert "kraken sent only the 720 most recent daily bars of OLD/USD" in capped.reason
    else:
        assert reports[old_key].history is None
    verdicts = {k: audit_symbol_file(paths, k, as_of=NOW, params=AuditParams()) for k in (new_key, old_key)}
    assert verdicts[new_key].verdict is Verdict.SHORT_HISTORY
    assert any("700 days after the requested start" in reason for reason in verdicts[new_key].reasons)
    assert verdicts[old_key].verdict is (Verdict.SHORT_HISTORY if name == "kraken" else Verdict.OK)


@pytest.mark.parametrize(
    "fault",
    [Fault.RATE_LIMITED, Fault.UNAVAILABLE, Fault.NOT_JSON, Fault.TRUNCATED_JSON, Fault.STALL],
    ids=["429", "503", "html", "truncated", "timeout"],
)
def test_transient_faults_on_candles_are_retried_to_the_same_bars(venue, tmp_path, fault):
    name, market_type, _, _, new, server = venue
    paths = LakehousePaths(tmp_path / "data")
    source = _source(server, market_type, NOW, timeout_ms=300)
    market = next(m for m in source.load_markets() if m.ccxt_symbol == new)
    server.reset_counts()
    # The first candle request of NEW misbehaves (the only one on a start-forward exchange).
    server.inject(fault, times=1, symbol=new, stall_s=1.0)

    (report,) = ingest_symbols(source, [market], paths, now=NOW, params=PARAMS)

    assert report.status is IngestStatus.OK, report.error
    pd.testing.assert_frame_equal(
        read_ohlcv(paths, market.symbol_key), _served(server, new, TODAY - 100 * DAY, TODAY), check_exact=True
    )
    pages = math.ceil(801 / source.page_limit) if name in WINDOWED else 1
    assert server.candle_requests(new) == pages + 1, "one retry"


# ------------------------------------------------------------------------------------ page sizes
@pytest.mark.parametrize(
    ("override", "expected"), [(None, 300), (5000, 300), (50, 50)], ids=["cap", "above-cap", "below-cap"]
)
def test_page_limit_is_the_published_cap_or_a_lower_override(override, expected):
    with SERVERS["okx"]({"BTC/USDT": daily_bars(400, seed=3, last_open=TODAY)}, server_time=NOW) as server:
        source = _source(server, "spot", NOW, page_limit=override)
        market = source.load_markets()[0]
        bars = source.fetch_daily_bars(market, since=TODAY - 399 * DAY, until=TODAY)

        assert source.page_limit == expected
        assert server.candle_requests() == math.ceil(400 / expected)
        served = _served(server, "BTC/USDT", TODAY - 399 * DAY, TODAY)
        pd.testing.assert_frame_equal(bars, served, check_exact=True, check_dtype=False)


def test_okx_older_candles_come_from_its_history_endpoint():
    with SERVERS["okx"]({"BTC/USDT": daily_bars(1601, seed=4, last_open=TODAY)}, server_time=NOW) as server:
        source = _source(server, "spot", NOW)
        market = source.load_markets()[0]
        since = TODAY - 1500 * DAY

        bars = source.fetch_daily_bars(market, since=since, until=TODAY)

        pd.testing.assert_frame_equal(
            bars, _served(server, "BTC/USDT", since, TODAY), check_exact=True, check_dtype=False
        )
        paths = [path for path, _ in server.requests if path in server.candle_paths]
        # /market/candles keeps only the latest 1,440 bars: the window starting 1,500 days back needs history.
        assert paths == [HISTORY_CANDLES_PATH] + [CANDLES_PATH] * 4


# --------------------------------------------------------------------------- market types and discovery
def test_spot_and_swap_of_one_pair_are_kept_apart(tmp_path):
    paths = LakehousePaths(tmp_path / "data")
    spot_bars, swap_bars = (
        daily_bars(60, seed=5, price=100.0, last_open=TODAY),
        daily_bars(60, seed=6, price=100.5, last_open=TODAY),
    )
    with SERVERS["bybit"]({"BTC/USDT": spot_bars, "BTC/USDT:USDT": swap_bars}, server_time=NOW) as server:
        for market_type, symbol in (("spot", "BTC/USDT"), ("swap", "BTC/USDT:USDT")):
            source = _source(server, market_type, NOW)
            (market,) = source.load_markets()
            assert market.ccxt_symbol == symbol and market.market_type == market_type
            ingest_symbols(source, [market], paths, now=NOW, params=PARAMS)

        for key, symbol in (("BYBIT_BTCUSDT", "BTC/USDT"), ("BYBIT_BTCUSDT_PERP", "BTC/USDT:USDT")):
            pd.testing.assert_frame_equal(
                read_ohlcv(paths, key), _served(server, symbol, TODAY - 59 * DAY, TODAY), check_exact=True
            )


def test_swap_traded_value_counts_contracts_at_their_size():
    bars = daily_bars(30, seed=7, price=50_000.0, last_open=TODAY)
    with SERVERS["okx"](
        {"BTC/USDT:USDT": bars}, markets=[MarketSpec("BTC/USDT:USDT", contract_size=0.01)], server_time=NOW
    ) as server:
        source = _source(server, "swap", NOW)

        (ticker,) = source.fetch_tickers().values()

        last = bars.iloc[-1]
        # OKX sends a swap's 24 h volume in contracts and no quote volume: contracts * 0.01 BTC * price.
        assert ticker.symbol_key == "OKX_BTCUSDT_PERP"
        assert ticker.quote_volume == pytest.approx(last["volume"] * last["close"], rel=1e-12)


def test_discovery_keeps_one_listing_per_base_by_quote_preference():
    bars = {
        "BTC/USD": daily_bars(30, seed=8, price=60_000.0, last_open=TODAY),
        "BTC/USDT": daily_bars(30, seed=9, price=60_010.0, last_open=TODAY),
        "ETH/USDT": daily_bars(30, seed=10, price=3_000.0, last_open=TODAY),
    }
    with SERVERS["kraken"](bars, server_time=NOW) as server:
        source = _source(server, "spot", NOW)
        markets = source.load_markets()
        tickers = source.fetch_tickers()
    params = DiscoveryParams(quote_currencies=("USD", "USDT"), min_traded_value_24h=0.0, exclude_bases=())

    discovery = discover_candidates(markets, tickers, params)

    assert sorted(c.symbol_key for c in discovery.candidates) == ["KRAKEN_BTCUSD", "KRAKEN_ETHUSDT"]
    assert discovery.excluded["KRAKEN_BTCUSDT"] == (
        "same asset as KRAKEN_BTCUSD (BTC/USD), kept because its quote USD comes before USDT in quote_currencies"
    )


@pytest.mark.parametrize("accept", [True, False], ids=["accepted", "refused"])
def test_manifest_says_whether_a_short_history_is_validated(tmp_path, accept):
    paths = LakehousePaths(tmp_path / "data")
    bars = {
        "OLD/USD": daily_bars(901, seed=1, price=30_000.0, last_open=TODAY),
        "NEW/USD": daily_bars(101, seed=2, price=2.5, last_open=TODAY),
    }
    with SERVERS["coinbase"](bars, server_time=NOW) as server:
        source = _source(server, "spot", NOW)
        ingest_symbols(source, source.load_markets(), paths, now=NOW, params=PARAMS)
    keys = ["COINBASE_NEWUSD", "COINBASE_OLDUSD"]
    verdicts = [audit_symbol_file(paths, k, as_of=NOW, params=AuditParams()).to_json_dict() for k in keys]
    candidates = {"run_id": "R", "as_of": NOW.isoformat(), "candidates": [{"symbol_key": k} for k in keys]}

    document = validate_candidates(candidates, verdicts, accept_short_history=accept)

    if accept:
        assert document["symbols"] == keys and list(document["short_history"]) == ["COINBASE_NEWUSD"]
    else:
        assert document["symbols"] == ["COINBASE_OLDUSD"]
        assert document["rejected"]["COINBASE_NEWUSD"]["verdict"] == "SHORT_HISTORY"
