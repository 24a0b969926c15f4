"""Benchmark of the feature backfill: TA-Lib subset vs a plain TA-Lib loop, compute-only, and the backfill
with files: full backfill, incremental one-day update, re-run with nothing new, repaired bars; then ``--days``
consecutive one-day updates on another lakehouse (the steady state: one commit a day, the table compacted when
it holds more than ``MAX_TABLE_FILES`` files).

Usage: ``.venv/bin/python bench/bench_features.py --size small|large|huge`` (50, 1,000, 5,000 symbols);
``--one-day-only`` times only the daily path (full backfill as setup, then one new day and nothing new with the
default workers, one process and two per core; ``--days``), which is what a 5,000-symbol run can afford.
Synthetic realistic OHLCV (trends, flat stretches, zero-volume days) with a fixed seed; outputs are checked
against TA-Lib and the direct computation before (compute) or right after (files: the stored rows must equal
``compute_symbol_features`` exactly) each timed call; only the calls are timed. The backfill runs with the
code's default workers; ``large`` also runs it in one process to show where processes pay. Peak memory is
``ru_maxrss`` of this process and of its largest worker. Results go to
``bench/results/bench_features_<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import talib

from alpha_assets.features import indicators as ind
from alpha_assets.features.backfill import backfill_features
from alpha_assets.features.matrix import compute_symbol_features
from alpha_assets.lakehouse.features_store import read_features
from alpha_assets.lakehouse.ohlcv import write_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths

SIZES = {"small": (50, 500), "large": (1000, 2000), "huge": (5000, 2000)}
SEED = 20261125
RESULTS = Path(__file__).parent / "results"
_BARS: list[pd.DataFrame] = []  # inherited by forked workers


def synthetic_bars(index: int, n_days: int) -> pd.DataFrame:
    rng = np.random.default_rng(SEED + index)
    regime = rng.choice([-0.004, 0.0, 0.001, 0.005], size=n_days // 100 + 1)
    drift = np.repeat(regime, 100)[:n_days]
    log_returns = drift + rng.uniform(0.02, 0.06) * rng.standard_t(4, n_days) / np.sqrt(2)
    flat_start = int(rng.integers(0, n_days - 30))
    log_returns[flat_start : flat_start + 25] = 0.0
    close = rng.uniform(0.01, 50_000) * np.exp(np.cumsum(log_returns))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, n_days)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, n_days)))
    volume = rng.lognormal(12, 1, n_days)
    volume[flat_start : flat_start + 25] = 0.0
    timestamps = pd.date_range("2019-01-01", periods=n_days, tz="UTC").astype("datetime64[ms, UTC]")
    return pd.DataFrame(
        {"timestamp": timestamps, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )


def key_of(index: int) -> str:
    return f"BENCH_S{index:05d}USDT"


def _compute_range(bounds: tuple[int, int]) -> float:
    total = 0.0
    for i in range(*bounds):
        total += float(np.nansum(compute_symbol_features(_BARS[i], key_of(i))["recommend_all"].to_numpy()))
    return total


def _talib_subset_ours(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> None:
    ind.rsi(c, 14), ind.macd(c), ind.stoch(h, lo, c), ind.cci(h, lo, c, 20), ind.dmi(h, lo, c, 14)
    ind.momentum(c, 10), ind.williams_r(h, lo, c, 14), ind.ultimate_oscillator(h, lo, c)
    for n in (10, 20, 30, 50, 100, 200):
        ind.sma(c, n), ind.ema(c, n)


def _talib_subset_plain(h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> None:
    talib.RSI(c, 14), talib.MACD(c, 12, 26, 9), talib.STOCH(h, lo, c, 14, 3, 0, 3, 0), talib.CCI(h, lo, c, 20)
    talib.PLUS_DI(h, lo, c, 14), talib.MINUS_DI(h, lo, c, 14), talib.ADX(h, lo, c, 14)
    talib.MOM(c, 10), talib.WILLR(h, lo, c, 14), talib.ULTOSC(h, lo, c, 7, 14, 28)
    for n in (10, 20, 30, 50, 100, 200):
        talib.SMA(c, n), talib.EMA(c, n)


def peak_mb() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self_mb": round(own, 1), "largest_child_mb": round(children, 1)}


def check_reference(n_symbols: int) -> None:
    """Features equal TA-Lib on a sample of symbols (to 1e-9 relative) before anything is timed."""
    for i in range(0, n_symbols, max(1, n_symbols // 5)):
        bars = _BARS[i]
        frame = compute_symbol_features(bars, key_of(i))
        h, lo, c = (bars[k].to_numpy() for k in ("high", "low", "close"))
        for column, expected in (
            ("rsi_14", talib.RSI(c, 14)),
            ("adx_14", talib.ADX(h, lo, c, 14)),
            ("ema_200", talib.EMA(c, 200)),
            ("uo", talib.ULTOSC(h, lo, c, 7, 14, 28)),
        ):
            np.testing.assert_allclose(frame[column].to_numpy(), expected, rtol=1e-9, err_msg=column)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--skip-files", action="store_true", help="compute-only figures")
    parser.add_argument(
        "--one-day-only",
        action="store_true",
        help="only the daily path: no TA-Lib comparison, no compute-only timing, no repaired bars",
    )
    parser.add_argument(
        "--days", type=int, default=20, help="consecutive one-day updates to time after the file steps (0: none)"
    )
    args = parser.parse_args()
    n_symbols, n_days = SIZES[args.size]
    results: dict[str, object] = {
        "size": args.size,
        "n_symbols": n_symbols,
        "n_days": n_days,
        "workers": args.workers,
        "machine": {
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)),
            "python": sys.version.split()[0],
        },
        "versions": {
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "pyarrow": pyarrow.__version__,
            "ta-lib": talib.__version__,
        },
    }
    _BARS.extend(synthetic_bars(i, n_days) for i in range(n_symbols))
    check_reference(n_symbols)

    ratio = float("nan")
    if not args.one_day_only:
        # 1. TA-Lib subset through our wrappers vs a plain TA-Lib loop, same data, same run; best of 5 each,
        # interleaved, so that a burst of load on the shared machine does not decide the ratio.
        arrays = [tuple(b[k].to_numpy() for k in ("high", "low", "close")) for b in _BARS]
        plain = ours = float("inf")
        for _ in range(5):
            plain = min(plain, timed(lambda: [_talib_subset_plain(*a) for a in arrays])[0])
            ours = min(ours, timed(lambda: [_talib_subset_ours(*a) for a in arrays])[0])
        ratio = ours / plain
        results["talib_subset"] = {"ours_s": ours, "plain_talib_loop_s": plain, "ratio": ratio}
        print(f"TA-Lib subset: ours {ours:.3f} s, plain TA-Lib loop {plain:.3f} s, ratio {ours / plain:.2f}")

        # 2. All features, compute only: one process, then processes over chunks (forked, data inherited).
        single, checksum = timed(_compute_range, (0, n_symbols))
        step = -(-n_symbols // (args.workers * 4))
        chunks = [(start, min(n_symbols, start + step)) for start in range(0, n_symbols, step)]
        with ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("fork")) as pool:
            parallel, sums = timed(lambda: sum(pool.map(_compute_range, chunks)))
        assert np.isclose(sums, checksum, rtol=1e-12), "processes must give the single-process result"
        results["compute_only"] = {
            "single_process_s": single,
            "processes_s": parallel,
            "per_symbol_ms_single": 1e3 * single / n_symbols,
            "peak": peak_mb(),
        }
        print(
            f"compute only: single process {single:.2f} s ({1e3 * single / n_symbols:.2f} ms/symbol), "
            f"{args.workers} processes {parallel:.2f} s; peak {peak_mb()}"
        )

    if not args.skip_files:
        with tempfile.TemporaryDirectory(prefix="bench_features_") as tmp:
            results["files"] = files = bench_files(
                LakehousePaths(tmp),
                n_symbols,
                n_days,
                compare_single=args.size != "huge",
                one_day_only=args.one_day_only,
            )
        if args.days:
            with tempfile.TemporaryDirectory(prefix="bench_features_daily_") as tmp:
                results["daily"] = bench_daily(LakehousePaths(tmp), n_symbols, n_days, args.days)
        full, one_day, nothing = (
            files[f"{step}_default_s"] for step in ("full_backfill", "incremental_one_day", "nothing_new")
        )
        print(
            f"SUMMARY {n_symbols} symbols x {n_days} days: full backfill {full:.2f} s, incremental one day "
            f"{one_day:.2f} s, nothing new {nothing:.2f} s, TA-Lib ratio {ratio:.2f}, peak {peak_mb()}"
        )

    results["peak"] = peak_mb()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"bench_features_{args.size}{'_one_day' if args.one_day_only else ''}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"peak memory {results['peak']}; wrote {out}")


def bench_files(
    paths: LakehousePaths, n_symbols: int, n_days: int, compare_single: bool, one_day_only: bool = False
) -> dict[str, object]:
    keys = [key_of(i) for i in range(n_symbols)]
    for i, key in enumerate(keys):
        write_ohlcv(paths, key, _BARS[i].iloc[: n_days - 1])
    sample = keys[:: max(1, n_symbols // 5)]
    # Each variant gets its own lakehouse (OHLCV hard-linked): "default" lets the code choose the workers.
    # With ``one_day_only`` the full backfill runs once (default) and the other variants start from a copy of its
    # lakehouse (hard links: Delta and OHLCV files are never modified in place), so that 5,000 symbols stay
    # affordable; the daily path is then also timed with two processes per core.
    variants = {"default": None, **({"single_process": 1} if compare_single or one_day_only else {})}
    if one_day_only:
        variants["two_per_core"] = 2 * len(os.sched_getaffinity(0))
    targets = {label: LakehousePaths(paths.root / label) for label in variants}
    for target in targets.values():
        target.lakehouse_dir.mkdir(parents=True)
        for key in keys:
            os.link(paths.ohlcv_file(key), target.ohlcv_file(key))
    figures: dict[str, object] = {}

    def run(step: str, expected_rows: int, n_bars: int, labels: list[str]) -> None:
        for label in labels:
            elapsed, report = timed(backfill_features, targets[label], keys, workers=variants[label])
            assert not report.failed and report.rows_changed == expected_rows, (step, report.rows_changed)
            figures[f"{step}_{label}_s"] = elapsed
            figures[f"{step}_{label}_workers"] = report.workers
            print(f"{step} ({label}, workers={report.workers}): {elapsed:.2f} s")
        check_stored(targets["default"], sample, keys, n_bars)

    run("full_backfill", n_symbols * (n_days - 1), n_days - 1, ["default"] if one_day_only else list(variants))
    if one_day_only:
        for label in list(variants)[1:]:
            shutil.rmtree(targets[label].lakehouse_dir)
            shutil.copytree(targets["default"].lakehouse_dir, targets[label].lakehouse_dir, copy_function=os.link)
    for target in targets.values():  # the next day's bar arrives for every symbol
        for i, key in enumerate(keys):
            write_ohlcv(target, key, _BARS[i])
    run("incremental_one_day", n_symbols, n_days, list(variants))
    run("nothing_new", 0, n_days, list(variants))
    if one_day_only:
        return figures
    # A repaired bar mid-history for 1 % of the symbols: those are recomputed whole, the others skipped.
    repaired = keys[::100]
    for target in targets.values():
        for key in repaired:
            bars = _BARS[keys.index(key)].copy()
            bars.loc[n_days // 2, ["high", "close"]] *= 1.01
            write_ohlcv(target, key, bars)
    for key in repaired:
        _BARS[keys.index(key)].loc[n_days // 2, ["high", "close"]] *= 1.01
    for label, workers in variants.items():
        elapsed, report = timed(backfill_features, targets[label], keys, workers=workers)
        assert not report.failed and {s.symbol_key for s in report.symbols if s.rows_changed} == set(repaired)
        figures[f"repair_1pct_{label}_s"] = elapsed
        print(f"repaired bar in 1 % of the symbols ({label}, workers={report.workers}): {elapsed:.2f} s")
    check_stored(targets["default"], repaired[:5], keys, n_days)
    return figures


def bench_daily(paths: LakehousePaths, n_symbols: int, n_days: int, days: int) -> dict[str, object]:
    """``days`` consecutive one-day updates after a full backfill: the steady state, compactions included."""
    from deltalake import DeltaTable

    keys = [key_of(i) for i in range(n_symbols)]
    start = n_days - days
    for i, key in enumerate(keys):
        write_ohlcv(paths, key, _BARS[i].iloc[:start])
    backfill_features(paths, keys)
    seconds, files = [], []
    for n_bars in range(start + 1, n_days + 1):
        for i, key in enumerate(keys):
            write_ohlcv(paths, key, _BARS[i].iloc[:n_bars])
        elapsed, report = timed(backfill_features, paths, keys)
        assert not report.failed and report.rows_changed == n_symbols
        seconds.append(elapsed)
        files.append(len(DeltaTable(paths.features_table_uri).file_uris()))
        print(f"day {n_bars - start:2d}: {elapsed:.2f} s, the table holds {files[-1]} data files")
    check_stored(paths, keys[:: max(1, n_symbols // 5)], keys, n_days)
    figures = {
        "days": days,
        "seconds": seconds,
        "table_files": files,
        "median_s": float(np.median(seconds)),
        "max_s": max(seconds),
        "min_s": min(seconds),
    }
    print(
        f"daily updates ({days} days, {n_symbols} symbols): median {figures['median_s']:.2f} s, "
        f"min {figures['min_s']:.2f} s, max {figures['max_s']:.2f} s"
    )
    return figures


def check_stored(paths: LakehousePaths, sample: list[str], keys: list[str], n_bars: int) -> None:
    """The stored rows of ``sample`` equal the direct computation on the first ``n_bars`` bars, exactly."""
    stored = read_features(paths, sample)
    for key in sample:
        expected = compute_symbol_features(_BARS[keys.index(key)].iloc[:n_bars], key)
        pd.testing.assert_frame_equal(
            stored[stored["symbol"] == key].reset_index(drop=True), expected, check_exact=True
        )


if __name__ == "__main__":
    main()
