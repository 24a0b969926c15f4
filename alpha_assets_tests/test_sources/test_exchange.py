"""Tests of the ``ccxt`` source (``alpha_assets.sources.exchange``) against the local Binance-format server.

Exercised: market and ticker parsing, URL rebasing, pagination and its stop rules, the forming bar, retries
with backoff on 429 / 5xx / timeouts, errors mapped to ``SourceError``, malformed rows carried through to the
quarantine of ``clean_bars``, credentials kept out of ``repr``, and that every request lands on 127.0.0.1.
Left untouched: ccxt internals (nothing is mocked), real exchanges (the socket guard refuses them), async
ccxt.
"""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pandas as pd
import pytest

from alpha_assets import netguard
from alpha_assets.errors import SourceError
from alpha_assets.lakehouse.ohlcv import bars_from_exchange_rows, clean_bars
from alpha_assets.sources.base import Market, MarketSource
from alpha_assets.sources.exchange import CcxtSource
from alpha_assets_tests.exchange_server import (
    EXCHANGE_INFO_PATH,
    KLINES_PATH,
    TICKER_PATH,
    ExchangeServer,
    Fault,
    MarketSpec,
)
from alpha_assets_tests.exchanges.common import daily_bars

NOW = pd.Timestamp("2026-03-15 15:30", tz="UTC")
TODAY = NOW.floor("D")
EPOCH = pd.Timestamp("2015-01-01", tz="UTC")
FAR = pd.Timestamp("2030-01-01", tz="UTC")


