"""The DuckDB refresh (``refresh_views``) over a lakehouse, healthy and with one corrupt bars file.

Sizes: small = 50 symbols, large = 300 symbols, 700 daily bars each, written by the lakehouse's own writers
(``write_ohlcv``, ``upsert_symbol_metadata``, ``upsert_symbol_features`` with the 78 feature columns): two
parquet files per symbol and the features Delta table. Timed, median of ``--repeat``: the healthy refresh
(DuckDB alone reads the files' footers; no per-file check), the refresh with one symbol's bars file truncated
to half (DuckDB fails the ``ohlcv`` view, every bars file's footer is read with pyarrow, the view is built again
without the bad file), and those footer reads alone.

Before timing, the outputs are checked: the healthy refresh counts every row; with the corrupt file, the
refresh without ``skipped`` raises, and with it lists exactly that file and counts every other symbol's rows.

Usage: ``.venv/bin/python bench/bench_duckdb_views.py --size small|large [--repeat 3]``.
Results go to ``bench/results/duckdb_views_<size>.json``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from common import timed, write_results

# The symbol record of the DuckDB views' tests, from the (not installed) tests package of this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpha_assets.errors import LakehouseReadError
from alpha_assets.features.matrix import FEATURE_COLUMNS
from alpha_assets.lakehouse.duckdb_views import refresh_views
from alpha_assets.lakehouse.features_store import upsert_symbol_features
from alpha_assets.lakehouse.ohlcv import write_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.symbols import upsert_symbol_metadata
from alpha_assets_tests.test_lakehouse.test_duckdb_views import _symbol_record

SIZES = {"small": 50, "large": 300}
N_BARS = 700
NOW = pd.Timestamp("2026-11-25", tz="UTC")


def _write_lakehouse(paths: LakehousePaths, n_symbols: int) -> list[str]:
    rng = np.random.default_rng(7)
    timestamps = pd.date_range(end=NOW - pd.Timedelta(days=1), periods=N_BARS, freq="D", tz="UTC")
    keys = [f"BINANCE_S{i:04d}USDT" for i in range(n_symbols)]
    for key in keys:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, N_BARS)))
        open_ = np.concatenate([[100.0], close[:-1]])
        bars = pd.DataFrame(
            {
                "timestamp": timestamps.astype("datetime64[ms, UTC]"),
                "open": open_,
                "high": np.maximum(open_, close) * 1.01,
                "low": np.minimum(open_, close) * 0.99,
                "close": close,
                "volume": rng.lognormal(12.0, 0.5, N_BARS),
            }
        )
        write_ohlcv(paths, key, bars)
        upsert_symbol_metadata(paths, key, _symbol_record(key, "L1"), now=NOW)
        features = pd.DataFrame(rng.normal(size=(N_BARS, len(FEATURE_COLUMNS))), columns=list(FEATURE_COLUMNS))
        features.insert(0, "symbol", key)
        features.insert(0, "date", bars["timestamp"])
        upsert_symbol_features(paths, key, features)
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n_symbols = SIZES[args.size]
    root = Path(tempfile.mkdtemp(prefix="bench_duckdb_views_"))
    try:
        paths = LakehousePaths(root)
        keys = _write_lakehouse(paths, n_symbols)
        n_files = sum(1 for p in paths.lakehouse_dir.rglob("*.parquet") if p.is_file())
        counts = refresh_views(paths)
        assert counts["ohlcv"] == counts["features"] == n_symbols * N_BARS, counts
        healthy = [timed(lambda: refresh_views(paths, skipped=[]))[0] for _ in range(args.repeat)]

        bad = paths.ohlcv_file(keys[n_symbols // 2])
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
        try:
            refresh_views(paths)
            raise AssertionError("a truncated bars file must fail the refresh without `skipped`")
        except LakehouseReadError:
            pass
        skipped: list[Path] = []
        counts = refresh_views(paths, skipped=skipped)
        assert skipped == [bad] and counts["ohlcv"] == (n_symbols - 1) * N_BARS, (skipped, counts)
        corrupt = [timed(lambda: refresh_views(paths, skipped=[]))[0] for _ in range(args.repeat)]
        bars_files = sorted(p for p in paths.lakehouse_dir.glob("*_1d.parquet") if p != bad)
        footers = [timed(lambda: [pq.read_metadata(p) for p in bars_files])[0] for _ in range(args.repeat)]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    figures = {
        "n_symbols": n_symbols,
        "n_parquet_files": n_files,
        "refresh_healthy_s": statistics.median(healthy),
        "refresh_one_corrupt_bars_file_s": statistics.median(corrupt),
        "footer_reads_of_the_bars_files_s": statistics.median(footers),
    }
    print(
        f"{n_symbols} symbols ({n_files} parquet files): refresh healthy {figures['refresh_healthy_s']:.3f} s, "
        f"with one corrupt bars file {figures['refresh_one_corrupt_bars_file_s']:.3f} s; "
        f"footer reads of the {len(bars_files)} readable bars files alone "
        f"{figures['footer_reads_of_the_bars_files_s']:.3f} s (median of {args.repeat})"
    )
    write_results("duckdb_views", args.size, figures)


if __name__ == "__main__":
    main()
