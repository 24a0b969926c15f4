"""``alpha-assets flow-data --source files`` through Dagster on a folder of real-world files of two exchanges.

Exercised: several exchanges in one folder, CSV and parquet, ISO, date-only and epoch-second timestamps, the
exact parsed prices in the stored bars, ``--clock`` deciding the last closed bar, and every refused file
reported with its reason in the command's summary and in the metadata of the discovery and ingestion
materialisations. Leaves to test_sources/test_files.py the parsing rules one by one.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from alpha_assets.cli import main
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets_tests.test_defs.conftest import TEST_MANIFEST

CLOCK = "2026-11-25T12:00:00+00:00"
RUN_ID = "FILES_RUN_1"
N_DAYS = 760
REFUSED = {
    "BINANCE_XRPUSDT_1d.csv": "semicolon-separated",
    "BINANCE_ADAUSDT_1d.csv": "intraday bars",
    "BINANCE_DOTUSDT_1d.csv": "lacks columns ['volume']",
    "README.txt": "name is not <EXCHANGE>_<SYMBOL>_1d.csv or .parquet",
}


def _prices(seed: int) -> pd.DataFrame:
    """A random walk of daily bars up to the day before CLOCK, prices written with 2 to 8 decimals."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, N_DAYS)))
    days = pd.date_range(end=pd.Timestamp(CLOCK).floor("D") - pd.Timedelta(days=1), periods=N_DAYS, tz="UTC")
    decimals = int(rng.integers(2, 9))
    return pd.DataFrame(
        {
            "timestamp": days,
            "open": np.round(close * (1 + rng.normal(0, 0.003, N_DAYS)), decimals),
            "high": np.round(close * 1.02, decimals),
            "low": np.round(close * 0.97, decimals),
            "close": np.round(close, decimals),
            "volume": np.round(rng.uniform(1e3, 1e5, N_DAYS), 3),
        }
    )


@pytest.fixture(scope="module")
def files_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("files_flow")
    folder = root / "files"
    folder.mkdir()
    btc = _prices(1)
    # A bar after the clock (in the file already) is not taken: the clock says it has not closed.
    after_clock = btc.iloc[[-1]].assign(timestamp=pd.Timestamp(CLOCK).floor("D") + pd.Timedelta(days=1))
    text = pd.concat([btc, after_clock]).assign(timestamp=lambda f: f["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    text.to_csv(folder / "BINANCE_BTCUSDT_1d.csv", index=False)
    _prices(2).to_parquet(folder / "BINANCE_ETHUSDT_1d.parquet")
    sol = _prices(3)
    sol.assign(timestamp=sol["timestamp"].dt.strftime("%Y-%m-%d")).rename(columns=str.title).to_csv(
        folder / "COINBASE_SOLUSDT_1d.csv", index=False
    )
    (folder / "BINANCE_XRPUSDT_1d.csv").write_text("timestamp;open;high;low;close;volume\n2024-01-02;1;2;1;1;1\n")
    minutes = pd.date_range("2026-11-20", periods=2000, freq="min", tz="UTC")
    pd.DataFrame({"timestamp": minutes.astype("int64") // 10**9, "open": 1, "high": 2, "low": 1, "close": 1}).assign(
        volume=1
    ).to_csv(folder / "BINANCE_ADAUSDT_1d.csv", index=False)
    _prices(4).drop(columns="volume").to_csv(folder / "BINANCE_DOTUSDT_1d.csv", index=False)
    (folder / "README.txt").write_text("bars exported on 2026-11-25\n")
    manifest = root / "manifest.json"
    manifest.write_text(json.dumps(TEST_MANIFEST))
    home = root / "dagster_home"
    home.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(home))
    data = root / "data"
    argv = ["flow-data", "--source", "files", "--files-dir", str(folder), "--clock", CLOCK, "--run-id", RUN_ID]
    yield {"argv": [*argv, "--data-dir", str(data), "--manifest", str(manifest)], "data": data, "home": home}
    mp.undo()


@pytest.fixture(scope="module")
def flow_output(files_run):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(files_run["argv"])
    return code, out.getvalue()


def test_files_of_two_exchanges_in_one_folder_become_candidates(files_run, flow_output):
    code, output = flow_output
    assert code == 0, output
    candidates = read_json(LakehousePaths(files_run["data"]).candidates_file(RUN_ID))
    assert {c["symbol_key"] for c in candidates["candidates"]} == {
        "BINANCE_BTCUSDT",
        "BINANCE_ETHUSDT",
        "COINBASE_SOLUSDT",
    }
    assert {m["exchange"] for m in candidates["markets"].values()} == {"BINANCE", "COINBASE"}


def test_stored_bars_are_the_exact_parsed_prices_up_to_the_clock(files_run, flow_output):
    paths = LakehousePaths(files_run["data"])
    expected = _prices(1)
    stored = read_ohlcv(paths, "BINANCE_BTCUSDT")
    tail = expected.iloc[-len(stored) :].reset_index(drop=True)
    assert stored["timestamp"].max() == pd.Timestamp(CLOCK).floor("D") - pd.Timedelta(days=1)
    for column in ("open", "high", "low", "close", "volume"):
        texts = tail[column].map(repr)  # what to_csv wrote
        assert np.array_equal(stored[column].to_numpy(), np.array([float(t) for t in texts])), column


def test_every_refused_file_is_in_the_summary_and_the_metadata(files_run, flow_output):
    _, output = flow_output
    assert f"files skipped: {len(REFUSED)}" in output
    lines = dict(line.strip().split(": ", 1) for line in output.splitlines() if ": " in line)
    for name, reason in REFUSED.items():
        assert reason in lines[name], (name, lines.get(name))
    instance = DagsterInstance.from_config(str(files_run["home"]))
    try:
        for asset in ("candidates", "ohlcv"):
            event = instance.get_latest_materialization_event(AssetKey(asset))
            metadata = event.asset_materialization.metadata
            skipped = {entry["name"]: entry["reason"] for entry in metadata["skipped_files"].value}
            names = set(REFUSED) if asset == "candidates" else {"README.txt"}
            assert names <= set(skipped), (asset, skipped)
            assert "skipped_files_table" in metadata
    finally:
        instance.dispose()
