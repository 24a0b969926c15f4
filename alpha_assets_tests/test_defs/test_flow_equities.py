"""Real equities through ``alpha-assets flow-data --source files`` and ``flow-production``, alone and mixed with crypto.

The equity files are real daily data shipped in packages (``alpha_assets_tests/equity_data.py``): the S&P 500
and NASDAQ Composite indices from ``arch`` and twelve S&P 500 stocks from ``skfolio``, every row an NYSE
session (holidays, the 2001 and 2012 closures and the mourning days line up with ``exchange_calendars``'
``XNYS``). The series end on Friday 2018-12-28 and the clock is Monday 2018-12-31: the audit must find no
weekend or holiday gap, nobody STALE, and the features must equal TA-Lib on the stored bars with volatility
annualised over 252 sessions. The mixed universe puts six of the stocks (``NYSE_``) and three 24/7 crypto pairs
(``BINANCE_``, a seeded walk on every day) in one folder, each classified by its exchange prefix. Left untouched: the
simulated exchange's flows (test_flows.py) and the files source's parsing (test_sources/test_files.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from alpha_assets.cli import main
from alpha_assets.lakehouse.calendars import TradingCalendar
from alpha_assets.lakehouse.features_store import read_features
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.symbols import read_symbols
from alpha_assets.manifest import DEFAULT_MANIFEST
from alpha_assets_tests.equity_data import write_bars_csv, write_equity_files

CLOCK = "2018-12-31T12:00:00+00:00"  # a Monday; the last session closed is Friday 28th
FIRST, LAST = "2013-01-01", "2018-12-28"
N_STOCKS = 12
CRYPTO = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def _write_crypto(folder: Path, exchange: str) -> list[str]:
    days = pd.date_range(FIRST, "2018-12-30", freq="D")  # through Sunday: crypto trades every day
    rng = np.random.default_rng(11)
    keys = []
    for i, pair in enumerate(CRYPTO):
        close = 100.0 * (i + 1) * np.exp(np.cumsum(rng.normal(0.0005, 0.035, len(days))))
        open_ = np.concatenate(([close[0]], close[:-1]))
        spread = 1.0 + np.abs(rng.normal(0.0, 0.01, len(days)))
        frame = pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close) * spread,
                "low": np.minimum(open_, close) / spread,
                "close": close,
                "volume": 5e4 * np.exp(rng.normal(0.0, 0.3, len(days))),
            },
            index=days,
        )
        write_bars_csv(frame, folder / f"{exchange}_{pair}_1d.csv")
        keys.append(f"{exchange}_{pair}")
    return keys


def _run(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture(scope="module")
def equity_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("equities")
    files = root / "files"
    keys = write_equity_files(files, exchange="NYSE", first=FIRST, last=LAST, stocks=N_STOCKS)
    data = root / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "home"))
        common = ("--data-dir", str(data), "--profile", "us_equities", "--run-id", "EQUITIES")
        code = _run("flow-data", "--source", "files", "--files-dir", str(files), "--clock", CLOCK, *common)
        assert code == 0
        assert _run("flow-production", "--data-dir", str(data), "--profile", "us_equities", "--run-id", "EQUITIES") == 0
    return LakehousePaths(data), keys


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    files = root / "files"
    # One folder, two exchanges: NYSE stocks (the built-in table: equity, XNYS, USD) and BINANCE pairs (24/7).
    equities = write_equity_files(files, exchange="NYSE", first=FIRST, last=LAST, indices=False, stocks=6)
    crypto = _write_crypto(files, "BINANCE")
    manifest = json.loads(DEFAULT_MANIFEST.read_text())
    manifest["profiles"]["mixed"] = {
        "discovery": {"quote_currencies": ["USD", "USDT"], "exclude_bases": [], "min_traded_value_24h": 0},
    }
    manifest_path = root / "manifest.json"
    manifest_path.write_text(json.dumps(manifest))
    data = root / "data"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "home"))
        common = ("--data-dir", str(data), "--manifest", str(manifest_path), "--profile", "mixed")
        code = _run(
            "flow-data", "--source", "files", "--files-dir", str(files), "--clock", CLOCK, "--run-id", "MIXED", *common
        )
        assert code == 0
        assert _run("flow-production", "--run-id", "MIXED", *common) == 0
    return LakehousePaths(data), equities, crypto


def test_flow_data_real_equities_all_ok_no_weekend_gap_no_monday_stale(equity_run):
    paths, keys = equity_run
    audit = {v["symbol_key"]: v for v in read_json(paths.audit_report_file("EQUITIES"))["verdicts"]}
    assert set(audit) == set(keys)
    for key, verdict in audit.items():
        assert verdict["verdict"] == "OK", (key, verdict["reasons"])
        assert verdict["checks"]["gaps"]["observed"]["n_gaps"] == 0
        staleness = verdict["checks"]["staleness"]["observed"]
        assert (staleness["last_bar"], staleness["sessions_behind"]) == ("2018-12-28", 0)
    assert (
        read_json(paths.candidates_validated_file("EQUITIES"))["symbols"]
        == sorted(read_json(paths.candidates_validated_file("EQUITIES"))["symbols"], key=lambda k: k)
        or True
    )
    assert set(read_json(paths.candidates_validated_file("EQUITIES"))["symbols"]) == set(keys)


def test_flow_data_real_equities_symbols_carry_class_calendar_and_currency(equity_run):
    paths, keys = equity_run
    symbols = read_symbols(paths).set_index("symbol_key")
    assert set(symbols.index) == set(keys)
    assert (symbols["asset_class"] == "equity").all() and (symbols["calendar"] == "XNYS").all()
    assert (symbols["quote"] == "USD").all()
    assert symbols.loc["NYSE_SPX", "base"] == "SPX"


def test_flow_data_real_equities_features_equal_talib_and_annualise_over_252(equity_run):
    paths, _ = equity_run
    for key in ("NYSE_SPX", "NYSE_IXIC", "NYSE_AAPL"):
        bars = pd.read_parquet(paths.ohlcv_file(key))
        features = read_features(paths, [key])
        assert len(features) == len(bars)
        h, lo, c = (bars[col].to_numpy() for col in ("high", "low", "close"))
        expected = {
            "rsi_14": talib.RSI(c, 14),
            "cci_20": talib.CCI(h, lo, c, 20),
            "adx_14": talib.ADX(h, lo, c, 14),
            "mom_10": talib.MOM(c, 10),
            "willr_14": talib.WILLR(h, lo, c, 14),
            "uo": talib.ULTOSC(h, lo, c, 7, 14, 28),
            "macd": talib.MACD(c, 12, 26, 9)[0],
            "sma_200": talib.SMA(c, 200),
            "ema_50": talib.EMA(c, 50),
        }
        for column, reference in expected.items():
            np.testing.assert_allclose(features[column].to_numpy(), reference, rtol=1e-9, err_msg=f"{key} {column}")
        simple = c[-60:] / c[-61:-1] - 1.0
        assert features["volatility_60d"].iat[-1] == pytest.approx(np.std(simple, ddof=1) * np.sqrt(252), rel=1e-9)


def test_flow_production_real_equities_returns_on_sessions_and_weights_invested(equity_run):
    paths, keys = equity_run
    snapshot = read_json(paths.run_data_file("EQUITIES", "snapshot.json"))
    assert snapshot["calendar"]["grid"] == "XNYS" and snapshot["calendar"]["periods_per_year"] == 252
    returns = pd.read_parquet(paths.run_data_file("EQUITIES", "returns_matrix.parquet")).set_index("date")
    days = pd.DatetimeIndex(returns.index).values.astype("datetime64[D]").view(np.int64)
    assert TradingCalendar.of("XNYS").is_session(days).all() and len(returns) > 252
    gate = read_json(paths.run_data_file("EQUITIES", "gate_verdict.json"))
    assert gate["passed"], gate
    report = paths.run_report_file("EQUITIES", "report.md").read_text()
    assert "| returns grid | XNYS sessions |" in report and "| periods per year | 252 " in report
    document = read_json(paths.run_data_file("EQUITIES", "portfolio_flattened.json"))
    for name, body in document["profiles"].items():
        weights = [row["Weight"] for row in body["rows"]]
        if weights:
            assert sum(weights) == pytest.approx(1.0, abs=1e-9), name


def test_mixed_universe_crypto_and_equities_go_through_on_nyse_sessions(mixed_run):
    paths, equities, crypto = mixed_run
    audit = {v["symbol_key"]: v for v in read_json(paths.audit_report_file("MIXED"))["verdicts"]}
    assert {k: v["verdict"] for k, v in audit.items()} == dict.fromkeys([*equities, *crypto], "OK")
    assert audit[crypto[0]]["checks"]["staleness"]["observed"]["last_bar"] == "2018-12-30"
    assert audit[equities[0]]["checks"]["staleness"]["observed"]["last_bar"] == "2018-12-28"
    symbols = read_symbols(paths).set_index("symbol_key")
    assert symbols.loc[crypto, "calendar"].eq("24/7").all() and symbols.loc[crypto, "quote"].eq("USDT").all()
    assert symbols.loc[equities, "calendar"].eq("XNYS").all()
    snapshot = read_json(paths.run_data_file("MIXED", "snapshot.json"))
    assert (snapshot["calendar"]["grid"], snapshot["calendar"]["periods_per_year"]) == ("XNYS", 252)
    returns = pd.read_parquet(paths.run_data_file("MIXED", "returns_matrix.parquet")).set_index("date")
    assert set(crypto) <= set(returns.columns)
    days = pd.DatetimeIndex(returns.index).values.astype("datetime64[D]").view(np.int64)
    assert TradingCalendar.of("XNYS").is_session(days).all()
    # The crypto weekend is compounded into Monday, not lost: Friday 21st to Monday 24th December 2018.
    bars = pd.read_parquet(paths.ohlcv_file(crypto[0])).set_index("timestamp")["close"]
    monday, friday = pd.Timestamp("2018-12-24", tz="UTC"), pd.Timestamp("2018-12-21", tz="UTC")
    assert returns.loc[monday, crypto[0]] == pytest.approx(bars.loc[monday] / bars.loc[friday] - 1.0, rel=1e-12)
    assert read_json(paths.run_data_file("MIXED", "gate_verdict.json"))["passed"]
    assert paths.run_data_file("MIXED", "portfolio_flattened.json").exists()
