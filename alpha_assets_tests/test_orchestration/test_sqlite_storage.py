"""The project's instance storage (dagster.yaml -> orchestration/sqlite_storage.py) on real runs.

A single-run backfill over many symbol partitions is recorded completely (every partition materialised, the
check evaluated, the run's events readable through Dagster's API), with a bounded number of engines instead of
one per event; two processes writing runs into one DAGSTER_HOME at once both succeed; and the storage reads the
files Dagster's default storage wrote (same layout), so an existing home can switch in either direction.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    BackfillPolicy,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    DynamicPartitionsDefinition,
    MaterializeResult,
    asset,
    define_asset_job,
)
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from alpha_assets.cli import PROJECT_DAGSTER_YAML
from alpha_assets.orchestration import sqlite_storage
from alpha_assets.orchestration.sqlite_storage import OPEN_RUN_SHARDS, PooledSqliteEventLogStorage

KEYS = [f"SIM_T{i:03d}USDT" for i in range(60)]
PARTITIONS = DynamicPartitionsDefinition(name="test_symbols")


@asset(
    partitions_def=PARTITIONS,
    backfill_policy=BackfillPolicy.single_run(),
    check_specs=[AssetCheckSpec("rows_positive", asset="bars")],
)
def bars(context) -> tuple[MaterializeResult, AssetCheckResult]:
    yield MaterializeResult(metadata={"symbols": len(context.partition_keys)})
    yield AssetCheckResult(check_name="rows_positive", passed=True)


DEFS = Definitions(assets=[bars], jobs=[define_asset_job("bars_job", selection=[bars])])


def _home(tmp_path: Path, monkeypatch, yaml: Path | None) -> DagsterInstance:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    if yaml is not None:
        shutil.copyfile(yaml, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return DagsterInstance.get()


def _backfill(instance: DagsterInstance, keys: list[str]) -> str:
    instance.add_dynamic_partitions(PARTITIONS.name, keys)
    result = DEFS.resolve_job_def("bars_job").execute_in_process(
        instance=instance, tags={ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}
    )
    assert result.success
    return result.run_id


def test_project_instance_records_a_partition_range_run_with_few_engines(tmp_path, monkeypatch):
    created = []
    real_create_engine = sqlite_storage.create_engine
    monkeypatch.setattr(
        sqlite_storage, "create_engine", lambda *a, **k: created.append(a[0]) or real_create_engine(*a, **k)
    )
    instance = _home(tmp_path, monkeypatch, PROJECT_DAGSTER_YAML)
    try:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        run_ids = [_backfill(instance, KEYS)]
        # ~125 events went through the storage; engines: the index and this run's database.
        assert len(created) <= 2, created
        assert instance.get_materialized_partitions(AssetKey("bars")) == set(KEYS)
        materializations = instance.fetch_materializations(AssetKey("bars"), limit=1000).records
        assert sorted(r.partition_key for r in materializations) == KEYS
        planned = [
            event.dagster_event.partition
            for event in instance.all_logs(run_ids[0], of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
        ]
        assert sorted(planned) == KEYS  # one planned event per partition: the UI shows each in progress
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(bars.check_keys))
        assert [record.status.value for record in checks.values()] == ["SUCCEEDED"]
        for first in range(0, 60, 10):  # more runs than open run databases: old engines are closed
            run_ids.append(_backfill(instance, KEYS[first : first + 10]))
        assert len(instance.event_log_storage._engines) == OPEN_RUN_SHARDS + 1
        assert all(instance.get_run_by_id(run_id).is_success for run_id in run_ids)
    finally:
        instance.dispose()
    # The same home opens with Dagster's default storage: same files, same records.
    (tmp_path / "home" / "dagster.yaml").unlink()
    default = DagsterInstance.get()
    try:
        assert type(default.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert default.get_materialized_partitions(AssetKey("bars")) == set(KEYS)
        assert len(default.fetch_materializations(AssetKey("bars"), limit=1000).records) == 2 * len(KEYS)
    finally:
        default.dispose()


def test_project_instance_takes_two_writing_processes_at_once(tmp_path, monkeypatch):
    instance = _home(tmp_path, monkeypatch, PROJECT_DAGSTER_YAML)
    instance.dispose()
    script = textwrap.dedent(
        f"""
        import sys
        from dagster import DagsterInstance
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_sqlite_storage import _backfill
        instance = DagsterInstance.get()
        _backfill(instance, [f"SIM_P{{sys.argv[1]}}{{i:03d}}USDT" for i in range(40)])
        instance.dispose()
        """
    )
    children = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], stderr=subprocess.PIPE, text=True) for n in (1, 2)
    ]
    errors = [child.communicate(timeout=300)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0], errors
    instance = DagsterInstance.get()
    try:
        assert len(instance.get_materialized_partitions(AssetKey("bars"))) == 80
    finally:
        instance.dispose()


def test_storage_without_base_dir_or_dagster_home_names_both(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="needs `base_dir` in its config or DAGSTER_HOME in the environment"):
        PooledSqliteEventLogStorage.from_config_value(None, {})
