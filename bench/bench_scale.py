"""One new day for thousands of symbols across three simulated exchanges, through Dagster (issue 14).

Three simulated exchanges (``SIMA``, ``SIMB``, ``SIMC``: each its own seed and symbols) list a third of the
universe each, on one Dagster instance and one lakehouse. Day 1 builds the history: per exchange, its
discovery link and its ingest link (``ohlcv`` + ``features_matrix``), as ``alpha-assets flow-data`` runs them
in-process. Day 2 is the measured day: the same links with the clock one day later, so each symbol gets one new
bar and one new feature row. Printed per exchange and in total: discovery, the ingest link's wall time, its
``ohlcv`` and ``features_matrix`` steps (Dagster's step events) and the rest of the link (Dagster's
bookkeeping: run start, events, checks' evaluations), new bars and requests per symbol. Every day-2 link is
checked: each symbol gained exactly one bar and its newest feature row is the new day.

Usage: ``.venv/bin/python bench/bench_scale.py --size small|large [--storage project|postgres]`` from the
project root. ``large``: 5,000 symbols x 400 days (300 of them warm-up); ``small``: 150 x 400; ``--symbols N`` overrides
the size's symbols. Each exchange lists its share plus six pairs discovery excludes, one of which it keeps
(5,000 requested: 5,016 ingested; 150: 165). ``project`` is
the project's ``dagster.yaml`` (SQLite), ``postgres`` deploy/dagster.yaml on a throwaway cluster started by the
script. Writes ``bench/results/scale_<size>_<storage>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import peak_rss_mb, timed, write_results
from dagster import DagsterInstance, Definitions
from postgres_instance import postgres_instance

from alpha_assets.cli import PROJECT_DAGSTER_YAML
from alpha_assets.definitions import build_definitions
from alpha_assets.defs import names
from alpha_assets.defs.chain import candidate_symbols, symbol_link_tags
from alpha_assets.defs.dataops.resources import MarketSourceResource
from alpha_assets.defs.resources import LakehouseResource, ManifestResource
from alpha_assets.lakehouse.features_store import last_feature_date
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.orchestration.runner import ensure_run_partition, run_link

#: size -> (symbols over the three exchanges, days of history including the warm-up).
SIZES = {"small": (150, 400), "large": (5_000, 400)}
WARMUP_DAYS = 300
EXCHANGES = ("SIMA", "SIMB", "SIMC")
DAYS = ("2026-11-25T12:00:00+00:00", "2026-11-26T12:00:00+00:00")
#: Pairs the simulated exchange lists besides its USDT universe (stablecoins, a leveraged token, other quotes,
#: a delisted pair): discovery excludes them.
EXCLUDED_LISTINGS = 6


@contextmanager
def _instance(root: Path, storage: str) -> Iterator[DagsterInstance]:
    if storage == "postgres":
        with postgres_instance(root) as instance:
            yield instance
        return
    home = root / "home"
    home.mkdir()
    shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)  # the project's event log storage finds its folder through it
    instance = DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


def _step_seconds(instance: DagsterInstance, dagster_run_id: str) -> dict[str, float]:
    return {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(dagster_run_id)}


def _day(root: Path, manifest: Path, instance: DagsterInstance, day: int, per_exchange: int) -> dict[str, Any]:
    """Discovery then the ingest link (bars and features) of each exchange at ``DAYS[day]``; their figures."""
    paths = LakehousePaths(root / "data")
    figures: dict[str, Any] = {}
    for seed, exchange in enumerate(EXCHANGES, start=11):
        defs = build_definitions(
            {
                "lakehouse": LakehouseResource(data_dir=str(paths.root)),
                "manifest": ManifestResource(path=str(manifest)),
                "market_source": MarketSourceResource(
                    clock=DAYS[day],
                    n_symbols=per_exchange + EXCLUDED_LISTINGS,
                    simulated_exchange=exchange,
                    seed=seed,
                ),
            }
        )
        figures[exchange] = _exchange_day(defs, instance, paths, f"SCALE_DAY{day + 1}_{exchange}")
    return figures


def _exchange_day(defs: Definitions, instance: DagsterInstance, paths: LakehousePaths, run_id: str) -> dict[str, Any]:
    ensure_run_partition(instance, run_id)
    discovery_s, _ = timed(lambda: run_link(defs, instance, names.DISCOVERY_JOB, partition_key=run_id))
    symbols = candidate_symbols(paths, run_id)
    # A sample of 50 symbols per exchange is checked after the new day.
    sample = [s for s in symbols[:: max(1, len(symbols) // 50)] if paths.ohlcv_file(s).exists()]
    bars_before = {symbol: len(read_ohlcv(paths, symbol)) for symbol in sample}
    links = []
    for tags in symbol_link_tags(instance, symbols, {names.RUN_ID_TAG: run_id}):
        seconds, link = timed(lambda tags=tags: run_link(defs, instance, names.INGEST_JOB, tags=tags))
        links.append((seconds, link, _step_seconds(instance, link.dagster_run_id)))
    _check_one_new_day(paths, bars_before, run_id)
    ingest_s = sum(seconds for seconds, _, _ in links)
    ohlcv_s = sum(steps.get("ohlcv", 0.0) for _, _, steps in links)
    features_s = sum(steps.get("features_matrix", 0.0) for _, _, steps in links)
    bars = [link.materializations["ohlcv"] for _, link, _ in links]
    return {
        "symbols": len(symbols),
        "runs": len(links),
        "discovery_s": discovery_s,
        "ingest_link_s": ingest_s,
        "ohlcv_step_s": ohlcv_s,
        "features_step_s": features_s,
        "dagster_rest_s": ingest_s - ohlcv_s - features_s,
        "new_bars": sum(m["new_bars"] for m in bars),
        "requests": sum(m["requests"] for m in bars),
    }


def _check_one_new_day(paths: LakehousePaths, bars_before: dict[str, int], run_id: str) -> None:
    """Every sampled symbol gained one bar, and its newest feature row is that bar's day."""
    for symbol, count in bars_before.items():
        bars = read_ohlcv(paths, symbol)
        if len(bars) != count + 1:
            raise SystemExit(f"{symbol}: {count} bars before the new day, {len(bars)} after (expected +1)")
        newest_bar, newest_row = bars["timestamp"].iloc[-1], last_feature_date(paths, symbol)
        if newest_row is None or newest_row.date() != newest_bar.date():
            raise SystemExit(f"{symbol}: newest feature row {newest_row}, newest bar {newest_bar} ({run_id})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--storage", choices=("project", "postgres"), default="project")
    parser.add_argument("--symbols", type=int, help="symbols over the three exchanges (default: the size's)")
    args = parser.parse_args()
    n_symbols, n_days = SIZES[args.size]
    n_symbols = args.symbols or n_symbols
    per_exchange = -(-n_symbols // len(EXCHANGES))
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        root = Path(tmp)
        manifest = root / "manifest.json"
        manifest.write_text(
            json.dumps(
                {
                    "defaults": {
                        # Every eligible pair both days: a stable universe, so day 2 adds one bar to each.
                        "discovery": {"top_n": 10 * per_exchange, "min_traded_value_24h": 0},
                        "ingestion": {"history_days": n_days - WARMUP_DAYS, "warmup_days": WARMUP_DAYS},
                    }
                }
            )
        )
        with _instance(root, args.storage) as instance:
            start = time.perf_counter()
            history = _day(root, manifest, instance, 0, per_exchange)
            history_s = time.perf_counter() - start
            start = time.perf_counter()
            new_day = _day(root, manifest, instance, 1, per_exchange)
            new_day_s = time.perf_counter() - start
    total = {
        key: sum(row[key] for row in new_day.values())
        for key in (
            "symbols",
            "runs",
            "discovery_s",
            "ingest_link_s",
            "ohlcv_step_s",
            "features_step_s",
            "dagster_rest_s",
            "new_bars",
            "requests",
        )
    }
    print(f"{args.storage} instance, {total['symbols']:,} symbols over {len(EXCHANGES)} exchanges x {n_days} days")
    setup = ", ".join(f"{name} {row['discovery_s'] + row['ingest_link_s']:.1f} s" for name, row in history.items())
    print(f"day 1 (setup: the history, not the target): {history_s:.1f} s wall; discovery + ingest {setup}")
    header = ("symbols", "discovery", "ingest link", "ohlcv step", "features step", "Dagster rest", "new bars")
    widths = (8, 10, 12, 11, 14, 13, 9)
    print(f"{'new day':10s}", *(f"{h:>{w}s}" for h, w in zip(header, widths, strict=True)), f"{'req/sym':>8s}")
    for name, row in [*new_day.items(), ("total", total)]:
        print(
            f"{name:10s} {row['symbols']:8,d} {row['discovery_s']:9.2f}s {row['ingest_link_s']:11.2f}s "
            f"{row['ohlcv_step_s']:10.2f}s {row['features_step_s']:13.2f}s {row['dagster_rest_s']:12.2f}s "
            f"{row['new_bars']:9,d} {row['requests'] / row['symbols']:8.3f}"
        )
    print(f"new day, discovery + ingest links of the three exchanges: {new_day_s:.1f} s wall")
    print(f"peak memory {peak_rss_mb():.0f} MiB (this process: the links run in-process)")
    write_results(
        f"scale_{args.size}",
        args.storage,
        {
            "symbols": total["symbols"],
            "days": n_days,
            "history_s": history_s,
            "new_day_s": new_day_s,
            "new_day": {**new_day, "total": total},
            "day_1": history,
            "peak_rss_mb": peak_rss_mb(),
        },
    )


if __name__ == "__main__":
    main()
