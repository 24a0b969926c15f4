"""Tests of the simulated exchange (``alpha_assets.sources.simulated``).

Exercised: determinism (same seed, moving clock), the five planted defects as documented in
docs/simulated_exchange.md, the statistical shape (fat tails, volatility clustering, sector correlation), OHLC
consistency, traded-value scale, market metadata, the pairs discovery must exclude, request counting and
argument errors. Left untouched: ingestion (test_ingest.py) and discovery (test_discovery.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alpha_assets.errors import SourceError, UnsafeKeyError
from alpha_assets.sources.base import Market, MarketSource
from alpha_assets.sources.simulated import (
    DELISTED_DAYS_BEFORE_TODAY,
    FROZEN_BARS,
    NEW_LISTING_BARS,
    PLANTED_DEFECTS,
    PUMP_DAYS_BEFORE_TODAY,
    SimulatedExchange,
)

EPOCH = pd.Timestamp("2000-01-01", tz="UTC")
DAY = pd.Timedelta(days=1)


def _all_bars(exchange: SimulatedExchange, key: str) -> pd.DataFrame:
    market = next(m for m in exchange.load_markets() if m.symbol_key == key)
    return exchange.fetch_daily_bars(market, since=EPOCH, until=exchange.now())


def _closes(exchange: SimulatedExchange, markets: list[Market], since: pd.Timestamp) -> pd.DataFrame:
    return pd.DataFrame(
        {
            m.symbol_key: exchange.fetch_daily_bars(m, since=since, until=exchange.now()).set_index("timestamp")[
                "close"
            ]
            for m in markets
        }
    )


def test_simulated_exchange_implements_market_source(src_exchange):
    assert isinstance(src_exchange, MarketSource)
    assert src_exchange.exchange_key == "SIM"


def test_simulated_same_seed_gives_identical_bars(src_now):
    first, second = SimulatedExchange(seed=11, now=src_now), SimulatedExchange(seed=11, now=src_now)
    for key in ("SIM_BTCUSDT", "SIM_PEPEUSDT", "SIM_HOLEUSDT", "SIM_ETHBTC"):
        pd.testing.assert_frame_equal(_all_bars(first, key), _all_bars(second, key))


def test_simulated_other_seed_gives_other_bars(src_now):
    first, second = SimulatedExchange(seed=11, now=src_now), SimulatedExchange(seed=12, now=src_now)
    assert not np.allclose(_all_bars(first, "SIM_SOLUSDT")["close"], _all_bars(second, "SIM_SOLUSDT")["close"])


def test_simulated_advancing_now_one_day_appends_one_bar_and_keeps_old(src_now):
    today, tomorrow = SimulatedExchange(now=src_now), SimulatedExchange(now=src_now + DAY)
    for market in today.load_markets():
        if market.symbol_key in (
            "SIM_FRZNUSDT",
            "SIM_PUMPUSDT",
            "SIM_NEWBUSDT",
            "SIM_GONEUSDT",
            "SIM_HOLEUSDT",
        ):
            continue  # their defect windows are anchored on now on purpose (checked below)
        old = today.fetch_daily_bars(market, since=EPOCH, until=src_now)
        new = tomorrow.fetch_daily_bars(market, since=EPOCH, until=src_now + DAY)
        assert len(new) == len(old) + 1, market.symbol_key
        pd.testing.assert_frame_equal(new.iloc[:-1], old)
        assert new["timestamp"].iat[-1] == src_now.floor("D")


def test_simulated_universe_size_does_not_change_a_symbol(src_now):
    small, large = SimulatedExchange(now=src_now, n_symbols=10), SimulatedExchange(now=src_now, n_symbols=300)
    pd.testing.assert_frame_equal(_all_bars(small, "SIM_ETHUSDT"), _all_bars(large, "SIM_ETHUSDT"))
    assert {"SIM_S0001USDT", "SIM_S0246USDT"} <= {m.symbol_key for m in large.load_markets()}
    assert len(large.load_markets()) == 300 + 5


def test_simulated_pump_symbol_has_one_return_above_500_percent(src_exchange, src_now):
    bars = _all_bars(src_exchange, "SIM_PUMPUSDT")
    returns = bars["close"].pct_change().dropna()
    jump = returns.idxmax()
    assert returns.max() > 5.0
    assert bars["timestamp"].iat[jump] == src_now.floor("D") - PUMP_DAYS_BEFORE_TODAY * DAY
    assert (returns.drop(index=jump).abs() < 1.0).all()


def test_simulated_no_other_symbol_has_toxic_return(src_exchange):
    for market in src_exchange.load_markets():
        if market.symbol_key != "SIM_PUMPUSDT":
            closes = _all_bars(src_exchange, market.symbol_key)["close"]
            assert closes.pct_change().abs().max() < 1.0, market.symbol_key


def test_simulated_frozen_symbol_has_constant_close_on_last_bars(src_exchange):
    bars = _all_bars(src_exchange, "SIM_FRZNUSDT")
    tail = bars.iloc[-FROZEN_BARS - 1 :]
    assert tail["close"].nunique() == 1
    frozen = bars.iloc[-FROZEN_BARS:]
    assert (frozen[["open", "high", "low"]].to_numpy() == frozen[["close"]].to_numpy()).all()
    assert (tail["volume"] > 0).all()
    assert bars["close"].iat[-FROZEN_BARS - 2] != bars["close"].iat[-1]


def test_simulated_hole_symbol_lacks_days_on_every_request(src_exchange, src_now):
    market = next(m for m in src_exchange.load_markets() if m.symbol_key == "SIM_HOLEUSDT")
    bars = _all_bars(src_exchange, "SIM_HOLEUSDT")
    steps = bars["timestamp"].diff().dropna()
    gaps = bars["timestamp"].iloc[1:][steps.to_numpy() > DAY]
    assert len(gaps) >= 5
    first_missing = gaps.iat[0] - 3 * DAY
    refetch = src_exchange.fetch_daily_bars(market, since=first_missing, until=gaps.iat[0])
    assert refetch.empty


def test_simulated_new_listing_has_short_history(src_exchange, src_now):
    bars = _all_bars(src_exchange, "SIM_NEWBUSDT")
    assert len(bars) == NEW_LISTING_BARS
    assert bars["timestamp"].iat[-1] == src_now.floor("D") - DAY


def test_simulated_delisted_symbol_is_inactive_and_stale(src_exchange, src_now):
    market = next(m for m in src_exchange.load_markets() if m.symbol_key == "SIM_GONEUSDT")
    assert not market.active
    bars = _all_bars(src_exchange, "SIM_GONEUSDT")
    assert bars["timestamp"].iat[-1] == src_now.floor("D") - DELISTED_DAYS_BEFORE_TODAY * DAY
    assert all(m.active for m in src_exchange.load_markets() if m.symbol_key != "SIM_GONEUSDT")


def test_simulated_planted_defects_are_listed(src_exchange):
    keys = {m.symbol_key for m in src_exchange.load_markets()}
    assert set(PLANTED_DEFECTS) <= keys


def test_simulated_sectors_intra_correlation_above_inter(src_exchange, src_now):
    markets = [
        m for m in src_exchange.load_markets() if m.quote == "USDT" and m.sector and m.symbol_key not in PLANTED_DEFECTS
    ]
    returns = np.log(_closes(src_exchange, markets, src_now - 1000 * DAY)).diff().iloc[1:]
    corr = returns.corr().to_numpy()
    sectors = np.array([m.sector for m in markets])
    off_diagonal = ~np.eye(len(markets), dtype=bool)
    same = (sectors[:, None] == sectors[None, :]) & off_diagonal
    intra, inter = corr[same].mean(), corr[~same & off_diagonal].mean()
    assert len(set(sectors)) == 6
    assert intra > inter + 0.15, (intra, inter)
    assert 0.05 < inter < 0.5


def test_simulated_returns_are_fat_tailed_and_volatility_clusters(src_exchange, src_now):
    markets = [
        m for m in src_exchange.load_markets() if m.quote == "USDT" and m.sector and m.symbol_key not in PLANTED_DEFECTS
    ]
    returns = np.log(_closes(src_exchange, markets, src_now - 1200 * DAY)).diff().iloc[1:]
    assert returns.kurt().median() > 1.5
    absolute = returns.abs()
    assert np.median([absolute[c].autocorr(5) for c in absolute]) > 0.05


def test_simulated_bars_are_consistent_and_traded_value_plausible(src_exchange):
    medians = []
    for market in src_exchange.load_markets():
        bars = _all_bars(src_exchange, market.symbol_key)
        values = bars[["open", "high", "low", "close", "volume"]].to_numpy()
        assert np.isfinite(values).all() and (values[:, :4] > 0).all() and (values[:, 4] > 0).all()
        assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
        assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
        assert bars["timestamp"].is_monotonic_increasing and bars["timestamp"].is_unique
        assert str(bars["timestamp"].dtype) == "datetime64[ms, UTC]"
        if market.quote == "USDT":
            medians.append((bars["close"] * bars["volume"]).median())
    assert 1e5 <= min(medians) and max(medians) <= 1e10
    assert max(medians) / min(medians) > 1e3


def test_simulated_history_covers_three_years(src_exchange, src_now):
    bars = _all_bars(src_exchange, "SIM_BTCUSDT")
    assert len(bars) >= 3 * 365
    assert bars["timestamp"].iat[0] == pd.Timestamp("2021-01-01", tz="UTC")


def test_simulated_markets_have_metadata_and_excludable_pairs(src_exchange):
    markets = {m.symbol_key: m for m in src_exchange.load_markets()}
    assert sum(m.quote == "USDT" and m.sector is not None for m in markets.values()) == 60
    assert {"SIM_USDCUSDT", "SIM_FDUSDUSDT", "SIM_BTCUPUSDT", "SIM_ETHBTC"} <= set(markets)
    btc = markets["SIM_BTCUSDT"]
    assert (btc.ccxt_symbol, btc.base, btc.quote, btc.sector) == ("BTC/USDT", "BTC", "USDT", "L1")
    for market in markets.values():
        assert market.tick_size > 0 and market.lot_size > 0 and market.min_notional > 0


def test_simulated_stablecoin_stays_pegged(src_exchange):
    closes = _all_bars(src_exchange, "SIM_USDCUSDT")["close"]
    assert (closes.sub(1.0).abs() < 0.01).all()


def test_simulated_tickers_come_from_last_closed_bar(src_exchange):
    tickers = src_exchange.fetch_tickers()
    bars = _all_bars(src_exchange, "SIM_ETHUSDT")
    ticker = tickers["SIM_ETHUSDT"]
    assert ticker.last == bars["close"].iat[-1]
    assert ticker.quote_volume == pytest.approx(bars["close"].iat[-1] * bars["volume"].iat[-1])


def test_simulated_still_forming_bar_never_served(src_now):
    exchange = SimulatedExchange(now=src_now)
    market = exchange.load_markets()[0]
    bars = exchange.fetch_daily_bars(market, since=src_now.floor("D") - 3 * DAY, until=src_now + 5 * DAY)
    assert bars["timestamp"].max() == src_now.floor("D") - DAY
    assert len(bars) == 3


def test_simulated_fetch_range_is_half_open(src_exchange, src_now):
    market = src_exchange.load_markets()[0]
    since = src_now.floor("D") - 10 * DAY
    bars = src_exchange.fetch_daily_bars(market, since=since, until=since + 4 * DAY)
    assert list(bars["timestamp"]) == [since + i * DAY for i in range(4)]


def test_simulated_requests_counted_one_per_call(src_now):
    exchange = SimulatedExchange(now=src_now)
    markets = exchange.load_markets()
    exchange.fetch_tickers()
    exchange.fetch_daily_bars(markets[0], since=EPOCH, until=src_now)
    assert exchange.requests_made == 3


def test_simulated_default_clock_is_read_at_call_time():
    exchange = SimulatedExchange()
    assert abs(exchange.now() - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(seconds=5)


def test_simulated_unknown_market_raises_source_error(src_exchange):
    stranger = Market(symbol_key="SIM_NOPEUSDT", ccxt_symbol="NOPE/USDT", base="NOPE", quote="USDT")
    with pytest.raises(SourceError, match="does not list market 'SIM_NOPEUSDT'"):
        src_exchange.fetch_daily_bars(stranger, since=EPOCH, until=EPOCH + DAY)


def test_simulated_other_venue_lists_the_same_pairs_and_bars_under_its_prefix(src_exchange, src_now):
    venue = SimulatedExchange(seed=7, now=src_now, exchange_key="SIMB")
    sim_markets, venue_markets = src_exchange.load_markets(), venue.load_markets()
    assert venue.exchange_key == "SIMB"
    assert [m.symbol_key for m in venue_markets] == ["SIMB" + m.symbol_key[3:] for m in sim_markets]
    assert [m.active for m in venue_markets] == [m.active for m in sim_markets]  # SIMB_GONEUSDT is delisted too
    for key in ("BTCUSDT", "PUMPUSDT", "HOLEUSDT", "ETHBTC"):
        pd.testing.assert_frame_equal(_all_bars(venue, f"SIMB_{key}"), _all_bars(src_exchange, f"SIM_{key}"))
    with pytest.raises(SourceError, match="SIMB does not list market 'SIM_BTCUSDT'"):
        venue.fetch_daily_bars(sim_markets[0], since=EPOCH, until=EPOCH + DAY)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"exchange_key": "simb"}, UnsafeKeyError, r"`exchange_key` must be 1 to 32 characters in \[A-Z0-9\]"),
        ({"exchange_key": "SIM_B"}, UnsafeKeyError, r"`exchange_key` must be 1 to 32 characters in \[A-Z0-9\]"),
        ({"n_symbols": 5}, ValueError, r"`n_symbols` must be in \[10, 5000\], got 5"),
        ({"n_symbols": 5001}, ValueError, r"`n_symbols` must be in \[10, 5000\], got 5001"),
        ({"n_symbols": 60.0}, TypeError, "`n_symbols` must be an int, got float"),
        ({"seed": -1}, ValueError, "`seed` must be >= 0, got -1"),
        ({"now": pd.Timestamp("2026-01-01")}, ValueError, "`now` must be timezone-aware"),
        ({"history_start": "2021-01-01T06:00Z"}, ValueError, "`history_start` must be a UTC midnight"),
    ],
    ids=[
        "lowercase-exchange",
        "underscore-exchange",
        "too-few",
        "too-many",
        "float-count",
        "negative-seed",
        "naive-now",
        "not-midnight",
    ],
)
def test_simulated_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        SimulatedExchange(**kwargs)


def test_simulated_naive_bounds_raise(src_exchange):
    with pytest.raises(ValueError, match="`since` must be timezone-aware"):
        src_exchange.fetch_daily_bars(
            src_exchange.load_markets()[0],
            since=pd.Timestamp("2024-01-01"),
            until=pd.Timestamp("2024-02-01", tz="UTC"),
        )
