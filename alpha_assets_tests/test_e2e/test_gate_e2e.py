"""The gate per RUN_ID on a real ``dagster dev``: the daemon's automation holds back exactly the failing RUN_ID.

Two RUN_IDs over the prepared export, one failing its gate (a validated candidate without features). Their
``returns_matrix`` partitions are backfilled from GraphQL as the UI does, the failing one first; then the
automation sensor, ticking on its own, must run ``selection`` and ``portfolio_flattened`` for the passing
RUN_ID only. The test watches
several ticks after both gates were recorded and checks that no run ever materialised ``selection`` for the
failing RUN_ID. The export sensor is paused meanwhile, so that automation alone decides.
Leaves to test_defs/test_check_partitions.py: the same decisions evaluated in-process.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

import pytest

from alpha_assets.defs import names
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets_tests.test_e2e.conftest import LOCATION_NAME, PREPARED_RUN_ID, PROFILE, REPOSITORY_NAME, DagsterDev
from alpha_assets_tests.test_e2e.test_dagster_dev import _LAUNCH_BACKFILL

pytestmark = pytest.mark.e2e

PASS_RUN_ID = "E2E_GATE_PASS"
FAIL_RUN_ID = "E2E_GATE_FAIL"
NO_FEATURES = "SIM_NOFEATUSDT"
#: Automation ticks watched after both gates were recorded (the sensor ticks every 30 s).
TICKS_WATCHED = 3
GATES_TIMEOUT_S = 360
#: Seconds for an export-sensor tick begun before the pause to record itself.
EXPORT_TICK_SETTLE_S = 5
#: The tag Dagster puts on runs the automation sensor launches.
AUTOMATION_TAG = "dagster/from_automation_condition"
PORTFOLIO_TIMEOUT_S = 360

_REPOSITORY = {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME}
_EXPORT_SENSOR = {**_REPOSITORY, "sensorName": "export_sensor"}
_AUTOMATION_SENSOR = {**_REPOSITORY, "sensorName": "automation_sensor"}
_SENSOR_FIELDS = "__typename ... on Sensor { sensorState { status } } ... on Error { message }"
_STOP_SENSOR = """
mutation($id: String!) {
  stopSensor(id: $id) {
    __typename ... on StopSensorMutationResult { instigationState { status } } ... on Error { message }
  }
}
"""
_START_SENSOR = f"mutation($s: SensorSelector!) {{ startSensor(sensorSelector: $s) {{ {_SENSOR_FIELDS} }} }}"
_SENSOR_ID = "query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) { ... on Sensor { id } } }"
_TICKS = """
query($s: SensorSelector!) {
  sensorOrError(sensorSelector: $s) {
    __typename ... on Sensor { sensorState { ticks(limit: 50) { status timestamp } } }
  }
}
"""
_ADD_PARTITION = """
mutation($repo: RepositorySelector!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: "runs", partitionKey: $key) {
    __typename ... on Error { message }
  }
}
"""
_RUNS = """
query($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename ... on Runs { results { runId jobName status endTime tags { key value } } }
  }
}
"""
_MATERIALIZED = """
query($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    __typename ... on Asset { assetMaterializations(partitions: $partitions) { partition runId } }
  }
}
"""
_CHECK_EXECUTIONS = """
query($path: [String!]!, $name: String!, $partition: String) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $name, limit: 5, partition: $partition) {
    status runId
  }
}
"""


def _write_exports(server: DagsterDev) -> None:
    paths = server.paths
    document = read_json(paths.candidates_validated_file(PREPARED_RUN_ID))
    for run_id, extra in ((PASS_RUN_ID, []), (FAIL_RUN_ID, [NO_FEATURES])):
        copy = {**document, "run_id": run_id, "symbols": sorted({*document["symbols"], *extra})}
        copy["candidates"] = document["candidates"] + [{"symbol_key": k, "sector": "unknown"} for k in extra]
        write_json_atomic(copy, paths.candidates_validated_file(run_id))
    # Sound bars, never any features: the failing RUN_ID's gate names this symbol.
    shutil.copyfile(paths.ohlcv_file("SIM_ETHUSDT"), paths.ohlcv_file(NO_FEATURES))


def _runs_of(server: DagsterDev, run_id: str) -> list[dict[str, Any]]:
    data = server.graphql(_RUNS, {"filter": {"tags": [{"key": "dagster/partition", "value": run_id}]}})
    return data["runsOrError"]["results"]


def _materialized(server: DagsterDev, key, run_id: str) -> list[dict[str, Any]]:
    data = server.graphql(_MATERIALIZED, {"path": list(key.path), "partitions": [run_id]})["assetOrError"]
    return data["assetMaterializations"] if data["__typename"] == "Asset" else []


def _gate_status(server: DagsterDev, run_id: str) -> str | None:
    variables = {"path": list(names.RETURNS_MATRIX.path), "name": names.GATE_FEATURES_PRESENT, "partition": run_id}
    executions = server.graphql(_CHECK_EXECUTIONS, variables)["assetCheckExecutions"]
    return executions[0]["status"] if executions and executions[0]["status"] in ("SUCCEEDED", "FAILED") else None


def _latest_tick_status(server: DagsterDev, selector: dict[str, str]) -> str | None:
    ticks = server.graphql(_TICKS, {"s": selector})["sensorOrError"]["sensorState"]["ticks"]
    return max(ticks, key=lambda t: t["timestamp"])["status"] if ticks else None


def _backfill_returns_matrix(server: DagsterDev, run_id: str) -> str:
    params = {
        "partitionNames": [run_id],
        "assetSelection": [{"path": list(names.RETURNS_MATRIX.path)}],
        "title": f"e2e: gate of {run_id}",
        "runConfigData": {"resources": {"manifest": {"config": {"profile": PROFILE}}}},
    }
    launched = server.graphql(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _tag(run: dict[str, Any], key: str) -> str | None:
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


def _ticks_after(server: DagsterDev, since: float) -> list[dict[str, Any]]:
    sensor = server.graphql(_TICKS, {"s": _AUTOMATION_SENSOR})["sensorOrError"]
    ticks = sensor["sensorState"]["ticks"]
    return [t for t in ticks if t["timestamp"] > since and t["status"] in ("SUCCESS", "SKIPPED")]


@pytest.fixture
def export_sensor_paused(dagster_dev):
    sensor_id = dagster_dev.graphql(_SENSOR_ID, {"s": _EXPORT_SENSOR})["sensorOrError"]["id"]
    stopped = dagster_dev.graphql(_STOP_SENSOR, {"id": sensor_id})["stopSensor"]
    assert stopped["__typename"] == "StopSensorMutationResult", stopped
    # A tick that started before the stop may still read the exports: give it time to be recorded, then to end.
    # (Should one still slip through, the assertions hold whichever sensor produced the passing portfolio.)
    time.sleep(EXPORT_TICK_SETTLE_S)
    dagster_dev.wait_for(
        lambda: True if _latest_tick_status(dagster_dev, _EXPORT_SENSOR) != "STARTED" else None,
        timeout=60,
        what="the export sensor's last tick to end",
    )
    yield
    dagster_dev.graphql(_START_SENSOR, {"s": _EXPORT_SENSOR})


def test_automation_runs_selection_for_the_passing_run_id_and_never_for_the_failing_one(
    dagster_dev, export_sensor_paused
):
    started = time.time()
    _write_exports(dagster_dev)
    for run_id in (PASS_RUN_ID, FAIL_RUN_ID):
        added = dagster_dev.graphql(_ADD_PARTITION, {"repo": _REPOSITORY, "key": run_id})["addDynamicPartition"]
        assert added["__typename"] == "AddDynamicPartitionSuccess", added
    # The failing RUN_ID's gate first, then the passing one's: with one status per check for all RUN_IDs, the
    # later pass would overwrite the failure and automation would request selection for both.
    statuses, backfills = {}, {}
    for run_id in (FAIL_RUN_ID, PASS_RUN_ID):
        backfills[run_id] = _backfill_returns_matrix(dagster_dev, run_id)
        statuses[run_id] = dagster_dev.wait_for(
            lambda run_id=run_id: _gate_status(dagster_dev, run_id),
            timeout=GATES_TIMEOUT_S,
            what=f"the gate checks of {run_id} to be recorded",
        )
    assert statuses == {PASS_RUN_ID: "SUCCEEDED", FAIL_RUN_ID: "FAILED"}, statuses
    gates_recorded = time.time()

    # The passing RUN_ID gets its selection and portfolio (from the automation sensor, the export sensor being paused).
    produced = dagster_dev.wait_for(
        lambda: _materialized(dagster_dev, names.PORTFOLIO_FLATTENED, PASS_RUN_ID) or None,
        timeout=PORTFOLIO_TIMEOUT_S,
        interval=3.0,
        what=f"the portfolio of {PASS_RUN_ID}",
    )
    latency = time.time() - started
    paths = dagster_dev.paths
    dagster_dev.wait_for(
        lambda: True if len(_ticks_after(dagster_dev, gates_recorded)) >= TICKS_WATCHED else None,
        timeout=30.0 * (TICKS_WATCHED + 2),
        interval=5.0,
        what=f"{TICKS_WATCHED} automation ticks after both gates were recorded",
    )

    assert _materialized(dagster_dev, names.SELECTION, FAIL_RUN_ID) == []
    assert _materialized(dagster_dev, names.PORTFOLIO_FLATTENED, FAIL_RUN_ID) == []
    assert not paths.run_data_file(FAIL_RUN_ID, "selection.json").exists()
    automation_runs = [r for r in _runs_of(dagster_dev, FAIL_RUN_ID) if _tag(r, AUTOMATION_TAG)]
    assert automation_runs == [], f"automation launched runs for {FAIL_RUN_ID}: {automation_runs}"

    assert {m["partition"] for m in _materialized(dagster_dev, names.SELECTION, PASS_RUN_ID)} == {PASS_RUN_ID}
    portfolio = read_json(paths.run_data_file(PASS_RUN_ID, "portfolio_flattened.json"))
    assert portfolio["metadata"]["run_id"] == PASS_RUN_ID
    producers = {
        r["runId"]: _tag(r, "dagster/sensor_name") or _tag(r, "dagster/backfill")
        for r in _runs_of(dagster_dev, PASS_RUN_ID)
        if r["runId"] in {m["runId"] for m in produced}
    }
    print(f"e2e gate: portfolio of {PASS_RUN_ID} {latency:.1f} s after the first backfill launch, by {producers}")
