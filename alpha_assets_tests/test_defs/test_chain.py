"""The chain of one RUN_ID on a shared instance, driven link by link through the real sensors.

Exercises: the symbol link covering exactly the RUN_ID's universe when another data folder's symbols sit between
its partitions; every link and flow_production carrying the first link's run config and tags (a UI-style
discovery with a non-default profile and its own tags); validation waiting for every part of the ingest link;
the export sensor waiting for a RUN_ID's runs to end and falling back to defaults for a dropped export; refused
input creating no partition; an existing export never rewritten with another universe; an old RUN_ID's truncated
export or a damaged file of the features table never failing another RUN_ID's validation (named, left in place).
Leaves to test_e2e: the daemon running these sensors (test_chain_e2e.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SkipReason,
    build_run_status_sensor_context,
    build_sensor_context,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from deltalake import DeltaTable

from alpha_assets import cli
from alpha_assets.definitions import build_definitions
from alpha_assets.defs import names
from alpha_assets.defs.alpha.sensors import export_sensor, new_exports
from alpha_assets.defs.chain import contiguous_ranges, link_succeeded
from alpha_assets.defs.dataops.sensors import (
    discovery_succeeded_sensor,
    ingest_succeeded_sensor,
    validation_succeeded_sensor,
)
from alpha_assets.defs.resources import LakehouseResource
from alpha_assets.lakehouse import duckdb_views
from alpha_assets.lakehouse.features_store import FeatureRows, read_features, write_features
from alpha_assets.lakehouse.jsonio import read_json
from alpha_assets.orchestration.runner import FlowFailedError, ensure_run_partition, run_flow_data, run_link
from alpha_assets_tests.test_defs.conftest import CLOCK, SIM_SYMBOLS, make_flow_env

RUN_ID = "RUN_CHAIN"
#: Symbols another data folder added to the same instance first, between this RUN_ID's own.
FOREIGN = ["OTHER_AAAUSDT", "OTHER_BBBUSDT"]
INTERLEAVED = ["SIM_BTCUSDT", FOREIGN[0], "SIM_ETHUSDT", FOREIGN[1]]
USER_TAGS = {"team": "research"}


def test_contiguous_ranges_cover_exactly_the_keys_in_instance_order():
    ordered = ["A", "X", "B", "C", "Y", "D"]
    assert contiguous_ranges(ordered, ["D", "A", "B", "C"], "R") == [("A", "A"), ("B", "C"), ("D", "D")]
    assert contiguous_ranges(ordered, ["X"], "R") == [("X", "X")]


@pytest.mark.parametrize(
    ("keys_", "match"), [([], "no symbol to run"), (["A", "Z"], r"1 symbols \['Z'\] are not partitions")], ids=str
)
def test_contiguous_ranges_refuse_unknown_or_no_symbols(keys_, match):
    with pytest.raises(ValueError, match=match):
        contiguous_ranges(["A", "B"], keys_, "R")


def _covered(instance: DagsterInstance, tags: dict[str, str]) -> list[str]:
    ordered = instance.get_dynamic_partitions("symbols")
    start, end = (
        ordered.index(tags[ASSET_PARTITION_RANGE_START_TAG]),
        ordered.index(tags[ASSET_PARTITION_RANGE_END_TAG]),
    )
    return ordered[start : end + 1]


def _success_context(instance: DagsterInstance, dagster_run_id: str, sensor_name: str, lakehouse):
    record = instance.get_records_for_run(dagster_run_id, of_type=DagsterEventType.RUN_SUCCESS).records[0]
    return build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=record.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(dagster_run_id),
        resources={"lakehouse": lakehouse},
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A UI-style discovery: partition only, the user's tags, the settings in the run config."""
    env = make_flow_env(tmp_path_factory.mktemp("chain"))
    env.instance.add_dynamic_partitions("symbols", INTERLEAVED)
    config = {
        "resources": {
            "lakehouse": {"config": {"data_dir": str(env.paths.root)}},
            "manifest": {"config": {"path": str(env.manifest_path), "profile": "test"}},
            "market_source": {"config": {"clock": CLOCK, "n_symbols": SIM_SYMBOLS}},
        }
    }
    # The daemon's resources point elsewhere: everything the chain reads must come from the run config.
    daemon_lakehouse = LakehouseResource(data_dir=str(env.root / "daemon_default_data"))
    defs = build_definitions()
    ensure_run_partition(env.instance, RUN_ID)
    discovery = run_link(
        defs, env.instance, names.DISCOVERY_JOB, partition_key=RUN_ID, tags=USER_TAGS, run_config=config
    )
    yield env, defs, config, daemon_lakehouse, discovery
    env.instance.dispose()


