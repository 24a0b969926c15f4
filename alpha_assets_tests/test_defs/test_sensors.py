"""Sensors, schedule and automation of the code location, called directly on an on-disk instance.

Exercises: the export sensor (first tick, nothing new, a new RUN_ID, a stray folder), the daily schedule (adds
its RUN_ID), and the automation conditions (selection only after the gate passed, across runs; no second
features computation after a chain; features follow an ohlcv update alone, with a cursor that keeps no list of
the missing partitions, unlike Dagster's eager()). The chain sensors are in test_chain.py. The export sensor and
the automation tests run on both data-directory backends (``[local]`` folder, ``[s3]`` bucket on the tests' moto
server), with the files' real modification times (an object's is whole seconds).
Leaves to test_e2e: the daemon actually running them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
)
from dagster._daemon.asset_daemon import asset_daemon_cursor_to_instigator_serialized_cursor

from alpha_assets.definitions import build_definitions
from alpha_assets.defs import names
from alpha_assets.defs.alpha.sensors import export_cursor, export_sensor, new_exports
from alpha_assets.defs.automation import with_dagster_eager
from alpha_assets.defs.resources import LakehouseResource
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.orchestration.runner import ensure_run_partition, run_flow_data, run_link
from alpha_assets_tests.conftest import copy_file
from alpha_assets_tests.test_defs.conftest import make_flow_env


@pytest.fixture
def lakehouse(data_dir):
    return LakehouseResource(data_dir=data_dir)


def _export(lakehouse, run_id):
    write_json_atomic({"run_id": run_id, "symbols": []}, lakehouse.paths.candidates_validated_file(run_id))


def test_export_sensor_first_tick_without_exports_skips(lakehouse):
    with build_sensor_context(instance=None, resources={"lakehouse": lakehouse}) as context:
        result = export_sensor(context)
    assert isinstance(result, SkipReason)


def test_export_sensor_new_export_requests_production_once_and_adds_partition(lakehouse):
    from dagster import DagsterInstance

    _export(lakehouse, "RUN_A")
    # A folder whose name is not a RUN_ID never becomes a partition key.
    write_json_atomic({"run_id": "stray"}, lakehouse.paths.export_root / "not a run id" / "candidates_validated.json")
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, resources={"lakehouse": lakehouse})
        first = export_sensor(context)
        assert isinstance(first, SensorResult)
        assert [r.partition_key for r in first.run_requests] == ["RUN_A"]
        assert first.run_requests[0].run_key == "RUN_A"
        assert first.dynamic_partitions_requests[0].partition_keys == ["RUN_A"]

        again = export_sensor(
            build_sensor_context(instance=instance, cursor=first.cursor, resources={"lakehouse": lakehouse})
        )
        assert isinstance(again, SkipReason)

        # Written right after the tick: in a bucket usually within the same second, the only time S3 records.
        _export(lakehouse, "RUN_B")
        instance.add_dynamic_partitions("runs", ["RUN_B"])
        second = export_sensor(
            build_sensor_context(instance=instance, cursor=first.cursor, resources={"lakehouse": lakehouse})
        )
        assert [r.partition_key for r in second.run_requests] == ["RUN_B"]
        assert second.dynamic_partitions_requests == [], "an existing partition is not added again"
        third = export_sensor(
            build_sensor_context(instance=instance, cursor=second.cursor, resources={"lakehouse": lakehouse})
        )
        assert isinstance(third, SkipReason)


def test_new_exports_tells_apart_exports_written_at_the_same_recorded_time():
    """S3 records whole seconds: an export written after a tick can carry the very time that tick handled."""
    fresh, cursor = new_exports([("A", 5_000_000_000)], None)
    assert fresh == ["A"]
    fresh, cursor = new_exports([("A", 5_000_000_000), ("B", 5_000_000_000)], cursor)
    assert fresh == ["B"]
    assert new_exports([("A", 5_000_000_000), ("B", 5_000_000_000)], cursor) == ([], cursor)
    fresh, cursor = new_exports([("A", 5_000_000_000), ("B", 5_000_000_000), ("C", 6_000_000_000)], cursor)
    assert fresh == ["C"] and cursor == export_cursor(6_000_000_000, {"C"})


def test_new_exports_cursor_never_moves_back():
    fresh, cursor = new_exports([("A", 5), ("B", 7)], export_cursor(9, {"X"}))
    assert fresh == [] and cursor == export_cursor(9, {"X"})


def test_new_exports_reads_the_bare_time_cursor_of_earlier_ticks_as_all_handled_at_that_time():
    assert new_exports([("A", 5), ("B", 7)], "7") == ([], "7")
    assert new_exports([("A", 5), ("B", 7), ("C", 8)], "7") == (["C"], export_cursor(8, {"C"}))


def test_daily_schedule_adds_its_run_id_and_requests_discovery(tmp_path):
    from dagster import DagsterInstance

    defs = build_definitions(environ={})
    schedule = defs.resolve_schedule_def("daily_flow_data_schedule")
    assert schedule.default_status.value == "STOPPED"
    with DagsterInstance.local_temp(tempdir=str(tmp_path)) as instance:
        context = build_schedule_context(
            instance=instance,
            repository_def=defs.get_repository_def(),
            scheduled_execution_time=datetime(2026, 11, 25, 0, 15, tzinfo=UTC),
        )
        request = schedule.evaluate_tick(context).run_requests[0]
        assert request.partition_key == "20261125T001500Z"
        assert instance.has_dynamic_partition("runs", "20261125T001500Z")


def test_daily_schedule_runs_by_default_only_when_the_user_opts_in():
    on = build_definitions(environ={"ALPHA_ASSETS_DAILY_SCHEDULE": "on", "ALPHA_ASSETS_DAILY_CRON": "0 6 * * *"})
    schedule = on.resolve_schedule_def("daily_flow_data_schedule")
    assert schedule.default_status.value == "RUNNING" and schedule.cron_schedule == "0 6 * * *"
    off = build_definitions(environ={}).resolve_schedule_def("daily_flow_data_schedule")
    assert off.default_status.value == "STOPPED"


@pytest.fixture(scope="module")
def automation_env(tmp_path_factory, data_backend):
    env = make_flow_env(tmp_path_factory.mktemp("automation"), data_backend.fresh())
    defs = env.defs()
    run_flow_data(defs, env.instance, env.paths, "RUN_AUTO", progress=lambda _: None)
    yield env, defs
    env.instance.dispose()


def _requested(result, key):
    return result.get_requested_partitions(AssetKey(key))


def test_automation_selection_waits_for_a_passed_gate_across_runs(automation_env):
    env, defs = automation_env
    first = evaluate_automation_conditions(defs=defs, instance=env.instance)
    # A whole production run whose gate passes: selection ran inside it, so automation has nothing to add.
    run_link(defs, env.instance, names.PRODUCTION_JOB, partition_key="RUN_AUTO")
    assert read_json(env.paths.run_data_file("RUN_AUTO", "gate_verdict.json"))["passed"] is True
    passed = evaluate_automation_conditions(defs=defs, instance=env.instance, cursor=first.cursor)
    assert _requested(passed, "selection") == set(), "selection was materialised in the same run already"

    # A RUN_ID whose gate fails: a feature-less candidate.
    document = read_json(env.paths.candidates_validated_file("RUN_AUTO"))
    document.update(run_id="RUN_AUTO_BAD", symbols=[*document["symbols"], "SIM_NOFEATUSDT"])
    document["candidates"].append({"symbol_key": "SIM_NOFEATUSDT", "sector": "unknown"})
    copy_file(env.paths.ohlcv_file("SIM_ETHUSDT"), env.paths.ohlcv_file("SIM_NOFEATUSDT"))
    write_json_atomic(document, env.paths.candidates_validated_file("RUN_AUTO_BAD"))
    ensure_run_partition(env.instance, "RUN_AUTO_BAD")
    from dagster import materialize

    from alpha_assets.defs.alpha.assets import returns_matrix

    result = materialize(
        [returns_matrix],
        partition_key="RUN_AUTO_BAD",
        instance=env.instance,
        resources={k: defs.resources[k] for k in ("lakehouse", "manifest", "offline_guard")},
        raise_on_error=False,
    )
    assert not result.success
    after_fail = evaluate_automation_conditions(defs=defs, instance=env.instance, cursor=passed.cursor)
    assert "RUN_AUTO_BAD" not in _requested(after_fail, "selection")


def test_automation_requests_no_features_after_a_chain(automation_env):
    env, defs = automation_env
    baseline = evaluate_automation_conditions(defs=defs, instance=env.instance)
    run_flow_data(
        env.defs(clock="2026-11-26T12:00:00+00:00"), env.instance, env.paths, "RUN_AUTO_2", progress=lambda _: None
    )
    later = evaluate_automation_conditions(defs=defs, instance=env.instance, cursor=baseline.cursor)
    # The ingest link computed the features of every symbol it ingested: automation has none to compute again.
    assert _requested(later, "features_matrix") == set()


def _cursor_kb(result) -> float:
    """The size of the cursor as the daemon stores it for ``automation_sensor`` (compressed, base64)."""
    return len(asset_daemon_cursor_to_instigator_serialized_cursor(result.cursor)) / 1024


def test_automation_follows_ohlcv_with_a_cursor_that_does_not_grow_with_the_partitions(tmp_path):
    # 1,000 keys in each partitioning, none materialised: each automated asset has every partition missing.
    symbols = [f"SIM{i % 3 + 1}_S{i:04d}USDT" for i in range(1000)]
    defs = build_definitions()
    eager = with_dagster_eager(defs)
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        instance.add_dynamic_partitions("symbols", symbols)
        instance.add_dynamic_partitions("runs", [f"RUN_{i:04d}" for i in range(1000)])
        first = evaluate_automation_conditions(defs=defs, instance=instance)
        assert first.total_requested == 0, "no partition has bars yet"
        instance.report_runless_asset_event(AssetMaterialization(names.OHLCV, partition=symbols[7]))
        second = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
        assert _requested(second, "features_matrix") == {symbols[7]}
        third = evaluate_automation_conditions(defs=defs, instance=instance, cursor=second.cursor)
        assert third.total_requested == 0, "requested once: handled until ohlcv updates again"
        # Dagster's eager() keeps every missing partition's key in the cursor (newly_missing); ours keeps ranges.
        eager_first = evaluate_automation_conditions(defs=eager, instance=instance)
        assert _cursor_kb(eager_first) > 6, "eager() should hold the 3 x 1,000 missing keys"
        assert _cursor_kb(third) < 3, f"{_cursor_kb(third):.1f} KB"
