"""Tests of discovery (``alpha_assets.sources.discovery``): filters, ranking, the JSON form, errors.

Exercised on the simulated exchange and on small hand-made market lists: quote, stablecoin, leveraged
(including real tokens that only look leveraged), inactive, missing ticker, minimum traded value, top N,
ordering with ties, and the message of an empty universe. Left untouched: writing candidates.json (wiring).
"""

from __future__ import annotations

import json

import pytest

from alpha_assets.errors import EmptyUniverseError
from alpha_assets.sources.base import Market, Ticker
from alpha_assets.sources.discovery import Candidate, discover_candidates, is_leveraged_base
from alpha_assets.sources.params import DiscoveryParams


def _market(base: str, quote: str = "USDT", *, active: bool = True) -> Market:
    return Market(
        symbol_key=f"TEST_{base}{quote}", ccxt_symbol=f"{base}/{quote}", base=base, quote=quote, active=active
    )


def _tickers(values: dict[str, float]) -> dict[str, Ticker]:
    return {key: Ticker(symbol_key=key, last=1.0, quote_volume=value) for key, value in values.items()}


def test_discover_simulated_default_excludes_the_planted_pairs(src_exchange):
    discovery = discover_candidates(src_exchange.load_markets(), src_exchange.fetch_tickers(), DiscoveryParams())
    kept = [c.symbol_key for c in discovery.candidates]
    assert len(kept) == 50
    assert discovery.excluded["SIM_USDCUSDT"] == "stablecoin base USDC"
    assert discovery.excluded["SIM_FDUSDUSDT"] == "stablecoin base FDUSD"
    assert discovery.excluded["SIM_BTCUPUSDT"] == "leveraged token BTCUP"
    assert discovery.excluded["SIM_ETHBTC"] == "quote BTC not in ['USDT']"
    assert discovery.excluded["SIM_GONEUSDT"] == "inactive market"
    assert {"SIM_PUMPUSDT", "SIM_FRZNUSDT", "SIM_HOLEUSDT", "SIM_NEWBUSDT"} <= set(kept)
    assert set(kept) | set(discovery.excluded) == {m.symbol_key for m in src_exchange.load_markets()}
    values = [c.quote_volume_24h for c in discovery.candidates]
    assert values == sorted(values, reverse=True)
    assert [c.rank for c in discovery.candidates] == list(range(1, 51))
    assert discovery.candidates[0].symbol_key == "SIM_BTCUSDT"


def test_discover_include_inactive_keeps_delisted(src_exchange):
    params = DiscoveryParams(include_inactive=True, top_n=100)
    discovery = discover_candidates(src_exchange.load_markets(), src_exchange.fetch_tickers(), params)
    assert "SIM_GONEUSDT" in {c.symbol_key for c in discovery.candidates}


def test_discover_min_traded_value_and_top_n_give_reasons():
    markets = [_market(b) for b in ("AAA", "BBB", "CCC", "DDD")]
    tickers = _tickers({"TEST_AAAUSDT": 5e7, "TEST_BBBUSDT": 3e7, "TEST_CCCUSDT": 2e7, "TEST_DDDUSDT": 4e5})
    discovery = discover_candidates(markets, tickers, DiscoveryParams(top_n=2))
    assert [c.symbol_key for c in discovery.candidates] == ["TEST_AAAUSDT", "TEST_BBBUSDT"]
    assert discovery.excluded == {
        "TEST_CCCUSDT": "below top 2 (rank 3 by traded value)",
        "TEST_DDDUSDT": "traded value 400,000 USDT below 1,000,000",
    }


def test_discover_ties_are_ordered_by_key():
    markets = [_market(b) for b in ("ZZZ", "AAA", "MMM")]
    tickers = _tickers({m.symbol_key: 2e6 for m in markets})
    discovery = discover_candidates(markets, tickers, DiscoveryParams())
    assert [c.symbol_key for c in discovery.candidates] == ["TEST_AAAUSDT", "TEST_MMMUSDT", "TEST_ZZZUSDT"]


def test_discover_missing_ticker_is_excluded():
    markets = [_market("AAA"), _market("BBB")]
    discovery = discover_candidates(markets, _tickers({"TEST_AAAUSDT": 2e6}), DiscoveryParams())
    assert discovery.excluded == {"TEST_BBBUSDT": "no 24 h ticker"}


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("BTCUP", True),
        ("BTCDOWN", True),
        ("ETHBULL", True),
        ("ETHBEAR", True),
        ("ETH3L", True),
        ("BTC5S", True),
        ("JUP", False),
        ("SYRUP", False),
        ("BTC", False),
        ("XYZUP", False),
    ],
    ids=lambda value: str(value),
)
def test_is_leveraged_base_needs_a_listed_underlying(base, expected):
    assert is_leveraged_base(base, frozenset({"BTC", "ETH"})) is expected


