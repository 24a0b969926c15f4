"""The DuckDB views of ``lakehouse.duckdb_views`` over a data folder written by the lakehouse's own writers.

Exercises an empty folder, a lakehouse without runs (only its views appear), a full folder (every view, row
counts, symbol keys from file names, long-form returns, flattened weights with the failed profile, selection
rows), run folders written after a refresh (globs see them; ``run_ids`` pins a list), a reader in another
process keeping the old file across a refresh, no temporary file left behind, a corrupt artifact leaving the
old database in place, an unreadable parquet file (truncated or garbage bars, symbols or returns) left out of
its view and named with ``skipped`` (and no footer read when every view builds), a damaged file of the features
Delta table refused whole, and the input errors. The DuckDB command-line client itself is not exercised.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from alpha_assets.alpha.portfolio import encode_portfolio_json
from alpha_assets.alpha.withdrawal import withdraw_downstream
from alpha_assets.errors import LakehouseReadError, UnsafeKeyError
from alpha_assets.lakehouse import duckdb_views
from alpha_assets.lakehouse.atomic import write_bytes_atomic
from alpha_assets.lakehouse.duckdb_views import VIEWS, refresh_views
from alpha_assets.lakehouse.features_store import upsert_symbol_features
from alpha_assets.lakehouse.jsonio import write_json_atomic
from alpha_assets.lakehouse.ohlcv import write_ohlcv
from alpha_assets.lakehouse.parquet import write_table_atomic
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.symbols import upsert_symbol_metadata
from alpha_assets_tests.test_reports.conftest import REP_RUN_ID, RepRun, rep_build_run

DUCK_BARS = {"BINANCE_BTCUSDT": 60, "BINANCE_ETHUSDT": 45, "BINANCE_SOLUSDT": 30}
DUCK_NOW = pd.Timestamp("2024-03-01", tz="UTC")
LAKEHOUSE_VIEWS = ["ohlcv", "symbols", "symbols_current", "features"]
#: The views over run folders: they exist with no file, empty, with the columns they have over real files.
RUN_VIEWS = [name for name in VIEWS if name not in LAKEHOUSE_VIEWS]


@pytest.fixture(scope="module")
def duck_run() -> RepRun:
    return rep_build_run(seed=5)


def _bars(rng: np.random.Generator, n_bars: int) -> pd.DataFrame:
    """Daily bars of a geometric random walk ending the day before DUCK_NOW."""
    timestamps = pd.date_range(end=DUCK_NOW - pd.Timedelta(days=1), periods=n_bars, freq="D", tz="UTC")
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, n_bars)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0.0, 0.01, n_bars)) * close
    return pd.DataFrame(
        {
            "timestamp": timestamps.astype("datetime64[ms, UTC]"),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.lognormal(12.0, 0.5, n_bars),
        }
    )


def _symbol_record(key: str, sector: str) -> dict[str, object]:
    base = key.split("_")[1].removesuffix("USDT")
    return {
        "exchange": "BINANCE",
        "symbol_key": key,
        "ccxt_symbol": f"{base}/USDT",
        "base": base,
        "quote": "USDT",
        "market_type": "spot",
        "sector": sector,
        "tick_size": 0.01,
        "lot_size": 0.001,
        "min_notional": 5.0,
        "status": "active",
        "first_bar": None,
        "last_bar": None,
    }


def _write_lakehouse(paths: LakehousePaths) -> None:
    rng = np.random.default_rng(21)
    for key, n_bars in DUCK_BARS.items():
        bars = _bars(rng, n_bars)
        write_ohlcv(paths, key, bars)
        upsert_symbol_metadata(paths, key, _symbol_record(key, "L1"), now=DUCK_NOW)
        features = pd.DataFrame(
            {
                "date": bars["timestamp"],
                "symbol": key,
                "return_20d": bars["close"].pct_change(20),
                "rsi_14": rng.uniform(0, 100, n_bars),
            }
        )
        if key != "BINANCE_SOLUSDT":  # a symbol without features yet
            upsert_symbol_features(paths, key, features)
    # A sector change opens a second version of one symbol.
    upsert_symbol_metadata(
        paths,
        "BINANCE_SOLUSDT",
        _symbol_record("BINANCE_SOLUSDT", "Meme"),
        now=DUCK_NOW + pd.Timedelta(hours=1),
    )


def _write_run(paths: LakehousePaths, run: RepRun, run_id: str) -> None:
    """The run's export and artifacts as the cycles write them, under ``run_id``."""
    symbols = list(run.returns.columns)
    write_json_atomic(
        {
            "run_id": run_id,
            "as_of": "2024-02-10T00:00:00+00:00",
            "exchange": "BINANCE",
            "symbols": symbols,
            "rejected": {},
            "candidates": [
                {
                    "symbol_key": s,
                    "ccxt_symbol": "X/USDT",
                    "base": "X",
                    "quote": "USDT",
                    "sector": "L1",
                    "rank": i + 1,
                    "quote_volume_24h": 1e6 / (i + 1),
                }
                for i, s in enumerate(symbols)
            ],
        },
        paths.candidates_validated_file(run_id),
    )
    frame = run.returns.reset_index(names="date")
    write_table_atomic(
        pa.Table.from_pandas(frame, preserve_index=False),
        paths.run_data_file(run_id, "returns_matrix.parquet"),
    )
    write_json_atomic({**run.selection_doc, "run_id": run_id}, paths.run_data_file(run_id, "selection.json"))
    write_json_atomic({**run.gate_doc, "run_id": run_id}, paths.run_data_file(run_id, "gate_verdict.json"))
    portfolio = {**run.portfolio_doc, "metadata": {**run.portfolio_doc["metadata"], "run_id": run_id}}
    write_bytes_atomic(encode_portfolio_json(portfolio), paths.run_data_file(run_id, "portfolio_flattened.json"))


