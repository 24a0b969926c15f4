"""Checks keep one status per partition: the gate per RUN_ID, the ohlcv and features checks per symbol; trimming
is a warning.

Runs flow_data once on the simulated exchange (one ingest run over the whole symbol range), then a one-symbol
ingest, and several RUN_IDs over the same export through Dagster on the project's on-disk instance (dagster.yaml,
as the CLI uses it): one whose gate fails (a candidate without features), ones that pass, one that names the
planted +600 % pump as validated so trimming drops it. Reads back what Dagster stored per partition (the check
executions the UI and automation read) and evaluates the automation conditions without a daemon.
Leaves to test_e2e: the daemon's sensors doing the same across ticks.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import AssetCheckKey, AssetCheckSeverity, AssetKey, evaluate_automation_conditions, materialize
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from alpha_assets.defs import names
from alpha_assets.defs.alpha.assets import returns_matrix
from alpha_assets.defs.dataops.assets import features_matrix
from alpha_assets.defs.dataops.checks import SPOT_CHECK_SYMBOLS
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.orchestration.runner import FlowFailedError, run_flow_data, run_link
from alpha_assets.orchestration.sqlite_storage import PooledSqliteEventLogStorage
from alpha_assets_tests.test_defs.conftest import clone_run, make_flow_env

RUN_ID = "RUN_GATE_BASE"
PUMP = "SIM_PUMPUSDT"


@pytest.fixture(scope="module")
def gate_env(tmp_path_factory):
    # The project's instance (dagster.yaml): its event log writes the per-symbol evaluations in bulk.
    env = make_flow_env(tmp_path_factory.mktemp("gate_partitions"), project_instance=True)
    assert isinstance(env.instance.event_log_storage, PooledSqliteEventLogStorage)
    defs = env.defs()
    run_flow_data(defs, env.instance, env.paths, RUN_ID, progress=lambda _: None)
    # A candidate whose bars are sound but whose features were never computed fails features_present.
    shutil.copyfile(env.paths.ohlcv_file("SIM_ETHUSDT"), env.paths.ohlcv_file("SIM_NOFEATUSDT"))
    yield env, defs
    env.instance.dispose()


def _returns_matrix_only(env, defs, run_id):
    return materialize(
        [returns_matrix],
        partition_key=run_id,
        instance=env.instance,
        resources={k: defs.resources[k] for k in ("lakehouse", "manifest", "offline_guard")},
        raise_on_error=False,
    )


def _latest(instance, check_name, partition):
    key = AssetCheckKey(names.RETURNS_MATRIX, check_name)
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [key], partition_filter=PartitionKeyFilter(key=partition)
    )
    return records.get(key)


def test_gate_checks_keep_a_failed_run_id_failed_after_another_run_id_passes(gate_env):
    env, defs = gate_env
    clone_run(env, RUN_ID, "RUN_GATE_BAD", extra_symbols=["SIM_NOFEATUSDT"])
    clone_run(env, RUN_ID, "RUN_GATE_GOOD")
    with pytest.raises(FlowFailedError, match="blocking asset check failed"):
        run_link(defs, env.instance, names.PRODUCTION_JOB, partition_key="RUN_GATE_BAD")
    run_link(defs, env.instance, names.PRODUCTION_JOB, partition_key="RUN_GATE_GOOD")

    bad = _latest(env.instance, names.GATE_FEATURES_PRESENT, "RUN_GATE_BAD")
    good = _latest(env.instance, names.GATE_FEATURES_PRESENT, "RUN_GATE_GOOD")
    assert bad.status is AssetCheckExecutionRecordStatus.FAILED, "the later pass of another RUN_ID hid the failure"
    assert good.status is AssetCheckExecutionRecordStatus.SUCCEEDED
    assert "SIM_NOFEATUSDT" in bad.event.dagster_event.asset_check_evaluation_data.description
    # Nothing is stored without a partition: the UI has no global status that one RUN_ID could overwrite.
    key = AssetCheckKey(names.RETURNS_MATRIX, names.GATE_FEATURES_PRESENT)
    infos = env.instance.event_log_storage.get_asset_check_partition_info([key])
    assert {i.partition_key for i in infos} >= {"RUN_GATE_BAD", "RUN_GATE_GOOD"}
    assert None not in {i.partition_key for i in infos}


def test_automation_requests_selection_for_the_passing_run_id_only(gate_env):
    env, defs = gate_env
    baseline = evaluate_automation_conditions(defs=defs, instance=env.instance)
    clone_run(env, RUN_ID, "RUN_AUTO_FAIL", extra_symbols=["SIM_NOFEATUSDT"])
    clone_run(env, RUN_ID, "RUN_AUTO_PASS")
    # The failing RUN_ID first, then the passing one: with one global status per check the pass would
    # overwrite the failure and automation would request selection for both.
    assert not _returns_matrix_only(env, defs, "RUN_AUTO_FAIL").success
    assert _returns_matrix_only(env, defs, "RUN_AUTO_PASS").success
    after = evaluate_automation_conditions(defs=defs, instance=env.instance, cursor=baseline.cursor)
    assert after.get_requested_partitions(names.SELECTION) == {"RUN_AUTO_PASS"}


def _pump_day(env) -> tuple[str, float]:
    """The day and value of the planted pump's largest daily return, read from its bars directly."""
    bars = pq.read_table(env.paths.ohlcv_file(PUMP)).to_pandas().set_index("timestamp")["close"]
    returns = bars.pct_change().dropna()
    day = returns.abs().idxmax()
    return pd.Timestamp(day).strftime("%Y-%m-%d"), float(returns[day])