class _SleepRecorder:
    """Stands in for ``time.sleep``: records the backoff waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fixture_bars() -> dict[str, pd.DataFrame]:
    return {
        "BTC/USDT": daily_bars(2_500, seed=1, last_open=TODAY, price=30_000.0),
        "ETH/USDT": daily_bars(60, seed=2, last_open=TODAY, price=2_000.0),
    }


@pytest.fixture
def server(fixture_bars: dict[str, pd.DataFrame]) -> ExchangeServer:
    markets = [
        MarketSpec("ETH/USDT", tick_size=0.01, lot_size=0.0001, min_notional=5.0),
        MarketSpec("LUNA/USDT", active=False, tick_size=0.0001, lot_size=0.01, min_notional=1.0),
        MarketSpec("BTC-W/USDT"),  # a base with a dash cannot become a safe key
    ]
    with ExchangeServer(fixture_bars, markets=markets) as running:
        yield running


@pytest.fixture
def sleep() -> _SleepRecorder:
    return _SleepRecorder()


def _source(server: ExchangeServer, sleep: _SleepRecorder, **overrides: object) -> CcxtSource:
    params: dict[str, object] = {
        "base_url": server.base_url,
        "timeout_ms": 2_000,
        "rate_limit_ms": 1,
        "jitter": 0.0,
        "now": lambda: NOW,
        "sleep": sleep,
    }
    params.update(overrides)
    return CcxtSource("binance", **params)


def _market(source: CcxtSource, ccxt_symbol: str) -> Market:
    return next(m for m in source.load_markets() if m.ccxt_symbol == ccxt_symbol)


def _closed(bars: pd.DataFrame) -> pd.DataFrame:
    return bars[bars["timestamp"] < TODAY].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ markets
def test_load_markets_exchange_info_gives_keys_sizes_and_active_flag(server, sleep):
    source = _source(server, sleep)

    markets = {m.symbol_key: m for m in source.load_markets()}

    assert set(markets) == {"BINANCE_BTCUSDT", "BINANCE_ETHUSDT", "BINANCE_LUNAUSDT"}
    luna = markets["BINANCE_LUNAUSDT"]
    assert (luna.ccxt_symbol, luna.base, luna.quote, luna.market_type) == (
        "LUNA/USDT",
        "LUNA",
        "USDT",
        "spot",
    )
    assert luna.active is False and markets["BINANCE_ETHUSDT"].active is True
    assert (luna.tick_size, luna.lot_size, luna.min_notional) == (0.0001, 0.01, 1.0)
    assert server.request_count() == 1 and server.request_count(EXCHANGE_INFO_PATH) == 1
    assert source.requests_made == 1


def test_load_markets_unsafe_base_skipped_not_raised(server, sleep):
    source = _source(server, sleep)

    keys = [m.symbol_key for m in source.load_markets()]

    assert not any("BTC-W" in key or "BTCW" in key for key in keys)
    assert [symbol for symbol, _ in source.skipped_markets] == ["BTC-W/USDT"]
    assert "refused" in source.skipped_markets[0][1]


def test_load_markets_with_credentials_calls_exchange_info_only_and_sends_no_key(server, sleep):
    source = _source(server, sleep, credentials={"apiKey": "AKIA-test-key", "secret": "not-a-real-secret"})

    source.load_markets()
    source.fetch_daily_bars(_market(source, "ETH/USDT"), since=EPOCH, until=FAR)

    assert [path for path, _ in server.requests] == [EXCHANGE_INFO_PATH, EXCHANGE_INFO_PATH, KLINES_PATH]
    sent = json.dumps([(r.path, r.params, r.headers) for r in server.request_log])
    assert "AKIA-test-key" not in sent and "not-a-real-secret" not in sent, "public calls carry no credential"


def test_source_error_text_has_credentials_blanked_out(server, sleep):
    planted = {"apiKey": "PLANTED-key-123", "secret": "PLANTED/secret+456=", "password": "PLANTED pass"}
    source = _source(server, sleep, credentials=planted, max_retries=0)
    # A market name that carries the planted values stands in for any text that could quote them back.
    echo = Market(
        symbol_key="BINANCE_ECHOUSDT", ccxt_symbol="PLANTED-key-123/PLANTED%2Fsecret%2B456%3D", base="E", quote="U"
    )

    with pytest.raises(SourceError) as info:
        source.fetch_daily_bars(echo, since=EPOCH, until=FAR)

    assert "PLANTED-key-123" not in str(info.value) and "PLANTED%2Fsecret%2B456%3D" not in str(info.value)
    assert "[REDACTED]" in str(info.value)
    assert info.value.__cause__ is None, "the ccxt exception, which could quote the answer, is not chained"


def test_ccxt_source_implements_market_source_protocol(server, sleep):
    source = _source(server, sleep)

    assert isinstance(source, MarketSource)
    assert source.exchange_key == "BINANCE"


# ------------------------------------------------------------------------------------------------ tickers
def test_fetch_tickers_quote_volume_from_exchange(server, sleep, fixture_bars):
    source = _source(server, sleep)

    tickers = source.fetch_tickers()

    eth = fixture_bars["ETH/USDT"].iloc[-1]
    assert tickers["BINANCE_ETHUSDT"].last == pytest.approx(eth["close"])
    assert tickers["BINANCE_ETHUSDT"].quote_volume == pytest.approx(eth["close"] * eth["volume"])
    assert "BINANCE_BTCWUSDT" not in tickers
    assert server.request_count(TICKER_PATH) == 1


def test_fetch_tickers_quote_volume_missing_falls_back_to_base_volume_times_last(server, sleep):
    server.set_ticker("ETH/USDT", quoteVolume=None, volume="250.0", lastPrice="2000.0")
    source = _source(server, sleep)

    ticker = source.fetch_tickers()["BINANCE_ETHUSDT"]

    assert ticker.last == 2000.0
    assert ticker.quote_volume == pytest.approx(500_000.0)


# -------------------------------------------------------------------------------------------------- bars
def test_fetch_daily_bars_2500_bars_page_limit_1000_makes_three_kline_requests(server, sleep, fixture_bars):
    source = _source(server, sleep, page_limit=1000)
    btc = _market(source, "BTC/USDT")

    bars = source.fetch_daily_bars(btc, since=EPOCH, until=FAR)

    assert server.request_count(KLINES_PATH, symbol="BTC/USDT") == 3
    expected = _closed(fixture_bars["BTC/USDT"])
    assert len(bars) == 2_499
    pd.testing.assert_frame_equal(bars, expected, check_dtype=False)
    assert str(bars["timestamp"].dt.tz) == "UTC"
    starts = [int(params["startTime"]) for path, params in server.requests if path == KLINES_PATH]
    assert starts[1] == int(expected["timestamp"].iloc[999].value // 10**6) + 86_400_000, "the day after page 1"
    assert sleep.waits == []


def test_fetch_daily_bars_forming_bar_of_today_dropped(server, sleep, fixture_bars):
    source = _source(server, sleep)
    eth = _market(source, "ETH/USDT")

    bars = source.fetch_daily_bars(eth, since=EPOCH, until=FAR)

    assert fixture_bars["ETH/USDT"]["timestamp"].iloc[-1] == TODAY
    assert bars["timestamp"].max() == TODAY - pd.Timedelta(days=1)
    assert len(bars) == 59


def test_fetch_daily_bars_window_bounds_since_included_until_excluded(server, sleep):
    source = _source(server, sleep)
    btc = _market(source, "BTC/USDT")
    since, until = TODAY - pd.Timedelta(days=10), TODAY - pd.Timedelta(days=3)

    bars = source.fetch_daily_bars(btc, since=since, until=until)

    assert bars["timestamp"].tolist() == list(pd.date_range(since, until, freq="D", inclusive="left"))


def test_fetch_daily_bars_nothing_to_fetch_sends_no_request(server, sleep):
    source = _source(server, sleep)
    eth = _market(source, "ETH/USDT")
    before = source.requests_made

    bars = source.fetch_daily_bars(eth, since=TODAY, until=FAR)

    assert bars.empty and list(bars.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert source.requests_made == before
    assert server.request_count(KLINES_PATH) == 0


def test_fetch_daily_bars_exchange_repeats_page_stops_without_looping(server, sleep, fixture_bars):
    server.inject(Fault.IGNORE_START_TIME, times=None)
    source = _source(server, sleep, page_limit=1000)
    btc = _market(source, "BTC/USDT")

    bars = source.fetch_daily_bars(btc, since=EPOCH, until=FAR)

    # Page 1 (the first 1,000 bars) moves the cursor past them; the repeats bring nothing at or after the
    # cursor, which moves on by 1,000 days each time: 2 more requests cover the ~1,500 days left.
    days_left = (TODAY - fixture_bars["BTC/USDT"]["timestamp"].iloc[1000]).days
    assert server.request_count(KLINES_PATH) == 1 + -(-days_left // 1000) == 3
    pd.testing.assert_frame_equal(bars, fixture_bars["BTC/USDT"].iloc[:1000], check_dtype=False)


def test_fetch_daily_bars_unlisted_market_raises_source_error_naming_it(server, sleep):
    source = _source(server, sleep)
    source.load_markets()
    doge = Market(symbol_key="BINANCE_DOGEUSDT", ccxt_symbol="DOGE/USDT", base="DOGE", quote="USDT")

    with pytest.raises(SourceError, match=r"binance fetch_ohlcv of DOGE/USDT failed: BadSymbol"):
        source.fetch_daily_bars(doge, since=EPOCH, until=FAR)
    assert sleep.waits == []


@pytest.mark.parametrize(
    ("since", "until", "error", "match"),
    [
        (pd.Timestamp("2026-01-01"), FAR, ValueError, r"`since` must be timezone-aware \(UTC\), got naive"),
        (EPOCH, pd.Timestamp("2026-01-01"), ValueError, r"`until` must be timezone-aware \(UTC\), got naive"),
        ("2026-01-01", FAR, TypeError, r"`since` must be a timezone-aware timestamp, got str"),
    ],
    ids=["naive-since", "naive-until", "string-since"],
)
def test_fetch_daily_bars_bad_bounds_raise(server, sleep, since, until, error, match):
    source = _source(server, sleep)
    eth = _market(source, "ETH/USDT")

    with pytest.raises(error, match=match):
        source.fetch_daily_bars(eth, since=since, until=until)


def test_fetch_daily_bars_not_a_market_raises_type_error(server, sleep):
    source = _source(server, sleep)

    with pytest.raises(TypeError, match=r"`market` must be a Market, got str"):
        source.fetch_daily_bars("ETH/USDT", since=EPOCH, until=FAR)


# ------------------------------------------------------------------------------------------------ retries
def test_fetch_daily_bars_429_then_success_retries_with_exponential_waits(server, sleep, fixture_bars):
    source = _source(server, sleep, backoff_base_s=0.5, backoff_cap_s=8.0)
    eth = _market(source, "ETH/USDT")
    server.inject(Fault.RATE_LIMITED, times=3, path=KLINES_PATH)

    bars = source.fetch_daily_bars(eth, since=EPOCH, until=FAR)

    assert sleep.waits == [0.5, 1.0, 2.0]
    assert server.request_count(KLINES_PATH) == 4
    pd.testing.assert_frame_equal(bars, _closed(fixture_bars["ETH/USDT"]), check_dtype=False)


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.BAD_GATEWAY, Fault.UNAVAILABLE], ids=["500", "502", "503"])
def test_fetch_daily_bars_5xx_then_success_retries(server, sleep, fixture_bars, fault):
    source = _source(server, sleep, backoff_base_s=0.25)
    eth = _market(source, "ETH/USDT")
    server.inject(fault, times=2, symbol="ETH/USDT")

    bars = source.fetch_daily_bars(eth, since=EPOCH, until=FAR)

    assert sleep.waits == [0.25, 0.5]
    assert len(bars) == len(_closed(fixture_bars["ETH/USDT"]))


def test_load_markets_503_then_success_retries(server, sleep):
    server.inject(Fault.UNAVAILABLE, times=1, path=EXCHANGE_INFO_PATH)
    source = _source(server, sleep)

    assert len(source.load_markets()) == 3
    assert server.request_count(EXCHANGE_INFO_PATH) == 2 and sleep.waits == [0.5]


def test_fetch_daily_bars_stall_beyond_timeout_is_retried(server, sleep, fixture_bars):
    source = _source(server, sleep, timeout_ms=400)
    eth = _market(source, "ETH/USDT")
    server.inject(Fault.STALL, times=1, path=KLINES_PATH, stall_s=2.0)

    bars = source.fetch_daily_bars(eth, since=EPOCH, until=FAR)

    assert len(bars) == len(_closed(fixture_bars["ETH/USDT"]))
    assert sleep.waits == [0.5]
    assert server.request_count(KLINES_PATH) == 2


def test_fetch_daily_bars_stall_without_retries_surfaces_request_timeout(server, sleep):
    source = _source(server, sleep, timeout_ms=400, max_retries=0)
    eth = _market(source, "ETH/USDT")
    server.inject(Fault.STALL, times=1, path=KLINES_PATH, stall_s=2.0)

    with pytest.raises(SourceError, match=r"of ETH/USDT failed after 1 tries; last error RequestTimeout") as info:
        source.fetch_daily_bars(eth, since=EPOCH, until=FAR)
    assert type(info.value.__cause__).__name__ == "RequestTimeout"


def test_fetch_daily_bars_persistent_429_raises_naming_market_and_tries(server, sleep):
    source = _source(server, sleep, max_retries=4, backoff_base_s=1.0, backoff_cap_s=3.0)
    btc = _market(source, "BTC/USDT")
    server.inject(Fault.RATE_LIMITED, times=None, symbol="BTC/USDT")

    with pytest.raises(SourceError, match=r"binance fetch_ohlcv of BTC/USDT failed after 5 tries; last error DDoS"):
        source.fetch_daily_bars(btc, since=EPOCH, until=FAR)
    assert sleep.waits == [1.0, 2.0, 3.0, 3.0]  # capped at backoff_cap_s
    assert server.request_count(KLINES_PATH, symbol="BTC/USDT") == 5


def test_backoff_jitter_stays_within_bounds_and_repeats_with_seed(server, sleep):
    waits = []
    for _ in range(2):
        recorder = _SleepRecorder()
        source = _source(server, recorder, jitter=0.5, seed=7, max_retries=3, backoff_base_s=1.0, backoff_cap_s=100.0)
        eth = _market(source, "ETH/USDT")
        server.inject(Fault.RATE_LIMITED, times=3, path=KLINES_PATH)
        source.fetch_daily_bars(eth, since=EPOCH, until=FAR)
        waits.append(recorder.waits)

    assert waits[0] == waits[1]
    nominal = np.array([1.0, 2.0, 4.0])
    assert np.all(np.array(waits[0]) >= nominal) and np.all(np.array(waits[0]) < 1.5 * nominal)
    assert len(set(np.array(waits[0]) / nominal)) == 3


@pytest.mark.parametrize("fault", [Fault.TRUNCATED_JSON, Fault.NOT_JSON], ids=["truncated", "html"])
def test_fetch_daily_bars_malformed_json_once_is_retried_like_a_transient_error(server, sleep, fixture_bars, fault):
    source = _source(server, sleep)
    eth = _market(source, "ETH/USDT")
    server.inject(fault, times=1, path=KLINES_PATH)

    bars = source.fetch_daily_bars(eth, since=EPOCH, until=FAR)

    assert server.request_count(KLINES_PATH) == 2 and sleep.waits == [0.5]
    pd.testing.assert_frame_equal(bars, _closed(fixture_bars["ETH/USDT"]), check_dtype=False)


@pytest.mark.parametrize("fault", [Fault.TRUNCATED_JSON, Fault.NOT_JSON], ids=["truncated", "html"])
def test_fetch_daily_bars_malformed_json_every_time_raises_naming_the_answer(server, sleep, fault):
    source = _source(server, sleep, max_retries=2)
    eth = _market(source, "ETH/USDT")
    server.inject(fault, times=None, path=KLINES_PATH)

    with pytest.raises(
        SourceError, match=r"of ETH/USDT failed after 3 tries; last error BadResponse: .*not valid JSON"
    ):
        source.fetch_daily_bars(eth, since=EPOCH, until=FAR)
    assert server.request_count(KLINES_PATH) == 3 and sleep.waits == [0.5, 1.0]


def test_retries_stop_at_the_total_time_budget(server, sleep):
    source = _source(server, sleep, max_retries=10, backoff_base_s=1.0, backoff_cap_s=8.0, retry_budget_s=10.0)
    eth = _market(source, "ETH/USDT")
    server.inject(Fault.UNAVAILABLE, times=None, path=KLINES_PATH)

    with pytest.raises(SourceError, match=r"failed after 4 tries \(retry budget of 10 s spent\); last error"):
        source.fetch_daily_bars(eth, since=EPOCH, until=FAR)
    assert sleep.waits == [1.0, 2.0, 4.0], "the next wait (8 s) would end past the 10 s budget"


def test_fetch_tickers_truncated_json_every_time_raises_source_error(server, sleep):
    source = _source(server, sleep, max_retries=1)
    source.load_markets()
    server.inject(Fault.TRUNCATED_JSON, times=None, path=TICKER_PATH)

    with pytest.raises(SourceError, match=r"binance fetch_tickers failed after 2 tries; .*ticker/24hr.*not valid JSON"):
        source.fetch_tickers()


# ------------------------------------------------------------------------------------- malformed rows
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault.NULL_VALUES, "null, NaN or infinite value"),
        (Fault.NEGATIVE_PRICE, "price <= 0"),
        (Fault.HIGH_BELOW_LOW, "high < low"),
        (Fault.DUPLICATE_ROWS, "duplicate timestamp (later row kept)"),
    ],
    ids=["nulls", "negative-price", "high-below-low", "duplicate"],
)
def test_fetch_daily_bars_malformed_rows_reach_quarantine_end_to_end(server, sleep, fixture_bars, fault, reason):
    source = _source(server, sleep)
    eth = _market(source, "ETH/USDT")
    server.inject(fault, times=1, symbol="ETH/USDT")

    raw = source.fetch_daily_bars(eth, since=EPOCH, until=FAR)
    cleaned = clean_bars(raw, symbol_key=eth.symbol_key, now=NOW)

    expected = _closed(fixture_bars["ETH/USDT"])
    assert [record.reason for record in cleaned.quarantined] == [reason]
    assert cleaned.quarantined[0].symbol_key == "BINANCE_ETHUSDT"
    bad_day = cleaned.quarantined[0].timestamp
    assert bad_day == fixture_bars["ETH/USDT"]["timestamp"].iloc[30].isoformat()  # the middle row of the page
    kept = expected if fault is Fault.DUPLICATE_ROWS else expected[expected["timestamp"] != pd.Timestamp(bad_day)]
    assert cleaned.bars["timestamp"].tolist() == kept["timestamp"].tolist()


def test_fetch_daily_bars_unsorted_page_cleans_to_the_sorted_bars(server, sleep, fixture_bars):
    source = _source(server, sleep)
    eth = _market(source, "ETH/USDT")
    server.inject(Fault.UNSORTED_ROWS, times=1, symbol="ETH/USDT")

    cleaned = clean_bars(source.fetch_daily_bars(eth, since=EPOCH, until=FAR), symbol_key=eth.symbol_key, now=NOW)

    assert cleaned.quarantined == ()
    pd.testing.assert_frame_equal(cleaned.bars, _closed(fixture_bars["ETH/USDT"]), check_dtype=False)


def test_bars_from_exchange_rows_short_row_becomes_nan_row_for_quarantine():
    rows = [[1_700_006_400_000, 1.0, 2.0, 0.5, 1.5, 10.0], [1_700_092_800_000, 1.0, 2.0]]

    cleaned = clean_bars(bars_from_exchange_rows(rows), symbol_key="BINANCE_ETHUSDT", now=NOW)

    assert len(cleaned.bars) == 1
    assert [r.reason for r in cleaned.quarantined] == ["missing or malformed timestamp"]


# ------------------------------------------------------------------------------ configuration and safety
def test_base_url_rebases_every_api_url_of_binance(server, sleep):
    source = _source(server, sleep)

    def leaves(entry):
        return [u for v in entry.values() for u in leaves(v)] if isinstance(entry, dict) else [entry]

    urls = leaves(source._exchange.urls["api"])
    assert len(urls) == 22
    assert all(url.startswith(server.base_url + "/") for url in urls)
    assert f"{server.base_url}/api/v3" in urls


def test_every_request_lands_on_the_loopback_server(server, sleep):
    source = _source(server, sleep, page_limit=700)
    source.fetch_tickers()
    source.fetch_daily_bars(_market(source, "BTC/USDT"), since=EPOCH, until=FAR)

    assert netguard.is_installed(), "the suite's socket guard is not loaded (see alpha_assets_tests/conftest.py)"
    assert server.base_url.startswith("http://127.0.0.1:")
    assert source.requests_made == server.request_count() == 1 + 1 + 1 + 4


def test_source_without_base_url_is_stopped_by_the_socket_guard(sleep):
    source = CcxtSource("binance", timeout_ms=200, max_retries=0, sleep=sleep)

    # Guarded explicitly, so this test cannot reach Binance even if the suite's plugin were missing.
    with (
        netguard.loopback_only(),
        pytest.raises(netguard.NetworkRefusedError, match=r"api\.binance\.com"),
    ):
        source.load_markets()
    assert source.requests_made == 1


def test_repr_hides_credentials(server, sleep):
    source = _source(server, sleep, credentials={"apiKey": "AKIA-visible-key", "secret": "s3cr3t-value"})

    text = repr(source)

    assert "AKIA-visible-key" not in text and "s3cr3t-value" not in text
    assert "credentials=set" in text and "exchange_id='binance'" in text


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {"exchange_id": "not-an-exchange"},
            r"`exchange_id` must be a ccxt exchange id .*got 'not-an-exchange'",
        ),
        (
            {"base_url": "127.0.0.1:8000"},
            r"`base_url` must look like http://host:port\[/prefix\], got '127.0.0.1:8000'",
        ),
        ({"timeout_ms": 0}, r"`timeout_ms` must be an integer >= 1, got 0"),
        ({"max_retries": -1}, r"`max_retries` must be an integer >= 0, got -1"),
        ({"page_limit": 2.5}, r"`page_limit` must be an integer >= 1, got 2.5"),
        ({"market_type": "option"}, r"`market_type` must be one of \['spot', 'swap'\], got 'option'"),
        ({"retry_budget_s": -1.0}, r"`retry_budget_s` must be >= 0 seconds, got -1.0"),
        ({"backoff_base_s": -1.0}, r"`backoff_base_s` must be >= 0 seconds, got -1.0"),
        ({"backoff_cap_s": 0.1}, r"`backoff_cap_s` must be >= `backoff_base_s` \(0.5\), got 0.1"),
        ({"jitter": 2.0}, r"`jitter` must be in \[0, 1\], got 2.0"),
    ],
    ids=[
        "exchange",
        "base-url",
        "timeout",
        "retries",
        "page-limit",
        "market-type",
        "retry-budget",
        "backoff-base",
        "backoff-cap",
        "jitter",
    ],
)
def test_ccxt_source_bad_parameter_raises_value_error(overrides, match):
    params = {"exchange_id": "binance", **overrides}

    with pytest.raises(ValueError, match=match):
        CcxtSource(params.pop("exchange_id"), **params)


# ------------------------------------------------------------------------------------- the server itself
def test_exchange_server_klines_capped_at_1000_and_newest_without_start_time(server):
    url = f"{server.base_url}{KLINES_PATH}?symbol=BTCUSDT&interval=1d&limit=5000"

    with urllib.request.urlopen(url, timeout=2) as response:
        rows = json.loads(response.read())

    assert len(rows) == 1000
    assert rows[-1][0] == int(TODAY.value // 10**6)
    assert server.request_count(KLINES_PATH, symbol="BTC/USDT") == 1