def _query(paths: LakehousePaths, sql: str, parameters: list | None = None) -> list[tuple]:
    with duckdb_views.connect(paths) as connection:
        return connection.execute(sql, parameters).fetchall()


def _view_names(paths: LakehousePaths) -> list[str]:
    return [r[0] for r in _query(paths, "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1")]


def _columns(paths: LakehousePaths, view: str) -> list[tuple[str, str]]:
    return [(name, type_) for name, type_, *_ in _query(paths, f"DESCRIBE {view}")]


def test_refresh_views_empty_folder_creates_only_the_run_views_empty(tmp_path):
    paths = LakehousePaths(tmp_path / "data")
    assert refresh_views(paths) == dict.fromkeys(RUN_VIEWS, 0)
    assert paths.duckdb_file.is_file() and _view_names(paths) == sorted(RUN_VIEWS)
    assert _query(paths, "SELECT count(*) FROM weights WHERE run_id = 'ANY'") == [(0,)]


def test_refresh_views_run_views_without_files_have_the_columns_of_real_ones(tmp_path, duck_run):
    full = LakehousePaths(tmp_path / "full")
    _write_run(full, duck_run, REP_RUN_ID)
    refresh_views(full)
    empty = LakehousePaths(tmp_path / "empty")
    refresh_views(empty)
    for view in RUN_VIEWS:
        assert _columns(empty, view) == _columns(full, view), view
        assert _query(empty, f"SELECT count(*) FROM {view}") == [(0,)]


def test_refresh_views_every_portfolio_withdrawn_leaves_weights_empty_not_missing(tmp_path, duck_run):
    paths = LakehousePaths(tmp_path)
    _write_run(paths, duck_run, REP_RUN_ID)
    refresh_views(paths)
    columns = {view: _columns(paths, view) for view in ("weights", "profiles", "selection", "vetoes")}
    assert withdraw_downstream(paths, REP_RUN_ID, "the refreeze failed the gate") is not None
    counts = refresh_views(paths)
    for view, before in columns.items():
        assert counts[view] == 0 and _columns(paths, view) == before, view
    assert _query(paths, 'SELECT run_id, profile, sum("Weight") FROM weights GROUP BY ALL') == []
    assert counts["gate_checks"] == len(duck_run.gate_doc["checks"]), "the gate's verdict stays queryable"