def test_trimming_a_toxic_return_is_a_warning_naming_symbol_day_and_value(gate_env):
    env, defs = gate_env
    clone_run(env, RUN_ID, "RUN_GATE_PUMP", extra_symbols=[PUMP])
    run_link(defs, env.instance, names.PRODUCTION_JOB, partition_key="RUN_GATE_PUMP")
    day, value = _pump_day(env)
    assert value == pytest.approx(6.0, rel=1e-6), "the simulated exchange plants a +600 % day"

    warning = _latest(env.instance, names.RETURNS_DROPPED_NO_TOXIC_SYMBOL, "RUN_GATE_PUMP")
    assert warning.status is AssetCheckExecutionRecordStatus.FAILED
    evaluation = warning.event.dagster_event.asset_check_evaluation_data
    assert evaluation.severity is AssetCheckSeverity.WARN and not evaluation.blocking
    assert PUMP in evaluation.description and day in evaluation.description
    assert "+600%" in evaluation.description and "limit 5 (500%)" not in evaluation.description
    assert "above 5 (500%)" in evaluation.description, "the run's limit, from its frozen manifest"
    table = evaluation.metadata["dropped"].value
    assert PUMP in table and day in table
    # A warning does not block: the RUN_ID still gets its portfolio, without the trimmed symbol.
    portfolio = read_json(env.paths.run_data_file("RUN_GATE_PUMP", "portfolio_flattened.json"))
    assert all(row["Symbol"] != PUMP for p in portfolio["profiles"].values() for row in p["rows"])


def test_trimming_warning_passes_when_nothing_toxic_was_dropped(gate_env):
    env, defs = gate_env
    if _latest(env.instance, names.RETURNS_DROPPED_NO_TOXIC_SYMBOL, RUN_ID) is None:
        run_link(defs, env.instance, names.PRODUCTION_JOB, partition_key=RUN_ID)
    record = _latest(env.instance, names.RETURNS_DROPPED_NO_TOXIC_SYMBOL, RUN_ID)
    assert record.status is AssetCheckExecutionRecordStatus.SUCCEEDED
    assert "within the run's limit 5 (500%)" in record.event.dagster_event.asset_check_evaluation_data.description


def test_trimming_warning_follows_the_runs_manifest_limit(gate_env, tmp_path):
    env, defs = gate_env
    # The same RUN_ID inputs under a manifest whose limit lies above the pump: nothing is dropped.
    manifest = read_json(env.manifest_path)
    manifest["profiles"]["test"]["returns"]["max_abs_return"] = 8.0
    manifest["profiles"]["test"].setdefault("gate", {})["max_abs_return"] = 8.0
    path = tmp_path / "manifest.json"
    write_json_atomic(manifest, path)
    from alpha_assets.defs.resources import ManifestResource

    clone_run(env, RUN_ID, "RUN_GATE_PUMP_LOOSE", extra_symbols=[PUMP])
    result = materialize(
        [returns_matrix],
        partition_key="RUN_GATE_PUMP_LOOSE",
        instance=env.instance,
        resources={
            **{k: defs.resources[k] for k in ("lakehouse", "offline_guard")},
            "manifest": ManifestResource(path=str(path)),
        },
    )
    assert result.success
    record = _latest(env.instance, names.RETURNS_DROPPED_NO_TOXIC_SYMBOL, "RUN_GATE_PUMP_LOOSE")
    assert record.status is AssetCheckExecutionRecordStatus.SUCCEEDED
    assert "limit 8 (800%)" in record.event.dagster_event.asset_check_evaluation_data.description


