"""The pure DataOps steps without Dagster: ingest, audit and symbol metadata, first run and next-day run.

Sizes: small = 50 symbols x 400 days (smoke), large = 500 symbols x 1,000 days (issue 2's figures). The
simulated exchange (seed 7) serves the bars; each step is timed over all symbols, as the DataOps assets call
it: ``ingest_symbols``, then ``audit_symbol_file`` and ``upsert_symbol_metadata`` once per symbol. Targets on
2 cores for 500 symbols (Dagster's own bookkeeping comes on top): first ingest + audit + metadata <= 10 s,
next-day ingest + audit + metadata <= 4 s.

Before the timed run, a 12-symbol warm-up checks the outputs against the reference: the stored bars equal
``clean_bars`` of the full history fetched in one call, the next day adds exactly one bar per listed symbol
with one request, every symbol is audited and its metadata inserted, then updated.

``--baseline-src DIR`` runs the same measurement in subprocesses on another source tree (e.g. ``git archive
HEAD alpha_assets | tar -x -C DIR``) and on this one, alternating ``--repeat`` times, and reports the median
of each and their ratio: the machine is noisy, so only figures measured in the same run are compared.
``--data-dir`` puts the lakehouse elsewhere (e.g. ``/dev/shm`` to leave out the disk's fsync latency).

Usage: ``.venv/bin/python bench/bench_dataops_core.py --size small|large [--baseline-src DIR --repeat 3]``.
Results go to ``bench/results/dataops_core_<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from common import peak_rss_mb, write_results

from alpha_assets.dataops.audit.engine import AuditParams, audit_symbol_file
from alpha_assets.lakehouse.ohlcv import clean_bars, read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.lakehouse.symbols import upsert_symbol_metadata
from alpha_assets.sources.ingest import ingest_symbols
from alpha_assets.sources.params import IngestionParams
from alpha_assets.sources.simulated import SimulatedExchange

SIZES = {"small": (50, 400), "large": (500, 1000)}
WARMUP_DAYS = 300
SEED = 7
DAYS = {"first": pd.Timestamp("2026-11-25T12:00Z"), "incremental": pd.Timestamp("2026-11-26T12:00Z")}
STEPS = ("ingest", "audit", "symbols")
TARGETS_S = {"first": 10.0, "incremental": 4.0}
REPO = Path(__file__).resolve().parent.parent
UNORDINARY = ("SIM_HOLEUSDT", "SIM_GONEUSDT")


def _params(n_days: int) -> IngestionParams:
    return IngestionParams(history_days=n_days - WARMUP_DAYS, warmup_days=WARMUP_DAYS)


def _markets(source: SimulatedExchange, n_symbols: int) -> list:
    return [m for m in source.load_markets() if m.quote == "USDT"][:n_symbols]


def _record(market, verdict) -> dict[str, Any]:
    return {
        "exchange": "SIM",
        "symbol_key": market.symbol_key,
        "ccxt_symbol": market.ccxt_symbol,
        "base": market.base,
        "quote": market.quote,
        "market_type": "spot",
        "sector": market.sector,
        "tick_size": market.tick_size,
        "lot_size": market.lot_size,
        "min_notional": market.min_notional,
        "first_bar": verdict.first_bar,
        "last_bar": verdict.last_bar,
        "status": "active",
    }


def run_day(paths: LakehousePaths, n_symbols: int, n_days: int, now: pd.Timestamp) -> dict[str, Any]:
    """Time the three steps for one day over ``n_symbols`` symbols; return seconds and outputs."""
    source = SimulatedExchange(seed=SEED, now=now, n_symbols=n_symbols + 12)
    markets = _markets(source, n_symbols)
    audit_params = AuditParams()
    requests_before = source.requests_made
    start = time.perf_counter()
    reports = ingest_symbols(source, markets, paths, now=now, params=_params(n_days))
    ingest_s = time.perf_counter() - start
    requests = source.requests_made - requests_before
    start = time.perf_counter()
    verdicts = [audit_symbol_file(paths, m.symbol_key, as_of=now, params=audit_params) for m in markets]
    audit_s = time.perf_counter() - start
    start = time.perf_counter()
    upserts = [
        upsert_symbol_metadata(paths, m.symbol_key, _record(m, v), now=now)
        for m, v in zip(markets, verdicts, strict=True)
    ]
    symbols_s = time.perf_counter() - start
    return {
        "seconds": {"ingest": ingest_s, "audit": audit_s, "symbols": symbols_s},
        "source": source,
        "markets": markets,
        "reports": reports,
        "verdicts": verdicts,
        "upserts": upserts,
        "requests": requests,
    }


def check_reference(data_dir: str | None) -> None:
    """Run both days on 12 symbols and check the outputs against the reference (see the module docstring)."""
    n_symbols, n_days = 12, 400
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        paths = LakehousePaths(Path(tmp))
        first = run_day(paths, n_symbols, n_days, DAYS["first"])
        today = DAYS["first"].floor("D")
        for market in first["markets"]:
            full = first["source"].fetch_daily_bars(market, since=today - n_days * pd.Timedelta(days=1), until=today)
            expected = clean_bars(full, symbol_key=market.symbol_key, now=DAYS["first"]).bars
            pd.testing.assert_frame_equal(read_ohlcv(paths, market.symbol_key), expected)
        assert {u.action for u in first["upserts"]} == {"inserted"}, first["upserts"]
        second = run_day(paths, n_symbols, n_days, DAYS["incremental"])
        # The planted defects: SIM_HOLEUSDT's gaps are re-fetched once a day, SIM_GONEUSDT has no new bar.
        ordinary = [r for r in second["reports"] if r.symbol_key not in UNORDINARY]
        assert len(ordinary) == n_symbols - len(UNORDINARY), [r.symbol_key for r in second["reports"]]
        assert all(r.new_bars == 1 and r.requests == 1 for r in ordinary), second["reports"]
        assert {u.action for u in second["upserts"]} == {"updated"}, second["upserts"]
        assert all(
            v.last_bar == DAYS["incremental"].floor("D") - pd.Timedelta(days=1)
            for v in second["verdicts"]
            if v.symbol_key != "SIM_GONEUSDT"
        )


def measure(size: str, data_dir: str | None) -> dict[str, Any]:
    """Check the reference, then time both days at ``size``; seconds per step and per-symbol ms."""
    n_symbols, n_days = SIZES[size]
    check_reference(data_dir)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        paths = LakehousePaths(Path(tmp))
        for day, now in DAYS.items():
            result = run_day(paths, n_symbols, n_days, now)
            seconds = result["seconds"]
            figures[day] = {
                **{f"{step}_s": round(seconds[step], 3) for step in STEPS},
                "total_s": round(sum(seconds.values()), 3),
                **{f"{step}_ms_per_symbol": round(1e3 * seconds[step] / n_symbols, 3) for step in STEPS},
                "requests_per_symbol": result["requests"] / n_symbols,
                "new_bars": sum(r.new_bars for r in result["reports"]),
            }
        figures["bars_per_symbol"] = len(read_ohlcv(paths, "SIM_BTCUSDT"))
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return figures


def _print(label: str, n_symbols: int, figures: dict[str, Any]) -> None:
    for day in DAYS:
        f = figures[day]
        steps = ", ".join(f"{s} {f[f'{s}_s']:.2f} s ({f[f'{s}_ms_per_symbol']:.2f} ms/symbol)" for s in STEPS)
        print(
            f"{label:<9} {day:<12} {n_symbols} symbols: {steps}; total {f['total_s']:.2f} s "
            f"(target <= {TARGETS_S[day]:.0f} s), {f['requests_per_symbol']:.2f} requests/symbol"
        )
    print(f"{label:<9} peak memory {figures['peak_rss_mb']:.0f} MiB")


def _worker(src: Path, size: str, data_dir: str | None) -> dict[str, Any]:
    """Measure in a fresh interpreter importing ``alpha_assets`` from ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    command = [sys.executable, "-W", "ignore", __file__, "--size", size, "--worker"]
    if data_dir:
        command += ["--data-dir", data_dir]
    answer = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for day in DAYS:
        out[day] = {k: statistics.median(r[day][k] for r in runs) for k in runs[0][day]}
    out["bars_per_symbol"] = runs[0]["bars_per_symbol"]
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--data-dir", default=None, help="where the temporary lakehouse goes")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        default=None,
        help="a source tree holding alpha_assets/ to compare with, in the same run",
    )
    parser.add_argument("--repeat", type=int, default=1, help="alternating runs with --baseline-src")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.size, args.data_dir)))
        return
    n_symbols = SIZES[args.size][0]
    if args.baseline_src is None:
        figures = measure(args.size, args.data_dir)
        _print("current", n_symbols, figures)
        write_results(
            "dataops_core", args.size, {"data_dir": args.data_dir or tempfile.gettempdir(), "current": figures}
        )
        return
    runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "current": []}
    for _ in range(args.repeat):
        runs["baseline"].append(_worker(args.baseline_src.resolve(), args.size, args.data_dir))
        runs["current"].append(_worker(REPO, args.size, args.data_dir))
    medians = {label: _median(r) for label, r in runs.items()}
    for label, figures in medians.items():
        _print(label, n_symbols, figures)
    ratios = {
        day: {
            key: round(medians["baseline"][day][key] / medians["current"][day][key], 2)
            for key in (*(f"{s}_s" for s in STEPS), "total_s")
            if medians["current"][day][key] > 0
        }
        for day in DAYS
    }
    for day, ratio in ratios.items():
        print(f"speed-up  {day:<12} " + ", ".join(f"{k[:-2]} x{v:.1f}" for k, v in ratio.items()))
    write_results(
        "dataops_core",
        args.size,
        {
            "data_dir": args.data_dir or tempfile.gettempdir(),
            "repeat": args.repeat,
            "baseline_src": str(args.baseline_src),
            **medians,
            "speedup_baseline_over_current": ratios,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
