"""First ingest and one-day incremental re-run of the simulated exchange, through Dagster (issue 2).

Sizes: small = 50 symbols x 400 days (smoke), large = 500 symbols x 1,000 days (the report's figures).
Each link runs in-process on an on-disk instance, as `alpha-assets flow-data` does. Targets on 2 cores:
first ingest <= 30 s, incremental <= 10 s with one request per symbol. By default the same run measures the
project's instance (dagster.yaml: Dagster's SQLite event log with pooled connections) and Dagster's default
SQLite instance, each on its own lakehouse.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from common import cpu_seconds, peak_rss_mb, timed, write_results
from dagster import DagsterInstance
from postgres_instance import postgres_instance

from alpha_assets.cli import PROJECT_DAGSTER_YAML
from alpha_assets.definitions import build_definitions
from alpha_assets.defs import names
from alpha_assets.defs.chain import candidate_symbols, symbol_link_tags
from alpha_assets.defs.dataops.resources import MarketSourceResource
from alpha_assets.defs.resources import LakehouseResource, ManifestResource
from alpha_assets.lakehouse.ohlcv import read_ohlcv
from alpha_assets.lakehouse.paths import LakehousePaths
from alpha_assets.orchestration.runner import ensure_run_partition, run_link

SIZES = {"small": (50, 400), "large": (500, 1000)}
WARMUP_DAYS = 300
DAY_1 = "2026-11-25T12:00:00+00:00"
DAY_2 = "2026-11-26T12:00:00+00:00"


def _defs(root: Path, manifest: Path, n_listed: int, clock: str):
    return build_definitions(
        {
            "lakehouse": LakehouseResource(data_dir=str(root / "data")),
            "manifest": ManifestResource(path=str(manifest)),
            "market_source": MarketSourceResource(clock=clock, n_symbols=n_listed),
        }
    )


@contextlib.contextmanager
def _instance(root: Path, storage: str) -> Iterator[DagsterInstance]:
    if storage == "postgres":
        with postgres_instance(root) as instance:
            yield instance
        return
    home = root / f"home_{storage}"
    home.mkdir()
    if storage == "project":  # the project's dagster.yaml, as `alpha-assets` and `make ui` use it
        shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    instance = DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


def _ingest(defs, instance, paths, run_id):
    ensure_run_partition(instance, run_id)
    discovery_s, _ = timed(lambda: run_link(defs, instance, names.DISCOVERY_JOB, partition_key=run_id))
    symbols = candidate_symbols(paths, run_id)
    (tags,) = symbol_link_tags(instance, symbols, {names.RUN_ID_TAG: run_id})
    # The ingest link without its features step: this benchmark measures ingestion (bench_features the rest).
    cpu_before = cpu_seconds()
    ingest_s, link = timed(lambda: run_link(defs, instance, names.INGEST_JOB, tags=tags, asset_selection=[names.OHLCV]))
    ingest_cpu_s = cpu_seconds() - cpu_before
    meta = link.materializations["ohlcv"]
    return {
        "symbols": len(symbols),
        "discovery_s": round(discovery_s, 3),
        "ingest_s": round(ingest_s, 3),
        "ingest_cpu_s": round(ingest_cpu_s, 3),
        "new_bars": meta["new_bars"],
        "requests": meta["requests"],
        "requests_per_symbol": meta["requests_per_symbol"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument(
        "--storage",
        default="project,sqlite-default",
        help="comma-separated instances to measure: project (the project's dagster.yaml), sqlite-default "
        "(Dagster's default storage), postgres (a private throwaway cluster on loopback)",
    )
    args = parser.parse_args()
    size, storages = args.size, args.storage.split(",")
    unknown = set(storages) - {"project", "sqlite-default", "postgres"}
    if unknown:
        parser.error(f"unknown --storage {sorted(unknown)}")
    n_symbols, n_days = SIZES[size]
    results = {}
    for storage in storages:
        results[storage] = _measure(storage, n_symbols, n_days)
        first, second, bars = results[storage]["first"], results[storage]["incremental"], results[storage]["bars"]
        print(f"instance       {storage}")
        print(
            f"first ingest   {first['symbols']} symbols x {bars} bars: discovery {first['discovery_s']:.2f} s, "
            f"ingest {first['ingest_s']:.2f} s (target <= 30 s), {first['requests_per_symbol']} requests/symbol"
        )
        print(
            f"incremental    +1 day: ingest {second['ingest_s']:.2f} s (target <= 10 s), {second['new_bars']} new "
            f"bars, {second['requests_per_symbol']} requests/symbol (target 1)"
        )
    print(f"peak memory    {peak_rss_mb():.0f} MiB")
    write_results("ingest", size, {**results, "peak_rss_mb": round(peak_rss_mb(), 1)})


def write_manifest(path: Path, n_days: int) -> None:
    """The benchmark's manifest: every eligible pair on both days, ``n_days`` of history on the first."""
    document = {
        "defaults": {
            # Every eligible pair, both days: a stable universe, so day 2 adds exactly one bar each.
            "discovery": {"top_n": 5000, "min_traded_value_24h": 0},
            "ingestion": {"history_days": n_days - WARMUP_DAYS, "warmup_days": WARMUP_DAYS},
        }
    }
    path.write_text(json.dumps(document))


def _measure(storage: str, n_symbols: int, n_days: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = root / "manifest.json"
        write_manifest(manifest, n_days)
        paths = LakehousePaths(root / "data")
        # The simulated exchange also lists stablecoins, a leveraged token, other quotes and a delisted pair.
        listed = n_symbols + 6
        with _instance(root, storage) as instance:
            first = _ingest(_defs(root, manifest, listed, DAY_1), instance, paths, "BENCH_DAY_1")
            bars = len(read_ohlcv(paths, "SIM_BTCUSDT"))
            second = _ingest(_defs(root, manifest, listed, DAY_2), instance, paths, "BENCH_DAY_2")
    return {"first": first, "incremental": second, "bars": bars}


if __name__ == "__main__":
    main()
