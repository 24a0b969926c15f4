"""History is immutable: a refreeze whose gate fails withdraws the RUN_ID's weights from every view, losing nothing.

Runs flow_data and flow_production on the simulated exchange through Dagster on an on-disk instance, then
refreezes the RUN_ID over an export that fails the gate, then over the good export again. Checks the run
folder, the withdrawn copies (byte for byte), the DuckDB views as a user queries them, and the numbering of
repeated withdrawals. Leaves the gate's own verdicts to test_check_partitions.py and test_foundation_gate.py.
"""

from __future__ import annotations

import shutil

import duckdb
import pytest
from dagster import AssetCheckKey, evaluate_automation_conditions
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from alpha_assets.alpha.withdrawal import withdraw_downstream
from alpha_assets.defs import names
from alpha_assets.lakehouse.jsonio import read_json, write_json_atomic
from alpha_assets.lakehouse.paths import WITHDRAWAL_RECORD_FILE, LakehousePaths
from alpha_assets.orchestration.runner import FlowFailedError, run_flow_data, run_link
from alpha_assets_tests.test_defs.conftest import clone_run, make_flow_env

RUN_ID = "RUN_HISTORY"
OTHER_RUN_ID = "RUN_HISTORY_OTHER"
REFREEZE = {"ops": {"returns_matrix": {"config": {"refreeze": True}}}}


@pytest.fixture(scope="module")
def history_env(tmp_path_factory):
    env = make_flow_env(tmp_path_factory.mktemp("history"))
    defs = env.defs()
    run_flow_data(defs, env.instance, env.paths, RUN_ID, progress=lambda _: None)
    clone_run(env, RUN_ID, OTHER_RUN_ID)
    for run_id in (RUN_ID, OTHER_RUN_ID):
        run_link(defs, env.instance, names.PRODUCTION_JOB, partition_key=run_id)
    yield env, defs
    env.instance.dispose()


def _weights_rows(paths, run_id):
    with duckdb.connect(str(paths.duckdb_file), read_only=True) as db:
        return db.execute("select count(*) from weights where run_id = ?", [run_id]).fetchone()[0]


def _gate_passed(paths, run_id):
    with duckdb.connect(str(paths.duckdb_file), read_only=True) as db:
        return db.execute("select distinct gate_passed from gate_checks where run_id = ?", [run_id]).fetchall()


def _withdrawal_status(instance, asset_key, check_name):
    """RUN_ID -> (status, is_current, description) of a withdrawal check, as the UI and automation read it."""
    infos = instance.event_log_storage.get_asset_check_partition_info([AssetCheckKey(asset_key, check_name)])
    latest = {
        i.partition_key: instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [AssetCheckKey(asset_key, check_name)], partition_filter=PartitionKeyFilter(key=i.partition_key)
        )[AssetCheckKey(asset_key, check_name)]
        for i in infos
    }
    return {
        i.partition_key: (
            i.latest_execution_status,
            i.is_current,
            latest[i.partition_key].event.dagster_event.asset_check_evaluation_data.description,
        )
        for i in infos
    }


WITHDRAWAL_CHECKS = {
    names.SELECTION: names.SELECTION_NOT_WITHDRAWN,
    names.PORTFOLIO_FLATTENED: names.PORTFOLIO_NOT_WITHDRAWN,
}