OHLCV_CHECKS = (
    names.OHLCV_INGEST_SUCCEEDED,
    names.OHLCV_SCHEMA_IS_VALID,
    names.OHLCV_PRICES_ARE_SANE,
    names.OHLCV_HAS_NO_UNREPAIRED_GAPS,
    names.OHLCV_IS_FRESH,
    names.OHLCV_IS_NOT_TOXIC,
)
#: Planted by the simulated exchange: two toxic symbols (a +600 % day, a frozen close) and one with holes.
TOXIC = ("SIM_PUMPUSDT", "SIM_FRZNUSDT")


def _ohlcv_status(instance, check_name):
    """Partition -> (status, is_current) of one ohlcv check, as the UI and automation read it."""
    infos = instance.event_log_storage.get_asset_check_partition_info([AssetCheckKey(names.OHLCV, check_name)])
    return {i.partition_key: (i.latest_execution_status, i.is_current) for i in infos}


def test_ohlcv_checks_of_a_range_run_have_a_current_status_per_symbol(gate_env):
    env, _ = gate_env
    symbols = {c["symbol_key"] for c in read_json(env.paths.candidates_file(RUN_ID))["candidates"]}
    failed, passed = AssetCheckExecutionRecordStatus.FAILED, AssetCheckExecutionRecordStatus.SUCCEEDED
    for check_name in OHLCV_CHECKS:
        status = _ohlcv_status(env.instance, check_name)
        assert None not in status, f"{check_name} stored a result under no partition"
        assert symbols <= set(status), check_name
        for symbol in symbols:
            assert status[symbol][0] in (failed, passed) and status[symbol][1], (check_name, symbol, status[symbol])
    toxic = _ohlcv_status(env.instance, names.OHLCV_IS_NOT_TOXIC)
    assert {s for s in symbols if toxic[s][0] is failed} == set(TOXIC)
    gaps = _ohlcv_status(env.instance, names.OHLCV_HAS_NO_UNREPAIRED_GAPS)
    assert gaps["SIM_HOLEUSDT"][0] is failed and gaps["SIM_BTCUSDT"][0] is passed


def test_one_symbol_ingest_after_a_range_run_leaves_the_toxic_symbols_failed(gate_env):
    env, defs = gate_env
    link = run_link(defs, env.instance, names.INGEST_JOB, partition_key="SIM_BTCUSDT")
    failed, passed = AssetCheckExecutionRecordStatus.FAILED, AssetCheckExecutionRecordStatus.SUCCEEDED
    for check_name in OHLCV_CHECKS:
        status = _ohlcv_status(env.instance, check_name)
        assert status["SIM_BTCUSDT"] == (passed, True), check_name
        assert None not in status, check_name
    toxic = _ohlcv_status(env.instance, names.OHLCV_IS_NOT_TOXIC)
    for symbol in TOXIC:
        assert toxic[symbol] == (failed, True), f"{symbol} turned green after a run that did not touch it"
    record = env.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [AssetCheckKey(names.OHLCV, names.OHLCV_IS_NOT_TOXIC)], partition_filter=PartitionKeyFilter(key="SIM_PUMPUSDT")
    )[AssetCheckKey(names.OHLCV, names.OHLCV_IS_NOT_TOXIC)]
    evaluation = record.event.dagster_event.asset_check_evaluation_data
    assert record.run_id != link.dagster_run_id
    assert "SIM_PUMPUSDT" in evaluation.description and "TOXIC" in evaluation.description
    assert evaluation.severity is AssetCheckSeverity.WARN
    assert evaluation.metadata["failures"].value[0]["threshold"] is not None


def test_gate_and_warning_checks_are_declared_per_run_id(gate_env):
    _, defs = gate_env
    specs = {spec.name: spec for spec in defs.resolve_assets_def(names.RETURNS_MATRIX).check_specs}
    gate_names = {names.GATE_NO_NAN, names.GATE_MAX_ABS_RETURN, names.GATE_INDEX_UTC_INCREASING, names.GATE_DENSITY}
    for name in gate_names | {names.GATE_FEATURES_PRESENT}:
        assert specs[name].blocking and specs[name].partitions_def.name == "runs", name
    warning = specs[names.RETURNS_DROPPED_NO_TOXIC_SYMBOL]
    assert not warning.blocking and warning.partitions_def.name == "runs"
    assert "500" not in warning.description and "500" not in specs[names.GATE_MAX_ABS_RETURN].description
    assert AssetKey("returns_matrix") == names.RETURNS_MATRIX
    ohlcv = defs.resolve_assets_def(names.OHLCV).check_specs
    assert {spec.name: spec.partitions_def.name for spec in ohlcv} == dict.fromkeys(OHLCV_CHECKS, "symbols")


