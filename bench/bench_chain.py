"""The daemon's view of the cycles on a real ``dagster dev`` (issue 12): chain latency and backfill cost.

1. **Chain latency**: discovery of a new RUN_ID launched through GraphQL as the UI launches it (the demo's
   settings: simulated exchange, the manifest's default profile, a fixed clock), then the chain sensors and the
   export sensor until flow_production succeeded. Printed per link: the wait before it (sensor tick, queue) and
   its run time. The first chain ingests the whole history; the next ones find the bars stored.
2. **Backfill cost**: a UI partition backfill of ``ohlcv`` + ``features_matrix`` over N contiguous ``symbols``
   partitions, then over N hand-picked ones (every other partition of the next 2N), one day after the
   universe was ingested (one new bar per symbol): wall time from the launch to the backfill's end, and runs.

Usage: ``.venv/bin/python bench/bench_chain.py --size small|large`` from the project root. ``large`` is the
demo universe (60 simulated pairs, default profile: 50 candidates x 1,095 days) and N = 50; ``small`` the
development profile and N = 10. Writes ``bench/results/chain_<size>.json``. Every chain and backfill is
checked: success, a portfolio, one new bar per backfilled symbol.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
from common import write_results
from dagster import DagsterEventType, DagsterInstance

# The e2e tests' dagster dev and GraphQL helpers live in the (not installed) tests package of this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alpha_assets.cli import PROJECT_DAGSTER_YAML
from alpha_assets.defs import names
from alpha_assets.defs.partitions import SYMBOLS_PER_RUN_ENV
from alpha_assets.lakehouse.paths import RunDataFile
from alpha_assets_tests.test_e2e.conftest import (
    LOCATION_NAME,
    REPOSITORY_NAME,
    DagsterDev,
    server_env,
    start_dagster_dev,
    stop_process_group,
)
from alpha_assets_tests.test_e2e.test_chain_e2e import _ADD_PARTITION, _LAUNCH_RUN
from alpha_assets_tests.test_e2e.test_dagster_dev import _BACKFILL, _LAUNCH_BACKFILL, _runs

CLOCK = "2026-11-25T12:00:00+00:00"
NEXT_DAY_CLOCK = "2026-11-26T12:00:00+00:00"
#: size -> (manifest profile of the chains, N symbols per backfill, chains).
SIZES = {"small": ("development", 10, 2), "large": (None, 50, 3)}
_REPOSITORY = {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME}
_RUN_TIMES = """
query($filter: RunsFilter!) {
  runsOrError(filter: $filter) { ... on Runs { results { runId jobName status creationTime startTime endTime } } }
}
"""
TIMEOUT_S = 3600


def _start(root: Path) -> DagsterDev:
    home, data_dir = root / "home", root / "data"
    home.mkdir()
    shutil.copyfile(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    env = server_env(home, data_dir, {})
    del env[SYMBOLS_PER_RUN_ENV]  # the e2e tests' small runs; the bench measures the deployment's default
    return start_dagster_dev(root, home, data_dir, env, "sqlite")


def _chain(server: DagsterDev, run_id: str, run_config: dict[str, Any]) -> dict[str, Any]:
    """Launch discovery of ``run_id`` as the UI does; wait for its flow_production; the per-link times."""
    server.graphql(_ADD_PARTITION, {"repo": _REPOSITORY, "name": "runs", "key": run_id})
    params = {
        "selector": {**_REPOSITORY, "jobName": names.DISCOVERY_JOB},
        "runConfigData": run_config,
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": run_id}]},
    }
    launched_at = time.time()
    launched = server.graphql(_LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched

    def finished() -> list[dict[str, Any]] | None:
        runs = server.graphql(_RUN_TIMES, {"filter": {"tags": [{"key": names.RUN_ID_TAG, "value": run_id}]}})
        runs = sorted(runs["runsOrError"]["results"], key=lambda r: r["creationTime"])
        if any(r["status"] in {"FAILURE", "CANCELED"} for r in runs):
            raise RuntimeError(f"chain {run_id} failed: {runs}")
        done = any(r["jobName"] == names.PRODUCTION_JOB and r["status"] == "SUCCESS" for r in runs)
        return runs if done else None

    runs = server.wait_for(finished, timeout=TIMEOUT_S, interval=0.5, what=f"chain {run_id}")
    portfolio = server.paths.run_data_file(run_id, RunDataFile.PORTFOLIO)
    assert json.loads(portfolio.read_text())["profiles"], f"{run_id}: no portfolio"
    links, previous_end = [], launched_at
    for run in runs:
        links.append(
            {
                "job": run["jobName"],
                "wait_s": round(run["startTime"] - previous_end, 1),
                "run_s": round(run["endTime"] - run["startTime"], 1),
            }
        )
        previous_end = run["endTime"]
    return {"run_id": run_id, "latency_s": round(runs[-1]["endTime"] - launched_at, 1), "links": links}


def _backfill(server: DagsterDev, partitions: list[str], title: str, n_symbols: int) -> dict[str, Any]:
    params = {
        "partitionNames": partitions,
        "assetSelection": [{"path": list(k.path)} for k in (names.OHLCV, names.FEATURES_MATRIX)],
        "title": title,
        # The wide exchange of the chain that added these symbols, one day later.
        "runConfigData": {
            "resources": {"market_source": {"config": {"clock": NEXT_DAY_CLOCK, "n_symbols": n_symbols}}}
        },
    }
    before = {key: _last_bar(server, key) for key in partitions}
    started = time.monotonic()
    launched = server.graphql(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished() -> dict[str, Any] | None:
        backfill = server.graphql(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        return backfill if backfill["status"] not in {"REQUESTED", "CANCELING"} else None

    backfill = server.wait_for(finished, timeout=TIMEOUT_S, interval=0.5, what=f"backfill {title}")
    elapsed = time.monotonic() - started
    runs = _runs(server, {"dagster/backfill": backfill_id})
    failed = [r["runId"] for r in runs if r["status"] != "SUCCESS"]
    if failed or backfill["status"] not in {"COMPLETED", "COMPLETED_SUCCESS"}:
        raise RuntimeError(f"backfill {title}: {backfill}; failed runs {failed} (logs: {server.log_path.parent})")
    up_to_date = [key for key, last in before.items() if last == "2026-11-24"]
    assert up_to_date, "no backfilled symbol was up to date before the backfill"
    for key in up_to_date:
        assert _last_bar(server, key) == "2026-11-25", f"{key}: one new bar expected"
    return {
        "symbols": len(partitions),
        "runs": len(runs),
        "wall_s": round(elapsed, 1),
        **_run_phases(server, [r["runId"] for r in runs]),
    }


#: Where a run's time goes, between its events: in the queue (created by the backfill daemon, until the queue
#: launches it), the start of its process (a fresh interpreter: Python, Dagster, the instance), the load of the
#: code location in it (importing ``alpha_assets.definitions``, building the plan), then the run itself.
_PHASES = {
    "queue_s": (DagsterEventType.RUN_ENQUEUED, DagsterEventType.RUN_STARTING),
    "process_start_s": (DagsterEventType.RUN_STARTING, "process"),
    "code_location_load_s": ("process", DagsterEventType.RUN_START),
    "run_s": (DagsterEventType.RUN_START, DagsterEventType.RUN_SUCCESS),
}
_PROCESS_STARTED = "Started process for run"


def _run_phases(server: DagsterDev, run_ids: list[str]) -> dict[str, Any]:
    """Median and total seconds of each of :data:`_PHASES` over ``run_ids``, from their event logs."""
    os.environ["DAGSTER_HOME"] = str(server.home)  # the project's storage class reads it
    per_phase: dict[str, list[float]] = {phase: [] for phase in _PHASES}
    with DagsterInstance.from_config(str(server.home)) as instance:
        for run_id in run_ids:
            at: dict[Any, float] = {}
            for entry in instance.all_logs(run_id):
                event_type = entry.dagster_event.event_type if entry.dagster_event else None
                if event_type == DagsterEventType.ENGINE_EVENT and _PROCESS_STARTED in entry.message:
                    at.setdefault("process", entry.timestamp)
                elif event_type is not None:
                    at.setdefault(event_type, entry.timestamp)
            for phase, (start, end) in _PHASES.items():
                per_phase[phase].append(at[end] - at[start])
    return {
        "phases_median_s": {phase: round(statistics.median(values), 2) for phase, values in per_phase.items()},
        "phases_total_s": {phase: round(sum(values), 1) for phase, values in per_phase.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--chains", type=int, help="chains to time (default: 2 small, 3 large)")
    parser.add_argument("--symbols", type=int, help="N, the symbols of each backfill (default: 10 small, 50 large)")
    args = parser.parse_args()
    profile, n, n_chains = SIZES[args.size]
    n = args.symbols or n
    n_chains = n_chains if args.chains is None else args.chains
    root = Path(tempfile.mkdtemp(prefix="bench_chain_"))
    server = _start(root)
    try:
        manifest = {"manifest": {"config": {"profile": profile}}} if profile else {}
        chain_config = {"resources": {**manifest, "market_source": {"config": {"clock": CLOCK}}}}
        chains = [_chain(server, f"BENCH_CHAIN_{i}", chain_config) for i in range(n_chains)]
        for chain in chains:
            steps = ", ".join(f"{link['job']} wait {link['wait_s']} s run {link['run_s']} s" for link in chain["links"])
            print(f"chain {chain['run_id']}: {chain['latency_s']} s from the launch to the portfolio ({steps})")

        # 3N symbol partitions for the backfills: a wider simulated exchange, every pair a candidate.
        wide = {
            "resources": {
                "manifest": {"config": {"path": str(_wide_manifest(root, 3 * n))}},
                "market_source": {"config": {"clock": CLOCK, "n_symbols": 3 * n + 10}},
            }
        }
        _chain(server, "BENCH_WIDE", wide)
        with_bars = [
            k for k in _ordered_symbols(server) if server.paths.ohlcv_file(k).exists() and k.startswith("SIM_")
        ]
        contiguous = with_bars[-3 * n : -2 * n]
        hand_picked = with_bars[-2 * n :][::2]
        figures = {
            "contiguous": _backfill(server, contiguous, f"bench: {n} contiguous", 3 * n + 10),
            "hand_picked": _backfill(server, hand_picked, f"bench: {n} hand-picked", 3 * n + 10),
        }
        for name, figure in figures.items():
            print(
                f"backfill of {figure['symbols']} {name} symbols: {figure['runs']} runs, {figure['wall_s']} s; "
                f"median per run {figure['phases_median_s']}, total {figure['phases_total_s']}"
            )
        ratio = figures["hand_picked"]["wall_s"] / figures["contiguous"]["wall_s"]
        print(f"hand-picked / contiguous wall time: {ratio:.1f}x (load average now {os.getloadavg()[0]:.1f})")
        write_results("chain", args.size, {"chains": chains, "backfills": figures, "n": n})
    except BaseException:
        stop_process_group(server.process)
        print(f"kept for a look: {root}")
        raise
    stop_process_group(server.process)
    shutil.rmtree(root, ignore_errors=True)


def _ordered_symbols(server: DagsterDev) -> list[str]:
    """The ``symbols`` partition keys in the instance's order (the order backfills split by; the UI sorts)."""
    os.environ["DAGSTER_HOME"] = str(server.home)  # the project's storage class reads it
    with DagsterInstance.from_config(str(server.home)) as instance:
        return instance.get_dynamic_partitions("symbols")


def _last_bar(server: DagsterDev, key: str) -> str:
    table = pq.read_table(server.paths.ohlcv_file(key), columns=["timestamp"])
    return str(pc.max(table["timestamp"]).as_py().date())


def _wide_manifest(root: Path, top_n: int) -> Path:
    path = root / "wide_manifest.json"
    profile = {"discovery": {"top_n": top_n, "min_traded_value_24h": 0}, "ingestion": {"history_days": 400}}
    path.write_text(json.dumps({"default_profile": "wide", "defaults": {}, "profiles": {"wide": profile}}))
    return path


if __name__ == "__main__":
    main()
