"""The code location served by a real ``dagster dev``, driven only through its GraphQL API: a partition
backfill of three symbols run by the daemon, and the export sensor launching flow_production for a dropped
export. Both run on every server of the conftest: the sqlite and Postgres instances over a local data folder, and
the sqlite instance over a bucket of the tests' S3 server (``[sqlite-s3]``: the daemon's runs write the bars,
the features table and the portfolio as objects; the export sensor sees an object's whole-second time).

Leaves to other modules: the asset logic and the sensors' decisions in-process (test_defs), the UI page
(test_ui_page.py).
"""

from __future__ import annotations

from typing import Any

import pyarrow.compute as pc
import pytest

from alpha_assets.defs import names
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.lakehouse.parquet import read_table
from alpha_assets_tests.test_e2e.conftest import (
    LOCATION_NAME,
    ON_EVERY_SERVER,
    PREPARED_RUN_ID,
    PROFILE,
    REPOSITORY_NAME,
    DagsterDev,
)

pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("dagster_dev", ON_EVERY_SERVER, indirect=True)]

BACKFILL_SYMBOLS = ["SIM_BTCUSDT", "SIM_ETHUSDT", "SIM_SOLUSDT"]
#: One day after the prepared clock: the backfill must append exactly one closed bar per symbol.
NEXT_DAY_CLOCK = "2026-11-26T12:00:00+00:00"
NEW_LAST_BAR = "2026-11-25"
DROPPED_RUN_ID = "E2E_DROPPED_RUN"
EXPORT_SENSOR = {
    "repositoryName": REPOSITORY_NAME,
    "repositoryLocationName": LOCATION_NAME,
    "sensorName": "export_sensor",
}

#: An upper bound to wait, not a target: the backfill on the bucket took 121 s at load ~20.
BACKFILL_TIMEOUT_S = 300
PRODUCTION_TIMEOUT_S = 240

_BACKFILL_OK = {"COMPLETED", "COMPLETED_SUCCESS"}
_BACKFILL_FAILED = {"FAILED", "COMPLETED_FAILED", "CANCELED"}
_RUN_FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

_LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message }
  }
}
"""
_BACKFILL = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename ... on PartitionBackfill { status numPartitions error { message } } ... on Error { message }
  }
}
"""
_RUNS = """
query($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename ... on Runs { results { runId jobName status tags { key value } } } ... on Error { message }
  }
}
"""
_MATERIALIZATIONS = """
query($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) {
    __typename
    ... on Asset { assetMaterializations(partitions: $partitions) {
      partition runId metadataEntries { label ... on IntMetadataEntry { intValue } } } }
  }
}
"""
_SENSOR_FIELDS = "__typename ... on Sensor { sensorState { status } } ... on Error { message }"
_SENSOR = f"query($s: SensorSelector!) {{ sensorOrError(sensorSelector: $s) {{ {_SENSOR_FIELDS} }} }}"
_START_SENSOR = f"mutation($s: SensorSelector!) {{ startSensor(sensorSelector: $s) {{ {_SENSOR_FIELDS} }} }}"


def _runs(server: DagsterDev, tags: dict[str, str]) -> list[dict[str, Any]]:
    data = server.graphql(_RUNS, {"filter": {"tags": [{"key": k, "value": v} for k, v in tags.items()]}})
    runs = data["runsOrError"]
    if runs["__typename"] != "Runs":
        server.fail(f"runsOrError({tags}) answered {runs}")
    return runs["results"]


