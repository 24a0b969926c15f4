"""The ``runs`` and ``symbols`` partitions at 40,000 keys each: adding them, and the UI on a real ``dagster dev``.

1. **Adding keys**: discovery's ``_add_symbol_partitions`` (one bulk lookup, Dagster's bulk insert), for a
   first discovery (every key new) and a re-discovery (every key known: the daily case), against the per-key
   lookups it did before (one ``has_dynamic_partition`` query per key, kept here only as the baseline) on the
   daily case, each on its own project instance; then the ``runs`` keys through Dagster's bulk call.
2. **The UI**: materialisations of ``ohlcv`` and ``features_matrix`` are recorded for a share of the symbols
   (runless events, features after bars so automation has nothing to do), then ``dagster dev`` (webserver +
   daemon, the project's ``dagster.yaml``) serves that home on 127.0.0.1, and the GraphQL documents the UI
   sends are timed: read from the installed webserver's own JavaScript bundle (the asset page's definition
   and partition health, a partition's page, the launchpad's partition list for the ingest job, the
   workspace query every page sends), median of ``--repeat``, with the answer's size. Then the daemon's
   ``automation_sensor`` ticks: duration and cursor size of each, as its page in the UI lists them. The run
   queue is closed (``max_concurrent_runs: 0``) so any run the automation requests is counted, not run.
3. **The automation tick in-process**, before ``dagster dev``, on the same home: ``--ticks`` evaluations from
   an empty cursor through the evaluation class the daemon uses (``AutomationTickEvaluationContext``, the
   dynamic partitions read once per tick), each timed with the cursor serialised as the daemon stores it;
   once with the project's conditions (``on_deps_updated``, ``defs/automation.py``) and once with Dagster's
   ``eager()`` in their place (what the project used before), so both figures come from one run.

Usage: ``.venv/bin/python bench/bench_partitions.py --size small|large`` from the project root. ``large``:
40,000 keys in each partitioning, 1 % of the symbols materialised (a runless event costs tens of ms on
SQLite); ``small``: 2,000 keys, 5 %. Writes
``bench/results/partitions_<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from common import timed, write_results
from dagster import AssetMaterialization, AssetSelection, DagsterInstance, Definitions
from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor
from dagster._core.definitions.automation_tick_evaluation_context import AutomationTickEvaluationContext
from dagster._daemon.asset_daemon import asset_daemon_cursor_to_instigator_serialized_cursor

# The e2e tests' dagster dev and GraphQL helpers live in the (not installed) tests package of this checkout.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dagster_webserver

from alpha_assets.cli import PROJECT_DAGSTER_YAML
from alpha_assets.definitions import defs as project_defs
from alpha_assets.defs import names
from alpha_assets.defs.automation import with_dagster_eager
from alpha_assets.defs.dataops.assets import _add_symbol_partitions
from alpha_assets_tests.test_e2e.conftest import (
    LOCATION_NAME,
    REPOSITORY_NAME,
    DagsterDev,
    server_env,
    start_dagster_dev,
    stop_process_group,
)

#: size -> (keys per partitioning, share of the symbols materialised).
SIZES = {"small": (2_000, 0.05), "large": (40_000, 0.01)}
#: The UI's documents timed here, by the name the UI gives them.
UI_QUERIES = (
    "AssetViewDefinitionQuery",
    "PartitionHealthQuery",
    "AssetPartitionDetailQuery",
    "ConfigPartitionsAssetsQuery",
    "LocationWorkspaceQuery",
)
_AUTOMATION_TICKS = """
query($selector: SensorSelector!, $limit: Int!) {
  sensorOrError(sensorSelector: $selector) { __typename ... on Sensor {
    sensorState { typeSpecificData { ... on SensorData { lastCursor } }
      ticks(limit: $limit) { status timestamp endTimestamp requestedAssetMaterializationCount error { message } } } } }
}
"""
_REPOSITORY = {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME}
TICK_TIMEOUT_S = 900


def ui_documents(names: tuple[str, ...]) -> dict[str, str]:
    """The GraphQL documents ``names`` as the installed UI sends them, each with the fragments it spreads.

    The UI's bundle holds each document as a tagged template: a JSON-compatible array of strings around the
    interpolated fragments, which are defined elsewhere in the bundle under their own names.
    """
    chunks = Path(dagster_webserver.__file__).parent / "webapp" / "build" / "_next" / "static" / "chunks"
    decoder = json.JSONDecoder()
    operations: dict[str, str] = {}
    fragments: dict[str, str] = {}
    for path in chunks.rglob("*.js"):
        text = path.read_text(errors="ignore")
        for start in re.finditer(r'\["\\n\s*(?:query|fragment|mutation) ', text):
            try:
                parts, _ = decoder.raw_decode(text, start.start())
            except json.JSONDecodeError:
                continue
            for document in re.split(r"\n(?=\s*(?:query|fragment|mutation) )", "".join(parts)):
                words = document.split(None, 2)
                if len(words) == 3:
                    name = re.split(r"[\s({]", words[1])[0]
                    (fragments if words[0] == "fragment" else operations)[name] = document.strip()
    missing = [name for name in names if name not in operations]
    if missing:
        raise SystemExit(f"the installed dagster-webserver's bundle has no {missing}: update UI_QUERIES")
    documents = {}
    for name in names:
        text = operations[name]
        while (
            unresolved := set(re.findall(r"\.\.\.([A-Za-z_]\w*)", text))
            - {"on"}
            - set(re.findall(r"fragment (\w+) on", text))
        ):
            text += "".join(f"\n\n{fragments[fragment]}" for fragment in sorted(unresolved))
        documents[name] = text
    return documents


def _home(root: Path, name: str, run_queue_closed: bool) -> Path:
    home = root / name
    home.mkdir()
    config = yaml.safe_load(PROJECT_DAGSTER_YAML.read_text())
    if run_queue_closed:
        config["run_queue"]["max_concurrent_runs"] = 0
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def _instance(home: Path) -> DagsterInstance:
    # The project's event log storage finds its folder through DAGSTER_HOME.
    os.environ["DAGSTER_HOME"] = str(home)
    return DagsterInstance.from_config(str(home))


def add_keys(root: Path, symbol_keys: list[str], run_ids: list[str]) -> tuple[Path, dict[str, float]]:
    """Add the keys through the previous per-key lookups (a scratch home) and through discovery's code."""
    figures = {}
    scratch = _instance(_home(root, "scratch_home", run_queue_closed=True))

    def per_key(instance: DagsterInstance) -> list[str]:
        missing = [k for k in symbol_keys if not instance.has_dynamic_partition("symbols", k)]
        instance.add_dynamic_partitions("symbols", missing)
        return missing

    scratch.add_dynamic_partitions("symbols", symbol_keys)
    figures["symbols_again_per_key_s"], added = timed(lambda: per_key(scratch))
    assert added == []
    scratch.dispose()

    home = _home(root, "home", run_queue_closed=True)
    instance = _instance(home)
    figures["symbols_first_bulk_s"], added = timed(lambda: _add_symbol_partitions(instance, symbol_keys))
    assert added == symbol_keys
    figures["symbols_again_bulk_s"], added = timed(lambda: _add_symbol_partitions(instance, symbol_keys))
    assert added == []
    figures["runs_bulk_s"], _ = timed(lambda: instance.add_dynamic_partitions("runs", run_ids))
    assert len(instance.get_dynamic_partitions("runs")) == len(run_ids)
    instance.dispose()
    return home, figures