def test_discovery_tags_its_own_run_with_the_run_id(chain):
    env, _, _, _, discovery = chain
    assert env.instance.get_run_by_id(discovery.dagster_run_id).tags[names.RUN_ID_TAG] == RUN_ID


def test_chain_runs_every_link_with_the_first_links_settings_and_exactly_its_universe(chain):
    env, defs, config, lakehouse, discovery = chain
    instance = env.instance
    requests = discovery_succeeded_sensor(
        _success_context(instance, discovery.dagster_run_id, "discovery_succeeded_sensor", lakehouse)
    )
    candidates = [c["symbol_key"] for c in read_json(env.paths.candidates_file(RUN_ID))["candidates"]]
    covered = [key for request in requests for key in _covered(instance, request.tags)]
    assert sorted(covered) == sorted(candidates), "the ingest runs cover the universe, nothing else"
    assert not set(covered) & set(FOREIGN)
    assert len(requests) == 3, "BTC | ETH | the rest: the other folder's symbols split the universe"
    expected_tags = {**USER_TAGS, names.RUN_ID_TAG: RUN_ID, names.CHAIN_TAG: discovery.dagster_run_id}
    for i, request in enumerate(requests, start=1):
        assert request.run_config == config
        assert {k: request.tags[k] for k in expected_tags} == expected_tags
        assert request.tags[names.PART_TAG] == f"{i}/3"

    # Validation waits for every part of the ingest link.
    parts = [run_link(defs, instance, names.INGEST_JOB, tags=r.tags, run_config=r.run_config) for r in requests]
    first_done = ingest_succeeded_sensor(
        _success_context(instance, parts[0].dagster_run_id, "ingest_succeeded_sensor", lakehouse)
    )
    assert isinstance(first_done, list) and len(first_done) == 1, "all parts ran, so validation is requested"
    (validation,) = first_done
    assert validation.partition_key == RUN_ID
    assert validation.run_config == config
    assert {k: validation.tags[k] for k in expected_tags} == expected_tags
    assert set(candidates) <= instance.get_materialized_partitions(names.FEATURES_MATRIX), "features in the ingest link"
    assert not set(FOREIGN) & instance.get_materialized_partitions(names.OHLCV)

    # flow_production after validation, with the chain's settings.
    link = run_link(defs, instance, names.VALIDATION_JOB, partition_key=RUN_ID, tags=validation.tags, run_config=config)
    assert instance.get_run_by_id(link.dagster_run_id).run_config["resources"] == config["resources"]
    # On the daemon, validation_succeeded_sensor follows the chain; a terminal's in-process chain (as here)
    # is the export sensor's, with the same settings.
    (chained,) = validation_succeeded_sensor(
        _success_context(instance, link.dagster_run_id, "validation_succeeded_sensor", lakehouse)
    )
    result = export_sensor(build_sensor_context(instance=instance, resources={"lakehouse": _lakehouse(env)}))
    (production,) = result.run_requests
    assert production.run_key == RUN_ID
    for request in (chained, production):
        assert request.partition_key == RUN_ID
        assert request.run_config == config
        assert {k: request.tags[k] for k in expected_tags} == expected_tags
    run_link(defs, instance, names.PRODUCTION_JOB, partition_key=RUN_ID, tags=production.tags, run_config=config)
    frozen = read_json(env.paths.run_data_file(RUN_ID, "manifest_resolved.json"))
    assert frozen["profile"] == "test", "production froze the chain's profile, not the manifest's default"


def _lakehouse(env) -> LakehouseResource:
    return LakehouseResource(data_dir=str(env.paths.root))


def test_ingest_succeeded_sensor_waits_while_a_part_is_missing(chain):
    env, defs, config, lakehouse, discovery = chain
    instance = env.instance
    chain_tags = {names.RUN_ID_TAG: "RUN_PARTIAL", names.CHAIN_TAG: "chain-of-two-parts"}
    first = run_link(
        defs,
        instance,
        names.INGEST_JOB,
        tags={
            **chain_tags,
            ASSET_PARTITION_RANGE_START_TAG: "SIM_BTCUSDT",
            ASSET_PARTITION_RANGE_END_TAG: "SIM_BTCUSDT",
            names.PART_TAG: "1/2",
        },
        run_config=config,
    )
    answer = ingest_succeeded_sensor(
        _success_context(instance, first.dagster_run_id, "ingest_succeeded_sensor", lakehouse)
    )
    assert isinstance(answer, SkipReason) and "waiting for every part" in answer.skip_message