def _finished_backfill(server: DagsterDev, backfill_id: str) -> dict[str, Any] | None:
    backfill = server.graphql(_BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
    if backfill["__typename"] != "PartitionBackfill":
        server.fail(f"partitionBackfillOrError({backfill_id}) answered {backfill}")
    return backfill if backfill["status"] in _BACKFILL_OK | _BACKFILL_FAILED else None


def _materializations(server: DagsterDev, asset_path: list[str], run_id: str) -> dict[str, dict[str, Any]]:
    """The materializations of the backfilled partitions of an asset made by ``run_id``, by partition."""
    data = server.graphql(_MATERIALIZATIONS, {"path": asset_path, "partitions": BACKFILL_SYMBOLS})
    data = data["assetOrError"]
    if data["__typename"] != "Asset":
        server.fail(f"assetOrError({asset_path}) answered {data}")
    return {e["partition"]: e for e in data["assetMaterializations"] if e["runId"] == run_id}


def test_partition_backfill_of_three_symbols_appends_one_bar_to_each(dagster_dev):
    # features_matrix (same `symbols` partitions) rides along, so that the automation sensor has no
    # follow-up run to start while the next test runs. The run config moves the clock one day past the
    # prepared data and keeps the prepared manifest profile.
    selected = [names.OHLCV, names.FEATURES_MATRIX]
    params = {
        "partitionNames": BACKFILL_SYMBOLS,
        "assetSelection": [{"path": list(key.path)} for key in selected],
        "title": "e2e: three symbols",
        "runConfigData": {
            "resources": {
                "market_source": {"config": {"clock": NEXT_DAY_CLOCK}},
                "manifest": {"config": {"profile": PROFILE}},
            }
        },
    }
    launched = dagster_dev.graphql(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        dagster_dev.fail(f"launchPartitionBackfill answered {launched}")
    backfill_id = launched["backfillId"]

    backfill = dagster_dev.wait_for(
        lambda: _finished_backfill(dagster_dev, backfill_id),
        timeout=BACKFILL_TIMEOUT_S,
        what=f"backfill {backfill_id} to finish",
    )
    runs = _runs(dagster_dev, {"dagster/backfill": backfill_id})
    assert backfill["status"] in _BACKFILL_OK, f"backfill {backfill_id}: {backfill}, runs {runs}"
    assert backfill["numPartitions"] == len(BACKFILL_SYMBOLS)
    # Single-run backfill policies: one run covers the three partitions of every selected asset.
    assert [run["status"] for run in runs] == ["SUCCESS"], runs

    for key in selected:
        events = _materializations(dagster_dev, list(key.path), runs[0]["runId"])
        assert sorted(events) == sorted(BACKFILL_SYMBOLS), key.to_user_string()
    ohlcv_event = _materializations(dagster_dev, list(names.OHLCV.path), runs[0]["runId"])["SIM_BTCUSDT"]
    new_bars = {e["label"]: e.get("intValue") for e in ohlcv_event["metadataEntries"]}["new_bars"]
    assert new_bars == len(BACKFILL_SYMBOLS), "one new closed daily bar per symbol"
    for symbol_key in BACKFILL_SYMBOLS:
        bars = read_table(dagster_dev.paths.ohlcv_file(symbol_key))
        assert str(pc.max(bars["timestamp"]).as_py().date()) == NEW_LAST_BAR, symbol_key


def _finished_production(server: DagsterDev, run_id: str) -> dict[str, Any] | None:
    runs = [r for r in _runs(server, {names.RUN_ID_TAG: run_id}) if r["jobName"] == names.PRODUCTION_JOB]
    return runs[0] if runs and runs[0]["status"] in _RUN_FINISHED else None


def test_export_sensor_runs_flow_production_for_a_dropped_export(dagster_dev):
    sensor = dagster_dev.graphql(_SENSOR, {"s": EXPORT_SENSOR})["sensorOrError"]
    if sensor["__typename"] != "Sensor":
        dagster_dev.fail(f"sensorOrError(export_sensor) answered {sensor}")
    if sensor["sensorState"]["status"] != "RUNNING":
        sensor = dagster_dev.graphql(_START_SENSOR, {"s": EXPORT_SENSOR})["startSensor"]
    assert sensor.get("sensorState", {}).get("status") == "RUNNING", sensor

    # A new RUN_ID over the prepared export: the lakehouse already holds its bars and features.
    paths = dagster_dev.paths
    document = read_json(paths.candidates_validated_file(PREPARED_RUN_ID))
    document["run_id"] = DROPPED_RUN_ID
    write_json_atomic(document, paths.candidates_validated_file(DROPPED_RUN_ID))

    run = dagster_dev.wait_for(
        lambda: _finished_production(dagster_dev, DROPPED_RUN_ID),
        timeout=PRODUCTION_TIMEOUT_S,
        interval=3.0,
        what=f"export_sensor's {names.PRODUCTION_JOB} run for {DROPPED_RUN_ID} to finish",
    )
    tags = {tag["key"]: tag["value"] for tag in run["tags"]}
    assert run["status"] == "SUCCESS", f"{names.PRODUCTION_JOB} run {run['runId']} ended {run['status']}"
    assert tags["dagster/sensor_name"] == "export_sensor"
    assert tags["dagster/partition"] == DROPPED_RUN_ID

    portfolio = read_json(paths.run_data_file(DROPPED_RUN_ID, "portfolio_flattened.json"))
    assert portfolio["metadata"]["run_id"] == DROPPED_RUN_ID
    assert portfolio["profiles"], "no optimisation profile in the portfolio"
    for name, body in portfolio["profiles"].items():
        assert body["status"] == "optimal", (name, body.get("reason"))
        assert sum(row["Weight"] for row in body["rows"]) == pytest.approx(1.0, abs=1e-6), name