def test_refresh_views_lakehouse_only_creates_lakehouse_views_with_counts(tmp_path):
    paths = LakehousePaths(tmp_path)
    _write_lakehouse(paths)
    counts = refresh_views(paths)
    assert list(counts) == list(VIEWS)
    assert counts == {
        "ohlcv": sum(DUCK_BARS.values()),
        "symbols": 4,
        "symbols_current": 3,
        "features": DUCK_BARS["BINANCE_BTCUSDT"] + DUCK_BARS["BINANCE_ETHUSDT"],
        **dict.fromkeys(RUN_VIEWS, 0),
    }
    assert _view_names(paths) == sorted(VIEWS)
    per_symbol = _query(paths, "SELECT symbol_key, count(*), max(timestamp) FROM ohlcv GROUP BY 1 ORDER BY 1")
    last = (DUCK_NOW - pd.Timedelta(days=1)).to_pydatetime()
    assert [(k, n) for k, n, _ in per_symbol] == sorted(DUCK_BARS.items())
    assert all(ts == last for _, _, ts in per_symbol)
    assert _query(paths, "SELECT sector FROM symbols_current WHERE symbol_key = 'BINANCE_SOLUSDT'") == [("Meme",)]


def test_refresh_views_full_folder_every_view_with_run_rows(tmp_path, duck_run):
    paths = LakehousePaths(tmp_path)
    _write_lakehouse(paths)
    _write_run(paths, duck_run, REP_RUN_ID)
    counts = refresh_views(paths)
    assert list(counts) == list(VIEWS)
    n_observations, n_assets = duck_run.returns.shape
    profiles = duck_run.portfolio_doc["profiles"]
    assert counts["returns"] == n_observations * n_assets
    assert counts["candidates_validated"] == n_assets
    assert counts["weights"] == sum(len(p["rows"]) for p in profiles.values())
    assert counts["profiles"] == len(profiles)
    assert counts["selection"] == duck_run.selection_doc["n_assets"]
    assert counts["vetoes"] == len(duck_run.selection_doc["vetoes"])
    assert counts["gate_checks"] == len(duck_run.gate_doc["checks"])


def test_refresh_views_returns_view_is_the_matrix_in_long_form(tmp_path, duck_run):
    paths = LakehousePaths(tmp_path)
    _write_run(paths, duck_run, REP_RUN_ID)
    refresh_views(paths)
    rows = _query(paths, "SELECT run_id, date, symbol_key, daily_return FROM returns")
    long = pd.DataFrame(rows, columns=["run_id", "date", "symbol_key", "daily_return"])
    assert set(long["run_id"]) == {REP_RUN_ID}
    wide = long.pivot(index="date", columns="symbol_key", values="daily_return")
    wide.index = pd.DatetimeIndex(wide.index).tz_convert("UTC")
    expected = duck_run.returns
    pd.testing.assert_frame_equal(
        wide[list(expected.columns)], expected, check_names=False, check_freq=False, check_index_type=False
    )


def test_refresh_views_weights_profiles_and_selection_match_the_documents(tmp_path, duck_run):
    paths = LakehousePaths(tmp_path)
    _write_run(paths, duck_run, REP_RUN_ID)
    refresh_views(paths)
    hrp = {r["Symbol"]: r for r in duck_run.portfolio_doc["profiles"]["hrp"]["rows"]}
    rows = _query(
        paths,
        """SELECT "Symbol", "Weight", "Net_Weight", "Direction", "Cluster_ID", "Sector"
                            FROM weights WHERE run_id = ? AND profile = 'hrp'""",
        [REP_RUN_ID],
    )
    assert {s: (w, n, d, c, sec) for s, w, n, d, c, sec in rows} == {
        s: (r["Weight"], r["Net_Weight"], r["Direction"], r["Cluster_ID"], r["Sector"]) for s, r in hrp.items()
    }
    failed = _query(paths, "SELECT status, reason, n_rows FROM profiles WHERE profile = 'max_sharpe'")
    assert failed == [("failed", duck_run.portfolio_doc["profiles"]["max_sharpe"]["reason"], 0)]
    selected = _query(paths, "SELECT symbol_key, direction, cluster FROM selection WHERE selected ORDER BY 1")
    assert selected == sorted((a["symbol"], a["direction"], a["cluster"]) for a in duck_run.selection_doc["atoms"])
    scores = dict(_query(paths, "SELECT symbol_key, score FROM selection"))
    assert scores == pytest.approx(duck_run.selection_doc["scores"])
    gate = _query(paths, "SELECT check_name, passed FROM gate_checks ORDER BY 1")
    assert gate == sorted((k, v["passed"]) for k, v in duck_run.gate_doc["checks"].items())