def materialise(home: Path, symbol_keys: list[str]) -> float:
    """Record a materialisation of ``ohlcv`` then ``features_matrix`` for each key; the seconds it took."""
    instance = _instance(home)
    start = time.perf_counter()
    for asset_key in (names.OHLCV, names.FEATURES_MATRIX):
        for key in symbol_keys:
            instance.report_runless_asset_event(AssetMaterialization(asset_key=asset_key, partition=key))
    seconds = time.perf_counter() - start
    instance.dispose()
    return seconds


def automation_in_process(home: Path, defs: Definitions, ticks: int) -> dict[str, Any]:
    """Seconds of each of ``ticks`` automation ticks of ``defs`` on ``home``, and the last cursor's size (KB)."""
    instance = _instance(home)
    asset_graph = defs.resolve_asset_graph()
    cursor = AssetDaemonCursor.empty()
    seconds, size = [], 0
    for evaluation_id in range(1, ticks + 1):
        start = time.perf_counter()
        _, cursor, _ = AutomationTickEvaluationContext(
            evaluation_id=evaluation_id,
            instance=instance,
            asset_graph=asset_graph,
            cursor=cursor,
            materialize_run_tags={},
            observe_run_tags={},
            auto_observe_asset_keys=set(),
            asset_selection=AssetSelection.all(),
            logger=logging.getLogger("bench_partitions"),
            emit_backfills=False,
        ).evaluate()
        size = len(asset_daemon_cursor_to_instigator_serialized_cursor(cursor))
        seconds.append(time.perf_counter() - start)
    instance.dispose()
    return {"tick_s": seconds, "cursor_kb": size / 1024}


def time_ui(server: DagsterDev, documents: dict[str, str], variables: dict[str, dict[str, Any]], repeat: int):
    """Median seconds and answer size of each document, in rounds that send each once."""
    seconds: dict[str, list[float]] = {label: [] for label in variables}
    sizes: dict[str, int] = {}
    for _ in range(repeat):
        for label, values in variables.items():
            start = time.perf_counter()
            answer = server.post(documents[label.split(":")[0]], values, timeout=300)
            seconds[label].append(time.perf_counter() - start)
            if answer.get("errors"):
                server.fail(f"{label}: {json.dumps(answer['errors'])[:2000]}")
            sizes[label] = len(json.dumps(answer))
    return {
        label: {"median_s": statistics.median(times), "max_s": max(times), "answer_kb": sizes[label] / 1024}
        for label, times in seconds.items()
    }


