"""A chain launched as the UI launches it, run by the daemon of a real ``dagster dev``: discovery of a new RUN_ID
with a non-default manifest profile and source (a folder of CSV files) and a clock in its run config, then
every link and flow_production started by the sensors.

Checks every run of the chain: the order of the links (flow_production only after validation, so after the
features), the run config and tags each one carries, the symbols each covers, and features computed once.
Logs the latency from the launch to the portfolio (bench/bench_chain.py measures it for the demo universe).
Leaves to test_defs/test_chain.py: the sensors' decisions in-process, the edge cases.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from alpha_assets.defs import names
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets_tests.test_e2e.conftest import CLOCK, LOCATION_NAME, PREPARED_RUN_ID, REPOSITORY_NAME, DagsterDev

pytestmark = pytest.mark.e2e

CHAIN_RUN_ID = "E2E_CHAIN"
#: The files source names its exchange after the files' prefix.
FILES_EXCHANGE = "LOCAL"
FILES_SYMBOLS = 12
#: Not the manifest's default profile (crypto): top 20, 400 days, three optimisation profiles.
CHAIN_PROFILE = "development"
USER_TAGS = {"team": "e2e-research"}
CHAIN_TIMEOUT_S = 300

_REPOSITORY = {"repositoryLocationName": LOCATION_NAME, "repositoryName": REPOSITORY_NAME}
_ADD_PARTITION = """
mutation($repo: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
    __typename ... on Error { message }
  }
}
"""
_LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""
_CHAIN_RUNS = """
query($filter: RunsFilter!) {
  runsOrError(filter: $filter) {
    __typename ... on Runs { results { runId jobName status creationTime startTime endTime runConfigYaml
                                      tags { key value } } }
  }
}
"""
_RUN_MATERIALIZATIONS = """
query($runId: ID!) {
  runOrError(runId: $runId) { ... on Run { assetMaterializations { partition assetKey { path } } } }
}
"""
_PARTITION_MATERIALIZATIONS = """
query($path: [String!]!, $partitions: [String!]) {
  assetOrError(assetKey: {path: $path}) { ... on Asset { assetMaterializations(partitions: $partitions) { runId } } }
}
"""


def _write_csv_folder(server: DagsterDev, folder) -> list[str]:
    """CSV files in the files source's format, made from the prepared bars of the first pairs."""
    folder.mkdir()
    prepared = [
        c["symbol_key"] for c in read_json(server.paths.candidates_validated_file(PREPARED_RUN_ID))["candidates"]
    ]
    keys_ = []
    for symbol_key in prepared[:FILES_SYMBOLS]:
        frame = pq.read_table(server.paths.ohlcv_file(symbol_key)).to_pandas()
        frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        key = f"{FILES_EXCHANGE}_{symbol_key.split('_', 1)[1]}"
        frame[["timestamp", "open", "high", "low", "close", "volume"]].to_csv(folder / f"{key}_1d.csv", index=False)
        keys_.append(key)
    return keys_


def _chain_runs(server: DagsterDev) -> list[dict[str, Any]]:
    data = server.graphql(_CHAIN_RUNS, {"filter": {"tags": [{"key": names.RUN_ID_TAG, "value": CHAIN_RUN_ID}]}})
    return sorted(data["runsOrError"]["results"], key=lambda r: r["creationTime"])


def _portfolio_done(server: DagsterDev) -> list[dict[str, Any]] | None:
    runs = _chain_runs(server)
    failed = [r for r in runs if r["status"] in {"FAILURE", "CANCELED"}]
    if failed:
        server.fail(f"a run of the chain ended {failed[0]['status']}: {failed[0]['jobName']} {failed[0]['runId']}")
    production = [r for r in runs if r["jobName"] == names.PRODUCTION_JOB and r["status"] == "SUCCESS"]
    return runs if production else None