def test_refresh_views_globs_see_runs_written_later_and_run_ids_pin_a_list(tmp_path, duck_run):
    paths = LakehousePaths(tmp_path)
    _write_run(paths, duck_run, "20240210T000000Z")
    refresh_views(paths)
    _write_run(paths, duck_run, "20240211T000000Z")  # after the refresh
    runs = _query(paths, "SELECT DISTINCT run_id FROM weights ORDER BY 1")
    assert runs == [("20240210T000000Z",), ("20240211T000000Z",)]
    pinned = refresh_views(paths, run_ids=["20240211T000000Z", "20240299T000000Z"])  # the second has no files
    assert pinned["profiles"] == len(duck_run.portfolio_doc["profiles"])
    assert _query(paths, "SELECT DISTINCT run_id FROM returns") == [("20240211T000000Z",)]
    assert refresh_views(paths, run_ids=[]) == dict.fromkeys(RUN_VIEWS, 0)


def test_refresh_views_reader_in_another_process_keeps_the_old_file(tmp_path, duck_run):
    paths = LakehousePaths(tmp_path)
    _write_lakehouse(paths)
    refresh_views(paths)
    reader = textwrap.dedent("""
        import json, sys, duckdb
        connection = duckdb.connect(sys.argv[1], read_only=True)
        def state():
            views = [r[0] for r in connection.execute(
                "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1").fetchall()]
            count = lambda view: connection.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
            return {"views": views, "ohlcv": count("ohlcv"), "weights": count("weights")}
        print(json.dumps(state()), flush=True)
        sys.stdin.readline()
        print(json.dumps(state()), flush=True)
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", reader, str(paths.duckdb_file)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        before = json.loads(process.stdout.readline())
        _write_run(paths, duck_run, REP_RUN_ID)
        refresh_views(paths)
        out, err = process.communicate("go\n", timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err
    after = json.loads(out)
    assert before == after == {"views": sorted(VIEWS), "ohlcv": sum(DUCK_BARS.values()), "weights": 0}
    assert _query(paths, "SELECT count(*) FROM weights")[0][0] > 0  # a new connection opens the new file


def test_refresh_views_leaves_no_temporary_file(tmp_path, duck_run):
    paths = LakehousePaths(tmp_path)
    _write_run(paths, duck_run, REP_RUN_ID)
    refresh_views(paths)
    refresh_views(paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts", "export", "lakehouse.duckdb"]


def test_refresh_views_corrupt_artifact_raises_and_keeps_old_database(tmp_path, duck_run):
    paths = LakehousePaths(tmp_path)
    _write_run(paths, duck_run, REP_RUN_ID)
    refresh_views(paths)
    old = paths.duckdb_file.read_bytes()
    paths.run_data_file("20240211T000000Z", "selection.json").parent.mkdir(parents=True)
    paths.run_data_file("20240211T000000Z", "selection.json").write_text('{"run_id": "20240211T000000Z", ')
    with pytest.raises(LakehouseReadError, match="DuckDB view `selection` cannot read it"):
        refresh_views(paths)
    assert paths.duckdb_file.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts", "export", "lakehouse.duckdb"]


_DAMAGE = {
    "truncated": lambda data: data[: len(data) // 2],
    "garbage": lambda data: b"not a parquet file at all\n" * 8,
}


@pytest.mark.parametrize("damage", sorted(_DAMAGE))
@pytest.mark.parametrize(
    ("view", "bad_file", "rows_left"),
    [
        ("ohlcv", lambda p: p.ohlcv_file("BINANCE_ETHUSDT"), sum(DUCK_BARS.values()) - DUCK_BARS["BINANCE_ETHUSDT"]),
        ("symbols", lambda p: p.symbol_metadata_file("BINANCE_ETHUSDT"), 3),
        ("returns", lambda p: p.run_data_file("20240211T000000Z", "returns_matrix.parquet"), None),
    ],
    ids=["ohlcv", "symbols", "returns"],
)
def test_refresh_views_leaves_an_unreadable_parquet_file_out_and_names_it(
    tmp_path, duck_run, view, bad_file, rows_left, damage
):
    paths = LakehousePaths(tmp_path)
    _write_lakehouse(paths)
    _write_run(paths, duck_run, "20240210T000000Z")
    _write_run(paths, duck_run, "20240211T000000Z")
    bad = bad_file(paths)
    bad.write_bytes(_DAMAGE[damage](bad.read_bytes()))
    damaged = bad.read_bytes()
    with pytest.raises(LakehouseReadError, match=f"DuckDB view `{view}` cannot read it"):
        refresh_views(paths)
    skipped: list = []
    counts = refresh_views(paths, skipped=skipped)
    assert skipped == [bad]
    assert list(counts) == list(VIEWS), "every view, the damaged one over the other files"
    n_observations, n_assets = duck_run.returns.shape
    assert counts[view] == (n_observations * n_assets if rows_left is None else rows_left)
    if view == "symbols":
        assert counts["symbols_current"] == 2, "the view over `symbols` leaves the file out too"
        assert _query(paths, "SELECT DISTINCT symbol_key FROM symbols ORDER BY 1") == [
            ("BINANCE_BTCUSDT",),
            ("BINANCE_SOLUSDT",),
        ]
    assert bad.read_bytes() == damaged, "the file is left as it was, for its owner to look at"


@pytest.mark.parametrize("damage", sorted(_DAMAGE))
def test_refresh_views_leaves_a_damaged_delta_table_out_whole_and_names_its_file(tmp_path, damage):
    """A Delta table is one dataset: leaving one of its files out would show a version that never existed."""
    paths = LakehousePaths(tmp_path)
    _write_lakehouse(paths)
    refresh_views(paths)
    old = paths.duckdb_file.read_bytes()
    data_file = sorted(paths.features_table_dir.glob("*.parquet"))[0]
    data_file.write_bytes(_DAMAGE[damage](data_file.read_bytes()))
    damaged = data_file.read_bytes()
    with pytest.raises(LakehouseReadError, match="DuckDB view `features` cannot read it"):
        refresh_views(paths)
    assert paths.duckdb_file.read_bytes() == old
    skipped: list = []
    counts = refresh_views(paths, skipped=skipped)
    assert skipped == [data_file]
    assert list(counts) == [view for view in VIEWS if view != "features" and view in counts]
    assert "features" not in counts and counts["ohlcv"] == sum(DUCK_BARS.values())
    assert "features" not in _view_names(paths)
    assert data_file.read_bytes() == damaged


def test_refresh_views_reads_no_footer_when_every_view_builds(tmp_path, duck_run, monkeypatch):
    paths = LakehousePaths(tmp_path)
    _write_lakehouse(paths)
    _write_run(paths, duck_run, REP_RUN_ID)
    footers: list = []
    monkeypatch.setattr(duckdb_views, "_footer_reads", lambda path: footers.append(path) or True)
    skipped: list = []
    assert list(refresh_views(paths, skipped=skipped)) == list(VIEWS)
    assert footers == [] and skipped == []


@pytest.mark.parametrize(
    ("paths", "run_ids", "error", "match"),
    [
        ("data", None, TypeError, "`paths` must be a LakehousePaths"),
        (None, "20240210T000000Z", TypeError, "`run_ids` must be a sequence of RUN_IDs"),
        (None, ["../etc"], UnsafeKeyError, "RUN_ID '../etc' is refused"),
    ],
    ids=["paths-str", "run-ids-str", "run-id-unsafe"],
)
def test_refresh_views_bad_input_raises(tmp_path, paths, run_ids, error, match):
    with pytest.raises(error, match=match):
        refresh_views(LakehousePaths(tmp_path) if paths is None else paths, run_ids=run_ids)