def test_export_sensor_waits_for_a_run_in_flight_then_uses_defaults_for_a_dropped_export(chain, tmp_path):
    env, *_ = chain
    instance = env.instance
    document = read_json(env.paths.candidates_validated_file(RUN_ID))
    from alpha_assets.lakehouse.jsonio import write_json_atomic

    for run_id in ("RUN_DROPPED", "RUN_BUSY"):
        write_json_atomic({**document, "run_id": run_id}, env.paths.candidates_validated_file(run_id))
    instance.add_run(
        DagsterRun(job_name=names.VALIDATION_JOB, status=DagsterRunStatus.STARTED, tags={names.RUN_ID_TAG: "RUN_BUSY"})
    )
    lakehouse = _lakehouse(env)
    first = export_sensor(build_sensor_context(instance=instance, resources={"lakehouse": lakehouse}))
    by_key = {r.run_key: r for r in first.run_requests}
    assert "RUN_BUSY" not in by_key, "a RUN_ID with a run still going is not produced yet"
    assert by_key["RUN_DROPPED"].run_config == {}, "an export no run of this instance wrote: defaults"
    assert by_key["RUN_DROPPED"].tags == {names.RUN_ID_TAG: "RUN_DROPPED"}
    assert [r.partition_keys for r in first.dynamic_partitions_requests] == [["RUN_DROPPED"]]
    # The next tick looks at the waiting export again.
    again = export_sensor(
        build_sensor_context(instance=instance, cursor=first.cursor, resources={"lakehouse": lakehouse})
    )
    assert isinstance(again, SkipReason) or "RUN_BUSY" not in {r.run_key for r in again.run_requests}
    busy_mtime = env.paths.candidates_validated_file("RUN_BUSY").stat().st_mtime_ns
    assert new_exports([("RUN_BUSY", busy_mtime)], first.cursor)[0] == ["RUN_BUSY"], "the cursor lets it through"


def test_discovery_of_an_existing_run_id_never_rewrites_its_universe(chain):
    env, defs, config, *_ = chain
    path = env.paths.candidates_file(RUN_ID)
    before = path.read_bytes()
    same = run_link(defs, env.instance, names.DISCOVERY_JOB, partition_key=RUN_ID, run_config=config)
    assert same.materializations["candidates"]["dagster/row_count"] > 0
    smaller = {"resources": {**config["resources"], "market_source": {"config": {"clock": CLOCK, "n_symbols": 12}}}}
    with pytest.raises(FlowFailedError, match="never rewritten with another universe: use a new RUN_ID"):
        run_link(defs, env.instance, names.DISCOVERY_JOB, partition_key=RUN_ID, run_config=smaller)
    assert path.read_bytes() == before


