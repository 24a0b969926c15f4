"""Secrets: exchange credentials planted in the environment never reach a file, a log line or the exchange.

``alpha-assets flow-data --source ccxt`` runs in-process against the local Binance-format server with
``ALPHA_ASSETS_EXCHANGE_API_KEY`` and ``ALPHA_ASSETS_EXCHANGE_SECRET`` set to planted values, once succeeding and
once failing inside the ingestion (so error messages and tracebacks are recorded too). Then every file under the
data folder and ``DAGSTER_HOME`` (the sqlite event logs and run storage included), the captured stdout/stderr
and the requests the server received are searched for the planted values, raw and URL-encoded.

Leaves to other modules: the source's own credential handling (test_sources/test_exchange.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest

from alpha_assets.cli import main
from alpha_assets.defs.dataops.resources import API_KEY_ENV, API_SECRET_ENV
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets_tests.exchange_server import KLINES_PATH, ExchangeServer, Fault
from alpha_assets_tests.test_reliability.conftest import CLOCK, SMALL_MANIFEST

PLANTED_KEY = "PLANTEDkey0ab1cd2ef3GH4ij5KL6mn7"
PLANTED_SECRET = "PLANTED+secret/9zy8XW7vu6TS5rq4=="
PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT")


def _needles() -> list[bytes]:
    values = (PLANTED_KEY, PLANTED_SECRET)
    return sorted({form.encode() for v in values for form in (v, quote(v, safe=""), json.dumps(v)[1:-1])})


def _bars() -> dict[str, pd.DataFrame]:
    now = pd.Timestamp(CLOCK)
    simulated = SimulatedExchange(seed=3, now=now, n_symbols=12)
    markets = {m.ccxt_symbol: m for m in simulated.load_markets()}
    return {
        pair: simulated.fetch_daily_bars(markets[pair], since=now - pd.Timedelta(days=500), until=now.floor("D"))
        for pair in PAIRS
    }


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found += [f"{path.relative_to(root)}: {needle.decode()}" for needle in needles if needle in data]
    return found


@pytest.mark.parametrize(
    "fails",
    [
        pytest.param(
            False,
            id="successful_run",
            marks=pytest.mark.reliability(
                fault="exchange credentials planted in ALPHA_ASSETS_EXCHANGE_API_KEY / _SECRET, "
                "flow-data --source ccxt succeeding",
                expected="the planted values appear in no file under the data folder or DAGSTER_HOME (sqlite event "
                "logs included), not in stdout/stderr, not in any request sent to the exchange",
            ),
        ),
        pytest.param(
            True,
            id="failing_run",
            marks=pytest.mark.reliability(
                fault="the same planted credentials, flow-data --source ccxt failing in the ingestion (non-JSON "
                "answers), so errors and tracebacks are recorded",
                expected="exit code 2 with the reason, and still no planted value in any file, stream or request",
            ),
        ),
    ],
)
def test_planted_credentials_never_leak(tmp_path, monkeypatch, capfd, fails):
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(SMALL_MANIFEST))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(API_KEY_ENV, PLANTED_KEY)
    monkeypatch.setenv(API_SECRET_ENV, PLANTED_SECRET)
    with ExchangeServer(_bars()) as server:
        if fails:
            server.inject(Fault.NOT_JSON, times=None, path=KLINES_PATH)
        code = main(
            [
                "flow-data",
                "--source",
                "ccxt",
                "--exchange",
                "binance",
                "--base-url",
                server.base_url,
                "--clock",
                CLOCK,
                "--run-id",
                "SECRETS",
                "--data-dir",
                str(data),
                "--manifest",
                str(manifest),
                "--profile",
                "reliability",
            ]
        )
        requests = json.dumps(server.requests)
    out, err = capfd.readouterr()
    assert code == (2 if fails else 0), err[-3000:]
    if fails:
        assert "alpha-assets: error:" in err
    else:
        assert "RUN_ID SECRETS" in out
    needles = _needles()
    assert [n for n in needles if n in (out + err).encode()] == []
    assert [n for n in needles if n in requests.encode()] == []
    assert _files_holding(data, needles) == []
    assert _files_holding(home, needles) == []
    assert any(home.rglob("*.db")), "the sqlite storages were searched"