def test_ui_launched_chain_carries_profile_source_clock_and_tags_to_flow_production(dagster_dev, tmp_path):
    files_dir = tmp_path / "csv_source"
    file_keys = _write_csv_folder(dagster_dev, files_dir)
    run_config = {
        "resources": {
            "manifest": {"config": {"profile": CHAIN_PROFILE}},
            "market_source": {"config": {"source": "FILES", "files_dir": str(files_dir), "clock": CLOCK}},
        }
    }
    added = dagster_dev.graphql(_ADD_PARTITION, {"repo": _REPOSITORY, "name": "runs", "key": CHAIN_RUN_ID})
    assert added["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess", added
    params = {
        "selector": {**_REPOSITORY, "jobName": names.DISCOVERY_JOB},
        "runConfigData": run_config,
        # What the launchpad sends for one partition, plus a tag of the user's; no RUN_ID tag.
        "executionMetadata": {
            "tags": [{"key": "dagster/partition", "value": CHAIN_RUN_ID}]
            + [{"key": k, "value": v} for k, v in USER_TAGS.items()]
        },
    }
    started, launched_at = time.monotonic(), time.time()
    launched = dagster_dev.graphql(_LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    runs = dagster_dev.wait_for(
        lambda: _portfolio_done(dagster_dev),
        timeout=CHAIN_TIMEOUT_S,
        interval=1.0,
        what=f"the chain of {CHAIN_RUN_ID} to reach a portfolio",
    )
    latency = time.monotonic() - started
    links = ", ".join(
        f"{r['jobName']} {r['endTime'] - r['startTime']:.1f} s after {r['startTime'] - previous:.1f} s"
        for r, previous in zip(runs, [launched_at, *(r["endTime"] for r in runs)], strict=False)
    )
    # In the test's log (pytest -s, or the report's captured stdout); bench/bench_chain.py for the figures.
    print(f"chain latency from the UI launch to the portfolio: {latency:.1f} s for {len(file_keys)} files ({links})")

    # Every link once, in order, each after the one before ended.
    assert [r["jobName"] for r in runs] == [
        names.DISCOVERY_JOB,
        names.INGEST_JOB,
        names.VALIDATION_JOB,
        names.PRODUCTION_JOB,
    ], [(r["jobName"], r["status"]) for r in runs]
    for before, after in zip(runs, runs[1:], strict=False):
        assert after["startTime"] >= before["endTime"], f"{after['jobName']} started before {before['jobName']} ended"
    production_tags = {t["key"]: t["value"] for t in runs[-1]["tags"]}
    assert production_tags["dagster/sensor_name"] == "validation_succeeded_sensor"
    discovery_id = runs[0]["runId"]
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert {k: tags.get(k) for k in USER_TAGS} == USER_TAGS, run["jobName"]
        assert tags[names.RUN_ID_TAG] == CHAIN_RUN_ID
        if run["runId"] != discovery_id:
            assert tags[names.CHAIN_TAG] == discovery_id, run["jobName"]
        # BaseLoader: every scalar a string, as the run config was sent (the clock stays ISO text).
        assert yaml.load(run["runConfigYaml"], Loader=yaml.BaseLoader)["resources"] == run_config["resources"], run[
            "jobName"
        ]

    # The settings took effect: files source, its exchange, the profile, the clock.
    candidates = read_json(dagster_dev.paths.candidates_file(CHAIN_RUN_ID))
    assert (candidates["source"], candidates["exchange"]) == ("files", FILES_EXCHANGE)
    assert candidates["manifest_profile"] == CHAIN_PROFILE
    assert pd.Timestamp(candidates["as_of"]) == pd.Timestamp(CLOCK)
    chosen = sorted(c["symbol_key"] for c in candidates["candidates"])
    assert chosen and set(chosen) <= set(file_keys)
    frozen = read_json(dagster_dev.paths.run_data_file(CHAIN_RUN_ID, "manifest_resolved.json"))
    assert frozen["profile"] == CHAIN_PROFILE
    portfolio = read_json(dagster_dev.paths.run_data_file(CHAIN_RUN_ID, "portfolio_flattened.json"))
    assert sorted(portfolio["profiles"]) == ["equal_weight", "hrp", "min_variance"], "the development profiles"

    # The ingest run materialised exactly the universe, bars and features, each once.
    assert {t["key"]: t["value"] for t in runs[1]["tags"]}[names.PART_TAG] == "1/1"
    for asset in (names.OHLCV, names.FEATURES_MATRIX):
        events = dagster_dev.graphql(_RUN_MATERIALIZATIONS, {"runId": runs[1]["runId"]})["runOrError"][
            "assetMaterializations"
        ]
        assert sorted(e["partition"] for e in events if e["assetKey"]["path"] == list(asset.path)) == chosen, asset
        events = dagster_dev.graphql(_PARTITION_MATERIALIZATIONS, {"path": list(asset.path), "partitions": chosen})
        events = events["assetOrError"]["assetMaterializations"]
        assert len(events) == len(chosen) and {e["runId"] for e in events} == {runs[1]["runId"]}, asset