def automation_ticks(server: DagsterDev, wanted: int) -> tuple[float, list[dict[str, Any]]]:
    """Wait for ``wanted`` finished ticks of automation_sensor: its cursor's size (KB), each tick's seconds."""
    selector = {**_REPOSITORY, "sensorName": "automation_sensor"}

    def finished() -> tuple[list[dict[str, Any]], str] | None:
        state = server.graphql(_AUTOMATION_TICKS, {"selector": selector, "limit": wanted + 5})["sensorOrError"]
        ticks = [t for t in state["sensorState"]["ticks"] if t["endTimestamp"]]
        cursor = state["sensorState"]["typeSpecificData"]["lastCursor"] or ""
        return (ticks, cursor) if len(ticks) >= wanted else None

    ticks, cursor = server.wait_for(finished, timeout=TICK_TIMEOUT_S, what=f"{wanted} automation ticks", interval=5)
    return len(cursor) / 1024, [
        {
            "status": t["status"],
            "seconds": t["endTimestamp"] - t["timestamp"],
            "requested": t["requestedAssetMaterializationCount"],
            "error": (t["error"] or {}).get("message", "")[:300],
        }
        for t in reversed(ticks[:wanted])
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ticks", type=int, default=3, help="automation_sensor ticks to wait for")
    args = parser.parse_args()
    n_keys, share = SIZES[args.size]
    # Three simulated exchanges, as a multi-exchange universe names them.
    symbol_keys = [f"SIM{i % 3 + 1}_S{i:05d}USDT" for i in range(n_keys)]
    run_ids = [f"RUN_{i:05d}" for i in range(n_keys)]
    documents = ui_documents(UI_QUERIES)
    figures: dict[str, Any] = {"keys": n_keys}
    with tempfile.TemporaryDirectory(prefix="bench_partitions_") as tmp:
        root = Path(tmp)
        home, figures["add"] = add_keys(root, symbol_keys, run_ids)
        for name, seconds in figures["add"].items():
            print(f"add {n_keys:,} keys: {name:26s} {seconds:7.2f} s")
        materialised = symbol_keys[:: round(1 / share)]
        figures["materialised"] = len(materialised)
        figures["materialise_s"] = materialise(home, materialised)
        print(f"recorded {2 * len(materialised):,} materialisations in {figures['materialise_s']:.1f} s")
        figures["in_process"] = {
            "on_deps_updated": automation_in_process(home, project_defs, args.ticks),
            "dagster_eager": automation_in_process(home, with_dagster_eager(project_defs), args.ticks),
        }
        for conditions, row in figures["in_process"].items():
            ticks = ", ".join(f"{seconds:.2f}" for seconds in row["tick_s"])
            print(f"automation in-process, {conditions:16s} ticks {ticks} s, cursor {row['cursor_kb']:.1f} KB")

        data_dir = root / "data"
        server = start_dagster_dev(root, home, data_dir, server_env(home, data_dir, {}), "sqlite")
        try:
            asset = {"assetKey": {"path": names.OHLCV.path}}
            variables = {
                "AssetViewDefinitionQuery:ohlcv": asset,
                "PartitionHealthQuery:ohlcv": asset,
                "PartitionHealthQuery:features_matrix": {"assetKey": {"path": names.FEATURES_MATRIX.path}},
                "PartitionHealthQuery:candidates": {"assetKey": {"path": names.CANDIDATES.path}},
                "AssetPartitionDetailQuery:ohlcv": {**asset, "partitionKey": materialised[-1]},
                "ConfigPartitionsAssetsQuery:flow_data_ingest": {
                    "params": {**_REPOSITORY, "pipelineName": names.INGEST_JOB},
                    "assetKeys": [{"path": names.OHLCV.path}, {"path": names.FEATURES_MATRIX.path}],
                },
                "LocationWorkspaceQuery": {"name": LOCATION_NAME},
            }
            figures["cursor_kb"], figures["ticks"] = automation_ticks(server, args.ticks)
            figures["graphql"] = time_ui(server, documents, variables, args.repeat)
            queued = server.graphql("{ runsOrError(filter: {statuses: [QUEUED]}) { ... on Runs { count } } }")
            figures["queued_runs"] = queued["runsOrError"]["count"]
        finally:
            stop_process_group(server.process)
    for label, row in figures["graphql"].items():
        print(f"GraphQL {label:45s} median {row['median_s']:6.2f} s  max {row['max_s']:6.2f} s", end="  ")
        print(f"{row['answer_kb']:8.1f} KB")
    for tick in figures["ticks"]:
        print(f"automation tick {tick['status']:8s} {tick['seconds']:6.2f} s", end="  ")
        print(f"requested {tick['requested']} {tick['error']}")
    print(f"automation cursor (daemon) {figures['cursor_kb']:.1f} KB")
    print(f"runs the automation queued: {figures['queued_runs']}")
    write_results("partitions", args.size, figures)


if __name__ == "__main__":
    main()
