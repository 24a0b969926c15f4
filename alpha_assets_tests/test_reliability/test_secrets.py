"""Secrets: exchange credentials planted in the environment never reach a file, a log line or the exchange.

``alpha-assets flow-data --source ccxt`` runs in-process against loopback servers in binance's, okx's and
bybit's formats with ``ALPHA_ASSETS_EXCHANGE_API_KEY``, ``_SECRET`` and ``_PASSWORD`` (okx's passphrase) set to
planted values, once succeeding and three times with half the symbols failing inside the ingestion (HTML pages,
429s, 5xx), on servers whose error answers quote the request's headers back, so error messages and
tracebacks are recorded too. Then every file under the data folder and ``DAGSTER_HOME`` (the sqlite event logs
and run storage included), the captured stdout/stderr and the requests the servers received (paths, queries and
headers) are searched for the planted values, raw, URL-encoded and JSON-escaped.

Leaves to other modules: the source's own credential handling (test_sources/test_exchange.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest

from alpha_assets.cli import main
from alpha_assets.defs.dataops.resources import API_KEY_ENV, API_PASSWORD_ENVS, API_SECRET_ENV
from alpha_assets.errors import ExitCode
from alpha_assets.sources.simulated import SimulatedExchange
from alpha_assets_tests.exchanges import SERVERS
from alpha_assets_tests.exchanges.common import Fault
from alpha_assets_tests.test_reliability.conftest import CLOCK, SMALL_MANIFEST

PLANTED_KEY = "PLANTEDkey0ab1cd2ef3GH4ij5KL6mn7"
PLANTED_SECRET = "PLANTED+secret/9zy8XW7vu6TS5rq4=="
PLANTED_PASSWORD = "PLANTED pass&phrase"
PAIRS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT")


def _needles() -> list[bytes]:
    values = (PLANTED_KEY, PLANTED_SECRET, PLANTED_PASSWORD)
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
    ("exchange", "fault"),
    [
        pytest.param(
            "binance",
            None,
            id="binance_successful_run",
            marks=pytest.mark.reliability(
                fault="exchange credentials planted in ALPHA_ASSETS_EXCHANGE_API_KEY / _SECRET / _PASSWORD, "
                "flow-data --source ccxt succeeding",
                expected="the planted values appear in no file under the data folder or DAGSTER_HOME (sqlite event "
                "logs included), not in stdout/stderr, not in any request sent to the exchange (headers included)",
            ),
        ),
        pytest.param(
            "binance",
            Fault.NOT_JSON,
            id="binance_html_answers",
            marks=pytest.mark.reliability(
                fault="the same planted credentials, half the symbols answered with HTML pages every time",
                expected="exit code 3 (PARTIAL) with each failed symbol's reason, and still no planted value in any "
                "file, stream or request",
            ),
        ),
        pytest.param(
            "okx",
            Fault.RATE_LIMITED,
            id="okx_429_echoing_headers",
            marks=pytest.mark.reliability(
                fault="planted key, secret and passphrase; an okx-format server answering half the symbols with "
                "429s whose body quotes the request headers",
                expected="exit code 3 with the reasons printed; no planted value anywhere: public calls carry none",
            ),
        ),
        pytest.param(
            "bybit",
            Fault.SERVER_ERROR,
            id="bybit_5xx_echoing_headers",
            marks=pytest.mark.reliability(
                fault="planted credentials; a bybit-format server (whose load_markets goes private when ccxt holds "
                "keys) answering half the symbols with 500 pages that quote the request headers",
                expected="exit code 3 with the reasons printed; markets loaded from the public endpoint; no planted "
                "value anywhere",
            ),
        ),
    ],
)
def test_planted_credentials_never_leak(tmp_path, monkeypatch, capfd, exchange, fault):
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    manifest = tmp_path / "manifest.json"
    document = json.loads(json.dumps(SMALL_MANIFEST))
    # One quick retry: the failing symbols fail after a short backoff.
    document["profiles"]["reliability"]["source"] = {"max_retries": 1, "timeout_ms": 2000}
    manifest.write_text(json.dumps(document))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv(API_KEY_ENV, PLANTED_KEY)
    monkeypatch.setenv(API_SECRET_ENV, PLANTED_SECRET)
    monkeypatch.setenv(API_PASSWORD_ENVS[0], PLANTED_PASSWORD)
    with SERVERS[exchange](_bars(), server_time=pd.Timestamp(CLOCK), echo_headers=True) as server:
        if fault is not None:
            for pair in PAIRS[::2]:
                server.inject(fault, times=None, symbol=pair)
        code = main(
            [
                "flow-data",
                "--source",
                "ccxt",
                "--exchange",
                exchange,
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
        requests = json.dumps([(r.path, r.params, r.headers) for r in server.request_log])
    out, err = capfd.readouterr()
    assert code == (ExitCode.OK if fault is None else ExitCode.PARTIAL), err[-3000:]
    assert "RUN_ID SECRETS" in out
    if fault is not None:
        assert "failed to ingest: 3" in out and "3 symbols failed (reasons above)" in err
        if exchange != "binance":
            assert "request_headers" in out or "<pre>" in out, "the failures quote the echoed headers"
    needles = _needles()
    assert [n for n in needles if n in (out + err).encode()] == []
    assert [n for n in needles if n in requests.encode()] == []
    assert _files_holding(data, needles) == []
    assert _files_holding(home, needles) == []
    assert any(home.rglob("*.db")), "the sqlite storages were searched"