def test_flow_production_of_an_unknown_run_id_fails_and_adds_no_partition(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    code = cli.main(["flow-production", "--run-id", "RUN_TYPO", "--data-dir", str(tmp_path / "data")])
    assert code == 2
    assert "RUN_TYPO has no validated export" in capsys.readouterr().err
    with DagsterInstance.get() as instance:
        assert not instance.has_dynamic_partition("runs", "RUN_TYPO")


def test_a_truncated_old_export_never_blocks_the_validation_of_another_run_id(chain):
    env, defs, config, *_ = chain
    broken = env.paths.candidates_validated_file("RUN_OLD_BROKEN")
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text('{"run_id": "RUN_OLD_BROKEN", "symbols": ["SIM_BTC')
    link = run_link(defs, env.instance, names.VALIDATION_JOB, partition_key=RUN_ID, run_config=config)
    assert link.materializations["candidates_validated"]["duckdb_unreadable_files"] == [str(broken)]
    assert env.instance.get_run_by_id(link.dagster_run_id).tags[names.RUN_ID_TAG] == RUN_ID, "launched untagged"
    with duckdb.connect(str(env.paths.duckdb_file), read_only=True) as connection:
        run_ids = {row[0] for row in connection.execute("select distinct run_id from candidates_validated").fetchall()}
    assert RUN_ID in run_ids and "RUN_OLD_BROKEN" not in run_ids
    assert broken.read_text().endswith("SIM_BTC"), "the bad file is left as it was, for its owner to look at"


def test_a_damaged_features_table_file_never_blocks_the_flow_of_another_run_id(chain):
    """A data file of the features Delta table holding one symbol's rows is damaged after a flow_data, then another
    RUN_ID's flow_data runs (its reads prune that file on its `symbol` statistics)."""
    env, defs, config, *_ = chain
    instance, paths = env.instance, env.paths
    run_flow_data(defs, instance, paths, "RUN_FIRST", progress=lambda _: None, run_config=config)
    smaller = {"resources": {**config["resources"], "market_source": {"config": {"clock": CLOCK, "n_symbols": 12}}}}
    ensure_run_partition(instance, "RUN_NEXT")
    run_link(defs, instance, names.DISCOVERY_JOB, partition_key="RUN_NEXT", run_config=smaller)
    universe = {c["symbol_key"] for c in read_json(paths.candidates_file("RUN_NEXT"))["candidates"]}
    featured = set(
        read_features(paths, [p.name.removesuffix("_1d.parquet") for p in paths.lakehouse_dir.glob("*_1d.parquet")])[
            "symbol"
        ]
    )
    # A symbol of RUN_FIRST outside RUN_NEXT's universe gets one more day, appended in a file of its own.
    victim = sorted(featured - universe)[0]
    before = set(DeltaTable(paths.features_table_uri).file_uris())
    last = read_features(paths, [victim]).iloc[[-1]].reset_index(drop=True)
    last["date"] += pd.Timedelta(days=1)
    values = np.ascontiguousarray(last.iloc[:, 2:].to_numpy(dtype=float).T)
    dates = pd.DatetimeIndex(last["date"]).as_unit("ms").asi8
    write_features(paths, [FeatureRows(victim, dates, values, None, append=True)], list(last.columns[2:]))
    [bad] = [Path(uri) for uri in set(DeltaTable(paths.features_table_uri).file_uris()) - before]
    assert set(pq.read_table(bad, columns=["symbol"]).column("symbol").to_pylist()) == {victim}
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    damaged, files_before = bad.read_bytes(), sorted(paths.lakehouse_dir.rglob("*"))

    links = run_flow_data(defs, instance, paths, "RUN_NEXT", progress=lambda _: None, run_config=smaller)
    validation = links[-1]
    assert validation.job_name == names.VALIDATION_JOB
    unreadable = validation.materializations["candidates_validated"]["duckdb_unreadable_files"]
    # (RUN_OLD_BROKEN's truncated export, if the test above ran, is listed too.)
    assert [u for u in unreadable if u.endswith(".parquet")] == [str(bad)]
    warnings = [
        e.user_message
        for e in instance.all_logs(validation.dagster_run_id)
        if e.level == logging.WARNING and "unreadable file" in e.user_message
    ]
    assert len(warnings) == 1 and str(bad) in warnings[0]
    with duckdb_views.connect(paths) as connection:
        views = {r[0] for r in connection.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        in_ohlcv = {r[0] for r in connection.execute("SELECT DISTINCT symbol_key FROM ohlcv").fetchall()}
    assert "features" not in views, "a table missing a file would show a version that never existed"
    assert in_ohlcv, "the bars stay in their view"
    assert bad.read_bytes() == damaged, "the bad file is left as it was, for its owner to look at"
    assert set(files_before) <= set(paths.lakehouse_dir.rglob("*")), "nothing is deleted"


def _run(status: DagsterRunStatus, part: str) -> DagsterRun:
    return DagsterRun(job_name=names.INGEST_JOB, status=status, tags={names.PART_TAG: part})


@pytest.mark.parametrize(
    ("runs", "succeeded"),
    [
        ([_run(DagsterRunStatus.SUCCESS, "2/2"), _run(DagsterRunStatus.SUCCESS, "1/2")], True),
        ([_run(DagsterRunStatus.SUCCESS, "1/2")], False),
        # Newest first: part 1 failed, then its re-execution succeeded.
        ([_run(DagsterRunStatus.SUCCESS, "1/1"), _run(DagsterRunStatus.FAILURE, "1/1")], True),
        ([_run(DagsterRunStatus.FAILURE, "1/1"), _run(DagsterRunStatus.SUCCESS, "1/1")], False),
        ([], False),
    ],
    ids=["all-parts", "part-missing", "re-executed", "failed-again", "none"],
)
def test_link_succeeded_counts_each_parts_newest_run(runs, succeeded):
    assert link_succeeded(runs) is succeeded


def test_flow_data_whose_discovery_is_refused_leaves_no_run_id_partition(chain, tmp_path):
    env, defs, config, *_ = chain
    bad_source = {
        "resources": {
            **config["resources"],
            "market_source": {"config": {"source": "FILES", "files_dir": str(tmp_path / "no such folder")}},
        }
    }
    with pytest.raises(FlowFailedError, match="flow_data_discovery failed"):
        run_flow_data(defs, env.instance, env.paths, "RUN_REFUSED", progress=lambda _: None, run_config=bad_source)
    assert not env.instance.has_dynamic_partition("runs", "RUN_REFUSED")
    assert not env.paths.export_dir("RUN_REFUSED").exists()