def test_failed_refreeze_withdraws_weights_from_every_view_then_a_passing_one_restores(history_env):
    env, defs = history_env
    passed, failed = AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED
    for asset_key, check_name in WITHDRAWAL_CHECKS.items():
        status = _withdrawal_status(env.instance, asset_key, check_name)
        assert {r: status[r][:2] for r in (RUN_ID, OTHER_RUN_ID)} == dict.fromkeys(
            (RUN_ID, OTHER_RUN_ID), (passed, True)
        )
    automation = evaluate_automation_conditions(defs=defs, instance=env.instance)
    paths = env.paths
    portfolio = paths.run_data_file(RUN_ID, "portfolio_flattened.json")
    selection = paths.run_data_file(RUN_ID, "selection.json")
    report = paths.run_report_file(RUN_ID, "report.html")
    before = {path: path.read_bytes() for path in (portfolio, selection, report)}
    assert _weights_rows(paths, RUN_ID) > 0

    # The RUN_ID's export now names a candidate without features: its refreeze fails the gate.
    good_export = read_json(paths.candidates_validated_file(RUN_ID))
    shutil.copyfile(paths.ohlcv_file("SIM_ETHUSDT"), paths.ohlcv_file("SIM_NOFEATUSDT"))
    clone_run(env, RUN_ID, RUN_ID, extra_symbols=["SIM_NOFEATUSDT"])
    with pytest.raises(FlowFailedError, match="blocking asset check failed"):
        run_link(defs, env.instance, names.PRODUCTION_JOB, partition_key=RUN_ID, run_config=REFREEZE)

    assert not portfolio.exists() and not selection.exists() and not report.exists()
    folder = paths.run_withdrawn_dir(RUN_ID) / "1"
    run_dir = paths.run_dir(RUN_ID)
    for path, content in before.items():
        assert (folder / path.relative_to(run_dir)).read_bytes() == content, "withdrawn, not lost"
    record = read_json(folder / WITHDRAWAL_RECORD_FILE)
    assert record["files"][0] == "data/portfolio_flattened.json"
    assert "features_present" in record["reason"] and "SIM_NOFEATUSDT" in record["reason"]
    assert _weights_rows(paths, RUN_ID) == 0, "the weights view still serves the withdrawn portfolio"
    assert _weights_rows(paths, OTHER_RUN_ID) > 0, "another RUN_ID's weights stay"
    assert _gate_passed(paths, RUN_ID) == [(False,)]
    # The UI and automation: the old materialisations carry a failed blocking check naming the withdrawal.
    for asset_key, check_name in WITHDRAWAL_CHECKS.items():
        status = _withdrawal_status(env.instance, asset_key, check_name)
        assert status[RUN_ID][:2] == (failed, True), asset_key
        assert "WITHDRAWN" in status[RUN_ID][2] and str(folder) in status[RUN_ID][2]
        assert status[OTHER_RUN_ID][:2] == (passed, True), "another RUN_ID's status stays"
    automation = evaluate_automation_conditions(defs=defs, instance=env.instance, cursor=automation.cursor)
    for asset_key in WITHDRAWAL_CHECKS:
        assert RUN_ID not in automation.get_requested_partitions(asset_key), f"automation re-ran {asset_key}"

    # A refreeze over a passing export writes new weights in their place; the withdrawn copies stay.
    write_json_atomic(good_export, paths.candidates_validated_file(RUN_ID))
    run_link(defs, env.instance, names.PRODUCTION_JOB, partition_key=RUN_ID, run_config=REFREEZE)
    assert portfolio.exists() and _weights_rows(paths, RUN_ID) > 0
    assert _gate_passed(paths, RUN_ID) == [(True,)]
    assert (folder / "data" / "portfolio_flattened.json").read_bytes() == before[portfolio]
    for asset_key, check_name in WITHDRAWAL_CHECKS.items():
        assert _withdrawal_status(env.instance, asset_key, check_name)[RUN_ID][:2] == (passed, True), asset_key


def test_withdraw_downstream_numbers_each_withdrawal_and_skips_an_empty_run(tmp_path):
    paths = LakehousePaths(tmp_path)
    assert withdraw_downstream(paths, "RUN_EMPTY", "gate failed") is None
    assert not paths.run_withdrawn_dir("RUN_EMPTY").exists()
    for n in (1, 2):
        write_json_atomic({"n": n}, paths.run_data_file("RUN_TWICE", "selection.json"))
        withdrawal = withdraw_downstream(paths, "RUN_TWICE", f"failure {n}")
        assert withdrawal.folder == paths.run_withdrawn_dir("RUN_TWICE") / str(n)
        assert withdrawal.files == ("data/selection.json",)
        assert read_json(withdrawal.folder / "data" / "selection.json") == {"n": n}
    assert not paths.run_data_file("RUN_TWICE", "selection.json").exists()
    assert sorted(p.name for p in paths.run_withdrawn_dir("RUN_TWICE").iterdir()) == ["1", "2"]


def test_one_truncated_old_export_never_blocks_another_run_ids_portfolio(history_env):
    env, defs = history_env
    paths = env.paths
    broken = paths.candidates_validated_file("RUN_TRUNCATED")
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text('{"run_id": "RUN_TRUNC')  # an export cut short by a crash long ago
    run_link(defs, env.instance, names.PRODUCTION_JOB, partition_key=OTHER_RUN_ID)
    assert _weights_rows(paths, OTHER_RUN_ID) > 0
    assert broken.read_text() == '{"run_id": "RUN_TRUNC', "the bad export is left as it was"