FEATURE_CHECKS = (names.FEATURES_HAVE_NO_INF, names.FEATURES_COVER_LAST_BAR, names.FEATURES_ARE_POINT_IN_TIME)


def _features_status(instance, check_name):
    """Partition -> (status, is_current) of one features_matrix check, as the UI and automation read it."""
    key = AssetCheckKey(names.FEATURES_MATRIX, check_name)
    return {
        i.partition_key: (i.latest_execution_status, i.is_current)
        for i in instance.event_log_storage.get_asset_check_partition_info([key])
    }


def _features_run(env, defs, symbols):
    """features_matrix alone over a contiguous range of symbol partitions, in one run."""
    tags = {"dagster/asset_partition_range_start": symbols[0], "dagster/asset_partition_range_end": symbols[-1]}
    return materialize(
        [features_matrix],
        instance=env.instance,
        resources={"lakehouse": defs.resources["lakehouse"]},
        partition_key=symbols[0] if len(symbols) == 1 else None,
        tags=None if len(symbols) == 1 else tags,
    )


def test_features_checks_of_a_range_run_have_a_current_status_per_symbol(gate_env):
    env, _ = gate_env
    symbols = set(read_json(env.paths.candidates_validated_file(RUN_ID))["symbols"])
    passed = AssetCheckExecutionRecordStatus.SUCCEEDED
    for check_name in (names.FEATURES_HAVE_NO_INF, names.FEATURES_COVER_LAST_BAR):
        status = _features_status(env.instance, check_name)
        assert None not in status, f"{check_name} stored a result under no partition"
        assert {s: status[s] for s in symbols} == dict.fromkeys(symbols, (passed, True)), check_name
    # The spot check evaluates a sample; the range's other symbols stay planned, which the UI resolves to
    # "skipped" once the run succeeded (not a pass).
    spot = _features_status(env.instance, names.FEATURES_ARE_POINT_IN_TIME)
    assert None not in spot
    sampled = {s for s, state in spot.items() if state != (AssetCheckExecutionRecordStatus.PLANNED, False)}
    assert {spot[s] for s in sampled} == {(passed, True)}
    key = AssetCheckKey(names.FEATURES_MATRIX, names.FEATURES_ARE_POINT_IN_TIME)
    runs = [
        env.instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=symbol)
        )[key].run_id
        for symbol in sampled
    ]
    assert runs and all(1 <= runs.count(run) <= SPOT_CHECK_SYMBOLS for run in runs), "a sample per run"


def test_one_symbol_features_run_after_a_failed_symbol_leaves_its_failure(gate_env):
    env, defs = gate_env
    universe = set(read_json(env.paths.candidates_validated_file(RUN_ID))["symbols"])
    order = [k for k in env.instance.get_dynamic_partitions("symbols") if k in universe]
    healthy, broken = order[0], order[1]
    bars = env.paths.ohlcv_file(broken)
    saved = bars.read_bytes()
    try:
        bars.write_bytes(b"not a parquet file")  # its backfill fails: the symbol's features stop short
        assert _features_run(env, defs, order[:2]).success
        covered = _features_status(env.instance, names.FEATURES_COVER_LAST_BAR)
        failed, passed = AssetCheckExecutionRecordStatus.FAILED, AssetCheckExecutionRecordStatus.SUCCEEDED
        assert covered[broken] == (failed, True) and covered[healthy] == (passed, True)

        run = _features_run(env, defs, [healthy])
        assert run.success
        covered = _features_status(env.instance, names.FEATURES_COVER_LAST_BAR)
        assert covered[broken] == (failed, True), "a run that did not touch the symbol turned it green"
        assert covered[healthy] == (passed, True)
        sampled = _features_status(env.instance, names.FEATURES_ARE_POINT_IN_TIME)
        assert sampled[healthy] == (passed, True), "a one-symbol run spot-checks that symbol"
        key = AssetCheckKey(names.FEATURES_MATRIX, names.FEATURES_COVER_LAST_BAR)
        record = env.instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [key], partition_filter=PartitionKeyFilter(key=broken)
        )[key]
        assert (
            record.run_id != run.run_id and broken in record.event.dagster_event.asset_check_evaluation_data.description
        )
    finally:
        bars.write_bytes(saved)


def test_features_checks_are_declared_per_symbol(gate_env):
    _, defs = gate_env
    specs = defs.resolve_assets_def(names.FEATURES_MATRIX).check_specs
    assert {spec.name: spec.partitions_def.name for spec in specs} == dict.fromkeys(FEATURE_CHECKS, "symbols")