def test_discover_leveraged_filter_can_be_disabled():
    markets = [_market("BTC"), _market("BTCUP"), _market("JUP")]
    tickers = _tickers({m.symbol_key: 5e6 for m in markets})
    assert "TEST_BTCUPUSDT" in discover_candidates(markets, tickers, DiscoveryParams()).excluded
    kept = discover_candidates(markets, tickers, DiscoveryParams(exclude_leveraged=False)).candidates
    assert {c.symbol_key for c in kept} == {"TEST_BTCUSDT", "TEST_BTCUPUSDT", "TEST_JUPUSDT"}


def test_discover_several_quotes():
    markets = [_market("BTC"), _market("ETH", "BTC"), _market("SOL", "EUR")]
    tickers = _tickers({m.symbol_key: 5e6 for m in markets})
    discovery = discover_candidates(markets, tickers, DiscoveryParams(quote_currencies=("USDT", "BTC")))
    assert {c.symbol_key for c in discovery.candidates} == {"TEST_BTCUSDT", "TEST_ETHBTC"}
    assert discovery.excluded == {"TEST_SOLEUR": "quote EUR not in ['USDT', 'BTC']"}


def test_discover_zero_candidates_names_each_filter():
    markets = [_market("USDC"), _market("BTC", "EUR"), _market("AAA"), _market("OLD", active=False)]
    tickers = _tickers({m.symbol_key: 1e3 for m in markets})
    with pytest.raises(
        EmptyUniverseError,
        match=r"kept no candidate out of 4 markets \(inactive: 1, quote: 1, stablecoin base: 1, "
        r"traded value: 1\)",
    ):
        discover_candidates(markets, tickers, DiscoveryParams())


def test_discover_no_market_raises():
    with pytest.raises(EmptyUniverseError, match=r"out of 0 markets \(no market listed\)"):
        discover_candidates([], {}, DiscoveryParams())


def test_discovery_json_is_deterministic(src_exchange):
    markets, tickers = src_exchange.load_markets(), src_exchange.fetch_tickers()
    first = discover_candidates(markets, tickers, DiscoveryParams()).to_json_dict()
    second = discover_candidates(list(reversed(markets)), tickers, DiscoveryParams()).to_json_dict()
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert list(first["excluded"]) == sorted(first["excluded"])
    assert first["params"]["quote_currencies"] == ["USDT"]
    assert first["candidates"][0] == Candidate(**first["candidates"][0]).to_json_dict()


@pytest.mark.parametrize(
    ("markets", "tickers", "params", "error", "match"),
    [
        ([_market("A1")], {}, {"top_n": 3}, TypeError, "`params` must be a DiscoveryParams, got dict"),
        ([_market("A1")], [], DiscoveryParams(), TypeError, "`tickers` must be a mapping"),
        (
            ["TEST_A1USDT"],
            {},
            DiscoveryParams(),
            TypeError,
            r"`markets` must hold Market records, got \['str'\]",
        ),
        (
            [_market("A1"), _market("A1")],
            {},
            DiscoveryParams(),
            ValueError,
            "unique symbol keys.*TEST_A1USDT",
        ),
    ],
    ids=["params-dict", "tickers-list", "markets-str", "duplicate-key"],
)
def test_discover_bad_arguments_raise(markets, tickers, params, error, match):
    with pytest.raises(error, match=match):
        discover_candidates(markets, tickers, params)


def test_discover_us_equities_profile_keeps_usd_stocks_and_names_why_others_left():
    from alpha_assets.lakehouse.calendars import AssetClass
    from alpha_assets.sources.markets import classify_markets
    from alpha_assets.sources.params import MarketParams

    listed = [
        Market("NYSE_AAPL", "AAPL", "AAPL", ""),  # as the files source lists a ticker without a quote suffix
        Market("NYSE_SPY", "SPY", "SPY", ""),
        Market("FILES_ACME", "ACME", "ACME", ""),  # unknown exchange, no quote: crypto without a currency
        _market("BTC"),
    ]
    markets = classify_markets(listed, MarketParams())
    params = DiscoveryParams(
        quote_currencies=("USD",),
        asset_classes=(AssetClass.EQUITY, AssetClass.ETF, AssetClass.INDEX),
        exclude_bases=(),
        min_traded_value_24h=0.0,
    )
    tickers = _tickers({m.symbol_key: 1e7 for m in markets})
    discovery = discover_candidates(markets, tickers, params)
    assert [(c.symbol_key, c.quote, c.asset_class, c.calendar) for c in discovery.candidates] == [
        ("NYSE_AAPL", "USD", "equity", "XNYS"),
        ("NYSE_SPY", "USD", "equity", "XNYS"),
    ]
    assert discovery.excluded == {
        "FILES_ACME": "asset class crypto not in ['equity', 'etf', 'index']",
        "TEST_BTCUSDT": "asset class crypto not in ['equity', 'etf', 'index']",
    }
    # A crypto profile meets the quote-less market with the reason, not a crash downstream.
    crypto = discover_candidates(markets, tickers, DiscoveryParams(min_traded_value_24h=0.0))
    assert crypto.excluded["FILES_ACME"].startswith("quote currency unknown")
